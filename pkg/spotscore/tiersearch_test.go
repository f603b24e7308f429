package spotscore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/spot-scheduler/spot-scheduler/pkg/profilestate"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
)

// nominator is a PodNominator holding fixed nominations.
type nominator map[string][]fwk.PodInfo

func (n nominator) AddNominatedPod(klog.Logger, fwk.PodInfo, *framework.NominatingInfo) {}
func (n nominator) DeleteNominatedPodIfExists(*v1.Pod)                                  {}
func (n nominator) UpdateNominatedPod(klog.Logger, *v1.Pod, fwk.PodInfo)                {}
func (n nominator) NominatedPodsForNode(node string) []fwk.PodInfo                      { return n[node] }

const placeholderLabel = "spot-scheduler.io/placeholder"

// newTestPlugin builds SpotScore with args (nil: defaults) on a framework with opts, in a
// profile registry whose placeholder rule is the label placeholderLabel.
func newTestPlugin(ctx context.Context, t *testing.T, args runtime.Object, opts ...frameworkruntime.Option) *SpotScore {
	t.Helper()
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	shared := profilestate.New()
	p, err := NewFactory(shared)(ctx, args, fh)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	shared.SetPlaceholderRule(fh, func(p *v1.Pod) bool { return p.Labels[placeholderLabel] == "true" })
	return p.(*SpotScore)
}

// searchFor runs SpotScore's PreFilter, tier search on, in a profile with the tier gate (the
// placeholder rule: label placeholderLabel), and returns the narrowed node names (nil: every
// node) and the tier search's state (nil: none written).
func searchFor(t *testing.T, pod *v1.Pod, nodes []*v1.Node, existing []*v1.Pod, nominated []*v1.Pod) ([]string, *tierSearchState) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	snapshot := cache.NewSnapshot(existing, nodes)
	nom := nominator{}
	for _, p := range nominated {
		pi, err := framework.NewPodInfo(p)
		if err != nil {
			t.Fatal(err)
		}
		nom[p.Status.NominatedNodeName] = append(nom[p.Status.NominatedNodeName], pi)
	}
	pl := newTestPlugin(ctx, t, nil, frameworkruntime.WithSnapshotSharedLister(snapshot), frameworkruntime.WithPodNominator(nom))
	pl.search = allChecks()
	nodeInfos, err := snapshot.NodeInfos().List()
	if err != nil {
		t.Fatal(err)
	}
	// In name order (a snapshot's is random), so that the scan's order is the test's.
	sort.Slice(nodeInfos, func(i, j int) bool { return nodeInfos[i].Node().Name < nodeInfos[j].Node().Name })
	state := framework.NewCycleState()
	result, status := pl.PreFilter(ctx, state, pod, nodeInfos)
	if !status.IsSuccess() {
		t.Fatalf("PreFilter: %v", status)
	}
	ts, _ := readState[*tierSearchState](state, tierSearchStateKey)
	if result.AllNodes() {
		return nil, ts
	}
	names := result.NodeNames.UnsortedList()
	sort.Strings(names)
	return names, ts
}

func cpuNode(n *st.NodeWrapper, cpu string) *v1.Node {
	return n.Capacity(map[v1.ResourceName]string{v1.ResourceCPU: cpu, v1.ResourceMemory: "64Gi", v1.ResourcePods: "110"}).Obj()
}

func cpuPod(name, cpu string) *st.PodWrapper {
	return st.MakePod().Namespace("apps").Name(name).UID(name).Req(map[v1.ResourceName]string{v1.ResourceCPU: cpu})
}

func boundPod(name, cpu, node string) *v1.Pod { return cpuPod(name, cpu).Node(node).Obj() }

func placeholderOn(name, cpu, node string) *v1.Pod {
	return cpuPod(name, cpu).Node(node).Label(placeholderLabel, "true").Priority(-10).Obj()
}

