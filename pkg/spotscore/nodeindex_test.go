package spotscore

import (
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
)

// TestNodeClassesFollowTheList: the node index's classes are recomputed only for what changed,
// and always equal the classes of the list handed in; the grouping by band keeps list order.
func TestNodeClassesFollowTheList(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pl := newTestPlugin(ctx, t, nil)
	classesOf := func(list []fwk.NodeInfo) *ranking.NodeClasses { return pl.index.view(list, "").classes }
	nodeInfo := func(n *v1.Node) *framework.NodeInfo {
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		return ni
	}
	a, od, b := nodeInfo(spotNode("a-1", "a").Obj()), nodeInfo(onDemandNode("od-1").Obj()), nodeInfo(spotNode("b-1", "b").Obj())
	gone := framework.NewNodeInfo(st.MakePod().Name("orphan").UID("orphan").Node("gone").Obj())
	list := []fwk.NodeInfo{a, od, b, gone}
	tierOf := func(nc *ranking.NodeClasses, ni fwk.NodeInfo) string {
		c, ok := nc.Class(ni.Node())
		if !ok {
			t.Fatalf("Class(%s): not found", ni.Node().Name)
		}
		return c.TierName
	}
	// byBandNames groups the list by tier rank (spot best), as node names.
	byBandNames := func(nc *ranking.NodeClasses) [][]string {
		var out [][]string
		for _, idx := range nc.ByBand(pl.ranker.For(false, policy.Decision{})) {
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

	first := classesOf(list)
	if got := byBandNames(first); !slices.Equal(got[0], []string{"a-1", "b-1"}) || !slices.Equal(got[1], []string{"od-1"}) || len(got) != 2 {
		t.Fatalf("bands %v, want [[a-1 b-1] [od-1]]: spot first, list order within a band, no band for a NodeInfo without a node", got)
	}
	if again := classesOf(list); again != first {
		t.Error("same node objects at the same positions: the classes must be reused")
	}

	// A node object changed (a reclaim notice taint, say): only a copy changes.
	a.SetNode(atRisk(spotNode("a-1", "a")).Obj())
	second := classesOf(list)
	if second == first {
		t.Fatal("a node object changed: the classes must be recomputed")
	}
	if c, _ := second.Class(a.Node()); !c.AtRisk {
		t.Errorf("a-1 tainted with a reclaim notice: class %+v, want at risk", c)
	}
	if c, _ := first.Class(list[1].Node()); c.AtRisk {
		t.Error("the earlier classes were modified")
	}
	if tierOf(second, od) != "on-demand" || tierOf(second, b) != "spot" {
		t.Errorf("unchanged nodes lost their classes: od-1 %s, b-1 %s", tierOf(second, od), tierOf(second, b))
	}
	if _, ok := second.Class(spotNode("a-1", "a").Obj()); ok {
		t.Error("Class answered for a node object the list does not hold")
	}

	// Reordered, then shorter: classified afresh, by the new positions.
	list = []fwk.NodeInfo{b, od, a, gone}
	third := classesOf(list)
	if got := byBandNames(third); !slices.Equal(got[0], []string{"b-1"}) || !slices.Equal(got[1], []string{"od-1"}) || !slices.Equal(got[2], []string{"a-1"}) {
		t.Errorf("after reordering, bands %v, want [[b-1] [od-1] [a-1]] (a-1 at risk, last)", got)
	}
	list = list[:2]
	if got := byBandNames(classesOf(list)); len(got) != 2 || got[0][0] != "b-1" || got[1][0] != "od-1" {
		t.Errorf("after dropping nodes, bands %v, want [[b-1] [od-1]]", got)
	}
}

// TestPlaceholderNodesFollowTheList: the node index counts the nodes hosting a placeholder not
// being deleted, and the tier gate reads that count from the cycle state.
func TestPlaceholderNodesFollowTheList(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pl := newTestPlugin(ctx, t, nil)
	a, b := framework.NewNodeInfo(placeholderOn("ph-a", "1", "a")), framework.NewNodeInfo(boundPod("app", "1", "b"))
	a.SetNode(spotNode("a", "a").Obj())
	b.SetNode(spotNode("b", "b").Obj())
	list := []fwk.NodeInfo{a, b}
	check := func(name string, want int) {
		t.Helper()
		state := framework.NewCycleState()
		if _, status := pl.PreFilter(ctx, state, cpuPod("p", "1").Obj(), list); !status.IsSuccess() {
			t.Fatalf("%s: PreFilter: %v", name, status)
		}
		if got, ok := PlaceholderNodes(state); !ok || got != want {
			t.Errorf("%s: PlaceholderNodes = %d, %v; want %d, true", name, got, ok, want)
		}
	}
	check("one placeholder on a", 1)
	b.AddPod(placeholderOn("ph-b", "1", "b"))
	check("a placeholder bound on b", 2)
	deleting := placeholderOn("ph-a", "1", "a")
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	if err := a.RemovePod(klog.Background(), placeholderOn("ph-a", "1", "a")); err != nil {
		t.Fatal(err)
	}
	a.AddPod(deleting)
	check("a's placeholder being deleted", 1)
	if _, ok := PlaceholderNodes(framework.NewCycleState()); ok {
		t.Error("PlaceholderNodes answered for a cycle SpotScore's PreFilter did not run in")
	}
}
