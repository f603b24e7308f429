package v1alpha1

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var argsPath = field.NewPath("pluginConfig").Key("SpotScore").Child("args")

func decode(t *testing.T, raw string, contentType string) (*SpotScoreArgs, error) {
	t.Helper()
	var obj runtime.Object
	if raw != "" {
		obj = &runtime.Unknown{ContentType: contentType, Raw: []byte(raw)}
	}
	return DecodeSpotScoreArgs(obj, argsPath)
}

func TestDecodeDefaults(t *testing.T) {
	for _, raw := range []string{"", "{}"} {
		args, err := decode(t, raw, runtime.ContentTypeJSON)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if diff := cmp.Diff(DefaultTiers(), args.Tiers); diff != "" {
			t.Errorf("tiers (-want +got): %s", diff)
		}
		if args.DefaultTier != TierOnDemand || *args.SpreadWeight != DefaultSpreadWeight || !*args.CordonedIsAtRisk {
			t.Errorf("defaults not applied: %+v", args)
		}
		if diff := cmp.Diff(DefaultAtRiskTaints(), args.AtRiskTaints); diff != "" {
			t.Errorf("at-risk taints (-want +got): %s", diff)
		}
		if diff := cmp.Diff(DefaultPoolLabelKeys(), args.PoolLabelKeys); diff != "" {
			t.Errorf("pool keys (-want +got): %s", diff)
		}
	}
}

func TestDecodeYAMLAndCustomTiers(t *testing.T) {
	args, err := decode(t, `
apiVersion: spot-scheduler.io/v1alpha1
kind: SpotScoreArgs
tiers:
- name: spot
  reclaimable: true
  nodeSelectors:
  - matchExpressions: [{key: capacity, operator: In, values: [spot]}]
- name: ondemand
defaultTier: ondemand
spreadWeight: 0
`, runtime.ContentTypeYAML)
	if err != nil {
		t.Fatal(err)
	}
	if len(args.Tiers) != 2 || args.DefaultTier != "ondemand" || *args.SpreadWeight != 0 {
		t.Errorf("decoded %+v", args)
	}
}

