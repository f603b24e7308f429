package localcluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

func TestTaintNodeAddsOnce(t *testing.T) {
	ctx := context.Background()
	existing := v1.Taint{Key: "example.com/other", Effect: v1.TaintEffectPreferNoSchedule}
	client := fake.NewSimpleClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "spot-1"}, Spec: v1.NodeSpec{Taints: []v1.Taint{existing}}})
	notice := v1.Taint{Key: "aws-node-termination-handler/spot-itn", Value: "notice", Effect: v1.TaintEffectNoSchedule}
	for i := 0; i < 2; i++ {
		if err := TaintNode(ctx, client, "spot-1", notice); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	n, err := client.CoreV1().Nodes().Get(ctx, "spot-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Spec.Taints) != 2 || !n.Spec.Taints[0].MatchTaint(&existing) || !n.Spec.Taints[1].MatchTaint(&notice) {
		t.Fatalf("taints %v, want the existing one and the notice once", n.Spec.Taints)
	}
	if err := TaintNode(ctx, client, "gone", notice); err == nil {
		t.Fatal("tainting a missing node succeeded")
	}
}

// TestPodReadyCountsFromBinding: the pod-ready stage waits PodReadyDelay from the pod's
// binding (kwok would otherwise restart the delay at every write to the pod), with half a
// second added to the condition's whole seconds, and keeps the plain delay as the fallback;
// the node-initialize stage keeps its plain delay and jitter.
func TestPodReadyCountsFromBinding(t *testing.T) {
	bin, dir := t.TempDir(), t.TempDir()
	built := "kind: Stage\nmetadata:\n  name: node-initialize\nspec:\n  resourceRef:\n    kind: Node\n---\nkind: Stage\nmetadata:\n  name: pod-ready\nspec:\n  resourceRef:\n    kind: Pod\n"
	if err := os.WriteFile(filepath.Join(bin, "kwok-stages.yaml"), []byte(built), 0o600); err != nil {
		t.Fatal(err)
	}
	path, err := kwokStages(bin, dir, 5*time.Second, 30*time.Second, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type delay struct {
		DurationMilliseconds       int64 `json:"durationMilliseconds"`
		JitterDurationMilliseconds int64 `json:"jitterDurationMilliseconds"`
		DurationFrom               *struct {
			JQ struct {
				Expression string `json:"expression"`
			} `json:"jq"`
		} `json:"durationFrom"`
	}
	got := map[string]delay{}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var stage struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Delay delay `json:"delay"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &stage); err != nil {
			t.Fatalf("stage %q: %v", doc, err)
		}
		got[stage.Metadata.Name] = stage.Spec.Delay
	}
	pod := got["pod-ready"]
	if pod.DurationMilliseconds != 5000 || pod.DurationFrom == nil {
		t.Fatalf("pod-ready delay %+v, want 5000 ms counted from the binding", pod)
	}
	want := `.status.conditions[]? | select(.type == "PodScheduled" and .status == "True") | .lastTransitionTime | fromdateiso8601 + 5 | todateiso8601 | sub("Z$"; ".500Z")`
	if pod.DurationFrom.JQ.Expression != want {
		t.Errorf("pod-ready expression\n%s\nwant\n%s", pod.DurationFrom.JQ.Expression, want)
	}
	if node := got["node-initialize"]; node.DurationMilliseconds != 30000 || node.JitterDurationMilliseconds != 60000 || node.DurationFrom != nil {
		t.Errorf("node-initialize delay %+v, want 30000 ms with jitter to 60000 and no expression", node)
	}
}