// TestTierSearchNarrowing: a pod whose constraints are all node-local is narrowed to the nodes
// of its best band that pass the node-local checks; placeholder room counts as free for pods
// that may preempt it.
func TestTierSearchNarrowing(t *testing.T) {
	spot1, spot2 := cpuNode(spotNode("spot-1", "a"), "4"), cpuNode(spotNode("spot-2", "b"), "4")
	od1, od2 := cpuNode(onDemandNode("od-1"), "4"), cpuNode(onDemandNode("od-2"), "4")
	burst := cpuNode(burstNode("burst-1"), "64")
	all := []*v1.Node{spot1, spot2, od1, od2, burst}
	fullSpot := []*v1.Pod{boundPod("f1", "4", "spot-1"), boundPod("f2", "4", "spot-2")}
	tolerateBurst := []v1.Toleration{{Key: burstTaintKey, Operator: v1.TolerationOpExists}}
	higher := cpuPod("nominated", "4").Priority(100).Obj()
	higher.Status.NominatedNodeName = "spot-1"
	tests := []struct {
		name      string
		pod       *v1.Pod
		nodes     []*v1.Node
		existing  []*v1.Pod
		nominated []*v1.Pod
		want      []string
		// wantPlaceholderRoom: narrowed to the nodes that fit once placeholders are preempted.
		wantPlaceholderRoom bool
	}{
		{name: "spot has room", pod: cpuPod("p", "1").Obj(), nodes: all, want: []string{"spot-1", "spot-2"}},
		{name: "only the spot nodes with room", pod: cpuPod("p", "1").Obj(), nodes: all, existing: fullSpot[:1], want: []string{"spot-2"}},
		{name: "the window goes on from the first fit, unchecked (the filters check)", pod: cpuPod("p", "1").Obj(), nodes: all,
			existing: fullSpot[1:], want: []string{"spot-1", "spot-2"}},
		{name: "spot full by resources: on-demand", pod: cpuPod("p", "1").Obj(), nodes: all, existing: fullSpot, want: []string{"od-1", "od-2"}},
		{name: "too big for spot and on-demand: burst, tolerated", pod: cpuPod("p", "8").Tolerations(tolerateBurst).Obj(), nodes: all, want: []string{"burst-1"}},
		{name: "burst taint not tolerated: fits nowhere, no narrowing", pod: cpuPod("p", "8").Obj(), nodes: all, want: nil},
		{name: "node selector for on-demand", pod: cpuPod("p", "1").NodeSelector(map[string]string{spotLabel: "on-demand"}).Obj(),
			nodes: []*v1.Node{spot1, cpuNode(onDemandNode("od-1").Label(spotLabel, "on-demand"), "4")}, want: []string{"od-1"}},
		{name: "required node affinity off spot", pod: cpuPod("p", "1").NodeAffinityNotIn(spotLabel, []string{"spot"}).Obj(),
			nodes: all, want: []string{"od-1", "od-2"}},
		{name: "pinned by node name", pod: cpuPod("p", "1").Node("od-2").Obj(), nodes: all, want: []string{"od-2"}},
		{name: "cordoned spot", pod: cpuPod("p", "1").Obj(), nodes: []*v1.Node{cpuNode(spotNode("spot-1", "a").Unschedulable(true), "4"), od1}, want: []string{"od-1"}},
		{name: "at-risk spot ranks below healthy on-demand", pod: cpuPod("p", "1").Obj(), nodes: []*v1.Node{cpuNode(atRisk(spotNode("spot-1", "a")), "4"), od1}, want: []string{"od-1"}},
		{name: "avoid-spot pod", pod: cpuPod("p", "1").Annotation("spot-scheduler.io/avoid-spot", "true").Obj(), nodes: all, want: []string{"od-1", "od-2"}},
		{name: "placeholder room on spot counts as free", pod: cpuPod("p", "2").Obj(), nodes: all,
			existing: []*v1.Pod{placeholderOn("ph-1", "4", "spot-1"), boundPod("f2", "4", "spot-2")}, want: []string{"spot-1"}, wantPlaceholderRoom: true},
		{name: "not for a pod that never preempts", pod: cpuPod("p", "2").PreemptionPolicy(v1.PreemptNever).Obj(), nodes: all,
			existing: []*v1.Pod{placeholderOn("ph-1", "4", "spot-1"), boundPod("f2", "4", "spot-2")}, want: []string{"od-1", "od-2"}},
		{name: "not for a placeholder", pod: cpuPod("p", "2").Label(placeholderLabel, "true").Obj(), nodes: all,
			existing: []*v1.Pod{placeholderOn("ph-1", "4", "spot-1"), boundPod("f2", "4", "spot-2")}, want: []string{"od-1", "od-2"}},
		{name: "not a placeholder of higher priority", pod: cpuPod("p", "2").Priority(-20).Obj(), nodes: all,
			existing: []*v1.Pod{placeholderOn("ph-1", "4", "spot-1"), boundPod("f2", "4", "spot-2")}, want: []string{"od-1", "od-2"}},
		{name: "a nominated pod of higher priority holds the room", pod: cpuPod("p", "1").Obj(), nodes: []*v1.Node{spot1, od1},
			nominated: []*v1.Pod{higher}, want: []string{"od-1"}},
		{name: "too many pods", pod: cpuPod("p", "1").Obj(),
			nodes:    []*v1.Node{spotNode("spot-1", "a").Capacity(map[v1.ResourceName]string{v1.ResourceCPU: "4", v1.ResourcePods: "1"}).Obj(), od1},
			existing: []*v1.Pod{boundPod("f1", "0", "spot-1")}, want: []string{"od-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ts := searchFor(t, tc.pod, tc.nodes, tc.existing, tc.nominated)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("narrowed nodes (-want +got): %s", diff)
			}
			if tc.want == nil {
				if ts != nil {
					t.Fatalf("no node fits, yet the tier search wrote its state: %+v", ts)
				}
				return
			}
			if ts == nil || !ts.narrowed {
				t.Fatalf("tier search state %+v, want narrowed", ts)
			}
			if ts.placeholderRoom != tc.wantPlaceholderRoom {
				t.Errorf("placeholderRoom = %v, want %v", ts.placeholderRoom, tc.wantPlaceholderRoom)
			}
		})
	}
}

