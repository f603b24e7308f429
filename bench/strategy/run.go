// Package strategy replays a capacity trace (bench/trace) on a fresh local control plane
// (internal/localcluster: etcd, kube-apiserver, kube-controller-manager, kwok) under one placement
// strategy at a time, with the real components of that strategy, and samples where the
// workloads' pods run. Metrics, the optimum, and the reports (markdown, CSV, PNG) are computed
// from those samples.
package strategy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/bench/trace"
	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
)

// The strategies. Optimum is not run: it is computed from the trace.
const (
	Affinity      = "affinity"
	AKSRecipe     = "aks-recipe"
	OKERecipe     = "oke-recipe"
	SpotScheduler = "spot-scheduler"
	// SpotSchedulerPolicy is spot-scheduler with the trace's capacity policy on every workload.
	SpotSchedulerPolicy = "spot-scheduler-policy"
	// Karpenter is the peer with an autoscaler: the default scheduler (pods as in affinity)
	// and Karpenter's consolidation of underutilized nodes in every NodePool, its own failback.
	// It runs only with the Karpenter autoscaler.
	Karpenter = "karpenter"
	Optimum   = "optimum"
)

// Autoscalers: who adds and removes the nodes.
const (
	// Scripted: the runner creates and deletes the trace's nodes itself; node cost counts
	// non-empty nodes, as if an autoscaler removed empty ones at once.
	Scripted = "scripted"
	// KarpenterAutoscaler: the real Karpenter (kwok provider) launches and removes every node
	// from one NodePool per trace pool; the trace's events change NodePool limits and go
	// through Karpenter's interruption path.
	KarpenterAutoscaler = "karpenter"
)

// Autoscalers lists the autoscaler modes.
var Autoscalers = []string{KarpenterAutoscaler, Scripted}

// All lists the strategies that run with the scripted autoscaler, in report order.
var All = []string{Affinity, AKSRecipe, OKERecipe, SpotScheduler, SpotSchedulerPolicy}

// Strategies lists the strategies that run with an autoscaler, in report order.
func Strategies(autoscaler string) []string {
	if autoscaler == KarpenterAutoscaler {
		return []string{Affinity, AKSRecipe, OKERecipe, Karpenter, SpotScheduler, SpotSchedulerPolicy}
	}
	return All
}

// UsesDescheduler says whether the strategy runs the descheduler.
func UsesDescheduler(s string) bool { return s == AKSRecipe || s == OKERecipe }

// UsesPlaceholders says whether the strategy keeps placeholder (headroom) pods on spot.
func UsesPlaceholders(s string) bool { return s == AKSRecipe || isSpotScheduler(s) }

// UsesPolicy says whether the strategy declares the trace's capacity policy on its workloads.
func UsesPolicy(s string) bool { return s == SpotSchedulerPolicy }

func isSpotScheduler(s string) bool { return s == SpotScheduler || s == SpotSchedulerPolicy }

// Options of a run.
type Options struct {
	Trace *trace.Trace
	// BinDir holds the control-plane binaries, kube-scheduler included ("" finds or builds them).
	BinDir string
	// SchedulerBinary, RebalancerBinary and SchedulerConfig run the spot-scheduler strategy.
	SchedulerBinary, RebalancerBinary, SchedulerConfig string
	// DeschedulerBinary runs the recipes that use it (hack/build-descheduler.sh).
	DeschedulerBinary string
	// LoopInterval is the descheduler's --descheduling-interval and the rebalancer's
	// --rebalance-interval (compressed like the trace; default 10s).
	LoopInterval time.Duration
	// SampleInterval is the time between samples (default 1s).
	SampleInterval time.Duration
	// LogDir, when set, keeps each run's component logs in LogDir/<strategy>.
	LogDir string
	Out    io.Writer
	// Autoscaler is Scripted (default) or KarpenterAutoscaler.
	Autoscaler string
	// KarpenterDir holds Karpenter's build ("": $SPOT_SCHEDULER_KARPENTER_DIR or
	// hack/build-karpenter.sh).
	KarpenterDir string
}

