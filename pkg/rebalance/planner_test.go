package rebalance

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spot-scheduler/spot-scheduler/internal/testobj"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"
)

// Builders shared with the simulator's tests.
var (
	now         = testobj.Now
	node        = testobj.Node
	spotLabels  = testobj.SpotLabels
	odLabels    = testobj.OnDemandLabels
	spotNode    = testobj.SpotNode
	odNode      = testobj.OnDemandNode
	burstNode   = testobj.BurstNode
	pod         = testobj.Pod
	placeholder = testobj.Placeholder
)

// testProfile builds the shipped profile (manifests/scheduler-config.yaml) for simulation.
func testProfile(t testing.TB, configFile string) *simulator.Simulator {
	t.Helper()
	if configFile == "" {
		configFile = "../../manifests/scheduler-config.yaml"
	}
	return testobj.Simulator(t, configFile)
}

func with(p *v1.Pod, mutate func(*v1.Pod)) *v1.Pod { mutate(p); return p }

type moveKey struct{ Pod, From, To string }

func moves(plan *Plan) []moveKey {
	var out []moveKey
	for _, m := range plan.Moves {
		out = append(out, moveKey{m.Pod.Name, m.From, m.To})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out
}

func skips(plan *Plan) map[string]string {
	out := map[string]string{}
	for _, s := range plan.Skips {
		out[s.Pod.Name] = s.Reason
	}
	return out
}

// wholeBudget are the default options with every workload's disruption budget at 100%: for
// the tests of what the planner moves where, not of how many at once
// (TestPlanDisruptionBudgets).
func wholeBudget() Options {
	o := DefaultOptions()
	o.DisruptionBudget = intstr.FromString("100%")
	return o
}

func runPlan(t *testing.T, p *simulator.Simulator, nodes []*v1.Node, pods []*v1.Pod, opts Options) *Plan {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	plan, err := PlanMoves(ctx, p, nodes, pods, now, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestPlanStrictlyBetterTier(t *testing.T) {
	p := testProfile(t, "")
	tests := []struct {
		name      string
		nodes     []*v1.Node
		pods      []*v1.Pod
		wantMoves []moveKey
		wantSkips map[string]string
	}{
		{
			name:      "on-demand to spot",
			nodes:     []*v1.Node{spotNode("spot-1", "4"), odNode("od-1", "4")},
			pods:      []*v1.Pod{pod("a", "web", "od-1", "1")},
			wantMoves: []moveKey{{"a", "od-1", "spot-1"}},
			wantSkips: map[string]string{},
		},
		{
			name:      "burst to on-demand when spot is full",
			nodes:     []*v1.Node{spotNode("spot-1", "1"), odNode("od-1", "4"), burstNode("vk", "100")},
			pods:      []*v1.Pod{pod("s", "web", "spot-1", "1"), pod("b", "web", "vk", "1")},
			wantMoves: []moveKey{{"b", "vk", "od-1"}},
			wantSkips: map[string]string{},
		},
		{
			name:      "no better-tier room: stays, however much same-tier room there is",
			nodes:     []*v1.Node{spotNode("spot-1", "1"), odNode("od-1", "4"), odNode("od-2", "64")},
			pods:      []*v1.Pod{pod("s", "web", "spot-1", "1"), pod("a", "web", "od-1", "1")},
			wantMoves: nil,
			wantSkips: map[string]string{"a": SkipNoBetterRoom},
		},
		{
			name:      "pods already on the best tier are not candidates",
			nodes:     []*v1.Node{spotNode("spot-1", "4"), spotNode("spot-2", "4")},
			pods:      []*v1.Pod{pod("a", "web", "spot-1", "1")},
			wantMoves: nil,
			wantSkips: map[string]string{},
		},
		{
			name: "an at-risk spot node is never a target",
			nodes: []*v1.Node{
				node("spot-noticed", "64", spotLabels, v1.Taint{Key: "aws-node-termination-handler/spot-itn", Effect: v1.TaintEffectNoSchedule}),
				odNode("od-1", "4"),
			},
			pods:      []*v1.Pod{pod("a", "web", "od-1", "1")},
			wantMoves: nil,
			wantSkips: map[string]string{},
		},
		{
			name:      "the scheduler's filters decide: an untolerated taint on spot keeps the pod",
			nodes:     []*v1.Node{node("spot-tainted", "4", spotLabels, v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}), odNode("od-1", "4")},
			pods:      []*v1.Pod{pod("a", "web", "od-1", "1")},
			wantMoves: nil,
			wantSkips: map[string]string{"a": SkipNoBetterRoom},
		},
		{
			name:      "avoid-spot pod stays on on-demand",
			nodes:     []*v1.Node{spotNode("spot-1", "4"), odNode("od-1", "4")},
			pods:      []*v1.Pod{with(pod("db", "db", "od-1", "1"), func(p *v1.Pod) { p.Annotations = map[string]string{"spot-scheduler.io/avoid-spot": "true"} })},
			wantMoves: nil,
			wantSkips: map[string]string{},
		},
		{
			name:      "avoid-spot pod on spot moves to on-demand",
			nodes:     []*v1.Node{spotNode("spot-1", "4"), odNode("od-1", "4")},
			pods:      []*v1.Pod{with(pod("db", "db", "spot-1", "1"), func(p *v1.Pod) { p.Annotations = map[string]string{"spot-scheduler.io/avoid-spot": "true"} })},
			wantMoves: []moveKey{{"db", "spot-1", "od-1"}},
			wantSkips: map[string]string{},
		},
		{
			name:      "pods of other schedulers are not touched",
			nodes:     []*v1.Node{spotNode("spot-1", "4"), odNode("od-1", "4")},
			pods:      []*v1.Pod{with(pod("a", "web", "od-1", "1"), func(p *v1.Pod) { p.Spec.SchedulerName = "default-scheduler" })},
			wantMoves: nil,
			wantSkips: map[string]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := runPlan(t, p, tc.nodes, tc.pods, DefaultOptions())
			if diff := cmp.Diff(tc.wantMoves, moves(plan)); diff != "" {
				t.Errorf("moves (-want +got): %s", diff)
			}
			if diff := cmp.Diff(tc.wantSkips, skips(plan)); diff != "" {
				t.Errorf("skips (-want +got): %s", diff)
			}
		})
	}
}

func TestPlanReservesRoom(t *testing.T) {
	p := testProfile(t, "")
	nodes := []*v1.Node{spotNode("spot-1", "2"), odNode("od-1", "8")}
	pods := []*v1.Pod{pod("a", "web", "od-1", "1"), pod("b", "web", "od-1", "1"), pod("c", "web", "od-1", "1")}
	plan := runPlan(t, p, nodes, pods, wholeBudget())
	if len(plan.Moves) != 2 {
		t.Fatalf("moves %v, want 2 (spot-1 has room for two)", moves(plan))
	}
	if len(plan.Skips) != 1 || plan.Skips[0].Reason != SkipNoBetterRoom {
		t.Fatalf("skips %v, want one no_better_room", skips(plan))
	}
}

func TestPlanPlaceholderRoom(t *testing.T) {
	p := testProfile(t, "")
	nodes := []*v1.Node{spotNode("spot-1", "2"), odNode("od-1", "8")}
	app := []*v1.Pod{pod("a", "web", "od-1", "1"), pod("b", "web", "od-1", "1")}
	t.Run("placeholders are free room", func(t *testing.T) {
		plan := runPlan(t, p, nodes, append(app, placeholder("h1", "spot-1", "1"), placeholder("h2", "spot-1", "1")), wholeBudget())
		if diff := cmp.Diff([]moveKey{{"a", "od-1", "spot-1"}, {"b", "od-1", "spot-1"}}, moves(plan)); diff != "" {
			t.Errorf("moves (-want +got): %s", diff)
		}
	})
	t.Run("real pods are not", func(t *testing.T) {
		plan := runPlan(t, p, nodes, append(app, pod("r1", "other", "spot-1", "1"), pod("r2", "other", "spot-1", "1")), wholeBudget())
		if len(plan.Moves) != 0 {
			t.Errorf("moves %v, want none", moves(plan))
		}
	})
	t.Run("without PlaceholderPreemption in the profile, placeholders hold their room", func(t *testing.T) {
		noPlaceholders := testProfile(t, "testdata/no-placeholder-preemption.yaml")
		plan := runPlan(t, noPlaceholders, nodes, append(app, placeholder("h1", "spot-1", "1"), placeholder("h2", "spot-1", "1")), wholeBudget())
		if len(plan.Moves) != 0 {
			t.Errorf("moves %v, want none", moves(plan))
		}
	})
}

func TestPlanPrefersWholeNodes(t *testing.T) {
	p := testProfile(t, "")
	t.Run("an emptiable node before a less requested one that cannot be emptied", func(t *testing.T) {
		nodes := []*v1.Node{spotNode("spot-1", "2"), odNode("od-a", "8"), odNode("od-b", "8")}
		pods := []*v1.Pod{
			pod("a1", "web", "od-a", "1"), pod("a2", "web", "od-a", "1"),
			pod("b1", "api", "od-b", "1"),
			with(pod("bare", "", "od-b", "500m"), func(p *v1.Pod) { p.OwnerReferences = nil }), // keeps od-b from being emptied
		}
		plan := runPlan(t, p, nodes, pods, wholeBudget())
		if diff := cmp.Diff([]moveKey{{"a1", "od-a", "spot-1"}, {"a2", "od-a", "spot-1"}}, moves(plan)); diff != "" {
			t.Errorf("moves (-want +got): %s", diff)
		}
		if diff := cmp.Diff([]string{"od-a"}, plan.EmptiedNodes); diff != "" {
			t.Errorf("emptied (-want +got): %s", diff)
		}
	})
	t.Run("least requested first, then pod by pod", func(t *testing.T) {
		nodes := []*v1.Node{spotNode("spot-1", "2"), odNode("od-x", "8"), odNode("od-y", "8")}
		pods := []*v1.Pod{pod("x1", "web", "od-x", "1"), pod("x2", "web", "od-x", "1"), pod("y1", "api", "od-y", "1")}
		plan := runPlan(t, p, nodes, pods, wholeBudget())
		if diff := cmp.Diff([]string{"od-y"}, plan.EmptiedNodes); diff != "" {
			t.Errorf("emptied (-want +got): %s", diff)
		}
		got := moves(plan)
		if len(got) != 2 || got[len(got)-1] != (moveKey{"y1", "od-y", "spot-1"}) {
			t.Errorf("moves %v, want y1 and one of x1/x2", got)
		}
	})
	t.Run("DaemonSet pods do not keep a node from being emptied", func(t *testing.T) {
		nodes := []*v1.Node{spotNode("spot-1", "2"), odNode("od-a", "8")}
		ds := with(pod("ds", "agent", "od-a", "100m"), func(p *v1.Pod) { p.OwnerReferences[0].Kind = "DaemonSet" })
		plan := runPlan(t, p, nodes, []*v1.Pod{pod("a1", "web", "od-a", "1"), ds}, wholeBudget())
		if diff := cmp.Diff([]string{"od-a"}, plan.EmptiedNodes); diff != "" {
			t.Errorf("emptied (-want +got): %s", diff)
		}
	})
}

func TestPlanProtections(t *testing.T) {
	p := testProfile(t, "")
	nodes := []*v1.Node{spotNode("spot-1", "64"), odNode("od-1", "64")}
	annotated := func(k, v string) func(*v1.Pod) {
		return func(p *v1.Pod) { p.Annotations = map[string]string{k: v} }
	}
	tests := []struct {
		name   string
		mutate func(*v1.Pod)
		want   string
		// invalid: the skip is the cautious reading of a value that is not a boolean.
		invalid bool
	}{
		{"bare pod", func(p *v1.Pod) { p.OwnerReferences = nil }, SkipBarePod, false},
		{"DaemonSet pod", func(p *v1.Pod) { p.OwnerReferences[0].Kind = "DaemonSet" }, SkipDaemonSet, false},
		{"mirror pod", annotated("kubernetes.io/config.mirror", "x"), SkipMirrorPod, false},
		{"static pod owned by its node", func(p *v1.Pod) { p.OwnerReferences[0].Kind = "Node" }, SkipMirrorPod, false},
		{"system-cluster-critical", func(p *v1.Pod) { p.Spec.PriorityClassName = "system-cluster-critical" }, SkipSystemCritical, false},
		{"system priority", func(p *v1.Pod) { p.Spec.Priority = ptr.To[int32](2_000_001_000) }, SkipSystemCritical, false},
		{"terminating", func(p *v1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: now} }, SkipTerminating, false},
		{"not running", func(p *v1.Pod) { p.Status.Phase = v1.PodPending }, SkipNotRunning, false},
		{"emptyDir on disk", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
		}, SkipLocalStorage, false},
		{"hostPath", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/x"}}}}
		}, SkipLocalStorage, false},
		{"resource claims", func(p *v1.Pod) { p.Spec.ResourceClaims = []v1.PodResourceClaim{{Name: "gpu"}} }, SkipResourceClaims, false},
		{"rebalance=false", annotated("spot-scheduler.io/rebalance", "false"), SkipOptedOut, false},
		{"karpenter do-not-disrupt", annotated("karpenter.sh/do-not-disrupt", "true"), SkipDoNotDisrupt, false},
		{"autoscaler safe-to-evict=false", annotated("cluster-autoscaler.kubernetes.io/safe-to-evict", "false"), SkipNotSafeToEvict, false},
		{"rebalance=False (any letter case)", annotated("spot-scheduler.io/rebalance", "False"), SkipOptedOut, false},
		{"rebalance=\" FALSE \"", annotated("spot-scheduler.io/rebalance", " FALSE "), SkipOptedOut, false},
		{"rebalance=no is unreadable: do not move", annotated("spot-scheduler.io/rebalance", "no"), SkipOptedOut, true},
		{"rebalance=\"\" is unreadable: do not move", annotated("spot-scheduler.io/rebalance", ""), SkipOptedOut, true},
		{"karpenter do-not-disrupt=TRUE", annotated("karpenter.sh/do-not-disrupt", "TRUE"), SkipDoNotDisrupt, false},
		{"karpenter do-not-disrupt=yes is unreadable: do not move", annotated("karpenter.sh/do-not-disrupt", "yes"), SkipDoNotDisrupt, true},
		{"autoscaler safe-to-evict=False", annotated("cluster-autoscaler.kubernetes.io/safe-to-evict", "False"), SkipNotSafeToEvict, false},
		{"autoscaler safe-to-evict=0 is unreadable: do not move", annotated("cluster-autoscaler.kubernetes.io/safe-to-evict", "0"), SkipNotSafeToEvict, true},
		{"too young", func(p *v1.Pod) { p.Status.StartTime = &metav1.Time{Time: now.Add(-time.Minute)} }, SkipTooYoung, false},
		{"memory emptyDir is fine", func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}}}
		}, "", false},
		{"rebalance=TRUE moves", annotated("spot-scheduler.io/rebalance", "TRUE"), "", false},
		{"do-not-disrupt=false moves", annotated("karpenter.sh/do-not-disrupt", "false"), "", false},
		{"safe-to-evict=True moves", annotated("cluster-autoscaler.kubernetes.io/safe-to-evict", "True"), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := runPlan(t, p, nodes, []*v1.Pod{with(pod("a", "web", "od-1", "1"), tc.mutate)}, DefaultOptions())
			if tc.want == "" {
				if len(plan.Moves) != 1 {
					t.Fatalf("moves %v skips %v, want one move", moves(plan), skips(plan))
				}
				return
			}
			if len(plan.Moves) != 0 || skips(plan)["a"] != tc.want {
				t.Fatalf("moves %v skips %v, want skip %s", moves(plan), skips(plan), tc.want)
			}
			invalid := plan.Skips[0].Invalid
			if (invalid != nil) != tc.invalid {
				t.Fatalf("skip's Invalid = %v, want set: %v", invalid, tc.invalid)
			}
			if invalid != nil {
				for _, want := range []string{"annotation", `"true" or "false" (any letter case)`, `read as`, "does not move"} {
					if !strings.Contains(invalid.Error(), want) {
						t.Errorf("Invalid %q does not say %q", invalid, want)
					}
				}
			}
		})
	}
	t.Run("local storage allowed by option", func(t *testing.T) {
		opts := DefaultOptions()
		opts.AllowLocalStorage = true
		withDisk := with(pod("a", "web", "od-1", "1"), func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "d", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
		})
		if plan := runPlan(t, p, nodes, []*v1.Pod{withDisk}, opts); len(plan.Moves) != 1 {
			t.Fatalf("moves %v, want one", moves(plan))
		}
	})
}

