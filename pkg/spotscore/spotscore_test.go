package spotscore

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedulermetrics "k8s.io/kubernetes/pkg/scheduler/metrics"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/profilestate"
	"github.com/spot-scheduler/spot-scheduler/pkg/reclaimhistory"
)

var rsKind = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}

const (
	spotLabel     = "karpenter.sh/capacity-type"
	poolLabel     = "karpenter.sh/nodepool"
	itnTaint      = "aws-node-termination-handler/spot-itn"
	burstTaintKey = "virtual-kubelet.io/provider"
)

func spotNode(name, pool string) *st.NodeWrapper {
	return st.MakeNode().Name(name).Label(spotLabel, "spot").Label(poolLabel, pool)
}

func onDemandNode(name string) *st.NodeWrapper { return st.MakeNode().Name(name) }

func reservedNode(name string) *st.NodeWrapper {
	return st.MakeNode().Name(name).Label(spotLabel, "reserved")
}

func burstNode(name string) *st.NodeWrapper {
	return st.MakeNode().Name(name).Taints([]v1.Taint{{Key: burstTaintKey, Effect: v1.TaintEffectNoSchedule}})
}

func atRisk(n *st.NodeWrapper) *st.NodeWrapper {
	return n.Taints(append(n.Spec.Taints, v1.Taint{Key: itnTaint, Effect: v1.TaintEffectPreferNoSchedule}))
}

func rawArgs(json string) runtime.Object {
	return &runtime.Unknown{ContentType: runtime.ContentTypeJSON, Raw: []byte(json)}
}

// scoreAll runs SpotScore's PreFilter, PreScore and Score over nodes as the framework would.
func scoreAll(t *testing.T, args runtime.Object, pod *v1.Pod, nodes []*v1.Node, existing []*v1.Pod) map[string]int64 {
	t.Helper()
	scores, _ := scoreAllWith(t, args, pod, nodes, existing, nil)
	return scores
}

// scoreAllWith is scoreAll with a reclaim history (nil: none); it also returns the cycle
// state after Score.
func scoreAllWith(t *testing.T, args runtime.Object, pod *v1.Pod, nodes []*v1.Node, existing []*v1.Pod, reclaims capacity.Reclaims) (map[string]int64, fwk.CycleState) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	snapshot := cache.NewSnapshot(existing, nodes)
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil, frameworkruntime.WithSnapshotSharedLister(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, args, fh)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	pl := p.(*SpotScore)
	if reclaims != nil {
		pl.shared = profilestate.New()
		pl.shared.SetReclaims(fh, reclaimhistory.Fixed(reclaims))
	}
	state := framework.NewCycleState()
	// The scheduler hands PreFilter every node of the snapshot, with its pods.
	nodeInfos, err := snapshot.NodeInfos().List()
	if err != nil {
		t.Fatal(err)
	}
	if _, status := pl.PreFilter(ctx, state, pod, nodeInfos); !status.IsSuccess() {
		t.Fatalf("PreFilter: %v", status)
	}
	// Only nodes that exist pass the filters: a NodeInfo without a node (pods bound to a node
	// that is gone) is never feasible.
	var feasible []fwk.NodeInfo
	for _, ni := range nodeInfos {
		if ni.Node() != nil {
			feasible = append(feasible, ni)
		}
	}
	nodeInfos = feasible
	if status := pl.PreScore(ctx, state, pod, nodeInfos); !status.IsSuccess() {
		t.Fatalf("PreScore: %v", status)
	}
	scores := map[string]int64{}
	for _, ni := range nodeInfos {
		s, status := pl.Score(ctx, state, pod, ni)
		if !status.IsSuccess() {
			t.Fatalf("Score(%s): %v", ni.Node().Name, status)
		}
		if s < 0 || s > framework.MaxNodeScore {
			t.Fatalf("Score(%s) = %d, outside [0, %d]", ni.Node().Name, s, framework.MaxNodeScore)
		}
		scores[ni.Node().Name] = s
	}
	return scores, state
}

// bestFirst returns node names best first; ties keep the order of nodes.
func bestFirst(scores map[string]int64, nodes []*v1.Node) []string {
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && scores[names[j]] > scores[names[j-1]]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	return names
}

