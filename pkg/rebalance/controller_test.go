package rebalance

import (
	"context"
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/spot-scheduler/spot-scheduler/internal/testobj"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

type controllerEnv struct {
	ctrl     *Controller
	cs       *fake.Clientset
	recorder *events.FakeRecorder
	clock    *clocktesting.FakeClock
	ctx      context.Context
}

func newControllerEnv(t *testing.T, dryRun bool, objs ...runtime.Object) *controllerEnv {
	t.Helper()
	return newControllerEnvWith(t, func(o *ControllerOptions) { o.DryRun = dryRun }, objs...)
}

// newControllerEnvWith is newControllerEnv with the options changed by mutate.
func newControllerEnvWith(t *testing.T, mutate func(*ControllerOptions), objs ...runtime.Object) *controllerEnv {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	cs := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(cs, 0)
	profile, err := simulator.Load(ctx, "../../manifests/scheduler-config.yaml", "spot-scheduler", cs, factory)
	if err != nil {
		t.Fatal(err)
	}
	recorder := events.NewFakeRecorder(100)
	opts := DefaultControllerOptions()
	opts.ValidationDelay = 0
	var plan strings.Builder
	opts.PlanOutput = &plan
	mutate(&opts)
	clk := clocktesting.NewFakeClock(now)
	ctrl, err := NewController(profile, cs, factory, recorder, opts, clk)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	cs.ClearActions()
	return &controllerEnv{ctrl: ctrl, cs: cs, recorder: recorder, clock: clk, ctx: ctx}
}

func mutatingActions(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource+"/"+a.GetSubresource())
		}
	}
	return out
}

func failbackObjects() []runtime.Object {
	return []runtime.Object{spotNode("spot-1", "4"), odNode("od-1", "4"), pod("a", "web", "od-1", "1")}
}

func TestDryRunMakesNoMutatingCall(t *testing.T) {
	env := newControllerEnv(t, true, failbackObjects()...)
	res, err := env.ctrl.Pass(env.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Moves) != 1 || len(res.Evicted) != 0 {
		t.Fatalf("planned %d, evicted %d; want 1 planned, 0 evicted", len(res.Plan.Moves), len(res.Evicted))
	}
	if m := mutatingActions(env.cs); len(m) != 0 {
		t.Fatalf("dry run made mutating calls: %v", m)
	}
	if len(env.recorder.Events) != 0 {
		t.Fatalf("dry run recorded an event: %s", <-env.recorder.Events)
	}
	if out := env.ctrl.opts.PlanOutput.(*strings.Builder).String(); !strings.Contains(out, "apps/a") || !strings.Contains(out, "spot-1") {
		t.Fatalf("printed plan lacks the move:\n%s", out)
	}
}

func TestPassEvictsWithPreconditionsAndEvent(t *testing.T) {
	env := newControllerEnv(t, false, failbackObjects()...)
	res, err := env.ctrl.Pass(env.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Evicted) != 1 {
		t.Fatalf("evicted %d, dropped %v; want 1", len(res.Evicted), res.Dropped)
	}
	var eviction *policyv1.Eviction
	for _, a := range env.cs.Actions() {
		if c, ok := a.(k8stesting.CreateAction); ok && a.GetSubresource() == "eviction" {
			eviction = c.GetObject().(*policyv1.Eviction)
		}
	}
	if eviction == nil || eviction.Name != "a" {
		t.Fatalf("no eviction of pod a: %v", env.cs.Actions())
	}
	// UID, and no resourceVersion: the API server charges the PDB before checking delete
	// preconditions, so a stale resourceVersion would spend the budget without evicting.
	if p := eviction.DeleteOptions.Preconditions; p == nil || p.UID == nil || *p.UID != "a" || p.ResourceVersion != nil {
		t.Fatalf("eviction preconditions %+v, want the pod's UID and no resourceVersion", eviction.DeleteOptions.Preconditions)
	}
	if m := mutatingActions(env.cs); len(m) != 1 {
		t.Fatalf("mutating calls %v, want only the eviction", m)
	}
	select {
	case e := <-env.recorder.Events:
		if !strings.Contains(e, "Rebalanced") || !strings.Contains(e, "from on-demand node od-1 to spot") || !strings.Contains(e, "node spot-1") {
			t.Fatalf("event %q does not name source and target tier and node", e)
		}
	default:
		t.Fatal("no event on the evicted pod")
	}
}

