package rebalance

import (
	"context"
	"fmt"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

// Move is one planned eviction: the pod leaves From for a node of a strictly better tier.
// To is where the scheduler, with the same profile, is expected to put it.
type Move struct {
	Pod      *v1.Pod
	From     string
	FromTier string
	To       string
	ToTier   string
	// ForPolicy: the move keeps the workload's capacity policy (policy.go); the target may be
	// of a worse tier than the source (a base pod back to on-demand) or of the same tier (a
	// pool over its cap re-spread).
	ForPolicy bool
	// ForPacking: the move empties From within its band (pack.go); the target is of the same
	// tier, and From carries the packing taint before the eviction.
	ForPacking bool
}

// Skip records why a pod on a worse tier stays.
type Skip struct {
	Pod    *v1.Pod
	Node   string
	Reason string
	// Invalid names the opt-out annotation whose unreadable value the skip is the cautious
	// reading of (the controller gives the pod a Warning event); nil otherwise.
	Invalid error
}

// Plan is the outcome of one planning pass.
type Plan struct {
	Moves []Move
	Skips []Skip
	// EmptiedNodes are worse-tier nodes the plan empties entirely (DaemonSet and mirror pods
	// aside), so that the autoscaler can remove them.
	EmptiedNodes []string
	// PackedNodes are nodes the plan empties onto others of the same band (pack.go).
	PackedNodes []string
}

// SkipCounts counts skips by reason.
func (p *Plan) SkipCounts() map[string]int {
	counts := map[string]int{}
	for _, s := range p.Skips {
		counts[s.Reason]++
	}
	return counts
}

// planner holds one pass's working state over a snapshot.
type planner struct {
	sim      *simulator.Simulator
	session  *simulator.Session
	opts     Options
	now      time.Time
	snapshot *simulator.Snapshot
	classes  map[string]capacity.Class
	// healthy nodes by name, sorted by name, for target search.
	targets []*v1.Node

	// noRoom remembers workloads (with the source tier rank) for which no better-tier node had
	// room: planned moves only consume room, so a replica of the same workload would find none
	// either. Undoing a tentative node clears it.
	noRoom map[string]bool
	// policies: the workloads with a capacity policy and their replica counts (policy.go);
	// nil entries for workloads without one.
	policies map[string]*workloadPolicy
	// disruptions, counts and budgets: the workloads' disruption budgets (budget.go).
	disruptions Disruptions
	counts      map[string]workloadCounts
	budgets     map[string]*workloadBudget
	// evictions counts planned moves, including tentative ones of a node being emptied.
	evictions            int
	evictionsPerWorkload map[string]int
	plan                 Plan
}

// PlanMoves decides which pods to move, on a snapshot of nodes and pods, with the profile's Filter
// plugins and SpotScore (sim). It makes no API call. A pod is moved only when a healthy node of
// a strictly better tier (for that pod) can host it in the snapshot; placeholders count as free
// room; each planned move reserves its room; no workload is planned past its disruption budget
// nor the cluster past MaxEvictionsInFlight (budget.go; d may be nil).
func PlanMoves(ctx context.Context, sim *simulator.Simulator, nodes []*v1.Node, pods []*v1.Pod, now time.Time, opts Options, d *Disruptions) (*Plan, error) {
	snapshot := sim.NewSnapshot(nodes, pods, true)
	session := sim.Begin(snapshot)
	defer session.End()
	pl := &planner{
		sim:                  sim,
		session:              session,
		opts:                 opts,
		now:                  now,
		snapshot:             snapshot,
		classes:              make(map[string]capacity.Class, len(nodes)),
		counts:               countWorkloads(pods),
		budgets:              map[string]*workloadBudget{},
		evictionsPerWorkload: map[string]int{},
		noRoom:               map[string]bool{},
	}
	if d != nil {
		pl.disruptions = *d
	}
	for _, n := range nodes {
		c := sim.Model.Classify(n)
		pl.classes[n.Name] = c
		if !c.AtRisk {
			pl.targets = append(pl.targets, n)
		}
	}
	sort.Slice(pl.targets, func(i, j int) bool { return pl.targets[i].Name < pl.targets[j].Name })
	var candidates []*v1.Pod
	for _, pod := range pods {
		if _, onNode := pl.classes[pod.Spec.NodeName]; !onNode || pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
			continue // unbound, finished, or bound to a node that is gone
		}
		if sim.IsPlaceholder != nil && sim.IsPlaceholder(pod) {
			continue // its room is free
		}
		candidates = append(candidates, pod)
	}
	pl.initPolicies(candidates)
	if err := pl.run(ctx, candidates); err != nil {
		return nil, err
	}
	if err := pl.pack(ctx, pods, candidates); err != nil {
		return nil, err
	}
	return &pl.plan, nil
}