// Sample is the cluster at one moment of the replay.
type Sample struct {
	// T is seconds since the start of the replay; Events the number of trace events applied.
	T      float64
	Events int
	// PodsPerTier counts the workloads' pods bound to a live node, by the node's tier.
	PodsPerTier map[string]int
	// Pending counts desired workload pods not served (pending, or not yet created again).
	Pending int
	// NodeMilliCPU is the CPU of the non-burst nodes holding at least one pod, by tier.
	NodeMilliCPU map[string]int64
	// BurstMilliCPU is the CPU requested by the pods on burst (virtual) nodes.
	BurstMilliCPU int64
	// Evictions so far (workload pods evicted through the Eviction API).
	Evictions int
	// Running counts each workload's pods Running on a live node (not terminating).
	Running map[string]int
	// With Karpenter: its nodes alive (terminating ones included: they still bill) by tier,
	// and the sum of their offerings' hourly prices.
	AutoscaledNodes  map[string]int
	NodePricePerHour float64
}

// Run is one strategy's replay.
type Run struct {
	Strategy string
	Samples  []Sample
	// Autoscaler the run used.
	Autoscaler string
	// Evictions of workload pods and of placeholders through the Eviction API (preemption
	// by a scheduler is not an eviction). DrainEvictions are the workload pods evicted from
	// nodes the trace reclaimed (Karpenter's interruption drain): not moves, not counted in
	// Evictions.
	Evictions, PlaceholderEvictions, DrainEvictions int
	// RefusedLaunches: with Karpenter, the NodeClaims it launched past a NodePool's limit,
	// which the runner refused (deleted) as a cloud without more capacity would.
	RefusedLaunches int
	// Wall is how long the run took, control plane included.
	Wall time.Duration
}

const (
	namespace        = "bench"
	placeholderClass = "placeholder"
	spotLabel        = "kubernetes.azure.com/scalesetpriority"
	poolLabel        = "kubernetes.azure.com/agentpool"
	noticeTaint      = "aks-node-termination-handler/preempt"
	virtualTaint     = "virtual-kubelet.io/provider"
	placeholderLabel = "spot-scheduler.io/placeholder"
	workloadLabel    = "bench.spot-scheduler.io/workload"
)

type runner struct {
	opts     Options
	strategy string
	tr       *trace.Trace
	cluster  *localcluster.Cluster
	client   kubernetes.Interface
	start    time.Time
	tierOf   map[string]string // every node the trace ever has
	workload map[string]bool
	procs    []*localcluster.Process

	mu                                     sync.Mutex
	evictions, phEvictions, drainEvictions int
	// interrupted holds the nodes the trace reclaimed through Karpenter.
	interrupted map[string]bool

	// With Karpenter: the tier of each trace pool (= NodePool), the NodePools' CPU limits
	// as last set, the nodes given a notice per pool.
	karpenter *localcluster.Karpenter
	poolTier  map[string]string
	limits    map[string]int64
	noticed   map[string][]string
	// limitSetAt: when each NodePool's limit was last set; refusedLaunches counts the
	// NodeClaims deleted for taking a pool past its limit (both under mu).
	limitSetAt      map[string]time.Time
	refusedLaunches int
}

func (r *runner) autoscaled() bool { return r.opts.Autoscaler == KarpenterAutoscaler }

func (r *runner) say(format string, args ...any) {
	if r.opts.Out != nil {
		fmt.Fprintf(r.opts.Out, "[%s] %s\n", r.strategy, fmt.Sprintf(format, args...))
	}
}

