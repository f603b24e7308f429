package rebalance

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// The failback buffer (docs/design.md, "Failback buffer"). After a failover nothing asks the
// autoscaler for spot again: the pods that failed over run happily on on-demand, and the
// rebalancer moves pods only into room that exists. So, while pods would move back to a
// better tier if room existed there (failbackDemand), the leader keeps that many Pending
// placeholder pods pinned to the better tier, each sized like one such pod. Pending pods cost
// nothing; the autoscaler (Karpenter, cluster-autoscaler) sees them and launches the better
// tier; the placeholders bind there; the rebalancer counts placeholder room as free and moves
// the pods into it, each replacement preempting a placeholder; and the buffer shrinks as the
// failback completes, to nothing when no pod is left to move back.

// BufferOptions configure the failback buffer.
type BufferOptions struct {
	// Enabled keeps the buffer; when off, the leader deletes the buffer pods it finds.
	Enabled bool
	// MaxPods bounds the buffer's pods (the autoscaler launches room for that many at most at
	// once; as pods move back, the buffer asks for the rest).
	MaxPods int
	// Namespace of the buffer's pods (the rebalancer's own).
	Namespace string
	// PriorityClassName of the buffer's pods: negative priority, preemptionPolicy Never.
	PriorityClassName string
	// Image of the buffer's pods' one container (a pause image).
	Image string
}

// Defaults of the failback buffer.
const (
	DefaultBufferMaxPods   = 100
	DefaultBufferNamespace = "kube-system"
	DefaultBufferImage     = "registry.k8s.io/pause:3.10"
	// maxBufferMaxPods bounds --failback-buffer-max-pods.
	maxBufferMaxPods = 10000
)

// DefaultBufferOptions are the buffer's defaults: on.
func DefaultBufferOptions() BufferOptions {
	return BufferOptions{Enabled: true, MaxPods: DefaultBufferMaxPods, Namespace: DefaultBufferNamespace,
		PriorityClassName: wellknown.FailbackBufferPriorityClass, Image: DefaultBufferImage}
}

// Validate checks the options; every error names its flag and the allowed values.
func (o BufferOptions) Validate() []error {
	var errs []error
	if o.MaxPods < 1 || o.MaxPods > maxBufferMaxPods {
		errs = append(errs, fmt.Errorf("--failback-buffer-max-pods: must be 1 to %d, got %d", maxBufferMaxPods, o.MaxPods))
	}
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--failback-buffer-namespace: %q is not a namespace name: %s", o.Namespace, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Subdomain(o.PriorityClassName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--failback-buffer-priority-class: %q is not a PriorityClass name: %s", o.PriorityClassName, strings.Join(msgs, "; ")))
	}
	if o.Image == "" || strings.ContainsAny(o.Image, " \t\n") {
		errs = append(errs, fmt.Errorf("--failback-buffer-image: must be an image reference (e.g. %s), got %q", DefaultBufferImage, o.Image))
	}
	return errs
}

const bufferKey = "failback-buffer"

// Event reasons of the buffer's pods.
const (
	BufferCreatedReason = "FailbackBufferCreated"
	BufferRemovedReason = "FailbackBufferRemoved"
)

// failbackBuffer is the controller's buffer: a reconcile loop of its own, on the controller's
// informers, triggered by pod and node events.
type failbackBuffer struct {
	c     *Controller
	opts  BufferOptions
	queue workqueue.TypedDelayingInterface[string]

	mu sync.Mutex
	// deficitSince: when the buffer first lacked pods of a shape (growth waits growDelay, so
	// that the instant between a placeholder's preemption and its preemptor's binding does
	// not make the buffer grow).
	deficitSince map[string]time.Time
	// podShape: the pods the last demand counted, and their shapes (observePlan).
	podShape map[types.UID]string
	// unplaceable: pods the planner found no room for while room of their shape was bound on
	// a better tier; not counted again while they exist.
	unplaceable map[types.UID]bool
	// owner: the ownerReference of the buffer's pods, once found (ownerRef).
	owner *metav1.OwnerReference
	// keysSeen: the label keys seen on nodes (demandInput.keysSeen); reconciles are serial.
	keysSeen sets.Set[string]
	// noClassUntil: the PriorityClass was missing; no creation is tried before then, so that
	// a missing class is reported once a minute, not at every pod event.
	noClassUntil time.Time
	// writes are the buffer's own creations and deletions the informer may not show yet, by
	// pod name (the ReplicaSet controller's expectations): a reconcile right after a write
	// counts the pods as written, not as the informer last saw them, so it neither creates a
	// pod twice (a node launched for nothing) nor deletes one twice. Only reconcile uses it.
	writes map[string]bufferWrite
}

