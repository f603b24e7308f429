package capacity

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
)

func defaultModel(t *testing.T) *Model {
	t.Helper()
	var cfg v1alpha1.CapacityModel
	v1alpha1.SetDefaultsCapacityModel(&cfg)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func node(labels map[string]string, taints ...v1.Taint) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: labels}, Spec: v1.NodeSpec{Taints: taints}}
}

func TestClassifyTiers(t *testing.T) {
	m := defaultModel(t)
	tests := []struct {
		name string
		node *v1.Node
		want string
	}{
		{"unlabelled is on-demand", node(nil), "on-demand"},
		{"karpenter reserved", node(map[string]string{"karpenter.sh/capacity-type": "reserved"}), "reserved"},
		{"karpenter on-demand", node(map[string]string{"karpenter.sh/capacity-type": "on-demand"}), "on-demand"},
		{"aks spot", node(map[string]string{"kubernetes.azure.com/scalesetpriority": "spot"}), "spot"},
		{"aks regular", node(map[string]string{"kubernetes.azure.com/scalesetpriority": "regular"}), "on-demand"},
		{"eks managed node group spot", node(map[string]string{"eks.amazonaws.com/capacityType": "SPOT"}), "spot"},
		{"eks on-demand", node(map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND"}), "on-demand"},
		{"karpenter spot", node(map[string]string{"karpenter.sh/capacity-type": "spot"}), "spot"},
		{"gke spot", node(map[string]string{"cloud.google.com/gke-spot": "true"}), "spot"},
		{"gke provisioning spot", node(map[string]string{"cloud.google.com/gke-provisioning": "spot"}), "spot"},
		{"gke preemptible", node(map[string]string{"cloud.google.com/gke-preemptible": "true"}), "spot"},
		{"oke preemptible", node(map[string]string{"oci.oraclecloud.com/oke-is-preemptible": "true"}), "spot"},
		{"kops spot worker (empty value)", node(map[string]string{"node-role.kubernetes.io/spot-worker": ""}), "spot"},
		{"virtual-kubelet label", node(map[string]string{"type": "virtual-kubelet"}), "burst"},
		{"virtual-kubelet taint", node(nil, v1.Taint{Key: "virtual-kubelet.io/provider", Value: "azure", Effect: v1.TaintEffectNoSchedule}), "burst"},
		{"fargate", node(map[string]string{"eks.amazonaws.com/compute-type": "fargate"}), "burst"},
		{"first matching tier wins", node(map[string]string{"karpenter.sh/capacity-type": "spot", "type": "virtual-kubelet"}), "spot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.Classify(tc.node).TierName; got != tc.want {
				t.Errorf("tier = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestClassifyRisk(t *testing.T) {
	m := defaultModel(t)
	taint := func(key string) v1.Taint { return v1.Taint{Key: key, Effect: v1.TaintEffectNoSchedule} }
	tests := []struct {
		name       string
		node       *v1.Node
		wantReason string
	}{
		{"healthy", node(nil), ""},
		{"karpenter disrupted", node(nil, taint("karpenter.sh/disrupted")), "karpenter.sh/disrupted"},
		{"nth spot-itn", node(nil, taint("aws-node-termination-handler/spot-itn")), "aws-node-termination-handler/spot-itn"},
		{"nth rebalance", node(nil, taint("aws-node-termination-handler/rebalance-recommendation")), "aws-node-termination-handler/rebalance-recommendation"},
		{"nth scheduled maintenance", node(nil, taint("aws-node-termination-handler/scheduled-maintenance")), "aws-node-termination-handler/scheduled-maintenance"},
		{"nth asg lifecycle", node(nil, taint("aws-node-termination-handler/asg-lifecycle-termination")), "aws-node-termination-handler/asg-lifecycle-termination"},
		{"aks preempt", node(nil, taint("aks-node-termination-handler/preempt")), "aks-node-termination-handler/preempt"},
		{"gke impending termination", node(nil, taint("cloud.google.com/impending-node-termination")), "cloud.google.com/impending-node-termination"},
		{"aks remediator", node(nil, taint("remediator.aks.microsoft.com/unschedulable")), "remediator.aks.microsoft.com/unschedulable"},
		{"out of service", node(nil, taint("node.kubernetes.io/out-of-service")), "node.kubernetes.io/out-of-service"},
		{"prefix needs the slash", node(nil, taint("aws-node-termination-handler-other")), ""},
		{"unrelated taint", node(nil, taint("dedicated")), ""},
		{"cordoned", &v1.Node{Spec: v1.NodeSpec{Unschedulable: true}}, RiskCordoned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := m.Classify(tc.node)
			if c.RiskReason != tc.wantReason || c.AtRisk != (tc.wantReason != "") {
				t.Errorf("risk = %v %q, want %q", c.AtRisk, c.RiskReason, tc.wantReason)
			}
		})
	}
}

func TestCordonedRiskCanBeTurnedOff(t *testing.T) {
	cfg := v1alpha1.CapacityModel{CordonedIsAtRisk: ptr.To(false)}
	v1alpha1.SetDefaultsCapacityModel(&cfg)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Classify(&v1.Node{Spec: v1.NodeSpec{Unschedulable: true}}).AtRisk {
		t.Error("cordoned node at risk although cordonedIsAtRisk is false")
	}
}

func TestPool(t *testing.T) {
	m := defaultModel(t)
	tests := []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"karpenter nodepool first", map[string]string{"karpenter.sh/nodepool": "spot-a", "eks.amazonaws.com/nodegroup": "ng", "node.kubernetes.io/instance-type": "m5.large", "topology.kubernetes.io/zone": "z1"},
			"karpenter.sh/nodepool=spot-a,node.kubernetes.io/instance-type=m5.large,topology.kubernetes.io/zone=z1"},
		{"aks agentpool", map[string]string{"kubernetes.azure.com/agentpool": "spot1"}, "kubernetes.azure.com/agentpool=spot1"},
		{"eks nodegroup", map[string]string{"eks.amazonaws.com/nodegroup": "ng"}, "eks.amazonaws.com/nodegroup=ng"},
		{"gke nodepool", map[string]string{"cloud.google.com/gke-nodepool": "p"}, "cloud.google.com/gke-nodepool=p"},
		{"oke node pool", map[string]string{"oci.oraclecloud.com/node-pool-id": "ocid"}, "oci.oraclecloud.com/node-pool-id=ocid"},
		{"topology only", map[string]string{"topology.kubernetes.io/zone": "z1"}, "topology.kubernetes.io/zone=z1"},
		{"nothing: own pool", nil, "node=n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.Classify(node(tc.labels)).Pool; got != tc.want {
				t.Errorf("pool = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWorkload(t *testing.T) {
	owner := func(uid, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: "ReplicaSet", Name: name, UID: k8stypes.UID(uid), Controller: ptr.To(true)}}
	}
	pod := func(ns string, labels map[string]string, refs []metav1.OwnerReference) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: labels, OwnerReferences: refs}}
	}
	web := map[string]string{"app": "web"}
	tests := []struct {
		name string
		a, b *v1.Pod
		want bool
	}{
		{"same owner", pod("ns", web, owner("u1", "rs")), pod("ns", nil, owner("u1", "rs")), true},
		{"different owner, same labels", pod("ns", web, owner("u1", "rs")), pod("ns", web, owner("u2", "rs2")), false},
		{"owner recreated under the same name", pod("ns", web, owner("u1", "rs")), pod("ns", web, owner("u2", "rs")), false},
		{"owners without UIDs, different names", pod("ns", web, owner("", "rs")), pod("ns", web, owner("", "rs2")), false},
		{"owner vs bare", pod("ns", web, owner("u1", "rs")), pod("ns", web, nil), false},
		{"bare, same labels", pod("ns", web, nil), pod("ns", web, nil), true},
		{"bare, same labels, other namespace", pod("ns", web, nil), pod("other", web, nil), false},
		{"bare, no labels", pod("ns", nil, nil), pod("ns", nil, nil), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ka, okA := WorkloadKey(tc.a)
			kb, okB := WorkloadKey(tc.b)
			if got := okA && okB && ka == kb; got != tc.want {
				t.Errorf("WorkloadKey agreement = %v (%q, %q), want %v", got, ka, kb, tc.want)
			}
		})
	}
}

