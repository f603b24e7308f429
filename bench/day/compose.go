package day

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// A day, composed from episodes (docs/benchmarks.md, "The real day"):
//   - load: off-peak until 08:00, the peak until 20:00, off-peak again (the scale-up and
//     scale-down episodes, once each);
//   - reclaims: per zone, a Poisson process of Rate reclaims per spot pool per day; a zone's
//     pools go together (correlated reclaims: the second within minutes, as measured in the
//     reclaim-zone episode), a zone with one pool is a reclaim-pool episode; each outage lasts
//     an exponential time of mean 30 minutes, then a return episode brings the capacity back;
//     at the stress rate, every spot pool is also reclaimed at once once a day;
//   - between episodes the settled node set is charged for the stretch; an episode is charged
//     what it measured, relative to the state it started from; what a return leaves different
//     from before the reclaim stays for the rest of the day;
//   - every machine is billed at least a minute (in the episodes' node-seconds);
//   - the optimum: the whole-node optimum of every state, changing instantly.
//
// Reclaims at the peak are charged with the off-peak episodes' measures.

const (
	day         = 24 * 3600.0
	peakFrom    = 8 * 3600.0
	peakTo      = 20 * 3600.0
	outageMean  = 30 * 60.0
	stressRate  = 3.0
	dayDraws    = 2000
	bootstrapN  = 400
	bootstrapDr = 300
)

// event of a composed day: a reclaim at At of Kind, an outage of Outage seconds; Pick picks
// the repetition whose measures stand for it (the same for every strategy: paired).
type event struct {
	At, Outage float64
	Kind       string
	Pick       float64
}

// schedule draws one day's reclaims.
func schedule(s *Shape, rate float64, allSpot bool, rng *rand.Rand) []event {
	zones, byZone := s.Zones()
	var evs []event
	for _, z := range zones {
		kind := ReclaimZone
		if len(byZone[z]) == 1 {
			kind = ReclaimPool
		}
		// Poisson arrivals over the day.
		for t := rng.ExpFloat64() / rate * day; t < day; t += rng.ExpFloat64() / rate * day {
			evs = append(evs, event{At: t, Outage: rng.ExpFloat64() * outageMean, Kind: kind, Pick: rng.Float64()})
		}
	}
	if allSpot && rate >= stressRate {
		evs = append(evs, event{At: rng.Float64() * day, Outage: rng.ExpFloat64() * outageMean, Kind: ReclaimAll, Pick: rng.Float64()})
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].At < evs[j].At })
	return evs
}

// DayTotals is one composed day of one strategy.
type DayTotals struct {
	NodeSeconds                                        map[string]float64
	Evictions, NeededMoves, MovedTwice, DrainEvictions float64
	Deficit                                            map[string]float64
	ServedPodSeconds                                   float64
	HeadroomNodeSeconds                                float64
}

// add counts an episode's events (they happen early in an episode: not scaled).
func (d *DayTotals) add(ep *Episode) {
	d.Evictions += float64(ep.Evictions)
	d.DrainEvictions += float64(ep.DrainEvictions)
	d.NeededMoves += float64(ep.NeededMoves)
	d.MovedTwice += float64(ep.MovedTwice)
	for w, v := range ep.Deficit {
		d.Deficit[w] += v
	}
}

// Dollars prices a day's node-seconds.
func (d *DayTotals) Dollars(s *Shape, discount float64) float64 {
	return dollars(s, d.NodeSeconds, discount)
}

func dollars(s *Shape, nodeSeconds map[string]float64, discount float64) float64 {
	price := map[string]float64{Spot: s.OnDemandNodeHour * (1 - discount), OnDemand: s.OnDemandNodeHour, Burst: s.OnDemandNodeHour * s.BurstFactor}
	total := 0.0
	for tier, ns := range nodeSeconds {
		total += ns / 3600 * price[tier]
	}
	return total
}

// TotalDeficit sums a day's replica-deficit seconds.
func (d *DayTotals) TotalDeficit() float64 {
	t := 0.0
	for _, v := range d.Deficit {
		t += v
	}
	return t
}

