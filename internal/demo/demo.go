// Package demo plays spot-scheduler's story on a local control plane (internal/localcluster):
// spot pools A and B, an on-demand pool, a virtual node and placeholder headroom; an app
// opted in by schedulerName; pool A gets interruption notices and is reclaimed (failover),
// capacity returns (failback), the app scales out to burst and back in (on-demand and burst pods
// go first). It prints progress and returns a summary that `make test` checks.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/report"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// Options of a demo run.
type Options struct {
	// SchedulerBinary and RebalancerBinary are this repository's binaries.
	SchedulerBinary, RebalancerBinary string
	// SchedulerConfig is the KubeSchedulerConfiguration both run with.
	SchedulerConfig string
	// BinDir holds the control-plane binaries ("" finds or builds them).
	BinDir string
	// Out receives the progress; Keep leaves the cluster running until ctx ends.
	Out  io.Writer
	Keep bool
}

// Prices per CPU-hour, for the cost estimate (on-demand-like list prices; spot ~70% off).
var Prices = map[string]float64{"reserved": 0.025, "spot": 0.012, "on-demand": 0.040, "burst": 0.060}

// Summary is what the story measured.
type Summary struct {
	FailoverSeconds float64 `json:"failoverSeconds"`
	FailbackSeconds float64 `json:"failbackSeconds"`
	// MovesNeeded is the app pods on on-demand when spot came back; Evictions the
	// rebalancer's evictions to bring them back.
	MovesNeeded int `json:"movesNeeded"`
	Evictions   int `json:"evictions"`
	// PlaceholderPreemptions counts placeholders displaced by real pods.
	PlaceholderPreemptions int `json:"placeholderPreemptions"`
	// OnDemandAfterFailback: app pods left on on-demand once failback finished.
	OnDemandAfterFailback int `json:"onDemandAfterFailback"`
	// SurvivorsByTier: where the app's pods are after the scale-in.
	SurvivorsByTier map[string]int `json:"survivorsByTier"`
	// PodSecondsByTier integrates the app's running pods per tier over the story.
	PodSecondsByTier map[string]float64 `json:"podSecondsByTier"`
	// Cost of the app's CPU over the story, and the same pod-time all on on-demand.
	Cost, AllOnDemandCost float64
	// FewestRunning is, per workload, the fewest replicas Running on a node that exists,
	// from the reclaim until failover is over: what a reclaim left serving.
	FewestRunning map[string]int `json:"fewestRunning"`
	// CheckoutPlacements is where checkout's replicas were (policy.FormatCounts) after the
	// placement, the failover and the failback; CheckoutPolicyHeld tells whether its policy
	// held at each of them.
	CheckoutPlacements []string `json:"checkoutPlacements"`
	CheckoutPolicyHeld bool     `json:"checkoutPolicyHeld"`
	// Report is kubectl spot report's at the end (report.go).
	Report *report.Report `json:"report"`
}

const (
	ns        = "shop"
	app       = "web"
	checkout  = "checkout"
	cpuPerPod = "1"
)

// checkoutPolicy is the capacity policy of the checkout workload (pkg/policy): one replica
// always on on-demand, two thirds of the others on spot at most, and at most one replica per
// spot pool, so that the reclaim of one pool takes at most one replica.
var checkoutPolicy = map[string]string{
	policy.OnDemandBaseAnnotation: "1",
	policy.SpotShareAnnotation:    "67",
	policy.MaxPerPoolAnnotation:   "1",
}

type run struct {
	opts    Options
	cluster *localcluster.Cluster
	client  kubernetes.Interface
	model   *capacity.Model
	start   time.Time
	// config is the KubeSchedulerConfiguration the components run with (the demo's prices in).
	config string

	mu      sync.Mutex
	podSecs map[string]float64
	// components are spot-scheduler and the rebalancer: the story stops if one exits.
	components []*localcluster.Process
}

