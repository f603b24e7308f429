// Package trace is the capacity trace the strategy benchmark replays: the nodes a cluster
// starts with, its workloads, and timed events (interruption notices, reclaims, capacity
// returning, scale up and down). It also computes the offline optimum of a trace: at every
// moment, every desired pod on the cheapest tier that has room for it then.
package trace

import (
	"embed"
	"fmt"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

//go:embed *.yaml
var builtin embed.FS

// Tier names the benchmark knows (the product's default tiers; reserved is not used).
const (
	Spot     = "spot"
	OnDemand = "on-demand"
	Burst    = "burst"
)

// Trace is one versioned capacity trace (bench/trace/*.yaml).
type Trace struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Duration of the replay, in seconds of wall-clock time.
	Duration float64 `json:"duration"`
	// ModelSecondsPerSecond is the time compression: one second of replay stands for this many
	// seconds of a real cluster's life when costs are computed (60: a second is a minute).
	ModelSecondsPerSecond float64 `json:"modelSecondsPerSecond"`
	// Prices in $ per CPU-hour, by tier. A node costs its CPU times its tier's price per hour
	// while it holds at least one pod; burst (virtual) nodes bill the pods' requests instead.
	Prices map[string]float64 `json:"prices"`
	// Nodes present at the start.
	Nodes []Node `json:"nodes"`
	// Placeholders: headroom pods pinned to spot, for the strategies that use them.
	Placeholders PodSet `json:"placeholders"`
	// Workloads are Deployments created at time 0 (Replicas is their starting size).
	Workloads []PodSet `json:"workloads"`
	// CapacityPolicy holds the per-workload capacity policy annotations (pkg/policy,
	// spot-scheduler.io/on-demand-base, spot-share, max-per-pool) that the strategies running
	// with a policy put on every workload's pod template.
	CapacityPolicy map[string]string `json:"capacityPolicy,omitempty"`
	Events         []Event           `json:"events"`
}

// Node is one node of the trace.
type Node struct {
	Name string `json:"name"`
	Pool string `json:"pool"`
	Zone string `json:"zone,omitempty"`
	Tier string `json:"tier"`
	CPU  int64  `json:"cpu"`
	// Pods is the node's pod capacity (default 110).
	Pods int64 `json:"pods,omitempty"`
}

// PodSet is a Deployment: a name, a size and one pod's CPU request (milli-CPU).
type PodSet struct {
	Name     string `json:"name"`
	Replicas int    `json:"replicas"`
	MilliCPU int64  `json:"milliCPU"`
}

// Event happens At seconds into the replay.
type Event struct {
	At float64 `json:"at"`
	// Notice taints nodes with an interruption notice (the product calls them at risk; the
	// default scheduler just sees a NoSchedule taint).
	Notice []string `json:"notice,omitempty"`
	// Reclaim deletes nodes and their pods, as a provider taking spot VMs back does.
	Reclaim []string `json:"reclaim,omitempty"`
	// AddNodes brings capacity (back).
	AddNodes []Node `json:"addNodes,omitempty"`
	// Scale sets workloads' replicas.
	Scale map[string]int `json:"scale,omitempty"`
	// Failback marks an event after which pods should move to a better tier: needed moves and
	// time to failback are measured from it.
	Failback bool `json:"failback,omitempty"`
}

// Disruptive says whether the event takes capacity away (an interruption notice or a reclaim):
// the safety measure looks at the replicas left Running from such an event on.
func (e Event) Disruptive() bool { return len(e.Notice) > 0 || len(e.Reclaim) > 0 }

// Window is a stretch of the replay in which capacity is being taken away: from a disruptive
// event to the next event that is not (or the end).
type Window struct {
	// First and End are event indexes: the window starts when event First happens and ends
	// when event End does (End == len(Events): the end of the replay).
	First, End int
	From, To   float64
	// Pools reclaimed in the window, and whether they are every spot pool the cluster had.
	Pools   []string
	AllSpot bool
}

// Name is how reports call the window: "all spot" or the pools, with its start.
func (w Window) Name() string {
	what := strings.Join(w.Pools, "+")
	if w.AllSpot {
		what = "all spot"
	}
	return fmt.Sprintf("%s reclaim (t=%.0f)", what, w.From)
}

