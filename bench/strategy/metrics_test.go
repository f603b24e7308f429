package strategy

import (
	"math"
	"testing"

	"github.com/spot-scheduler/spot-scheduler/bench/trace"
)

// TestOptimumMetrics: the optimum run of the default trace is its own lower bound (ratio 1),
// needs the moves of the failback, and never fails back late.
func TestOptimumMetrics(t *testing.T) {
	tr, err := trace.Load("default")
	if err != nil {
		t.Fatal(err)
	}
	m := Compute(tr, OptimumRun(tr, 1))
	if math.Abs(m.NodeCostRatio-1) > 1e-9 || math.Abs(m.PodRatio-1) > 1e-9 {
		t.Errorf("optimum ratios %.4f %.4f, want 1", m.NodeCostRatio, m.PodRatio)
	}
	if m.NeededMoves != 6 || m.FailbackSeconds != 0 || m.MisplacedAtEnd != 0 {
		t.Errorf("optimum: needed moves %d (want 6), failback %.0f (want 0), misplaced %d", m.NeededMoves, m.FailbackSeconds, m.MisplacedAtEnd)
	}
	// At the peak (web 18, api 4, worker 8 = 30 pods) the optimum fills spot (16), on-demand
	// (12) and puts 2 on burst.
	perTier, unplaced := tr.Optimum(tr.StateAfter(4))
	if perTier[trace.Spot] != 16 || perTier[trace.OnDemand] != 12 || perTier[trace.Burst] != 2 || unplaced != 0 {
		t.Errorf("optimum at the peak: %v, %d unplaced", perTier, unplaced)
	}
}

// TestComputeChargesPending: a pending pod costs the highest price, so a run that serves
// fewer pods is never cheaper than the optimum.
func TestComputeChargesPending(t *testing.T) {
	tr, err := trace.Load("smoke")
	if err != nil {
		t.Fatal(err)
	}
	run := &Run{Strategy: "nothing-scheduled"}
	for s := 0.0; s < tr.Duration; s++ {
		e := tr.EventsDue(s)
		run.Samples = append(run.Samples, Sample{T: s, Events: e, Pending: tr.StateAfter(e).DesiredPods(), PodsPerTier: map[string]int{}, NodeMilliCPU: map[string]int64{}})
	}
	m := Compute(tr, run)
	if m.NodeCost < m.OptimumCost || m.PodCost < m.OptimumCost || m.FailbackSeconds != -1 {
		t.Errorf("nothing scheduled: node %.4f pod %.4f optimum %.4f failback %.0f", m.NodeCost, m.PodCost, m.OptimumCost, m.FailbackSeconds)
	}
}