// Execute replays the trace under one strategy and returns its samples.
func Execute(ctx context.Context, strategy string, opts Options) (_ *Run, err error) {
	if opts.LoopInterval <= 0 {
		opts.LoopInterval = 10 * time.Second
	}
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = time.Second
	}
	if opts.Autoscaler == "" {
		opts.Autoscaler = Scripted
	}
	if err := validate(strategy, opts); err != nil {
		return nil, err
	}
	began := time.Now()
	r := &runner{opts: opts, strategy: strategy, tr: opts.Trace, tierOf: map[string]string{}, workload: map[string]bool{},
		interrupted: map[string]bool{}, poolTier: map[string]string{}, limits: map[string]int64{}, noticed: map[string][]string{},
		limitSetAt: map[string]time.Time{}}
	for _, p := range r.tr.Pools() {
		r.poolTier[p.Name] = p.Tier
	}
	for _, n := range r.tr.Nodes {
		r.tierOf[n.Name] = n.Tier
	}
	for _, e := range r.tr.Events {
		for _, n := range e.AddNodes {
			r.tierOf[n.Name] = n.Tier
		}
	}
	for _, w := range r.tr.Workloads {
		r.workload[w.Name] = true
	}
	dir := ""
	if opts.LogDir != "" {
		dir = filepath.Join(opts.LogDir, strategy)
		_ = os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	r.say("starting a local control plane (etcd, kube-apiserver, kube-controller-manager, kwok)")
	c, err := localcluster.Start(ctx, localcluster.Options{BinDir: opts.BinDir, Dir: dir, ControllerManager: true})
	if err != nil {
		return nil, err
	}
	r.cluster, r.client = c, c.Client
	defer func() {
		_ = c.Stop()
		if err != nil {
			err = fmt.Errorf("%s: %w (logs in %s)", strategy, err, c.Dir)
		} else if opts.LogDir == "" {
			_ = os.RemoveAll(c.Dir)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	samples, err := r.replay(ctx)
	if err == nil {
		err = r.checkComponents()
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return &Run{Strategy: strategy, Autoscaler: opts.Autoscaler, Samples: samples, Evictions: r.evictions, PlaceholderEvictions: r.phEvictions,
		DrainEvictions: r.drainEvictions, RefusedLaunches: r.refusedLaunches, Wall: time.Since(began)}, nil
}

// validate checks a run's strategy and options before anything starts, naming what is wrong.
func validate(strategy string, opts Options) error {
	if opts.Trace == nil {
		return fmt.Errorf("Options.Trace: no trace")
	}
	if opts.Autoscaler != Scripted && opts.Autoscaler != KarpenterAutoscaler {
		return fmt.Errorf("autoscaler %q is not one of %v", opts.Autoscaler, Autoscalers)
	}
	known := Strategies(opts.Autoscaler)
	if !slices.Contains(known, strategy) {
		return fmt.Errorf("strategy %q is not one of %v (autoscaler %s)", strategy, known, opts.Autoscaler)
	}
	if UsesPolicy(strategy) {
		if len(opts.Trace.CapacityPolicy) == 0 {
			return fmt.Errorf("strategy %s needs the trace's capacityPolicy (trace %s has none)", strategy, opts.Trace.Name)
		}
		pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: opts.Trace.CapacityPolicy}}
		if _, err := policy.ForPod(pod, policy.Policy{}); err != nil {
			return fmt.Errorf("trace %s: capacityPolicy: %w", opts.Trace.Name, err)
		}
	}
	return nil
}

func (r *runner) setup(ctx context.Context) error {
	if _, err := r.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	nodes := r.tr.Nodes
	if r.autoscaled() {
		// Karpenter launches every node; a node of its own only serves the warm-up probe and
		// is gone before Karpenter starts.
		nodes = []trace.Node{warmUpNode}
	}
	for _, n := range nodes {
		if err := r.createNode(ctx, n); err != nil {
			return err
		}
	}
	if err := r.waitNodesReady(ctx, len(nodes)); err != nil {
		return err
	}
	if err := r.startComponents(ctx); err != nil {
		return err
	}
	if err := r.warmUp(ctx); err != nil {
		return errors.Join(err, r.checkComponents())
	}
	if r.autoscaled() {
		if err := r.startKarpenter(ctx); err != nil {
			return err
		}
	}
	if UsesPlaceholders(r.strategy) && r.tr.Placeholders.Replicas > 0 {
		never := v1.PreemptNever
		if _, err := r.client.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
			ObjectMeta: metav1.ObjectMeta{Name: placeholderClass}, Value: -10, PreemptionPolicy: &never,
			Description: "Overprovisioner placeholders: preempted by any real pod.",
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
		ph := r.tr.Placeholders
		d := r.deployment(ph.Name, ph.Replicas, ph.MilliCPU, true)
		if _, err := r.client.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return err
		}
		if err := r.waitPodsBound(ctx, ph.Name, ph.Replicas); err != nil {
			return err
		}
	}
	return r.watchEvictions(ctx)
}