// ReclaimWindows lists the trace's reclaim windows in order.
func (t *Trace) ReclaimWindows() []Window {
	var out []Window
	for i := 0; i < len(t.Events); i++ {
		if !t.Events[i].Disruptive() {
			continue
		}
		w := Window{First: i, From: t.Events[i].At}
		before := t.StateAfter(i)
		pools := map[string]bool{}
		j := i
		for ; j < len(t.Events) && t.Events[j].Disruptive(); j++ {
			for _, names := range [][]string{t.Events[j].Notice, t.Events[j].Reclaim} {
				for _, name := range names {
					if n, ok := before.Nodes[name]; ok {
						pools[n.Pool] = true
					}
				}
			}
		}
		w.End, w.To = j, t.Duration
		if j < len(t.Events) {
			w.To = t.Events[j].At
		}
		for p := range pools {
			w.Pools = append(w.Pools, p)
		}
		sort.Strings(w.Pools)
		after := t.StateAfter(j)
		spotBefore, spotAfter := 0, 0
		for _, n := range before.Nodes {
			if n.Tier == Spot {
				spotBefore++
			}
		}
		for _, n := range after.Nodes {
			if n.Tier == Spot {
				spotAfter++
			}
		}
		w.AllSpot = spotBefore > 0 && spotAfter == 0
		out = append(out, w)
		i = j - 1
	}
	return out
}

// Pools lists every pool of the trace (initial and added nodes) with its tier and node size,
// in the order they first appear.
func (t *Trace) Pools() []Pool {
	var out []Pool
	seen := map[string]bool{}
	add := func(n Node) {
		if !seen[n.Pool] {
			seen[n.Pool] = true
			out = append(out, Pool{Name: n.Pool, Tier: n.Tier, Zone: n.Zone})
		}
	}
	for _, n := range t.Nodes {
		add(n)
	}
	for _, e := range t.Events {
		for _, n := range e.AddNodes {
			add(n)
		}
	}
	return out
}

// Pool is a node pool of the trace.
type Pool struct{ Name, Tier, Zone string }

// PoolCPU is the CPU of the state's nodes in each pool, counting only nodes not at risk when
// withoutAtRisk is set (the capacity an autoscaler may still launch there).
func (s State) PoolCPU(withoutAtRisk bool) map[string]int64 {
	out := map[string]int64{}
	for name, n := range s.Nodes {
		if withoutAtRisk && s.AtRisk[name] {
			continue
		}
		out[n.Pool] += n.CPU
	}
	return out
}

// Load reads a trace from a file, or a built-in one by name ("default", "smoke").
func Load(nameOrPath string) (*Trace, error) {
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		var err2 error
		if data, err2 = builtin.ReadFile(nameOrPath + ".yaml"); err2 != nil {
			return nil, fmt.Errorf("trace %q: neither a file (%v) nor a built-in trace", nameOrPath, err)
		}
	}
	t := &Trace{}
	if err := yaml.UnmarshalStrict(data, t); err != nil {
		return nil, fmt.Errorf("trace %q: %w", nameOrPath, err)
	}
	return t, t.validate()
}

func (t *Trace) validate() error {
	if t.Duration <= 0 {
		return fmt.Errorf("trace %s: duration must be > 0", t.Name)
	}
	if t.ModelSecondsPerSecond <= 0 {
		t.ModelSecondsPerSecond = 1
	}
	for _, tier := range []string{Spot, OnDemand, Burst} {
		if t.Prices[tier] <= 0 {
			return fmt.Errorf("trace %s: prices.%s must be > 0", t.Name, tier)
		}
	}
	seen := map[string]bool{}
	poolTier := map[string]string{}
	checkNode := func(n Node) error {
		if n.Name == "" || n.Pool == "" || n.CPU <= 0 {
			return fmt.Errorf("trace %s: node %+v needs name, pool and cpu", t.Name, n)
		}
		if _, ok := t.Prices[n.Tier]; !ok {
			return fmt.Errorf("trace %s: node %s: unknown tier %q", t.Name, n.Name, n.Tier)
		}
		if seen[n.Name] {
			return fmt.Errorf("trace %s: node %s defined twice", t.Name, n.Name)
		}
		seen[n.Name] = true
		if tier, ok := poolTier[n.Pool]; ok && tier != n.Tier {
			return fmt.Errorf("trace %s: node %s: pool %s has nodes of tiers %s and %s; a pool has one tier", t.Name, n.Name, n.Pool, tier, n.Tier)
		}
		poolTier[n.Pool] = n.Tier
		return nil
	}
	for _, n := range t.Nodes {
		if err := checkNode(n); err != nil {
			return err
		}
	}
	if len(t.Workloads) == 0 {
		return fmt.Errorf("trace %s: no workloads", t.Name)
	}
	// The optimum and the move counts use pods as units: one pod size for every workload.
	size := t.Workloads[0].MilliCPU
	names := map[string]bool{}
	for _, w := range t.Workloads {
		if w.MilliCPU != size || size <= 0 {
			return fmt.Errorf("trace %s: every workload must request the same milliCPU > 0 (got %d and %d)", t.Name, size, w.MilliCPU)
		}
		names[w.Name] = true
	}
	last := 0.0
	for i, e := range t.Events {
		if e.At < last || e.At >= t.Duration {
			return fmt.Errorf("trace %s: event %d at %.0fs: events must be in order and before the end", t.Name, i, e.At)
		}
		last = e.At
		for _, n := range e.AddNodes {
			if err := checkNode(n); err != nil {
				return err
			}
		}
		for w := range e.Scale {
			if !names[w] {
				return fmt.Errorf("trace %s: event %d scales unknown workload %q", t.Name, i, w)
			}
		}
	}
	return nil
}