func TestScoreOrder(t *testing.T) {
	pod := st.MakePod().Name("p").Namespace("ns").UID("p").Obj()
	avoid := st.MakePod().Name("p").Namespace("ns").UID("p").Annotation("spot-scheduler.io/avoid-spot", "true").Obj()
	tests := []struct {
		name  string
		pod   *v1.Pod
		nodes []*v1.Node
		want  []string // best first
	}{
		{
			name:  "tiers in default order",
			pod:   pod,
			nodes: []*v1.Node{burstNode("burst").Obj(), onDemandNode("od").Obj(), spotNode("spot", "a").Obj(), reservedNode("reserved").Obj()},
			want:  []string{"reserved", "spot", "od", "burst"},
		},
		{
			name:  "at-risk spot below healthy burst",
			pod:   pod,
			nodes: []*v1.Node{atRisk(spotNode("spot-noticed", "a")).Obj(), burstNode("burst").Obj(), onDemandNode("od").Obj()},
			want:  []string{"od", "burst", "spot-noticed"},
		},
		{
			name:  "at-risk nodes keep tier order among themselves",
			pod:   pod,
			nodes: []*v1.Node{atRisk(onDemandNode("od")).Obj(), atRisk(spotNode("spot", "a")).Obj()},
			want:  []string{"spot", "od"},
		},
		{
			name:  "cordoned node is at risk",
			pod:   pod,
			nodes: []*v1.Node{spotNode("spot-cordoned", "a").Unschedulable(true).Obj(), onDemandNode("od").Obj()},
			want:  []string{"od", "spot-cordoned"},
		},
		{
			name:  "avoid-spot ranks spot below on-demand, above burst",
			pod:   avoid,
			nodes: []*v1.Node{spotNode("spot", "a").Obj(), burstNode("burst").Obj(), onDemandNode("od").Obj(), reservedNode("reserved").Obj()},
			want:  []string{"reserved", "od", "spot", "burst"},
		},
		{
			name:  "avoid-spot=TRUE is true",
			pod:   st.MakePod().Name("p").Namespace("ns").UID("p").Annotation("spot-scheduler.io/avoid-spot", "TRUE").Obj(),
			nodes: []*v1.Node{spotNode("spot", "a").Obj(), onDemandNode("od").Obj()},
			want:  []string{"od", "spot"},
		},
		{
			name:  "avoid-spot=False is false",
			pod:   st.MakePod().Name("p").Namespace("ns").UID("p").Annotation("spot-scheduler.io/avoid-spot", "False").Obj(),
			nodes: []*v1.Node{spotNode("spot", "a").Obj(), onDemandNode("od").Obj()},
			want:  []string{"spot", "od"},
		},
		{
			name:  "avoid-spot=yes is unreadable: avoid (the cautious reading)",
			pod:   st.MakePod().Name("p").Namespace("ns").UID("p").Annotation("spot-scheduler.io/avoid-spot", "yes").Obj(),
			nodes: []*v1.Node{spotNode("spot", "a").Obj(), onDemandNode("od").Obj()},
			want:  []string{"od", "spot"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scores := scoreAll(t, nil, tc.pod, tc.nodes, nil)
			got := bestFirst(scores, tc.nodes)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ranking (-want +got): %s\nscores: %v", diff, scores)
			}
			for i := 1; i < len(got); i++ {
				if scores[got[i-1]] == scores[got[i]] {
					t.Errorf("%s and %s tie at %d; tiers must never tie", got[i-1], got[i], scores[got[i]])
				}
			}
		})
	}
}

