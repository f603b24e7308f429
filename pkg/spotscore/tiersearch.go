package spotscore

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"

	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
)

// The tier search: SpotScore looks at the best band (tier x risk, for this pod) first instead
// of filtering and scoring every node, so that the profile's sampling
// (percentageOfNodesToScore) works inside that band and never skips a better-band node.
// docs/design.md ("Tier search") says why it is correct; in short:
//
//   - PreFilter runs node-local checks on every node, best band first: node name, cordon,
//     taints, required node affinity and selector, and resources (counting the requests of
//     nominated pods of equal or higher priority as used, and the room of placeholders the pod
//     may preempt as free). Each is implied by a filter of the profile, so a node failing one
//     fails the filters too.
//   - A pod whose constraints are all node-local ("local" pod) is narrowed, with a
//     PreFilterResult, to the nodes of the best band passing the checks: for it, those checks
//     are what the filters decide, so a node there fits (or fits once placeholders, which the
//     tier gate points at, are preempted).
//   - Any other pod (pod (anti-)affinity, an existing pod's anti-affinity matching it,
//     topology spread, host ports, volumes, resource claims, extended resources) is not
//     narrowed: SpotScore's Filter finds, once per cycle, the best band where a node passes
//     every filter, and rejects the nodes of other bands. Exact, as costly as scoring every node.
//   - Should a narrowed cycle still fail (a filter the checks do not model, such as plugin args
//     of the profile) and the tier gate's preemption not help, SpotScore's PostFilter finds the
//     best node that does fit, nominates the pod there (an autoscaler leaves nominated pods
//     alone), asks the queue to retry the pod at once, and remembers to search every node for
//     it next time.

const (
	tierSearchStateKey = "TierSearch" + Name
	// ErrReasonBetterBand is the Filter reason on nodes of a worse band than the best one with
	// a node that fits.
	ErrReasonBetterBand = "a better capacity tier has a node that fits"
	// widenedPods bounds the memory of pods whose narrowed search failed.
	widenedPods = 10_000
)

// tierSearches counts scheduling cycles by what the tier search did. Four values:
// narrowed (a local pod, to its best band), exact (every node, best fitting band found by the
// filters), none (no node passes the node-local checks: nothing to narrow) and widened (a
// narrowed cycle failed while another node fits: the pod was nominated there and retried).
var tierSearches = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace:      "spot_scheduler",
	Name:           "tier_search_total",
	Help:           "Scheduling cycles of SpotScore's tier search, by outcome (narrowed, exact, none, widened).",
	StabilityLevel: metrics.ALPHA,
}, []string{"outcome"})

func init() {
	legacyregistry.MustRegister(tierSearches)
}

// tierSearchSkipped: simulations that look at every node on purpose (explain's verdicts, the
// rebalancer's own band-by-band search) and the tier gate's fit checks turn the search off
// (ranking.NoTierSearch).
func tierSearchSkipped(state fwk.CycleState) bool {
	return ranking.ModeOf(state).Has(ranking.NoTierSearch)
}

// innerSearch marks the context of SpotScore's own filter runs, in which its Filter stands
// aside.
type innerSearch struct{}

// searchConfig is what the profile allows the tier search, decided once the profile is
// complete (checkProfile).
type searchConfig struct {
	// on: the tier search runs. Off only when SpotScore's Filter is not in the profile (then
	// percentageOfNodesToScore must be 100).
	on bool
	// narrow: local pods may be narrowed to one band (SpotScore's PostFilter is there to
	// catch a narrowing that the filters disagree with).
	narrow bool
	// The node-local checks of the filter plugins the profile has: a check is only made when
	// its filter is enabled, so that a node failing a check surely fails the filters.
	nodeName, unschedulable, taints, affinity, resources bool
	// placeholders: the tier gate is in the profile: placeholder room counts as free for pods
	// that may preempt.
	placeholders bool
	// percentage is the profile's percentageOfNodesToScore (nil: unset), for sampleSize.
	percentage *int32
}

