package rebalance

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	corelisters "k8s.io/client-go/listers/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/testutil"

	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

const bufferNS = "spot-system"

// newBufferEnv is a controller whose failback buffer keeps its pods in bufferNS, with the fake
// clientset naming created pods from their generateName as the API server does.
func newBufferEnv(t *testing.T, mutate func(*BufferOptions), objs ...runtime.Object) *controllerEnv {
	t.Helper()
	env := newControllerEnvWith(t, func(o *ControllerOptions) {
		o.Buffer.Namespace = bufferNS
		if mutate != nil {
			mutate(&o.Buffer)
		}
	}, objs...)
	n := 0
	env.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p, ok := a.(k8stesting.CreateAction).GetObject().(*v1.Pod)
		if ok && p.Name == "" && p.GenerateName != "" {
			n++
			p.Name = fmt.Sprintf("%s%05d", p.GenerateName, n)
			p.UID = types.UID(p.Name)
			p.CreationTimestamp = metav1.NewTime(env.clock.Now())
		}
		return false, nil, nil
	})
	return env
}

// reconcileSettled reconciles, past the growth delay when the buffer is short, and waits until
// the informer shows the outcome; it returns the buffer's pods, by name.
func reconcileSettled(t *testing.T, env *controllerEnv) []*v1.Pod {
	t.Helper()
	b := env.ctrl.buffer
	for range 2 {
		if err := b.reconcile(env.ctx); err != nil {
			t.Fatal(err)
		}
		waitForBufferInformer(t, env)
		env.clock.Step(b.growDelay())
	}
	return listBuffer(t, env)
}

