package explain

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/spot-scheduler/spot-scheduler/internal/testobj"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/rebalance"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// A cluster with spot room: web-1 on on-demand would move to spot; keep-1 on on-demand is
// opted out (with an upper-case "False"); safe-* carry a capacity policy whose pool cap one
// spot pool breaks.
func explainCluster(t *testing.T) (*simulator.Simulator, []*v1.Node, []*v1.Pod) {
	t.Helper()
	sim := testobj.Simulator(t, "../../manifests/scheduler-config.yaml")
	nodes := []*v1.Node{
		testobj.Node("spot-a", "8", map[string]string{"karpenter.sh/capacity-type": "spot", "karpenter.sh/nodepool": "a"}),
		testobj.OnDemandNode("od-1", "8"),
	}
	web := testobj.Pod("web-1", "web", "od-1", "1")
	keep := testobj.Pod("keep-1", "keep", "od-1", "1")
	keep.Annotations = map[string]string{wellknown.RebalanceAnnotation: "False"}
	var safe []*v1.Pod
	for _, name := range []string{"safe-1", "safe-2", "safe-3"} {
		p := testobj.Pod(name, "safe", "spot-a", "1")
		p.Annotations = map[string]string{policy.MaxPerPoolAnnotation: "1"}
		safe = append(safe, p)
	}
	return sim, nodes, append([]*v1.Pod{web, keep}, safe...)
}

func TestExplainPodReport(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	sim, nodes, pods := explainCluster(t)
	for _, tc := range []struct {
		pod     string
		action  string
		toNode  string
		reason  string
		reading bool
	}{
		{pod: "web-1", action: "move", toNode: "spot-a"},
		{pod: "keep-1", action: "stay", reason: rebalance.SkipOptedOut, reading: true},
	} {
		var out bytes.Buffer
		o := &options{output: "json", out: &out}
		if err := o.explainPod(ctx, sim, nodes, pods, "apps", tc.pod, rebalance.DefaultOptions()); err != nil {
			t.Fatal(err)
		}
		var report PodReport
		if err := json.Unmarshal(out.Bytes(), &report); err != nil {
			t.Fatal(err)
		}
		if report.Pod != "apps/"+tc.pod || report.Node != "od-1" || report.Tier != "on-demand" {
			t.Errorf("%s: report %s on %s (%s)", tc.pod, report.Pod, report.Node, report.Tier)
		}
		if report.Evaluation.Chosen != "spot-a" {
			t.Errorf("%s: the scheduler would choose %q, want spot-a", tc.pod, report.Evaluation.Chosen)
		}
		if v := report.Rebalance; v.Action != tc.action || v.ToNode != tc.toNode || v.Reason != tc.reason {
			t.Errorf("%s: rebalance verdict %+v, want %s %s %s", tc.pod, v, tc.action, tc.toNode, tc.reason)
		}
		if got := len(report.Readings) == 1; got != tc.reading {
			t.Errorf("%s: readings %+v", tc.pod, report.Readings)
		}

		out.Reset()
		o.output = ""
		if err := o.explainPod(ctx, sim, nodes, pods, "apps", tc.pod, rebalance.DefaultOptions()); err != nil {
			t.Fatal(err)
		}
		table := out.String()
		for _, want := range []string{"Pod apps/" + tc.pod, "on node od-1 (on-demand)", "The scheduler would put it on spot-a."} {
			if !strings.Contains(table, want) {
				t.Errorf("%s: table does not say %q:\n%s", tc.pod, want, table)
			}
		}
	}
	var out bytes.Buffer
	if err := (&options{out: &out}).explainPod(ctx, sim, nodes, pods, "apps", "nobody", rebalance.DefaultOptions()); err == nil || !strings.Contains(err.Error(), "apps/nobody not found") {
		t.Errorf("unknown pod: error %v", err)
	}
}

func TestExplainScopeReport(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	sim, nodes, pods := explainCluster(t)
	var out bytes.Buffer
	o := &options{output: "json", out: &out}
	if err := o.explainScope(ctx, sim, nodes, pods, "apps", rebalance.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	var report ScopeReport
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatal(err)
	}
	if report.Scope != "namespace apps" || report.PodsPerTier["spot"] != 3 || report.PodsPerTier["on-demand"] != 2 {
		t.Errorf("scope %q, pods per tier %v, want 3 spot and 2 on-demand", report.Scope, report.PodsPerTier)
	}
	moved := map[string]string{}
	for _, m := range report.Moves {
		moved[m.Pod] = m.From + "->" + m.To
	}
	// web-1 to spot; of the three safe-* pods over their pool cap of 1, one to on-demand now
	// (its disruption budget, 25% of 3, allows one at a time) and the other next wave.
	if moved["apps/web-1"] != "od-1->spot-a" || len(moved) != 2 {
		t.Errorf("moves %v, want web-1 to spot and one safe-* pod off its full pool", moved)
	}
	if len(report.Policies) != 1 {
		t.Fatalf("policies %+v, want the one workload", report.Policies)
	}
	if p := report.Policies[0]; p.Holds || p.OverPoolCap != 2 || p.MaxPerPool != 1 || p.ReclaimablePerPool["karpenter.sh/nodepool=a"] != 3 {
		t.Errorf("policy report %+v, want 3 in pool a over a cap of 1", p)
	}
	stays := map[string]string{}
	for _, s := range report.Stays {
		stays[s.Pod] = s.Reason
	}
	if stays["apps/keep-1"] != rebalance.SkipOptedOut {
		t.Errorf("stays %v, want keep-1 opted out", stays)
	}
	budget := 0
	for pod, reason := range stays {
		if strings.HasPrefix(pod, "apps/safe-") && reason == rebalance.SkipBudget {
			budget++
		}
	}
	if budget != 2 {
		t.Errorf("stays %v, want the two safe-* pods not moved now held by the disruption budget", stays)
	}

	out.Reset()
	o.output = ""
	if err := o.explainScope(ctx, sim, nodes, pods, "", rebalance.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"in cluster, per tier", "Capacity policies:", "max-per-pool=1", "no: 0 below the on-demand floor of 0, 2 over the pool cap", "Rebalancer plan now (dry run): 2 move(s)", "disruption_budget"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table does not say %q:\n%s", want, out.String())
		}
	}
}
