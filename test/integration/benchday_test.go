package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spot-scheduler/spot-scheduler/bench/day"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// TestKarpenterBenchDaySmoke runs the real-day benchmark end to end on the smoke shape (three
// pools, two workloads, short node and settle delays), spot-scheduler with the real Karpenter
// adding every node, through a scale-up and down, a pool reclaim with its notice and its return, and
// checks the accounting: every node-second the machines were billed is in an episode or in a
// settled stretch between episodes, every desired replica-second is served or short, the
// reclaim drains pods and the return finds the workloads whole, and the composed days never
// cost less than the optimum. (Named TestKarpenter*: make test runs it once Karpenter is built.)
func TestKarpenterBenchDaySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane with Karpenter for ~2 minutes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out strings.Builder
	shape := day.Smoke()
	run, err := day.Execute(ctx, day.SpotScheduler, day.Options{
		Shape: shape, Episodes: []string{day.ScaleUp, day.ScaleDown, day.ReclaimPool, day.ReturnPool},
		SchedulerBinary:  framework.SchedulerBinary(t),
		RebalancerBinary: framework.RebalancerBinary(t),
		SchedulerConfig:  framework.RepoFile(t, "manifests/scheduler-config.yaml"),
		Repetition:       1, Out: &out,
	})
	t.Logf("run:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := run.CheckAccounting(); err != nil {
		t.Fatal(err)
	}
	byKind := map[string]*day.Episode{}
	for i := range run.Episodes {
		ep := &run.Episodes[i]
		byKind[ep.Kind] = ep
		if !ep.Settled {
			t.Errorf("episode %s did not settle within %s", ep.Kind, shape.EpisodeTimeout)
		}
	}
	if up := byKind[day.ScaleUp]; up.Desired["web"] != 6 || up.Fewest["web"] > 6 {
		t.Errorf("scale-up: desired %v fewest %v, want web at 6", up.Desired, up.Fewest)
	}
	reclaim := byKind[day.ReclaimPool]
	if reclaim.StartNodes[day.Spot] == 0 {
		t.Fatalf("the reclaim started with no spot node: %+v", reclaim)
	}
	if reclaim.DrainEvictions+int(reclaim.TotalDeficit()) == 0 {
		t.Errorf("the reclaim of %v spot nodes neither drained a pod nor left a replica short", reclaim.StartNodes)
	}
	ret := byKind[day.ReturnPool]
	for w, want := range ret.Desired {
		if ret.TotalDeficit() > 0 && ret.Fewest[w] == 0 {
			t.Errorf("return: workload %s fell to 0 of %d", w, want)
		}
	}
	dir := t.TempDir()
	if _, err := day.SaveRun(dir, run); err != nil {
		t.Fatal(err)
	}
	runs, err := day.LoadRuns(dir, shape.Name)
	if err != nil || len(runs) != 1 {
		t.Fatalf("loading the saved run: %v (%d runs)", err, len(runs))
	}
	rep := day.Summarize(shape, runs)
	for rate, byDiscount := range rep.Estimates {
		for discount, est := range byDiscount {
			e := est[day.SpotScheduler]
			if e == nil {
				t.Fatalf("rate %g discount %g: no day composed from the run", rate, discount)
			}
			if e.Optimum > e.Dollars {
				t.Errorf("rate %g discount %g: optimum $%.2f above spot-scheduler's $%.2f", rate, discount, e.Optimum, e.Dollars)
			}
		}
	}
	if err := rep.WriteReports(dir, "smoke"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"summary.txt", "results.md", "day-dollars.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("report %s: %v", f, err)
		}
	}
}