// waitForBufferInformer waits until the pod informer shows the buffer pods the API holds.
func waitForBufferInformer(t *testing.T, env *controllerEnv) {
	t.Helper()
	want := func() []string {
		list, err := env.cs.CoreV1().Pods(bufferNS).List(env.ctx, metav1.ListOptions{LabelSelector: wellknown.FailbackBufferLabel + "=true"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range list.Items {
			names = append(names, p.Name)
		}
		sort.Strings(names)
		return names
	}
	waitUntil(t, "the informer shows the buffer", func() bool {
		var got []string
		for _, p := range listBuffer(t, env) {
			got = append(got, p.Name)
		}
		return slices.Equal(got, want())
	})
}

func listBuffer(t *testing.T, env *controllerEnv) []*v1.Pod {
	t.Helper()
	pods, err := env.ctrl.pods.Pods(bufferNS).List(labels.SelectorFromSet(labels.Set{wellknown.FailbackBufferLabel: "true"}))
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods
}

func annotate(p *v1.Pod, kv ...string) *v1.Pod {
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Annotations[kv[i]] = kv[i+1]
	}
	return p
}

func drainEvents(env *controllerEnv) []string {
	var out []string
	for {
		select {
		case e := <-env.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// failedOver is a cluster after a spot reclaim: no spot node, on-demand nodes holding pods
// that would move back and pods that may not.
func failedOver() []runtime.Object {
	spotToleration := v1.Toleration{Key: "example.com/spot", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}
	young := pod("web-young", "web", "od-1", "1")
	young.Status.StartTime = &metav1.Time{Time: now} // failed over a moment ago
	young.Spec.Tolerations = []v1.Toleration{spotToleration}
	starting := pod("web-starting", "web", "od-1", "1")
	starting.Status.Phase = v1.PodPending // bound, its containers starting
	starting.Spec.Tolerations = []v1.Toleration{spotToleration}
	objs := []runtime.Object{
		odNode("od-1", "16"), odNode("od-2", "16"),
		young, starting,
		// Would move back: another shape (2 CPU, another workload).
		pod("api-1", "api", "od-2", "2"),
		// May not move: opted out, do-not-disrupt, not safe to evict, budget 0, an unreadable
		// opt-out, no controller, DaemonSet, avoid-spot, pinned to on-demand, a capacity
		// policy's on-demand base, terminating, Pending (unbound).
		annotate(pod("optout", "o1", "od-1", "1"), wellknown.RebalanceAnnotation, "false"),
		annotate(pod("dnd", "o2", "od-1", "1"), wellknown.KarpenterDoNotDisruptAnnotation, "true"),
		annotate(pod("unsafe", "o3", "od-1", "1"), wellknown.AutoscalerSafeToEvictAnnotation, "false"),
		annotate(pod("budget0", "o4", "od-1", "1"), wellknown.DisruptionBudgetAnnotation, "0"),
		annotate(pod("unreadable", "o5", "od-1", "1"), wellknown.RebalanceAnnotation, "nope"),
		with(pod("bare", "o6", "od-2", "1"), func(p *v1.Pod) { p.OwnerReferences = nil }),
		with(pod("ds", "o7", "od-2", "1"), func(p *v1.Pod) { p.OwnerReferences[0].Kind = "DaemonSet" }),
		annotate(pod("avoid", "o8", "od-2", "1"), wellknown.AvoidSpotAnnotation, "true"),
		with(pod("pinned", "o9", "od-2", "1"), func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"karpenter.sh/capacity-type": "on-demand"} }),
		annotate(pod("base", "o10", "od-2", "1"), policy.OnDemandBaseAnnotation, "1"),
		with(pod("leaving", "o11", "od-2", "1"), func(p *v1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: now} }),
		with(pod("pending", "o12", "", "1"), func(p *v1.Pod) { p.Status.Phase = v1.PodPending }),
		// Another scheduler's pod.
		with(pod("other", "o13", "od-2", "1"), func(p *v1.Pod) { p.Spec.SchedulerName = "default-scheduler" }),
	}
	for i := range 3 {
		p := pod(fmt.Sprintf("web-%d", i), "web", "od-1", "1")
		p.Spec.Tolerations = []v1.Toleration{spotToleration}
		objs = append(objs, p)
	}
	return objs
}

// TestBufferSizing: the buffer holds one Pending placeholder per pod that would move back to
// spot (young and starting pods included: they will be old enough by the time spot is up),
// shaped like it (requests, tolerations), pinned to the spot tier by every label the capacity
// model knows, with a negative priority, preemptionPolicy Never, the placeholder label and
// spot-scheduler as its scheduler; pods that may not move are not counted; it grows only once
// the shortage has lasted the growth delay.
func TestBufferSizing(t *testing.T) {
	env := newBufferEnv(t, nil, failedOver()...)
	if err := env.ctrl.buffer.reconcile(env.ctx); err != nil {
		t.Fatal(err)
	}
	if m := mutatingActions(env.cs); len(m) != 0 {
		t.Fatalf("created %v at once: the buffer grows only after the growth delay", m)
	}
	pods := reconcileSettled(t, env)
	byCPU := map[string]int{}
	for _, p := range pods {
		byCPU[p.Spec.Containers[0].Resources.Requests.Cpu().String()]++
	}
	if len(pods) != 6 || byCPU["1"] != 5 || byCPU["2"] != 1 {
		t.Fatalf("buffer of %d pods, by CPU %v; want 5 of 1 CPU (web) and 1 of 2 CPU (api)", len(pods), byCPU)
	}
	if got, _ := testutil.GetGaugeMetricValue(bufferWanted); got != 6 {
		t.Errorf("wanted pods metric %v, want 6", got)
	}
	for _, p := range pods {
		spec := p.Spec
		if p.Labels[wellknown.PlaceholderLabel] != "true" || p.Labels[wellknown.FailbackBufferLabel] != "true" || p.Labels[wellknown.FailbackBufferShapeLabel] == "" ||
			spec.SchedulerName != "spot-scheduler" || spec.PriorityClassName != wellknown.FailbackBufferPriorityClass ||
			spec.PreemptionPolicy == nil || *spec.PreemptionPolicy != v1.PreemptNever || spec.NodeName != "" {
			t.Errorf("buffer pod %s: labels %v, scheduler %q, class %q, preemption %v, node %q", p.Name, p.Labels, spec.SchedulerName, spec.PriorityClassName, spec.PreemptionPolicy, spec.NodeName)
		}
		// The default model's spot rules cover every provider; the cluster's nodes carry
		// Karpenter's labels, so its rule alone.
		terms := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		want := []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "karpenter.sh/capacity-type", Operator: v1.NodeSelectorOpIn, Values: []string{"spot"}}}}}
		if !equality.Semantic.DeepEqual(terms, want) {
			t.Errorf("buffer pod %s: node affinity terms %v, want %v", p.Name, terms, want)
		}
		if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil {
			t.Errorf("buffer pod %s does not pass the restricted Pod Security level: %+v", p.Name, sc)
		}
		if cpu := spec.Containers[0].Resources.Requests.Cpu().String(); cpu == "1" && (len(spec.Tolerations) != 1 || spec.Tolerations[0].Key != "example.com/spot") {
			t.Errorf("buffer pod %s for web: tolerations %v, want web's", p.Name, spec.Tolerations)
		}
	}
	events := drainEvents(env)
	if len(events) != 6 || !strings.Contains(events[0], BufferCreatedReason) || !strings.Contains(events[0], "spot") {
		t.Errorf("events %v, want one %s per pod naming the tier", events, BufferCreatedReason)
	}
}