// TestClassifyCacheFollowsNodeUpdates: an updated node is a new object (as informers deliver
// it) and is classified anew; the same object is served from the cache.
func TestClassifyCacheFollowsNodeUpdates(t *testing.T) {
	m := defaultModel(t)
	spotNode := node(map[string]string{"karpenter.sh/capacity-type": "spot"})
	if got := m.Classify(spotNode); got.TierName != "spot" || got.AtRisk {
		t.Fatalf("first classification %+v", got)
	}
	noticed := spotNode.DeepCopy()
	noticed.Spec.Taints = []v1.Taint{{Key: "karpenter.sh/disrupted", Effect: v1.TaintEffectNoSchedule}}
	if got := m.Classify(noticed); !got.AtRisk {
		t.Fatalf("updated node %+v, want at risk", got)
	}
	relabelled := noticed.DeepCopy()
	relabelled.Labels = map[string]string{"type": "virtual-kubelet"}
	relabelled.Spec.Taints = nil
	if got := m.Classify(relabelled); got.TierName != "burst" || got.AtRisk {
		t.Fatalf("relabelled node %+v, want burst, healthy", got)
	}
}

// TestTierNodeSelectorTerms: a tier's label selectors as node affinity terms select exactly the
// nodes the model puts in the tier (of those no better tier claims); tiers without label
// selectors have none.
func TestTierNodeSelectorTerms(t *testing.T) {
	m := defaultModel(t)
	spot := 1
	terms := m.TierNodeSelectorTerms(spot)
	if len(terms) != 8 {
		t.Fatalf("spot terms %v, want one per default spot rule (8)", terms)
	}
	selector, err := nodeaffinity.NewNodeSelector(&v1.NodeSelector{NodeSelectorTerms: terms})
	if err != nil {
		t.Fatal(err)
	}
	for _, labels := range []map[string]string{
		{"kubernetes.azure.com/scalesetpriority": "spot"}, {"karpenter.sh/capacity-type": "spot"},
		{"cloud.google.com/gke-spot": "true"}, {"node-role.kubernetes.io/spot-worker": ""},
		{"karpenter.sh/capacity-type": "on-demand"}, {"kubernetes.azure.com/scalesetpriority": "regular"}, nil,
	} {
		n := node(labels)
		if got, want := selector.Match(n), m.Classify(n).TierName == "spot"; got != want {
			t.Errorf("labels %v: terms match %v, model says spot %v", labels, got, want)
		}
	}
	if on := m.TierNodeSelectorTerms(2); on != nil {
		t.Errorf("the default tier (on-demand) has terms %v, want none: it is what no selector matches", on)
	}
	terms[0].MatchExpressions[0].Values[0] = "changed"
	if again := m.TierNodeSelectorTerms(spot); again[0].MatchExpressions[0].Values[0] == "changed" {
		t.Error("the caller's change reached the model")
	}
}

