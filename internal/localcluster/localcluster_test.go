package localcluster

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
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
