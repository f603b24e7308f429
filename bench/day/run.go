package day

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

const (
	namespace        = "bench"
	workloadLabel    = "bench.spot-scheduler.io/workload"
	placeholderLabel = "spot-scheduler.io/placeholder"
	placeholderClass = "placeholder"
)

// Options of one run: one strategy, one repetition of the episodes.
type Options struct {
	Shape *Shape
	// Episodes to run in order (default Library).
	Episodes []string
	// BinDir holds the control-plane binaries ("" finds or builds them); KarpenterDir
	// Karpenter's build ("": $SPOT_SCHEDULER_KARPENTER_DIR or hack/build-karpenter.sh).
	BinDir, KarpenterDir string
	// SchedulerBinary, RebalancerBinary and SchedulerConfig run spot-scheduler;
	// DeschedulerBinary runs aks-recipe.
	SchedulerBinary, RebalancerBinary, SchedulerConfig, DeschedulerBinary string
	// LogDir, when set, keeps the run's component logs in LogDir/<strategy>-r<repetition>.
	LogDir string
	// Verbosity: the schedulers' and spot-rebalancer's log level (--v; 0 means 1). Higher
	// levels cost CPU the components under test would otherwise have: for diagnosis only.
	Verbosity  int
	Repetition int
	// Invocation and Chain identify the run: the episodes of one repetition may be split
	// into chains run on clusters side by side (the runs of one invocation, repetition and
	// strategy together make one repetition).
	Invocation string
	Chain      int
	Out        io.Writer
}

// Run is one strategy's pass through the episodes.
type Run struct {
	Strategy   string    `json:"strategy"`
	Shape      string    `json:"shape"`
	Repetition int       `json:"repetition"`
	Invocation string    `json:"invocation"`
	Chain      int       `json:"chain"`
	Date       time.Time `json:"date"`
	// Wall: the whole run, start-up included (seconds).
	Wall     float64   `json:"wall"`
	Episodes []Episode `json:"episodes"`
	// Billed: node-seconds by tier from the first episode's event to the last one's end,
	// counted over every machine independently of the episodes (a check: the episodes plus
	// their settled stretches in between must add up to it).
	Billed map[string]float64 `json:"billed"`
	// RefusedLaunches: NodeClaims launched into a pool that had no capacity.
	RefusedLaunches int `json:"refusedLaunches"`
}

type runner struct {
	ctx      context.Context
	opts     Options
	shape    *Shape
	strategy string
	cluster  *localcluster.Cluster
	client   kubernetes.Interface
	k        *localcluster.Karpenter
	procs    []*localcluster.Process
	rec      *recorder
	caches   *caches
	start    time.Time

	mu sync.Mutex
	// out: the pools the cloud has no capacity in now, since when; interrupted: the nodes
	// given a notice (their pods' evictions are the reclaim's, not moves).
	out         map[string]time.Time
	interrupted map[string]bool
	// unavailable: the pools closed to launches after a refused one, until when.
	unavailable map[string]time.Time
	peak        bool
}

