package capacity_test

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
)

// fuzzModels are the default model and a custom one with taint-matched tiers, prefix risk
// taints and cordoning not at risk.
func fuzzModels(t testing.TB) []*capacity.Model {
	t.Helper()
	var models []*capacity.Model
	for _, raw := range []v1alpha1.CapacityModel{
		{},
		{
			Tiers: []v1alpha1.Tier{
				{Name: "spot", Reclaimable: true, NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "capacity", Operator: metav1.LabelSelectorOpIn, Values: []string{"spot", "preemptible"}}}}}},
				{Name: "cheap", TaintKeys: []string{"example.com/cheap"}},
				{Name: "standard"},
				{Name: "virtual", Reclaimable: true, NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "virtual", Operator: metav1.LabelSelectorOpExists}}}}},
			},
			DefaultTier:      "standard",
			AtRiskTaints:     []v1alpha1.TaintMatch{{Key: "example.com/*"}, {Key: "drain"}},
			CordonedIsAtRisk: new(bool),
			PoolLabelKeys:    []string{"pool"},
		},
	} {
		v1alpha1.SetDefaultsCapacityModel(&raw)
		m, err := capacity.New(raw)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	return models
}

// fuzzNode builds a node from free-form text: each line of labels is key=value, each line of
// taints key[=value]:effect.
func fuzzNode(name, labelText, taintText string, unschedulable bool) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}, Spec: v1.NodeSpec{Unschedulable: unschedulable}}
	for _, l := range strings.Split(labelText, "\n") {
		if l == "" {
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		n.Labels[k] = v
	}
	for _, l := range strings.Split(taintText, "\n") {
		if l == "" {
			continue
		}
		kv, effect, _ := strings.Cut(l, ":")
		k, v, _ := strings.Cut(kv, "=")
		n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: k, Value: v, Effect: v1.TaintEffect(effect)})
	}
	return n
}

// FuzzClassify: over arbitrary labels and taints, Classify never panics and its answer is
// coherent: a tier in range and named as the model names it; at risk exactly when there is a
// reason, which is an at-risk taint the node carries or cordoning; a non-empty pool; bands and
// ranks in range, at-risk bands after every healthy band; the same node, the same answer; and
// a node without labels or taints is in the default tier, healthy.
func FuzzClassify(f *testing.F) {
	for _, seed := range []struct {
		name, labels, taints string
		unschedulable        bool
	}{
		{"plain", "", "", false},
		{"karpenter-spot", "karpenter.sh/capacity-type=spot\nkarpenter.sh/nodepool=default\ntopology.kubernetes.io/zone=a", "", false},
		{"aks-spot-evicting", "kubernetes.azure.com/scalesetpriority=spot", "kubernetes.azure.com/scalesetpriority=spot:NoSchedule\naks-node-termination-handler/preempt:NoSchedule", false},
		{"eks", "eks.amazonaws.com/capacityType=SPOT\neks.amazonaws.com/nodegroup=ng", "aws-node-termination-handler/spot-itn:NoExecute", false},
		{"gke", "cloud.google.com/gke-spot=true\ncloud.google.com/gke-nodepool=p", "cloud.google.com/impending-node-termination:NoSchedule", true},
		{"virtual", "type=virtual-kubelet", "virtual-kubelet.io/provider=azure:NoSchedule", false},
		{"custom", "capacity=preemptible\npool=x\nvirtual=", "example.com/cheap:NoSchedule\nexample.com/reclaim:NoExecute\ndrain:", true},
		{"", "=\n==\n\x00=\xff", ":\n=:\n\n", false},
	} {
		f.Add(seed.name, seed.labels, seed.taints, seed.unschedulable)
	}
	models := fuzzModels(f)
	f.Fuzz(func(t *testing.T, name, labelText, taintText string, unschedulable bool) {
		node := fuzzNode(name, labelText, taintText, unschedulable)
		for mi, m := range models {
			c := m.Classify(node)
			if c.Tier < 0 || c.Tier >= m.NumTiers() || c.TierName != m.TierName(c.Tier) {
				t.Fatalf("model %d: tier %d %q out of range or misnamed (tiers %v)", mi, c.Tier, c.TierName, m.TierNames())
			}
			if c.AtRisk != (c.RiskReason != "") {
				t.Fatalf("model %d: atRisk %v with reason %q", mi, c.AtRisk, c.RiskReason)
			}
			if c.AtRisk && c.RiskReason != capacity.RiskCordoned {
				carried := false
				for _, taint := range node.Spec.Taints {
					carried = carried || taint.Key == c.RiskReason
				}
				if !carried || !m.IsAtRiskTaint(c.RiskReason) {
					t.Fatalf("model %d: risk reason %q is not an at-risk taint of the node", mi, c.RiskReason)
				}
			}
			if !c.AtRisk {
				for _, taint := range node.Spec.Taints {
					if m.IsAtRiskTaint(taint.Key) {
						t.Fatalf("model %d: healthy with at-risk taint %q", mi, taint.Key)
					}
				}
			}
			if c.RiskReason == capacity.RiskCordoned && !node.Spec.Unschedulable {
				t.Fatalf("model %d: cordoned reason on a schedulable node", mi)
			}
			if c.Pool == "" {
				t.Fatalf("model %d: empty pool", mi)
			}
			r := ranking.New(m)
			for _, avoid := range []bool{false, true} {
				if rank := r.TierRank(c.Tier, avoid); rank < 0 || rank >= m.NumTiers() {
					t.Fatalf("model %d: rank %d out of range", mi, rank)
				}
				b := r.For(avoid, policy.Decision{}).Band(c)
				if b < 0 || b >= r.NumBands() || (c.AtRisk != (b >= m.NumTiers())) {
					t.Fatalf("model %d: band %d (atRisk %v, %d bands)", mi, b, c.AtRisk, r.NumBands())
				}
			}
			if again := m.Classify(node.DeepCopy()); again != c {
				t.Fatalf("model %d: classified %+v then %+v", mi, c, again)
			}
		}
		bare := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		for mi, m := range models {
			if c := m.Classify(bare); c.AtRisk || c.TierName != map[int]string{0: v1alpha1.TierOnDemand, 1: "standard"}[mi] {
				t.Fatalf("model %d: a bare node is %+v, want the default tier, healthy", mi, c)
			}
		}
	})
}