// bufferWrite is a creation (pod set) or a deletion (pod nil) of a buffer pod, and when.
type bufferWrite struct {
	pod *v1.Pod
	at  time.Time
}

// writeExpiry: a write the informer has not shown after this long is forgotten (the watch
// will have been re-listed).
const writeExpiry = time.Minute

func newFailbackBuffer(c *Controller, opts BufferOptions, clk clock.WithTicker) *failbackBuffer {
	return &failbackBuffer{
		c:    c,
		opts: opts,
		queue: workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{
			Name: "failback-buffer", Clock: clk}),
		deficitSince: map[string]time.Time{},
		podShape:     map[types.UID]string{},
		unplaceable:  map[types.UID]bool{},
		keysSeen:     sets.New[string](),
		writes:       map[string]bufferWrite{},
	}
}

// growDelay is how long a shortage must last before the buffer grows.
func (b *failbackBuffer) growDelay() time.Duration { return max(b.c.opts.Debounce, time.Second) }

// trigger schedules a reconcile soon: pod and node events come in bursts, the queue collapses
// them.
func (b *failbackBuffer) trigger() { b.queue.AddAfter(bufferKey, bufferSettle) }

// bufferSettle gathers a burst of events (a failover's replacements, a failback wave) into
// one reconcile.
const bufferSettle = 500 * time.Millisecond

// podChanged triggers a reconcile for pods the buffer counts or holds: the profile's pods and
// the buffer's own.
func (b *failbackBuffer) podChanged(obj interface{}) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	p, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	if p.Spec.SchedulerName == b.c.sim.SchedulerName || (p.Namespace == b.opts.Namespace && p.Labels[wellknown.FailbackBufferLabel] == "true") {
		b.trigger()
	}
}

// run reconciles until ctx ends: at start (adopting or removing the buffer pods a previous
// leader left), after events, and every Interval.
func (b *failbackBuffer) run(ctx context.Context) {
	defer b.queue.ShutDown()
	logger := klog.FromContext(ctx)
	go func() {
		<-ctx.Done()
		b.queue.ShutDown()
	}()
	b.queue.Add(bufferKey)
	for {
		key, shutdown := b.queue.Get()
		if shutdown {
			return
		}
		if err := b.recoveredReconcile(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Failback buffer")
			b.queue.AddAfter(bufferKey, b.growDelay())
		}
		b.queue.Done(key)
		b.queue.AddAfter(bufferKey, b.c.opts.Interval)
	}
}

