package deletioncost

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

const (
	costKey = wellknown.PodDeletionCostAnnotation
	markKey = wellknown.ManagedDeletionCostAnnotation
	testNS  = "apps"
)

var (
	base          = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	riskTaint     = v1.Taint{Key: "aws-node-termination-handler/spot-itn", Effect: v1.TaintEffectNoSchedule}
	onDemandLabel = map[string]string{"karpenter.sh/capacity-type": "on-demand"}
)

func node(name string, labels map[string]string, taints ...v1.Taint) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, ResourceVersion: "1"}, Spec: v1.NodeSpec{Taints: taints}}
}

func spotNode(name, pool string, taints ...v1.Taint) *v1.Node {
	return node(name, map[string]string{"karpenter.sh/capacity-type": "spot", "karpenter.sh/nodepool": pool}, taints...)
}

type podOpt func(*v1.Pod)

func withAnnotations(kv ...string) podOpt {
	return func(p *v1.Pod) {
		p.Annotations = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func withScheduler(name string) podOpt { return func(p *v1.Pod) { p.Spec.SchedulerName = name } }

func withOwner(kind, name string) podOpt {
	return func(p *v1.Pod) {
		if kind == "" {
			p.OwnerReferences = nil
			return
		}
		api := "apps/v1"
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: api, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: ptrTo(true)}}
	}
}

func terminating(p *v1.Pod) {
	now := metav1.NewTime(base)
	p.DeletionTimestamp = &now
	p.Finalizers = []string{"example.com/hold"}
}

func ptrTo[T any](v T) *T { return &v }

// pod of ReplicaSet "web", created age seconds after base.
func pod(name, nodeName string, age int, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: testNS, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1",
			CreationTimestamp: metav1.NewTime(base.Add(time.Duration(age) * time.Second)),
		},
		Spec: v1.PodSpec{NodeName: nodeName, SchedulerName: wellknown.SchedulerName},
	}
	withOwner("ReplicaSet", "web")(p)
	for _, o := range opts {
		o(p)
	}
	return p
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	client *fake.Clientset
	c      *Controller
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	return newHarnessWith(t, nil, objs...)
}

// newHarnessWith is newHarness with a reclaim history.
func newHarnessWith(t *testing.T, reclaims capacity.ReclaimSource, objs ...runtime.Object) *harness {
	t.Helper()
	return newHarnessOptions(t, Options{Reclaims: reclaims}, objs...)
}

// newHarnessOptions is newHarness with opts (the scheduler name, model and token bucket are the
// tests').
func newHarnessOptions(t *testing.T, opts Options, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	opts.SchedulerName, opts.Model, opts.QPS, opts.Burst = wellknown.SchedulerName, defaultModel(t), 1000, 1000
	c, err := New(client, informers.NewSharedInformerFactory(client, 0), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		c.queue.ShutDown()
		c.factory.Shutdown()
	})
	if err := c.startInformers(ctx); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, ctx: ctx, client: client, c: c}
}

// drain processes every queued work item, in this goroutine.
func (h *harness) drain() {
	h.t.Helper()
	for h.c.queue.Len() > 0 {
		h.c.processNext(h.ctx)
	}
}

// eventually processes queued work as events arrive until the API shows want (bounded).
func (h *harness) eventually(desc string, want map[string]string) {
	h.t.Helper()
	h.eventuallyRead(desc, (*harness).annotations, want)
}

// eventuallyRead is eventually for what read reads from the API.
func (h *harness) eventuallyRead(desc string, read func(*harness) map[string]string, want map[string]string) {
	h.t.Helper()
	var last map[string]string
	if err := wait.PollUntilContextTimeout(h.ctx, time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		h.drain()
		last = read(h)
		return cmp.Equal(want, last), nil
	}); err != nil {
		h.t.Fatalf("%s (-want +got):\n%s", desc, cmp.Diff(want, last))
	}
}

func (h *harness) patches() int {
	n := 0
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "pods" {
			n++
		}
	}
	return n
}

