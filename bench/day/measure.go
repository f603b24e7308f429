package day

import (
	"fmt"
	"math"
	"sort"
)

// minimumBilled is the shortest a machine is billed for (one minute, as on the major clouds).
const minimumBilled = 60.0

// Episode is what one episode measured, from its event (t0) to the moment the cluster
// settled (the last change before a quiet stretch).
type Episode struct {
	Kind string `json:"kind"`
	// At: seconds from the run's start to the episode's event.
	At float64 `json:"at"`
	// Duration: seconds from the event to the settled state; Settled is false when the
	// episode hit Shape.EpisodeTimeout instead.
	Duration float64 `json:"duration"`
	Settled  bool    `json:"settled"`
	// NodeSeconds by tier billed within the episode (each machine at least a minute);
	// StartNodes and EndNodes: machines alive at its start and at its end, by tier.
	NodeSeconds map[string]float64 `json:"nodeSeconds"`
	StartNodes  map[string]int     `json:"startNodes"`
	EndNodes    map[string]int     `json:"endNodes"`
	// StartPods: workload pods Running per tier at the start.
	StartPods map[string]int `json:"startPods"`
	// Deficit: replica-seconds below the desired count, per workload. Fewest: the fewest
	// replicas Running at any sample, Desired: the desired count at the end.
	Deficit map[string]float64 `json:"deficit"`
	Fewest  map[string]int     `json:"fewest"`
	Desired map[string]int     `json:"desired"`
	// PendingP95: the 95th percentile of seconds from creation to Running and Ready of the
	// workload pods created in the episode; ServedPodSeconds integrates the replicas Running
	// (the replicas not Running are the deficit).
	PendingP95       float64 `json:"pendingP95"`
	ServedPodSeconds float64 `json:"servedPodSeconds"`
	// ToBind and ToReady: where the created pods' waits went, on average: seconds from creation to
	// binding (scheduling, preemption, waiting for a node) and from binding to Running and
	// Ready (the container's start-up). Pods not bound or not Ready by the episode's end
	// are left out of the mean that needs it.
	ToBind  float64 `json:"toBind"`
	ToReady float64 `json:"toReady"`
	// Evictions of workload pods that no reclaim caused (moves, consolidation, descheduling);
	// DrainEvictions: of pods on noticed nodes; PlaceholderEvictions: of placeholders.
	// MovedTwice: evictions of pods created in the episode after an eviction of their workload.
	Evictions            int `json:"evictions"`
	DrainEvictions       int `json:"drainEvictions"`
	PlaceholderEvictions int `json:"placeholderEvictions"`
	MovedTwice           int `json:"movedTwice"`
	// NeededMoves: pods Running off spot at the start of a return that the optimum runs on spot.
	NeededMoves int `json:"neededMoves"`
	// HeadroomNodeSeconds: node-seconds that placeholders held.
	HeadroomNodeSeconds float64 `json:"headroomNodeSeconds"`
	// Timeline of the episode (seconds from its start), for the chart.
	Timeline []Point `json:"timeline"`
}

// Point of an episode's timeline.
type Point struct {
	T           float64        `json:"t"`
	PodsPerTier map[string]int `json:"podsPerTier"`
	Pending     int            `json:"pending"`
}

// TotalDeficit sums the replica-deficit seconds of every workload.
func (e *Episode) TotalDeficit() float64 {
	total := 0.0
	for _, v := range e.Deficit {
		total += v
	}
	return total
}