// recoveredReconcile is reconcile with a panic turned into an error carrying its stack: as for
// a pass (recoveredPass), a state no one foresaw must not end the process.
func (b *failbackBuffer) recoveredReconcile(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("failback buffer reconcile panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return b.reconcile(ctx)
}

// bufferPods are the buffer's pods that are not terminating, by shape key, and the finished
// ones (a kubelet may fail a placeholder; it holds nothing and is deleted).
func (b *failbackBuffer) bufferPods() (byShape map[string][]*v1.Pod, finished []*v1.Pod, err error) {
	sel := labels.SelectorFromSet(labels.Set{wellknown.FailbackBufferLabel: "true"})
	pods, err := b.c.pods.Pods(b.opts.Namespace).List(sel)
	if err != nil {
		return nil, nil, err
	}
	byShape = map[string][]*v1.Pod{}
	now := b.c.clock.Now()
	seen := map[string]bool{}
	for _, p := range pods {
		seen[p.Name] = true
		if w, ok := b.writes[p.Name]; ok {
			if w.pod == nil && p.DeletionTimestamp == nil && now.Sub(w.at) < writeExpiry {
				continue // deleted: the informer has not shown it yet
			}
			if w.pod != nil {
				delete(b.writes, p.Name) // created, and shown
			}
		}
		switch {
		case p.DeletionTimestamp != nil:
		case p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed:
			finished = append(finished, p)
		default:
			shape := p.Labels[wellknown.FailbackBufferShapeLabel]
			byShape[shape] = append(byShape[shape], p)
		}
	}
	for name, w := range b.writes {
		switch {
		case now.Sub(w.at) >= writeExpiry || (w.pod == nil && !seen[name]):
			delete(b.writes, name)
		case w.pod != nil && !seen[name]:
			shape := w.pod.Labels[wellknown.FailbackBufferShapeLabel]
			byShape[shape] = append(byShape[shape], w.pod) // created: not shown yet
		}
	}
	return byShape, finished, nil
}

// demand computes what the buffer should hold on the informers' state.
func (b *failbackBuffer) demand() (*bufferDemand, error) {
	nodes, err := b.c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	pods, err := b.c.pods.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	unplaceable := make(map[types.UID]bool, len(b.unplaceable))
	for uid := range b.unplaceable {
		unplaceable[uid] = true
	}
	b.mu.Unlock()
	for _, n := range nodes {
		for k := range n.Labels {
			b.keysSeen.Insert(k)
		}
	}
	in := demandInput{nodes: nodes, pods: pods, now: b.c.clock.Now(), evicted: b.c.evicted.snapshot(),
		unplaceable: unplaceable, replicas: b.c.replicas, keysSeen: b.keysSeen}
	d := failbackDemand(&planner{sim: b.c.sim}, in, b.c.opts.Options, b.opts.MaxPods)
	// Forget the unplaceable pods that are gone.
	live := make(map[types.UID]bool, len(pods))
	for _, p := range pods {
		live[p.UID] = true
	}
	b.mu.Lock()
	for uid := range b.unplaceable {
		if !live[uid] {
			delete(b.unplaceable, uid)
		}
	}
	b.podShape = d.podShape
	b.mu.Unlock()
	return d, nil
}

// reconcile makes the buffer's pods match the demand: surplus deleted at once (Pending pods
// first: they are what the autoscaler would launch nodes for), shortage created once it has
// lasted growDelay.
func (b *failbackBuffer) reconcile(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	existing, finished, err := b.bufferPods()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range finished {
		errs = append(errs, b.remove(ctx, p, "it finished"))
	}
	if !b.opts.Enabled {
		for _, pods := range existing {
			for _, p := range pods {
				errs = append(errs, b.remove(ctx, p, "the failback buffer is off (--failback-buffer=false)"))
			}
		}
		recordBufferPods(nil)
		return errors.Join(errs...)
	}
	d, err := b.demand()
	if err != nil {
		return err
	}
	bufferWanted.Set(float64(d.total))
	shapes := map[string]bool{}
	for k := range existing {
		shapes[k] = true
	}
	for k := range d.want {
		shapes[k] = true
	}
	keys := make([]string, 0, len(shapes))
	for k := range shapes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	now := b.c.clock.Now()
	var all []*v1.Pod
	for _, key := range keys {
		have, want := existing[key], d.want[key]
		switch {
		case len(have) > want:
			b.clearDeficit(key)
			ordered := removalOrder(have)
			for _, p := range ordered[:len(have)-want] {
				errs = append(errs, b.remove(ctx, p, fmt.Sprintf("%d pods of its shape still to move back", want)))
			}
			all = append(all, ordered[len(have)-want:]...)
		case len(have) < want:
			all = append(all, have...)
			since := b.noteDeficit(key, now)
			if wait := b.growDelay() - now.Sub(since); wait > 0 {
				b.queue.AddAfter(bufferKey, wait)
				continue
			}
			b.clearDeficit(key)
			for range want - len(have) {
				p, err := b.create(ctx, d.shapes[key], want, d.total)
				if err != nil {
					errs = append(errs, err)
					break
				}
				if p != nil {
					all = append(all, p)
				}
			}
		default:
			all = append(all, have...)
			b.clearDeficit(key)
		}
	}
	b.forgetDeficits(shapes)
	recordBufferPods(all)
	logger.V(4).Info("Failback buffer reconciled", "wanted", d.total, "maxPods", b.opts.MaxPods, "shapes", len(d.want), "pods", len(all))
	return errors.Join(errs...)
}

func (b *failbackBuffer) noteDeficit(key string, now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if since, ok := b.deficitSince[key]; ok {
		return since
	}
	b.deficitSince[key] = now
	return now
}

func (b *failbackBuffer) clearDeficit(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.deficitSince, key)
}

func (b *failbackBuffer) forgetDeficits(shapes map[string]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.deficitSince {
		if !shapes[k] {
			delete(b.deficitSince, k)
		}
	}
}

