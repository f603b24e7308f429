package day

import (
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
// (a reclaim with its return, the scale-up with the scale-down) in turn, in library order.
func Chains(episodes []string, n int) [][]string {
	var pairs [][]string
	for i := 0; i < len(episodes); i++ {
		if i+1 < len(episodes) && (IsReclaim(episodes[i]) && episodes[i+1] == ReturnOf(episodes[i]) || episodes[i] == ScaleUp && episodes[i+1] == ScaleDown) {
			pairs = append(pairs, episodes[i:i+2])
			i++
			continue
		}
		pairs = append(pairs, episodes[i:i+1])
	}
	n = max(1, min(n, len(pairs)))
	chains := make([][]string, n)
	for i, p := range pairs {
		chains[i%n] = append(chains[i%n], p...)
	}
	return chains
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
