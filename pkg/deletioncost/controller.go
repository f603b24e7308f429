// Package deletioncost is the scale-down bias: a controller that keeps
// controller.kubernetes.io/pod-deletion-cost on the pods of ReplicaSets scheduled by
// spot-scheduler, from the shared capacity model, so that a ReplicaSet scaling in removes pods
// on at-risk nodes first, then burst, on-demand, spot and reserved, and within a tier the pods
// of the pool holding most replicas of the workload (see Cost).
//
// It never overwrites a deletion cost it did not write (ownership is recorded in
// wellknown.ManagedDeletionCostAnnotation), removes its own when a pod leaves its scope, writes
// nothing when the desired value is already there, and bounds its writes with a token bucket.
package deletioncost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

const (
	byController = "controllerUID"
	byNode       = "nodeName"
	// DefaultQPS and DefaultBurst bound the controller's writes.
	DefaultQPS   = 20
	DefaultBurst = 40
)

// Options configure the controller.
type Options struct {
	// SchedulerName selects the pods in scope (spec.schedulerName). Required.
	SchedulerName string
	// Model classifies nodes. Required.
	Model *capacity.Model
	// QPS and Burst configure the token bucket every write waits on. QPS must be > 0.
	QPS   float32
	Burst int
	// FieldManager names the controller's writes (default wellknown.DeletionCostFieldManager).
	FieldManager string
	// Recorder records the Warning event when the controller yields to Karpenter (yield.go).
	// Optional.
	Recorder events.EventRecorder
	// Reclaims is the reclaim history: within a band, scale-in takes first from the pools
	// reclaimed most (DesiredWithReclaims). Optional.
	Reclaims capacity.ReclaimSource
	// ProtectPolicyReplicas: the pods that hold their capacity policy's on-demand base on
	// non-reclaimable capacity carry karpenter.sh/do-not-disrupt (Placement.HoldsPolicy), so that
	// Karpenter's consolidation, which does not know the policy, does not move them to spot.
	ProtectPolicyReplicas bool
}

// key is a work item: a workload (namespace and controller UID) or, for a pod outside every
// workload that still carries the controller's value, the pod itself (namespace and name).
type key struct {
	namespace string
	owner     types.UID
	pod       string
}

// Controller keeps pod deletion costs. Create with New, start with Run.
type Controller struct {
	client                kubernetes.Interface
	model                 *capacity.Model
	schedulerName         string
	fieldManager          string
	recorder              events.EventRecorder
	reclaims              capacity.ReclaimSource
	protectPolicyReplicas bool
	// yielded: Karpenter keeps pod deletion costs in this cluster; the controller only removes
	// its own (yield.go).
	yielded atomic.Bool

	factory   informers.SharedInformerFactory
	pods      cache.Indexer
	nodes     cache.Indexer
	hasSynced []cache.InformerSynced

	queue   workqueue.TypedRateLimitingInterface[key]
	limiter flowcontrol.RateLimiter

	// pending maps a pod we patched to the resourceVersion we patched from and the value we
	// wrote: until the cache shows a newer version or that value, the pod is left alone (its
	// new values are on their way).
	mu      sync.Mutex
	pending map[types.UID]pendingWrite
}