// TestTierSearchExactForNonLocalPods: a pod whose fit depends on other nodes or on other pods
// is not narrowed: Filter finds its best band with every filter. The state lists, per band, the
// nodes passing the node-local checks.
func TestTierSearchExactForNonLocalPods(t *testing.T) {
	nodes := []*v1.Node{cpuNode(spotNode("spot-1", "a"), "4"), cpuNode(onDemandNode("od-1"), "4"), cpuNode(burstNode("burst-1"), "4")}
	zone := "topology.kubernetes.io/zone"
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	antiAffinityPod := cpuPod("anti", "0").Node("od-1").PodAntiAffinity(zone, &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}, st.PodAntiAffinityWithRequiredReq).Obj()
	tests := []struct {
		name     string
		pod      *v1.Pod
		existing []*v1.Pod
	}{
		{"required pod anti-affinity", cpuPod("p", "1").Label("app", "x").PodAntiAffinity(zone, sel, st.PodAntiAffinityWithRequiredReq).Obj(), nil},
		{"required pod affinity", cpuPod("p", "1").Label("app", "x").PodAffinity(zone, sel, st.PodAffinityWithRequiredReq).Obj(), nil},
		{"topology spread DoNotSchedule", cpuPod("p", "1").Label("app", "x").SpreadConstraint(1, zone, v1.DoNotSchedule, sel, nil, nil, nil, nil).Obj(), nil},
		{"host port", cpuPod("p", "1").HostPort(8080).Obj(), nil},
		{"persistent volume claim", cpuPod("p", "1").PVC("data").Obj(), nil},
		{"resource claim", cpuPod("p", "1").PodResourceClaims(v1.PodResourceClaim{Name: "gpu"}).Obj(), nil},
		{"extended resource", cpuPod("p", "1").Req(map[v1.ResourceName]string{"example.com/gpu": "1"}).Obj(), nil},
		{"an existing pod's anti-affinity selects it", cpuPod("p", "1").Label("app", "x").Obj(), []*v1.Pod{antiAffinityPod}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ts := searchFor(t, tc.pod, nodes, tc.existing, nil)
			if got != nil {
				t.Fatalf("narrowed to %v, want every node", got)
			}
			if ts == nil || ts.narrowed {
				t.Fatalf("tier search state %+v, want the exact search", ts)
			}
			var candidates []string
			for _, band := range ts.candidates {
				for _, ni := range band {
					candidates = append(candidates, ni.Node().Name)
				}
			}
			// The burst node's taint is not tolerated; the others pass, best band first.
			if diff := cmp.Diff([]string{"spot-1", "od-1"}, candidates); diff != "" {
				t.Errorf("candidates (-want +got): %s", diff)
			}
		})
	}
	// Local pods next to an anti-affinity that does not select them are still narrowed.
	if got, _ := searchFor(t, cpuPod("p", "1").Label("app", "y").Obj(), nodes, []*v1.Pod{antiAffinityPod}, nil); len(got) != 1 || got[0] != "spot-1" {
		t.Errorf("pod not selected by the existing anti-affinity narrowed to %v, want [spot-1]", got)
	}
}

