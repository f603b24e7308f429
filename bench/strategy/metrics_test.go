package strategy

import (
	"math"
	"strings"
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

// TestSafetyPerReclaimWindow: the default trace has two reclaim windows (pool A, then every
// spot pool at once), and the safety measure is the fewest Running replicas of each workload
// inside each window only.
func TestSafetyPerReclaimWindow(t *testing.T) {
	tr, err := trace.Load("default")
	if err != nil {
		t.Fatal(err)
	}
	windows := tr.ReclaimWindows()
	if len(windows) != 2 || windows[0].AllSpot || !windows[1].AllSpot || windows[0].Pools[0] != "spot-a" || len(windows[1].Pools) != 2 {
		t.Fatalf("windows %+v, want pool spot-a then every spot pool", windows)
	}
	if windows[0].From != 30 || windows[0].To != 80 || windows[1].From != 180 || windows[1].To != tr.Duration {
		t.Fatalf("windows %+v: want [30, 80) and [180, end)", windows)
	}
	run := &Run{Strategy: "test"}
	for s := 0.0; s < tr.Duration; s++ {
		e := tr.EventsDue(s)
		running := map[string]int{"web": 6, "api": 4, "worker": 4}
		switch s {
		case 20: // before the window: not counted
			running["web"] = 0
		case 35:
			running["web"], running["api"] = 3, 2
		case 50:
			running["web"] = 4
		case 190:
			running["worker"] = 1
		}
		run.Samples = append(run.Samples, Sample{T: s, Events: e, Running: running, PodsPerTier: map[string]int{}, NodeMilliCPU: map[string]int64{}})
	}
	m := Compute(tr, run)
	if len(m.Safety) != 2 {
		t.Fatalf("safety %+v, want two windows", m.Safety)
	}
	if got := m.Safety[0].MinRunning; got["web"] != 3 || got["api"] != 2 || got["worker"] != 4 {
		t.Errorf("pool-A window: %v, want web 3 api 2 worker 4", got)
	}
	if got := m.Safety[1].MinRunning; got["web"] != 6 || got["api"] != 4 || got["worker"] != 1 {
		t.Errorf("all-spot window: %v, want web 6 api 4 worker 1", got)
	}
	if f := m.Safety[1].Fraction(); f != 0.25 {
		t.Errorf("all-spot window's worst fraction %.2f, want 0.25 (worker 1 of 4)", f)
	}
}

// TestAutoscaledNodeCost: with Karpenter, node cost integrates every node's price over its
// lifetime (empty or not) and node-seconds per tier, in modelled hours.
func TestAutoscaledNodeCost(t *testing.T) {
	tr, err := trace.Load("smoke")
	if err != nil {
		t.Fatal(err)
	}
	run := &Run{Strategy: "test", Autoscaler: KarpenterAutoscaler}
	for s := 0.0; s < tr.Duration; s++ {
		e := tr.EventsDue(s)
		run.Samples = append(run.Samples, Sample{T: s, Events: e, PodsPerTier: map[string]int{trace.Spot: tr.StateAfter(e).DesiredPods()}, NodeMilliCPU: map[string]int64{},
			AutoscaledNodes: map[string]int{trace.Spot: 2, trace.OnDemand: 1}, NodePricePerHour: 2*0.048 + 0.16})
	}
	m := Compute(tr, run)
	want := (2*0.048 + 0.16) * tr.Duration * tr.ModelSecondsPerSecond / 3600
	if math.Abs(m.AutoscaledNodeCost-want) > 1e-9 || m.NodeSecondsPerTier[trace.Spot] != 2*tr.Duration || m.NodeSecondsPerTier[trace.OnDemand] != tr.Duration {
		t.Errorf("node cost %.6f (want %.6f), node-seconds %v", m.AutoscaledNodeCost, want, m.NodeSecondsPerTier)
	}
	if !m.Autoscaled || math.Abs(m.AutoscaledRatio-m.AutoscaledNodeCost/m.OptimumCost) > 1e-12 {
		t.Errorf("autoscaled %v ratio %.4f", m.Autoscaled, m.AutoscaledRatio)
	}
}

// TestKarpenterNodePools: one NodePool per trace pool, limited to the pool's starting CPU,
// spot first by weight, the virtual pool a tainted burst pool; only the karpenter strategy
// consolidates underutilized nodes.
func TestKarpenterNodePools(t *testing.T) {
	tr, err := trace.Load("default")
	if err != nil {
		t.Fatal(err)
	}
	pools := KarpenterNodePools(tr, SpotScheduler)
	byName := map[string]int{}
	for i, p := range pools {
		byName[p.Name] = i
		if p.ConsolidationPolicy != "WhenEmpty" {
			t.Errorf("%s: consolidation %s for spot-scheduler, want WhenEmpty", p.Name, p.ConsolidationPolicy)
		}
	}
	a, b, od, virt := pools[byName["spot-a"]], pools[byName["spot-b"]], pools[byName["ondemand"]], pools[byName["virtual"]]
	if a.CapacityType != "spot" || b.CapacityType != "spot" || od.CapacityType != "on-demand" || virt.CapacityType != "on-demand" {
		t.Errorf("capacity types %s %s %s %s", a.CapacityType, b.CapacityType, od.CapacityType, virt.CapacityType)
	}
	if !(a.Weight > b.Weight && b.Weight > od.Weight && od.Weight > virt.Weight) {
		t.Errorf("weights %d %d %d %d, want spot-a > spot-b > ondemand > virtual", a.Weight, b.Weight, od.Weight, virt.Weight)
	}
	if a.CPULimit != "8" || b.CPULimit != "8" || od.CPULimit != "12" || virt.CPULimit != "40" {
		t.Errorf("limits %s %s %s %s, want 8 8 12 40", a.CPULimit, b.CPULimit, od.CPULimit, virt.CPULimit)
	}
	if virt.Labels["type"] != "virtual-kubelet" || len(virt.Taints) != 1 || virt.Taints[0].Key != virtualTaint {
		t.Errorf("virtual pool labels %v taints %v", virt.Labels, virt.Taints)
	}
	for _, p := range KarpenterNodePools(tr, Karpenter) {
		if p.ConsolidationPolicy != "WhenEmptyOrUnderutilized" {
			t.Errorf("karpenter strategy: %s consolidation %s, want WhenEmptyOrUnderutilized", p.Name, p.ConsolidationPolicy)
		}
	}
}

// TestValidateNamesTheProblem: an unknown strategy or autoscaler, the karpenter strategy
// without Karpenter, and a bad capacity policy fail before anything starts.
func TestValidateNamesTheProblem(t *testing.T) {
	tr, err := trace.Load("smoke")
	if err != nil {
		t.Fatal(err)
	}
	bad := *tr
	bad.CapacityPolicy = map[string]string{"spot-scheduler.io/spot-share": "150"}
	for _, c := range []struct {
		strategy string
		opts     Options
		want     string
	}{
		{"nope", Options{Trace: tr, Autoscaler: Scripted}, `strategy "nope" is not one of`},
		{SpotScheduler, Options{Trace: tr, Autoscaler: "cluster-autoscaler"}, `autoscaler "cluster-autoscaler" is not one of [karpenter scripted]`},
		{Karpenter, Options{Trace: tr, Autoscaler: Scripted}, `strategy "karpenter" is not one of`},
		{SpotSchedulerPolicy, Options{Trace: &bad, Autoscaler: Scripted}, "capacityPolicy"},
	} {
		err := validate(c.strategy, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: error %v, want it to contain %q", c.strategy, c.opts.Autoscaler, err, c.want)
		}
	}
	if err := validate(SpotSchedulerPolicy, Options{Trace: tr, Autoscaler: KarpenterAutoscaler}); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}
