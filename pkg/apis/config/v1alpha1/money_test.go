package v1alpha1

import (
	"strings"
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

func TestMoneyValidationNamesTheField(t *testing.T) {
	tests := []struct {
		name, raw string
		wantErrs  []string
	}{
		{"unknown tier", `{"prices": {"table": [{"tier": "cheap", "perVCPUHour": 1}]}}`,
			[]string{`pluginConfig[SpotScore].args.prices.table[0].tier: Unsupported value: "cheap": supported values: "burst", "on-demand", "reserved", "spot"`}},
		{"negative price", `{"prices": {"table": [{"tier": "spot", "perVCPUHour": -0.01}]}}`,
			[]string{"pluginConfig[SpotScore].args.prices.table[0].perVCPUHour: Invalid value: -0.01: must be " + AllowedUnitPrice}},
		{"monthly price", `{"prices": {"table": [{"tier": "spot", "perGiBHour": 2500}]}}`,
			[]string{"pluginConfig[SpotScore].args.prices.table[0].perGiBHour: Invalid value: 2500: must be a number from 0 to 1000"}},
		{"price as text", `{"prices": {"table": [{"tier": "spot", "perVCPUHour": "cheap"}]}}`,
			[]string{"decoding pluginConfig[SpotScore].args", "perVCPUHour"}},
		{"bad instance type", `{"prices": {"table": [{"tier": "spot", "instanceType": "m5 xlarge"}]}}`,
			[]string{`pluginConfig[SpotScore].args.prices.table[0].instanceType: Invalid value: "m5 xlarge"`}},
		{"duplicate entry", `{"prices": {"table": [{"tier": "spot", "zone": "a"}, {"tier": "spot", "zone": "a"}]}}`,
			[]string{`pluginConfig[SpotScore].args.prices.table[1]: Duplicate value: "tier \"spot\", instanceType \"\", zone \"a\""`}},
		{"bad label key", `{"prices": {"nodeLabel": "price per hour"}}`,
			[]string{`pluginConfig[SpotScore].args.prices.nodeLabel: Invalid value: "price per hour"`}},
		{"unknown price field", `{"prices": {"perHour": 1}}`, []string{`unknown field "prices.perHour"`}},
		{"window in days", `{"reclaimHistory": {"window": "7d"}}`,
			[]string{`pluginConfig[SpotScore].args.reclaimHistory.window: Invalid value: "7d": must be a duration from 1m to 2160h (90 days)`}},
		{"window too long", `{"reclaimHistory": {"window": "10000h"}}`,
			[]string{`pluginConfig[SpotScore].args.reclaimHistory.window: Invalid value: "10000h"`}},
		{"weight too high", `{"reclaimHistory": {"weight": 5000}}`,
			[]string{"pluginConfig[SpotScore].args.reclaimHistory.weight: Invalid value: 5000: must be an integer percent from 0 to 1000"}},
		{"bad namespace", `{"reclaimHistory": {"namespace": "Spot_System"}}`,
			[]string{`pluginConfig[SpotScore].args.reclaimHistory.namespace: Invalid value: "Spot_System"`}},
		{"bad name", `{"reclaimHistory": {"name": "history!"}}`,
			[]string{`pluginConfig[SpotScore].args.reclaimHistory.name: Invalid value: "history!"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(t, tc.raw, runtime.ContentTypeJSON)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}