// New builds the controller on the pod and node informers of factory (shared with the
// rebalancer: one watch of each); start the factory afterwards, or let Run start it.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, opts Options) (*Controller, error) {
	if opts.SchedulerName == "" {
		return nil, errors.New("deletioncost: SchedulerName is required")
	}
	if opts.Model == nil {
		return nil, errors.New("deletioncost: Model is required")
	}
	if opts.QPS <= 0 {
		return nil, fmt.Errorf("deletioncost: QPS must be > 0, got %v", opts.QPS)
	}
	if opts.Burst < 1 {
		opts.Burst = 1
	}
	if opts.FieldManager == "" {
		opts.FieldManager = wellknown.DeletionCostFieldManager
	}
	c := &Controller{
		client:                client,
		model:                 opts.Model,
		schedulerName:         opts.SchedulerName,
		fieldManager:          opts.FieldManager,
		recorder:              opts.Recorder,
		reclaims:              opts.Reclaims,
		protectPolicyReplicas: opts.ProtectPolicyReplicas,
		factory:               factory,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[key](),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "deletion_cost"}),
		limiter: flowcontrol.NewTokenBucketRateLimiter(opts.QPS, opts.Burst),
		pending: map[types.UID]pendingWrite{},
	}
	podInformer := c.factory.Core().V1().Pods().Informer()
	if err := podInformer.AddIndexers(cache.Indexers{
		byController: func(obj any) ([]string, error) {
			if ref := metav1.GetControllerOfNoCopy(obj.(*v1.Pod)); ref != nil {
				return []string{string(ref.UID)}, nil
			}
			return nil, nil
		},
		byNode: func(obj any) ([]string, error) {
			if n := obj.(*v1.Pod).Spec.NodeName; n != "" {
				return []string{n}, nil
			}
			return nil, nil
		},
	}); err != nil {
		return nil, err
	}
	podReg, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod := obj.(*v1.Pod)
			c.enqueuePod(pod)
			c.enqueueCoTenants(pod.Spec.NodeName)
		},
		UpdateFunc: c.podUpdated,
		DeleteFunc: c.podDeleted,
	})
	if err != nil {
		return nil, err
	}
	nodeInformer := c.factory.Core().V1().Nodes().Informer()
	nodeReg, err := nodeInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueNode,
		UpdateFunc: c.nodeUpdated,
		DeleteFunc: c.enqueueNode,
	})
	if err != nil {
		return nil, err
	}
	c.pods, c.nodes = podInformer.GetIndexer(), nodeInformer.GetIndexer()
	// The handlers have seen every initial object (not just the stores), so the first syncs
	// cover the whole cluster.
	c.hasSynced = []cache.InformerSynced{podReg.HasSynced, nodeReg.HasSynced}
	return c, nil
}

// Run starts the informers and workers and blocks until ctx ends; it returns once every
// in-flight write has finished, so a caller holding a lease may release it safely.
func (c *Controller) Run(ctx context.Context, workers int) error {
	logger := klog.FromContext(ctx)
	defer c.queue.ShutDown()
	if err := c.startInformers(ctx); err != nil {
		return err
	}
	logger.Info("Deletion-cost controller started", "schedulerName", c.schedulerName, "tiers", c.model.TierNames(), "workers", workers)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				for c.processNext(ctx) {
				}
			}, time.Second)
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	logger.Info("Deletion-cost controller stopped")
	return nil
}

func (c *Controller) startInformers(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.hasSynced...) {
		return fmt.Errorf("deletion-cost controller: caches not synced: %w", ctx.Err())
	}
	return nil
}

func (c *Controller) inScope(pod *v1.Pod) bool { return InScope(pod, c.schedulerName) }

// hasMark: the pod carries an annotation the controller wrote (a deletion cost or a
// do-not-disrupt), which it removes when the pod leaves its scope.
func hasMark(pod *v1.Pod) bool {
	_, cost := pod.Annotations[wellknown.ManagedDeletionCostAnnotation]
	_, protect := pod.Annotations[wellknown.ManagedDoNotDisruptAnnotation]
	return cost || protect
}

// keyFor is the work item of a pod, or false when the controller has nothing to do for it.
func (c *Controller) keyFor(pod *v1.Pod) (key, bool) {
	if c.inScope(pod) {
		return key{namespace: pod.Namespace, owner: metav1.GetControllerOfNoCopy(pod).UID}, true
	}
	if hasMark(pod) {
		return key{namespace: pod.Namespace, pod: pod.Name}, true
	}
	return key{}, false
}