// annotations returns each pod's deletion-cost and record annotations from the API.
func (h *harness) annotations() map[string]string {
	h.t.Helper()
	return h.perPod(func(p *v1.Pod) string {
		cost, hasCost := p.Annotations[costKey]
		mark, hasMark := p.Annotations[markKey]
		switch {
		case !hasCost && !hasMark:
			return "-"
		case hasMark && cost == mark:
			return "ours:" + cost
		default:
			return fmt.Sprintf("cost=%s,mark=%s", cost, mark)
		}
	})
}

// perPod maps each pod in the API to what describe says of it.
func (h *harness) perPod(describe func(*v1.Pod) string) map[string]string {
	h.t.Helper()
	pods, err := h.client.CoreV1().Pods(testNS).List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for i := range pods.Items {
		out[pods.Items[i].Name] = describe(&pods.Items[i])
	}
	return out
}

// waitCached waits until the controller's cache shows every pod's annotations as the API does.
func (h *harness) waitCached() {
	h.t.Helper()
	want := h.annotations()
	if err := wait.PollUntilContextTimeout(h.ctx, time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		for name, w := range want {
			obj, ok, _ := h.c.pods.GetByKey(testNS + "/" + name)
			if !ok {
				return false, nil
			}
			p := obj.(*v1.Pod)
			cost, hasCost := p.Annotations[costKey]
			mark, hasMark := p.Annotations[markKey]
			got := "-"
			switch {
			case !hasCost && !hasMark:
			case hasMark && cost == mark:
				got = "ours:" + cost
			default:
				got = fmt.Sprintf("cost=%s,mark=%s", cost, mark)
			}
			if got != w {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		h.t.Fatal("cache never caught up with the API")
	}
}

// resyncAll runs a sync of every workload and pod now in the cache, as if every event fired again.
func (h *harness) resyncAll() {
	h.t.Helper()
	for _, obj := range h.c.pods.List() {
		if k, ok := h.c.keyFor(obj.(*v1.Pod)); ok {
			if err := h.c.sync(h.ctx, k); err != nil {
				h.t.Fatal(err)
			}
		}
	}
}

func TestControllerRanksByTierRiskAndPool(t *testing.T) {
	h := newHarness(t,
		spotNode("spot-a1", "a"), spotNode("spot-a2", "a"), spotNode("spot-b", "b"),
		spotNode("spot-risky", "c", riskTaint),
		node("ondemand-1", onDemandLabel),
		node("virtual-1", map[string]string{"type": "virtual-kubelet"}),
		pod("web-0", "spot-a1", 0),
		pod("web-1", "spot-a2", 1),
		pod("web-2", "spot-b", 2),
		pod("web-3", "ondemand-1", 3),
		pod("web-4", "virtual-1", 4),
		pod("web-5", "spot-risky", 5),
		pod("web-6", "spot-a1", 6),
		pod("web-7", "", 7),                    // unbound
		pod("web-8", "spot-b", 8, terminating), // going away
		pod("web-9", "ghost", 9),               // node not known
		pod("avoid-0", "spot-b", 0, withOwner("ReplicaSet", "stateful"), withAnnotations(wellknown.AvoidSpotAnnotation, "true")),
		pod("api-0", "spot-a1", 10, withOwner("ReplicaSet", "api")),
	)
	h.drain()
	want := map[string]string{
		"web-0": "ours:6999", // pool a, oldest
		"web-1": "ours:6998", // pool a, second
		"web-6": "ours:6997", // pool a, third: goes first among spot pods
		"web-2": "ours:6999", // pool b, alone
		"web-3": "ours:5999",
		"web-4": "ours:4999",
		"web-5": "ours:2999", // at risk: below every healthy pod
		"web-7": "-", "web-8": "-", "web-9": "-",
		"avoid-0": "ours:5999", // avoid-spot: spot ranks below on-demand (above burst) for it
		"api-0":   "ours:6999", // another workload counts on its own
	}
	if diff := cmp.Diff(want, h.annotations()); diff != "" {
		t.Fatalf("annotations (-want +got):\n%s", diff)
	}
	if got := h.patches(); got != 9 {
		t.Errorf("%d patches, want 9 (one per pod that needed a value)", got)
	}

	// Steady state: every event again, after the cache shows our writes: no write.
	h.waitCached()
	h.drain()
	h.resyncAll()
	if got := h.patches(); got != 9 {
		t.Fatalf("%d patches after a resync with nothing changed, want still 9", got)
	}

	// A node gets an interruption notice: its pod (only) is re-ranked below every healthy one.
	n, err := h.client.CoreV1().Nodes().Get(h.ctx, "spot-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = append(n.Spec.Taints, riskTaint)
	n.ResourceVersion = "2"
	if _, err := h.client.CoreV1().Nodes().Update(h.ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want["web-2"] = "ours:2999"
	want["avoid-0"] = "ours:1999" // at risk, and spot ranks below on-demand for this pod
	h.eventually("after the taint", want)
	if got := h.patches(); got != 11 {
		t.Errorf("%d patches, want 11 (the two pods on the tainted node)", got)
	}

	// A replica goes away: the pods of its pool move up one level, nothing else changes.
	if err := h.client.CoreV1().Pods(testNS).Delete(h.ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	delete(want, "web-0")
	want["web-1"], want["web-6"] = "ours:6999", "ours:6998"
	h.eventually("after a replica left", want)
	if got := h.patches(); got != 13 {
		t.Errorf("%d patches, want 13", got)
	}

	// Nothing else to do once the cache shows it all.
	h.waitCached()
	h.drain()
	h.resyncAll()
	if got := h.patches(); got != 13 {
		t.Errorf("%d patches after a resync, want still 13", got)
	}
}

// TestNodeUpdateQueuesOnlyOnClassChange: node updates queue the node's workloads only when the
// node's tier, risk or pool changes (status heartbeats and unrelated labels do not).
func TestNodeUpdateQueuesOnlyOnClassChange(t *testing.T) {
	cases := []struct {
		name   string
		change func(*v1.Node)
		want   int
	}{
		{"heartbeat", func(n *v1.Node) { n.ResourceVersion = "2" }, 0},
		{"unrelated label", func(n *v1.Node) { n.Labels["team"] = "x" }, 0},
		{"unrelated taint", func(n *v1.Node) {
			n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: "example.com/x", Effect: v1.TaintEffectNoSchedule})
		}, 0},
		{"interruption notice", func(n *v1.Node) { n.Spec.Taints = append(n.Spec.Taints, riskTaint) }, 1},
		{"cordoned", func(n *v1.Node) { n.Spec.Unschedulable = true }, 1},
		{"tier label", func(n *v1.Node) { n.Labels["karpenter.sh/capacity-type"] = "on-demand" }, 1},
		{"pool label", func(n *v1.Node) { n.Labels["karpenter.sh/nodepool"] = "b" }, 1},
		{"zone label", func(n *v1.Node) { n.Labels["topology.kubernetes.io/zone"] = "z" }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			c, err := New(cs, informers.NewSharedInformerFactory(cs, 0), Options{SchedulerName: wellknown.SchedulerName, Model: defaultModel(t), QPS: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer c.queue.ShutDown()
			for _, p := range []*v1.Pod{pod("web-0", "spot-1", 0), pod("web-1", "spot-1", 1), pod("other", "spot-2", 0)} {
				if err := c.pods.Add(p); err != nil {
					t.Fatal(err)
				}
			}
			old := spotNode("spot-1", "a")
			cur := old.DeepCopy()
			tc.change(cur)
			c.nodeUpdated(old, cur)
			if got := c.queue.Len(); got != tc.want {
				t.Errorf("%d work items queued, want %d", got, tc.want)
			}
		})
	}
}

// TestControllerOwnership: one pod on a healthy spot node per case (desired cost 6999).
func TestControllerOwnership(t *testing.T) {
	cases := []struct {
		name        string
		opts        []podOpt
		want        string
		wantPatches int
	}{
		{"free pod in scope: set", nil, "ours:6999", 1},
		{"our stale value: updated", []podOpt{withAnnotations(costKey, "1999", markKey, "1999")}, "ours:6999", 1},
		{"our current value: no write", []podOpt{withAnnotations(costKey, "6999", markKey, "6999")}, "ours:6999", 0},
		{"our record without cost: set", []podOpt{withAnnotations(markKey, "5999")}, "ours:6999", 1},
		{"user value: untouched", []podOpt{withAnnotations(costKey, "-5")}, "cost=-5,mark=", 0},
		{"user changed our value: untouched", []podOpt{withAnnotations(costKey, "100", markKey, "6999")}, "cost=100,mark=6999", 0},
		{"other scheduler, ours: removed", []podOpt{withScheduler("default-scheduler"), withAnnotations(costKey, "6999", markKey, "6999")}, "-", 1},
		{"no owner, ours: removed", []podOpt{withOwner("", ""), withAnnotations(costKey, "6999", markKey, "6999")}, "-", 1},
		{"StatefulSet owner, ours: removed", []podOpt{withOwner("StatefulSet", "db"), withAnnotations(costKey, "6999", markKey, "6999")}, "-", 1},
		{"other scheduler, user value: untouched", []podOpt{withScheduler("default-scheduler"), withAnnotations(costKey, "3")}, "cost=3,mark=", 0},
		{"other scheduler, nothing: no write", []podOpt{withScheduler("default-scheduler")}, "-", 0},
		{"no owner, nothing: no write", []podOpt{withOwner("", "")}, "-", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, spotNode("spot-1", "a"), pod("p", "spot-1", 0, tc.opts...))
			h.drain()
			if got := h.annotations()["p"]; got != tc.want {
				t.Errorf("annotations %s, want %s", got, tc.want)
			}
			if got := h.patches(); got != tc.wantPatches {
				t.Errorf("%d patches, want %d", got, tc.wantPatches)
			}
			// Nothing more to do once the cache shows the result.
			h.waitCached()
			h.drain()
			h.resyncAll()
			if got := h.patches(); got != tc.wantPatches {
				t.Errorf("%d patches after a resync, want still %d", got, tc.wantPatches)
			}
		})
	}
}

// TestControllerLeavesScope: a pod released by its ReplicaSet (owner reference removed) loses
// our value, and the pods left in the workload re-rank.
func TestControllerLeavesScope(t *testing.T) {
	h := newHarness(t, spotNode("spot-1", "a"), pod("web-0", "spot-1", 0), pod("web-1", "spot-1", 1))
	h.drain()
	if diff := cmp.Diff(map[string]string{"web-0": "ours:6999", "web-1": "ours:6998"}, h.annotations()); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	h.waitCached()
	p, err := h.client.CoreV1().Pods(testNS).Get(h.ctx, "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.OwnerReferences = nil
	p.ResourceVersion = "7"
	if _, err := h.client.CoreV1().Pods(testNS).Update(h.ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("after release", map[string]string{"web-0": "-", "web-1": "ours:6999"})
}

// TestControllerConflictRetries: a pod that changed between read and write is not overwritten;
// the write is retried from the new version.
func TestControllerConflictRetries(t *testing.T) {
	h := newHarness(t, spotNode("spot-1", "a"), pod("web-0", "spot-1", 0))
	conflicts := 0
	h.client.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts == 0 {
			conflicts++
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "web-0", fmt.Errorf("changed"))
		}
		return false, nil, nil
	})
	h.drain()
	if got := h.annotations()["web-0"]; got != "-" {
		t.Fatalf("after a conflict: %s, want nothing written", got)
	}
	h.eventually("after the rate-limited retry", map[string]string{"web-0": "ours:6999"})
}

func TestNewRejectsBadOptions(t *testing.T) {
	m := defaultModel(t)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"no scheduler name", Options{Model: m, QPS: 1}},
		{"no model", Options{SchedulerName: "s", QPS: 1}},
		{"zero qps", Options{SchedulerName: "s", Model: m}},
		{"negative qps", Options{SchedulerName: "s", Model: m, QPS: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			if _, err := New(cs, informers.NewSharedInformerFactory(cs, 0), tc.opts); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}
