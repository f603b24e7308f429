package deletioncost

import (
	"fmt"
	"sort"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// TestDesiredWithReclaims: within a band, scale-in takes first from the pool reclaimed most,
// in the order the scheduler fills pools (capacity.Model.PoolLoad), and without reclaims the
// costs are Desired's to the point.
func TestDesiredWithReclaims(t *testing.T) {
	m := defaultModel(t)
	nodes := map[string]*v1.Node{"a": spotNode("a", "pool-a"), "b": spotNode("b", "pool-b"), "od": node("od", onDemandLabel)}
	nodeOf := func(name string) (*v1.Node, bool) { n, ok := nodes[name]; return n, ok }
	var pods []*v1.Pod
	for i, n := range []string{"a", "a", "a", "b", "b", "b", "od"} {
		pods = append(pods, pod(fmt.Sprintf("p%d-%s", i, n), n, i))
	}
	plain := Desired(m, wellknown.SchedulerName, pods, nodeOf)
	if same := DesiredWithReclaims(m, wellknown.SchedulerName, pods, nodeOf, capacity.Reclaims{"karpenter.sh/nodepool=pool-z": 4}, nil); fmt.Sprint(same) != fmt.Sprint(plain) {
		t.Errorf("reclaims of another pool changed the costs: %v, want %v", same, plain)
	}
	risky := DesiredWithReclaims(m, wellknown.SchedulerName, pods, nodeOf, capacity.Reclaims{"karpenter.sh/nodepool=pool-b": 3}, nil)
	// The ReplicaSet deletes the lowest cost first: the order of deletion.
	order := func(d map[string]int32) []string {
		names := make([]string, 0, len(d))
		for n := range d {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			if d[names[i]] != d[names[j]] {
				return d[names[i]] < d[names[j]]
			}
			return names[i] < names[j]
		})
		return names
	}
	costs := func(d map[types.UID]Placement) map[string]int32 {
		out := map[string]int32{}
		for _, p := range pods {
			out[p.Name] = d[p.UID].Cost
		}
		return out
	}
	got := order(costs(risky))
	// Pool b's replicas weigh 2.5 each: loads a 0,1,2 and b 0.375,2.875,5.375; scale-in
	// takes b's third, then b's second, then a's third, ...; on-demand goes first anyway.
	want := []string{"p6-od", "p5-b", "p4-b", "p2-a", "p1-a", "p3-b", "p0-a"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deletion order %v, want %v (costs %v)", got, want, costs(risky))
	}
	if p := order(costs(plain)); p[0] != "p6-od" || costs(plain)["p2-a"] != costs(plain)["p5-b"] {
		t.Errorf("without reclaims: order %v, costs %v: the pools' third replicas tie", p, costs(plain))
	}
	for _, p := range pods {
		if c := risky[p.UID].Cost; c/BandWidth != plain[p.UID].Cost/BandWidth {
			t.Errorf("%s: cost %d left its band (%d without reclaims)", p.Name, c, plain[p.UID].Cost)
		}
	}
}

// mutableReclaims is a reclaim history a test changes.
type mutableReclaims struct{ r capacity.Reclaims }

func (m *mutableReclaims) Reclaims() capacity.Reclaims { return m.r }

// TestControllerReranksWhenReclaimsChange: a reclaim recorded for a pool re-ranks the
// workloads; the youngest pod of the reclaimed pool becomes the first to go.
func TestControllerReranksWhenReclaimsChange(t *testing.T) {
	history := &mutableReclaims{}
	h := newHarnessWith(t, history, spotNode("a", "pool-a"), spotNode("b", "pool-b"),
		pod("web-0", "a", 0), pod("web-1", "b", 1), pod("web-2", "a", 2), pod("web-3", "b", 3))
	h.eventually("pool positions", map[string]string{"web-0": "ours:6999", "web-1": "ours:6999", "web-2": "ours:6998", "web-3": "ours:6998"})
	h.waitCached()
	history.r = capacity.Reclaims{"karpenter.sh/nodepool=pool-b": 1}
	h.c.ReclaimsChanged()
	// Loads: a 0, 1; b 0.25, 1.75 (each replica of b weighs 1.5).
	h.eventually("re-ranked by risk", map[string]string{"web-0": "ours:6999", "web-1": "ours:6998", "web-2": "ours:6997", "web-3": "ours:6996"})
}

// TestDesiredEmptiestNodeFirst: within a pool, scale-in takes the pods of the emptiest nodes
// first (by quarter of a node), whatever their age, so that nodes empty and an autoscaler
// removing empty nodes removes them with no eviction; across pools the water filling is
// unchanged, and a fill difference under a quarter of a node keeps the age order.
func TestDesiredEmptiestNodeFirst(t *testing.T) {
	m := defaultModel(t)
	nodes := map[string]*v1.Node{"full": spotNode("full", "pool-a"), "empty": spotNode("empty", "pool-a"), "b": spotNode("b", "pool-b")}
	nodeOf := func(name string) (*v1.Node, bool) { n, ok := nodes[name]; return n, ok }
	// Oldest first: the pod on the nearly empty node is the oldest of pool a.
	pods := []*v1.Pod{pod("p0-empty", "empty", 0), pod("p1-full", "full", 1), pod("p2-full", "full", 2), pod("p3-b", "b", 3), pod("p4-b", "b", 4)}
	for _, tc := range []struct {
		name string
		fill map[string]float64
		// the pool-a pod the ReplicaSet deletes first (lowest cost of pool a)
		first string
	}{
		{"by age without fills", nil, "p2-full"},
		{"emptiest node first", map[string]float64{"full": 0.9, "empty": 0.2, "b": 0.5}, "p0-empty"},
		{"under a quarter apart: by age", map[string]float64{"full": 0.6, "empty": 0.55, "b": 0.5}, "p2-full"},
	} {
		var fill func(string) float64
		if tc.fill != nil {
			fill = func(n string) float64 { return tc.fill[n] }
		}
		d := DesiredWithReclaims(m, wellknown.SchedulerName, pods, nodeOf, nil, fill)
		first, lowest := "", int32(1<<30)
		for _, p := range pods[:3] {
			if c := d[p.UID].Cost; c < lowest || (c == lowest && p.Name < first) {
				first, lowest = p.Name, c
			}
		}
		if first != tc.first {
			t.Errorf("%s: pool a's first to go is %s, want %s (costs %v)", tc.name, first, tc.first, d)
		}
		// Water filling across pools holds: pool a's third replica and pool b's second... the
		// pool with more replicas (a: 3) gives its third before b gives its second.
		if d[pods[4].UID].Cost <= lowest {
			t.Errorf("%s: pool b's second replica costs %d, not above pool a's third (%d)", tc.name, d[pods[4].UID].Cost, lowest)
		}
	}
}
