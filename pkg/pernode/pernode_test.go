package pernode

import (
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

// TestValuesFollowTheList: Values answers per position, recomputes a node whose generation
// moved, and a NodeInfo without a node gets the zero value.
func TestValuesFollowTheList(t *testing.T) {
	computed := 0
	c := New(func(ni fwk.NodeInfo) int {
		computed++
		return len(ni.GetPods())
	})
	a := framework.NewNodeInfo(st.MakePod().Name("p1").UID("p1").Obj())
	a.SetNode(st.MakeNode().Name("a").Obj())
	b := framework.NewNodeInfo()
	b.SetNode(st.MakeNode().Name("b").Obj())
	gone := framework.NewNodeInfo(&v1.Pod{})
	list := []fwk.NodeInfo{a, b, gone}
	check := func(name string, want []int, wantComputed int) {
		t.Helper()
		got := c.Values(list)
		if len(got) != len(want) || computed != wantComputed {
			t.Fatalf("%s: got %v after %d computations, want %v after %d", name, got, computed, want, wantComputed)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: got %v, want %v", name, got, want)
			}
		}
	}
	check("first list", []int{1, 0, 0}, 2)
	check("same list: no computation", []int{1, 0, 0}, 2)
	b.AddPod(st.MakePod().Name("p2").UID("p2").Obj())
	check("b's generation moved", []int{1, 1, 0}, 3)
	list = []fwk.NodeInfo{b, a}
	check("reordered and shorter: served by the name cache", []int{1, 1}, 3)
}
