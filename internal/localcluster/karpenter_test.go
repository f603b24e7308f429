package localcluster

import (
	"encoding/json"
	v1 "k8s.io/api/core/v1"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestKarpenterOptionsValidateNamesTheField(t *testing.T) {
	after := time.Second
	negative := -time.Second
	good := NodePool{Name: "spot", CapacityType: CapacityTypeSpot, Weight: 100, ConsolidateAfter: &after}
	for _, tc := range []struct {
		name string
		opts KarpenterOptions
		want string
	}{
		{"defaults", KarpenterOptions{NodePools: DefaultNodePools(), InstanceTypes: DefaultInstanceTypes()}, ""},
		{"capacity type", KarpenterOptions{NodePools: []NodePool{{Name: "x", CapacityType: "reserved"}}}, `Karpenter.NodePools[0].CapacityType: "reserved" is not one of "spot", "on-demand"`},
		{"no name", KarpenterOptions{NodePools: []NodePool{{CapacityType: CapacityTypeSpot}}}, "Karpenter.NodePools[0].Name: must not be empty"},
		{"twice", KarpenterOptions{NodePools: []NodePool{good, good}}, `Karpenter.NodePools[1].Name: "spot" is used twice`},
		{"policy", KarpenterOptions{NodePools: []NodePool{{Name: "x", CapacityType: CapacityTypeSpot, ConsolidationPolicy: "Always"}}}, `Karpenter.NodePools[0].ConsolidationPolicy: "Always" is not one of "WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"`},
		{"weight", KarpenterOptions{NodePools: []NodePool{{Name: "x", CapacityType: CapacityTypeSpot, Weight: 101}}}, "Karpenter.NodePools[0].Weight: 101 is outside 0..100"},
		{"after", KarpenterOptions{NodePools: []NodePool{{Name: "x", CapacityType: CapacityTypeSpot, ConsolidateAfter: &negative}}}, "Karpenter.NodePools[0].ConsolidateAfter: -1s is negative"},
		{"price", KarpenterOptions{InstanceTypes: []InstanceType{{Name: "c", CPU: 1, MemoryGi: 1, OnDemandPrice: 1, Zones: []string{"a"}}}}, "Karpenter.InstanceTypes[0]: OnDemandPrice and SpotPrice must be positive"},
		{"zones", KarpenterOptions{InstanceTypes: []InstanceType{{Name: "c", CPU: 1, MemoryGi: 1, OnDemandPrice: 1, SpotPrice: 1}}}, "Karpenter.InstanceTypes[0].Zones: must name at least one zone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestNodePoolObject(t *testing.T) {
	after := 5 * time.Second
	obj := NodePoolObject(NodePool{Name: "spot", CapacityType: CapacityTypeSpot, Weight: 100, CPULimit: "16", ConsolidateAfter: &after, InstanceTypes: []string{"c-4x"}})
	get := func(path ...string) any {
		v, _, err := unstructured.NestedFieldNoCopy(obj.Object, path...)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if get("spec", "weight") != int64(100) || get("spec", "limits", "cpu") != "16" ||
		get("spec", "disruption", "consolidateAfter") != "5s" || get("spec", "disruption", "consolidationPolicy") != ConsolidateWhenEmptyOrUnderutilized ||
		get("spec", "template", "spec", "nodeClassRef", "kind") != "KWOKNodeClass" {
		t.Fatalf("unexpected NodePool %v", obj.Object)
	}
	reqs := get("spec", "template", "spec", "requirements").([]any)
	if len(reqs) != 2 || reqs[0].(map[string]any)["key"] != KarpenterCapacityTypeLabel || reqs[1].(map[string]any)["values"].([]any)[0] != "c-4x" {
		t.Fatalf("requirements %v", reqs)
	}
	never := NodePoolObject(NodePool{Name: "od", CapacityType: CapacityTypeOnDemand})
	if v, _, _ := unstructured.NestedString(never.Object, "spec", "disruption", "consolidateAfter"); v != "Never" {
		t.Fatalf("consolidateAfter %q without a duration, want Never", v)
	}
	if _, found, _ := unstructured.NestedMap(never.Object, "spec", "limits"); found {
		t.Fatal("limits set without a CPU limit")
	}
	virtual := NodePoolObject(NodePool{Name: "virtual", CapacityType: CapacityTypeOnDemand, Labels: map[string]string{"type": "virtual-kubelet"},
		Taints: []v1.Taint{{Key: "virtual-kubelet.io/provider", Value: "azure", Effect: v1.TaintEffectNoSchedule}}})
	if v, _, _ := unstructured.NestedString(virtual.Object, "spec", "template", "metadata", "labels", "type"); v != "virtual-kubelet" {
		t.Fatalf("template label type=%q, want virtual-kubelet", v)
	}
	taints, _, _ := unstructured.NestedSlice(virtual.Object, "spec", "template", "spec", "taints")
	if len(taints) != 1 || taints[0].(map[string]any)["key"] != "virtual-kubelet.io/provider" || taints[0].(map[string]any)["effect"] != "NoSchedule" {
		t.Fatalf("template taints %v", taints)
	}
}

func TestWriteInstanceTypesOffersBothCapacityTypes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "types.json")
	if err := writeInstanceTypes(path, DefaultInstanceTypes()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var types []instanceTypeJSON
	if err := json.Unmarshal(data, &types); err != nil {
		t.Fatal(err)
	}
	if len(types) != 3 {
		t.Fatalf("%d instance types, want 3", len(types))
	}
	for _, it := range types {
		prices := map[string]float64{}
		for _, o := range it.Offerings {
			prices[o.Requirements[0].Values[0]] = o.Price
		}
		if prices[CapacityTypeSpot] <= 0 || prices[CapacityTypeSpot] >= prices[CapacityTypeOnDemand] {
			t.Errorf("%s: offerings %v, want spot cheaper than on-demand", it.Name, prices)
		}
	}
}