// measures is one strategy's episodes: reps[i][kind].
type measures struct {
	reps []map[string]*Episode
}

func (m measures) pick(kind string, u float64, sample []int) *Episode {
	if len(sample) == 0 {
		return nil
	}
	return m.reps[sample[min(len(sample)-1, int(u*float64(len(sample))))]][kind]
}

// composeDay charges one day of a strategy from its episodes (those of the repetitions in
// sample). It returns false when an episode the day needs was not measured.
//
// The day is swept in time order. Each episode starts from the cluster's current state and
// is charged what it measured (scaled down if the next episode starts before it settled),
// then its settled state until the next episode: states are absolute (the node counts an
// episode ended with), so what a return leaves behind stays until the next episode replaces
// it. An episode measured off-peak that happens at the peak is charged with the peak's extra
// nodes (what the scale-up episode added) on top. Overlapping outages are charged as if
// one followed the other.
func composeDay(s *Shape, m measures, evs []event, sample []int, loadPick float64) (*DayTotals, bool) {
	d := &DayTotals{NodeSeconds: map[string]float64{}, Deficit: map[string]float64{}}
	up, down := m.pick(ScaleUp, loadPick, sample), m.pick(ScaleDown, loadPick, sample)
	if up == nil || down == nil {
		return nil, false
	}
	// What the peak adds to a state: what the scale-up added to the state it started from.
	peakExtra := map[string]float64{}
	for _, t := range Tiers {
		peakExtra[t] = float64(up.EndNodes[t] - up.StartNodes[t])
	}
	type start struct {
		at float64
		ep *Episode
	}
	starts := []start{{at: peakFrom, ep: up}, {at: peakTo, ep: down}}
	for _, e := range evs {
		r, t := m.pick(e.Kind, e.Pick, sample), m.pick(ReturnOf(e.Kind), e.Pick, sample)
		if r == nil || t == nil {
			return nil, false
		}
		starts = append(starts, start{at: e.At, ep: r}, start{at: e.At + max(e.Outage, r.Duration), ep: t})
	}
	sort.SliceStable(starts, func(i, j int) bool { return starts[i].at < starts[j].at })
	// Midnight to the first episode: off-peak, settled as the day before ended.
	state := map[string]float64{}
	for _, t := range Tiers {
		state[t] = float64(down.EndNodes[t])
	}
	now := 0.0
	for i, st := range starts {
		if st.at >= day {
			break
		}
		for t, n := range state {
			d.NodeSeconds[t] += n * max(0, st.at-now)
		}
		next := day
		if i+1 < len(starts) {
			next = min(day, starts[i+1].at)
		}
		span := min(st.ep.Duration, next-st.at)
		k := 1.0
		if st.ep.Duration > 0 {
			k = span / st.ep.Duration
		}
		extra := 0.0
		if st.ep != up && st.ep != down && st.at >= peakFrom && st.at < peakTo {
			extra = 1
		}
		for _, t := range Tiers {
			d.NodeSeconds[t] += st.ep.NodeSeconds[t]*k + extra*peakExtra[t]*span
			state[t] = max(0, float64(st.ep.EndNodes[t])+extra*peakExtra[t])
		}
		d.add(st.ep)
		now = st.at + span
	}
	for t, n := range state {
		d.NodeSeconds[t] += n * max(0, day-now)
	}
	_, podsBase := demandMilliCPU(s, false)
	_, podsPeak := demandMilliCPU(s, true)
	d.ServedPodSeconds = float64(podsBase)*(day-(peakTo-peakFrom)) + float64(podsPeak)*(peakTo-peakFrom) - d.TotalDeficit()
	for _, ep := range []*Episode{up, down} {
		if ep.Duration > 0 {
			d.HeadroomNodeSeconds += ep.HeadroomNodeSeconds / ep.Duration * day / 2
		}
	}
	return d, true
}