// shapeOf is the shape key the buffer gives the pods of a workload in the cluster objs.
func shapeOf(t *testing.T, objs []runtime.Object, podName string) string {
	t.Helper()
	env := newBufferEnv(t, nil, objs...)
	d, err := env.ctrl.buffer.demand()
	if err != nil {
		t.Fatal(err)
	}
	key := d.podShape[types.UID(podName)]
	if key == "" {
		t.Fatalf("pod %s not counted by the buffer", podName)
	}
	return key
}

// bufferPod is a leftover buffer pod of the given shape, Pending unless bound to node.
func bufferPod(name, namespace, shape, node string, age time.Duration) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, UID: types.UID(name),
			CreationTimestamp: metav1.NewTime(now.Add(-age)),
			Labels:            map[string]string{wellknown.PlaceholderLabel: "true", wellknown.FailbackBufferLabel: "true", wellknown.FailbackBufferShapeLabel: shape}},
		Spec: v1.PodSpec{SchedulerName: "spot-scheduler", NodeName: node, Containers: []v1.Container{{Name: "pause", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")}}}}},
		Status: v1.PodStatus{Phase: v1.PodPending},
	}
}

// TestBufferBound: --failback-buffer-max-pods bounds the buffer; the metric still says how many
// pods would move back.
func TestBufferBound(t *testing.T) {
	env := newBufferEnv(t, func(o *BufferOptions) { o.MaxPods = 2 }, failedOver()...)
	if pods := reconcileSettled(t, env); len(pods) != 2 {
		t.Fatalf("buffer of %d pods, want the bound, 2", len(pods))
	}
	if got, _ := testutil.GetGaugeMetricValue(bufferWanted); got != 6 {
		t.Errorf("wanted pods metric %v, want 6 (the bound applies to the buffer, not to the count)", got)
	}
}

// TestBufferShrinksPendingFirstAndGoesWhenNothingToMove: as pods move back, the buffer's
// surplus goes at once, Pending pods first (they are what the autoscaler launches nodes for),
// and when no pod is left to move back, every buffer pod goes, each with an event.
func TestBufferShrinksPendingFirstAndGoesWhenNothingToMove(t *testing.T) {
	web := pod("web-0", "web", "od-1", "1")
	cluster := []runtime.Object{odNode("od-1", "8"), spotNode("spot-1", "8"), web}
	shape := shapeOf(t, cluster, "web-0")
	objs := append(cluster,
		bufferPod("b-pending-old", bufferNS, shape, "", 2*time.Minute),
		bufferPod("b-pending-young", bufferNS, shape, "", time.Minute),
		bufferPod("b-bound", bufferNS, shape, "spot-1", 3*time.Minute))
	env := newBufferEnv(t, nil, objs...)
	pods := reconcileSettled(t, env)
	if len(pods) != 1 || pods[0].Name != "b-bound" {
		t.Fatalf("buffer %v, want only b-bound: one pod still to move back, and the Pending ones go first", podNames(pods))
	}
	// web moved back: nothing is left to move back.
	moved := web.DeepCopy()
	moved.Spec.NodeName = "spot-1"
	if _, err := env.cs.CoreV1().Pods("apps").Update(env.ctx, moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the informer shows web on spot", func() bool {
		p, err := env.ctrl.pods.Pods("apps").Get("web-0")
		return err == nil && p.Spec.NodeName == "spot-1"
	})
	if pods := reconcileSettled(t, env); len(pods) != 0 {
		t.Fatalf("buffer %v left with nothing to move back", podNames(pods))
	}
	events := drainEvents(env)
	if len(events) != 3 || !strings.Contains(strings.Join(events, "\n"), BufferRemovedReason) {
		t.Errorf("events %v, want one %s per removed pod", events, BufferRemovedReason)
	}
	for _, a := range env.cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "pods" {
			if pre := d.GetDeleteOptions().Preconditions; pre == nil || pre.UID == nil || string(*pre.UID) != d.GetName() {
				t.Errorf("delete of %s without its UID as precondition: %+v", d.GetName(), pre)
			}
		}
	}
}