// componentsAlive fails when a component has exited, with the end of its log.
func (r *run) componentsAlive() error {
	for _, p := range r.components {
		if p.Exited() {
			log, _ := os.ReadFile(p.Log)
			tail := string(log)
			if len(tail) > 2000 {
				tail = tail[len(tail)-2000:]
			}
			return fmt.Errorf("%s exited: %v\n%s", p.Name, p.Wait(0), tail)
		}
	}
	return nil
}

func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, "[%5.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// Run plays the story and returns its summary.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	r, cleanup, err := setup(ctx, opts, nil)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	return r.story(ctx)
}

// RunKarpenter plays failover and failback with Karpenter (its kwok provider, built by
// hack/build-karpenter.sh; karpenterDir "" finds or builds it) adding and removing the nodes.
func RunKarpenter(ctx context.Context, opts Options, karpenterDir string) (*KarpenterSummary, error) {
	r, cleanup, err := setup(ctx, opts, &localcluster.KarpenterOptions{Dir: karpenterDir, NodePools: karpenterNodePools()})
	if err != nil {
		return nil, err
	}
	defer cleanup()
	return r.karpenterStory(ctx)
}

// setup starts the control plane (with Karpenter when karpenter is set), spot-scheduler and
// the rebalancer; cleanup stops them (after ctx ends when opts.Keep).
func setup(ctx context.Context, opts Options, karpenter *localcluster.KarpenterOptions) (*run, func(), error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	model, err := simulator.LoadModel(klog.FromContext(ctx), opts.SchedulerConfig, wellknown.SchedulerName)
	if err != nil {
		return nil, nil, err
	}
	r := &run{opts: opts, model: model, start: time.Now(), podSecs: map[string]float64{}}
	what := "etcd, kube-apiserver, kube-controller-manager, kwok"
	if karpenter != nil {
		what += ", Karpenter"
	}
	r.say("starting a local control plane (%s)", what)
	c, err := localcluster.Start(ctx, localcluster.Options{BinDir: opts.BinDir, ControllerManager: true, Karpenter: karpenter})
	if err != nil {
		return nil, nil, err
	}
	r.cluster, r.client = c, c.Client
	cleanup := func() {
		if opts.Keep {
			r.say("KEEP=1: cluster left running. kubectl --kubeconfig %s get pods -A -o wide ; logs in %s. Ctrl-C to stop.", c.Kubeconfig, c.Dir)
			<-ctx.Done()
		}
		_ = c.Stop()
		if !opts.Keep {
			_ = os.RemoveAll(c.Dir)
		}
	}
	if err := r.startComponents(ctx); err != nil {
		cleanup()
		return nil, nil, err
	}
	return r, cleanup, nil
}

func (r *run) startComponents(ctx context.Context) error {
	config := filepath.Join(r.cluster.Dir, "scheduler-config.yaml")
	data, err := os.ReadFile(r.opts.SchedulerConfig)
	if err != nil {
		return err
	}
	if data, err = withPrices(data); err != nil {
		return fmt.Errorf("%s: %w", r.opts.SchedulerConfig, err)
	}
	data = append(data, []byte(fmt.Sprintf("\nclientConnection:\n  kubeconfig: %q\n", r.cluster.Kubeconfig))...)
	if err := os.WriteFile(config, data, 0o600); err != nil {
		return err
	}
	r.config = config
	if r.model, err = simulator.LoadModel(klog.FromContext(ctx), config, wellknown.SchedulerName); err != nil {
		return err
	}
	scheduler, err := r.cluster.StartProcess(ctx, "spot-scheduler", r.opts.SchedulerBinary,
		"--config="+config, "--bind-address=127.0.0.1", "--secure-port=0", "--v=1")
	if err != nil {
		return err
	}
	// Demo timings: pods just failed over may move at once; passes every 10s. The story is
	// told with standing placeholders, so the failback buffer is off (TestFailbackBuffer*
	// tells the buffer's).
	rebalancer, err := r.cluster.StartProcess(ctx, "rebalancer", r.opts.RebalancerBinary,
		"--scheduler-config="+config, "--secure-port=0", "--min-pod-age=0s", "--rebalance-debounce=1s",
		"--rebalance-validation-delay=500ms", "--rebalance-interval=10s", "--failback-buffer=false", "--v=1")
	if err != nil {
		return err
	}
	r.components = []*localcluster.Process{scheduler, rebalancer}
	r.say("spot-scheduler and the rebalancer (with the deletion-cost controller) are running; logs in %s", r.cluster.Dir)
	return nil
}