// sourceNode is a worse-tier node holding pods that may move.
type sourceNode struct {
	name      string
	rank      int   // tier rank (for pods that do not avoid spot)
	requested int64 // milli-CPU requested, for least-requested-first
	movable   []*v1.Pod
	// blocking counts pods that keep the node from being emptied (not DaemonSet or mirror).
	blocking int
}

func (pl *planner) run(ctx context.Context, pods []*v1.Pod) error {
	bestHealthyRank := map[bool]int{false: pl.sim.Model.NumTiers(), true: pl.sim.Model.NumTiers()}
	for _, n := range pl.targets {
		for _, avoid := range []bool{false, true} {
			bestHealthyRank[avoid] = min(bestHealthyRank[avoid], pl.sim.Ranker.TierRank(pl.classes[n.Name].Tier, avoid))
		}
	}
	sources := map[string]*sourceNode{}
	for _, pod := range pods {
		class, ok := pl.classes[pod.Spec.NodeName]
		if !ok {
			continue
		}
		src := sources[pod.Spec.NodeName]
		if src == nil {
			ni, err := pl.snapshot.Get(pod.Spec.NodeName)
			if err != nil {
				return err
			}
			src = &sourceNode{name: pod.Spec.NodeName, rank: class.Tier, requested: ni.GetRequested().GetMilliCPU()}
			sources[pod.Spec.NodeName] = src
		}
		ours := pod.Spec.SchedulerName == pl.sim.SchedulerName
		avoid := capacity.AvoidsSpot(pod)
		wp := pl.policyOf(pod)
		candidate := pl.sim.Ranker.TierRank(class.Tier, avoid) > bestHealthyRank[avoid]
		if ours && wp != nil {
			// With a capacity policy, the ranking of the pod's replacement decides (policy.go).
			mayMove := pl.mayMoveForPolicy(pod, wp)
			if candidate && !mayMove {
				pl.skip(pod, SkipPolicy) // a better tier exists, but the policy keeps the pod here
			}
			candidate = mayMove
		}
		if ours && candidate {
			if reason, err := protection(pod, pl.now, pl.opts); reason != "" {
				pl.plan.Skips = append(pl.plan.Skips, Skip{Pod: pod, Node: pod.Spec.NodeName, Reason: reason, Invalid: err})
			} else {
				src.movable = append(src.movable, pod)
				continue
			}
		}
		if !isDaemonOrMirror(pod) {
			src.blocking++
		}
	}
	var order []*sourceNode
	for _, s := range sources {
		if len(s.movable) > 0 {
			order = append(order, s)
		}
	}
	// Worst tier first (burst costs most per pod), then least requested: emptying those nodes
	// is what lets the autoscaler remove them.
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.rank != b.rank {
			return a.rank > b.rank
		}
		if a.requested != b.requested {
			return a.requested < b.requested
		}
		return a.name < b.name
	})
	for _, s := range order {
		sort.Slice(s.movable, func(i, j int) bool { return biggerFirst(s.movable[i], s.movable[j]) })
	}
	// Phase 1: nodes that can be emptied entirely, all or nothing.
	done := map[string]bool{}
	for _, s := range order {
		if s.blocking > 0 {
			continue
		}
		emptied, err := pl.empty(ctx, s, pl.tryMove)
		if err != nil {
			return err
		}
		if emptied {
			pl.plan.EmptiedNodes = append(pl.plan.EmptiedNodes, s.name)
			done[s.name] = true
		}
	}
	// Phase 2: whatever else fits, pod by pod (per-pod savings, e.g. burst capacity).
	for _, s := range order {
		if done[s.name] {
			continue
		}
		for _, pod := range s.movable {
			move, reason, err := pl.tryMove(ctx, pod, s.name)
			if err != nil {
				return err
			}
			if move == nil {
				var invalid error
				if reason == SkipBudget {
					invalid = pl.budgetOf(pod).invalid
				}
				pl.plan.Skips = append(pl.plan.Skips, Skip{Pod: pod, Node: pod.Spec.NodeName, Reason: reason, Invalid: invalid})
				continue
			}
			pl.plan.Moves = append(pl.plan.Moves, *move)
		}
	}
	return nil
}

