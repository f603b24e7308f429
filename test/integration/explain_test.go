package integration

import (
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/explain"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// TestExplainPod: for a pod that fits nowhere, every node is reported infeasible with the
// filter that rejected it; for a pod on on-demand with spot room, explain shows the spot node
// winning and the rebalancer's dry-run move.
func TestExplainPod(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(framework.Node("spot-1", "2", framework.SpotLabels), framework.Node("ondemand-1", "4", framework.OnDemandLabels))
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, "web", 3, "1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	byNode := waitAllBound(env, "web", 3)
	if byNode["spot-1"] != 2 || byNode["ondemand-1"] != 1 {
		t.Fatalf("placement %v, want 2 on spot-1 and 1 on ondemand-1", byNode)
	}
	huge := framework.Pod(ns, "huge", "100", nil)
	if _, err := env.Client.CoreV1().Pods(ns).Create(env.Ctx, huge, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var report explain.PodReport
	if err := json.Unmarshal([]byte(runExplain(env, "pod", ns+"/huge", "-o", "json")), &report); err != nil {
		t.Fatal(err)
	}
	if report.Evaluation.Chosen != "" {
		t.Fatalf("a 100-CPU pod would go to %s", report.Evaluation.Chosen)
	}
	for _, n := range report.Evaluation.Nodes {
		if n.Feasible || n.FailedPlugin != "NodeResourcesFit" || !strings.Contains(n.Reason, "cpu") {
			t.Errorf("%s: %+v, want rejected by NodeResourcesFit for cpu", n.Node, n)
		}
	}

	// Spot room appears: the on-demand pod would go to spot, and the rebalancer would move it.
	env.CreateNodes(framework.Node("spot-2", "2", framework.SpotLabels))
	pods, err := env.Client.CoreV1().Pods(ns).List(env.Ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=ondemand-1"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods on ondemand-1: %v %v", pods, err)
	}
	onDemandPod := pods.Items[0].Name
	report = explain.PodReport{}
	if err := json.Unmarshal([]byte(runExplain(env, "pod", ns+"/"+onDemandPod, "-o", "json")), &report); err != nil {
		t.Fatal(err)
	}
	if report.Tier != "on-demand" || report.Evaluation.Chosen != "spot-2" {
		t.Fatalf("pod on %s (%s) would go to %s, want spot-2", report.Node, report.Tier, report.Evaluation.Chosen)
	}
	if v := report.Rebalance; v.Action != "move" || v.ToNode != "spot-2" || v.ToTier != "spot" {
		t.Fatalf("rebalance verdict %+v, want a move to spot-2", v)
	}
	table := runExplain(env, "pod", ns+"/"+onDemandPod)
	for _, want := range []string{"spot-2", "The scheduler would put it on spot-2", "would evict it to move it to spot-2 (spot)"} {
		if !strings.Contains(table, want) {
			t.Errorf("table output lacks %q:\n%s", want, table)
		}
	}

	// Namespace view: pods per tier and the plan.
	var scope explain.ScopeReport
	if err := json.Unmarshal([]byte(runExplain(env, "namespace", ns, "-o", "json")), &scope); err != nil {
		t.Fatal(err)
	}
	if scope.PodsPerTier["spot"] != 2 || scope.PodsPerTier["on-demand"] != 1 {
		t.Errorf("pods per tier %v, want spot 2, on-demand 1", scope.PodsPerTier)
	}
	if len(scope.Moves) != 1 || scope.Moves[0].To != "spot-2" {
		t.Errorf("moves %v, want the on-demand pod to spot-2", scope.Moves)
	}
	// explain changes nothing: the pod is still there, on on-demand.
	p, err := env.Client.CoreV1().Pods(ns).Get(env.Ctx, onDemandPod, metav1.GetOptions{})
	if err != nil || p.Spec.NodeName != "ondemand-1" || p.DeletionTimestamp != nil {
		t.Fatalf("explain disturbed the pod: %v %v", p, err)
	}
}