func node(name, pool, zone string, labels map[string]string, taints ...v1.Taint) *v1.Node {
	res := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("16Gi"), v1.ResourcePods: resource.MustParse("110")}
	l := map[string]string{"kubernetes.io/hostname": name, "karpenter.sh/nodepool": pool,
		"topology.kubernetes.io/zone": zone, "node.kubernetes.io/instance-type": "m5.xlarge"}
	for k, v := range labels {
		l[k] = v
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}, Spec: v1.NodeSpec{Taints: taints},
		Status: v1.NodeStatus{Capacity: res, Allocatable: res}}
}

// withCPU sets the node's CPU capacity.
func withCPU(n *v1.Node, cpu string) *v1.Node {
	n.Status.Capacity[v1.ResourceCPU] = resource.MustParse(cpu)
	n.Status.Allocatable[v1.ResourceCPU] = resource.MustParse(cpu)
	return n
}

var (
	spot     = map[string]string{"karpenter.sh/capacity-type": "spot"}
	onDemand = map[string]string{"karpenter.sh/capacity-type": "on-demand"}
	// burstLabels and burstTaint: a virtual-kubelet node, of the default burst tier (the names
	// internal/testobj and test/framework use).
	burstLabels = map[string]string{"type": "virtual-kubelet"}
	burstTaint  = v1.Taint{Key: "virtual-kubelet.io/provider", Value: "aci", Effect: v1.TaintEffectNoSchedule}
)

func (r *run) createNodes(ctx context.Context, nodes ...*v1.Node) error {
	for _, n := range nodes {
		if _, err := r.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func podSpec(priorityClass string, nodeSelector map[string]string) v1.PodSpec {
	return v1.PodSpec{
		SchedulerName:                 wellknown.SchedulerName,
		PriorityClassName:             priorityClass,
		NodeSelector:                  nodeSelector,
		TerminationGracePeriodSeconds: ptr.To[int64](0),
		Tolerations:                   []v1.Toleration{{Key: burstTaint.Key, Operator: v1.TolerationOpExists}},
		Containers: []v1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpuPerPod), v1.ResourceMemory: resource.MustParse("256Mi")}}}},
	}
}

func deployment(name string, replicas int32, labels map[string]string, spec v1.PodSpec) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