// measure computes an episode from the recorder's data between t0 and t1.
func (rec *recorder) measure(st Step, t0, t1 float64, settled bool) *Episode {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	shape := rec.r.shape
	ep := &Episode{Kind: st.Kind, At: t0, Duration: t1 - t0, Settled: settled, NodeSeconds: map[string]float64{},
		StartNodes: map[string]int{}, EndNodes: map[string]int{}, StartPods: map[string]int{},
		Deficit: map[string]float64{}, Fewest: map[string]int{}, Desired: map[string]int{}}
	ep.NodeSeconds = rec.billed(t0, t1)
	for _, c := range rec.claims {
		if c.Refused || c.Tier == "" {
			continue
		}
		end := c.end()
		if c.Start <= t0 && end > t0 {
			ep.StartNodes[c.Tier]++
		}
		if c.Start <= t1 && end > t1 {
			ep.EndNodes[c.Tier]++
		}
	}
	first := true
	for i, s := range rec.samples {
		if s.T < t0-10 || s.T > t1 {
			continue
		}
		ep.Timeline = append(ep.Timeline, Point{T: s.T - t0, PodsPerTier: s.PodsPerTier, Pending: s.Pending})
		if s.T < t0 {
			continue
		}
		// A sample stands for the state until the next one; the first stands for it from the
		// episode's start too and the last until its end, so that every second of the episode
		// is counted once (served + short = desired x duration: CheckAccounting).
		from, to := s.T, t1
		if first {
			for tier, n := range s.PodsPerTier {
				ep.StartPods[tier] = n
			}
			first = false
			from = t0
		}
		if i+1 < len(rec.samples) {
			to = min(rec.samples[i+1].T, t1)
		}
		dt := max(0, to-from)
		for w, want := range s.Desired {
			short := max(0, want-s.Running[w])
			ep.Deficit[w] += float64(short) * dt
			if n, ok := ep.Fewest[w]; !ok || s.Running[w] < n {
				ep.Fewest[w] = s.Running[w]
			}
			ep.Desired[w] = want
			ep.ServedPodSeconds += float64(min(want, s.Running[w])) * dt
		}
		ep.HeadroomNodeSeconds += float64(s.PlaceholderMilliCPU) / float64(shape.nodeMilliCPU()) * dt
	}
	var waits, toBind, toReady []float64
	for _, p := range rec.pods {
		if p.Created < t0 || p.Created > t1 {
			continue
		}
		if p.Bound >= 0 {
			toBind = append(toBind, max(0, p.Bound-p.Created))
			if p.Ready >= 0 {
				toReady = append(toReady, max(0, p.Ready-p.Bound))
			}
		}
		ready := p.Ready
		if ready < 0 {
			ready = t1
		}
		waits = append(waits, max(0, ready-p.Created))
	}
	ep.PendingP95 = percentile(waits, 0.95)
	ep.ToBind, ep.ToReady = mean(toBind), mean(toReady)
	firstEviction := map[string]float64{}
	for _, e := range rec.evictions {
		if e.T < t0 || e.T > t1 {
			continue
		}
		switch {
		case e.Placeholder:
			ep.PlaceholderEvictions++
		case e.Drain:
			ep.DrainEvictions++
		default:
			ep.Evictions++
		}
		if e.Placeholder {
			continue
		}
		if at, ok := firstEviction[e.Workload]; ok && !e.Drain && e.PodCreated > at {
			ep.MovedTwice++
		}
		if _, ok := firstEviction[e.Workload]; !ok {
			firstEviction[e.Workload] = e.T
		}
	}
	if len(st.Return) > 0 {
		off := ep.StartPods[OnDemand] + ep.StartPods[Burst]
		if rec.r.strategy == SpotSchedulerPolicy {
			// The policy's on-demand base stays on on-demand: not a move the optimum asks for.
			off -= policyBase(shape)
		}
		ep.NeededMoves = max(0, off-optimumOffSpotPods(shape, rec.r.atPeak(), rec.r.outPools()))
	}
	return ep
}

// billed is what the machines cost between t0 and t1 in node-seconds by tier, each billed
// for at least a minute (refused launches are not billed: the cloud never started them).
func (rec *recorder) billed(t0, t1 float64) map[string]float64 {
	ns := map[string]float64{}
	for _, c := range rec.claims {
		if c.Refused || c.Tier == "" {
			continue
		}
		ns[c.Tier] += max(0, min(max(c.end(), c.Start+minimumBilled), t1)-max(c.Start, t0))
	}
	return ns
}

// end is when the machine ended (+Inf: it is still there).
func (c *claimLife) end() float64 {
	if c.End < 0 {
		return math.Inf(1)
	}
	return c.End
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	total := 0.0
	for _, x := range xs {
		total += x
	}
	return total / float64(len(xs))
}

func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	return xs[min(len(xs)-1, int(math.Ceil(q*float64(len(xs))))-1)]
}

func (r *runner) atPeak() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peak
}

func (r *runner) outPools() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for p := range r.out {
		out[p] = true
	}
	return out
}

// CheckAccounting says whether every node-second and pod-second of a run is counted: the
// episodes' node-seconds plus their settled node sets over the stretches between episodes
// must add up to what the machines were billed over the same time (counted independently),
// and in every episode the replica-seconds served plus the deficit must add up to the
// desired replicas over its duration.
func (r *Run) CheckAccounting() error {
	if len(r.Episodes) == 0 {
		return fmt.Errorf("%s r%d: no episode", r.Strategy, r.Repetition)
	}
	sum := map[string]float64{}
	for i, ep := range r.Episodes {
		for t, v := range ep.NodeSeconds {
			sum[t] += v
		}
		if i+1 < len(r.Episodes) {
			gap := r.Episodes[i+1].At - (ep.At + ep.Duration)
			for t, n := range ep.EndNodes {
				sum[t] += float64(n) * gap
			}
		}
		desired := 0.0
		for _, n := range ep.Desired {
			desired += float64(n)
		}
		// Samples are a second apart: the last one may stop short of the episode's end.
		if got := ep.ServedPodSeconds + ep.TotalDeficit(); math.Abs(got-desired*ep.Duration) > desired*1.5 {
			return fmt.Errorf("%s r%d episode %s: served %.0f + deficit %.0f replica-s != %.0f desired x %.0f s",
				r.Strategy, r.Repetition, ep.Kind, ep.ServedPodSeconds, ep.TotalDeficit(), desired, ep.Duration)
		}
	}
	for _, t := range Tiers {
		// A machine that came or went in a settled stretch would show here; a second of
		// sampling per machine is the tolerance.
		if diff := math.Abs(sum[t] - r.Billed[t]); diff > 2*float64(len(r.Episodes))+0.01*r.Billed[t] {
			return fmt.Errorf("%s r%d: %s node-seconds: episodes and settled stretches %.0f, machines billed %.0f", r.Strategy, r.Repetition, t, sum[t], r.Billed[t])
		}
	}
	return nil
}