func TestScoreSpread(t *testing.T) {
	owned := func(name string) *st.PodWrapper {
		return st.MakePod().Namespace("ns").Name(name).UID(name).OwnerReference("web-abc", rsKind)
	}
	pod := owned("new").Obj()
	nodes := []*v1.Node{spotNode("a-1", "a").Obj(), spotNode("a-2", "a").Obj(), spotNode("b-1", "b").Obj(), spotNode("c-1", "c").Obj(), onDemandNode("od").Obj()}
	tests := []struct {
		name     string
		existing []*v1.Pod
		args     runtime.Object
		check    func(t *testing.T, s map[string]int64)
	}{
		{
			name:     "pool a holds two replicas on two nodes: b and c win, a's nodes tie",
			existing: []*v1.Pod{owned("r1").Node("a-1").Obj(), owned("r2").Node("a-2").Obj()},
			check: func(t *testing.T, s map[string]int64) {
				if !(s["b-1"] == s["c-1"] && s["b-1"] > s["a-1"] && s["a-1"] == s["a-2"]) {
					t.Errorf("want b-1 = c-1 > a-1 = a-2, got %v", s)
				}
			},
		},
		{
			name:     "other workloads do not count",
			existing: []*v1.Pod{st.MakePod().Namespace("ns").Name("x").UID("x").OwnerReference("other", rsKind).Node("b-1").Obj()},
			check: func(t *testing.T, s map[string]int64) {
				if !(s["a-1"] == s["b-1"] && s["b-1"] == s["c-1"]) {
					t.Errorf("want all spot pools equal, got %v", s)
				}
			},
		},
		{
			name:     "a crowded spot pool still beats on-demand",
			existing: []*v1.Pod{owned("r1").Node("a-1").Obj(), owned("r2").Node("a-1").Obj(), owned("r3").Node("a-1").Obj()},
			check: func(t *testing.T, s map[string]int64) {
				if s["a-1"] <= s["od"] {
					t.Errorf("crowded spot pool %d must still beat on-demand %d", s["a-1"], s["od"])
				}
			},
		},
		{
			name:     "spreadWeight 0 turns spreading off",
			existing: []*v1.Pod{owned("r1").Node("a-1").Obj()},
			args:     rawArgs(`{"spreadWeight": 0}`),
			check: func(t *testing.T, s map[string]int64) {
				if s["a-1"] != s["b-1"] {
					t.Errorf("want no spread bonus, got %v", s)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, scoreAll(t, tc.args, pod, nodes, tc.existing))
		})
	}
}

// TestSpreadCountsFollowTheSnapshot: one plugin over successive cycles (its per-node counts
// are cached by node generation) sees replicas arrive, move and leave.
func TestSpreadCountsFollowTheSnapshot(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pl := newTestPlugin(ctx, t, nil) // default args
	owned := func(name, node string) *v1.Pod {
		return st.MakePod().Namespace("ns").Name(name).UID(name).OwnerReference("web-abc", rsKind).Node(node).Obj()
	}
	nodes := []*v1.Node{spotNode("a-1", "a").Obj(), spotNode("b-1", "b").Obj()}
	pod := st.MakePod().Namespace("ns").Name("new").UID("new").OwnerReference("web-abc", rsKind).Obj()
	poolA, poolB := pl.model.Classify(nodes[0]).Pool, pl.model.Classify(nodes[1]).Pool
	for _, step := range []struct {
		name         string
		pods         []*v1.Pod
		wantA, wantB int
	}{
		{"two replicas on a", []*v1.Pod{owned("r1", "a-1"), owned("r2", "a-1")}, 2, 0},
		{"one moved to b", []*v1.Pod{owned("r1", "a-1"), owned("r2", "b-1")}, 1, 1},
		{"a third joined b", []*v1.Pod{owned("r1", "a-1"), owned("r2", "b-1"), owned("r3", "b-1")}, 1, 2},
		{"all gone", nil, 0, 0},
	} {
		nodeInfos, err := cache.NewSnapshot(step.pods, nodes).NodeInfos().List()
		if err != nil {
			t.Fatal(err)
		}
		state := framework.NewCycleState()
		if _, status := pl.PreFilter(ctx, state, pod, nodeInfos); !status.IsSuccess() {
			t.Fatalf("%s: PreFilter: %v", step.name, status)
		}
		s, err := readState[*preFilterState](state, preFilterStateKey)
		if err != nil {
			t.Fatal(err)
		}
		if s.podsPerPool[poolA] != step.wantA || s.podsPerPool[poolB] != step.wantB {
			t.Errorf("%s: pods per pool %v, want %s=%d %s=%d", step.name, s.podsPerPool, poolA, step.wantA, poolB, step.wantB)
		}
	}
}

