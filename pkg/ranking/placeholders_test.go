package ranking

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
)

func placeholderPod(name, node, cpu string, priority int32) *v1.Pod {
	return st.MakePod().Name(name).UID(name).Node(node).Label("placeholder", "true").Priority(priority).
		Req(map[v1.ResourceName]string{v1.ResourceCPU: cpu}).Obj()
}

func nodeInfoOf(name string, pods ...*v1.Pod) *framework.NodeInfo {
	ni := framework.NewNodeInfo(pods...)
	ni.SetNode(st.MakeNode().Name(name).Obj())
	return ni
}

// TestPlaceholderIndex follows one node list through the changes a scheduler sees: the count of
// nodes hosting a placeholder and each node's rooms always describe the list handed in, and a
// node's pods are looked at again only when its generation moved.
func TestPlaceholderIndex(t *testing.T) {
	scanned := 0 // pods the rule looked at
	x := NewPlaceholderIndex(func(p *v1.Pod) bool {
		scanned++
		return p.Labels["placeholder"] == "true"
	})
	a := nodeInfoOf("a", placeholderPod("ph-a", "a", "1", -10))
	b := nodeInfoOf("b", st.MakePod().Name("app").UID("app").Node("b").Obj())
	c := nodeInfoOf("c", placeholderPod("ph-c", "c", "2", -5))
	gone := framework.NewNodeInfo(placeholderPod("ph-orphan", "gone", "1", -10))
	list := []fwk.NodeInfo{a, b, gone}
	deleting := placeholderPod("ph-a", "a", "1", -10)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}

	steps := []struct {
		name   string
		change func()
		// hosting is HostingNodes; scanned the pods the rule looked at for it.
		hosting, scanned int
		// rooms are the rooms on each node of the list after the step, by name.
		rooms map[string][]PlaceholderRoom
	}{
		{
			name:    "first list: every node scanned, a NodeInfo without a node counts nowhere",
			change:  func() {},
			hosting: 1, scanned: 2,
			rooms: map[string][]PlaceholderRoom{"a": {{Priority: -10, Requests: Requests{MilliCPU: 1000}}}, "b": nil},
		},
		{
			name:    "nothing changed: no pod looked at",
			change:  func() {},
			hosting: 1, scanned: 0,
		},
		{
			name:    "a placeholder bound on b: only b scanned",
			change:  func() { b.AddPod(placeholderPod("ph-b", "b", "500m", -10)) },
			hosting: 2, scanned: 2,
			rooms: map[string][]PlaceholderRoom{"b": {{Priority: -10, Requests: Requests{MilliCPU: 500}}}},
		},
		{
			name: "a's placeholder being deleted: no room on a",
			change: func() {
				if err := a.RemovePod(klog.Background(), deleting); err != nil {
					t.Fatal(err)
				}
				a.AddPod(deleting)
			},
			hosting: 1, scanned: 1,
			rooms: map[string][]PlaceholderRoom{"a": nil},
		},
		{
			name:    "node c added: a longer list is counted afresh, from cached rooms",
			change:  func() { list = []fwk.NodeInfo{a, b, gone, c} },
			hosting: 2, scanned: 1,
			rooms: map[string][]PlaceholderRoom{"c": {{Priority: -5, Requests: Requests{MilliCPU: 2000}}}},
		},
		{
			name:    "node b removed",
			change:  func() { list = []fwk.NodeInfo{a, gone, c} },
			hosting: 1, scanned: 0,
		},
		{
			name: "c's placeholder preempted",
			change: func() {
				if err := c.RemovePod(klog.Background(), placeholderPod("ph-c", "c", "2", -5)); err != nil {
					t.Fatal(err)
				}
			},
			hosting: 0, scanned: 0,
			rooms: map[string][]PlaceholderRoom{"c": nil},
		},
	}
	for _, step := range steps {
		step.change()
		scanned = 0
		if got := x.HostingNodes(list); got != step.hosting {
			t.Errorf("%s: HostingNodes = %d, want %d", step.name, got, step.hosting)
		}
		if scanned != step.scanned {
			t.Errorf("%s: the rule looked at %d pods, want %d", step.name, scanned, step.scanned)
		}
		for _, ni := range list {
			if ni.Node() == nil {
				continue
			}
			want, ok := step.rooms[ni.Node().Name]
			if !ok {
				continue
			}
			got := x.Rooms(ni)
			if len(got) != len(want) || (len(want) > 0 && got[0] != want[0]) {
				t.Errorf("%s: Rooms(%s) = %v, want %v", step.name, ni.Node().Name, got, want)
			}
			if x.Hosts(ni) != (len(want) > 0) {
				t.Errorf("%s: Hosts(%s) = %v, want %v", step.name, ni.Node().Name, x.Hosts(ni), len(want) > 0)
			}
		}
		if scanned != step.scanned {
			t.Errorf("%s: Rooms and Hosts looked at pods again (%d in all): they must come from the cache", step.name, scanned)
		}
	}
}

// TestPlaceholderIndexWithoutRule: a profile without placeholder preemption has no index, and
// no placeholders anywhere.
func TestPlaceholderIndexWithoutRule(t *testing.T) {
	x := NewPlaceholderIndex(nil)
	if x != nil {
		t.Fatal("NewPlaceholderIndex(nil) built an index")
	}
	a := nodeInfoOf("a", placeholderPod("ph-a", "a", "1", -10))
	if x.Rooms(a) != nil || x.Hosts(a) || x.HostingNodes([]fwk.NodeInfo{a}) != 0 {
		t.Error("a nil index reported placeholders")
	}
}
