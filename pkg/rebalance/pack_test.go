package rebalance

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

func packing() Options {
	o := wholeBudget()
	o.PackWithinTier = true
	return o
}

var packingTaint = v1.Taint{Key: wellknown.PackingTaintKey, Effect: v1.TaintEffectNoSchedule}

func TestPlanPackWithinTier(t *testing.T) {
	p := testProfile(t, "")
	capTwo := []string{policy.MaxPerPoolAnnotation, "2"}
	tests := []struct {
		name       string
		nodes      []*v1.Node
		pods       []*v1.Pod
		opts       Options
		wantMoves  []moveKey
		wantPacked []string
	}{
		{
			name:       "the least requested node empties onto a fuller one",
			nodes:      []*v1.Node{spotNode("spot-1", "4"), spotNode("spot-2", "4")},
			pods:       []*v1.Pod{pod("a", "web", "spot-1", "1"), pod("b", "web", "spot-2", "1"), pod("c", "api", "spot-2", "1")},
			opts:       packing(),
			wantMoves:  []moveKey{{"a", "spot-1", "spot-2"}},
			wantPacked: []string{"spot-1"},
		},
		{
			name:  "off by default",
			nodes: []*v1.Node{spotNode("spot-1", "4"), spotNode("spot-2", "4")},
			pods:  []*v1.Pod{pod("a", "web", "spot-1", "1"), pod("b", "web", "spot-2", "1"), pod("c", "api", "spot-2", "1")},
			opts:  wholeBudget(),
		},
		{
			name:  "all or nothing: one of the node's two pods would fit",
			nodes: []*v1.Node{spotNode("spot-1", "4"), spotNode("spot-2", "4")},
			pods:  []*v1.Pod{pod("a", "web", "spot-1", "1"), pod("b", "web", "spot-1", "1"), pod("c", "api", "spot-2", "3")},
			opts:  packing(),
		},
		{
			name:       "one node per pass, the least requested first",
			nodes:      []*v1.Node{spotNode("spot-1", "4"), spotNode("spot-2", "4"), spotNode("spot-3", "16")},
			pods:       []*v1.Pod{pod("a", "web", "spot-1", "1"), pod("b", "web", "spot-2", "2"), pod("c", "api", "spot-3", "4")},
			opts:       packing(),
			wantMoves:  []moveKey{{"a", "spot-1", "spot-3"}},
			wantPacked: []string{"spot-1"},
		},
		{
			name:  "a pod that may not move keeps its node, and the other node has nowhere to go",
			nodes: []*v1.Node{spotNode("spot-1", "4"), spotNode("spot-2", "4")},
			pods: []*v1.Pod{with(pod("a", "web", "spot-1", "1"), func(p *v1.Pod) { p.Annotations = map[string]string{wellknown.RebalanceAnnotation: "false"} }),
				pod("c", "api", "spot-2", "3.5")},
			opts: packing(),
		},
		{
			name:       "a placeholder keeps its node from being packed",
			nodes:      []*v1.Node{spotNode("spot-1", "4"), spotNode("spot-2", "4"), spotNode("spot-3", "4")},
			pods:       []*v1.Pod{pod("a", "web", "spot-1", "1"), placeholder("h", "spot-1", "1"), pod("b", "web", "spot-2", "2"), pod("c", "api", "spot-3", "3")},
			opts:       packing(),
			wantMoves:  []moveKey{{"b", "spot-2", "spot-1"}},
			wantPacked: []string{"spot-2"},
		},
		{
			name:  "a pod of the profile waiting for a node stops packing",
			nodes: []*v1.Node{spotNode("spot-1", "4"), spotNode("spot-2", "4")},
			pods:  []*v1.Pod{pod("a", "web", "spot-1", "1"), pod("b", "web", "spot-2", "1"), pod("pending", "web", "", "1")},
			opts:  packing(),
		},
		{
			name:      "failback first: no packing in a pass that moves pods to a better tier",
			nodes:     []*v1.Node{spotNode("spot-1", "4"), spotNode("spot-2", "4"), odNode("od-1", "4")},
			pods:      []*v1.Pod{pod("a", "web", "spot-1", "1"), pod("b", "web", "spot-2", "1"), pod("o", "web", "od-1", "1")},
			opts:      packing(),
			wantMoves: []moveKey{{"o", "od-1", "spot-1"}},
		},
		{
			name:  "never onto a worse tier: an on-demand node's pods do not go to another on-demand node's room when it is spot that has none",
			nodes: []*v1.Node{spotNode("spot-1", "1"), odNode("od-1", "4"), odNode("od-2", "4"), spotNode("spot-2", "1")},
			pods: []*v1.Pod{pod("s", "web", "spot-1", "1"), pod("t", "web", "spot-2", "1"),
				pod("a", "api", "od-1", "1"), pod("b", "api", "od-2", "2")},
			opts:       packing(),
			wantMoves:  []moveKey{{"a", "od-1", "od-2"}},
			wantPacked: []string{"od-1"},
		},
		{
			name:  "spot pods never go to on-demand to empty a spot node",
			nodes: []*v1.Node{spotNode("spot-1", "2"), spotNode("spot-2", "2"), odNode("od-1", "8")},
			pods:  []*v1.Pod{pod("a", "web", "spot-1", "1.5"), pod("b", "web", "spot-2", "1"), pod("o", "api", "od-1", "4")},
			opts:  packing(),
		},
		{
			name:  "a node being packed is neither a source nor a target",
			nodes: []*v1.Node{node("spot-1", "4", spotLabels, packingTaint), spotNode("spot-2", "4")},
			pods:  []*v1.Pod{pod("a", "web", "spot-1", "1"), pod("b", "web", "spot-2", "1"), pod("c", "api", "spot-2", "1")},
			opts:  packing(),
		},
		{
			name:  "a capacity policy's pool cap: not onto the full pool",
			nodes: []*v1.Node{poolNode("a-1", "8", "a"), poolNode("b-1", "8", "b")},
			pods: []*v1.Pod{withPolicy(pod("w1", "web", "a-1", "1"), capTwo...), withPolicy(pod("w2", "web", "b-1", "1"), capTwo...),
				withPolicy(pod("w3", "web", "b-1", "1"), capTwo...)},
			opts: packing(),
		},
		{
			name:  "a capacity policy's pool cap: within the pool",
			nodes: []*v1.Node{poolNode("a-1", "8", "a"), poolNode("a-2", "8", "a"), poolNode("b-1", "8", "b")},
			pods: []*v1.Pod{withPolicy(pod("w1", "web", "a-1", "1"), capTwo...), withPolicy(pod("w2", "web", "b-1", "1"), capTwo...),
				withPolicy(pod("w3", "web", "b-1", "1"), capTwo...), pod("o", "api", "a-2", "3")},
			opts:       packing(),
			wantMoves:  []moveKey{{"w1", "a-1", "a-2"}},
			wantPacked: []string{"a-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := runPlan(t, p, tt.nodes, tt.pods, tt.opts)
			if diff := cmp.Diff(tt.wantMoves, moves(plan)); diff != "" {
				t.Errorf("moves (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPacked, plan.PackedNodes); diff != "" {
				t.Errorf("packed nodes (-want +got):\n%s", diff)
			}
			for _, m := range plan.Moves {
				if len(plan.PackedNodes) > 0 && !m.ForPacking {
					t.Errorf("move %s from %s: want ForPacking in a packing plan", m.Pod.Name, m.From)
				}
			}
		})
	}
}

// TestPlanPackWithinTierBudgets: packing spends the workload's disruption budget like
// failback does: a node whose pods the budget cannot move at once is not packed.
func TestPlanPackWithinTierBudgets(t *testing.T) {
	p := testProfile(t, "")
	nodes := []*v1.Node{spotNode("spot-1", "4"), spotNode("spot-2", "8")}
	pods := []*v1.Pod{pod("a", "web", "spot-1", "1"), pod("b", "web", "spot-1", "1"), pod("c", "web", "spot-2", "1"), pod("d", "web", "spot-2", "1")}
	o := DefaultOptions() // 25 % of 4 replicas: one at a time
	o.PackWithinTier = true
	if plan := runPlan(t, p, nodes, pods, o); len(plan.Moves) != 0 {
		t.Errorf("moves %v: want none (two pods of web on spot-1, a budget of one)", moves(plan))
	}
	o.DisruptionBudget = wholeBudget().DisruptionBudget
	if plan := runPlan(t, p, nodes, pods, o); len(plan.Moves) != 2 {
		t.Errorf("moves %v: want both pods of spot-1 moved", moves(plan))
	}
}

func packingObjects() []runtime.Object {
	return []runtime.Object{spotNode("spot-1", "4"), spotNode("spot-2", "4"),
		pod("a", "web", "spot-1", "1"), pod("b", "web", "spot-2", "1"), pod("c", "api", "spot-2", "1")}
}

// TestPassTaintsBeforeItEvictsToPack: the node being packed carries the packing taint before
// its pod is evicted (its replacement must not land there again), and both get an event.
func TestPassTaintsBeforeItEvictsToPack(t *testing.T) {
	env := newControllerEnvWith(t, func(o *ControllerOptions) {
		o.PackWithinTier = true
		o.DisruptionBudget = wholeBudget().DisruptionBudget
	}, packingObjects()...)
	res, err := env.ctrl.Pass(env.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Evicted) != 1 || res.Evicted[0].Pod.Name != "a" || !res.Evicted[0].ForPacking {
		t.Fatalf("evicted %v dropped %v, want pod a packed off spot-1", res.Evicted, res.Dropped)
	}
	if diff := cmp.Diff([]string{"patch nodes/", "create pods/eviction"}, mutatingActions(env.cs)); diff != "" {
		t.Fatalf("mutating calls (-want +got):\n%s", diff)
	}
	n, err := env.cs.CoreV1().Nodes().Get(env.ctx, "spot-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !HasPackingTaint(n) || n.Spec.Taints[0].Effect != v1.TaintEffectNoSchedule || n.Spec.Taints[0].TimeAdded == nil {
		t.Fatalf("spot-1 taints %v, want %s:NoSchedule with its time", n.Spec.Taints, wellknown.PackingTaintKey)
	}
	var got []string
	for len(env.recorder.Events) > 0 {
		got = append(got, <-env.recorder.Events)
	}
	if len(got) != 2 || !strings.Contains(got[0], "Packing") || !strings.Contains(got[1], "packing: node spot-1 empties") {
		t.Fatalf("events %q, want Packing on the node, then the pod's", got)
	}
}

// TestPassReleasesPackingTaints: the taint goes when a pod of the profile is unschedulable or
// when the node still holds pods after packingHold; an empty node keeps it (the autoscaler
// removes the node).
func TestPassReleasesPackingTaints(t *testing.T) {
	tainted := func(name string, added time.Time) *v1.Node {
		taint := packingTaint
		taint.TimeAdded = &metav1.Time{Time: added}
		return node(name, "4", spotLabels, taint)
	}
	unschedulable := with(pod("new", "web", "", "8"), func(p *v1.Pod) {
		p.Status = v1.PodStatus{Phase: v1.PodPending, Conditions: []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionFalse, Reason: v1.PodReasonUnschedulable}}}
	})
	tests := []struct {
		name    string
		objs    []runtime.Object
		want    map[string]bool // node -> still tainted
		advance time.Duration
	}{
		{
			name: "held past packingHold: the node with pods is released, the empty one is not",
			objs: []runtime.Object{tainted("full", now), tainted("empty", now), spotNode("other", "0.5"), pod("a", "web", "full", "1")},
			want: map[string]bool{"full": false, "empty": true}, advance: packingHold,
		},
		{
			name: "within packingHold: both stay",
			objs: []runtime.Object{tainted("full", now), tainted("empty", now), spotNode("other", "0.5"), pod("a", "web", "full", "1")},
			want: map[string]bool{"full": true, "empty": true}, advance: packingHold - time.Second,
		},
		{
			name: "a pod that cannot be scheduled releases every packing taint",
			objs: []runtime.Object{tainted("full", now), tainted("empty", now), pod("a", "web", "full", "1"), unschedulable},
			want: map[string]bool{"full": false, "empty": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newControllerEnvWith(t, func(o *ControllerOptions) { o.PackWithinTier = true }, tt.objs...)
			env.clock.Step(tt.advance)
			if _, err := env.ctrl.Pass(env.ctx); err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				n, err := env.cs.CoreV1().Nodes().Get(env.ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if HasPackingTaint(n) != want {
					t.Errorf("node %s: packing taint %v, want %v", name, HasPackingTaint(n), want)
				}
			}
		})
	}
}