func (r *runner) createNode(ctx context.Context, n trace.Node) error {
	pods := n.Pods
	if pods == 0 {
		pods = 110
	}
	res := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewQuantity(n.CPU, resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(n.CPU*4<<30, resource.BinarySI),
		v1.ResourcePods:   *resource.NewQuantity(pods, resource.DecimalSI),
	}
	labels := map[string]string{
		"kubernetes.io/hostname":           n.Name,
		"kubernetes.io/os":                 "linux",
		poolLabel:                          n.Pool,
		"node.kubernetes.io/instance-type": "Standard_D4s_v5",
		"topology.kubernetes.io/zone":      n.Zone,
	}
	var taints []v1.Taint
	switch n.Tier {
	case trace.Spot:
		labels[spotLabel] = "spot"
	case trace.Burst:
		labels["type"] = "virtual-kubelet"
		labels["node.kubernetes.io/instance-type"] = "virtual-node"
		taints = append(taints, v1.Taint{Key: virtualTaint, Value: "azure", Effect: v1.TaintEffectNoSchedule})
	}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: labels}, Spec: v1.NodeSpec{Taints: taints},
		Status: v1.NodeStatus{Capacity: res, Allocatable: res}}
	_, err := r.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	return err
}

func (r *runner) waitNodesReady(ctx context.Context, n int) error {
	return localcluster.WaitForAPI(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		nodes, err := r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ready := 0
		for _, node := range nodes.Items {
			for _, c := range node.Status.Conditions {
				if c.Type == v1.NodeReady && c.Status == v1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= n, nil
	})
}

func (r *runner) schedulerName() string {
	if isSpotScheduler(r.strategy) {
		return "spot-scheduler"
	}
	return v1.DefaultSchedulerName
}

// podSpec is a workload's (or a placeholder's) pod: 1 container, terminationGracePeriod 0,
// tolerating the virtual node. The recipes add the preferred node affinity of seeds 000, 002
// and 003 (spot first, then real nodes before the virtual node); spot-scheduler needs none.
func (r *runner) podSpec(milliCPU int64, placeholder bool) v1.PodSpec {
	if r.autoscaled() {
		// Karpenter's kwok provider reserves 100m of every node: a 4-CPU node keeps room for
		// four pods of the trace when each asks 100m less (costs still count the trace's size).
		milliCPU -= karpenterNodeReserveMilliCPU
	}
	spotKey, spotValue := spotLabel, "spot"
	if r.autoscaled() {
		spotKey, spotValue = localcluster.KarpenterCapacityTypeLabel, localcluster.CapacityTypeSpot
	}
	spec := v1.PodSpec{
		SchedulerName:                 r.schedulerName(),
		TerminationGracePeriodSeconds: ptr.To[int64](0),
		Tolerations:                   []v1.Toleration{{Key: virtualTaint, Operator: v1.TolerationOpExists}},
		Containers: []v1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{
				v1.ResourceCPU:    *resource.NewMilliQuantity(milliCPU, resource.DecimalSI),
				v1.ResourceMemory: resource.MustParse("256Mi"),
			}}}},
	}
	if placeholder {
		spec.PriorityClassName = placeholderClass
		spec.NodeSelector = map[string]string{spotKey: spotValue}
		spec.Tolerations = nil
		return spec
	}
	if !isSpotScheduler(r.strategy) {
		spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
				{Weight: 100, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{
					{Key: spotKey, Operator: v1.NodeSelectorOpIn, Values: []string{spotValue}}}}},
				{Weight: 50, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{
					{Key: "type", Operator: v1.NodeSelectorOpNotIn, Values: []string{"virtual-kubelet"}}}}},
			},
		}}
	}
	return spec
}

func (r *runner) deployment(name string, replicas int, milliCPU int64, placeholder bool) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	if placeholder {
		labels[placeholderLabel] = "true"
	} else {
		labels[workloadLabel] = name
	}
	var annotations map[string]string
	if UsesPolicy(r.strategy) && !placeholder {
		annotations = r.tr.CapacityPolicy
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations}, Spec: r.podSpec(milliCPU, placeholder)},
		},
	}
}

