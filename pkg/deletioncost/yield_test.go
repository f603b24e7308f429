package deletioncost

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"

	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// fieldsOwning is a managedFields entry of manager owning the given annotations.
func fieldsOwning(manager string, annotations ...string) metav1.ManagedFieldsEntry {
	var b strings.Builder
	b.WriteString(`{"f:metadata":{"f:annotations":{`)
	for i, a := range annotations {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"f:` + a + `":{}`)
	}
	b.WriteString(`}}}`)
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1",
		FieldsV1: &metav1.FieldsV1{Raw: []byte(b.String())}}
}

func TestTransformManagedFields(t *testing.T) {
	labelsOnly := metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{"f:app":{}}}}`)}}
	// The key as a label, not an annotation: not the deletion cost.
	costAsLabel := metav1.ManagedFieldsEntry{Manager: "someone", Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{"f:controller.kubernetes.io/pod-deletion-cost":{}}}}`)}}
	broken := metav1.ManagedFieldsEntry{Manager: "broken", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:controller.kubernetes.io/pod-deletion-cost"`)}}
	for _, tc := range []struct {
		name string
		obj  metav1.Object
		want []string
	}{
		{"pod: only the owners of the cost, by name", &v1.Pod{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
			labelsOnly, fieldsOwning(wellknown.KarpenterFieldManager, costKey), fieldsOwning(wellknown.DeletionCostFieldManager, markKey), costAsLabel, broken,
		}}}, []string{wellknown.KarpenterFieldManager}},
		{"pod owning nothing of it", &v1.Pod{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{labelsOnly}}}, nil},
		{"a node keeps none", &v1.Node{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{fieldsOwning("karpenter", costKey)}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := TransformManagedFields(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range out.(metav1.Object).GetManagedFields() {
				if e.FieldsV1 != nil {
					t.Errorf("entry of %s keeps its field set", e.Manager)
				}
				got = append(got, e.Manager)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("managers kept (-want +got):\n%s", diff)
			}
			if pod, ok := out.(*v1.Pod); ok {
				pod.Annotations = map[string]string{costKey: "1"}
				if want := len(tc.want) > 0; karpenterOwnsCost(pod) != want {
					t.Errorf("karpenterOwnsCost after the transform = %v, want %v", !want, want)
				}
			}
		})
	}
}

// TestControllerYieldsToKarpenter: once Karpenter writes a pod's deletion cost (its
// PodDeletionCostManagement gate), the controller stops writing, removes every value of its own,
// leaves Karpenter's alone, says so once (Warning event, metric) and never writes again.
func TestControllerYieldsToKarpenter(t *testing.T) {
	client := fake.NewClientset(
		spotNode("spot-a", "a"), node("ondemand-1", onDemandLabel),
		pod("web-0", "spot-a", 0), pod("web-1", "spot-a", 1), pod("web-2", "ondemand-1", 2),
		pod("user-0", "spot-a", 0, withOwner("ReplicaSet", "user"), withAnnotations(costKey, "7")),
	)
	recorder := events.NewFakeRecorder(10)
	c, err := New(client, informers.NewSharedInformerFactory(client, 0), Options{SchedulerName: wellknown.SchedulerName, Model: defaultModel(t), QPS: 1000, Burst: 1000, Recorder: recorder})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.queue.ShutDown(); c.factory.Shutdown() })
	if err := c.startInformers(ctx); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: ctx, client: client, c: c}
	// A user's value (written by kubectl) is the user's: no yield.
	apply(t, ctx, client, "user-0", "kubectl-annotate", map[string]string{costKey: "8"})
	h.eventually("tier order written", map[string]string{"web-0": "ours:6999", "web-1": "ours:6998", "web-2": "ours:5999", "user-0": "cost=8,mark="})
	if c.Yielded() {
		t.Fatal("yielded to a user's value")
	}
	h.waitCached()

	// Karpenter ranks web-1's node for consolidation.
	apply(t, ctx, client, "web-1", wellknown.KarpenterFieldManager, map[string]string{costKey: "-1"})
	h.eventually("own values removed, Karpenter's and the user's kept",
		map[string]string{"web-0": "-", "web-1": "cost=-1,mark=6998", "web-2": "-", "user-0": "cost=8,mark="})
	if !c.Yielded() {
		t.Fatal("not yielded")
	}
	select {
	case e := <-recorder.Events:
		if !strings.HasPrefix(e, "Warning "+YieldedReason) || !strings.Contains(e, "PodDeletionCostManagement") {
			t.Errorf("event %q, want a Warning %s naming the feature gate", e, YieldedReason)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}

	// Karpenter clears web-1 and a new pod arrives: nothing of ours comes back.
	h.waitCached()
	apply(t, ctx, client, "web-1", wellknown.KarpenterFieldManager, nil)
	if _, err := client.CoreV1().Pods(testNS).Create(ctx, pod("web-3", "spot-a", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	writes := h.patches() // Karpenter's applies are patches too
	h.eventually("no value of ours written after yielding", map[string]string{"web-0": "-", "web-1": "-", "web-2": "-", "web-3": "-", "user-0": "cost=8,mark="})
	h.resyncAll()
	h.drain()
	// web-1's stale record, the controller's own, was removed; nothing else was written.
	if got := h.patches() - writes; got != 1 {
		t.Errorf("%d patches after yielding and a resync, want 1 (the removal of web-1's record)", got)
	}
	select {
	case e := <-recorder.Events:
		t.Errorf("a second event: %q", e)
	default:
	}
}

// apply writes annotations as manager (server-side apply: the fake clientset records managedFields
// for it, as the API server does for every write); nil takes back what manager applied before.
func apply(t *testing.T, ctx context.Context, client *fake.Clientset, name, manager string, annotations map[string]string) {
	t.Helper()
	cfg := corev1ac.Pod(name, testNS)
	if annotations != nil {
		cfg.WithAnnotations(annotations)
	}
	if _, err := client.CoreV1().Pods(testNS).Apply(ctx, cfg, metav1.ApplyOptions{FieldManager: manager, Force: true}); err != nil {
		t.Fatal(err)
	}
}