// TestPassBacksOffAfterARelease: a node released for still holding pods (an eviction a PDB
// refused) is not packed again within packingBackoff, though its pod would fit elsewhere:
// the taint does not come and go every packingHold.
func TestPassBacksOffAfterARelease(t *testing.T) {
	taint := packingTaint
	taint.TimeAdded = &metav1.Time{Time: now}
	env := newControllerEnvWith(t, func(o *ControllerOptions) {
		o.PackWithinTier = true
		o.DisruptionBudget = wholeBudget().DisruptionBudget
	},
		node("full", "4", spotLabels, taint), spotNode("other", "8"), pod("a", "web", "full", "1"), pod("b", "api", "other", "3.5"))
	tainted := func() bool {
		n, err := env.cs.CoreV1().Nodes().Get(env.ctx, "full", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return HasPackingTaint(n)
	}
	env.clock.Step(packingHold)
	// The informer must see the release before the next pass plans on it.
	for _, step := range []time.Duration{0, packingBackoff - time.Second} {
		env.clock.Step(step)
		res, err := env.ctrl.Pass(env.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tainted() || len(res.Evicted) != 0 {
			t.Fatalf("after %v: tainted %v, evicted %v; want the node released and left alone", step, tainted(), res.Evicted)
		}
		waitInformerNode(t, env, "full", false)
	}
	env.clock.Step(time.Second)
	res, err := env.ctrl.Pass(env.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !tainted() || len(res.Evicted) != 1 {
		t.Fatalf("after packingBackoff: tainted %v, evicted %v; want the node packed again", tainted(), res.Evicted)
	}
}

// waitInformerNode waits until the controller's informer shows the node with (or without) the
// packing taint.
func waitInformerNode(t *testing.T, env *controllerEnv, name string, tainted bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := env.ctrl.nodes.Get(name)
		if err == nil && HasPackingTaint(n) == tainted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the informer does not show node %s with packing taint %v", name, tainted)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
