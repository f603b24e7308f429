package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

func TestDecodePricesAndReclaimHistory(t *testing.T) {
	args, err := decode(t, "{}", runtime.ContentTypeJSON)
	if err != nil {
		t.Fatal(err)
	}
	if p := args.Prices; p == nil || p.NodeLabel == nil || *p.NodeLabel != DefaultPriceLabel || p.Table != nil {
		t.Errorf("default prices %+v", p)
	}
	h := args.ReclaimHistory
	if h == nil || h.Namespace != DefaultReclaimHistoryNamespace || h.Name != DefaultReclaimHistoryName || h.Window != DefaultReclaimWindow || *h.Weight != DefaultReclaimWeight {
		t.Errorf("default reclaim history %+v", h)
	}

	args, err = decode(t, `
prices:
  nodeLabel: ""
  table:
  - {tier: spot, perVCPUHour: 0.0108, perGiBHour: 0.0009}
  - {tier: spot, instanceType: m5.xlarge, zone: us-east-1a, perVCPUHour: 0.01, perGiBHour: 0.001}
  - {tier: on-demand, perVCPUHour: 0.036, perGiBHour: 0.003}
reclaimHistory: {namespace: spot-system, name: history, window: 24h, weight: 0}
`, runtime.ContentTypeYAML)
	if err != nil {
		t.Fatal(err)
	}
	if *args.Prices.NodeLabel != "" || len(args.Prices.Table) != 3 || args.Prices.Table[1].InstanceType != "m5.xlarge" || args.Prices.Table[0].PerVCPUHour != 0.0108 {
		t.Errorf("decoded prices %+v", args.Prices)
	}
	if h := args.ReclaimHistory; h.Namespace != "spot-system" || h.Name != "history" || h.Window != "24h" || *h.Weight != 0 {
		t.Errorf("decoded reclaim history %+v", h)
	}
}