func (r *runner) say(format string, args ...any) {
	if r.opts.Out != nil {
		fmt.Fprintf(r.opts.Out, "[%s r%d.%d %5.0fs] %s\n", r.strategy, r.opts.Repetition, r.opts.Chain, time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
	}
}

// Execute runs the episodes under one strategy on a fresh cluster.
func Execute(ctx context.Context, strategy string, opts Options) (_ *Run, err error) {
	if err := ValidStrategy(strategy); err != nil {
		return nil, err
	}
	if opts.Shape == nil {
		return nil, errors.New("Options.Shape: no shape")
	}
	if err := opts.Shape.Validate(); err != nil {
		return nil, err
	}
	if len(opts.Episodes) == 0 {
		opts.Episodes = Library
	}
	steps := make([]Step, len(opts.Episodes))
	for i, kind := range opts.Episodes {
		if steps[i], err = StepFor(opts.Shape, kind); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &runner{ctx: ctx, opts: opts, shape: opts.Shape, strategy: strategy, start: time.Now(), out: map[string]time.Time{}, interrupted: map[string]bool{}, unavailable: map[string]time.Time{}}
	dir := ""
	if opts.LogDir != "" {
		dir = filepath.Join(opts.LogDir, fmt.Sprintf("%s-r%d-c%d", strategy, opts.Repetition, opts.Chain))
		_ = os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	s := opts.Shape
	r.say("starting a local control plane (etcd, kube-apiserver, kube-controller-manager, kwok)")
	c, err := localcluster.Start(ctx, localcluster.Options{BinDir: opts.BinDir, Dir: dir, ControllerManager: true,
		NotReadyTaint: true, NodeReadyJitter: s.NodeReadyJitter, PodReadyDelay: s.PodReadyDelay})
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
	if err := r.setup(); err != nil {
		return nil, errors.Join(err, r.checkComponents())
	}
	run := &Run{Strategy: strategy, Shape: s.Name, Repetition: opts.Repetition, Invocation: opts.Invocation, Chain: opts.Chain, Date: time.Now().UTC()}
	r.say("creating the workloads off-peak and waiting for the cluster to settle")
	if err := r.createWorkloads(); err != nil {
		return nil, err
	}
	if _, ok, err := r.settle(r.rec.now()); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("the cluster did not settle within %s of creating the workloads", s.EpisodeTimeout)
	}
	for _, st := range steps {
		ep, err := r.episode(st)
		if err != nil {
			return nil, fmt.Errorf("episode %s: %w", st.Kind, err)
		}
		run.Episodes = append(run.Episodes, *ep)
	}
	if n := len(run.Episodes); n > 0 {
		first, last := run.Episodes[0], run.Episodes[n-1]
		r.rec.mu.Lock()
		run.Billed, run.RefusedLaunches = r.rec.billed(first.At, last.At+last.Duration), r.rec.refused
		r.rec.mu.Unlock()
	}
	run.Wall = time.Since(r.start).Seconds()
	return run, nil
}

func (r *runner) setup() error {
	ctx, s := r.ctx, r.shape
	if _, err := r.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	never := v1.PreemptNever
	if _, err := r.client.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: placeholderClass}, Value: -10, PreemptionPolicy: &never,
		Description: "Overprovisioner placeholders: preempted by any real pod.",
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if isSpotScheduler(r.strategy) {
		if err := r.chartObjects(); err != nil {
			return err
		}
	}
	if err := r.startComponents(); err != nil {
		return err
	}
	pools := nodePools(s, r.strategy)
	r.say("starting Karpenter with NodePools %s", describePools(pools))
	k, err := r.cluster.StartKarpenter(ctx, localcluster.KarpenterOptions{Dir: r.opts.KarpenterDir, NodePools: pools,
		InstanceTypes: instanceTypes(s), NodeRegistrationDelay: s.NodeRegistrationDelay})
	if err != nil {
		return err
	}
	r.k = k
	r.procs = append(r.procs, k.Process)
	if r.caches, err = r.startCaches(ctx); err != nil {
		return err
	}
	r.rec = newRecorder(r)
	if err := r.rec.start(ctx); err != nil {
		return err
	}
	go r.refuseLaunchesPastCapacity()
	return nil
}

// chartObjects creates what the chart creates for spot-rebalancer beside its Deployment (in
// the release namespace, here kube-system, the binary's default): the reclaim history's
// ConfigMap and the failback buffer's PriorityClass.
func (r *runner) chartObjects() error {
	ctx := r.ctx
	ns, name := v1alpha1.DefaultReclaimHistoryNamespace, v1alpha1.DefaultReclaimHistoryName
	if _, err := r.client.CoreV1().ConfigMaps(ns).Create(ctx, &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	never := v1.PreemptNever
	_, err := r.client.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: wellknown.FailbackBufferPriorityClass}, Value: -10, PreemptionPolicy: &never,
		Description: "spot-scheduler failback buffer pods (the chart's default).",
	}, metav1.CreateOptions{})
	return err
}

func describePools(pools []localcluster.NodePool) string {
	parts := make([]string, len(pools))
	for i, p := range pools {
		parts[i] = fmt.Sprintf("%s (%s, weight %d, %s CPU, %s after %s)", p.Name, p.CapacityType, p.Weight, p.CPULimit, p.ConsolidationPolicy, p.ConsolidateAfter)
	}
	return strings.Join(parts, ", ")
}

