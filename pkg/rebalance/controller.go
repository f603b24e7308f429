package rebalance

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	"k8s.io/utils/clock"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// ControllerOptions configure the rebalancer's loop.
type ControllerOptions struct {
	Options
	// Interval between periodic passes.
	Interval time.Duration
	// Debounce: an early pass runs this long after room appears on a better tier.
	Debounce time.Duration
	// ValidationDelay: the plan is computed again after this long, on fresh state, and only
	// moves found both times are made.
	ValidationDelay time.Duration
	// EvictionWorkers: evictions issued at once (the client's QPS limit applies on top).
	EvictionWorkers int
	// DryRun prints the plan and makes no mutating call.
	DryRun bool
	// PlanOutput receives the dry-run plan (os.Stdout in the binary).
	PlanOutput io.Writer
	// Buffer configures the failback buffer (failbackbuffer.go).
	Buffer BufferOptions
}

// DefaultControllerOptions are the defaults of the rebalancer binary.
func DefaultControllerOptions() ControllerOptions {
	return ControllerOptions{Options: DefaultOptions(), Interval: 60 * time.Second, Debounce: 5 * time.Second, ValidationDelay: 2 * time.Second,
		EvictionWorkers: DefaultEvictionWorkers, Buffer: DefaultBufferOptions()}
}

// DefaultEvictionWorkers: enough concurrent evictions that the client's QPS limit, not the
// round trips, paces a large failback.
const DefaultEvictionWorkers = 16

// waveDelay gathers the replacements turning Ready into one pass: the next wave of a workload
// held back by its disruption budget starts this long after the first of them.
const waveDelay = time.Second

const passKey = "pass"

// Controller runs rebalancing passes: periodically and shortly after better-tier room appears.
type Controller struct {
	sim    *simulator.Simulator
	client kubernetes.Interface
	opts   ControllerOptions
	clock  clock.Clock
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	// replicaSets and statefulSets give workloads' desired replicas (the disruption budgets).
	replicaSets  appslisters.ReplicaSetLister
	statefulSets appslisters.StatefulSetLister
	synced       []cache.InformerSynced
	queue        workqueue.TypedDelayingInterface[string]
	recorder     events.EventRecorder

	// evicted tracks the controller's evictions until their workloads recover (disruptions.go).
	evicted *evictionLog
	// buffer asks the autoscaler for better-tier room after a failover (failbackbuffer.go).
	buffer *failbackBuffer

	// packReleased: nodes whose packing taint was removed while they held pods, and when
	// (packtaint.go); only the pass loop reads and writes it.
	packReleased map[string]time.Time

	// Liveness (liveness.go): whether the loop runs, and when it last made progress.
	liveMu       sync.Mutex
	running      bool
	lastProgress time.Time
}

