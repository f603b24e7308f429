package rebalance

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"
)

func TestEvaluate(t *testing.T) {
	p := testProfile(t, "")
	_, ctx := ktesting.NewTestContext(t)
	nodes := []*v1.Node{
		spotNode("spot-full", "1"),
		spotNode("spot-1", "4"),
		node("spot-tainted", "4", spotLabels, v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}),
		odNode("od-1", "4"),
	}
	me := pod("me", "web", "od-1", "1")
	pods := []*v1.Pod{pod("filler", "other", "spot-full", "1"), me}
	eval, err := p.Evaluate(ctx, nodes, pods, me)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]NodeEvaluation{}
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
	p := testProfile(t, "")
	_, ctx := ktesting.NewTestContext(t)
	big := pod("big", "web", "", "16")
	eval, err := p.Evaluate(ctx, []*v1.Node{spotNode("spot-1", "4"), odNode("od-1", "4")}, nil, big)
	if err != nil {
		t.Fatal(err)
	}
	if eval.Chosen != "" {
		t.Fatalf("chosen %q for a pod that fits nowhere", eval.Chosen)
	}
	for _, n := range eval.Nodes {
		if n.Feasible || n.FailedPlugin != "NodeResourcesFit" || n.Reason == "" {
			t.Errorf("%+v: want rejected by NodeResourcesFit with a reason", n)
		}
	}
}
