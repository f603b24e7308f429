package day

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Episode kinds. A reclaim takes pools away (every node of each gets a notice; the pool
// launches nothing until it returns); its return gives the capacity back.
const (
	ScaleUp   = "scale-up"
	ScaleDown = "scale-down"
	// ReclaimPool: the one pool of a zone with a single spot pool, 2-minute notice (AWS).
	ReclaimPool = "reclaim-pool"
	// ReclaimPoolShort: the same pool with a 30-second notice (Azure, GCP).
	ReclaimPoolShort = "reclaim-pool-30s"
	// ReclaimZone: every spot pool of a zone, the second ZoneLag after the first.
	ReclaimZone = "reclaim-zone"
	// ReclaimAll: every spot pool at once (stress only).
	ReclaimAll = "reclaim-all"
	// Return kinds: the capacity of the reclaim of the same suffix comes back.
	ReturnPool      = "return-pool"
	ReturnPoolShort = "return-pool-30s"
	ReturnZone      = "return-zone"
	ReturnAll       = "return-all"
)

// Library is the episodes every run goes through, in order: each starts from the settled
// state the one before left (a return restores what its reclaim took).
var Library = []string{ScaleUp, ScaleDown, ReclaimPool, ReturnPool, ReclaimPoolShort, ReturnPoolShort, ReclaimZone, ReturnZone}

// Stress adds the all-spot reclaim.
var Stress = []string{ReclaimAll, ReturnAll}

// Chains splits episodes into n chains to run on clusters side by side, dealing whole pairs
// (a reclaim with its return, the scale-up with the scale-down): the costliest pair first, each
// to the chain with the least cost so far (so the slowest chain, which sets the invocation's
// wall time, is as short as the costs allow); a chain runs its pairs in library order. cost
// gives an episode's expected seconds (EpisodeCosts); nil deals every pair the same cost, in
// turn.
func Chains(episodes []string, n int, cost func(kind string) float64) [][]string {
	type pair struct {
		episodes []string
		index    int
		cost     float64
	}
	var pairs []pair
	for i := 0; i < len(episodes); i++ {
		p := pair{episodes: episodes[i : i+1], index: len(pairs)}
		if i+1 < len(episodes) && (IsReclaim(episodes[i]) && episodes[i+1] == ReturnOf(episodes[i]) || episodes[i] == ScaleUp && episodes[i+1] == ScaleDown) {
			p.episodes = episodes[i : i+2]
			i++
		}
		for _, e := range p.episodes {
			if cost != nil {
				p.cost += cost(e)
			} else {
				p.cost++
			}
		}
		pairs = append(pairs, p)
	}
	n = max(1, min(n, len(pairs)))
	order := slices.Clone(pairs)
	slices.SortStableFunc(order, func(a, b pair) int { return cmp.Compare(b.cost, a.cost) })
	load := make([]float64, n)
	dealt := make([][]pair, n)
	for _, p := range order {
		c := 0
		for i := range load {
			if load[i] < load[c] {
				c = i
			}
		}
		load[c] += p.cost
		dealt[c] = append(dealt[c], p)
	}
	chains := make([][]string, n)
	for c, ps := range dealt {
		slices.SortFunc(ps, func(a, b pair) int { return cmp.Compare(a.index, b.index) })
		for _, p := range ps {
			chains[c] = append(chains[c], p.episodes...)
		}
	}
	return chains
}

// EpisodeCosts estimates an episode's seconds on a cluster from earlier runs: the slowest
// strategy's mean duration plus the quiet window that ends it (the settle wait every episode
// pays); an episode no run measured costs the mean of those measured (every episode the same
// when none was).
func EpisodeCosts(s *Shape, runs []*Run) func(kind string) float64 {
	sum, count := map[string]map[string]float64{}, map[string]map[string]float64{}
	for _, r := range runs {
		if sum[r.Strategy] == nil {
			sum[r.Strategy], count[r.Strategy] = map[string]float64{}, map[string]float64{}
		}
		for _, ep := range r.Episodes {
			sum[r.Strategy][ep.Kind] += ep.Duration
			count[r.Strategy][ep.Kind]++
		}
	}
	slowest := map[string]float64{}
	for strategy, kinds := range sum {
		for kind, total := range kinds {
			slowest[kind] = max(slowest[kind], total/count[strategy][kind]+s.Quiet.Seconds())
		}
	}
	fallback := 1.0
	if len(slowest) > 0 {
		fallback = 0
		for _, c := range slowest {
			fallback += c
		}
		fallback /= float64(len(slowest))
	}
	return func(kind string) float64 {
		if c, ok := slowest[kind]; ok {
			return c
		}
		return fallback
	}
}

// Step is one episode's action on the cluster.
type Step struct {
	Kind string
	// Scale: workloads to their peak (true) or off-peak size.
	Scale, Peak bool
	// Reclaim: pools (in order, Lag apart) whose nodes get an interruption notice of Notice;
	// Return: pools whose capacity comes back.
	Reclaim, Return []string
	Notice, Lag     time.Duration
}

// StepFor resolves an episode kind on a shape.
func StepFor(s *Shape, kind string) (Step, error) {
	zones, byZone := s.Zones()
	// The lone pool: the first zone with one spot pool (else the last spot pool).
	lone := s.SpotPools()[len(s.SpotPools())-1].Name
	for _, z := range zones {
		if len(byZone[z]) == 1 {
			lone = byZone[z][0]
			break
		}
	}
	// The zone: the first zone with the most spot pools.
	zone := zones[0]
	for _, z := range zones {
		if len(byZone[z]) > len(byZone[zone]) {
			zone = z
		}
	}
	var all []string
	for _, p := range s.SpotPools() {
		all = append(all, p.Name)
	}
	st := Step{Kind: kind}
	switch kind {
	case ScaleUp:
		st.Scale, st.Peak = true, true
	case ScaleDown:
		st.Scale = true
	case ReclaimPool:
		st.Reclaim, st.Notice = []string{lone}, 2*time.Minute
	case ReclaimPoolShort:
		st.Reclaim, st.Notice = []string{lone}, 30*time.Second
	case ReclaimZone:
		st.Reclaim, st.Notice, st.Lag = byZone[zone], 2*time.Minute, s.ZoneLag
	case ReclaimAll:
		st.Reclaim, st.Notice = all, 2*time.Minute
	case ReturnPool, ReturnPoolShort:
		st.Return = []string{lone}
	case ReturnZone:
		st.Return = byZone[zone]
	case ReturnAll:
		st.Return = all
	default:
		return Step{}, fmt.Errorf("episode %q is not one of %v", kind, append(slices.Clone(Library), Stress...))
	}
	return st, nil
}

// IsReclaim says whether the kind takes capacity away.
func IsReclaim(kind string) bool { return len(kind) > 8 && kind[:8] == "reclaim-" }

// ReturnOf names the return episode of a reclaim kind.
func ReturnOf(kind string) string { return "return-" + kind[len("reclaim-"):] }