// TestBufferAdoptsLeftovers: a new leader adopts the buffer pods a previous one left (those of
// a shape it wants), deletes the others of its namespace (a shape nobody wants, a finished
// pod) and leaves alone pods of other namespaces.
func TestBufferAdoptsLeftovers(t *testing.T) {
	cluster := []runtime.Object{odNode("od-1", "8"), pod("web-0", "web", "od-1", "1"), pod("web-1", "web", "od-1", "1")}
	shape := shapeOf(t, cluster, "web-0")
	failed := bufferPod("b-failed", bufferNS, shape, "", time.Minute)
	failed.Status.Phase = v1.PodFailed
	objs := append(cluster,
		bufferPod("b-1", bufferNS, shape, "", time.Minute),
		bufferPod("b-2", bufferNS, shape, "", time.Minute),
		bufferPod("b-stale", bufferNS, "0123456789abcdef", "", time.Minute),
		failed,
		bufferPod("b-elsewhere", "other", "0123456789abcdef", "", time.Minute))
	env := newBufferEnv(t, nil, objs...)
	pods := reconcileSettled(t, env)
	if got := podNames(pods); !slices.Equal(got, []string{"b-1", "b-2"}) {
		t.Fatalf("buffer %v, want the adopted b-1 and b-2", got)
	}
	var created, deleted []string
	for _, a := range env.cs.Actions() {
		switch a := a.(type) {
		case k8stesting.CreateAction:
			created = append(created, a.GetObject().(*v1.Pod).Name)
		case k8stesting.DeleteAction:
			deleted = append(deleted, a.GetName())
		}
	}
	sort.Strings(deleted)
	if len(created) != 0 || !slices.Equal(deleted, []string{"b-failed", "b-stale"}) {
		t.Errorf("created %v, deleted %v; want nothing created, b-failed and b-stale deleted", created, deleted)
	}
	if _, err := env.cs.CoreV1().Pods("other").Get(env.ctx, "b-elsewhere", metav1.GetOptions{}); err != nil {
		t.Errorf("a pod of another namespace was touched: %v", err)
	}
}

// TestBufferOffRemovesLeftovers: with --failback-buffer=false the leader creates nothing and
// deletes the buffer pods a previous configuration left.
func TestBufferOffRemovesLeftovers(t *testing.T) {
	objs := append(failedOver(), bufferPod("b-1", bufferNS, "0123456789abcdef", "", time.Minute))
	env := newBufferEnv(t, func(o *BufferOptions) { o.Enabled = false }, objs...)
	if pods := reconcileSettled(t, env); len(pods) != 0 {
		t.Fatalf("buffer %v with the buffer off", podNames(pods))
	}
	if m := mutatingActions(env.cs); !slices.Equal(m, []string{"delete pods/"}) {
		t.Errorf("mutating calls %v, want only the leftover's deletion", m)
	}
}