func (r *run) story(ctx context.Context) (*Summary, error) {
	s := &Summary{CheckoutPolicyHeld: true}
	r.say("1. capacity: spot pools A and B (2 x 4 CPU each), an on-demand pool (2 x 4 CPU), one virtual node (burst, 40 CPU)")
	if err := r.createNodes(ctx,
		node("spot-a-1", "spot-a", "zone-1", spot), node("spot-a-2", "spot-a", "zone-1", spot),
		node("spot-b-1", "spot-b", "zone-2", spot), node("spot-b-2", "spot-b", "zone-2", spot),
		node("ondemand-1", "ondemand", "zone-1", onDemand), node("ondemand-2", "ondemand", "zone-2", onDemand),
		withCPU(node("virtual-1", "virtual", "zone-1", burstLabels, burstTaint), "40"),
	); err != nil {
		return nil, err
	}
	if err := r.createNamespace(ctx); err != nil {
		return nil, err
	}
	r.say("2. headroom: 2 placeholder pods pinned to spot; the app %q: 12 replicas of 1 CPU, schedulerName spot-scheduler", app)
	placeholders := deployment("headroom", 2, map[string]string{"app": "headroom", wellknown.PlaceholderLabel: "true"}, podSpec("placeholder", spot))
	if _, err := r.client.AppsV1().Deployments(ns).Create(ctx, placeholders, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if err := r.waitRunning(ctx, "headroom", 2, nil); err != nil {
		return nil, err
	}
	if _, err := r.client.AppsV1().Deployments(ns).Create(ctx, deployment(app, 12, map[string]string{"app": app}, podSpec("", nil)), metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if err := r.waitRunning(ctx, app, 12, nil); err != nil {
		return nil, err
	}
	stopTally := r.tally(ctx)
	defer stopTally()
	r.show(ctx, "the app fills spot first, spread over pools A and B")

	r.say("   the workload %q (4 replicas) declares a capacity policy: %s", checkout, policyNotation(checkoutPolicy))
	withPolicy := deployment(checkout, 4, map[string]string{"app": checkout}, podSpec("", nil))
	withPolicy.Spec.Template.Annotations = checkoutPolicy
	if _, err := r.client.AppsV1().Deployments(ns).Create(ctx, withPolicy, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if err := r.waitRunning(ctx, checkout, 4, nil); err != nil {
		return nil, err
	}
	r.showPolicy(ctx, s, "placed as its policy says")

	r.say("3. pool A receives interruption notices (aws-node-termination-handler/spot-itn), then is reclaimed: the cloud deletes the nodes, their pods wait for the pod garbage collector (40-80 s) before they are replaced")
	for _, n := range []string{"spot-a-1", "spot-a-2"} {
		if err := r.taint(ctx, n, v1.Taint{Key: "aws-node-termination-handler/spot-itn", Value: "notice", Effect: v1.TaintEffectNoSchedule}); err != nil {
			return nil, err
		}
	}
	fewest := map[string]int{app: 12, checkout: 4}
	stopWatch := r.watchFewest(ctx, fewest)
	reclaim := time.Now()
	if err := r.reclaim(ctx, "spot-a-1", "spot-a-2"); err != nil {
		return nil, err
	}
	if err := r.waitRunning(ctx, app, 12, nil); err != nil {
		return nil, err
	}
	if err := r.waitRunning(ctx, checkout, 4, nil); err != nil {
		return nil, err
	}
	s.FailoverSeconds = time.Since(reclaim).Seconds()
	stopWatch()
	s.FewestRunning = fewest
	r.say("failover: all 12 replicas Running again %.1fs after the reclaim; the fewest Running meanwhile: %s %d of 12, %s %d of 4",
		s.FailoverSeconds, app, fewest[app], checkout, fewest[checkout])
	counts := r.show(ctx, "pool B took what it could (placeholders displaced first), the rest went to on-demand")
	held := r.showPolicy(ctx, s, "after the failover")
	// The moves failback needs: the app's pods off spot, and checkout's replicas its policy
	// would have on spot but are not.
	s.MovesNeeded = counts["on-demand"] + counts["burst"] + max(0, held.allowedReclaimable-held.counts.Reclaimable())

	r.say("4. spot capacity returns: pool A is replaced by two new nodes")
	if err := r.createNodes(ctx, node("spot-a-3", "spot-a", "zone-1", spot), node("spot-a-4", "spot-a", "zone-1", spot)); err != nil {
		return nil, err
	}
	back := time.Now()
	if err := r.waitRunning(ctx, app, 12, func(tier string) bool { return tier == "spot" }); err != nil {
		return nil, err
	}
	if err := r.waitPlacement(ctx, checkout, func(c policy.Counts) bool { return c.Reclaimable() == held.allowedReclaimable }); err != nil {
		return nil, err
	}
	s.FailbackSeconds = time.Since(back).Seconds()
	counts = r.show(ctx, fmt.Sprintf("failback: every replica back on spot %.1fs after the capacity returned", s.FailbackSeconds))
	r.showPolicy(ctx, s, "failback moved what its policy allows to spot")
	s.OnDemandAfterFailback = counts["on-demand"]
	r.printEvents(ctx, "Rebalanced")

	r.say("5. a traffic peak: the app scales to 26 replicas (spot, then on-demand, then the virtual node)")
	if err := r.scale(ctx, 26); err != nil {
		return nil, err
	}
	if err := r.waitRunning(ctx, app, 26, nil); err != nil {
		return nil, err
	}
	r.show(ctx, "scaled out")
	if err := r.waitDeletionCosts(ctx, 26); err != nil {
		return nil, err
	}
	r.say("6. the peak is over: scale in to 12; pod-deletion-cost makes burst and on-demand pods go first")
	if err := r.scale(ctx, 12); err != nil {
		return nil, err
	}
	if err := r.waitRunning(ctx, app, 12, nil); err != nil {
		return nil, err
	}
	s.SurvivorsByTier = r.show(ctx, "after the scale-in")
	stopTally()

	s.Evictions = r.countEvents(ctx, "Rebalanced")
	s.PlaceholderPreemptions = r.countEvents(ctx, "Preempted")
	r.mu.Lock()
	s.PodSecondsByTier = r.podSecs
	for tier, secs := range r.podSecs {
		s.Cost += secs / 3600 * Prices[tier]
		s.AllOnDemandCost += secs / 3600 * Prices["on-demand"]
	}
	r.mu.Unlock()
	r.printSummary(s)
	if err := r.printReport(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// createNamespace creates the demo's namespace and the placeholders' PriorityClass (below
// every workload, never preempting).
func (r *run) createNamespace(ctx context.Context) error {
	if _, err := r.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	never := v1.PreemptNever
	_, err := r.client.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: "placeholder"}, Value: -10, PreemptionPolicy: &never,
	}, metav1.CreateOptions{})
	return err
}

// sample calls fn every 250ms with the seconds since its previous call, until the returned
// function is called (which waits for fn to return).
func sample(ctx context.Context, fn func(ctx context.Context, dt float64)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	last := time.Now()
	go func() {
		defer close(done)
		_ = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, false, func(ctx context.Context) (bool, error) {
			now := time.Now()
			fn(ctx, now.Sub(last).Seconds())
			last = now
			return false, nil
		})
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// tally integrates the app's running pods per tier until stopped.
func (r *run) tally(ctx context.Context) func() {
	return sample(ctx, func(ctx context.Context, dt float64) {
		counts, err := r.perTier(ctx, app)
		if err != nil {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for tier, n := range counts {
			r.podSecs[tier] += float64(n) * dt
		}
	})
}

// watchFewest lowers fewest[workload] to the fewest replicas seen Running on existing nodes
// until stopped; read fewest only after.
func (r *run) watchFewest(ctx context.Context, fewest map[string]int) func() {
	return sample(ctx, func(ctx context.Context, _ float64) {
		for name, least := range fewest {
			counts, err := r.perTier(ctx, name)
			if err != nil {
				continue
			}
			running := 0
			for _, n := range counts {
				running += n
			}
			fewest[name] = min(least, running)
		}
	})
}

// policyNotation is a policy's annotations as one line.
func policyNotation(annotations map[string]string) string {
	var parts []string
	for _, k := range policy.Annotations {
		parts = append(parts, k+"="+annotations[k])
	}
	return strings.Join(parts, " ")
}

// policyState is where checkout's replicas are, measured against its policy.
type policyState struct {
	counts             policy.Counts
	allowedReclaimable int
}

// showPolicy prints checkout's placement and whether its policy holds, and records both in s.
func (r *run) showPolicy(ctx context.Context, s *Summary, title string) policyState {
	pol, err := policy.ForPod(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: checkoutPolicy}}, policy.None)
	if err != nil {
		r.say("%s: %v", checkout, err)
		s.CheckoutPolicyHeld = false
		return policyState{}
	}
	counts, err := r.placement(ctx, checkout)
	if err != nil {
		r.say("%s (could not count pods: %v)", title, err)
		s.CheckoutPolicyHeld = false
		return policyState{}
	}
	v := pol.Violation(counts)
	verdict := "policy holds"
	if !v.Holds() {
		verdict = fmt.Sprintf("policy broken: %d short of on-demand, %d over a pool's cap", v.Shortfall, v.PoolExcess)
		s.CheckoutPolicyHeld = false
	}
	placed := policy.FormatCounts(counts)
	s.CheckoutPlacements = append(s.CheckoutPlacements, placed)
	r.say("%s: %s -> %s (%s)", checkout, title, placed, verdict)
	return policyState{counts: counts, allowedReclaimable: pol.Target(counts.Total()).Reclaimable}
}

// placement counts a workload's Running replicas on existing nodes by capacity class and pool.
func (r *run) placement(ctx context.Context, name string) (policy.Counts, error) {
	var counts policy.Counts
	err := r.eachRunning(ctx, name, func(c capacity.Class) { counts.Add(r.model.Reclaimable(c.Tier), c.Pool, 1) })
	return counts, err
}

// waitPlacement waits until the workload's placement satisfies ok.
func (r *run) waitPlacement(ctx context.Context, name string, ok func(policy.Counts) bool) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := r.componentsAlive(); err != nil {
			return false, err
		}
		counts, err := r.placement(ctx, name)
		return err == nil && ok(counts), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s's placement: %w", name, err)
	}
	return nil
}