// TestTierSearchSkipped: simulations and the tier gate's own checks get no narrowing.
func TestTierSearchSkipped(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	nodes := []*v1.Node{cpuNode(spotNode("spot-1", "a"), "4"), cpuNode(onDemandNode("od-1"), "4")}
	snapshot := cache.NewSnapshot(nil, nodes)
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil, frameworkruntime.WithSnapshotSharedLister(snapshot), frameworkruntime.WithPodNominator(nominator{}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, nil, fh)
	if err != nil {
		t.Fatal(err)
	}
	pl := p.(*SpotScore)
	nodeInfos, _ := snapshot.NodeInfos().List()
	for _, tc := range []struct {
		name  string
		setUp func(fwk.CycleState)
		on    bool
	}{
		{"mode without the tier search", func(s fwk.CycleState) { ranking.SetMode(s, ranking.NoTierSearch) }, true},
		{"not a scheduler profile (search off until the profile is checked)", func(fwk.CycleState) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl.search = searchConfig{}
			if tc.on {
				pl.search = allChecks()
			}
			state := framework.NewCycleState()
			tc.setUp(state)
			result, status := pl.PreFilter(ctx, state, cpuPod("p", "1").Obj(), nodeInfos)
			if !status.IsSuccess() || !result.AllNodes() {
				t.Fatalf("PreFilter = %v, %v; want every node", result, status)
			}
			if st := pl.Filter(ctx, state, cpuPod("p", "1").Obj(), nodeInfos[0]); !st.IsSuccess() {
				t.Fatalf("Filter = %v, want success", st)
			}
		})
	}
}

// TestSearchConfigFromProfile: a check is made only when its filter is in the profile, and
// narrowing only with SpotScore's PostFilter ahead of DefaultPreemption.
func TestSearchConfigFromProfile(t *testing.T) {
	defaults := []string{"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts", "NodeResourcesFit", Name, placeholderGate}
	tests := []struct {
		name        string
		filters     []string
		postFilters []string
		want        searchConfig
	}{
		{"shipped", defaults, []string{placeholderGate, Name, "DefaultPreemption"}, allChecks()},
		{"no PostFilter: exact search only", defaults, []string{placeholderGate, "DefaultPreemption"},
			searchConfig{on: true, nodeName: true, unschedulable: true, taints: true, affinity: true, resources: true, placeholders: true}},
		{"after DefaultPreemption: exact search only", defaults, []string{"DefaultPreemption", Name},
			searchConfig{on: true, nodeName: true, unschedulable: true, taints: true, affinity: true, resources: true, placeholders: true}},
		{"no TaintToleration, no gate", []string{"NodeResourcesFit", Name}, []string{Name},
			searchConfig{on: true, narrow: true, resources: true}},
		{"no SpotScore filter", []string{"NodeResourcesFit"}, []string{Name}, searchConfig{resources: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, searchConfigFor(tc.filters, tc.postFilters, placeholderGate), cmp.AllowUnexported(searchConfig{})); diff != "" {
				t.Errorf("(-want +got): %s", diff)
			}
		})
	}
}

