package spotscore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

func replica(name string, annotations map[string]string) *st.PodWrapper {
	w := st.MakePod().Namespace("ns").Name(name).UID(name).OwnerReference("web-abc", rsKind)
	for k, v := range annotations {
		w = w.Annotation(k, v)
	}
	return w
}

var base2Share75 = map[string]string{policy.OnDemandBaseAnnotation: "2", policy.SpotShareAnnotation: "75"}

func TestPolicyRanking(t *testing.T) {
	capOne := map[string]string{policy.MaxPerPoolAnnotation: "1"}
	nodes := []*v1.Node{spotNode("a-1", "a").Obj(), spotNode("b-1", "b").Obj(), onDemandNode("od").Obj(), burstNode("burst").Obj()}
	tests := []struct {
		name     string
		pod      *v1.Pod
		existing []*v1.Pod
		want     []string
	}{
		{
			name: "first replica of a base-2 workload: on-demand first, spot before burst (never Pending)",
			pod:  replica("new", base2Share75).Obj(),
			want: []string{"od", "a-1", "b-1", "burst"},
		},
		{
			name:     "third replica: 75 % of one above the base rounds to on-demand",
			pod:      replica("new", base2Share75).Obj(),
			existing: []*v1.Pod{replica("r1", base2Share75).Node("od").Obj(), replica("r2", base2Share75).Node("od").Obj()},
			want:     []string{"od", "a-1", "b-1", "burst"},
		},
		{
			name: "fourth replica may go to spot",
			pod:  replica("new", base2Share75).Obj(),
			existing: []*v1.Pod{replica("r1", base2Share75).Node("od").Obj(), replica("r2", base2Share75).Node("od").Obj(),
				replica("r3", base2Share75).Node("od").Obj()},
			want: []string{"a-1", "b-1", "od", "burst"},
		},
		{
			name: "base replica lost while spot holds the others: back to on-demand",
			pod:  replica("new", base2Share75).Obj(),
			existing: []*v1.Pod{replica("r1", base2Share75).Node("a-1").Obj(), replica("r2", base2Share75).Node("b-1").Obj(),
				replica("r3", base2Share75).Node("od").Obj()},
			want: []string{"od", "a-1", "b-1", "burst"},
		},
		{
			name:     "pool cap: a full pool ranks below the pools under the cap and below every non-reclaimable tier",
			pod:      replica("new", capOne).Obj(),
			existing: []*v1.Pod{replica("r1", capOne).Node("a-1").Obj()},
			want:     []string{"b-1", "od", "burst", "a-1"},
		},
		{
			name:     "every spot pool full: on-demand, then burst (the next tier with room), then the full pools",
			pod:      replica("new", capOne).Obj(),
			existing: []*v1.Pod{replica("r1", capOne).Node("a-1").Obj(), replica("r2", capOne).Node("b-1").Obj()},
			want:     []string{"od", "burst", "a-1", "b-1"},
		},
		{
			name:     "malformed annotation: scheduled as without policy",
			pod:      replica("new", map[string]string{policy.OnDemandBaseAnnotation: "lots"}).Obj(),
			existing: nil,
			want:     []string{"a-1", "b-1", "od", "burst"},
		},
		{
			name: "cluster default applies to pods without annotations",
			pod:  replica("new", nil).Obj(),
			want: []string{"od", "a-1", "b-1", "burst"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var args = rawArgs(`{}`)
			if strings.HasPrefix(tc.name, "cluster default") {
				args = rawArgs(`{"defaultCapacityPolicy": {"onDemandBase": 1}}`)
			}
			scores := scoreAll(t, args, tc.pod, nodes, tc.existing)
			got := bestFirst(scores, nodes)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ranking (-want +got): %s\nscores: %v", diff, scores)
			}
		})
	}
}

// TestPolicyPlacesADeployment schedules 10 replicas of a base-2, 75 % workload one by one on
// the best node (room everywhere): 4 land on on-demand and 6 on spot, 3 per pool.
func TestPolicyPlacesADeployment(t *testing.T) {
	nodes := []*v1.Node{spotNode("a-1", "a").Obj(), spotNode("b-1", "b").Obj(), onDemandNode("od").Obj()}
	annotations := map[string]string{policy.OnDemandBaseAnnotation: "2", policy.SpotShareAnnotation: "75", policy.MaxPerPoolAnnotation: "50%"}
	var existing []*v1.Pod
	perNode := map[string]int{}
	for i := range 10 {
		pod := replica(fmt.Sprintf("r%d", i), annotations).Obj()
		scores := scoreAll(t, nil, pod, nodes, existing)
		best := bestFirst(scores, nodes)[0]
		pod.Spec.NodeName = best
		existing = append(existing, pod)
		perNode[best]++
	}
	if want := map[string]int{"od": 4, "a-1": 3, "b-1": 3}; !cmp.Equal(want, perNode) {
		t.Errorf("replicas per node %v, want %v", perNode, want)
	}
}