// perTier counts a workload's Running replicas on existing nodes per tier.
func (r *run) perTier(ctx context.Context, name string) (map[string]int, error) {
	counts := map[string]int{}
	err := r.eachRunning(ctx, name, func(c capacity.Class) { counts[c.TierName]++ })
	return counts, err
}

// eachRunning calls fn with the node class of each of the workload's Running replicas on a
// node that exists (a pod bound to a reclaimed node is Running on paper only).
func (r *run) eachRunning(ctx context.Context, name string, fn func(capacity.Class)) error {
	nodes, err := r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	classOf := map[string]capacity.Class{}
	for i := range nodes.Items {
		classOf[nodes.Items[i].Name] = r.model.Classify(&nodes.Items[i])
	}
	pods, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		if p.Status.Phase == v1.PodRunning && p.DeletionTimestamp == nil {
			if c, ok := classOf[p.Spec.NodeName]; ok {
				fn(c)
			}
		}
	}
	return nil
}

// waitRunning waits until exactly n app pods exist, all Running (and, if onTier is given,
// all on nodes whose tier it accepts).
func (r *run) waitRunning(ctx context.Context, name string, n int, onTier func(string) bool) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := r.componentsAlive(); err != nil {
			return false, err
		}
		pods, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return false, nil
		}
		nodes, err := r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		tierOf := map[string]string{}
		for i := range nodes.Items {
			tierOf[nodes.Items[i].Name] = r.model.Classify(&nodes.Items[i]).TierName
		}
		running := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || p.Status.Phase != v1.PodRunning {
				return false, nil
			}
			tier, onNode := tierOf[p.Spec.NodeName]
			if !onNode {
				// Bound to a reclaimed node: Running on paper until the pod garbage collector
				// removes it and its ReplicaSet replaces it.
				return false, nil
			}
			if onTier != nil && !onTier(tier) {
				return false, nil
			}
			running++
		}
		return running == n, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d %s pods Running: %w", n, name, err)
	}
	return nil
}