func allChecks() searchConfig {
	return searchConfig{on: true, narrow: true, nodeName: true, unschedulable: true, taints: true, affinity: true, resources: true, placeholders: true}
}

// searchConfigFor reads the profile's filter and post-filter plugins.
func searchConfigFor(filters, postFilters []string, gate string) searchConfig {
	has := sets.New(filters...)
	c := searchConfig{
		on:            has.Has(Name),
		nodeName:      has.Has(names.NodeName),
		unschedulable: has.Has(names.NodeUnschedulable),
		taints:        has.Has(names.TaintToleration),
		affinity:      has.Has(names.NodeAffinity),
		resources:     has.Has(names.NodeResourcesFit),
		placeholders:  has.Has(gate),
	}
	// Narrowing needs SpotScore's PostFilter before DefaultPreemption, which would otherwise
	// preempt pods in the narrowed band while another node fits.
	for _, p := range postFilters {
		if p == Name {
			c.narrow = c.on
			break
		}
		if p == names.DefaultPreemption {
			break
		}
	}
	return c
}

// tierSearchState is the tier search's part of a cycle.
type tierSearchState struct {
	// state is the cycle state PreFilter saw: SpotScore's own filter runs use it, not the
	// clones the framework makes to add nominated pods to one node.
	state fwk.CycleState
	// narrowed: a local pod, narrowed to bestBand; else the exact search runs in Filter.
	narrowed bool
	bestBand int
	// placeholderRoom: narrowed to the nodes where the pod fits once placeholders are
	// preempted (none of bestBand fits without).
	placeholderRoom bool
	// candidates are the nodes passing the node-local checks, by band (exact search).
	candidates [][]fwk.NodeInfo
	band       func(*v1.Node) int

	once sync.Once
	// exactBand is the best band with a node passing every filter; math.MaxInt if none.
	exactBand int
}

// Clone shares the state: what Filter completes once holds for the whole cycle.
func (s *tierSearchState) Clone() fwk.StateData { return s }

// podRequest is what the resource check compares: the pod's requests, as NodeResourcesFit
// computes them.
type podRequest struct {
	ranking.Requests
	// extended: the pod requests a resource other than cpu, memory and ephemeral storage.
	extended bool
}

func requestOf(pod *v1.Pod) podRequest {
	r, extended := ranking.RequestsOf(pod)
	return podRequest{Requests: r, extended: extended}
}

// room is free capacity on a node.
type room struct {
	milliCPU, memory, ephemeralStorage int64
	pods                               int
}

func (r *room) add(p ranking.Requests, sign int64) {
	r.milliCPU += sign * p.MilliCPU
	r.memory += sign * p.Memory
	r.ephemeralStorage += sign * p.EphemeralStorage
	r.pods += int(sign)
}

// fits is NodeResourcesFit's comparison.
func (r room) fits(p ranking.Requests) bool {
	if r.pods < 1 {
		return false
	}
	return (p.MilliCPU == 0 || p.MilliCPU <= r.milliCPU) &&
		(p.Memory == 0 || p.Memory <= r.memory) &&
		(p.EphemeralStorage == 0 || p.EphemeralStorage <= r.ephemeralStorage)
}

// placeholders is the profile's placeholder-room index (nil without a placeholder rule).
func (pl *SpotScore) placeholders() *ranking.PlaceholderIndex {
	return pl.shared.Get(pl.handle).Placeholders
}

type fit int8

const (
	fitsNot fit = iota
	// fitsPreempting: only once placeholders of lower priority are preempted.
	fitsPreempting
	fitsFree
)

// localCheck is the node-local checks for one pod in one cycle.
type localCheck struct {
	pl           *SpotScore
	cfg          searchConfig
	pod          *v1.Pod
	priority     int32
	request      podRequest
	affinity     nodeaffinity.RequiredNodeAffinity
	tolerateCord bool
	// preempts: placeholder room counts as free; placeholders is where it is.
	preempts     bool
	placeholders *ranking.PlaceholderIndex
}

