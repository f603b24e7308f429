package pernode

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
)

func TestCacheFollowsNodeGenerations(t *testing.T) {
	computed := 0
	c := New(func(ni fwk.NodeInfo) int {
		computed++
		return len(ni.GetPods())
	})
	a := framework.NewNodeInfo(st.MakePod().Name("p1").UID("p1").Obj())
	a.SetNode(st.MakeNode().Name("a").Obj())
	b := framework.NewNodeInfo()
	b.SetNode(st.MakeNode().Name("b").Obj())

	steps := []struct {
		name         string
		ni           *framework.NodeInfo
		want         int
		wantComputed int
	}{
		{"first look at a computes", a, 1, 1},
		{"same generation of a is served from the cache", a, 1, 1},
		{"another node has its own entry", b, 0, 2},
		{"a snapshot clone keeps the generation: cached", a.Snapshot().(*framework.NodeInfo), 1, 2},
	}
	for _, s := range steps {
		if got := c.Get(s.ni); got != s.want || computed != s.wantComputed {
			t.Fatalf("%s: got %d after %d computations, want %d after %d", s.name, got, computed, s.want, s.wantComputed)
		}
	}
	// A pod added to a clone (as the scheduler's cache or a preemption simulation does) moves
	// its generation: recomputed, and the original's generation is still known by value.
	clone := a.Snapshot().(*framework.NodeInfo)
	clone.AddPod(st.MakePod().Name("p2").UID("p2").Obj())
	if got := c.Get(clone); got != 2 || computed != 3 {
		t.Fatalf("after a pod joined: got %d after %d computations, want 2 after 3", got, computed)
	}
	if err := clone.RemovePod(klog.Background(), clone.GetPods()[1].GetPod()); err != nil {
		t.Fatal(err)
	}
	if got := c.Get(clone); got != 1 || computed != 4 {
		t.Fatalf("after the pod left: got %d after %d computations, want 1 after 4", got, computed)
	}
}

func TestCacheWithoutNodeComputesEveryTime(t *testing.T) {
	computed := 0
	c := New(func(fwk.NodeInfo) bool { computed++; return true })
	ni := framework.NewNodeInfo(&v1.Pod{})
	c.Get(ni)
	c.Get(ni)
	if computed != 2 {
		t.Fatalf("computed %d times, want 2: a NodeInfo without its node has no name to cache under", computed)
	}
}

// TestTrackerKeepsTheTotal: Sync hands the caller exactly the changes since the last list, so
// that a running total equals the sum over the current list: a node whose generation moved is
// taken out and put back with its new value, a reordered or shorter list restarts the total
// (served by the name cache), and a NodeInfo without a node counts nowhere.
func TestTrackerKeepsTheTotal(t *testing.T) {
	computed := 0
	tr := NewTracker(New(func(ni fwk.NodeInfo) int {
		computed++
		return len(ni.GetPods())
	}))
	a := framework.NewNodeInfo(st.MakePod().Name("p1").UID("p1").Obj())
	a.SetNode(st.MakeNode().Name("a").Obj())
	b := framework.NewNodeInfo()
	b.SetNode(st.MakeNode().Name("b").Obj())
	gone := framework.NewNodeInfo(&v1.Pod{})
	total, calls := 0, 0
	sync := func(name string, list []fwk.NodeInfo, wantTotal, wantCalls, wantComputed int) {
		t.Helper()
		calls = 0
		tr.Sync(list, func(_, v int) { total -= v; calls++ }, func(_, v int) { total += v; calls++ })
		if total != wantTotal || calls != wantCalls || computed != wantComputed {
			t.Fatalf("%s: total %d after %d calls and %d computations, want %d after %d and %d",
				name, total, calls, computed, wantTotal, wantCalls, wantComputed)
		}
	}
	list := []fwk.NodeInfo{a, b, gone}
	sync("first list: a and b added", list, 1, 2, 2)
	sync("same list: nothing to do", list, 1, 0, 2)
	b.AddPod(st.MakePod().Name("p2").UID("p2").Obj())
	sync("b's generation moved: b out and in", list, 2, 2, 3)
	gone.SetNode(st.MakeNode().Name("c").Obj())
	sync("the NodeInfo got its node: counted", list, 3, 1, 4)
	sync("reordered and shorter: all out, the two in, from the name cache", []fwk.NodeInfo{b, a}, 2, 5, 4)
	sync("empty list: all out", nil, 0, 2, 4)
}

// BenchmarkTrackerSync5000Nodes is the per-cycle walk of a node index over 5000 nodes, one
// of which changed since the last cycle (the pod bound last).
func BenchmarkTrackerSync5000Nodes(b *testing.B) {
	nodes := make([]fwk.NodeInfo, 5000)
	for i := range nodes {
		ni := framework.NewNodeInfo()
		ni.SetNode(st.MakeNode().Name(fmt.Sprintf("node-%04d", i)).Obj())
		nodes[i] = ni
	}
	tr := NewTracker(New(func(ni fwk.NodeInfo) int { return len(ni.GetPods()) }))
	total := 0
	remove := func(_ int, n int) { total -= n }
	add := func(_ int, n int) { total += n }
	tr.Sync(nodes, remove, add)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		nodes[i%len(nodes)].(*framework.NodeInfo).AddPod(st.MakePod().Name(fmt.Sprintf("p-%d", i)).UID(fmt.Sprintf("p-%d", i)).Obj())
		tr.Sync(nodes, remove, add)
	}
}