func (r *run) taint(ctx context.Context, name string, taint v1.Taint) error {
	return localcluster.TaintNode(ctx, r.client, name, taint)
}

// reclaim takes nodes back as a provider does (localcluster.Reclaim: the Nodes go, their pods
// are left to the pod garbage collector).
func (r *run) reclaim(ctx context.Context, names ...string) error {
	for _, name := range names {
		if err := localcluster.Reclaim(ctx, r.client, name); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) scale(ctx context.Context, replicas int32) error {
	return localcluster.ScaleDeployment(ctx, r.client, ns, app, replicas)
}

// waitDeletionCosts waits until the controller has ranked all n app pods.
func (r *run) waitDeletionCosts(ctx context.Context, n int) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false, nil
		}
		ranked := 0
		for _, p := range pods.Items {
			if _, ok := p.Annotations["controller.kubernetes.io/pod-deletion-cost"]; ok {
				ranked++
			}
		}
		return ranked == n, nil
	})
}

// show prints the app's pods per tier and returns the counts.
func (r *run) show(ctx context.Context, title string) map[string]int {
	counts, err := r.perTier(ctx, app)
	if err != nil {
		r.say("%s (could not count pods: %v)", title, err)
		return nil
	}
	var parts []string
	for _, t := range r.model.TierNames() {
		parts = append(parts, fmt.Sprintf("%s %d", t, counts[t]))
	}
	r.say("%s -> pods per tier: %s", title, strings.Join(parts, ", "))
	return counts
}