// TestSpreadCountsFollowInPlaceChanges: the scheduler keeps one snapshot and changes its
// NodeInfos in place (a pod bound, a pod gone, a node relabelled), and the node list itself
// when nodes come and go. The workload counts, kept up to date from the nodes that changed,
// must equal the counts of the list handed in at every cycle.
func TestSpreadCountsFollowInPlaceChanges(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pl := newTestPlugin(ctx, t, nil) // default args
	owned := func(name, owner string) *v1.Pod {
		return st.MakePod().Namespace("ns").Name(name).UID(name).OwnerReference(owner, rsKind).Obj()
	}
	nodeInfo := func(n *v1.Node, pods ...*v1.Pod) *framework.NodeInfo {
		ni := framework.NewNodeInfo(pods...)
		ni.SetNode(n)
		return ni
	}
	a := nodeInfo(spotNode("a-1", "a").Obj(), owned("r1", "web-abc"), owned("o1", "other"))
	b := nodeInfo(spotNode("b-1", "b").Obj())
	c := nodeInfo(spotNode("c-1", "c").Obj(), owned("r2", "web-abc"))
	list := []fwk.NodeInfo{a, b, c}
	pool := func(name string) string { return pl.model.Classify(spotNode(name+"-1", name).Obj()).Pool }
	pod := owned("new", "web-abc")
	steps := []struct {
		name   string
		change func()
		want   map[string]int // pool letter -> web's pods
	}{
		{"first cycle", func() {}, map[string]int{"a": 1, "c": 1}},
		{"nothing changed", func() {}, map[string]int{"a": 1, "c": 1}},
		{"a replica bound on b", func() { b.AddPod(owned("r3", "web-abc")) }, map[string]int{"a": 1, "b": 1, "c": 1}},
		{"another workload's pod left a", func() {
			if err := a.RemovePod(klog.Background(), owned("o1", "other")); err != nil {
				t.Fatal(err)
			}
		}, map[string]int{"a": 1, "b": 1, "c": 1}},
		{"c relabelled into pool b", func() { c.SetNode(spotNode("c-1", "b").Obj()) }, map[string]int{"a": 1, "b": 2}},
		{"node a gone from the list", func() { list = []fwk.NodeInfo{b, c} }, map[string]int{"b": 2}},
		{"a NodeInfo without its node", func() { list = []fwk.NodeInfo{b, c, framework.NewNodeInfo(owned("r4", "web-abc"))} }, map[string]int{"b": 2}},
		{"the replica on b gone", func() {
			if err := b.RemovePod(klog.Background(), owned("r3", "web-abc")); err != nil {
				t.Fatal(err)
			}
		}, map[string]int{"b": 1}},
	}
	for _, step := range steps {
		step.change()
		state := framework.NewCycleState()
		if _, status := pl.PreFilter(ctx, state, pod, list); !status.IsSuccess() {
			t.Fatalf("%s: PreFilter: %v", step.name, status)
		}
		s, err := readState[*preFilterState](state, preFilterStateKey)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		for letter, n := range step.want {
			want[pool(letter)] = n
		}
		if diff := cmp.Diff(want, s.podsPerPool); diff != "" {
			t.Errorf("%s: pods per pool (-want +got):\n%s", step.name, diff)
		}
	}
}

// TestPodsBoundToAGoneNode: after a cloud deletes a reclaimed node, its pods stay bound to it
// until the pod garbage collector removes them, and a snapshot built from pods and nodes holds
// a NodeInfo with those pods and no node. SpotScore must neither crash on it nor count its pods
// in any pool.
func TestPodsBoundToAGoneNode(t *testing.T) {
	args := rawArgs(`{"spreadWeight": 50}`)
	pod := st.MakePod().Name("p").Namespace("ns").UID("p").OwnerReference("web", rsKind).Obj()
	nodes := []*v1.Node{spotNode("a-1", "a").Obj(), spotNode("b-1", "b").Obj()}
	existing := []*v1.Pod{
		st.MakePod().Name("w1").Namespace("ns").UID("w1").OwnerReference("web", rsKind).Node("b-1").Obj(),
		st.MakePod().Name("w2").Namespace("ns").UID("w2").OwnerReference("web", rsKind).Node("gone").Obj(),
		st.MakePod().Name("w3").Namespace("ns").UID("w3").OwnerReference("web", rsKind).Node("gone").Obj(),
	}
	scores := scoreAll(t, args, pod, nodes, existing)
	if got := bestFirst(scores, nodes); got[0] != "a-1" {
		t.Errorf("ranking %v: pool a holds none of the workload's running pods and must come first (scores %v)", got, scores)
	}
	if len(scores) != 2 {
		t.Errorf("scores %v, want exactly the two nodes that exist", scores)
	}
}