// removalOrder orders a shape's pods for deletion: Pending before bound (a bound pod holds
// room a moving pod may be about to take), then youngest first, then by name.
func removalOrder(pods []*v1.Pod) []*v1.Pod {
	out := append([]*v1.Pod(nil), pods...)
	sort.SliceStable(out, func(i, j int) bool {
		a, c := out[i], out[j]
		if (a.Spec.NodeName == "") != (c.Spec.NodeName == "") {
			return a.Spec.NodeName == ""
		}
		if !a.CreationTimestamp.Equal(&c.CreationTimestamp) {
			return a.CreationTimestamp.After(c.CreationTimestamp.Time)
		}
		return a.Name < c.Name
	})
	return out
}

// placeholderPod is a buffer pod of the shape: Pending until a node of a better tier has room,
// passing the restricted Pod Security level, never preempting, preempted by any real pod.
func (b *failbackBuffer) placeholderPod(s *bufferShape) *v1.Pod {
	never := v1.PreemptNever
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    b.opts.Namespace,
			GenerateName: wellknown.FailbackBufferNamePrefix,
			Labels: map[string]string{
				wellknown.PlaceholderLabel:         "true",
				wellknown.FailbackBufferLabel:      "true",
				wellknown.FailbackBufferShapeLabel: s.key,
				"app.kubernetes.io/managed-by":     "spot-rebalancer",
			},
		},
		Spec: v1.PodSpec{
			SchedulerName:                 b.c.sim.SchedulerName,
			PriorityClassName:             b.opts.PriorityClassName,
			PreemptionPolicy:              &never,
			NodeSelector:                  s.nodeSelector,
			Tolerations:                   s.tolerations,
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			SecurityContext: &v1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65535),
				SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []v1.Container{{
				Name:  "pause",
				Image: b.opts.Image,
				Resources: v1.ResourceRequirements{
					Requests: s.requests,
					Limits:   limitsFor(s.requests),
				},
				SecurityContext: &v1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &v1.Capabilities{Drop: []v1.Capability{"ALL"}},
				},
			}},
			Affinity: &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: s.terms},
			}},
		},
	}
	if b.owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*b.owner}
	}
	return p
}

// ownerRef finds the reclaim history's ConfigMap when it lives in the buffer's namespace (the
// chart creates it there and deletes it on uninstall): owned by it, the buffer's pods are
// garbage-collected with the release rather than left Pending for an autoscaler.
func (b *failbackBuffer) ownerRef(ctx context.Context) {
	if b.owner != nil {
		return
	}
	namespace, name := b.c.sim.Model.ReclaimHistoryConfigMap()
	if namespace != b.opts.Namespace {
		return
	}
	cm, err := b.c.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Failback buffer pods get no owner", "configMap", klog.KRef(namespace, name), "err", err)
		return
	}
	b.owner = &metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID}
}

func (b *failbackBuffer) create(ctx context.Context, s *bufferShape, want, total int) (*v1.Pod, error) {
	logger := klog.FromContext(ctx)
	if b.c.opts.DryRun {
		logger.Info("Failback buffer (dry run): would create a placeholder", "tiers", s.tiers, "requests", describeRequests(s.requests))
		return nil, nil
	}
	if now := b.c.clock.Now(); now.Before(b.noClassUntil) {
		return nil, nil
	}
	b.ownerRef(ctx)
	p := b.placeholderPod(s)
	created, err := b.c.client.CoreV1().Pods(b.opts.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		bufferWrites.WithLabelValues("create", "error").Inc()
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "PriorityClass") {
			b.noClassUntil = b.c.clock.Now().Add(writeExpiry)
			return nil, fmt.Errorf("creating a failback buffer pod in %s: %w (--failback-buffer-priority-class names a PriorityClass that must exist, with a negative value and preemptionPolicy Never)", b.opts.Namespace, err)
		}
		return nil, fmt.Errorf("creating a failback buffer pod in %s: %w", b.opts.Namespace, err)
	}
	bufferWrites.WithLabelValues("create", "ok").Inc()
	b.writes[created.Name] = bufferWrite{pod: created, at: b.c.clock.Now()}
	b.c.recorder.Eventf(created, nil, v1.EventTypeNormal, BufferCreatedReason, "Create",
		"Asking for room on %s (%s) for pods that failed over to a worse tier: %d of this shape to move back, %d in all",
		strings.Join(s.tiers, " or "), describeRequests(s.requests), want, total)
	logger.Info("Failback buffer pod created", "pod", klog.KObj(created), "tiers", s.tiers, "requests", describeRequests(s.requests), "wantedOfShape", want, "wanted", total)
	return created, nil
}

