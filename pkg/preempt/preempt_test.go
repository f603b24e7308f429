package preempt

import (
	"context"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	clientsetfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	internalcache "k8s.io/kubernetes/pkg/scheduler/backend/cache"
	internalqueue "k8s.io/kubernetes/pkg/scheduler/backend/queue"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/defaultbinder"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/noderesources"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/queuesort"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedulermetrics "k8s.io/kubernetes/pkg/scheduler/metrics"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	tf "k8s.io/kubernetes/pkg/scheduler/testing/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/profilestate"
	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

func TestMain(m *testing.M) {
	schedulermetrics.Register()
	os.Exit(m.Run())
}

const (
	lowPriority  = int32(-10)
	highPriority = int32(1000)
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func spot(name string) *st.NodeWrapper {
	return st.MakeNode().Name(name).Label("karpenter.sh/capacity-type", "spot").Capacity(map[v1.ResourceName]string{v1.ResourceCPU: "4", v1.ResourcePods: "20"})
}

func onDemand(name string) *st.NodeWrapper {
	return st.MakeNode().Name(name).Capacity(map[v1.ResourceName]string{v1.ResourceCPU: "4", v1.ResourcePods: "20"})
}

func noticed(n *st.NodeWrapper) *st.NodeWrapper {
	return n.Taints([]v1.Taint{{Key: "aws-node-termination-handler/spot-itn", Effect: v1.TaintEffectPreferNoSchedule}})
}

// placeholder is a negative-priority pod on node requesting cpu, started age minutes after t0.
func placeholder(name, node, cpu string, startMinute int) *v1.Pod {
	p := st.MakePod().Name(name).Namespace("headroom").UID(name).Node(node).Priority(lowPriority).
		Req(map[v1.ResourceName]string{v1.ResourceCPU: cpu}).StartTime(metav1.NewTime(t0.Add(time.Duration(startMinute) * time.Minute))).Obj()
	return p
}

// labelledPlaceholder is a placeholder by label, with priority 0.
func labelledPlaceholder(name, node, cpu string) *v1.Pod {
	return st.MakePod().Name(name).Namespace("headroom").UID(name).Node(node).Priority(0).Label("spot-scheduler.io/placeholder", "true").
		Req(map[v1.ResourceName]string{v1.ResourceCPU: cpu}).StartTime(metav1.NewTime(t0)).Obj()
}

func realPod(name, node, cpu string, priority int32) *v1.Pod {
	return st.MakePod().Name(name).Namespace("apps").UID(name).Node(node).Priority(priority).
		Req(map[v1.ResourceName]string{v1.ResourceCPU: cpu}).StartTime(metav1.NewTime(t0)).Obj()
}

func preemptor(cpu string) *v1.Pod {
	return st.MakePod().Name("preemptor").Namespace("apps").UID("preemptor").Priority(highPriority).
		Req(map[v1.ResourceName]string{v1.ResourceCPU: cpu}).Obj()
}

func fitPlugin(ctx context.Context, _ runtime.Object, h framework.Handle) (framework.Plugin, error) {
	return noderesources.NewFit(ctx, &config.NodeResourcesFitArgs{ScoringStrategy: &config.ScoringStrategy{
		Type: config.LeastAllocated, Resources: []config.ResourceSpec{{Name: "cpu", Weight: 1}},
	}}, h, feature.Features{})
}

// env is a framework with NodeResourcesFit, SpotScore (default tiers) and the plugin under test.
type env struct {
	ctx context.Context
	fwk framework.Framework
	pl  *PlaceholderPreemption
	cs  *clientsetfake.Clientset
}

func newEnv(t *testing.T, args runtime.Object, nodes []*v1.Node, pods []*v1.Pod, pending *v1.Pod) *env {
	t.Helper()
	logger, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	objs := []runtime.Object{pending}
	for _, p := range pods {
		objs = append(objs, p)
	}
	for _, n := range nodes {
		objs = append(objs, n)
	}
	cs := clientsetfake.NewClientset(objs...)
	informerFactory := informers.NewSharedInformerFactory(cs, 0)
	podInformer := informerFactory.Core().V1().Pods().Informer()
	for _, p := range append(pods, pending) {
		if err := podInformer.GetStore().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	shared := profilestate.New()
	f, err := tf.NewFramework(ctx,
		[]tf.RegisterPluginFunc{
			tf.RegisterQueueSortPlugin(queuesort.Name, queuesort.New),
			tf.RegisterBindPlugin(defaultbinder.Name, defaultbinder.New),
			tf.RegisterPluginAsExtensions(noderesources.Name, fitPlugin, "Filter", "PreFilter"),
			tf.RegisterPluginAsExtensions(spotscore.Name, spotscore.NewFactory(shared), "PreFilter", "Score"),
		},
		"spot-scheduler",
		frameworkruntime.WithClientSet(cs),
		frameworkruntime.WithWaitingPods(frameworkruntime.NewWaitingPodsMap()),
		frameworkruntime.WithEventRecorder(&fakeRecorder{}),
		frameworkruntime.WithPodNominator(internalqueue.NewSchedulingQueue(nil, informerFactory)),
		frameworkruntime.WithSnapshotSharedLister(internalcache.NewSnapshot(pods, nodes)),
		frameworkruntime.WithInformerFactory(informerFactory),
		frameworkruntime.WithLogger(logger),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewFactory(shared)(ctx, args, f)
	if err != nil {
		t.Fatal(err)
	}
	return &env{ctx: ctx, fwk: f, pl: p.(*PlaceholderPreemption), cs: cs}
}

type fakeRecorder struct{}

func (fakeRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...interface{}) {
}

// decide runs the dry run and candidate selection exactly as PostFilter does, without acting.
func (e *env) decide(t *testing.T, pod *v1.Pod) (node string, victims []string) {
	t.Helper()
	state := framework.NewCycleState()
	if _, status, _ := e.fwk.RunPreFilterPlugins(e.ctx, state, pod); !status.IsSuccess() {
		t.Fatalf("PreFilter: %v", status)
	}
	nodeInfos, err := e.fwk.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		t.Fatal(err)
	}
	offset, n := e.pl.GetOffsetAndNumCandidates(int32(len(nodeInfos)))
	ctx := e.ctx
	evaluator := e.pl.evaluatorFor(pod, state)
	candidates, _, err := evaluator.DryRunPreemption(ctx, state, pod, nodeInfos, nil, offset, n)
	if err != nil {
		t.Fatal(err)
	}
	c := evaluator.SelectCandidate(ctx, candidates)
	if c == nil {
		return "", nil
	}
	for _, v := range c.Victims().Pods {
		victims = append(victims, v.Name)
	}
	// Victims come most important first; the set is what matters here.
	sort.Strings(victims)
	return c.Name(), victims
}

func TestNodeAndVictimOrder(t *testing.T) {
	tests := []struct {
		name        string
		nodes       []*v1.Node
		pods        []*v1.Pod
		preemptor   *v1.Pod
		wantNode    string
		wantVictims []string
	}{
		{
			name:  "spot beats on-demand even with more victims",
			nodes: []*v1.Node{onDemand("od").Obj(), spot("spot").Obj()},
			pods: []*v1.Pod{
				placeholder("od-p1", "od", "4", 0),
				placeholder("spot-p1", "spot", "2", 0), placeholder("spot-p2", "spot", "2", 0),
			},
			preemptor: preemptor("3"), wantNode: "spot", wantVictims: []string{"spot-p1", "spot-p2"},
		},
		{
			name:      "at-risk spot node after healthy on-demand",
			nodes:     []*v1.Node{noticed(spot("spot-noticed")).Obj(), onDemand("od").Obj()},
			pods:      []*v1.Pod{placeholder("a", "spot-noticed", "4", 0), placeholder("b", "od", "4", 0)},
			preemptor: preemptor("1"), wantNode: "od", wantVictims: []string{"b"},
		},
		{
			name:      "fewest victims within a tier",
			nodes:     []*v1.Node{spot("spot-a").Obj(), spot("spot-b").Obj()},
			pods:      []*v1.Pod{placeholder("a1", "spot-a", "2", 0), placeholder("a2", "spot-a", "2", 0), placeholder("b1", "spot-b", "4", 0)},
			preemptor: preemptor("3"), wantNode: "spot-b", wantVictims: []string{"b1"},
		},
		{
			name:      "least victim requests when counts tie",
			nodes:     []*v1.Node{spot("spot-a").Obj(), spot("spot-b").Obj()},
			pods:      []*v1.Pod{placeholder("a1", "spot-a", "4", 0), placeholder("b1", "spot-b", "3", 0)},
			preemptor: preemptor("2"), wantNode: "spot-b", wantVictims: []string{"b1"},
		},
		{
			name:      "node name breaks a full tie",
			nodes:     []*v1.Node{spot("spot-z").Obj(), spot("spot-a").Obj(), spot("spot-m").Obj()},
			pods:      []*v1.Pod{placeholder("z1", "spot-z", "4", 0), placeholder("a1", "spot-a", "4", 0), placeholder("m1", "spot-m", "4", 0)},
			preemptor: preemptor("1"), wantNode: "spot-a", wantVictims: []string{"a1"},
		},
		{
			name:  "victims: lowest priority first",
			nodes: []*v1.Node{spot("spot").Obj()},
			pods: []*v1.Pod{
				placeholder("old-low", "spot", "2", 0),
				func() *v1.Pod {
					p := placeholder("young-higher", "spot", "2", 9)
					p.Spec.Priority = ptrTo(int32(-1))
					return p
				}(),
			},
			preemptor: preemptor("2"), wantNode: "spot", wantVictims: []string{"old-low"},
		},
		{
			name:      "victims: youngest first at equal priority",
			nodes:     []*v1.Node{spot("spot").Obj()},
			pods:      []*v1.Pod{placeholder("old", "spot", "2", 0), placeholder("young", "spot", "2", 5)},
			preemptor: preemptor("2"), wantNode: "spot", wantVictims: []string{"young"},
		},
		{
			name:      "victims: name breaks a tie of priority and age",
			nodes:     []*v1.Node{spot("spot").Obj()},
			pods:      []*v1.Pod{placeholder("b", "spot", "2", 0), placeholder("a", "spot", "2", 0)},
			preemptor: preemptor("2"), wantNode: "spot", wantVictims: []string{"a"},
		},
		{
			name:      "labelled placeholder of priority 0 is a victim",
			nodes:     []*v1.Node{spot("spot").Obj()},
			pods:      []*v1.Pod{labelledPlaceholder("labelled", "spot", "4")},
			preemptor: preemptor("2"), wantNode: "spot", wantVictims: []string{"labelled"},
		},
		{
			name:  "real lower-priority pods are never victims",
			nodes: []*v1.Node{spot("spot").Obj(), onDemand("od").Obj()},
			pods: []*v1.Pod{
				realPod("batch-spot", "spot", "4", 0),
				realPod("batch-od", "od", "3", 0), placeholder("p", "od", "1", 0),
			},
			preemptor: preemptor("2"), wantNode: "", wantVictims: nil,
		},
		{
			name:      "real pod stays, placeholder beside it goes",
			nodes:     []*v1.Node{spot("spot").Obj()},
			pods:      []*v1.Pod{realPod("batch", "spot", "2", 0), placeholder("p", "spot", "2", 0)},
			preemptor: preemptor("2"), wantNode: "spot", wantVictims: []string{"p"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, tc.nodes, tc.pods, tc.preemptor)
			node, victims := e.decide(t, tc.preemptor)
			if node != tc.wantNode {
				t.Errorf("node = %q, want %q", node, tc.wantNode)
			}
			if diff := cmp.Diff(tc.wantVictims, victims); diff != "" {
				t.Errorf("victims (-want +got): %s", diff)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestDeterministic: the same cluster state, rebuilt 50 times (fresh maps, fresh goroutine
// interleavings), gives the same node and victims every time.
func TestDeterministic(t *testing.T) {
	var nodes []*v1.Node
	var pods []*v1.Pod
	for _, name := range []string{"s1", "s2", "s3", "s4", "s5", "s6"} {
		nodes = append(nodes, spot(name).Obj())
		pods = append(pods, placeholder(name+"-a", name, "2", 0), placeholder(name+"-b", name, "2", 0))
	}
	nodes = append(nodes, onDemand("od").Obj())
	pods = append(pods, placeholder("od-a", "od", "4", 0))
	var firstNode string
	var firstVictims []string
	for i := 0; i < 50; i++ {
		e := newEnv(t, nil, nodes, pods, preemptor("3"))
		node, victims := e.decide(t, preemptor("3"))
		if i == 0 {
			firstNode, firstVictims = node, victims
			if node != "s1" {
				t.Fatalf("node = %q, want s1 (first by name among equal spot nodes)", node)
			}
			continue
		}
		if node != firstNode || !cmp.Equal(victims, firstVictims) {
			t.Fatalf("run %d: %s %v, first run: %s %v", i, node, victims, firstNode, firstVictims)
		}
	}
}

// TestPostFilterActs: the victims get the DisruptionTarget condition and are deleted; the
// preemptor is nominated to the node.
// postFilterOnFullNode runs the PreFilters, then the PostFilter as after a cycle in which
// node rejected the pod for cpu.
func (e *env) postFilterOnFullNode(t *testing.T, pod *v1.Pod, node string) (*framework.PostFilterResult, *fwk.Status) {
	t.Helper()
	state := framework.NewCycleState()
	if _, status, _ := e.fwk.RunPreFilterPlugins(e.ctx, state, pod); !status.IsSuccess() {
		t.Fatalf("PreFilter: %v", status)
	}
	statuses := framework.NewDefaultNodeToStatus()
	statuses.Set(node, fwk.NewStatus(fwk.Unschedulable, "Insufficient cpu"))
	return e.pl.PostFilter(e.ctx, state, pod, statuses)
}

func TestPostFilterActs(t *testing.T) {
	nodes := []*v1.Node{spot("spot").Obj()}
	pods := []*v1.Pod{placeholder("p1", "spot", "2", 0), placeholder("p2", "spot", "2", 1)}
	pod := preemptor("2")
	e := newEnv(t, nil, nodes, pods, pod)
	result, status := e.postFilterOnFullNode(t, pod, "spot")
	if !status.IsSuccess() {
		t.Fatalf("PostFilter: %v", status)
	}
	if result.NominatingInfo.NominatedNodeName != "spot" {
		t.Fatalf("nominated %q, want spot", result.NominatingInfo.NominatedNodeName)
	}
	var deleted []string
	var disruption []string
	for _, a := range e.cs.Actions() {
		switch {
		case a.GetVerb() == "delete" && a.GetResource().Resource == "pods":
			deleted = append(deleted, a.(interface{ GetName() string }).GetName())
		case a.GetVerb() == "patch" && a.GetSubresource() == "status":
			disruption = append(disruption, a.(interface{ GetName() string }).GetName())
		}
	}
	if diff := cmp.Diff([]string{"p2"}, deleted); diff != "" {
		t.Errorf("deleted (-want +got): %s", diff)
	}
	if diff := cmp.Diff([]string{"p2"}, disruption); diff != "" {
		t.Errorf("DisruptionTarget patched (-want +got): %s", diff)
	}
}

// TestPostFilterWithoutPlaceholders: with no placeholder anywhere the PostFilter answers at
// once, leaving real pods (of lower priority than the preemptor here) to DefaultPreemption,
// and the dry run skips a node without placeholders while it still finds them on another.
func TestPostFilterWithoutPlaceholders(t *testing.T) {
	nodes := []*v1.Node{spot("spot").Obj()}
	pod := preemptor("2")
	e := newEnv(t, nil, nodes, []*v1.Pod{realPod("low", "spot", "4", 0)}, pod)
	result, status := e.postFilterOnFullNode(t, pod, "spot")
	if status.Code() != fwk.Unschedulable || !strings.Contains(status.Message(), "no node hosts a placeholder") || result != nil {
		t.Fatalf("PostFilter = %v, %v; want Unschedulable, no node hosts a placeholder", result, status)
	}
	for _, a := range e.cs.Actions() {
		if a.GetVerb() == "delete" {
			t.Errorf("deleted %v: only placeholders may be preempted", a)
		}
	}

	// Two nodes, a placeholder on one: the other is no candidate, and no filter runs there.
	nodes = []*v1.Node{spot("spot-1").Obj(), spot("spot-2").Obj()}
	e = newEnv(t, nil, nodes, []*v1.Pod{realPod("low", "spot-1", "4", 0), placeholder("ph", "spot-2", "4", 0)}, pod)
	if node, victims := e.decide(t, pod); node != "spot-2" || !slices.Equal(victims, []string{"ph"}) {
		t.Errorf("decided %s %v, want spot-2 [ph]", node, victims)
	}
	ni, err := e.fwk.SnapshotSharedLister().NodeInfos().Get("spot-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, status := e.pl.SelectVictimsOnNode(e.ctx, framework.NewCycleState(), pod, ni, nil); status.Code() != fwk.UnschedulableAndUnresolvable {
		t.Errorf("SelectVictimsOnNode on a node without placeholders: %v, want UnschedulableAndUnresolvable", status)
	}
}

func TestPlaceholdersNeverPreempt(t *testing.T) {
	e := newEnv(t, nil, []*v1.Node{spot("spot").Obj()}, nil, preemptor("1"))
	ok, msg := e.pl.PodEligibleToPreemptOthers(e.ctx, placeholder("p", "", "1", 0), nil)
	if ok {
		t.Fatal("a placeholder was allowed to preempt")
	}
	if msg == "" {
		t.Error("want a reason")
	}
}

// labelled sets the placeholder label on the pod.
func labelled(p *v1.Pod, value string) *v1.Pod {
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels[wellknown.PlaceholderLabel] = value
	return p
}

func TestArgs(t *testing.T) {
	tests := []struct {
		name, args  string
		placeholder *v1.Pod
		want        bool
		wantErr     string
	}{
		{name: "negative priority by default", args: `{}`, placeholder: placeholder("p", "", "1", 0), want: true},
		{name: "priority 0 is real by default", args: `{}`, placeholder: realPod("r", "", "1", 0), want: false},
		{name: "threshold raised", args: `{"placeholderPriorityBelow": 100}`, placeholder: realPod("r", "", "1", 50), want: true},
		{name: "custom selector", args: `{"placeholderSelector": {"matchLabels": {"role": "headroom"}}}`,
			placeholder: func() *v1.Pod {
				p := realPod("r", "", "1", 0)
				p.Labels = map[string]string{"role": "headroom"}
				return p
			}(), want: true},
		{name: "placeholder label True (any letter case)", args: `{}`, placeholder: labelled(realPod("r", "", "1", 0), "True"), want: true},
		{name: "placeholder label FALSE", args: `{}`, placeholder: labelled(realPod("r", "", "1", 0), "FALSE"), want: false},
		{name: "placeholder label not a boolean: not a placeholder", args: `{}`, placeholder: labelled(realPod("r", "", "1", 0), "yes"), want: false},
		{name: "custom selector on other labels ignores an unreadable placeholder label", args: `{"placeholderSelector": {"matchLabels": {"role": "headroom"}}}`,
			placeholder: func() *v1.Pod {
				p := labelled(realPod("r", "", "1", 0), "yes")
				p.Labels["role"] = "headroom"
				return p
			}(), want: true},
		{name: "threshold above user range", args: `{"placeholderPriorityBelow": 1000000001}`,
			wantErr: "pluginConfig[PlaceholderPreemption].args.placeholderPriorityBelow: Invalid value: 1000000001"},
		{name: "bad selector operator", args: `{"placeholderSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}`,
			wantErr: `pluginConfig[PlaceholderPreemption].args.placeholderSelector.matchExpressions[0].operator: Unsupported value: "Near"`},
		{name: "unknown field", args: `{"threshold": 1}`, wantErr: `unknown field "threshold"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := &runtime.Unknown{ContentType: runtime.ContentTypeJSON, Raw: []byte(tc.args)}
			if tc.wantErr != "" {
				_, err := NewFactory(profilestate.New())(context.Background(), raw, nil)
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			e := newEnv(t, raw, []*v1.Node{spot("spot").Obj()}, nil, preemptor("1"))
			if got := e.pl.IsPlaceholder(tc.placeholder); got != tc.want {
				t.Errorf("IsPlaceholder = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTierGate(t *testing.T) {
	never := v1.PreemptNever
	tests := []struct {
		name      string
		nodes     []*v1.Node
		pods      []*v1.Pod
		preemptor *v1.Pod
		// wantSkip: PreFilter finds nothing to gate and the framework leaves Filter out.
		wantSkip bool
		// wantRejected: nodes the gate rejects.
		wantRejected []string
	}{
		{
			name:         "placeholder room on spot keeps the pod off free on-demand",
			nodes:        []*v1.Node{spot("spot").Obj(), onDemand("od").Obj()},
			pods:         []*v1.Pod{placeholder("p1", "spot", "2", 0), placeholder("p2", "spot", "2", 0)},
			preemptor:    preemptor("1"),
			wantRejected: []string{"od"},
		},
		{
			name:      "placeholders too small to make room: no gate",
			nodes:     []*v1.Node{spot("spot").Obj(), onDemand("od").Obj()},
			pods:      []*v1.Pod{realPod("r", "spot", "3", 0), placeholder("p", "spot", "1", 0)},
			preemptor: preemptor("2"),
		},
		{
			name:      "placeholders on a worse tier: no gate",
			nodes:     []*v1.Node{spot("spot").Obj(), onDemand("od").Obj()},
			pods:      []*v1.Pod{placeholder("p", "od", "4", 0)},
			preemptor: preemptor("1"),
		},
		{
			name:      "placeholders on an at-risk node: no gate",
			nodes:     []*v1.Node{noticed(spot("spot")).Obj(), onDemand("od").Obj()},
			pods:      []*v1.Pod{placeholder("p", "spot", "4", 0)},
			preemptor: preemptor("1"),
		},
		{
			name:      "a pod that may not preempt is never gated",
			nodes:     []*v1.Node{spot("spot").Obj(), onDemand("od").Obj()},
			pods:      []*v1.Pod{placeholder("p", "spot", "4", 0)},
			preemptor: func() *v1.Pod { p := preemptor("1"); p.Spec.PreemptionPolicy = &never; return p }(),
			wantSkip:  true,
		},
		{
			name:      "placeholders never gate each other",
			nodes:     []*v1.Node{spot("spot").Obj(), onDemand("od").Obj()},
			pods:      []*v1.Pod{placeholder("p", "spot", "4", 0)},
			preemptor: placeholder("new", "", "1", 0),
			wantSkip:  true,
		},
		{
			name:      "no placeholder anywhere: the gate skips the cycle",
			nodes:     []*v1.Node{spot("spot").Obj(), onDemand("od").Obj()},
			pods:      []*v1.Pod{realPod("r", "spot", "4", 0)},
			preemptor: preemptor("1"),
			wantSkip:  true,
		},
		{
			name:  "a placeholder being deleted holds no room: the gate skips the cycle",
			nodes: []*v1.Node{spot("spot").Obj(), onDemand("od").Obj()},
			pods: []*v1.Pod{func() *v1.Pod {
				p := placeholder("p", "spot", "4", 0)
				p.DeletionTimestamp = &metav1.Time{}
				return p
			}()},
			preemptor: preemptor("1"),
			wantSkip:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, tc.nodes, tc.pods, tc.preemptor)
			state := framework.NewCycleState()
			if _, status, _ := e.fwk.RunPreFilterPlugins(e.ctx, state, tc.preemptor); !status.IsSuccess() {
				t.Fatalf("PreFilter: %v", status)
			}
			nodeInfos, err := e.fwk.SnapshotSharedLister().NodeInfos().List()
			if err != nil {
				t.Fatal(err)
			}
			_, status := e.pl.PreFilter(e.ctx, state, tc.preemptor, nodeInfos)
			if status.IsSkip() != tc.wantSkip || !(status.IsSuccess() || status.IsSkip()) {
				t.Fatalf("gate PreFilter: %v, want skip %v", status, tc.wantSkip)
			}
			if status.IsSkip() {
				return // the framework runs no Filter of a plugin whose PreFilter skipped
			}
			var rejected []string
			for _, n := range tc.nodes {
				ni, err := e.fwk.SnapshotSharedLister().NodeInfos().Get(n.Name)
				if err != nil {
					t.Fatal(err)
				}
				if st := e.pl.Filter(e.ctx, state, tc.preemptor, ni); !st.IsSuccess() {
					if st.Code() != fwk.Unschedulable || st.Message() != ErrReasonPlaceholderRoom {
						t.Fatalf("%s: status %v, want Unschedulable %q", n.Name, st, ErrReasonPlaceholderRoom)
					}
					rejected = append(rejected, n.Name)
				}
			}
			if diff := cmp.Diff(tc.wantRejected, rejected); diff != "" {
				t.Errorf("rejected nodes (-want +got): %s", diff)
			}
		})
	}
}

// TestTierGateQueueingHints: a pod the gate kept off worse tiers is retried when a pod bound
// to a node that still exists goes (placeholders leaving free the room it pointed at), not
// for a pod that was never bound or whose node is gone too; node changes always retry it.
func TestTierGateQueueingHints(t *testing.T) {
	nodes := []*v1.Node{spot("s-1").Obj()}
	e := newEnv(t, nil, nodes, nil, preemptor("1"))
	if err := e.fwk.SharedInformerFactory().Core().V1().Nodes().Informer().GetStore().Add(nodes[0]); err != nil {
		t.Fatal(err)
	}
	events, err := e.pl.EventsToRegister(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var podDelete fwk.QueueingHintFn
	for _, ev := range events {
		if ev.Event.Resource == fwk.Pod && ev.Event.ActionType == fwk.Delete {
			podDelete = ev.QueueingHintFn
		}
		if ev.Event.Resource == fwk.Node && ev.QueueingHintFn != nil {
			t.Errorf("node events: hint set, want none (every node change may end the gate's reason)")
		}
	}
	if podDelete == nil {
		t.Fatal("no QueueingHint for pod deletions")
	}
	logger, _ := ktesting.NewTestContext(t)
	tests := []struct {
		name    string
		deleted *v1.Pod
		want    fwk.QueueingHint
	}{
		{"a placeholder left a node", placeholder("p", "s-1", "1", 0), fwk.Queue},
		{"a pod that was never bound", st.MakePod().Name("d").Obj(), fwk.QueueSkip},
		{"the node is gone too", placeholder("p", "gone", "1", 0), fwk.QueueSkip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := podDelete(logger, preemptor("1"), tc.deleted, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("hint = %v, want %v", got, tc.want)
			}
		})
	}
}