var unschedulableTaint = v1.Taint{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}

func (pl *SpotScore) newLocalCheck(pod *v1.Pod, request podRequest) *localCheck {
	cfg := pl.search
	shared := pl.shared.Get(pl.handle)
	return &localCheck{
		pl: pl, cfg: cfg, pod: pod, priority: corev1helpers.PodPriority(pod), request: request,
		affinity:     nodeaffinity.GetRequiredNodeAffinity(pod),
		tolerateCord: corev1helpers.TolerationsTolerateTaint(pod.Spec.Tolerations, &unschedulableTaint),
		preempts:     cfg.placeholders && ranking.MayTakePlaceholderRoom(pod, shared.IsPlaceholder),
		placeholders: shared.Placeholders,
	}
}

func noScheduleOrExecute(t *v1.Taint) bool {
	return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
}

// fit runs the node-local checks on one node.
func (c *localCheck) fit(ni fwk.NodeInfo) fit {
	node := ni.Node()
	if node == nil {
		return fitsNot
	}
	if c.cfg.nodeName && c.pod.Spec.NodeName != "" && c.pod.Spec.NodeName != node.Name {
		return fitsNot
	}
	if c.cfg.unschedulable && node.Spec.Unschedulable && !c.tolerateCord {
		return fitsNot
	}
	if c.cfg.taints {
		if _, untolerated := corev1helpers.FindMatchingUntoleratedTaint(node.Spec.Taints, c.pod.Spec.Tolerations, noScheduleOrExecute); untolerated {
			return fitsNot
		}
	}
	if c.cfg.affinity {
		if ok, err := c.affinity.Match(node); err != nil || !ok {
			return fitsNot
		}
	}
	if !c.cfg.resources {
		return fitsFree
	}
	alloc, used := ni.GetAllocatable(), ni.GetRequested()
	free := room{
		milliCPU:         alloc.GetMilliCPU() - used.GetMilliCPU(),
		memory:           alloc.GetMemory() - used.GetMemory(),
		ephemeralStorage: alloc.GetEphemeralStorage() - used.GetEphemeralStorage(),
		pods:             alloc.GetAllowedPodNumber() - len(ni.GetPods()),
	}
	// The filters count nominated pods of equal or higher priority as running.
	for _, p := range c.pl.handle.NominatedPodsForNode(node.Name) {
		if p.GetPod().UID != c.pod.UID && corev1helpers.PodPriority(p.GetPod()) >= c.priority {
			r, _ := ranking.RequestsOf(p.GetPod())
			free.add(r, -1)
		}
	}
	if free.fits(c.request.Requests) {
		return fitsFree
	}
	if !c.preempts {
		return fitsNot
	}
	for _, ph := range c.placeholders.Rooms(ni) {
		if ph.Priority < c.priority {
			free.add(ph.Requests, 1)
		}
	}
	if free.fits(c.request.Requests) {
		return fitsPreempting
	}
	return fitsNot
}

// nodeLocal reports whether the filters' verdict for the pod on a node depends on that node
// alone, through what the node-local checks look at.
func (pl *SpotScore) nodeLocal(pod *v1.Pod, request podRequest) bool {
	if request.extended || len(pod.Spec.ResourceClaims) > 0 {
		return false
	}
	if a := pod.Spec.Affinity; a != nil {
		if a.PodAffinity != nil && len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			return false
		}
		if a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			return false
		}
	}
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == v1.DoNotSchedule {
			return false
		}
	}
	for _, v := range pod.Spec.Volumes {
		s := v.VolumeSource
		if s.EmptyDir == nil && s.ConfigMap == nil && s.Secret == nil && s.Projected == nil && s.DownwardAPI == nil {
			return false // a claim, an inline disk, a hostPath: volume filters decide
		}
	}
	for _, containers := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range containers {
			for _, p := range containers[i].Ports {
				if p.HostPort > 0 {
					return false
				}
			}
		}
	}
	return !pl.matchesExistingAntiAffinity(pod)
}

