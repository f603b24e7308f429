package simulator_test

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/spot-scheduler/spot-scheduler/internal/testobj"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

const shippedConfig = "../../manifests/scheduler-config.yaml"

var (
	node     = testobj.Node
	spotNode = testobj.SpotNode
	odNode   = testobj.OnDemandNode
	pod      = testobj.Pod
)

// evaluate evaluates pod, taken off its node, on a snapshot of nodes and pods.
func evaluate(ctx context.Context, t *testing.T, sim *simulator.Simulator, nodes []*v1.Node, pods []*v1.Pod, me *v1.Pod) *simulator.Evaluation {
	t.Helper()
	var others []*v1.Pod
	for _, p := range pods {
		if p.UID != me.UID {
			others = append(others, p)
		}
	}
	session := sim.Begin(sim.NewSnapshot(nodes, others, false))
	defer session.End()
	eval, err := session.Evaluate(ctx, simulator.Unbound(me))
	if err != nil {
		t.Fatal(err)
	}
	return eval
}

func TestEvaluate(t *testing.T) {
	p := testobj.Simulator(t, shippedConfig)
	_, ctx := ktesting.NewTestContext(t)
	nodes := []*v1.Node{
		spotNode("spot-full", "1"),
		spotNode("spot-1", "4"),
		node("spot-tainted", "4", testobj.SpotLabels, v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}),
		odNode("od-1", "4"),
	}
	me := pod("me", "web", "od-1", "1")
	pods := []*v1.Pod{pod("filler", "other", "spot-full", "1"), me}
	eval := evaluate(ctx, t, p, nodes, pods, me)
	got := map[string]simulator.NodeVerdict{}
	for _, n := range eval.Nodes {
		got[n.Node] = n
	}
	if eval.Chosen != "spot-1" {
		t.Errorf("chosen %q, want spot-1", eval.Chosen)
	}
	if n := got["spot-full"]; n.Feasible || n.FailedPlugin != "NodeResourcesFit" {
		t.Errorf("spot-full: %+v, want rejected by NodeResourcesFit", n)
	}
	if n := got["spot-tainted"]; n.Feasible || n.FailedPlugin != "TaintToleration" {
		t.Errorf("spot-tainted: %+v, want rejected by TaintToleration", n)
	}
	if n := got["od-1"]; !n.Feasible || n.Tier != "on-demand" || n.Score >= got["spot-1"].Score || n.SpotScore >= got["spot-1"].SpotScore {
		t.Errorf("od-1 %+v must be feasible and score below spot-1 %+v", n, got["spot-1"])
	}
}

func TestEvaluateFitsNowhere(t *testing.T) {
	p := testobj.Simulator(t, shippedConfig)
	_, ctx := ktesting.NewTestContext(t)
	big := pod("big", "web", "", "16")
	eval := evaluate(ctx, t, p, []*v1.Node{spotNode("spot-1", "4"), odNode("od-1", "4")}, nil, big)
	if eval.Chosen != "" {
		t.Fatalf("chosen %q for a pod that fits nowhere", eval.Chosen)
	}
	for _, n := range eval.Nodes {
		if n.Feasible || n.FailedPlugin != "NodeResourcesFit" || n.Reason == "" {
			t.Errorf("%+v: want rejected by NodeResourcesFit with a reason", n)
		}
	}
}
