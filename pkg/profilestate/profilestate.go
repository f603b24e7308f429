// Package profilestate is the one owner of what the plugins of a scheduler profile share: the
// capacity model that SpotScore's args define, and the placeholder rule of
// PlaceholderPreemption's args with the one placeholder-room index built from it.
// PlaceholderPreemption ranks preemption candidates and gates tiers with SpotScore's very
// model, SpotScore's tier search counts as free the very room the gate and preemption find,
// and the simulator counts as free room exactly the pods the profile would preempt, without a
// second copy of either configuration.
//
// A Registry is made with the plugin registry (plugins.NewRegistry) and handed to the plugin
// factories, so nothing here is package-level: what a profile registers lives as long as the
// schedulers (or simulations) built from that plugin registry.
package profilestate

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
)

// Registry holds each profile's shared state, by the profile's framework handle (the one
// identity all plugins of a profile share). Safe for concurrent use.
type Registry struct {
	mu       sync.RWMutex
	profiles map[framework.Handle]*State
}

// State is what the plugins of one profile share.
type State struct {
	// Model is the capacity model of the profile's SpotScore args; nil without SpotScore.
	Model *capacity.Model
	// IsPlaceholder is the placeholder rule of the profile's PlaceholderPreemption args; nil
	// without that plugin.
	IsPlaceholder func(*v1.Pod) bool
	// Placeholders is the room placeholders hold on each node, by IsPlaceholder: SpotScore's
	// tier search and node index and PlaceholderPreemption's tier gate and victim search read
	// this one index. nil without the rule (no placeholders).
	Placeholders *ranking.PlaceholderIndex
	// Reclaims is the reclaim history SpotScore ranks the pools of a tier with: the
	// scheduler's SpotScore reads the ConfigMap itself, a simulation is handed the history
	// its caller reads (the rebalancer's reader, explain's one read). nil: no history.
	Reclaims capacity.ReclaimSource
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{profiles: map[framework.Handle]*State{}}
}

func (r *Registry) update(h framework.Handle, set func(*State)) {
	if r == nil || h == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.profiles[h]
	if s == nil {
		s = &State{}
		r.profiles[h] = s
	}
	set(s)
}

// SetModel records the capacity model of the profile behind h (SpotScore's factory).
func (r *Registry) SetModel(h framework.Handle, m *capacity.Model) {
	r.update(h, func(s *State) { s.Model = m })
}

// SetPlaceholderRule records the placeholder rule of the profile behind h and the
// placeholder-room index built from it, and returns that index (PlaceholderPreemption's
// factory keeps it: the plugin reads the one index without a lookup per call).
func (r *Registry) SetPlaceholderRule(h framework.Handle, isPlaceholder func(*v1.Pod) bool) *ranking.PlaceholderIndex {
	placeholders := ranking.NewPlaceholderIndex(isPlaceholder)
	r.update(h, func(s *State) { s.IsPlaceholder, s.Placeholders = isPlaceholder, placeholders })
	return placeholders
}

// SetReclaims records the reclaim history the profile behind h ranks pools with.
func (r *Registry) SetReclaims(h framework.Handle, src capacity.ReclaimSource) {
	r.update(h, func(s *State) { s.Reclaims = src })
}

// Get returns a copy of the profile's state; the zero State when nothing is registered.
// Plugins are built in the profile's order, so a plugin reads another's part at run time
// (not in its own factory).
func (r *Registry) Get(h framework.Handle) State {
	if r == nil {
		return State{}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if s := r.profiles[h]; s != nil {
		return *s
	}
	return State{}
}