// TestPlanDisruptionBudgets: no workload is planned past its budget (its desired replicas'
// share, less what is already unavailable), nor the cluster past the in-flight limit; a budget
// annotation overrides the default, and an unreadable one keeps the workload in place, named.
func TestPlanDisruptionBudgets(t *testing.T) {
	p := testProfile(t, "")
	nodes := []*v1.Node{spotNode("spot-1", "64"), odNode("od-1", "64"), odNode("od-2", "64")}
	eight := func(mutate func(*v1.Pod)) []*v1.Pod {
		var pods []*v1.Pod
		for i := 0; i < 8; i++ {
			pods = append(pods, with(pod(fmt.Sprintf("web-%d", i), "web", "od-1", "1"), mutate), pod(fmt.Sprintf("api-%d", i), "api", "od-2", "1"))
		}
		return pods
	}
	notReady := func(p *v1.Pod) { p.Status.Conditions = nil }
	annotate := func(v string) func(*v1.Pod) {
		return func(p *v1.Pod) { p.Annotations = map[string]string{wellknown.DisruptionBudgetAnnotation: v} }
	}
	replicas := func(n int) *Disruptions {
		return &Disruptions{Replicas: func(*v1.Pod) (int, bool) { return n, true }}
	}
	tests := []struct {
		name        string
		pods        []*v1.Pod
		mutate      func(*Options)
		d           *Disruptions
		web, api    int // moves per workload
		reason      string
		wantInvalid bool
	}{
		{"default 25% of 8", eight(func(*v1.Pod) {}), nil, nil, 2, 2, SkipBudget, false},
		{"flag 50%", eight(func(*v1.Pod) {}), func(o *Options) { o.DisruptionBudget = intstr.FromString("50%") }, nil, 4, 4, SkipBudget, false},
		{"annotation 100% on web", eight(annotate("100%")), nil, nil, 8, 2, SkipBudget, false},
		{"annotation count 3 on web", eight(annotate("3")), nil, nil, 3, 2, SkipBudget, false},
		{"annotation 0 keeps web", eight(annotate("0")), nil, nil, 0, 2, SkipBudget, false},
		{"unreadable annotation keeps web, named", eight(annotate("lots")), nil, nil, 0, 2, SkipBudget, true},
		{"web pods not Ready use up its budget", eight(func(p *v1.Pod) {
			if p.Name == "web-0" || p.Name == "web-1" {
				notReady(p)
			}
		}), nil, nil, 0, 2, SkipBudget, false},
		{"desired replicas above the pods: the missing ones are unavailable", eight(func(*v1.Pod) {}), func(o *Options) { o.DisruptionBudget = intstr.FromString("50%") }, replicas(10), 3, 3, SkipBudget, false},
		{"evictions the pods do not show yet count", eight(func(*v1.Pod) {}), nil, &Disruptions{Unseen: map[string]int{"owner/ReplicaSet/apps/web/rs-web": 2}}, 0, 2, SkipBudget, false},
		{"in-flight limit", eight(annotate("100%")), func(o *Options) { o.MaxEvictionsInFlight = 5 }, &Disruptions{InFlight: 2}, 3, 0, SkipInFlight, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultOptions()
			if tc.mutate != nil {
				tc.mutate(&opts)
			}
			_, ctx := ktesting.NewTestContext(t)
			plan, err := PlanMoves(ctx, p, nodes, tc.pods, now, opts, tc.d)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, m := range plan.Moves {
				got[m.Pod.Labels["app"]]++
			}
			if got["web"] != tc.web || got["api"] != tc.api {
				t.Fatalf("moves web %d, api %d; want %d, %d", got["web"], got["api"], tc.web, tc.api)
			}
			for _, s := range plan.Skips {
				if s.Reason != tc.reason {
					t.Errorf("skip %s: %s, want %s", s.Pod.Name, s.Reason, tc.reason)
				}
				if invalid := s.Invalid != nil; invalid != (tc.wantInvalid && s.Pod.Labels["app"] == "web") {
					t.Errorf("skip %s: Invalid = %v", s.Pod.Name, s.Invalid)
				} else if invalid && !strings.Contains(s.Invalid.Error(), wellknown.DisruptionBudgetAnnotation) {
					t.Errorf("skip %s: %v does not name the annotation", s.Pod.Name, s.Invalid)
				}
			}
			if len(plan.Skips) != 16-len(plan.Moves) {
				t.Fatalf("%d skips, want %d", len(plan.Skips), 16-len(plan.Moves))
			}
		})
	}
}