// warmUp waits until the strategy's scheduler binds a probe pod, so that the replay's clock
// does not count the components' start-up.
func (r *runner) warmUp(ctx context.Context) error {
	probe := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "probe"}, Spec: r.podSpec(100, false)}
	probe.Spec.Affinity = nil
	if _, err := r.client.CoreV1().Pods(namespace).Create(ctx, probe, metav1.CreateOptions{}); err != nil {
		return err
	}
	err := localcluster.WaitForAPI(ctx, 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := r.client.CoreV1().Pods(namespace).Get(ctx, "probe", metav1.GetOptions{})
		return err == nil && p.Spec.NodeName != "", nil
	})
	if err != nil {
		return fmt.Errorf("the %s scheduler did not bind a probe pod: %w", r.schedulerName(), err)
	}
	if err := r.client.CoreV1().Pods(namespace).Delete(ctx, "probe", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		return err
	}
	return localcluster.WaitForAPI(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		_, err := r.client.CoreV1().Pods(namespace).Get(ctx, "probe", metav1.GetOptions{})
		return err != nil, nil
	})
}

func (r *runner) waitPodsBound(ctx context.Context, app string, n int) error {
	return localcluster.WaitForAPI(ctx, 2*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := r.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false, nil
		}
		bound := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" && p.DeletionTimestamp == nil {
				bound++
			}
		}
		return bound == n, nil
	})
}

// watchEvictions counts pods evicted through the Eviction API (WatchEvictions).
func (r *runner) watchEvictions(ctx context.Context) error {
	return WatchEvictions(ctx, r.client, namespace, func(p *v1.Pod, _ time.Time) {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case p.Labels[placeholderLabel] == "true":
			r.phEvictions++
		case r.interrupted[p.Spec.NodeName]:
			r.drainEvictions++
		default:
			r.evictions++
		}
	})
}

// WatchEvictions calls onEvicted once for each pod of the namespace evicted through the
// Eviction API, with the time of its eviction: the API server marks such a pod with the
// condition DisruptionTarget, reason EvictionByEvictionAPI, before deleting it (scheduler
// preemption is not an eviction). It returns once its informer has synced.
func WatchEvictions(ctx context.Context, client kubernetes.Interface, ns string, onEvicted func(p *v1.Pod, at time.Time)) error {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	var mu sync.Mutex
	seen := map[string]bool{}
	check := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		p, ok := obj.(*v1.Pod)
		if !ok {
			return
		}
		for _, c := range p.Status.Conditions {
			if c.Type != v1.DisruptionTarget || c.Status != v1.ConditionTrue || c.Reason != "EvictionByEvictionAPI" {
				continue
			}
			mu.Lock()
			first := !seen[string(p.UID)]
			seen[string(p.UID)] = true
			mu.Unlock()
			if first {
				onEvicted(p, c.LastTransitionTime.Time)
			}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    check,
		UpdateFunc: func(_, obj any) { check(obj) },
		DeleteFunc: check,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("pod informer did not sync")
	}
	return nil
}