func (b *failbackBuffer) remove(ctx context.Context, p *v1.Pod, why string) error {
	logger := klog.FromContext(ctx)
	if b.c.opts.DryRun {
		logger.Info("Failback buffer (dry run): would delete a placeholder", "pod", klog.KObj(p), "reason", why)
		return nil
	}
	uid := p.UID
	err := b.c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		b.writes[p.Name] = bufferWrite{at: b.c.clock.Now()}
		return nil // preempted or replaced meanwhile
	case err != nil:
		bufferWrites.WithLabelValues("delete", "error").Inc()
		return fmt.Errorf("deleting failback buffer pod %s: %w", klog.KObj(p), err)
	}
	bufferWrites.WithLabelValues("delete", "ok").Inc()
	b.writes[p.Name] = bufferWrite{at: b.c.clock.Now()}
	where := "Pending"
	if p.Spec.NodeName != "" {
		where = "on node " + p.Spec.NodeName
	}
	b.c.recorder.Eventf(p, nil, v1.EventTypeNormal, BufferRemovedReason, "Delete", "Removed (%s): %s", where, why)
	logger.Info("Failback buffer pod removed", "pod", klog.KObj(p), "node", p.Spec.NodeName, "reason", why)
	return nil
}

// observePlan learns from a plan made on nodes and pods which counted pods cannot use room of
// their shape on a better tier (a filter the buffer does not model rejects them: pod
// anti-affinity, topology spread, a volume's zone): when bound buffer pods of a shape on
// healthy nodes outnumber the moves planned for pods of that shape, that many of its pods the
// planner skipped for want of room are no longer counted, so their room is released rather
// than held (and paid for) for ever.
func (b *failbackBuffer) observePlan(nodes []*v1.Node, pods []*v1.Pod, plan *Plan) {
	if !b.opts.Enabled {
		return
	}
	healthy := map[string]bool{}
	for _, n := range nodes {
		healthy[n.Name] = !b.c.sim.Model.Classify(n).AtRisk
	}
	room := map[string]int{}
	for _, p := range pods {
		if p.Namespace == b.opts.Namespace && p.Labels[wellknown.FailbackBufferLabel] == "true" && p.DeletionTimestamp == nil && healthy[p.Spec.NodeName] {
			room[p.Labels[wellknown.FailbackBufferShapeLabel]]++
		}
	}
	if len(room) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range plan.Moves {
		if key, ok := b.podShape[m.Pod.UID]; ok {
			room[key]--
		}
	}
	marked := 0
	for _, s := range plan.Skips {
		key, ok := b.podShape[s.Pod.UID]
		if s.Reason != SkipNoBetterRoom || !ok || room[key] <= 0 || b.unplaceable[s.Pod.UID] {
			continue
		}
		room[key]--
		b.unplaceable[s.Pod.UID] = true
		marked++
	}
	if marked > 0 {
		klog.Background().Info("Failback buffer: pods found no room in the buffer's room on a better tier; no longer counted", "pods", marked)
		b.trigger()
	}
}

// Metrics of the buffer. Labels are bounded: two states, two operations, two results.
var (
	bufferPods = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Subsystem: "failback_buffer", Name: "pods",
		Help:           "Pods of the failback buffer by state: pending (asking the autoscaler for a better tier) or bound (holding room there).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"state"})
	bufferWanted = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Subsystem: "failback_buffer", Name: "wanted_pods",
		Help:           "Pods that would move back to a better tier if room existed there (the buffer holds this many, --failback-buffer-max-pods at most).",
		StabilityLevel: metrics.ALPHA,
	})
	bufferWrites = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "spot_scheduler", Subsystem: "failback_buffer", Name: "writes_total",
		Help:           "Failback buffer pods created and deleted, by operation (create, delete) and result (ok, error).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"operation", "result"})
)

func init() {
	legacyregistry.MustRegister(bufferPods, bufferWanted, bufferWrites)
}

func initBufferMetrics() {
	recordBufferPods(nil)
	for _, op := range []string{"create", "delete"} {
		for _, r := range []string{"ok", "error"} {
			bufferWrites.WithLabelValues(op, r)
		}
	}
}

func recordBufferPods(pods []*v1.Pod) {
	pending, bound := 0, 0
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			pending++
		} else {
			bound++
		}
	}
	bufferPods.WithLabelValues("pending").Set(float64(pending))
	bufferPods.WithLabelValues("bound").Set(float64(bound))
}