// preFilterWithRecorder runs SpotScore's PreFilter for pod in a framework with an event
// recorder and one on-demand node, and returns the recorder.
func preFilterWithRecorder(t *testing.T, pod *v1.Pod) *events.FakeRecorder {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recorder := events.NewFakeRecorder(10)
	snapshot := cache.NewSnapshot(nil, []*v1.Node{onDemandNode("od").Obj()})
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil, frameworkruntime.WithSnapshotSharedLister(snapshot), frameworkruntime.WithEventRecorder(recorder))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, nil, fh)
	if err != nil {
		t.Fatal(err)
	}
	nodeInfos, _ := snapshot.NodeInfos().List()
	if _, status := p.(*SpotScore).PreFilter(ctx, framework.NewCycleState(), pod, nodeInfos); !status.IsSuccess() {
		t.Fatalf("PreFilter: %v", status)
	}
	return recorder
}

// TestPolicyInvalidAnnotationEvent: a malformed annotation gives a Warning event naming the
// annotation and the allowed values, and counts in the metric.
func TestPolicyInvalidAnnotationEvent(t *testing.T) {
	before, _ := testutil.GetCounterMetricValue(invalidPolicies.WithLabelValues(policy.SpotShareAnnotation))
	recorder := preFilterWithRecorder(t, replica("bad", map[string]string{policy.SpotShareAnnotation: "most"}).Obj())
	select {
	case e := <-recorder.Events:
		for _, want := range []string{"Warning", InvalidPolicyReason, policy.SpotShareAnnotation, `"most"`, "from 0 to 100"} {
			if !strings.Contains(e, want) {
				t.Errorf("event %q does not contain %q", e, want)
			}
		}
	default:
		t.Fatal("no event")
	}
	after, _ := testutil.GetCounterMetricValue(invalidPolicies.WithLabelValues(policy.SpotShareAnnotation))
	if after != before+1 {
		t.Errorf("invalid-policy counter went from %v to %v, want +1", before, after)
	}
}

// TestInvalidValueEvents: an avoid-spot annotation or a placeholder label that is not a
// boolean gives the pod a Warning event naming the key, the value, the allowed values and the
// cautious reading, and counts in the metric; a boolean in any letter case gives none.
func TestInvalidValueEvents(t *testing.T) {
	tests := []struct {
		name    string
		pod     *v1.Pod
		key     string // the key the event names; "" for no event
		reading string
	}{
		{"avoid-spot=yes", st.MakePod().Namespace("ns").Name("p").UID("p").Annotation(wellknown.AvoidSpotAnnotation, "yes").Obj(),
			wellknown.AvoidSpotAnnotation, `read as "true"`},
		{"placeholder=maybe", st.MakePod().Namespace("ns").Name("p").UID("p").Label(wellknown.PlaceholderLabel, "maybe").Obj(),
			wellknown.PlaceholderLabel, `read as "false"`},
		{"rebalance=nope (the rebalancer's opt-out, named at scheduling)", st.MakePod().Namespace("ns").Name("p").UID("p").Annotation(wellknown.RebalanceAnnotation, "nope").Obj(),
			wellknown.RebalanceAnnotation, `read as "false"`},
		{"do-not-disrupt=1", st.MakePod().Namespace("ns").Name("p").UID("p").Annotation(wellknown.KarpenterDoNotDisruptAnnotation, "1").Obj(),
			wellknown.KarpenterDoNotDisruptAnnotation, `read as "true"`},
		{"avoid-spot=True", st.MakePod().Namespace("ns").Name("p").UID("p").Annotation(wellknown.AvoidSpotAnnotation, "True").Obj(), "", ""},
		{"placeholder=TRUE", st.MakePod().Namespace("ns").Name("p").UID("p").Label(wellknown.PlaceholderLabel, "TRUE").Obj(), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before float64
			if tc.key != "" {
				before, _ = testutil.GetCounterMetricValue(invalidValues.WithLabelValues(tc.key))
			}
			recorder := preFilterWithRecorder(t, tc.pod)
			select {
			case e := <-recorder.Events:
				if tc.key == "" {
					t.Fatalf("event %q for a boolean value", e)
				}
				for _, want := range []string{"Warning", wellknown.InvalidValueReason, tc.key, wellknown.AllowedBoolValues, tc.reading} {
					if !strings.Contains(e, want) {
						t.Errorf("event %q does not contain %q", e, want)
					}
				}
			default:
				if tc.key != "" {
					t.Fatal("no event")
				}
			}
			if tc.key != "" {
				after, _ := testutil.GetCounterMetricValue(invalidValues.WithLabelValues(tc.key))
				if after != before+1 {
					t.Errorf("invalid-value counter went from %v to %v, want +1", before, after)
				}
			}
		})
	}
}