// NewController wires the controller to informers of factory (start the factory afterwards).
func NewController(sim *simulator.Simulator, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder events.EventRecorder, opts ControllerOptions, clk clock.WithTicker) (*Controller, error) {
	initMetrics(sim.Model.TierNames())
	initBufferMetrics()
	c := &Controller{
		sim:          sim,
		client:       client,
		opts:         opts,
		clock:        clk,
		pods:         factory.Core().V1().Pods().Lister(),
		nodes:        factory.Core().V1().Nodes().Lister(),
		replicaSets:  factory.Apps().V1().ReplicaSets().Lister(),
		statefulSets: factory.Apps().V1().StatefulSets().Lister(),
		queue:        workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{Name: "rebalance", Clock: clk}),
		recorder:     recorder,
		evicted:      newEvictionLog(),
		packReleased: map[string]time.Time{},
	}
	if c.opts.EvictionWorkers < 1 {
		c.opts.EvictionWorkers = 1
	}
	if c.opts.Buffer.MaxPods < 1 {
		c.opts.Buffer.MaxPods = DefaultBufferMaxPods
	}
	c.buffer = newFailbackBuffer(c, c.opts.Buffer, clk)
	nodeInformer := factory.Core().V1().Nodes().Informer()
	podInformer := factory.Core().V1().Pods().Informer()
	c.synced = []cache.InformerSynced{nodeInformer.HasSynced, podInformer.HasSynced,
		factory.Apps().V1().ReplicaSets().Informer().HasSynced, factory.Apps().V1().StatefulSets().Informer().HasSynced}
	if _, err := nodeInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { c.nodeChanged(nil, obj) },
		UpdateFunc: c.nodeChanged,
	}); err != nil {
		return nil, err
	}
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj interface{}) {
			p, ok := newObj.(*v1.Pod)
			if !ok {
				return
			}
			// A pod that finished or started terminating frees its room.
			if p.Spec.NodeName != "" && (p.DeletionTimestamp != nil || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed) {
				c.roomMayHaveAppeared(p.Spec.NodeName)
			}
			// A replacement turning Ready frees its workload's disruption budget: the next wave.
			if old, ok := oldObj.(*v1.Pod); ok && !podutil.IsPodReady(old) && podutil.IsPodReady(p) && c.evicted.waitingFor(p) {
				c.queue.AddAfter(passKey, waveDelay)
			}
		},
		DeleteFunc: func(obj interface{}) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if p, ok := obj.(*v1.Pod); ok && p.Spec.NodeName != "" {
				c.roomMayHaveAppeared(p.Spec.NodeName)
			}
		},
	}); err != nil {
		return nil, err
	}
	// The failback buffer follows the profile's pods (failovers, moves, preempted
	// placeholders) and the nodes (a better tier's room appearing or going).
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.buffer.podChanged,
		UpdateFunc: func(_, newObj interface{}) { c.buffer.podChanged(newObj) },
		DeleteFunc: c.buffer.podChanged,
	}); err != nil {
		return nil, err
	}
	if _, err := nodeInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(interface{}) { c.buffer.trigger() },
		UpdateFunc: func(oldObj, newObj interface{}) {
			old, ok1 := oldObj.(*v1.Node)
			node, ok2 := newObj.(*v1.Node)
			if ok1 && ok2 && (nodeReady(old) != nodeReady(node) || c.sim.Model.Classify(old) != c.sim.Model.Classify(node)) {
				c.buffer.trigger()
			}
		},
		DeleteFunc: func(interface{}) { c.buffer.trigger() },
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// nodeChanged triggers an early pass when a healthy node joins, becomes usable (Ready, or a
// Ready node losing a taint that kept pods off: a new node turns Ready before its start-up
// taints, node.kubernetes.io/not-ready and karpenter.sh/unregistered, are gone), loses its
// interruption signal or cordon, or changes tier.
func (c *Controller) nodeChanged(oldObj, newObj interface{}) {
	node, ok := newObj.(*v1.Node)
	if !ok {
		return
	}
	class := c.sim.Model.Classify(node)
	if class.AtRisk || class.Tier == c.sim.Model.NumTiers()-1 {
		return
	}
	old, _ := oldObj.(*v1.Node)
	if old == nil || becameUsable(old, node) || c.sim.Model.Classify(old) != class {
		c.queue.AddAfter(passKey, c.opts.Debounce)
	}
}

// becameUsable reports whether pods may fit on node where they could not on old: it turned
// Ready, or, Ready, lost a NoSchedule or NoExecute taint or its cordon.
func becameUsable(old, node *v1.Node) bool {
	if !nodeReady(node) {
		return false
	}
	if !nodeReady(old) || (old.Spec.Unschedulable && !node.Spec.Unschedulable) {
		return true
	}
	for _, t := range old.Spec.Taints {
		if t.Effect != v1.TaintEffectNoSchedule && t.Effect != v1.TaintEffectNoExecute {
			continue
		}
		if !slices.ContainsFunc(node.Spec.Taints, func(cur v1.Taint) bool { return cur.MatchTaint(&t) }) {
			return true
		}
	}
	return false
}