func (c *Controller) enqueuePod(pod *v1.Pod) {
	if k, ok := c.keyFor(pod); ok {
		c.queue.Add(k)
	}
}

func (c *Controller) podUpdated(oldObj, newObj any) {
	old, cur := oldObj.(*v1.Pod), newObj.(*v1.Pod)
	if !relevantChange(old, cur) {
		return
	}
	if k, ok := c.keyFor(old); ok {
		if k2, ok2 := c.keyFor(cur); !ok2 || k2 != k {
			c.queue.Add(k) // it left the workload: the others re-rank
		}
	}
	c.enqueuePod(cur)
	if old.Spec.NodeName != cur.Spec.NodeName || (old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) {
		c.enqueueCoTenants(old.Spec.NodeName)
		c.enqueueCoTenants(cur.Spec.NodeName)
	}
}

// enqueueCoTenants queues the workloads with a pod on the node: a pod came or went there, so
// the node's fill, which orders scale-in within a pool, changed.
func (c *Controller) enqueueCoTenants(nodeName string) {
	if nodeName == "" {
		return
	}
	objs, err := c.pods.ByIndex(byNode, nodeName)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	for _, o := range objs {
		if pod := o.(*v1.Pod); c.inScope(pod) {
			c.queue.Add(key{namespace: pod.Namespace, owner: metav1.GetControllerOfNoCopy(pod).UID})
		}
	}
}

// relevantChange: only what the cost or the ownership depends on (status updates are not).
func relevantChange(old, cur *v1.Pod) bool {
	if old.Spec.NodeName != cur.Spec.NodeName || (old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) {
		return true
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	if (oldRef == nil) != (curRef == nil) || (oldRef != nil && oldRef.UID != curRef.UID) {
		return true
	}
	for _, k := range append([]string{wellknown.PodDeletionCostAnnotation, wellknown.ManagedDeletionCostAnnotation, wellknown.AvoidSpotAnnotation,
		wellknown.KarpenterDoNotDisruptAnnotation, wellknown.ManagedDoNotDisruptAnnotation}, policy.Annotations...) {
		if old.Annotations[k] != cur.Annotations[k] {
			return true
		}
	}
	return false
}

func (c *Controller) podDeleted(obj any) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = tomb.Obj.(*v1.Pod); !ok {
			return
		}
	}
	c.mu.Lock()
	delete(c.pending, pod.UID)
	c.mu.Unlock()
	if c.inScope(pod) {
		c.queue.Add(key{namespace: pod.Namespace, owner: metav1.GetControllerOfNoCopy(pod).UID})
	}
	c.enqueueCoTenants(pod.Spec.NodeName)
}

func (c *Controller) nodeUpdated(oldObj, newObj any) {
	old, cur := oldObj.(*v1.Node), newObj.(*v1.Node)
	if c.model.Classify(old) == c.model.Classify(cur) {
		return
	}
	c.enqueueNode(cur)
}

// enqueueNode queues every workload with a pod on the node: its tier, risk or pool changed.
func (c *Controller) enqueueNode(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if node, ok := obj.(*v1.Node); ok {
		c.enqueueCoTenants(node.Name)
	}
}