// optimumDay is the optimum's node-seconds for the same day: the whole-node optimum of the
// load and of the pools out at every moment.
func optimumDay(s *Shape, evs []event) map[string]float64 {
	cuts := []float64{0, peakFrom, peakTo, day}
	type outage struct {
		from, to float64
		pools    []string
	}
	var outages []outage
	for _, e := range evs {
		st, err := StepFor(s, e.Kind)
		if err != nil {
			continue
		}
		o := outage{from: e.At, to: min(day, e.At+e.Outage), pools: st.Reclaim}
		outages = append(outages, o)
		cuts = append(cuts, o.from, o.to)
	}
	sort.Float64s(cuts)
	ns := map[string]float64{}
	for i := 0; i+1 < len(cuts); i++ {
		from, to := cuts[i], cuts[i+1]
		if to <= from {
			continue
		}
		mid := (from + to) / 2
		out := map[string]bool{}
		for _, o := range outages {
			if o.from <= mid && mid < o.to {
				for _, p := range o.pools {
					out[p] = true
				}
			}
		}
		for t, n := range optimumNodes(s, mid >= peakFrom && mid < peakTo, out) {
			ns[t] += n * (to - from)
		}
	}
	return ns
}

// Estimate is a strategy's expected day at one reclaim rate and discount.
type Estimate struct {
	Strategy                    string
	Dollars, Optimum            float64
	PerServedPodHour            float64
	Evictions, Needed           float64
	MovedTwice, Drains          float64
	Deficit                     float64
	DeficitBy                   map[string]float64
	HeadroomNodeSeconds         float64
	NodeSeconds                 map[string]float64
	Ratio, RatioLo, RatioHi     float64 // $/day to the peer's, paired, with the bootstrap interval
	EvictionRatio, DeficitRatio float64
	Reps                        int
}

// Estimate composes dayDraws days (the same days for every strategy) and the paired
// bootstrap over repetitions.
func estimate(s *Shape, all map[string]measures, strategies []string, rate, discount float64, seed uint64) map[string]*Estimate {
	rng := rand.New(rand.NewPCG(seed, uint64(rate*1000)))
	// The all-spot reclaim is in the stress days only when every strategy measured it.
	allSpot := true
	for _, name := range strategies {
		if m, ok := all[name]; ok && m.pick(ReclaimAll, 0, indexes(len(m.reps))) == nil {
			allSpot = false
		}
	}
	days := make([][]event, dayDraws)
	loads := make([]float64, dayDraws)
	for i := range days {
		days[i] = schedule(s, rate, allSpot, rng)
		loads[i] = rng.Float64()
	}
	// The optimum depends on the days only: once for every strategy and resample.
	optimum := 0.0
	for _, evs := range days {
		optimum += dollars(s, optimumDay(s, evs), discount) / float64(dayDraws)
	}
	mean := func(m measures, sample []int, n int) (*DayTotals, bool) {
		sum := &DayTotals{NodeSeconds: map[string]float64{}, Deficit: map[string]float64{}}
		for i := 0; i < n; i++ {
			d, ok := composeDay(s, m, days[i], sample, loads[i])
			if !ok {
				return nil, false
			}
			for t, v := range d.NodeSeconds {
				sum.NodeSeconds[t] += v / float64(n)
			}
			for w, v := range d.Deficit {
				sum.Deficit[w] += v / float64(n)
			}
			sum.Evictions += d.Evictions / float64(n)
			sum.NeededMoves += d.NeededMoves / float64(n)
			sum.MovedTwice += d.MovedTwice / float64(n)
			sum.DrainEvictions += d.DrainEvictions / float64(n)
			sum.ServedPodSeconds += d.ServedPodSeconds / float64(n)
			sum.HeadroomNodeSeconds += d.HeadroomNodeSeconds / float64(n)
		}
		return sum, true
	}
	out := map[string]*Estimate{}
	for _, name := range strategies {
		m, ok := all[name]
		if !ok {
			continue
		}
		d, ok := mean(m, indexes(len(m.reps)), dayDraws)
		if !ok {
			continue
		}
		e := &Estimate{Strategy: name, Dollars: d.Dollars(s, discount), Optimum: optimum, Evictions: d.Evictions, Needed: d.NeededMoves,
			MovedTwice: d.MovedTwice, Drains: d.DrainEvictions, Deficit: d.TotalDeficit(), DeficitBy: d.Deficit,
			HeadroomNodeSeconds: d.HeadroomNodeSeconds, NodeSeconds: d.NodeSeconds, Reps: len(m.reps)}
		e.PerServedPodHour = e.Dollars / (d.ServedPodSeconds / 3600)
		out[name] = e
	}
	peer, ok := out[Peer]
	if !ok {
		return out
	}
	for name, e := range out {
		e.Ratio = e.Dollars / peer.Dollars
		e.EvictionRatio = ratio(e.Evictions, peer.Evictions)
		e.DeficitRatio = ratio(e.Deficit, peer.Deficit)
		e.RatioLo, e.RatioHi = e.Ratio, e.Ratio
		reps := min(len(all[name].reps), len(all[Peer].reps))
		if name == Peer || reps < 2 {
			continue
		}
		brng := rand.New(rand.NewPCG(seed+1, uint64(rate*1000)))
		var ratios []float64
		for b := 0; b < bootstrapN; b++ {
			sample := make([]int, reps)
			for i := range sample {
				sample[i] = brng.IntN(reps)
			}
			a, ok1 := mean(all[name], sample, bootstrapDr)
			p, ok2 := mean(all[Peer], sample, bootstrapDr)
			if ok1 && ok2 {
				ratios = append(ratios, a.Dollars(s, discount)/p.Dollars(s, discount))
			}
		}
		sort.Float64s(ratios)
		if len(ratios) > 0 {
			e.RatioLo, e.RatioHi = ratios[int(0.025*float64(len(ratios)))], ratios[min(len(ratios)-1, int(0.975*float64(len(ratios))))]
		}
	}
	return out
}

