package integration

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spot-scheduler/spot-scheduler/internal/demo"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// TestDemo plays `make demo`'s story to the end and checks what its summary claims: failover
// and failback happened, one eviction per needed move, nothing left on on-demand, the
// scale-in kept only spot pods, and the workload with a capacity policy kept it at every step
// and lost at most its pool cap (one replica) to the reclaim of a pool.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	summary, err := demo.Run(ctx, demoOptions(t, &out))
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if summary.FailoverSeconds <= 0 || summary.FailbackSeconds <= 0 {
		t.Errorf("failover %.1fs, failback %.1fs: both must have happened", summary.FailoverSeconds, summary.FailbackSeconds)
	}
	if summary.MovesNeeded == 0 {
		t.Errorf("no pod failed over to on-demand: the story did not exercise failback")
	}
	if summary.Evictions != summary.MovesNeeded {
		t.Errorf("%d evictions for %d needed moves", summary.Evictions, summary.MovesNeeded)
	}
	if summary.OnDemandAfterFailback != 0 {
		t.Errorf("%d app pods left on on-demand after failback", summary.OnDemandAfterFailback)
	}
	if summary.PlaceholderPreemptions == 0 {
		t.Errorf("no placeholder was preempted during failover")
	}
	if s := summary.SurvivorsByTier; s["spot"] != 12 || s["on-demand"]+s["burst"] != 0 {
		t.Errorf("scale-in survivors %v, want all 12 on spot", s)
	}
	t.Logf("fewest replicas Running during the reclaim: %v", summary.FewestRunning)
	if got := summary.FewestRunning["checkout"]; got < 3 {
		t.Errorf("checkout (4 replicas, at most 1 per spot pool) fell to %d Running during the reclaim of one pool, want at least 3", got)
	}
	if !summary.CheckoutPolicyHeld || len(summary.CheckoutPlacements) != 3 {
		t.Errorf("checkout's policy held: %v at %d of 3 steps (%v)", summary.CheckoutPolicyHeld, len(summary.CheckoutPlacements), summary.CheckoutPlacements)
	}
	if summary.PodSecondsByTier["burst"] == 0 || summary.Cost >= summary.AllOnDemandCost {
		t.Errorf("pod-seconds %v, cost %.4f vs all on-demand %.4f: want burst used at the peak and a saving", summary.PodSecondsByTier, summary.Cost, summary.AllOnDemandCost)
	}
	// The report at the end: every pod priced, a saving, and pool A's two reclaims recorded.
	r := summary.Report
	if r == nil || r.Total.Unpriced != 0 || r.Total.SavingPerHour <= 0 || r.Total.Pods < 16 {
		t.Fatalf("report total %+v, want every pod priced and a saving", r)
	}
	reclaims := map[string]int{}
	for _, p := range r.Pools {
		reclaims[p.Pool] = p.Reclaims
	}
	if got := reclaims["karpenter.sh/nodepool=spot-a,node.kubernetes.io/instance-type=m5.xlarge,topology.kubernetes.io/zone=zone-1"]; got != 2 {
		t.Errorf("pool spot-a: %d reclaims in the report, want 2 (pools %v)", got, reclaims)
	}
	if !strings.Contains(out.String(), "$/MONTH SAVED") {
		t.Errorf("the demo printed no report")
	}
}

// demoOptions runs a demo with this repository's binaries and shipped profile, printing to out.
func demoOptions(t *testing.T, out io.Writer) demo.Options {
	return demo.Options{
		SchedulerBinary:  framework.SchedulerBinary(t),
		RebalancerBinary: framework.RebalancerBinary(t),
		SchedulerConfig:  framework.RepoFile(t, "manifests/scheduler-config.yaml"),
		Out:              out,
	}
}
