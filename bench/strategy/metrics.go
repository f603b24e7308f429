package strategy

import (
	"math"

	"github.com/spot-scheduler/spot-scheduler/bench/trace"
)

// Metrics summarise one run (or the optimum).
type Metrics struct {
	Strategy string
	// NodeCost: node-hours of non-empty nodes × CPU × tier price, plus the requests of pods on
	// burst (virtual) nodes × burst price. PodCost: workload pod request-hours × tier price.
	// Both charge a pending workload pod at the highest price. In $, over the modelled time.
	NodeCost, PodCost float64
	// OptimumCost is the optimum on this run's own sampling grid (a lower bound of both costs);
	// the ratios divide by it.
	OptimumCost             float64
	NodeCostRatio, PodRatio float64
	// PendingPodSeconds: desired workload pods not served, integrated over the replay (seconds
	// of replay).
	PendingPodSeconds float64
	// Evictions of workload pods through the Eviction API.
	Evictions int
	// NeededMoves: at each failback event, the pods the run had on tiers worse than the
	// optimum after the event puts them (the fewest moves that reach the optimum).
	NeededMoves int
	// EvictionsPerMove is Evictions / NeededMoves (NaN when no move was needed).
	EvictionsPerMove float64
	// FailbackSeconds: from each failback event to the first sample where every desired pod
	// runs where the optimum puts it, the worst over the events; -1 when that never happened
	// before the next event.
	FailbackSeconds float64
	// MisplacedAtEnd: pods on a worse tier than the optimum's at the end of the replay.
	MisplacedAtEnd int
	// PodSecondsPerTier: workload pods integrated per tier (seconds of replay).
	PodSecondsPerTier map[string]float64
	// SpotBackSeconds: from each failback event to the first sample where spot holds as many
	// workload pods as the optimum puts there, the worst over the events; -1 when that never
	// happened before the next event.
	SpotBackSeconds float64
	// Safety: per reclaim window of the trace, the fewest replicas of each workload Running.
	Safety []WindowSafety
	// Autoscaled is set for runs with Karpenter: AutoscaledNodeCost integrates Karpenter's
	// nodes (every one alive, empty or not) × its offering's price ($, modelled time), with
	// NodeSecondsPerTier its nodes integrated per tier (seconds of replay); DrainEvictions the
	// workload pods Karpenter evicted from the nodes the trace reclaimed.
	Autoscaled                          bool
	AutoscaledNodeCost, AutoscaledRatio float64
	NodeSecondsPerTier                  map[string]float64
	DrainEvictions                      int
	// RefusedLaunches: Karpenter's launches past a NodePool's limit that the runner refused.
	RefusedLaunches int
}

// WindowSafety is the safety measure of one reclaim window.
type WindowSafety struct {
	Window trace.Window
	// Desired and MinRunning per workload: the replicas asked for when the window opened, and
	// the fewest Running at any sample of the window.
	Desired, MinRunning map[string]int
}

// Fraction is the worst workload's MinRunning / Desired.
func (w WindowSafety) Fraction() float64 {
	f := 1.0
	for name, d := range w.Desired {
		if d > 0 {
			f = min(f, float64(w.MinRunning[name])/float64(d))
		}
	}
	return f
}

// safety measures, per reclaim window, the fewest Running replicas of each workload.
func safety(tr *trace.Trace, samples []Sample, optimum bool) []WindowSafety {
	var out []WindowSafety
	for _, w := range tr.ReclaimWindows() {
		ws := WindowSafety{Window: w, Desired: tr.StateAfter(w.First).Replicas, MinRunning: map[string]int{}}
		seen := false
		for _, s := range samples {
			if s.Events <= w.First || s.Events > w.End {
				continue
			}
			for name := range ws.Desired {
				running := s.Running[name]
				if optimum {
					running = tr.StateAfter(s.Events).Replicas[name]
				}
				if !seen || running < ws.MinRunning[name] {
					ws.MinRunning[name] = running
				}
			}
			seen = true
		}
		if seen {
			out = append(out, ws)
		}
	}
	return out
}

// durations returns each sample's weight: the time until the next sample (the last one runs
// to the end of the replay).
func durations(tr *trace.Trace, samples []Sample) []float64 {
	d := make([]float64, len(samples))
	for i := range samples {
		end := tr.Duration
		if i+1 < len(samples) {
			end = samples[i+1].T
		}
		d[i] = max(0, end-samples[i].T)
	}
	return d
}