// TestBufferDryRunMakesNoMutatingCall: in dry run the buffer is computed and logged only.
func TestBufferDryRunMakesNoMutatingCall(t *testing.T) {
	objs := append(failedOver(), bufferPod("b-stale", bufferNS, "0123456789abcdef", "", time.Minute))
	env := newControllerEnvWith(t, func(o *ControllerOptions) { o.DryRun = true; o.Buffer.Namespace = bufferNS }, objs...)
	reconcileSettled(t, env)
	if m := mutatingActions(env.cs); len(m) != 0 {
		t.Fatalf("dry run made mutating calls: %v", m)
	}
}

// TestBufferKeepsRoomForInFlightReplacements: a pod the controller evicted whose replacement
// is Pending still counts, so the buffer does not shrink before the replacement takes the
// room (and grow again after); once the replacement is placed, it no longer counts.
func TestBufferKeepsRoomForInFlightReplacements(t *testing.T) {
	evicted := pod("web-0", "web", "od-1", "1")
	replacement := with(pod("web-new", "web", "", "1"), func(p *v1.Pod) { p.Status.Phase = v1.PodPending })
	env := newBufferEnv(t, nil, odNode("od-1", "8"), spotNode("spot-1", "8"), replacement, pod("web-1", "web", "od-1", "1"))
	env.ctrl.evicted.add(evicted) // evicted: gone from the API server
	d, err := env.ctrl.buffer.demand()
	if err != nil {
		t.Fatal(err)
	}
	if d.total != 2 {
		t.Fatalf("demand %d, want 2: web-1 and the replacement of the evicted web-0", d.total)
	}
	placed := replacement.DeepCopy()
	placed.Spec.NodeName, placed.Status.Phase = "spot-1", v1.PodRunning
	if _, err := env.cs.CoreV1().Pods("apps").Update(env.ctx, placed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the informer shows the replacement placed", func() bool {
		p, err := env.ctrl.pods.Pods("apps").Get("web-new")
		return err == nil && p.Spec.NodeName != ""
	})
	if d, _ = env.ctrl.buffer.demand(); d.total != 1 {
		t.Fatalf("demand %d after the replacement was placed, want 1 (web-1)", d.total)
	}
}

// TestBufferReleasesRoomNobodyCanUse: when the buffer's room of a shape is bound on spot and
// the planner still finds no room there for the pods of that shape (a filter the buffer does
// not model rejects them), those pods are no longer counted and the room is released rather
// than held for ever.
func TestBufferReleasesRoomNobodyCanUse(t *testing.T) {
	web := pod("web-0", "web", "od-1", "1")
	// Only pods of app=web on the node: web may not go where its placeholder is.
	web.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, TopologyKey: "kubernetes.io/hostname"}}}}
	cluster := []runtime.Object{odNode("od-1", "8"), spotNode("spot-1", "1"), web}
	shape := shapeOf(t, cluster, "web-0")
	env := newBufferEnv(t, nil, append(cluster, bufferPod("b-bound", bufferNS, shape, "spot-1", time.Minute))...)
	if pods := reconcileSettled(t, env); len(pods) != 1 {
		t.Fatalf("buffer %v, want the bound pod kept while web counts", podNames(pods))
	}
	if _, err := env.ctrl.Pass(env.ctx); err != nil {
		t.Fatal(err)
	}
	if pods := reconcileSettled(t, env); len(pods) != 0 {
		t.Fatalf("buffer %v kept although the planner found web no room in it", podNames(pods))
	}
}