// TestScoreOutsidePreScoreCandidates: Score of a node PreScore did not see (a caller scoring
// other nodes than it pre-scored) is computed on the spot, equal to the pre-scored value.
func TestScoreOutsidePreScoreCandidates(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	pl := newTestPlugin(ctx, t, rawArgs(`{"spreadWeight": 0}`))
	pod := st.MakePod().Namespace("ns").Name("p").UID("p").Obj()
	nodeInfos, err := cache.NewSnapshot(nil, []*v1.Node{spotNode("a-1", "a").Obj(), onDemandNode("od").Obj()}).NodeInfos().List()
	if err != nil {
		t.Fatal(err)
	}
	scoreWith := func(candidates []fwk.NodeInfo, ni fwk.NodeInfo) int64 {
		state := framework.NewCycleState()
		if _, status := pl.PreFilter(ctx, state, pod, nodeInfos); !status.IsSuccess() {
			t.Fatal(status)
		}
		if status := pl.PreScore(ctx, state, pod, candidates); !status.IsSuccess() {
			t.Fatal(status)
		}
		score, status := pl.Score(ctx, state, pod, ni)
		if !status.IsSuccess() {
			t.Fatal(status)
		}
		return score
	}
	got := map[string]int64{}
	for i, ni := range nodeInfos {
		pre, direct := scoreWith(nodeInfos, ni), scoreWith([]fwk.NodeInfo{nodeInfos[1-i]}, ni)
		if pre != direct {
			t.Errorf("%s: pre-scored %d, scored outside the candidates %d", ni.Node().Name, pre, direct)
		}
		got[ni.Node().Name] = direct
	}
	if got["a-1"] <= got["od"] {
		t.Errorf("scores %v: want spot above on-demand", got)
	}
}

func TestScoreSpreadByLabelsWithoutOwner(t *testing.T) {
	bare := func(name, app string) *st.PodWrapper {
		return st.MakePod().Namespace("ns").Name(name).UID(name).Label("app", app)
	}
	nodes := []*v1.Node{spotNode("a-1", "a").Obj(), spotNode("b-1", "b").Obj()}
	s := scoreAll(t, nil, bare("new", "web").Obj(), nodes, []*v1.Pod{bare("old", "web").Node("a-1").Obj(), bare("x", "db").Node("b-1").Obj()})
	if s["b-1"] <= s["a-1"] {
		t.Errorf("pool b (no web pod) should beat pool a, got %v", s)
	}
}