func (r *run) events(ctx context.Context, reason string) []v1.Event {
	list, err := r.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + reason})
	if err != nil {
		return nil
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].InvolvedObject.Name < list.Items[j].InvolvedObject.Name })
	return list.Items
}

func (r *run) countEvents(ctx context.Context, reason string) int { return len(r.events(ctx, reason)) }

func (r *run) printEvents(ctx context.Context, reason string) {
	for _, e := range r.events(ctx, reason) {
		fmt.Fprintf(r.opts.Out, "          event %s on %s: %s\n", reason, e.InvolvedObject.Name, e.Message)
	}
}

func (r *run) printSummary(s *Summary) {
	w := tabwriter.NewWriter(r.opts.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nSUMMARY\t")
	fmt.Fprintf(w, "time to failover (reclaim -> all replicas Running)\t%.1fs\n", s.FailoverSeconds)
	fmt.Fprintf(w, "time to failback (spot back -> all replicas on spot)\t%.1fs\n", s.FailbackSeconds)
	fmt.Fprintf(w, "rebalancer evictions / moves needed\t%d / %d\n", s.Evictions, s.MovesNeeded)
	fmt.Fprintf(w, "app pods left on on-demand after failback\t%d\n", s.OnDemandAfterFailback)
	fmt.Fprintf(w, "placeholder preemptions\t%d\n", s.PlaceholderPreemptions)
	var tiers []string
	for t := range s.SurvivorsByTier {
		tiers = append(tiers, fmt.Sprintf("%s %d", t, s.SurvivorsByTier[t]))
	}
	sort.Strings(tiers)
	fmt.Fprintf(w, "survivors of the scale-in, per tier\t%s\n", strings.Join(tiers, ", "))
	fmt.Fprintf(w, "fewest replicas Running during the reclaim\t%s %d of 12 (no policy), %s %d of 4 (%s)\n",
		app, s.FewestRunning[app], checkout, s.FewestRunning[checkout], policyNotation(checkoutPolicy))
	fmt.Fprintf(w, "%s's policy held after placement, failover and failback\t%v (%s)\n", checkout, s.CheckoutPolicyHeld, strings.Join(s.CheckoutPlacements, " | "))
	var secs []string
	for _, t := range []string{"reserved", "spot", "on-demand", "burst"} {
		if v, ok := s.PodSecondsByTier[t]; ok {
			secs = append(secs, fmt.Sprintf("%s %.0f", t, v))
		}
	}
	fmt.Fprintf(w, "app pod-seconds per tier\t%s\n", strings.Join(secs, ", "))
	fmt.Fprintf(w, "cost of the app's CPU (price table in internal/demo)\t$%.4f vs $%.4f all on-demand (%.0f%% saved)\n",
		s.Cost, s.AllOnDemandCost, 100*(1-s.Cost/max(s.AllOnDemandCost, 1e-9)))
	_ = w.Flush()
}