func TestValidationNamesTheField(t *testing.T) {
	tests := []struct {
		name, raw string
		wantErrs  []string
	}{
		{"empty tier list", `{"tiers": []}`, []string{"pluginConfig[SpotScore].args.tiers: Required value"}},
		{"too many tiers", `{"tiers": [` + strings.Repeat(`{"name":"on-demand"},`, 10) + `{"name":"x","taintKeys":["k"]}]}`,
			[]string{"pluginConfig[SpotScore].args.tiers: Too many: 11: must have at most 10 items"}},
		{"duplicate names", `{"tiers": [{"name":"on-demand"},{"name":"on-demand"}]}`, []string{`pluginConfig[SpotScore].args.tiers[1].name: Duplicate value: "on-demand"`}},
		{"bad name", `{"tiers": [{"name":"On Demand"}], "defaultTier": "On Demand"}`, []string{`pluginConfig[SpotScore].args.tiers[0].name: Invalid value: "On Demand"`}},
		{"unknown operator", `{"tiers": [{"name":"spot","nodeSelectors":[{"matchExpressions":[{"key":"a","operator":"Like","values":["b"]}]}]},{"name":"on-demand"}]}`,
			[]string{`pluginConfig[SpotScore].args.tiers[0].nodeSelectors[0].matchExpressions[0].operator: Unsupported value: "Like": supported values: "In", "NotIn", "Exists", "DoesNotExist"`}},
		{"In without values", `{"tiers": [{"name":"spot","nodeSelectors":[{"matchExpressions":[{"key":"a","operator":"In"}]}]},{"name":"on-demand"}]}`,
			[]string{"pluginConfig[SpotScore].args.tiers[0].nodeSelectors[0].matchExpressions[0].values: Required value"}},
		{"empty selector", `{"tiers": [{"name":"spot","nodeSelectors":[{}]},{"name":"on-demand"}]}`, []string{"pluginConfig[SpotScore].args.tiers[0].nodeSelectors[0]: Required value"}},
		{"bad label value", `{"tiers": [{"name":"spot","nodeSelectors":[{"matchLabels":{"a":"b c"}}]},{"name":"on-demand"}]}`,
			[]string{"pluginConfig[SpotScore].args.tiers[0].nodeSelectors[0].matchLabels: Invalid value"}},
		{"tier matching nothing", `{"tiers": [{"name":"spot"},{"name":"on-demand"}]}`, []string{`pluginConfig[SpotScore].args.tiers[0].nodeSelectors: Required value: tier "spot" matches no node`}},
		{"bad taint key", `{"tiers": [{"name":"burst","taintKeys":["bad key"]},{"name":"on-demand"}]}`, []string{`pluginConfig[SpotScore].args.tiers[0].taintKeys[0]: Invalid value: "bad key"`}},
		{"unknown default tier", `{"defaultTier": "cheap"}`, []string{`pluginConfig[SpotScore].args.defaultTier: Unsupported value: "cheap": supported values: "burst", "on-demand", "reserved", "spot"`}},
		{"bad at-risk taint", `{"atRiskTaints": [{"key": "not valid/*/x"}]}`, []string{`pluginConfig[SpotScore].args.atRiskTaints[0].key: Invalid value: "not valid/*/x"`}},
		{"bad at-risk prefix", `{"atRiskTaints": [{"key": "Bad_Prefix/*"}]}`, []string{`pluginConfig[SpotScore].args.atRiskTaints[0].key: Invalid value: "Bad_Prefix/*": prefix before /*`}},
		{"duplicate pool key", `{"poolLabelKeys": ["a", "a"]}`, []string{`pluginConfig[SpotScore].args.poolLabelKeys[1]: Duplicate value: "a"`}},
		{"bad topology key", `{"poolTopologyKeys": ["a b"]}`, []string{`pluginConfig[SpotScore].args.poolTopologyKeys[0]: Invalid value: "a b"`}},
		{"spread weight too high", `{"spreadWeight": 100}`, []string{"pluginConfig[SpotScore].args.spreadWeight: Invalid value: 100: must be between 0 and 99"}},
		{"spread weight negative", `{"spreadWeight": -5}`, []string{"pluginConfig[SpotScore].args.spreadWeight: Invalid value: -5"}},
		{"wrong apiVersion", `{"apiVersion": "v1"}`, []string{`pluginConfig[SpotScore].args.apiVersion: Unsupported value: "v1": supported values: "spot-scheduler.io/v1alpha1"`}},
		{"wrong kind", `{"kind": "Pod"}`, []string{`pluginConfig[SpotScore].args.kind: Unsupported value: "Pod": supported values: "SpotScoreArgs"`}},
		{"unknown field", `{"tiers": [{"name": "on-demand", "selector": {}}]}`, []string{`unknown field "tiers[0].selector"`}},
		{"wrong type", `{"spreadWeight": "high"}`, []string{"decoding pluginConfig[SpotScore].args"}},
		{"policy base negative", `{"defaultCapacityPolicy": {"onDemandBase": -1}}`,
			[]string{"pluginConfig[SpotScore].args.defaultCapacityPolicy.onDemandBase: Invalid value: -1: must be an integer from 0 to 100000"}},
		{"policy share over 100", `{"defaultCapacityPolicy": {"spotSharePercent": 120}}`,
			[]string{"pluginConfig[SpotScore].args.defaultCapacityPolicy.spotSharePercent: Invalid value: 120: must be an integer percent from 0 to 100"}},
		{"policy pool cap zero", `{"defaultCapacityPolicy": {"maxPerPool": 0}}`,
			[]string{`pluginConfig[SpotScore].args.defaultCapacityPolicy.maxPerPool: Invalid value: "0": must be a count from 1 to 100000`}},
		{"policy pool cap bad percent", `{"defaultCapacityPolicy": {"maxPerPool": "150%"}}`,
			[]string{`pluginConfig[SpotScore].args.defaultCapacityPolicy.maxPerPool: Invalid value: "150%"`, `"1%" to "100%"`}},
		{"policy pool cap count as string", `{"defaultCapacityPolicy": {"maxPerPool": "3"}}`,
			[]string{`pluginConfig[SpotScore].args.defaultCapacityPolicy.maxPerPool: Invalid value: "3"`}},
		// Prices and the reclaim history.
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
		{"several errors at once", `{"tiers": [{"name":""}], "spreadWeight": 200}`,
			[]string{"pluginConfig[SpotScore].args.tiers[0].name: Invalid value", "pluginConfig[SpotScore].args.spreadWeight: Invalid value: 200"}},
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

func TestDecodeCapacityPolicy(t *testing.T) {
	args, err := decode(t, "defaultCapacityPolicy: {onDemandBase: 2, spotSharePercent: 75, maxPerPool: 50%}", runtime.ContentTypeYAML)
	if err != nil {
		t.Fatal(err)
	}
	p := args.DefaultCapacityPolicy
	if p == nil || *p.OnDemandBase != 2 || *p.SpotSharePercent != 75 || p.MaxPerPool.String() != "50%" {
		t.Errorf("decoded %+v", p)
	}
	if args, err := decode(t, "{}", runtime.ContentTypeJSON); err != nil || args.DefaultCapacityPolicy != nil {
		t.Errorf("default: policy %+v (%v), want none", args.DefaultCapacityPolicy, err)
	}
}

func TestDecodeRejectsOtherTypes(t *testing.T) {
	if _, err := DecodeSpotScoreArgs(&runtime.Unknown{ContentType: "application/xml", Raw: []byte("<x/>")}, argsPath); err == nil {
		t.Error("want an error for XML args")
	}
}
