package ranking

import (
	fwk "k8s.io/kube-scheduler/framework"
)

// Mode says which of the scheduler's band-by-band shortcuts stand aside in a scheduling
// cycle. They only save the scheduler work or keep a pod for the room placeholders hold; a
// simulation that looks at every node on purpose, or a fit check made by one of them, turns
// them off. The zero Mode is a scheduling cycle: everything on.
type Mode uint8

const (
	// NoTierSearch: SpotScore neither narrows the nodes to the best band nor filters.
	NoTierSearch Mode = 1 << iota
	// NoTierGate: the tier gate keeps no pod off worse bands for placeholder room.
	NoTierGate
)

const modeKey fwk.StateKey = "ranking.Mode"

type modeState Mode

func (m modeState) Clone() fwk.StateData { return m }

// SetMode adds m to the cycle's mode (for the rest of the cycle, and in clones of the state).
func SetMode(state fwk.CycleState, m Mode) {
	state.Write(modeKey, modeState(ModeOf(state)|m))
}

// ModeOf is the cycle's mode.
func ModeOf(state fwk.CycleState) Mode {
	c, err := state.Read(modeKey)
	if err != nil {
		return 0
	}
	m, _ := c.(modeState)
	return Mode(m)
}

// Has reports whether every flag of f is set.
func (m Mode) Has(f Mode) bool { return m&f == f }