func (c *Controller) roomMayHaveAppeared(nodeName string) {
	node, err := c.nodes.Get(nodeName)
	if err != nil {
		return
	}
	class := c.sim.Model.Classify(node)
	if !class.AtRisk && class.Tier < c.sim.Model.NumTiers()-1 {
		c.queue.AddAfter(passKey, c.opts.Debounce)
	}
}

func nodeReady(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// Run passes until ctx ends: one at start, then every Interval and after each trigger.
func (c *Controller) Run(ctx context.Context) {
	defer c.queue.ShutDown()
	c.loopStarted()
	defer c.loopStopped()
	logger := klog.FromContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	go c.buffer.run(ctx)
	c.queue.Add(passKey)
	for {
		key, shutdown := c.queue.Get()
		if shutdown {
			return
		}
		if _, err := c.recoveredPass(ctx); err != nil {
			if ctx.Err() == nil {
				logger.Error(err, "Rebalance pass failed")
			}
		} else {
			c.passCompleted()
		}
		c.queue.Done(key)
		c.queue.AddAfter(passKey, c.opts.Interval)
	}
}

// recoveredPass is Pass, with a panic turned into an error that carries its stack: one pass
// meeting a cluster state no one foresaw must not end the loop (failback would stop for every
// workload) nor end it silently; the next pass starts from fresh state.
func (c *Controller) recoveredPass(ctx context.Context) (res *PassResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			passPanicsTotal.Inc()
			err = fmt.Errorf("rebalance pass panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return c.Pass(ctx)
}

// PassResult tells what a pass did.
type PassResult struct {
	Plan    *Plan
	Evicted []Move
	// Dropped are planned moves not made, with the reason (plan changed, PDB, eviction error).
	Dropped []Skip
}

// Pass plans on the informers' state, validates the plan again after ValidationDelay, and
// evicts (or, in dry run, prints) the moves that held both times.
func (c *Controller) Pass(ctx context.Context) (*PassResult, error) {
	logger := klog.FromContext(ctx)
	result := "error"
	defer func() { passesTotal.WithLabelValues(result).Inc() }()

	if c.opts.PackWithinTier && !c.opts.DryRun {
		nodes, pods, err := c.list()
		if err != nil {
			return nil, err
		}
		c.releasePackingTaints(ctx, nodes, pods)
	}
	plan, err := c.plan(ctx)
	if err != nil {
		return nil, err
	}
	c.recordPlan(plan)
	res := &PassResult{Plan: plan}
	if len(plan.Moves) == 0 {
		result = "ok"
		logger.V(2).Info("Rebalance pass: nothing to move", "skipped", plan.SkipCounts())
		return res, nil
	}
	if c.opts.DryRun {
		result = "ok"
		c.printPlan(plan)
		logger.Info("Rebalance pass (dry run): no pod evicted", "moves", len(plan.Moves), "emptiedNodes", plan.EmptiedNodes)
		return res, nil
	}
	// Re-validate: plan again on fresh state and keep only the moves found both times.
	if c.opts.ValidationDelay > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.clock.After(c.opts.ValidationDelay):
		}
	}
	again, err := c.plan(ctx)
	if err != nil {
		return nil, err
	}
	c.evicted.waitFor(again)
	confirmed := map[string]Move{}
	for _, m := range again.Moves {
		confirmed[string(m.Pod.UID)] = m
	}
	var todo []Move
	for _, m := range plan.Moves {
		fresh, ok := confirmed[string(m.Pod.UID)]
		if !ok {
			res.Dropped = append(res.Dropped, Skip{Pod: m.Pod, Node: m.From, Reason: SkipChanged})
			continue
		}
		todo = append(todo, fresh)
	}
	todo, res.Dropped = c.taintPackedNodes(ctx, todo, res.Dropped)
	// Concurrently: within the budgets both plans respected, a thousand moves take the
	// client's QPS limit, not a thousand round trips in a row.
	reasons := make([]string, len(todo))
	workqueue.ParallelizeUntil(ctx, c.opts.EvictionWorkers, len(todo), func(i int) {
		reasons[i] = c.evict(ctx, todo[i])
	})
	for i, m := range todo {
		if reasons[i] != "" {
			res.Dropped = append(res.Dropped, Skip{Pod: m.Pod, Node: m.From, Reason: reasons[i]})
			continue
		}
		res.Evicted = append(res.Evicted, m)
	}
	for _, d := range res.Dropped {
		skipsTotal.WithLabelValues(d.Reason).Inc()
	}
	result = "ok"
	logger.Info("Rebalance pass", "planned", len(plan.Moves), "evicted", len(res.Evicted), "dropped", len(res.Dropped), "emptiedNodes", plan.EmptiedNodes, "packedNodes", again.PackedNodes)
	return res, nil
}