// ReclaimsChanged re-ranks every workload in scope: the reclaim history changed (a reclaim
// was recorded), so the order of its pools may have too. Writes stay bounded by the token
// bucket; a workload whose costs stay the same gets none.
func (c *Controller) ReclaimsChanged() {
	for _, obj := range c.pods.List() {
		c.enqueuePod(obj.(*v1.Pod))
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	k, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(k)
	if err := c.sync(ctx, k); err != nil {
		syncsTotal.WithLabelValues("error").Inc()
		if ctx.Err() == nil {
			klog.FromContext(ctx).V(2).Info("Retrying deletion costs", "namespace", k.namespace, "owner", k.owner, "pod", k.pod, "err", err)
		}
		c.queue.AddRateLimited(k)
		return true
	}
	syncsTotal.WithLabelValues("success").Inc()
	c.queue.Forget(k)
	return true
}

// change is one pod's planned write: its deletion cost (act, value) and its do-not-disrupt
// (protect), in one patch.
type change struct {
	pod     *v1.Pod
	act     action
	value   string
	protect action
	// for logs
	class capacity.Class
}

func (c *Controller) sync(ctx context.Context, k key) error {
	var changes []change
	if k.pod != "" {
		obj, exists, err := c.pods.GetByKey(k.namespace + "/" + k.pod)
		if err != nil || !exists {
			return err
		}
		pod := obj.(*v1.Pod)
		if c.inScope(pod) {
			c.enqueuePod(pod)
			return nil
		}
		changes = c.plan(ctx, []*v1.Pod{pod})
	} else {
		objs, err := c.pods.ByIndex(byController, string(k.owner))
		if err != nil {
			return err
		}
		pods := make([]*v1.Pod, 0, len(objs))
		for _, o := range objs {
			if p := o.(*v1.Pod); p.Namespace == k.namespace {
				pods = append(pods, p)
			}
		}
		changes = c.plan(ctx, pods)
	}
	var errs []error
	for _, ch := range changes {
		if err := c.write(ctx, ch); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// nodeFill is NodeFill from the cache.
func (c *Controller) nodeFill(name string) float64 {
	obj, exists, err := c.nodes.GetByKey(name)
	if err != nil || !exists {
		return 0
	}
	objs, err := c.pods.ByIndex(byNode, name)
	if err != nil {
		return 0
	}
	pods := make([]*v1.Pod, 0, len(objs))
	for _, o := range objs {
		pods = append(pods, o.(*v1.Pod))
	}
	return NodeFill(obj.(*v1.Node), pods)
}

// NodeFill is the CPU requested by the pods on a node (not terminating, not finished) over its
// allocatable CPU.
func NodeFill(node *v1.Node, pods []*v1.Pod) float64 {
	allocatable := node.Status.Allocatable.Cpu().MilliValue()
	if allocatable <= 0 {
		return 0
	}
	var requested int64
	for _, p := range pods {
		if p.Spec.NodeName != node.Name || p.DeletionTimestamp != nil || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		requests := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
		requested += requests.Cpu().MilliValue()
	}
	return float64(requested) / float64(allocatable)
}

// plan decides the writes for the pods of one workload (or one out-of-scope pod), from the
// cache only. Pods already patched whose new version the cache has not shown yet still count
// for their pool but are not written again.
func (c *Controller) plan(ctx context.Context, pods []*v1.Pod) []change {
	var reclaims capacity.Reclaims
	if c.reclaims != nil {
		reclaims = c.reclaims.Reclaims()
	}
	desired := DesiredWithReclaims(c.model, c.schedulerName, pods, func(name string) (*v1.Node, bool) {
		obj, exists, err := c.nodes.GetByKey(name)
		if err != nil || !exists {
			return nil, false
		}
		return obj.(*v1.Node), true
	}, reclaims, c.nodeFill)
	var out []change
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || c.isPending(pod) {
			continue // going away, or our write is on its way
		}
		if !c.inScope(pod) {
			act, _, skip := decide(pod.Annotations, nil)
			if protect := decideProtection(pod.Annotations, false); act != actionNone || protect != actionNone {
				out = append(out, change{pod: pod, act: act, protect: protect})
			} else if skip != "" && hasMark(pod) {
				skipsTotal.WithLabelValues(skip).Inc()
			}
			continue
		}
		if pod.Spec.NodeName == "" {
			continue // not bound yet: the ReplicaSet deletes unbound pods first anyway
		}
		if !c.Yielded() && karpenterOwnsCost(pod) {
			c.yield(ctx, pod)
		}
		p, known := desired[pod.UID]
		if !known {
			skipsTotal.WithLabelValues(SkipNodeUnknown).Inc()
			continue
		}
		// Once Karpenter keeps the costs, the controller removes what it wrote; the policy's
		// replicas are still protected from Karpenter's consolidation.
		cost := &p.Cost
		if c.Yielded() {
			cost = nil
		}
		act, value, skip := decide(pod.Annotations, cost)
		if skip != "" && cost != nil {
			skipsTotal.WithLabelValues(skip).Inc()
		}
		protect := decideProtection(pod.Annotations, c.protectPolicyReplicas && p.HoldsPolicy)
		if act != actionNone || protect != actionNone {
			out = append(out, change{pod: pod, act: act, value: value, protect: protect, class: p.Class})
		}
	}
	// Deterministic write order (tests, logs).
	sort.Slice(out, func(i, j int) bool { return out[i].pod.Name < out[j].pod.Name })
	return out
}

// Placement is where a pod runs and the deletion cost that follows from it.
type Placement struct {
	Cost  int32
	Class capacity.Class
	// HoldsPolicy: the pod is one of the replicas its capacity policy requires on
	// non-reclaimable capacity (the on-demand base and share), and runs there, healthy.
	HoldsPolicy bool
}

// InScope reports whether the controller for schedulerName keeps the pod's deletion cost:
// scheduled by that scheduler and controlled by a ReplicaSet.
func InScope(pod *v1.Pod, schedulerName string) bool {
	if pod.Spec.SchedulerName != schedulerName {
		return false
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	return ref != nil && ref.Kind == "ReplicaSet" && (ref.APIVersion == "apps/v1" || ref.APIVersion == "extensions/v1beta1")
}

// Desired computes the deletion cost of every pod of one workload that is in scope, bound to a
// node nodeOf knows, and not terminating, keyed by pod UID, without a reclaim history
// (DesiredWithReclaims).
func Desired(m *capacity.Model, schedulerName string, pods []*v1.Pod, nodeOf func(string) (*v1.Node, bool)) map[types.UID]Placement {
	return DesiredWithReclaims(m, schedulerName, pods, nodeOf, nil, nil)
}

// fillLevels quantizes a node's fill (requested / allocatable CPU) for the order within a
// pool: a level is a quarter of a node, so that a pod coming or going elsewhere on a node
// rarely reorders a workload (each reorder is a write per pod).
const fillLevels = 4

func fillLevel(fill float64) int { return int(min(max(fill, 0), 1) * fillLevels) }

// DesiredWithReclaims is Desired with the pools' reclaims in the history's window and, when
// fill is not nil, the fill of each node (requested / allocatable CPU, every pod on it). Pods
// are grouped by band and pool; within a pool the pods on the fullest nodes come first (by
// quarter of a node), then the oldest (then the first by name): scale-in takes the pods of
// the emptiest nodes first, so that nodes empty and an autoscaler removing empty nodes
// (Karpenter's WhenEmpty, which docs/install.md recommends on spot) removes them, with no
// eviction.
// The k-th pod of a pool (from 0) has the pool's load with k replicas
// (capacity.Model.PoolLoad), the load at which the scheduler would have put it there; its
// crowding (see Cost) is that load's rank among the band's, from 1. Without reclaims the load
// is k, and the crowding k+1: the pod's position in its pool. With them, scale-in takes first
// from the pool whose last replica the scheduler would have placed last: the pool reclaimed
// most, when the pools hold alike.
func DesiredWithReclaims(m *capacity.Model, schedulerName string, pods []*v1.Pod, nodeOf func(string) (*v1.Node, bool), reclaims capacity.Reclaims, fill func(node string) float64) map[types.UID]Placement {
	type member struct {
		pod   *v1.Pod
		class capacity.Class
		band  int
		load  float64
		level int
	}
	ranker := ranking.New(m)
	groups := map[string][]member{}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Spec.NodeName == "" || !InScope(pod, schedulerName) {
			continue
		}
		node, ok := nodeOf(pod.Spec.NodeName)
		if !ok {
			continue
		}
		class := m.Classify(node)
		band := ranker.ForPod(pod).Band(class)
		g := fmt.Sprintf("%d/%s", band, class.Pool)
		mb := member{pod: pod, class: class, band: band}
		if fill != nil {
			mb.level = fillLevel(fill(pod.Spec.NodeName))
		}
		groups[g] = append(groups[g], mb)
	}
	// Each band's loads, for the ranks.
	loads := map[int][]float64{}
	for g, members := range groups {
		sort.Slice(members, func(i, j int) bool {
			if members[i].level != members[j].level {
				return members[i].level > members[j].level
			}
			a, b := members[i].pod, members[j].pod
			if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
				return a.CreationTimestamp.Before(&b.CreationTimestamp)
			}
			return a.Name < b.Name
		})
		for i := range members {
			members[i].load = m.PoolLoad(i, reclaims[members[i].class.Pool])
			loads[members[i].band] = append(loads[members[i].band], members[i].load)
		}
		groups[g] = members
	}
	for band, ls := range loads {
		sort.Float64s(ls)
		loads[band] = slices.Compact(ls)
	}
	out := make(map[types.UID]Placement, len(pods))
	for _, members := range groups {
		for _, mb := range members {
			crowding, _ := slices.BinarySearch(loads[mb.band], mb.load)
			out[mb.pod.UID] = Placement{Cost: Cost(mb.band, ranker.NumBands(), crowding+1), Class: mb.class}
		}
	}
	keepPolicy(m, pods, out)
	return out
}

// keepPolicy re-ranks a workload with a capacity policy so that scale-in keeps the policy at
// every replica count (policy.Policy.KeepOrder): healthy pods get costs above every at-risk
// pod's, in keep order (PolicyCostBase + healthy count for the pod kept longest, down to
// PolicyCostBase + 1); at-risk pods keep their cost and go first. The costs computed without
// a policy are the preference among pods the policy does not tell apart.
func keepPolicy(m *capacity.Model, pods []*v1.Pod, out map[types.UID]Placement) {
	var p policy.Policy
	var first *v1.Pod
	for _, pod := range pods {
		if _, ok := out[pod.UID]; ok && (first == nil || pod.Name < first.Name) {
			first = pod
		}
	}
	if first == nil {
		return
	}
	p, err := m.PolicyFor(first) // one template: every pod carries the same policy
	if err != nil || !p.Active() {
		return
	}
	var uids []types.UID
	var replicas []policy.Replica
	healthy := 0
	for _, pod := range pods {
		pl, ok := out[pod.UID]
		if !ok {
			continue
		}
		uids = append(uids, pod.UID)
		replicas = append(replicas, policy.Replica{
			Reclaimable: m.Reclaimable(pl.Class.Tier), Pool: pl.Class.Pool, AtRisk: pl.Class.AtRisk,
			Preference: pl.Cost, Name: pod.Name,
		})
		if !pl.Class.AtRisk {
			healthy++
		}
	}
	// The replicas the policy requires off spot are the non-reclaimable ones kept longest.
	required := p.Target(healthy).NonReclaimable
	for pos, i := range p.KeepOrder(replicas) {
		if replicas[i].AtRisk {
			continue
		}
		pl := out[uids[i]]
		pl.Cost = PolicyCostBase + int32(healthy-pos)
		if !replicas[i].Reclaimable && required > 0 {
			pl.HoldsPolicy = true
			required--
		}
		out[uids[i]] = pl
	}
}

type pendingWrite struct {
	resourceVersion string
	value           string // "" for a removal
	protected       bool   // the pod carries the controller's do-not-disrupt after the write
}

func (c *Controller) isPending(pod *v1.Pod) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.pending[pod.UID]
	if !ok {
		return false
	}
	_, protected := pod.Annotations[wellknown.ManagedDoNotDisruptAnnotation]
	if w.resourceVersion == pod.ResourceVersion && (pod.Annotations[wellknown.ManagedDeletionCostAnnotation] != w.value || protected != w.protected) {
		return true
	}
	delete(c.pending, pod.UID)
	return false
}