func TestNewRejectsBadArgs(t *testing.T) {
	tests := []struct {
		args    string
		wantErr string
	}{
		{`{"tiers": []}`, "pluginConfig[SpotScore].args.tiers: Required value"},
		{`{"spreadWeight": -1}`, "pluginConfig[SpotScore].args.spreadWeight: Invalid value: -1"},
		{`{"tiers": [{"name": "spot", "nodeSelectors": [{"matchExpressions": [{"key": "a", "operator": "Like"}]}]}, {"name": "on-demand"}]}`,
			`pluginConfig[SpotScore].args.tiers[0].nodeSelectors[0].matchExpressions[0].operator: Unsupported value: "Like"`},
		{`{"defaultTier": "cheap"}`, `pluginConfig[SpotScore].args.defaultTier: Unsupported value: "cheap"`},
		{`{"bogus": 1}`, `unknown field "bogus"`},
		{`{"kind": "OtherArgs"}`, `pluginConfig[SpotScore].args.kind: Unsupported value: "OtherArgs": supported values: "SpotScoreArgs"`},
	}
	for _, tc := range tests {
		t.Run(tc.args, func(t *testing.T) {
			_, err := New(context.Background(), rawArgs(tc.args), nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// fakeProfile is the part of a framework the start-up check reads.
type fakeProfile struct {
	framework.Handle
	plugins *config.Plugins
	pct     *int32
}

func (f fakeProfile) ProfileName() string              { return "spot-scheduler" }
func (f fakeProfile) ListPlugins() *config.Plugins     { return f.plugins }
func (f fakeProfile) PercentageOfNodesToScore() *int32 { return f.pct }

// ClientSet: none (the reclaim history is not read without one).
func (f fakeProfile) ClientSet() clientset.Interface { return nil }

func TestProfileCheck(t *testing.T) {
	p, err := New(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pl := p.(*SpotScore)
	// Default model: 4 tiers, 8 bands of 12; spread uses 6, the gap is 6.
	if got := pl.RequiredWeight(13); got != 13*100/6+1 {
		t.Fatalf("RequiredWeight(13) = %d, want %d", got, 13*100/6+1)
	}
	defaults := func(spotWeight int32) *config.Plugins {
		return &config.Plugins{Score: config.PluginSet{Enabled: []config.Plugin{
			{Name: "TaintToleration", Weight: 3}, {Name: "NodeAffinity", Weight: 2}, {Name: "NodeResourcesFit", Weight: 1},
			{Name: "PodTopologySpread", Weight: 2}, {Name: "InterPodAffinity", Weight: 2}, {Name: "NodeResourcesBalancedAllocation", Weight: 1},
			{Name: "ImageLocality", Weight: 1}, {Name: "VolumeBinding", Weight: 1}, {Name: Name, Weight: spotWeight},
		}}}
	}
	withSearch := func(p *config.Plugins) *config.Plugins {
		p.PreFilter.Enabled = []config.Plugin{{Name: "NodeResourcesFit"}, {Name: Name}}
		p.Filter.Enabled = []config.Plugin{{Name: "NodeResourcesFit"}, {Name: Name}}
		return p
	}
	tests := []struct {
		name    string
		profile fakeProfile
		wantErr string
	}{
		{"enough weight", fakeProfile{plugins: defaults(217), pct: ptr.To[int32](100)}, ""},
		{"one short", fakeProfile{plugins: defaults(216), pct: ptr.To[int32](100)}, "needs a weight of at least 217"},
		{"sampling without the tier search", fakeProfile{plugins: defaults(1000), pct: ptr.To[int32](50)}, "enable SpotScore at preFilter and filter"},
		{"sampling default without the tier search", fakeProfile{plugins: defaults(1000)}, "enable SpotScore at preFilter and filter"},
		{"sampling with the tier search", fakeProfile{plugins: withSearch(defaults(1000))}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl.handle = tc.profile
			_, err := pl.EventsToRegister(context.Background())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("EventsToRegister: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("EventsToRegister error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestStrictOrderAgainstAnyOtherScores(t *testing.T) {
	// With the required weight, the worst-placed node of a better band still beats the best
	// node of the next band when every other plugin gives the worse band its maximum.
	p, err := New(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pl := p.(*SpotScore)
	const others = 13
	w := pl.RequiredWeight(others)
	for band := 0; band+1 < pl.ranker.NumBands(); band++ {
		worstOfBetter := w * ((int64(pl.ranker.NumBands())-1-int64(band))*pl.bandWidth + 0)
		bestOfWorse := w*((int64(pl.ranker.NumBands())-2-int64(band))*pl.bandWidth+pl.spreadRange) + others*framework.MaxNodeScore
		if worstOfBetter <= bestOfWorse {
			t.Fatalf("band %d: %d <= %d", band, worstOfBetter, bestOfWorse)
		}
	}
}

func TestQueueingHints(t *testing.T) {
	logger, _ := ktesting.NewTestContext(t)
	p, err := New(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pl := p.(*SpotScore)
	pod := st.MakePod().Name("p").Obj()
	avoid := st.MakePod().Name("p").Annotation("spot-scheduler.io/avoid-spot", "true").Obj()
	cpu := func(n *st.NodeWrapper, c string) *st.NodeWrapper {
		return n.Capacity(map[v1.ResourceName]string{v1.ResourceCPU: c})
	}
	tests := []struct {
		name     string
		pod      *v1.Pod
		old, new *v1.Node
		want     fwk.QueueingHint
	}{
		{"healthy node added", pod, nil, spotNode("n", "a").Obj(), fwk.Queue},
		// A pod that fits nowhere else fits an at-risk node.
		{"at-risk node added", pod, nil, atRisk(spotNode("n", "a")).Obj(), fwk.Queue},
		{"interruption notice cleared", pod, atRisk(spotNode("n", "a")).Obj(), spotNode("n", "a").Obj(), fwk.Queue},
		{"interruption notice arrived", pod, spotNode("n", "a").Obj(), atRisk(spotNode("n", "a")).Obj(), fwk.QueueSkip},
		{"on-demand node relabelled spot", pod, onDemandNode("n").Obj(), spotNode("n", "a").Obj(), fwk.Queue},
		{"relabelled: node affinity may match now", avoid, spotNode("n", "a").Obj(), spotNode("n", "a").Label("x", "y").Obj(), fwk.Queue},
		{"allocatable grew", pod, cpu(spotNode("n", "a"), "2").Obj(), cpu(spotNode("n", "a"), "4").Obj(), fwk.Queue},
		{"allocatable shrank", pod, cpu(spotNode("n", "a"), "4").Obj(), cpu(spotNode("n", "a"), "2").Obj(), fwk.QueueSkip},
		{"taint removed", pod, burstNode("n").Obj(), onDemandNode("n").Obj(), fwk.Queue},
		{"taint added", pod, onDemandNode("n").Obj(), onDemandNode("n").Taints([]v1.Taint{{Key: "x", Effect: v1.TaintEffectNoSchedule}}).Obj(), fwk.QueueSkip},
		{"uncordoned", pod, onDemandNode("n").Unschedulable(true).Obj(), onDemandNode("n").Obj(), fwk.Queue},
		{"cordoned", pod, onDemandNode("n").Obj(), onDemandNode("n").Unschedulable(true).Obj(), fwk.QueueSkip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var old interface{}
			if tc.old != nil {
				old = tc.old
			}
			got, err := pl.mayFitAfterNodeChange(logger, tc.pod, old, tc.new)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("hint = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQueueingHintPodDeleted(t *testing.T) {
	logger, _ := ktesting.NewTestContext(t)
	pl, _ := pluginWithCachedNodes(t, spotNode("healthy", "a").Obj(), atRisk(spotNode("noticed", "a")).Obj())
	pending := st.MakePod().Name("pending").Obj()
	tests := []struct {
		name    string
		deleted *v1.Pod
		want    fwk.QueueingHint
	}{
		{"left a healthy node", st.MakePod().Name("d").Node("healthy").Obj(), fwk.Queue},
		{"left an at-risk node", st.MakePod().Name("d").Node("noticed").Obj(), fwk.Queue},
		{"was never bound", st.MakePod().Name("d").Obj(), fwk.QueueSkip},
		{"node already gone", st.MakePod().Name("d").Node("gone").Obj(), fwk.QueueSkip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pl.mayFitAfterPodDelete(logger, pending, tc.deleted, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("hint = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPostBindCountsPerTier(t *testing.T) {
	pl, ctx := pluginWithCachedNodes(t, spotNode("spot-1", "a").Obj(), atRisk(spotNode("spot-noticed", "a")).Obj(), onDemandNode("od-1").Obj())
	value := func(tier, risk string) float64 {
		v, err := testutil.GetCounterMetricValue(podsScheduled.WithLabelValues(tier, risk))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	spotBefore, riskBefore, odBefore := value("spot", "false"), value("spot", "true"), value("on-demand", "false")
	pod := st.MakePod().Name("p").Obj()
	for _, n := range []string{"spot-1", "spot-1", "spot-noticed", "od-1", "gone"} {
		pl.PostBind(ctx, nil, pod, n)
	}
	if got := value("spot", "false") - spotBefore; got != 2 {
		t.Errorf("spot bindings %v, want 2", got)
	}
	if got := value("spot", "true") - riskBefore; got != 1 {
		t.Errorf("at-risk spot bindings %v, want 1", got)
	}
	if got := value("on-demand", "false") - odBefore; got != 1 {
		t.Errorf("on-demand bindings %v, want 1", got)
	}
}

func TestMain(m *testing.M) {
	// The framework's parallelizer records into the scheduler's metrics.
	schedulermetrics.Register()
	os.Exit(m.Run())
}

// pluginWithCachedNodes builds the plugin on a framework whose node informer cache holds nodes
// (what hints and PostBind read, outside scheduling cycles).
func pluginWithCachedNodes(t *testing.T, nodes ...*v1.Node) (*SpotScore, context.Context) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	indexer := factory.Core().V1().Nodes().Informer().GetIndexer()
	for _, n := range nodes {
		if err := indexer.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil, frameworkruntime.WithInformerFactory(factory))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, nil, fh)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*SpotScore), ctx
}