// Compute derives the metrics of a run from its samples and the trace.
func Compute(tr *trace.Trace, run *Run) Metrics {
	m := Metrics{Strategy: run.Strategy, Evictions: run.Evictions, PodSecondsPerTier: map[string]float64{},
		Autoscaled: run.Autoscaler == KarpenterAutoscaler, DrainEvictions: run.DrainEvictions, RefusedLaunches: run.RefusedLaunches, NodeSecondsPerTier: map[string]float64{}}
	hours := tr.ModelSecondsPerSecond / 3600
	podCPU := float64(tr.PodMilliCPU()) / 1000
	maxPrice := tr.MaxPrice()
	optimumOf := map[int]map[string]int{}
	optimum := func(events int) map[string]int {
		if o, ok := optimumOf[events]; ok {
			return o
		}
		o, _ := tr.Optimum(tr.StateAfter(events))
		optimumOf[events] = o
		return o
	}
	for i, dt := range durations(tr, run.Samples) {
		s := run.Samples[i]
		pending := float64(s.Pending) * podCPU * maxPrice
		node := pending + float64(s.BurstMilliCPU)/1000*tr.Prices[trace.Burst]
		for tier, milli := range s.NodeMilliCPU {
			node += float64(milli) / 1000 * tr.Prices[tier]
		}
		pod := pending
		for tier, n := range s.PodsPerTier {
			pod += float64(n) * podCPU * tr.Prices[tier]
			m.PodSecondsPerTier[tier] += float64(n) * dt
		}
		m.NodeCost += node * dt * hours
		m.PodCost += pod * dt * hours
		m.OptimumCost += tr.OptimumCostPerHour(tr.StateAfter(s.Events)) * dt * hours
		m.PendingPodSeconds += float64(s.Pending) * dt
		for tier, n := range s.AutoscaledNodes {
			m.NodeSecondsPerTier[tier] += float64(n) * dt
		}
		// A pending pod costs the highest price here too: a run never looks cheaper for
		// leaving pods unserved.
		m.AutoscaledNodeCost += (s.NodePricePerHour + pending) * dt * hours
	}
	m.NodeCostRatio = m.NodeCost / m.OptimumCost
	m.PodRatio = m.PodCost / m.OptimumCost
	m.AutoscaledRatio = m.AutoscaledNodeCost / m.OptimumCost
	m.Safety = safety(tr, run.Samples, run.Strategy == Optimum)

	for k, e := range tr.Events {
		if !e.Failback {
			continue
		}
		var before *Sample
		for i := range run.Samples {
			if run.Samples[i].Events <= k {
				before = &run.Samples[i]
			}
		}
		if before != nil {
			m.NeededMoves += trace.Misplaced(before.PodsPerTier, optimum(k+1))
		}
		m.FailbackSeconds = slowest(m.FailbackSeconds, secondsUntil(run.Samples, k+1, e.At, func(s Sample) bool {
			return s.Pending == 0 && trace.Misplaced(s.PodsPerTier, optimum(k+1)) == 0
		}))
		m.SpotBackSeconds = slowest(m.SpotBackSeconds, secondsUntil(run.Samples, k+1, e.At, func(s Sample) bool {
			return s.PodsPerTier[trace.Spot] >= optimum(k + 1)[trace.Spot]
		}))
	}
	if n := len(run.Samples); n > 0 {
		last := run.Samples[n-1]
		m.MisplacedAtEnd = trace.Misplaced(last.PodsPerTier, optimum(last.Events))
	}
	m.EvictionsPerMove = math.NaN()
	if m.NeededMoves > 0 {
		m.EvictionsPerMove = float64(m.Evictions) / float64(m.NeededMoves)
	}
	return m
}

// OptimumRun is the optimum as a run: samples on a regular grid where every desired pod sits
// on the cheapest tier with room, on perfectly packed nodes, moved there instantly.
func OptimumRun(tr *trace.Trace, step float64) *Run {
	run := &Run{Strategy: Optimum}
	for t := 0.0; t < tr.Duration; t += step {
		events := tr.EventsDue(t)
		perTier, unplaced := tr.Optimum(tr.StateAfter(events))
		s := Sample{T: t, Events: events, PodsPerTier: perTier, Pending: unplaced, NodeMilliCPU: map[string]int64{}}
		for tier, n := range perTier {
			if tier == trace.Burst {
				s.BurstMilliCPU += int64(n) * tr.PodMilliCPU()
			} else {
				s.NodeMilliCPU[tier] += int64(n) * tr.PodMilliCPU()
			}
		}
		run.Samples = append(run.Samples, s)
	}
	return run
}

// secondsUntil is the time from an event at `at` to the first sample taken after it (events
// applied) that is done, or -1 if none is.
func secondsUntil(samples []Sample, events int, at float64, done func(Sample) bool) float64 {
	for _, s := range samples {
		if s.Events == events && done(s) {
			return max(0, s.T-at)
		}
	}
	return -1
}

// slowest keeps the longer of two durations, where -1 (never) is longer than any.
func slowest(a, b float64) float64 {
	if a < 0 || b < 0 {
		return -1
	}
	return max(a, b)
}
