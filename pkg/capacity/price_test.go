package capacity

import (
	"errors"
	"math"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

func pricedModel(t *testing.T, weight int32) *Model {
	t.Helper()
	cfg := v1alpha1.CapacityModel{
		Prices: &v1alpha1.Prices{Table: []v1alpha1.PriceEntry{
			{Tier: "spot", PerVCPUHour: 0.01, PerGiBHour: 0.001},
			{Tier: "spot", InstanceType: "m5.xlarge", PerVCPUHour: 0.011, PerGiBHour: 0.0011},
			{Tier: "spot", InstanceType: "m5.xlarge", Zone: "zone-b", PerVCPUHour: 0.012, PerGiBHour: 0.0012},
			{Tier: "on-demand", PerVCPUHour: 0.036, PerGiBHour: 0.003},
		}},
		ReclaimHistory: &v1alpha1.ReclaimHistory{Weight: ptr.To(weight)},
	}
	v1alpha1.SetDefaultsCapacityModel(&cfg)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sizedNode(cpu, mem string, labels map[string]string) *v1.Node {
	res := v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem)}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: labels}, Status: v1.NodeStatus{Capacity: res, Allocatable: res}}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestPrice(t *testing.T) {
	m := pricedModel(t, 50)
	spot := map[string]string{"karpenter.sh/capacity-type": "spot"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name          string
		node          *v1.Node
		source        string
		perHour       float64
		vcpu, gib     float64
		reference     float64
		referenceFrom string
		badLabel      bool
	}{
		{"spot, tier entry", sizedNode("4", "16Gi", spot), PriceFromTable, 4*0.01 + 16*0.001, 0.01, 0.001, 4*0.036 + 16*0.003, PriceFromTable, false},
		{"spot, instance type entry", sizedNode("4", "16Gi", with(spot, v1.LabelInstanceTypeStable, "m5.xlarge", v1.LabelTopologyZone, "zone-a")),
			PriceFromTable, 4*0.011 + 16*0.0011, 0.011, 0.0011, 4*0.036 + 16*0.003, PriceFromTable, false},
		{"spot, instance type and zone entry", sizedNode("4", "16Gi", with(spot, v1.LabelInstanceTypeStable, "m5.xlarge", v1.LabelTopologyZone, "zone-b")),
			PriceFromTable, 4*0.012 + 16*0.0012, 0.012, 0.0012, 4*0.036 + 16*0.003, PriceFromTable, false},
		{"on-demand is its own reference", sizedNode("2", "8Gi", nil), PriceFromTable, 2*0.036 + 8*0.003, 0.036, 0.003, 2*0.036 + 8*0.003, PriceFromTable, false},
		// The label's price, split as the table entry splits it: CPU part 0.04/0.056 of it.
		{"label beats table", sizedNode("4", "16Gi", with(spot, v1alpha1.DefaultPriceLabel, "0.07")), PriceFromLabel, 0.07,
			0.07 * (0.04 / 0.056) / 4, 0.07 * (0.016 / 0.056) / 16, 4*0.036 + 16*0.003, PriceFromTable, false},
		{"label without a table entry: half each", sizedNode("4", "16Gi", with(map[string]string{"type": "virtual-kubelet"}, v1alpha1.DefaultPriceLabel, " 0.8 ")),
			PriceFromLabel, 0.8, 0.1, 0.025, 4*0.036 + 16*0.003, PriceFromTable, false},
		{"malformed label: the table", sizedNode("4", "16Gi", with(spot, v1alpha1.DefaultPriceLabel, "$0.07")), PriceFromTable, 4*0.01 + 16*0.001, 0.01, 0.001, 4*0.036 + 16*0.003, PriceFromTable, true},
		{"negative label", sizedNode("4", "16Gi", with(spot, v1alpha1.DefaultPriceLabel, "-1")), PriceFromTable, 4*0.01 + 16*0.001, 0.01, 0.001, 4*0.036 + 16*0.003, PriceFromTable, true},
		{"burst: unknown", sizedNode("40", "160Gi", map[string]string{"type": "virtual-kubelet"}), PriceUnknown, 0, 0, 0, 40*0.036 + 160*0.003, PriceFromTable, false},
		{"malformed label, no entry: unknown", sizedNode("4", "16Gi", map[string]string{"type": "virtual-kubelet", v1alpha1.DefaultPriceLabel: "NaN"}),
			PriceUnknown, 0, 0, 0, 4*0.036 + 16*0.003, PriceFromTable, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := m.Price(tc.node)
			var invalid *wellknown.InvalidValueError
			if tc.badLabel != errors.As(err, &invalid) {
				t.Fatalf("error %v, want a bad label error: %v", err, tc.badLabel)
			}
			if tc.badLabel && (invalid.Key != v1alpha1.DefaultPriceLabel || invalid.Allowed != wellknown.AllowedPriceValues) {
				t.Errorf("error %+v does not name the label and the allowed values", invalid)
			}
			if p.Source != tc.source || !near(p.PerHour, tc.perHour) || !near(p.PerVCPUHour, tc.vcpu) || !near(p.PerGiBHour, tc.gib) {
				t.Errorf("price %+v, want %s %v/h (%v per vCPU, %v per GiB)", p, tc.source, tc.perHour, tc.vcpu, tc.gib)
			}
			cpu, mem := capacityOf(tc.node)
			if p.Known() && !near(p.Of(cpu, mem), p.PerHour) {
				t.Errorf("the node's resources at its rates cost %v, want its price %v", p.Of(cpu, mem), p.PerHour)
			}
			ref, _ := m.ReferencePrice(tc.node)
			if ref.Source != tc.referenceFrom || !near(ref.PerHour, tc.reference) {
				t.Errorf("reference price %+v, want %s %v", ref, tc.referenceFrom, tc.reference)
			}
		})
	}
}

