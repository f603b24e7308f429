package reclaimhistory

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/spot-scheduler/spot-scheduler/internal/capacitytest"
	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
)

func model(t *testing.T) *capacity.Model { return capacitytest.DefaultModel(t) }

func testNode(name, capacityType, pool string, taints ...v1.Taint) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name),
		Labels: map[string]string{"karpenter.sh/capacity-type": capacityType, "karpenter.sh/nodepool": pool}}, Spec: v1.NodeSpec{Taints: taints}}
}

func testPod(name, node string, owner string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name}, Spec: v1.PodSpec{NodeName: node}, Status: v1.PodStatus{Phase: v1.PodRunning}}
	if owner != "" {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: owner, Name: "x", UID: "x", Controller: ptr(true)}}
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// recorderRun is a Recorder (one rebalancer process) on a fake cluster.
type recorderRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startRecorder(t *testing.T, client kubernetes.Interface, m *capacity.Model, clk *clocktesting.FakeClock) *recorderRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	r, err := NewRecorder(client, factory, m, clk)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	run := &recorderRun{cancel: cancel, done: done}
	t.Cleanup(run.stop)
	return run
}

func (r *recorderRun) stop() {
	r.cancel()
	<-r.done
}

func history(t *testing.T, client kubernetes.Interface) History {
	t.Helper()
	h, err := Load(context.Background(), client, v1alpha1.DefaultReclaimHistoryNamespace, v1alpha1.DefaultReclaimHistoryName)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// waitRecorded waits until the history holds the reclaim of node and returns it. Node deletions
// are handled in order, so every deletion before node's has been handled by then.
func waitRecorded(t *testing.T, client kubernetes.Interface, node string) History {
	t.Helper()
	var h History
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		h = history(t, client)
		for _, rs := range h.Pools {
			for _, r := range rs {
				if r.Node == node {
					return true, nil
				}
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("history %+v does not record %s", h.Pools, node)
	}
	return h
}

func deleteNode(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	if err := client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRecorderRecordsReclaimsOnly(t *testing.T) {
	itn := v1.Taint{Key: "aws-node-termination-handler/spot-itn", Effect: v1.TaintEffectNoSchedule}
	disrupted := v1.Taint{Key: "karpenter.sh/disrupted", Effect: v1.TaintEffectNoSchedule}
	client := fake.NewSimpleClientset(
		testNode("notice", "spot", "a", itn),             // an interruption notice, drained: a reclaim
		testNode("busy", "spot", "a"),                    // no notice, a pod still running: a reclaim
		testNode("drained", "spot", "a"),                 // only a DaemonSet pod: a scale-down
		testNode("consolidated", "spot", "b", disrupted), // Karpenter's own removal, drained
		testNode("cordoned", "spot", "b"),                // cordoned and drained: a scale-down
		testNode("ondemand", "on-demand", "c", itn),      // not reclaimable capacity
		testPod("web-1", "busy", "ReplicaSet"), testPod("ds", "drained", "DaemonSet"),
		testPod("done", "cordoned", "ReplicaSet"), testPod("odpod", "ondemand", "ReplicaSet"),
	)
	ctx := context.Background()
	if _, err := client.CoreV1().Pods("apps").UpdateStatus(ctx, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "done"}, Spec: v1.PodSpec{NodeName: "cordoned"}, Status: v1.PodStatus{Phase: v1.PodSucceeded}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cordoned, _ := client.CoreV1().Nodes().Get(ctx, "cordoned", metav1.GetOptions{})
	cordoned.Spec.Unschedulable = true
	if _, err := client.CoreV1().Nodes().Update(ctx, cordoned, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(t0)
	startRecorder(t, client, model(t), clk)
	for _, n := range []string{"drained", "consolidated", "cordoned", "ondemand", "notice", "busy"} {
		deleteNode(t, client, n)
	}
	h := waitRecorded(t, client, "busy")
	pool := "karpenter.sh/nodepool=a"
	if rs := h.Pools[pool]; len(rs) != 2 || h.Len() != 2 {
		t.Fatalf("history %+v, want the two reclaims of pool a", h.Pools)
	}
	signals := map[string]string{}
	for _, r := range h.Pools[pool] {
		signals[r.Node] = r.Signal
		if r.Tier != "spot" || !r.At.Time.Equal(t0) || r.UID == "" {
			t.Errorf("reclaim %+v", r)
		}
	}
	if signals["notice"] != itn.Key || signals["busy"] != SignalRunningPods {
		t.Errorf("signals %v", signals)
	}
}

// TestRecorderKeepsTheHistoryAcrossProcesses: a second process (a restart, or the next leader)
// adds to what the first recorded, and the window ages reclaims out.
func TestRecorderKeepsTheHistoryAcrossProcesses(t *testing.T) {
	client := fake.NewSimpleClientset(testNode("a1", "spot", "a"), testNode("a2", "spot", "a"), testNode("b1", "spot", "b"),
		testPod("p1", "a1", "ReplicaSet"), testPod("p2", "a2", "ReplicaSet"), testPod("p3", "b1", "ReplicaSet"))
	m := model(t)
	clk := clocktesting.NewFakeClock(t0)
	first := startRecorder(t, client, m, clk)
	deleteNode(t, client, "a1")
	waitRecorded(t, client, "a1")
	first.stop()

	clk.Step(24 * time.Hour)
	startRecorder(t, client, m, clk)
	deleteNode(t, client, "a2")
	h := waitRecorded(t, client, "a2")
	if len(h.Pools["karpenter.sh/nodepool=a"]) != 2 {
		t.Fatalf("history %+v", h.Pools)
	}

	// Past the window, a1's reclaim ages out: not counted, and pruned at the next write.
	clk.Step(6*24*time.Hour + time.Hour)
	counts, _ := h.Counts(clk.Now(), m.ReclaimWindow())
	if counts["karpenter.sh/nodepool=a"] != 1 {
		t.Errorf("counts %v", counts)
	}
	deleteNode(t, client, "b1")
	h = waitRecorded(t, client, "b1")
	if len(h.Pools["karpenter.sh/nodepool=a"]) != 1 || h.Pools["karpenter.sh/nodepool=a"][0].Node != "a2" || len(h.Pools["karpenter.sh/nodepool=b"]) != 1 {
		t.Errorf("history %+v", h.Pools)
	}
}

func TestReader(t *testing.T) {
	client := fake.NewSimpleClientset()
	clk := clocktesting.NewFakeClock(t0)
	m := model(t)
	namespace, name := m.ReclaimHistoryConfigMap()
	r := NewReader(client, namespace, name, m.ReclaimWindow(), clk)
	changes := make(chan struct{}, 10)
	r.OnChange(func() { changes <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Start(ctx)
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) { return r.HasSynced(), nil }); err != nil {
		t.Fatal(err)
	}
	if r.Reclaims() != nil {
		t.Errorf("no ConfigMap: %v", r.Reclaims())
	}
	var h History
	h.Add("a", reclaim("n1", t0.Add(-6*24*time.Hour)))
	h.Add("a", reclaim("n2", t0))
	data, _ := h.Encode()
	if _, err := client.CoreV1().ConfigMaps(namespace).Create(ctx, &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Data: map[string]string{DataKey: data}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no change seen")
	}
	if got := r.Reclaims(); got["a"] != 2 {
		t.Errorf("counts %v", got)
	}
	// n1 ages out without any write: the counts follow the clock.
	clk.Step(24*time.Hour + time.Minute)
	if got := r.Reclaims(); got["a"] != 1 {
		t.Errorf("after n1 aged out: %v", got)
	}
	if r.History().Len() != 2 {
		t.Errorf("history as read: %+v", r.History())
	}
}