// matchesExistingAntiAffinity: a running pod's required anti-affinity term selects the pod's
// labels (namespaces left aside, which only errs towards the exact search).
func (pl *SpotScore) matchesExistingAntiAffinity(pod *v1.Pod) bool {
	withAnti, err := pl.handle.SnapshotSharedLister().NodeInfos().HavePodsWithRequiredAntiAffinityList()
	if err != nil {
		return true
	}
	for _, ni := range withAnti {
		for _, p := range ni.GetPodsWithRequiredAntiAffinity() {
			for _, term := range p.GetRequiredAntiAffinityTerms() {
				if term.Selector == nil || term.Selector.Matches(labels.Set(pod.Labels)) {
					return true
				}
			}
		}
	}
	return false
}

// searchTiers is PreFilter's part of the tier search (see the top of this file).
func (pl *SpotScore) searchTiers(ctx context.Context, cycleState fwk.CycleState, s *preFilterState, pod *v1.Pod, nodes []fwk.NodeInfo) *framework.PreFilterResult {
	if !pl.search.on || tierSearchSkipped(cycleState) {
		return nil
	}
	request := requestOf(pod)
	narrow := pl.search.narrow && pl.nodeLocal(pod, request) && !pl.wasWidened(pod.UID)
	bandOf := func(n *v1.Node) int { return s.order.Band(pl.model.Classify(n)) }
	byBand := s.classes.ByBand(s.order)
	check := pl.newLocalCheck(pod, request)
	if narrow {
		return pl.narrowToBestBand(ctx, cycleState, pod, nodes, byBand, check, bandOf)
	}
	fits := make([]fit, len(nodes))
	best := -1
	for b, idx := range byBand {
		if len(idx) == 0 {
			continue
		}
		var any atomic.Bool
		pl.handle.Parallelizer().Until(ctx, len(idx), func(j int) {
			if f := check.fit(nodes[idx[j]]); f != fitsNot {
				fits[idx[j]] = f
				any.Store(true)
			}
		}, Name)
		if any.Load() && best < 0 {
			best = b
		}
	}
	if best < 0 {
		tierSearches.WithLabelValues("none").Inc()
		return nil // fits nowhere: every node goes through the filters, preemption sees all
	}
	tierSearches.WithLabelValues("exact").Inc()
	ts := &tierSearchState{state: cycleState, bestBand: best, band: bandOf, exactBand: math.MaxInt}
	ts.candidates = make([][]fwk.NodeInfo, len(byBand))
	for b, idx := range byBand {
		for _, i := range idx {
			if fits[i] != fitsNot {
				ts.candidates[b] = append(ts.candidates[b], nodes[i])
			}
		}
	}
	cycleState.Write(tierSearchStateKey, ts)
	return nil
}