// budgetsAllow tells whether the disruption budgets and the in-flight limit leave room to move
// every movable pod of the node, so that no simulation is spent on a node that cannot be
// emptied within them.
func (pl *planner) budgetsAllow(s *sourceNode) bool {
	if len(s.movable) > pl.inFlightLeft() {
		return false
	}
	perWorkload := map[string]int{}
	for _, pod := range s.movable {
		w, _ := capacity.WorkloadKey(pod)
		perWorkload[w]++
		if pl.evictionsPerWorkload[w]+perWorkload[w] > pl.budgetOf(pod).allowance() {
			return false
		}
	}
	return true
}

// empty plans a move (by try) for every movable pod of the node within the budgets, or none,
// and reports whether it did.
func (pl *planner) empty(ctx context.Context, s *sourceNode, try func(context.Context, *v1.Pod, string) (*Move, string, error)) (bool, error) {
	if !pl.budgetsAllow(s) {
		return false, nil
	}
	moves, err := pl.tryAll(ctx, s, try)
	if err != nil || moves == nil {
		return false, err
	}
	pl.plan.Moves = append(pl.plan.Moves, moves...)
	return true, nil
}

// tryAll plans a move (by try) for every movable pod of the node, or none (undoing
// reservations).
func (pl *planner) tryAll(ctx context.Context, s *sourceNode, try func(context.Context, *v1.Pod, string) (*Move, string, error)) ([]Move, error) {
	var moves []Move
	for _, pod := range s.movable {
		move, _, err := try(ctx, pod, s.name)
		if err != nil {
			return nil, err
		}
		if move == nil {
			for i := len(moves) - 1; i >= 0; i-- {
				if err := pl.undo(moves[i]); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}
		moves = append(moves, *move)
	}
	return moves, nil
}

func (pl *planner) skip(pod *v1.Pod, reason string) {
	pl.plan.Skips = append(pl.plan.Skips, Skip{Pod: pod, Node: pod.Spec.NodeName, Reason: reason})
}

// tryMove finds the node the scheduler would give pod among healthy nodes of a strictly better
// tier, with the pod taken off its node, and reserves the room there. It returns the skip
// reason when the pod stays.
func (pl *planner) tryMove(ctx context.Context, pod *v1.Pod, from string) (*Move, string, error) {
	return pl.planMove(ctx, pod, from, false)
}

// tryPack is tryMove for packing (pack.go): the node may also be of from's band, and a pod
// with a capacity policy may move when its workload's violations do not grow.
func (pl *planner) tryPack(ctx context.Context, pod *v1.Pod, from string) (*Move, string, error) {
	return pl.planMove(ctx, pod, from, true)
}

func (pl *planner) planMove(ctx context.Context, pod *v1.Pod, from string, packing bool) (*Move, string, error) {
	workload, _ := capacity.WorkloadKey(pod)
	switch {
	case pl.inFlightLeft() <= 0:
		return nil, SkipInFlight, nil
	case pl.evictionsPerWorkload[workload] >= pl.budgetOf(pod).allowance():
		return nil, SkipBudget, nil
	}
	memo := fmt.Sprintf("%s|%d|%v", workload, pl.classes[from].Tier, capacity.AvoidsSpot(pod))
	wp := pl.policyOf(pod)
	order := pl.sim.Ranker.ForPod(pod)
	if wp != nil {
		// The policy's decision changes with every move of the workload: no memo.
		order = pl.orderFor(pod, pl.decisionWithout(wp, from))
		memo = ""
	}
	if packing {
		memo = "" // the room found depends on the node being emptied
	}
	if memo != "" && workload != "" && pl.noRoom[memo] {
		return nil, SkipNoBetterRoom, nil
	}
	logger := klog.FromContext(ctx)
	source, err := pl.snapshot.Get(from)
	if err != nil {
		return nil, "", err
	}
	if err := source.RemovePod(logger, pod); err != nil {
		return nil, "", fmt.Errorf("simulating %s leaving %s: %w", klog.KObj(pod), from, err)
	}
	restore := func() { source.AddPodInfo(mustPodInfo(pod)) }
	// The scheduler sees the replacement pod unbound (the NodeName filter would pin it).
	to, err := pl.bestTarget(ctx, simulator.Unbound(pod), from, order, packing)
	if err != nil {
		restore()
		return nil, "", err
	}
	if to == "" {
		restore()
		if memo != "" && workload != "" {
			pl.noRoom[memo] = true
		}
		return nil, SkipNoBetterRoom, nil
	}
	if wp != nil && (packing && !pl.policyMoveKeeps(wp, from, to) || !packing && !pl.policyMoveReduces(pod, wp, from, to)) {
		restore()
		return nil, SkipPolicy, nil
	}
	target, err := pl.snapshot.Get(to)
	if err != nil {
		restore()
		return nil, "", err
	}
	placed := pod.DeepCopy()
	placed.Spec.NodeName = to
	target.AddPodInfo(mustPodInfo(placed))
	pl.evictions++
	pl.evictionsPerWorkload[workload]++
	pl.recordPolicyMove(pod, from, to, 1)
	return &Move{Pod: pod, From: from, FromTier: pl.classes[from].TierName, To: to, ToTier: pl.classes[to].TierName, ForPolicy: wp != nil && !packing, ForPacking: packing}, "", nil
}

// undo releases a planned move's reservation and puts the pod back on its node.
func (pl *planner) undo(m Move) error {
	logger := klog.Background()
	target, err := pl.snapshot.Get(m.To)
	if err != nil {
		return err
	}
	placed := m.Pod.DeepCopy()
	placed.Spec.NodeName = m.To
	if err := target.RemovePod(logger, placed); err != nil {
		return err
	}
	source, err := pl.snapshot.Get(m.From)
	if err != nil {
		return err
	}
	source.AddPodInfo(mustPodInfo(m.Pod))
	clear(pl.noRoom) // room came back
	pl.recordPolicyMove(m.Pod, m.From, m.To, -1)
	pl.evictions--
	workload, _ := capacity.WorkloadKey(m.Pod)
	pl.evictionsPerWorkload[workload]--
	return nil
}

// bestTarget is the node the scheduler would give pod among healthy nodes of a strictly
// better band (for the pod's replacement: its tier order, capacity policy included) than
// from's, or with sameBand of from's band too (from aside), best band first; "" when none
// fits.
func (pl *planner) bestTarget(ctx context.Context, pod *v1.Pod, from string, order ranking.Order, sameBand bool) (string, error) {
	fromBand := order.HealthyBand(pl.classes[from])
	bands := fromBand
	if sameBand {
		bands++
	}
	var better []string
	for _, n := range pl.targets {
		if n.Name != from && order.HealthyBand(pl.classes[n.Name]) < bands {
			better = append(better, n.Name)
		}
	}
	byBand := ranking.GroupByBand(better, bands, func(n string) int { return order.HealthyBand(pl.classes[n]) })
	return pl.session.BestNode(ctx, pod, byBand)
}

func mustPodInfo(pod *v1.Pod) *framework.PodInfo {
	pi, err := framework.NewPodInfo(pod)
	if err != nil {
		// NewPodInfo fails only on unparsable affinity terms, which the API server rejects.
		klog.Background().Error(err, "Building pod info", "pod", klog.KObj(pod))
		pi = &framework.PodInfo{Pod: pod}
	}
	return pi
}

func isDaemonOrMirror(pod *v1.Pod) bool {
	if _, ok := pod.Annotations[mirrorPodAnnotation]; ok {
		return true
	}
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller && (ref.Kind == "DaemonSet" || ref.Kind == "Node") {
			return true
		}
	}
	return false
}

// biggerFirst orders pods by CPU then memory requests, largest first, then by name: big pods
// are placed while room is widest.
func biggerFirst(a, b *v1.Pod) bool {
	ra, rb := podRequests(a), podRequests(b)
	if ra.MilliCPU != rb.MilliCPU {
		return ra.MilliCPU > rb.MilliCPU
	}
	if ra.Memory != rb.Memory {
		return ra.Memory > rb.Memory
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

func podRequests(pod *v1.Pod) framework.Resource {
	var r framework.Resource
	r.Add(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
	return r
}