func podNames(pods []*v1.Pod) []string {
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// TestBufferOptionsValidate: every bad value is rejected with a message naming its flag and
// what it allows.
func TestBufferOptionsValidate(t *testing.T) {
	if errs := DefaultBufferOptions().Validate(); len(errs) != 0 {
		t.Fatalf("defaults rejected: %v", errs)
	}
	for _, tc := range []struct {
		mutate func(*BufferOptions)
		want   string
	}{
		{func(o *BufferOptions) { o.MaxPods = 0 }, "--failback-buffer-max-pods: must be 1 to 10000, got 0"},
		{func(o *BufferOptions) { o.MaxPods = 10001 }, "--failback-buffer-max-pods: must be 1 to 10000, got 10001"},
		{func(o *BufferOptions) { o.Namespace = "" }, "--failback-buffer-namespace"},
		{func(o *BufferOptions) { o.Namespace = "Spot_System" }, `--failback-buffer-namespace: "Spot_System" is not a namespace name`},
		{func(o *BufferOptions) { o.PriorityClassName = "Bad Class" }, `--failback-buffer-priority-class: "Bad Class" is not a PriorityClass name`},
		{func(o *BufferOptions) { o.Image = "" }, "--failback-buffer-image: must be an image reference"},
	} {
		o := DefaultBufferOptions()
		tc.mutate(&o)
		errs := o.Validate()
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("errors %v, want one containing %q", errs, tc.want)
		}
	}
}

// TestBufferShapeFollowsTheProvider: the buffer pins its pods with the spot rule of the
// provider whose labels the cluster's nodes carry (AKS here), and with every provider's rule
// when no node carries any; a pod pinned to the provider's regular capacity is not counted.
func TestBufferShapeFollowsTheProvider(t *testing.T) {
	aksRegular := map[string]string{"kubernetes.azure.com/scalesetpriority": "regular"}
	for _, tc := range []struct {
		name      string
		nodeLabel map[string]string
		terms     int
	}{
		{"AKS", aksRegular, 1},
		{"no provider label", map[string]string{"example.com/pool": "general"}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pinned := pod("pinned", "db", "n-1", "1")
			pinned.Spec.NodeSelector = aksRegular
			env := newBufferEnv(t, nil, node("n-1", "8", tc.nodeLabel), pod("web-0", "web", "n-1", "1"), pinned)
			d, err := env.ctrl.buffer.demand()
			if err != nil {
				t.Fatal(err)
			}
			web := d.shapes[d.podShape["web-0"]]
			if web == nil || len(web.terms) != tc.terms {
				t.Fatalf("web's shape %+v, want %d node affinity terms", web, tc.terms)
			}
			if tc.terms == 1 && web.terms[0].MatchExpressions[0].Key != "kubernetes.azure.com/scalesetpriority" {
				t.Errorf("web pinned by %v, want AKS's spot label", web.terms)
			}
			if _, counted := d.podShape["pinned"]; counted == (tc.terms == 1) {
				t.Errorf("pod pinned to AKS regular capacity counted: %v (want counted only when no node says the cluster is AKS)", counted)
			}
		})
	}
}

// TestBufferCountsItsOwnWritesBeforeTheInformerShowsThem: a reconcile right after the buffer
// created (or deleted) pods, before the informer shows them, counts them as written: it creates
// none twice (a node launched for nothing) and deletes none twice.
func TestBufferCountsItsOwnWritesBeforeTheInformerShowsThem(t *testing.T) {
	env := newBufferEnv(t, nil, failedOver()...)
	// The informer stops here: the lister keeps showing the cluster as it is now.
	stale := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	pods, _ := env.ctrl.pods.List(labels.Everything())
	for _, p := range pods {
		_ = stale.Add(p)
	}
	env.ctrl.pods = corelisters.NewPodLister(stale)
	b := env.ctrl.buffer
	for range 4 {
		if err := b.reconcile(env.ctx); err != nil {
			t.Fatal(err)
		}
		env.clock.Step(b.growDelay())
	}
	if m := mutatingActions(env.cs); len(m) != 6 {
		t.Fatalf("mutating calls %v, want the 6 creations once", m)
	}
}