func ratio(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return a / b
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// measuresOf groups runs by strategy: the chains of one invocation and repetition make one
// repetition. A repetition missing an episode of the library is reported (days that need it
// cannot be composed from it).
func measuresOf(runs []*Run) (map[string]measures, []string) {
	type repKey struct {
		strategy, invocation string
		rep                  int
	}
	var order []repKey
	byRep := map[repKey]map[string]*Episode{}
	for _, r := range runs {
		k := repKey{r.Strategy, r.Invocation, r.Repetition}
		if r.Invocation == "" {
			k.invocation = r.Date.String() // a run saved alone
		}
		if _, ok := byRep[k]; !ok {
			byRep[k] = map[string]*Episode{}
			order = append(order, k)
		}
		for i := range r.Episodes {
			ep := &r.Episodes[i]
			byRep[k][ep.Kind] = ep
		}
	}
	out := map[string]measures{}
	var notes []string
	for _, k := range order {
		m := out[k.strategy]
		if fillsIn(m.reps, byRep[k]) {
			out[k.strategy] = m
			continue
		}
		m.reps = append(m.reps, byRep[k])
		out[k.strategy] = m
		for _, kind := range Library {
			if byRep[k][kind] == nil {
				notes = append(notes, fmt.Sprintf("%s repetition %d of invocation %s has no %s episode", k.strategy, k.rep, k.invocation, kind))
			}
		}
	}
	return out, notes
}

// fillsIn adds the episodes of a run of episodes outside the library only (an invocation with
// --episodes reclaim-all,return-all, say) to the earliest repetitions missing them, and
// reports whether it did: such a run is not a repetition of its own (the days need the
// library's episodes from every repetition). An episode every repetition already has is left out.
func fillsIn(reps []map[string]*Episode, partial map[string]*Episode) bool {
	for _, kind := range Library {
		if partial[kind] != nil {
			return false
		}
	}
	for kind, ep := range partial {
		for _, rep := range reps {
			if rep[kind] == nil {
				rep[kind] = ep
				break
			}
		}
	}
	return len(reps) > 0
}
