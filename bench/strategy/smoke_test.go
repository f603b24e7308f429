package strategy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/spot-scheduler/spot-scheduler/bench/strategy"
	"github.com/spot-scheduler/spot-scheduler/bench/trace"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false)))
	os.Exit(m.Run())
}

// TestStrategyBenchSmoke runs the strategy benchmark end to end on the tiny smoke trace, for
// spot-scheduler and the affinity recipe (real kube-scheduler), and checks that the metrics are
// computed and sane: every pod accounted for, the optimum never above any strategy,
// spot-scheduler fails back with at most one eviction per needed move, the safety measure
// covers the reclaim, the reports are written. Karpenter is not in the smoke (a Karpenter run
// would add over 2 minutes); the safety and node-meter arithmetic have unit tests.
func TestStrategyBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two local control planes (~2 minutes)")
	}
	tr, err := trace.Load("smoke")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var out strings.Builder
	opts := strategy.Options{
		Trace:            tr,
		SchedulerBinary:  framework.SchedulerBinary(t),
		RebalancerBinary: framework.RebalancerBinary(t),
		SchedulerConfig:  framework.RepoFile(t, "manifests/scheduler-config.yaml"),
		Out:              &out,
	}
	var runs []*strategy.Run
	for _, s := range []string{strategy.SpotScheduler, strategy.Affinity} {
		run, err := strategy.Execute(ctx, s, opts)
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		runs = append(runs, run)
	}
	t.Logf("replays:\n%s", out.String())
	all, ms := strategy.Results(tr, runs, 1)
	var table strings.Builder
	strategy.Markdown(&table, tr, ms)
	t.Logf("results:\n%s", table.String())

	byName := map[string]strategy.Metrics{}
	for _, m := range ms {
		byName[m.Strategy] = m
	}
	opt := byName[strategy.Optimum]
	if opt.NodeCost <= 0 || opt.NeededMoves == 0 {
		t.Fatalf("optimum: cost %.4f, needed moves %d: the smoke trace must cost something and need a failback", opt.NodeCost, opt.NeededMoves)
	}
	for _, run := range runs {
		m := byName[run.Strategy]
		if n := len(run.Samples); n < int(tr.Duration)/2 || run.Samples[n-1].T < tr.Duration-3 {
			t.Errorf("%s: %d samples, last at %.1fs: the replay did not cover the trace", m.Strategy, n, run.Samples[n-1].T)
		}
		// Every desired pod is either served on a tier or counted pending, and at the end
		// (after the scale-in settled) all are served.
		last := run.Samples[len(run.Samples)-1]
		served := 0
		for _, n := range last.PodsPerTier {
			served += n
		}
		if desired := tr.StateAfter(last.Events).DesiredPods(); served != desired || last.Pending != 0 {
			t.Errorf("%s: at the end %d pods served and %d pending, want all %d served", m.Strategy, served, last.Pending, desired)
		}
		// The optimum is a lower bound of both cost measures: exactly on the run's own sampling
		// grid, and within sampling jitter on the optimum's regular grid.
		for what, cost := range map[string]float64{"node": m.NodeCost, "pod": m.PodCost} {
			if cost < m.OptimumCost*(1-1e-9) || cost < opt.NodeCost*0.99 {
				t.Errorf("%s: %s cost %.4f below the optimum (%.4f on its grid, %.4f regular)", m.Strategy, what, cost, m.OptimumCost, opt.NodeCost)
			}
		}
		if m.PendingPodSeconds < 0 || m.Evictions < 0 || m.NeededMoves < 0 {
			t.Errorf("%s: negative metric: %+v", m.Strategy, m)
		}
		// Safety: the trace's one reclaim window (pool spot-a) is measured, and no workload
		// had more replicas Running than desired nor fewer than none.
		if len(m.Safety) != 1 || m.Safety[0].Window.Pools[0] != "spot-a" {
			t.Errorf("%s: safety windows %+v, want the spot-a reclaim", m.Strategy, m.Safety)
		}
		for _, ws := range m.Safety {
			if got, desired := ws.MinRunning["web"], ws.Desired["web"]; got < 0 || got > desired {
				t.Errorf("%s: %s: fewest web Running %d, outside 0..%d", m.Strategy, ws.Window.Name(), got, desired)
			}
		}
	}
	spot, aff := byName[strategy.SpotScheduler], byName[strategy.Affinity]
	if spot.NeededMoves == 0 || spot.Evictions > spot.NeededMoves {
		t.Errorf("spot-scheduler: %d evictions for %d needed moves, want at most one per move", spot.Evictions, spot.NeededMoves)
	}
	if spot.FailbackSeconds < 0 || spot.MisplacedAtEnd != 0 {
		t.Errorf("spot-scheduler: failback %.0fs, %d pods misplaced at the end: want a failback and nothing misplaced", spot.FailbackSeconds, spot.MisplacedAtEnd)
	}
	if spot.PodCost > aff.PodCost || spot.MisplacedAtEnd > aff.MisplacedAtEnd {
		t.Errorf("spot-scheduler (pod cost %.4f, %d misplaced) is not better than affinity (%.4f, %d)", spot.PodCost, spot.MisplacedAtEnd, aff.PodCost, aff.MisplacedAtEnd)
	}

	dir := t.TempDir()
	if err := strategy.WriteReports(dir, tr, all, ms, ""); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.md", "summary.csv", "timeseries.csv", "pods-per-tier.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("report %s missing or empty: %v", f, err)
		}
	}
}