// replay creates the workloads at time 0, applies each event when its time comes, and samples
// the cluster every SampleInterval, events first, so that a sample always sees the events it
// counts.
func (r *runner) replay(ctx context.Context) ([]Sample, error) {
	r.say("replaying trace %q (%.0fs)", r.tr.Name, r.tr.Duration)
	r.start = time.Now()
	for _, w := range r.tr.Workloads {
		if _, err := r.client.AppsV1().Deployments(namespace).Create(ctx, r.deployment(w.Name, w.Replicas, w.MilliCPU, false), metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	applied := 0
	var samples []Sample
	ticker := time.NewTicker(r.opts.SampleInterval)
	defer ticker.Stop()
	for {
		t := time.Since(r.start).Seconds()
		if t >= r.tr.Duration {
			break
		}
		for applied < len(r.tr.Events) && r.tr.Events[applied].At <= t {
			if err := r.apply(ctx, applied, r.tr.Events[applied]); err != nil {
				return nil, fmt.Errorf("event %d at %.0fs: %w", applied, r.tr.Events[applied].At, err)
			}
			applied++
		}
		if err := r.checkComponents(); err != nil {
			return nil, err
		}
		s, err := r.sample(ctx, t, applied)
		if err != nil {
			return nil, err
		}
		samples = append(samples, s)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ticker.C:
		}
	}
	last := samples[len(samples)-1]
	r.say("done: %v pending %d, %d evictions", last.PodsPerTier, last.Pending, last.Evictions)
	return samples, nil
}

func (r *runner) apply(ctx context.Context, index int, e trace.Event) error {
	if r.autoscaled() {
		return r.applyKarpenter(ctx, index, e)
	}
	var parts []string
	for _, name := range e.Notice {
		parts = append(parts, "notice "+name)
		if err := localcluster.TaintNode(ctx, r.client, name, v1.Taint{Key: noticeTaint, Value: "true", Effect: v1.TaintEffectNoSchedule}); err != nil {
			return err
		}
	}
	for _, name := range e.Reclaim {
		parts = append(parts, "reclaim "+name)
		if err := localcluster.Reclaim(ctx, r.client, name); err != nil {
			return err
		}
	}
	for _, n := range e.AddNodes {
		parts = append(parts, "add "+n.Name)
		if err := r.createNode(ctx, n); err != nil {
			return err
		}
	}
	if err := r.scale(ctx, e.Scale, &parts); err != nil {
		return err
	}
	r.say("t=%3.0fs %v", time.Since(r.start).Seconds(), parts)
	return nil
}

// scale applies an event's workload sizes, in name order, noting each in parts.
func (r *runner) scale(ctx context.Context, sizes map[string]int, parts *[]string) error {
	names := make([]string, 0, len(sizes))
	for w := range sizes {
		names = append(names, w)
	}
	sort.Strings(names)
	for _, w := range names {
		*parts = append(*parts, fmt.Sprintf("scale %s=%d", w, sizes[w]))
		if err := localcluster.ScaleDeployment(ctx, r.client, namespace, w, int32(sizes[w])); err != nil {
			return err
		}
	}
	return nil
}

// sample reads nodes and pods straight from the API server (not a cache: a sample must not
// see a reclaimed node as still there).
func (r *runner) sample(ctx context.Context, t float64, events int) (Sample, error) {
	var nodes *v1.NodeList
	var pods *v1.PodList
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		if nodes, err = r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
			return false, nil
		}
		if pods, err = r.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{}); err != nil {
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return Sample{}, fmt.Errorf("sampling: %w", err)
	}
	live := map[string]bool{}
	tierOf, cpuOf := r.tierOf, map[string]int64{}
	if r.autoscaled() {
		tierOf = map[string]string{}
	}
	s := Sample{T: t, Events: events, PodsPerTier: map[string]int{}, NodeMilliCPU: map[string]int64{}, Running: map[string]int{}}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		live[n.Name] = true
		if r.autoscaled() {
			r.meterNode(&s, n, tierOf)
			// Every node Karpenter launches here has this size (its status may not say yet).
			cpuOf[n.Name] = karpenterNodeCPU * 1000
		}
	}
	state := r.tr.StateAfter(events)
	if !r.autoscaled() {
		for name, n := range state.Nodes {
			cpuOf[name] = n.CPU * 1000
		}
	}
	served := map[string]int{}
	busy := map[string]bool{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed || !live[p.Spec.NodeName] {
			continue
		}
		tier := tierOf[p.Spec.NodeName]
		busy[p.Spec.NodeName] = true
		if tier == trace.Burst {
			// Billed per pod, at the trace's pod size (Karpenter's pods ask 100m less).
			s.BurstMilliCPU += r.tr.PodMilliCPU()
		}
		if w := p.Labels[workloadLabel]; r.workload[w] {
			served[w]++
			s.PodsPerTier[tier]++
			if p.Status.Phase == v1.PodRunning {
				s.Running[w]++
			}
		}
	}
	for w, desired := range state.Replicas {
		s.Pending += max(0, desired-served[w])
	}
	for name := range busy {
		if tier := tierOf[name]; tier != trace.Burst {
			s.NodeMilliCPU[tier] += cpuOf[name]
		}
	}
	r.mu.Lock()
	s.Evictions = r.evictions
	r.mu.Unlock()
	return s, nil
}