// BenchmarkPreFilter1000Nodes is SpotScore's PreFilter (tier search included) for a pod of a
// 30-ReplicaSet workload on 1000 nodes (400 spot in 6 pools, 550 on-demand, 50 burst) running
// 3000 pods, the shape of the throughput benchmark.
func BenchmarkPreFilter1000Nodes(b *testing.B) {
	_, ctx := ktesting.NewTestContext(b)
	var nodes []*v1.Node
	var pods []*v1.Pod
	for i := 0; i < 1000; i++ {
		name := fmt.Sprintf("node-%04d", i)
		switch pct := i % 100; {
		case pct < 40:
			nodes = append(nodes, cpuNode(spotNode(name, fmt.Sprintf("spot-%d", i%6)), "32"))
		case pct < 95:
			nodes = append(nodes, cpuNode(onDemandNode(name), "32"))
		default:
			nodes = append(nodes, cpuNode(burstNode(name), "32"))
		}
	}
	for i := 0; i < 3000; i++ {
		pods = append(pods, cpuPod(fmt.Sprintf("p-%d", i), "500m").OwnerReference(fmt.Sprintf("rs-%d", i%30), rsKind).Node(nodes[i%400].Name).Obj())
	}
	snapshot := cache.NewSnapshot(pods, nodes)
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil, frameworkruntime.WithSnapshotSharedLister(snapshot), frameworkruntime.WithPodNominator(nominator{}))
	if err != nil {
		b.Fatal(err)
	}
	shared := profilestate.New()
	p, err := NewFactory(shared)(ctx, nil, fh)
	if err != nil {
		b.Fatal(err)
	}
	pl := p.(*SpotScore)
	nodeInfos, _ := snapshot.NodeInfos().List()
	pod := cpuPod("new", "500m").OwnerReference("rs-1", rsKind).Obj()
	for _, search := range []bool{false, true} {
		b.Run(fmt.Sprintf("tierSearch=%v", search), func(b *testing.B) {
			pl.search = searchConfig{}
			if search {
				pl.search = allChecks()
			}
			for i := 0; i < b.N; i++ {
				if _, status := pl.PreFilter(ctx, framework.NewCycleState(), pod, nodeInfos); !status.IsSuccess() {
					b.Fatal(status)
				}
			}
		})
	}
}

// TestTierSearchSampleSize: kube-scheduler's share of nodes to find feasible.
func TestTierSearchSampleSize(t *testing.T) {
	pct := func(p int32) *int32 { return &p }
	for _, tc := range []struct {
		percentage *int32
		nodes      int
		want       int
	}{
		{nil, 50, 50}, {nil, 250, 120}, {nil, 1000, 420}, {nil, 5000, 500}, {nil, 6000, 300},
		{pct(100), 5000, 5000}, {pct(10), 500, 100}, {pct(0), 1000, 420},
	} {
		if got := sampleSize(tc.percentage, tc.nodes); got != tc.want {
			t.Errorf("sampleSize(%v, %d) = %d, want %d", tc.percentage, tc.nodes, got, tc.want)
		}
	}
}

// TestTierSearchNarrowsToASample: the best band has more nodes than the profile would look at:
// the narrowing hands over a window of that many, from the first node where the pod fits, never
// the nodes found not to fit before it.
func TestTierSearchNarrowsToASample(t *testing.T) {
	var nodes []*v1.Node
	for i := 0; i < 250; i++ {
		nodes = append(nodes, cpuNode(spotNode(fmt.Sprintf("spot-%03d", i), "a"), "4"))
	}
	nodes = append(nodes, cpuNode(onDemandNode("od-1"), "4"))
	got, ts := searchFor(t, cpuPod("p", "1").Obj(), nodes, nil, nil)
	if want := sampleSize(nil, 251); len(got) != want || ts.placeholderRoom {
		t.Fatalf("narrowed to %d nodes (placeholder room: %v), want %d where the pod fits freely", len(got), ts.placeholderRoom, want)
	}
	for _, n := range got {
		if !strings.HasPrefix(n, "spot-") {
			t.Fatalf("narrowed to %s, not a spot node", n)
		}
	}
	// The first 200 of the 250 spot nodes full: the window starts at the first with room,
	// spot-200, and stops at the band's end, not going back to the full ones.
	var full []*v1.Pod
	for i, n := range nodes[:200] {
		full = append(full, boundPod(fmt.Sprintf("full-%d", i), "4", n.Name))
	}
	got, _ = searchFor(t, cpuPod("p", "1").Obj(), nodes, full, nil)
	if len(got) != 50 || got[0] != "spot-200" || got[49] != "spot-249" {
		t.Fatalf("first 200 spot nodes full: narrowed to %v, want spot-200 to spot-249", got)
	}
	// Placeholder room only: every node with such room, however many (preemption picks).
	var existing []*v1.Pod
	for i, n := range nodes[:250] {
		existing = append(existing, placeholderOn(fmt.Sprintf("ph-%d", i), "4", n.Name))
	}
	got, ts = searchFor(t, cpuPod("p", "1").Obj(), nodes, existing, nil)
	if len(got) != 250 || !ts.placeholderRoom {
		t.Fatalf("placeholder room: narrowed to %d nodes (placeholder room: %v), want all 250, by placeholder room", len(got), ts.placeholderRoom)
	}
}
