package spotscore

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
)

// TestNodeClassesFollowTheList: the classes are recomputed only for what changed, and always
// equal the classes of the list handed in; the grouping by band keeps list order.
func TestNodeClassesFollowTheList(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, nil, fh)
	if err != nil {
		t.Fatal(err)
	}
	pl := p.(*SpotScore)
	nodeInfo := func(n *v1.Node) *framework.NodeInfo {
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		return ni
	}
	a, od, b := nodeInfo(spotNode("a-1", "a").Obj()), nodeInfo(onDemandNode("od-1").Obj()), nodeInfo(spotNode("b-1", "b").Obj())
	gone := framework.NewNodeInfo(st.MakePod().Name("orphan").UID("orphan").Node("gone").Obj())
	list := []fwk.NodeInfo{a, od, b, gone}
	tierOf := func(nc *nodeClasses, ni fwk.NodeInfo) string {
		c, ok := nc.classOf(ni.Node())
		if !ok {
			t.Fatalf("classOf(%s): not found", ni.Node().Name)
		}
		return c.TierName
	}
	// byBandNames groups the list by tier rank (spot best), as node names.
	byBandNames := func(nc *nodeClasses) [][]string {
		bandOf := make([]uint8, len(nc.classes))
		for id, c := range nc.classes {
			bandOf[id] = uint8(pl.model.Band(c, false))
		}
		var out [][]string
		for _, idx := range nc.byBand(bandOf, pl.model.NumBands()) {
			var names []string
			for _, i := range idx {
				names = append(names, list[i].Node().Name)
			}
			if len(names) > 0 {
				out = append(out, names)
			}
		}
		return out
	}

	first := pl.classesOf(list)
	if got := byBandNames(first); !slices.Equal(got[0], []string{"a-1", "b-1"}) || !slices.Equal(got[1], []string{"od-1"}) || len(got) != 2 {
		t.Fatalf("bands %v, want [[a-1 b-1] [od-1]]: spot first, list order within a band, no band for a NodeInfo without a node", got)
	}
	if again := pl.classesOf(list); again != first {
		t.Error("same node objects at the same positions: the classes must be reused")
	}

	// A node object changed (a reclaim notice taint, say): only a copy changes.
	a.SetNode(atRisk(spotNode("a-1", "a")).Obj())
	second := pl.classesOf(list)
	if second == first {
		t.Fatal("a node object changed: the classes must be recomputed")
	}
	if c, _ := second.classOf(a.Node()); !c.AtRisk {
		t.Errorf("a-1 tainted with a reclaim notice: class %+v, want at risk", c)
	}
	if c, _ := first.classOf(list[1].Node()); c.AtRisk {
		t.Error("the earlier classes were modified")
	}
	if tierOf(second, od) != "on-demand" || tierOf(second, b) != "spot" {
		t.Errorf("unchanged nodes lost their classes: od-1 %s, b-1 %s", tierOf(second, od), tierOf(second, b))
	}
	if _, ok := second.classOf(spotNode("a-1", "a").Obj()); ok {
		t.Error("classOf answered for a node object the list does not hold")
	}

	// Reordered, then shorter: classified afresh, by the new positions.
	list = []fwk.NodeInfo{b, od, a, gone}
	third := pl.classesOf(list)
	if got := byBandNames(third); !slices.Equal(got[0], []string{"b-1"}) || !slices.Equal(got[1], []string{"od-1"}) || !slices.Equal(got[2], []string{"a-1"}) {
		t.Errorf("after reordering, bands %v, want [[b-1] [od-1] [a-1]] (a-1 at risk, last)", got)
	}
	list = list[:2]
	if got := byBandNames(pl.classesOf(list)); len(got) != 2 || got[0][0] != "b-1" || got[1][0] != "od-1" {
		t.Errorf("after dropping nodes, bands %v, want [[b-1] [od-1]]", got)
	}
}