// TestBufferMissingPriorityClass: when the PriorityClass is missing, the error names the flag,
// and no creation is tried again for a while (not at every pod event).
func TestBufferMissingPriorityClass(t *testing.T) {
	env := newBufferEnv(t, nil, failedOver()...)
	attempts := 0
	env.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		attempts++
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "",
			fmt.Errorf("no PriorityClass with name %s was found", wellknown.FailbackBufferPriorityClass))
	})
	b := env.ctrl.buffer
	var last error
	for range 5 {
		if err := b.reconcile(env.ctx); err != nil {
			last = err
		}
		env.clock.Step(b.growDelay())
	}
	if attempts != 1 || last == nil || !strings.Contains(last.Error(), "--failback-buffer-priority-class") {
		t.Fatalf("%d creations tried, last error %v; want 1, naming --failback-buffer-priority-class", attempts, last)
	}
}

// TestBufferOwnedByTheReclaimHistory: in the namespace of the reclaim history's ConfigMap (the
// chart's layout), the buffer's pods are owned by it, so that uninstalling the chart
// garbage-collects them.
func TestBufferOwnedByTheReclaimHistory(t *testing.T) {
	history := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "spot-scheduler-reclaim-history", UID: "cm-uid"}}
	env := newControllerEnvWith(t, func(o *ControllerOptions) { o.Buffer.Namespace = "kube-system" },
		append(failedOver(), history)...)
	env.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*v1.Pod)
		p.Name = p.GenerateName + string(uuid.NewUUID())[:8]
		return false, nil, nil
	})
	b := env.ctrl.buffer
	for range 2 {
		if err := b.reconcile(env.ctx); err != nil {
			t.Fatal(err)
		}
		env.clock.Step(b.growDelay())
	}
	list, err := env.cs.CoreV1().Pods("kube-system").List(env.ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 6 {
		t.Fatalf("%d buffer pods (%v), want 6", len(list.Items), err)
	}
	for _, p := range list.Items {
		if refs := p.OwnerReferences; len(refs) != 1 || refs[0].Kind != "ConfigMap" || refs[0].UID != "cm-uid" || refs[0].Controller != nil {
			t.Errorf("buffer pod %s owners %+v, want the reclaim history's ConfigMap (not as controller)", p.Name, refs)
		}
	}
}

// TestBufferAsksOnDemandForPodsThatWantOffSpot: a capacity policy's base pod and an avoid-spot
// pod that landed on spot (no on-demand node had room) would stay there, as nothing asks the
// autoscaler for on-demand: the buffer asks for room on on-demand (or reserved) for them, by
// the labels this cluster's nodes carry. A pod for which spot is best asks for nothing.
func TestBufferAsksOnDemandForPodsThatWantOffSpot(t *testing.T) {
	env := newBufferEnv(t, nil, spotNode("spot-1", "16"),
		annotate(pod("base", "db", "spot-1", "1"), policy.OnDemandBaseAnnotation, "1"),
		annotate(pod("avoid", "batch", "spot-1", "1"), wellknown.AvoidSpotAnnotation, "true"),
		pod("web-0", "web", "spot-1", "1"))
	d, err := env.ctrl.buffer.demand()
	if err != nil {
		t.Fatal(err)
	}
	if _, counted := d.podShape["web-0"]; counted {
		t.Error("a pod for which spot is best asks for room elsewhere")
	}
	want := []v1.NodeSelectorTerm{
		{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "karpenter.sh/capacity-type", Operator: v1.NodeSelectorOpIn, Values: []string{"reserved"}}}},
		{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "karpenter.sh/capacity-type", Operator: v1.NodeSelectorOpNotIn, Values: []string{"reserved", "spot"}}}},
	}
	for _, name := range []string{"base", "avoid"} {
		s := d.shapes[d.podShape[types.UID(name)]]
		if s == nil {
			t.Fatalf("%s not counted: it would stay on spot", name)
		}
		if !equality.Semantic.DeepEqual(s.terms, want) {
			t.Errorf("%s: terms %v, want %v (better non-reclaimable tiers, Karpenter's labels only)", name, s.terms, want)
		}
		if !slices.Contains(s.tiers, "on-demand") {
			t.Errorf("%s: tiers %v, want on-demand among them", name, s.tiers)
		}
	}
}