// podSpec is a workload's pod: one container, the termination grace period of most web
// services (30 s is the default; 0 would hide the drain's cost), tolerating the virtual node.
// The default scheduler's strategies prefer spot nodes, then real nodes (seeds 000, 002).
func (r *runner) podSpec(milliCPU int64) v1.PodSpec {
	spec := v1.PodSpec{
		SchedulerName: v1.DefaultSchedulerName,
		Tolerations:   []v1.Toleration{{Key: virtualTaintKey, Operator: v1.TolerationOpExists}},
		Containers: []v1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{
				v1.ResourceCPU:    *resource.NewMilliQuantity(milliCPU, resource.DecimalSI),
				v1.ResourceMemory: resource.MustParse("256Mi"),
			}}}},
	}
	if isSpotScheduler(r.strategy) {
		spec.SchedulerName = "spot-scheduler"
		return spec
	}
	spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
			{Weight: 100, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{
				{Key: localcluster.KarpenterCapacityTypeLabel, Operator: v1.NodeSelectorOpIn, Values: []string{localcluster.CapacityTypeSpot}}}}},
			{Weight: 50, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{
				{Key: "type", Operator: v1.NodeSelectorOpNotIn, Values: []string{"virtual-kubelet"}}}}},
		},
	}}
	return spec
}

func (r *runner) deployment(name string, replicas int, spec v1.PodSpec, labels, annotations map[string]string) *appsv1.Deployment {
	labels = mergeMaps(map[string]string{"app": name}, labels)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations}, Spec: spec},
		},
	}
}

func mergeMaps(a, b map[string]string) map[string]string {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// createWorkloads creates every workload off-peak with its PDB, and the recipe's standing
// headroom.
func (r *runner) createWorkloads() error {
	ctx := r.ctx
	for _, w := range r.shape.Workloads {
		var annotations map[string]string
		if w.Policy && r.strategy == SpotSchedulerPolicy {
			annotations = r.shape.Policy
		}
		d := r.deployment(w.Name, w.Replicas, r.podSpec(w.MilliCPU), map[string]string{workloadLabel: w.Name}, annotations)
		d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
		if _, err := r.client.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return err
		}
		if w.PDB == "" {
			continue
		}
		pdb, err := pdbFor(w)
		if err != nil {
			return err
		}
		if _, err := r.client.PolicyV1().PodDisruptionBudgets(namespace).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	r.rec.setDesired(r.shape, false)
	if r.strategy != AKSRecipe {
		return nil
	}
	spec := r.podSpec(aksHeadroomMilliCPU)
	spec.Affinity, spec.Tolerations = nil, nil
	spec.PriorityClassName = placeholderClass
	spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	spec.NodeSelector = map[string]string{localcluster.KarpenterCapacityTypeLabel: localcluster.CapacityTypeSpot}
	d := r.deployment("headroom", aksHeadroomReplicas, spec, map[string]string{placeholderLabel: "true"}, nil)
	_, err := r.client.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{})
	return err
}

func pdbFor(w Workload) (*policyv1.PodDisruptionBudget, error) {
	key, value, ok := strings.Cut(w.PDB, "=")
	if !ok || (key != "maxUnavailable" && key != "minAvailable") {
		return nil, fmt.Errorf("workload %s: PDB %q is not maxUnavailable=<n|n%%> or minAvailable=<n|n%%>", w.Name, w.PDB)
	}
	v := intstr.Parse(value)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: w.Name},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": w.Name}}},
	}
	if key == "maxUnavailable" {
		pdb.Spec.MaxUnavailable = &v
	} else {
		pdb.Spec.MinAvailable = &v
	}
	return pdb, nil
}

// episode applies one step at t0 and waits until the cluster has settled again.
func (r *runner) episode(st Step) (*Episode, error) {
	t0 := r.rec.now()
	r.say("episode %s", st.Kind)
	if err := r.apply(st, t0); err != nil {
		return nil, err
	}
	t1, settled, err := r.settle(t0)
	if err != nil {
		return nil, err
	}
	ep := r.rec.measure(st, t0, t1, settled)
	r.say("episode %s: %.0fs (settled %v), nodes %v -> %v, evictions %d (+%d drained), deficit %.0f replica-s",
		st.Kind, ep.Duration, settled, ep.StartNodes, ep.EndNodes, ep.Evictions, ep.DrainEvictions, ep.TotalDeficit())
	return ep, nil
}