// narrowToBestBand finds the best band with a node passing the node-local checks and returns
// the nodes to narrow to: a window of the band, from the first node where the pod fits without
// preempting (found from a start that moves on every cycle, as the scheduler's own search does,
// so that every node of the band gets its turn) and up to sampleSize nodes on, never back to the
// nodes already found not to fit. Only the nodes up to the first fit are checked: the window's
// other nodes go through the filters, and the profile's sampling stops there once it has found
// its share, so checking them here would only do the filters' work twice. When no node of the
// band fits without preempting, every node of the band that fits once its placeholders are
// preempted (PlaceholderPreemption then chooses among all of them, as without the tier search).
func (pl *SpotScore) narrowToBestBand(ctx context.Context, cycleState fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo, byBand [][]int, check *localCheck, bandOf func(*v1.Node) int) *framework.PreFilterResult {
	existing := 0
	for _, idx := range byBand {
		existing += len(idx)
	}
	limit := sampleSize(pl.search.percentage, existing)
	for b, idx := range byBand {
		if len(idx) == 0 {
			continue
		}
		start := int(pl.nextStart.Load() % uint64(len(idx)))
		at := func(k int) fwk.NodeInfo { return nodes[idx[(start+k)%len(idx)]] }
		first, fits := pl.firstFit(ctx, check, len(idx), at)
		ts := &tierSearchState{state: cycleState, bestBand: b, band: bandOf, exactBand: math.MaxInt, narrowed: true}
		var names sets.Set[string]
		if first >= 0 {
			n := min(limit, len(idx)-first)
			names = make(sets.Set[string], n)
			for k := first; k < first+n; k++ {
				names.Insert(at(k).Node().Name)
			}
			pl.nextStart.Add(uint64(first + n))
		} else {
			for k, f := range fits {
				if f == fitsPreempting {
					if names == nil {
						names = sets.New[string]()
					}
					names.Insert(at(k).Node().Name)
				}
			}
			if names == nil {
				continue
			}
			ts.placeholderRoom = true
		}
		cycleState.Write(tierSearchStateKey, ts)
		tierSearches.WithLabelValues("narrowed").Inc()
		klog.FromContext(ctx).V(5).Info("Tier search narrowed the nodes", "pod", klog.KObj(pod), "band", b, "nodes", names.Len())
		return &framework.PreFilterResult{NodeNames: names}
	}
	tierSearches.WithLabelValues("none").Inc()
	return nil // fits nowhere: every node goes through the filters, preemption sees all
}

// firstFit runs the node-local checks on the n nodes at(0), at(1), ... until one fits without
// preempting, and returns its position (-1 if none) and the verdicts so far (all n when none
// fits freely). The first node alone first: in a band with room it most often fits; then
// growing chunks in parallel.
func (pl *SpotScore) firstFit(ctx context.Context, check *localCheck, n int, at func(int) fwk.NodeInfo) (int, []fit) {
	fits := make([]fit, n)
	for scanned, chunk := 0, 1; scanned < n; scanned, chunk = scanned+chunk, chunk*8 {
		chunk = min(chunk, n-scanned)
		from := scanned
		if chunk == 1 {
			fits[from] = check.fit(at(from))
		} else {
			pl.handle.Parallelizer().Until(ctx, chunk, func(j int) { fits[from+j] = check.fit(at(from + j)) }, Name)
		}
		for k := from; k < from+chunk; k++ {
			if fits[k] == fitsFree {
				return k, fits
			}
		}
	}
	return -1, fits
}

// sampleSize is how many feasible nodes kube-scheduler looks for before it stops filtering
// (its numFeasibleNodesToFind) among n nodes, for the profile's percentageOfNodesToScore (unset
// or 0: adaptive, 50 % less 1 % per 125 nodes, at least 5 %; never fewer than 100 nodes). The
// tier search hands the scheduler no more candidates than that: the share of the cluster the
// profile would look at without tiers, all of them in the best band.
func sampleSize(percentage *int32, n int) int {
	const minNodes, minPercentage = 100, 5
	if n < minNodes {
		return n
	}
	p := 0
	if percentage != nil {
		p = int(*percentage)
	}
	if p == 0 {
		p = max(50-n/125, minPercentage)
	}
	return max(n*p/100, minNodes)
}