func TestPassSkipsWhenAPDBRefuses(t *testing.T) {
	env := newControllerEnv(t, false, failbackObjects()...)
	env.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
	})
	res, err := env.ctrl.Pass(env.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Evicted) != 0 || len(res.Dropped) != 1 || res.Dropped[0].Reason != SkipPDB {
		t.Fatalf("evicted %v dropped %v, want one pdb skip", res.Evicted, res.Dropped)
	}
	if len(env.recorder.Events) != 0 {
		t.Fatal("event recorded for a refused eviction")
	}
}

// TestPassDropsAMoveWhoseEvictionConflicts: with the UID as the only precondition, a Conflict
// means the pod was replaced under the same name: the move is stale, dropped, not retried.
func TestPassDropsAMoveWhoseEvictionConflicts(t *testing.T) {
	env := newControllerEnv(t, false, failbackObjects()...)
	attempts := 0
	env.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		attempts++
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "a", fmt.Errorf("the UID in the precondition does not match"))
	})
	res, err := env.ctrl.Pass(env.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Evicted) != 0 || len(res.Dropped) != 1 || res.Dropped[0].Reason != SkipChanged || attempts != 1 {
		t.Fatalf("evicted %v dropped %v after %d eviction calls, want one %s skip after 1 call", res.Evicted, res.Dropped, attempts, SkipChanged)
	}
	if len(env.recorder.Events) != 0 {
		t.Fatal("event recorded for a conflicting eviction")
	}
}

func TestPassRevalidatesTarget(t *testing.T) {
	env := newControllerEnv(t, false, failbackObjects()...)
	// The target node is gone from the API server although the informer still has it.
	env.cs.PrependReactor("get", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, a.(k8stesting.GetAction).GetName())
	})
	res, err := env.ctrl.Pass(env.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Evicted) != 0 || len(res.Dropped) != 1 || res.Dropped[0].Reason != SkipChanged {
		t.Fatalf("evicted %v dropped %v, want the move dropped as changed", res.Evicted, res.Dropped)
	}
	if m := mutatingActions(env.cs); len(m) != 0 {
		t.Fatalf("mutating calls %v after the target vanished", m)
	}
}

// TestBecameUsable: an early pass follows every change that can let pods onto a node.
func TestBecameUsable(t *testing.T) {
	ready := func(n *v1.Node, r bool) *v1.Node {
		status := v1.ConditionFalse
		if r {
			status = v1.ConditionTrue
		}
		n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: status}}
		return n
	}
	notReadyTaint := v1.Taint{Key: "node.kubernetes.io/not-ready", Effect: v1.TaintEffectNoSchedule}
	unregistered := v1.Taint{Key: "karpenter.sh/unregistered", Effect: v1.TaintEffectNoExecute}
	preferNo := v1.Taint{Key: "example.com/prefer", Effect: v1.TaintEffectPreferNoSchedule}
	tests := []struct {
		name      string
		old, node *v1.Node
		want      bool
	}{
		{"turned Ready", ready(spotNode("n", "4"), false), ready(spotNode("n", "4"), true), true},
		{"still not Ready", ready(spotNode("n", "4"), false), ready(spotNode("n", "4"), false), false},
		{"Ready, not-ready taint removed", ready(testobj.Node("n", "4", testobj.SpotLabels, notReadyTaint), true), ready(spotNode("n", "4"), true), true},
		{"Ready, unregistered taint removed, another stays", ready(testobj.Node("n", "4", testobj.SpotLabels, notReadyTaint, unregistered), true),
			ready(testobj.Node("n", "4", testobj.SpotLabels, notReadyTaint), true), true},
		{"Ready, a PreferNoSchedule taint removed", ready(testobj.Node("n", "4", testobj.SpotLabels, preferNo), true), ready(spotNode("n", "4"), true), false},
		{"Ready, a taint added", ready(spotNode("n", "4"), true), ready(testobj.Node("n", "4", testobj.SpotLabels, unregistered), true), false},
		{"taint removed while not Ready", ready(testobj.Node("n", "4", testobj.SpotLabels, notReadyTaint), false), ready(spotNode("n", "4"), false), false},
		{"uncordoned", cordon(ready(spotNode("n", "4"), true), true), ready(spotNode("n", "4"), true), true},
		{"heartbeat only", ready(spotNode("n", "4"), true), ready(spotNode("n", "4"), true), false},
	}
	for _, tc := range tests {
		if got := becameUsable(tc.old, tc.node); got != tc.want {
			t.Errorf("%s: becameUsable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// cordon cordons the node (or not).
func cordon(n *v1.Node, cordoned bool) *v1.Node {
	n.Spec.Unschedulable = cordoned
	return n
}