// TestPinningTerms: the default tier (on-demand) is pinned by one term that matches no other
// tier's selectors, so it selects exactly the nodes the model puts on on-demand; other tiers
// are pinned by their own selectors.
func TestPinningTerms(t *testing.T) {
	m := defaultModel(t)
	onDemand := 2
	terms := m.PinningTerms(onDemand)
	if len(terms) != 1 {
		t.Fatalf("on-demand pinning terms %v, want one term", terms)
	}
	selector, err := nodeaffinity.NewNodeSelector(&v1.NodeSelector{NodeSelectorTerms: terms})
	if err != nil {
		t.Fatal(err)
	}
	for _, labels := range []map[string]string{
		{"karpenter.sh/capacity-type": "on-demand"}, {"karpenter.sh/capacity-type": "spot"}, {"karpenter.sh/capacity-type": "reserved"},
		{"kubernetes.azure.com/scalesetpriority": "spot"}, {"kubernetes.azure.com/scalesetpriority": "regular"},
		{"node-role.kubernetes.io/spot-worker": ""}, {"type": "virtual-kubelet"}, {"eks.amazonaws.com/compute-type": "fargate"},
		{"eks.amazonaws.com/capacityType": "ON_DEMAND"}, nil,
	} {
		n := node(labels)
		if got, want := selector.Match(n), m.Classify(n).TierName == "on-demand"; got != want {
			t.Errorf("labels %v: terms match %v, model says on-demand %v", labels, got, want)
		}
	}
	if got, want := m.PinningTerms(1), m.TierNodeSelectorTerms(1); len(got) != len(want) {
		t.Errorf("spot pinning terms %v, want its own selectors %v", got, want)
	}
	// A tier defined by two labels at once cannot be excluded in one term.
	var cfg v1alpha1.CapacityModel
	v1alpha1.SetDefaultsCapacityModel(&cfg)
	cfg.Tiers = []v1alpha1.Tier{
		{Name: "spot", Reclaimable: true, NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"a": "1", "b": "2"}}}},
		{Name: "on-demand"},
	}
	cfg.DefaultTier = "on-demand"
	two, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if terms := two.PinningTerms(1); terms != nil {
		t.Errorf("pinning terms %v past a two-label tier, want none", terms)
	}
}