// Filter keeps a pod that was not narrowed to the best band with a node passing every filter.
// It finds that band once per cycle, on its first call.
func (pl *SpotScore) Filter(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo) *fwk.Status {
	if ctx.Value(innerSearch{}) != nil || tierSearchSkipped(state) {
		return nil
	}
	ts, err := readState[*tierSearchState](state, tierSearchStateKey)
	if err != nil || ts.narrowed || nodeInfo.Node() == nil {
		return nil
	}
	ts.once.Do(func() {
		inner := context.WithValue(ctx, innerSearch{}, true)
		for b := ts.bestBand; b < len(ts.candidates); b++ {
			if pl.anyFits(inner, ts.state, pod, ts.candidates[b]) != nil {
				ts.exactBand = b
				return
			}
		}
	})
	if ts.exactBand != math.MaxInt && ts.band(nodeInfo.Node()) != ts.exactBand {
		return fwk.NewStatus(fwk.Unschedulable, ErrReasonBetterBand)
	}
	return nil
}

// anyFits returns a node of nodes passing every filter (nominated pods counted), nil if none.
// The first node alone first: most often it fits, and a parallel start would filter a node
// per worker.
func (pl *SpotScore) anyFits(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) fwk.NodeInfo {
	if len(nodes) == 0 {
		return nil
	}
	if pl.handle.RunFilterPluginsWithNominatedPods(ctx, state, pod, nodes[0]).IsSuccess() {
		return nodes[0]
	}
	rest := nodes[1:]
	var found atomic.Int64
	found.Store(-1)
	pl.handle.Parallelizer().Until(ctx, len(rest), func(i int) {
		if found.Load() >= 0 {
			return
		}
		if pl.handle.RunFilterPluginsWithNominatedPods(ctx, state, pod, rest[i]).IsSuccess() {
			found.CompareAndSwap(-1, int64(i))
		}
	}, Name)
	if i := found.Load(); i >= 0 {
		return rest[i]
	}
	return nil
}

// PostFilter catches a narrowed cycle that failed although a node outside the narrowed band
// (or a node the checks passed) fits, once the tier gate's placeholder preemption (before it
// in the profile) found nothing to do: it nominates the pod on the best node that fits, so
// that no autoscaler takes it for unschedulable, has the queue retry it at once, and makes
// the next attempt search every node. Otherwise it leaves the pod to the next PostFilter.
func (pl *SpotScore) PostFilter(ctx context.Context, state fwk.CycleState, pod *v1.Pod, _ framework.NodeToStatusReader) (*framework.PostFilterResult, *fwk.Status) {
	ts, err := readState[*tierSearchState](state, tierSearchStateKey)
	if err != nil || !ts.narrowed || tierSearchSkipped(state) {
		return nil, fwk.NewStatus(fwk.Unschedulable)
	}
	all, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	all = slices.DeleteFunc(slices.Clone(all), func(ni fwk.NodeInfo) bool { return ni.Node() == nil })
	byBand := ranking.GroupByBand(all, pl.ranker.NumBands(), func(ni fwk.NodeInfo) int { return ts.band(ni.Node()) })
	inner := context.WithValue(ctx, innerSearch{}, true)
	for _, nodes := range byBand {
		ni := pl.anyFits(inner, ts.state, pod, nodes)
		if ni == nil {
			continue
		}
		pl.widen(pod.UID)
		tierSearches.WithLabelValues("widened").Inc()
		klog.FromContext(ctx).V(2).Info("Tier search narrowed to nodes the filters reject; nominating the pod on a node that fits and retrying with every node",
			"pod", klog.KObj(pod), "band", ts.bestBand, "node", klog.KObj(ni.Node()))
		pl.handle.Activate(klog.FromContext(ctx), map[string]*v1.Pod{string(pod.UID): pod})
		return framework.NewPostFilterResultWithNominatedNode(ni.Node().Name), fwk.NewStatus(fwk.Success)
	}
	return nil, fwk.NewStatus(fwk.Unschedulable)
}

// widen remembers, by UID, a pod whose narrowed search failed: its next cycles take the
// exact search. The LRU cache is bounded and safe for concurrent use.
func (pl *SpotScore) widen(uid types.UID) { pl.widened.Add(uid, struct{}{}) }

func (pl *SpotScore) wasWidened(uid types.UID) bool {
	_, ok := pl.widened.Get(uid)
	return ok
}