// write patches one pod's annotations, conditioned on the resourceVersion the plan read (a pod
// changed since is retried, never overwritten blindly), after waiting for the token bucket.
func (c *Controller) write(ctx context.Context, ch change) error {
	logger := klog.FromContext(ctx)
	if err := c.limiter.Wait(ctx); err != nil {
		return err
	}
	// The patch, and what the pod's marks read once it is applied (isPending waits for that).
	annotations := map[string]any{}
	_, protected := ch.pod.Annotations[wellknown.ManagedDoNotDisruptAnnotation]
	after := pendingWrite{resourceVersion: ch.pod.ResourceVersion, value: ch.pod.Annotations[wellknown.ManagedDeletionCostAnnotation], protected: protected}
	op := "set"
	switch ch.act {
	case actionSet:
		annotations[wellknown.PodDeletionCostAnnotation], annotations[wellknown.ManagedDeletionCostAnnotation] = ch.value, ch.value
		after.value = ch.value
	case actionRemove:
		op = "remove"
		annotations[wellknown.PodDeletionCostAnnotation], annotations[wellknown.ManagedDeletionCostAnnotation] = nil, nil
		after.value = ""
	}
	switch ch.protect {
	case actionSet:
		annotations[wellknown.KarpenterDoNotDisruptAnnotation], annotations[wellknown.ManagedDoNotDisruptAnnotation] = "true", "true"
		after.protected = true
	case actionRemove:
		if ch.act == actionNone {
			op = "remove"
		}
		annotations[wellknown.KarpenterDoNotDisruptAnnotation], annotations[wellknown.ManagedDoNotDisruptAnnotation] = nil, nil
		after.protected = false
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": ch.pod.ResourceVersion,
		"annotations":     annotations,
	}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(ch.pod.Namespace).Patch(ctx, ch.pod.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: c.fieldManager})
	switch {
	case err == nil:
		writesTotal.WithLabelValues(op, "success").Inc()
		c.mu.Lock()
		c.pending[ch.pod.UID] = after
		c.mu.Unlock()
		switch {
		case ch.act == actionSet:
			logger.V(2).Info("Set pod deletion cost", "pod", klog.KObj(ch.pod), "cost", ch.value, "node", ch.pod.Spec.NodeName,
				"tier", ch.class.TierName, "atRisk", ch.class.AtRisk, "pool", ch.class.Pool)
		case ch.act == actionRemove:
			logger.V(2).Info("Removed pod deletion cost", "pod", klog.KObj(ch.pod))
		}
		switch ch.protect {
		case actionSet:
			logger.V(2).Info("Protected a replica its capacity policy keeps off spot from Karpenter's consolidation (karpenter.sh/do-not-disrupt)",
				"pod", klog.KObj(ch.pod), "node", ch.pod.Spec.NodeName, "tier", ch.class.TierName)
		case actionRemove:
			logger.V(2).Info("Removed the controller's karpenter.sh/do-not-disrupt: the pod no longer holds its capacity policy", "pod", klog.KObj(ch.pod))
		}
		return nil
	case apierrors.IsNotFound(err):
		writesTotal.WithLabelValues(op, "not_found").Inc()
		return nil // deleted meanwhile: its workload is re-ranked by the delete event
	case apierrors.IsConflict(err):
		writesTotal.WithLabelValues(op, "conflict").Inc()
		skipsTotal.WithLabelValues(SkipConflict).Inc()
		return fmt.Errorf("pod %s/%s changed since it was read: %w", ch.pod.Namespace, ch.pod.Name, err)
	default:
		writesTotal.WithLabelValues(op, "error").Inc()
		return fmt.Errorf("patching pod %s/%s: %w", ch.pod.Namespace, ch.pod.Name, err)
	}
}