// apply does a step's action. A reclaim lowers the pools' NodePool limits to 0, hands every
// node of each pool to Karpenter's interruption path (its handling of a spot interruption
// message: taint karpenter.sh/disrupted, evict, remove), pool after pool Lag apart; when the
// notice runs out, whatever is left of a node is terminated by the cloud (node deleted). From
// the notice on, the cloud refuses launches in the pool (refuseLaunchesPastCapacity).
func (r *runner) apply(st Step, t0 float64) error {
	ctx := r.ctx
	if st.Scale {
		r.mu.Lock()
		r.peak = st.Peak
		r.mu.Unlock()
		r.rec.setDesired(r.shape, st.Peak)
		for _, w := range r.shape.Workloads {
			n := w.Replicas
			if st.Peak {
				n = w.Peak
			}
			if err := localcluster.ScaleDeployment(ctx, r.client, namespace, w.Name, int32(n)); err != nil {
				return err
			}
		}
	}
	for _, pool := range st.Return {
		r.mu.Lock()
		delete(r.out, pool)
		delete(r.unavailable, pool)
		r.mu.Unlock()
		if err := r.k.SetNodePoolCPULimit(ctx, pool, fmt.Sprint(r.poolLimit(pool))); err != nil {
			return err
		}
	}
	for i, pool := range st.Reclaim {
		if i > 0 && st.Lag > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(st.Lag):
			}
		}
		if err := r.reclaim(pool, st.Notice); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) poolLimit(pool string) int64 {
	for _, p := range r.shape.Pools {
		if p.Name == pool {
			return p.CPULimit
		}
	}
	return 0
}

func (r *runner) reclaim(pool string, notice time.Duration) error {
	ctx := r.ctx
	// Under the lock: a closed pool's reopening (reopenToLaunches) must not restore the limit
	// of a pool reclaimed meanwhile.
	r.mu.Lock()
	delete(r.unavailable, pool)
	err := r.k.SetNodePoolCPULimit(ctx, pool, "0")
	r.mu.Unlock()
	if err != nil {
		return err
	}
	nodes, err := localcluster.LiveNodeNames(ctx, r.client, localcluster.KarpenterNodePoolLabel+"="+pool)
	if err != nil {
		return err
	}
	r.mu.Lock()
	for _, n := range nodes {
		r.interrupted[n] = true
	}
	r.mu.Unlock()
	for _, n := range nodes {
		if err := r.k.Interrupt(ctx, n); err != nil && !apierrors.IsNotFound(err) {
			r.say("no NodeClaim behind %s (%v): the cloud takes the node at the end of the notice", n, err)
		}
	}
	// From now on the cloud refuses launches there and ends what was not yet a node.
	r.mu.Lock()
	r.out[pool] = time.Now()
	r.mu.Unlock()
	r.say("pool %s reclaimed: %d nodes, %s notice", pool, len(nodes), notice)
	time.AfterFunc(notice, func() {
		for _, n := range nodes {
			bg := context.WithoutCancel(ctx)
			if _, err := r.client.CoreV1().Nodes().Get(bg, n, metav1.GetOptions{}); err == nil {
				if err := localcluster.Reclaim(bg, r.client, n); err == nil {
					r.say("notice over: node %s terminated by the cloud", n)
				}
			}
		}
	})
	return nil
}