// list returns the informers' nodes and pods.
func (c *Controller) list() ([]*v1.Node, []*v1.Pod, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, nil, err
	}
	pods, err := c.pods.List(labels.Everything())
	return nodes, pods, err
}

func (c *Controller) plan(ctx context.Context) (*Plan, error) {
	nodes, pods, err := c.list()
	if err != nil {
		return nil, err
	}
	start := c.clock.Now()
	opts := c.opts.Options
	opts.packBackoff = c.packBackoff
	plan, err := PlanMoves(ctx, c.sim, nodes, pods, c.clock.Now(), opts, c.disruptions(pods))
	planDuration.Observe(c.clock.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	c.recordPodsPerTier(nodes, pods)
	recordPolicies(c.sim, nodes, pods)
	c.buffer.observePlan(nodes, pods, plan)
	return plan, nil
}

func (c *Controller) recordPlan(plan *Plan) {
	plannedMoves.Set(float64(len(plan.Moves)))
	for reason, n := range plan.SkipCounts() {
		skipsTotal.WithLabelValues(reason).Add(float64(n))
	}
	for _, s := range plan.Skips {
		if s.Invalid != nil {
			c.recorder.Eventf(s.Pod, nil, v1.EventTypeWarning, wellknown.InvalidValueReason, "Rebalance", "%s", s.Invalid.Error())
		}
	}
}

func (c *Controller) recordPodsPerTier(nodes []*v1.Node, pods []*v1.Pod) {
	classes := make(map[string]capacity.Class, len(nodes))
	for _, n := range nodes {
		classes[n.Name] = c.sim.Model.Classify(n)
	}
	counts := map[capacity.Class]int{}
	for _, p := range pods {
		if p.Spec.SchedulerName != c.sim.SchedulerName || p.Status.Phase != v1.PodRunning {
			continue
		}
		if cl, ok := classes[p.Spec.NodeName]; ok {
			counts[capacity.Class{TierName: cl.TierName, AtRisk: cl.AtRisk}]++
		}
	}
	for _, tier := range c.sim.Model.TierNames() {
		for _, risk := range []bool{false, true} {
			podsPerTier.WithLabelValues(tier, strconv.FormatBool(risk)).Set(float64(counts[capacity.Class{TierName: tier, AtRisk: risk}]))
		}
	}
}

// evict re-checks the pod and the target against the API server, then evicts through the
// Eviction API with the pod's UID as precondition, so a pod recreated under the same name is
// never hit (the API server answers Conflict: the move is stale and dropped). It returns the
// reason when the pod is left alone.
//
// The eviction deliberately carries no resourceVersion precondition: the API server charges
// the PodDisruptionBudget (disruptionsAllowed-1, the pod entered in status.disruptedPods)
// before it checks delete preconditions, so a resourceVersion that moved in the meantime
// (kwok or the kubelet writing status, the deletion-cost controller re-ranking) would fail
// the delete yet leave the budget spent and the pod counted unhealthy for the disruption
// controller's two-minute timeout, blocking every eviction under that PDB. The fresh read
// just before the call is the re-validation; its window is one round trip.
func (c *Controller) evict(ctx context.Context, m Move) string {
	logger := klog.FromContext(ctx)
	pod, err := c.client.CoreV1().Pods(m.Pod.Namespace).Get(ctx, m.Pod.Name, metav1.GetOptions{})
	if err != nil || pod.UID != m.Pod.UID || pod.Spec.NodeName != m.From || isProtected(pod, c.clock.Now(), c.opts.Options) {
		return SkipChanged
	}
	target, err := c.client.CoreV1().Nodes().Get(ctx, m.To, metav1.GetOptions{})
	if err != nil {
		return SkipChanged
	}
	class := c.sim.Model.Classify(target)
	avoid := capacity.AvoidsSpot(pod)
	source, err := c.nodes.Get(m.From)
	if m.ForPacking {
		// Tainted just now (taintPackedNodes): the informer's copy may not show it yet.
		source, err = c.client.CoreV1().Nodes().Get(ctx, m.From, metav1.GetOptions{})
	}
	// A policy move may go to a worse or the same tier (pkg/rebalance/policy.go): both plans
	// found it reducing the potential; a packing move goes to the same tier or a better one,
	// from a node that carries the packing taint (pack.go); the target must still be healthy.
	if err != nil || class.AtRisk {
		return SkipChanged
	}
	toRank, fromRank := c.sim.Ranker.TierRank(class.Tier, avoid), c.sim.Ranker.TierRank(c.sim.Model.Classify(source).Tier, avoid)
	switch {
	case m.ForPacking && (toRank > fromRank || !HasPackingTaint(source)):
		return SkipChanged
	case !m.ForPolicy && !m.ForPacking && toRank >= fromRank:
		return SkipChanged
	}
	uid := pod.UID
	eviction := &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}},
	}
	// Recorded before the call: a budget counts the pod as unavailable from the moment it may be.
	c.evicted.add(pod)
	if err := c.client.PolicyV1().Evictions(pod.Namespace).Evict(ctx, eviction); err != nil {
		c.evicted.remove(pod)
		switch {
		case apierrors.IsTooManyRequests(err):
			logger.V(2).Info("Eviction refused by a PodDisruptionBudget; retrying on a later pass", "pod", klog.KObj(pod))
			return SkipPDB
		case apierrors.IsConflict(err), apierrors.IsNotFound(err):
			return SkipChanged
		default:
			logger.Error(err, "Evicting pod", "pod", klog.KObj(pod))
			return SkipEvictionFailure
		}
	}
	evictionsTotal.WithLabelValues(m.FromTier, m.ToTier).Inc()
	why, purpose := "", "failback"
	switch {
	case m.ForPolicy:
		why, purpose = " (capacity policy)", "capacity-policy"
	case m.ForPacking:
		why, purpose = " (packing: node "+m.From+" empties)", "packing"
	}
	c.recorder.Eventf(pod, nil, v1.EventTypeNormal, "Rebalanced", "Evict",
		"Moving from %s node %s to %s: node %s has room%s", m.FromTier, m.From, m.ToTier, m.To, why)
	// One message for every move; purpose tells failback from the capacity policy and packing,
	// which move within a tier.
	logger.Info("Evicted pod to move it", "purpose", purpose, "pod", klog.KObj(pod), "fromTier", m.FromTier, "fromNode", m.From, "toTier", m.ToTier, "toNode", m.To)
	return ""
}

// printPlan writes the plan as a table.
func (c *Controller) printPlan(plan *Plan) {
	if c.opts.PlanOutput == nil {
		return
	}
	PrintPlan(c.opts.PlanOutput, plan)
}

// PrintPlan writes a plan as a table: moves, then skipped pods.
func PrintPlan(out io.Writer, plan *Plan) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POD\tFROM NODE\tFROM TIER\tTO NODE\tTO TIER")
	for _, m := range plan.Moves {
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%s\n", m.Pod.Namespace, m.Pod.Name, m.From, m.FromTier, m.To, m.ToTier)
	}
	if len(plan.Skips) > 0 {
		fmt.Fprintln(w, "\nSTAYS\tNODE\tREASON")
		for _, s := range plan.Skips {
			fmt.Fprintf(w, "%s/%s\t%s\t%s\n", s.Pod.Namespace, s.Pod.Name, s.Node, s.Reason)
		}
	}
	_ = w.Flush()
}