func TestPriceWithoutTableOrLabel(t *testing.T) {
	m := defaultModel(t)
	p, err := m.Price(sizedNode("4", "16Gi", nil))
	if err != nil || p.Known() || p.Source != PriceUnknown {
		t.Errorf("price %+v (%v), want unknown", p, err)
	}
	if m.ReferenceTier() != 2 || m.TierName(m.ReferenceTier()) != "on-demand" {
		t.Errorf("reference tier %d", m.ReferenceTier())
	}
}

func TestPoolLoad(t *testing.T) {
	m := pricedModel(t, 50)
	if m.PoolLoad(3, 0) != 3 {
		t.Errorf("no reclaims: load %v, want the replica count", m.PoolLoad(3, 0))
	}
	for _, r := range []int{1, 3, 20, 1000} {
		if empty, one := m.PoolLoad(0, r), m.PoolLoad(1, 0); empty >= 0.5 || empty >= one {
			t.Errorf("%d reclaims: an empty pool loads %v, a clean pool with one replica %v: the spread must come first", r, empty, one)
		}
		if m.PoolLoad(0, r) <= m.PoolLoad(0, r-1) || m.PoolLoad(2, r) <= m.PoolLoad(2, r-1) {
			t.Errorf("%d reclaims: load does not grow with the reclaims", r)
		}
	}
	// 3 reclaims at 50 %: each replica counts 2.5.
	if got := m.PoolLoad(2, 3) - m.PoolLoad(0, 3); !near(got, 5) {
		t.Errorf("2 replicas in a pool reclaimed 3 times: %v, want 5", got)
	}
	off := pricedModel(t, 0)
	if off.PoolLoad(2, 3) != 2 || off.RanksByRisk(Reclaims{"p": 3}) {
		t.Error("weight 0 ranks by risk")
	}
	if !m.RanksByRisk(Reclaims{"p": 1}) || m.RanksByRisk(nil) {
		t.Error("RanksByRisk")
	}
}