// refuseLaunchesPastCapacity plays the cloud, whose pools have finite capacity: a NodeClaim
// that takes its pool past the pool's CPU (Karpenter checks a NodePool's limit against a
// status that lags its launches, so it launches past it) is deleted at once, newest first, as
// an insufficient-capacity error would end it; in a pool that is out, every NodeClaim not
// already going is (those not yet a node when the notice came, and any launch since).
func (r *runner) refuseLaunchesPastCapacity() {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		claims, err := r.caches.nodeClaims()
		if err != nil {
			continue
		}
		byPool := map[string][]*unstructured.Unstructured{}
		for _, c := range claims {
			// A claim refused a moment ago may still be in the watch's cache: gone already.
			if c.GetDeletionTimestamp() == nil && !r.rec.wasRefused(c.GetName()) {
				pool := c.GetLabels()[localcluster.KarpenterNodePoolLabel]
				byPool[pool] = append(byPool[pool], c)
			}
		}
		for pool, cs := range byPool {
			r.mu.Lock()
			_, out := r.out[pool]
			r.mu.Unlock()
			room := int(r.poolLimit(pool) / int64(r.shape.NodeCPU))
			if out {
				room = 0
			}
			if len(cs) <= room {
				continue
			}
			sort.Slice(cs, func(i, j int) bool {
				return cs[i].GetCreationTimestamp().Time.Before(cs[j].GetCreationTimestamp().Time)
			})
			for _, c := range cs[room:] {
				// A claim that is already a Ready node was running (billed, its pods drained);
				// one that is not never started.
				running := claimReady(c)
				if running {
					if node, _, _ := unstructured.NestedString(c.Object, "status", "nodeName"); node != "" {
						r.mu.Lock()
						r.interrupted[node] = true
						r.mu.Unlock()
					}
				}
				if err := r.k.Dynamic.Resource(localcluster.NodeClaimGVR).Delete(r.ctx, c.GetName(), metav1.DeleteOptions{}); err == nil {
					if !running {
						r.rec.noteRefused(c.GetName())
					}
					r.say("refused launch %s (running %v): pool %s has no more capacity", c.GetName(), running, pool)
				}
			}
			if !out {
				r.closeToLaunches(pool)
			}
		}
	}
}

// closeToLaunches holds a pool's NodePool limit at 0 for Shape.UnavailableAfterRefusal after
// the cloud refused a launch there: Karpenter then launches elsewhere at once instead of
// retrying the full pool every batch (an offering that returned insufficient capacity is out
// of Karpenter's launches for a while on a real cloud). A reclaim or a return in the meantime
// decides the limit instead.
func (r *runner) closeToLaunches(pool string) {
	ttl := r.shape.UnavailableAfterRefusal
	if ttl <= 0 {
		return
	}
	until := time.Now().Add(ttl)
	r.mu.Lock()
	_, already := r.unavailable[pool]
	r.unavailable[pool] = until
	r.mu.Unlock()
	if already {
		return
	}
	if err := r.k.SetNodePoolCPULimit(r.ctx, pool, "0"); err != nil {
		r.say("pool %s: closing to launches: %v", pool, err)
	}
	r.say("pool %s closed to launches for %s (insufficient capacity)", pool, ttl)
	time.AfterFunc(ttl, func() { r.reopenToLaunches(pool) })
}

// reopenToLaunches restores a closed pool's limit when its time is up and it is neither out
// nor already reopened by a return; a refusal since then extends the time.
func (r *runner) reopenToLaunches(pool string) {
	r.mu.Lock()
	until, closed := r.unavailable[pool]
	_, out := r.out[pool]
	if !closed || out {
		delete(r.unavailable, pool)
		r.mu.Unlock()
		return
	}
	if wait := time.Until(until); wait > 0 {
		r.mu.Unlock()
		time.AfterFunc(wait, func() { r.reopenToLaunches(pool) })
		return
	}
	delete(r.unavailable, pool)
	var err error
	if r.ctx.Err() == nil {
		err = r.k.SetNodePoolCPULimit(r.ctx, pool, fmt.Sprint(r.poolLimit(pool)))
	}
	r.mu.Unlock()
	if err != nil {
		r.say("pool %s: reopening to launches: %v", pool, err)
		return
	}
	r.say("pool %s open to launches again", pool)
}

// checkComponents fails when a component has exited: a run without it measures nothing.
func (r *runner) checkComponents() error { return localcluster.AnyExited(r.procs) }

// settle waits until nothing is Pending, no NodeClaim is launching or going, and nothing
// changed for Shape.Quiet; it returns the time of the last change (the episode's end) and
// whether that happened within Shape.EpisodeTimeout of from.
func (r *runner) settle(from float64) (float64, bool, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return 0, false, r.ctx.Err()
		case <-tick.C:
		}
		if err := r.checkComponents(); err != nil {
			return 0, false, err
		}
		if err := r.rec.failed(); err != nil {
			return 0, false, err
		}
		now := r.rec.now()
		last, busy := r.rec.lastChange()
		last = max(last, from)
		if !busy && now-last >= r.shape.Quiet.Seconds() {
			return last, true, nil
		}
		if now-from >= r.shape.EpisodeTimeout.Seconds() {
			r.say("not settled after %s (busy %v): ending the episode", r.shape.EpisodeTimeout, busy)
			return now, false, nil
		}
	}
}