// PodMilliCPU is the request of every workload pod.
func (t *Trace) PodMilliCPU() int64 { return t.Workloads[0].MilliCPU }

// TiersByPrice lists the tiers cheapest first.
func (t *Trace) TiersByPrice() []string {
	tiers := make([]string, 0, len(t.Prices))
	for tier := range t.Prices {
		tiers = append(tiers, tier)
	}
	sort.Slice(tiers, func(i, j int) bool {
		if t.Prices[tiers[i]] != t.Prices[tiers[j]] {
			return t.Prices[tiers[i]] < t.Prices[tiers[j]]
		}
		return tiers[i] < tiers[j]
	})
	return tiers
}

// MaxPrice is the most expensive tier's price: what an unserved (pending) pod is charged,
// the price of serving it anyway.
func (t *Trace) MaxPrice() float64 {
	m := 0.0
	for _, p := range t.Prices {
		m = max(m, p)
	}
	return m
}

// State is the trace's cluster after some of its events.
type State struct {
	Nodes    map[string]Node
	AtRisk   map[string]bool
	Replicas map[string]int
}

// StateAfter returns the state once the first n events have happened.
func (t *Trace) StateAfter(n int) State {
	s := State{Nodes: map[string]Node{}, AtRisk: map[string]bool{}, Replicas: map[string]int{}}
	for _, node := range t.Nodes {
		s.Nodes[node.Name] = node
	}
	for _, w := range t.Workloads {
		s.Replicas[w.Name] = w.Replicas
	}
	for _, e := range t.Events[:n] {
		for _, name := range e.Notice {
			s.AtRisk[name] = true
		}
		for _, name := range e.Reclaim {
			delete(s.Nodes, name)
			delete(s.AtRisk, name)
		}
		for _, node := range e.AddNodes {
			s.Nodes[node.Name] = node
		}
		for w, r := range e.Scale {
			s.Replicas[w] = r
		}
	}
	return s
}

// EventsDue counts the events that have happened at time at (seconds into the replay).
func (t *Trace) EventsDue(at float64) int {
	n := 0
	for n < len(t.Events) && t.Events[n].At <= at {
		n++
	}
	return n
}

// DesiredPods is the number of workload pods the state asks for.
func (s State) DesiredPods() int {
	n := 0
	for _, r := range s.Replicas {
		n += r
	}
	return n
}

// Optimum places the state's desired pods on the cheapest tiers with room (a node's room
// counts whole pods; an at-risk node still serves until it is reclaimed). It returns pods per
// tier and the pods that fit nowhere.
func (t *Trace) Optimum(s State) (perTier map[string]int, unplaced int) {
	room := map[string]int{}
	for _, n := range s.Nodes {
		slots := int(n.CPU * 1000 / t.PodMilliCPU())
		if n.Pods > 0 {
			slots = min(slots, int(n.Pods))
		} else {
			slots = min(slots, 110)
		}
		room[n.Tier] += slots
	}
	perTier = map[string]int{}
	left := s.DesiredPods()
	for _, tier := range t.TiersByPrice() {
		take := min(left, room[tier])
		if take > 0 {
			perTier[tier] = take
		}
		left -= take
	}
	return perTier, left
}

// OptimumCostPerHour is the optimum's cost rate in $ per (model) hour: placed pods at their
// tier's price, unplaced ones at the highest price. It is a lower bound of both cost measures
// of any strategy: a node holds at most its CPU in requests, and a pending pod is charged the
// highest price.
func (t *Trace) OptimumCostPerHour(s State) float64 {
	perTier, unplaced := t.Optimum(s)
	cpu := float64(t.PodMilliCPU()) / 1000
	cost := float64(unplaced) * cpu * t.MaxPrice()
	for tier, n := range perTier {
		cost += float64(n) * cpu * t.Prices[tier]
	}
	return cost
}

// Misplaced counts the pods that, to match the optimum, must move to a cheaper tier: for
// each tier, the pods above what the optimum puts there.
func Misplaced(actual, optimum map[string]int) int {
	n := 0
	for tier, a := range actual {
		n += max(0, a-optimum[tier])
	}
	return n
}
