package explain

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// TestReadings: explain shows every boolean annotation and label the pod carries, read the way
// the scheduler and the rebalancer read it, and names the ones that are not booleans.
func TestReadings(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{
		Annotations: map[string]string{
			wellknown.AvoidSpotAnnotation:             "yes",
			wellknown.RebalanceAnnotation:             "False",
			wellknown.AutoscalerSafeToEvictAnnotation: "TRUE",
			"unrelated": "x",
		},
		Labels: map[string]string{wellknown.PlaceholderLabel: "maybe"},
	}}
	got := readings(pod)
	want := []Reading{
		{Kind: "annotation", Key: wellknown.AvoidSpotAnnotation, Value: "yes", Reading: true},
		{Kind: "annotation", Key: wellknown.RebalanceAnnotation, Value: "False", Reading: false},
		{Kind: "annotation", Key: wellknown.AutoscalerSafeToEvictAnnotation, Value: "TRUE", Reading: true},
		{Kind: "label", Key: wellknown.PlaceholderLabel, Value: "maybe", Reading: false},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Reading{}, "Invalid")); diff != "" {
		t.Errorf("readings (-want +got): %s", diff)
	}
	for _, r := range got {
		invalid := r.Value == "yes" || r.Value == "maybe"
		if (r.Invalid != "") != invalid {
			t.Errorf("%s=%q: Invalid %q, want set: %v", r.Key, r.Value, r.Invalid, invalid)
		}
		if invalid && !strings.Contains(r.Invalid, wellknown.AllowedBoolValues) {
			t.Errorf("%s: Invalid %q does not give the allowed values", r.Key, r.Invalid)
		}
	}
	if got := readings(&v1.Pod{}); len(got) != 0 {
		t.Errorf("a pod without those keys: %v, want none", got)
	}
}
