package ranking

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
)

// TestNodeClassesByBand: each order groups the list by its own bands, list order within a band
// and NodeInfos without a node nowhere; an order ranking the classes alike gets the cached
// grouping, and Update reclassifies only a changed node, in a copy.
func TestNodeClassesByBand(t *testing.T) {
	r := New(modelOf(t, nil, "")) // reserved, spot, on-demand, burst
	spot := func(name string) *v1.Node {
		return st.MakeNode().Name(name).Label("karpenter.sh/capacity-type", "spot").Obj()
	}
	nodeInfo := func(n *v1.Node) *framework.NodeInfo {
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		return ni
	}
	// on-demand is the default tier: a node without a tier's labels.
	nodes := []fwk.NodeInfo{nodeInfo(st.MakeNode().Name("od-1").Obj()), nodeInfo(spot("spot-1")), framework.NewNodeInfo(), nodeInfo(spot("spot-2"))}
	nc := ClassifyNodes(r.Model(), nodes)
	names := func(grouped [][]int) [][]string {
		var out [][]string
		for _, idx := range grouped {
			if len(idx) == 0 {
				continue
			}
			var band []string
			for _, i := range idx {
				band = append(band, nodes[i].Node().Name)
			}
			out = append(out, band)
		}
		return out
	}
	tests := []struct {
		name  string
		order Order
		want  [][]string
	}{
		{"spot first", r.For(false, policy.Decision{}), [][]string{{"spot-1", "spot-2"}, {"od-1"}}},
		{"avoiding spot", r.For(true, policy.Decision{}), [][]string{{"od-1"}, {"spot-1", "spot-2"}}},
		{"the policy wants on-demand: ranks like avoiding spot", r.For(false, policy.Decision{NonReclaimable: true}), [][]string{{"od-1"}, {"spot-1", "spot-2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := nc.ByBand(tc.order)
			if g := names(got); !slices.EqualFunc(g, tc.want, slices.Equal[[]string]) {
				t.Fatalf("ByBand = %v, want %v", g, tc.want)
			}
			if again := nc.ByBand(tc.order); &again[0] != &got[0] {
				t.Error("the same ranking grouped again: want the cached grouping")
			}
		})
	}

	// Only a pod changed on spot-1 (same node object): the classes are reused as they are.
	if nc.Update(r.Model(), nodes, []int{1}) != nc {
		t.Error("no node object changed: Update made a copy")
	}
	// spot-2's node object changed to on-demand: a copy, the original untouched.
	nodes[3].(*framework.NodeInfo).SetNode(st.MakeNode().Name("spot-2").Obj())
	updated := nc.Update(r.Model(), nodes, []int{3})
	if c, ok := updated.Class(nodes[3].Node()); !ok || c.TierName != "on-demand" {
		t.Errorf("updated class of spot-2 = %+v, %v; want on-demand", c, ok)
	}
	if _, ok := nc.Class(nodes[3].Node()); ok {
		t.Error("the original classes answered for a node object they never held")
	}
	if g := names(updated.ByBand(r.For(false, policy.Decision{}))); !slices.EqualFunc(g, [][]string{{"spot-1"}, {"od-1", "spot-2"}}, slices.Equal[[]string]) {
		t.Errorf("after the update, ByBand = %v", g)
	}
}
