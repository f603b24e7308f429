package simulator_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/testobj"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

// TestModelOfFollowsKubeSchedulerEnablement: whether a profile scores with SpotScore is
// kube-scheduler's own decision (multiPoint expansion, "*" in a disabled list), not a copy of
// its rules: a profile that disables every default plugin and enables SpotScore with a few
// others is accepted, as spot-scheduler accepts it; profiles that leave SpotScore out of
// scoring are refused, naming it.
func TestModelOfFollowsKubeSchedulerEnablement(t *testing.T) {
	tests := []struct {
		name    string
		plugins string
		wantErr string
	}{
		{"every default disabled, SpotScore enabled with a few", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}, {name: PrioritySort}, {name: DefaultBinder}, {name: NodeResourcesFit}]
      disabled: [{name: "*"}]`, ""},
		{"SpotScore at multiPoint", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]`, ""},
		{"SpotScore at multiPoint, every score plugin disabled", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]
    score:
      disabled: [{name: "*"}]`, "does not enable SpotScore"},
		{"SpotScore at multiPoint, disabled at score", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]
    score:
      disabled: [{name: SpotScore}]`, "does not enable SpotScore"},
		{"no SpotScore", `
    multiPoint:
      enabled: [{name: NodeResourcesFit}]`, "does not enable SpotScore"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			config := `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: spot-scheduler
  plugins:` + tc.plugins + "\n"
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			model, err := simulator.LoadModel(klog.Background(), path, "spot-scheduler")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr == "" && model == nil:
				t.Fatal("no model")
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}

// writeProfile writes a configuration whose one profile, spot-scheduler, has the given plugins
// (YAML under "plugins:", indented by four) and pluginConfig (indented by two, may be empty).
func writeProfile(t *testing.T, plugins, pluginConfig string) string {
	t.Helper()
	config := `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: spot-scheduler
  plugins:` + plugins + "\n" + pluginConfig
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load builds the profile for simulation as explain does (kube-scheduler's loader, then New),
// with a fake clientset behind the informers.
func load(t *testing.T, path string, opts ...simulator.Option) (*simulator.Simulator, error) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	cs := fake.NewClientset()
	return simulator.Load(ctx, path, "spot-scheduler", cs, informers.NewSharedInformerFactory(cs, 0), opts...)
}

// TestModelOfAgreesWithNew: two components decide whether a profile scores with SpotScore.
// New builds the whole profile with kube-scheduler's framework and lists its Score plugins;
// ModelOf (which must answer before any server is contacted) builds only SpotScore, the queue
// sort and the binder from the profile's lists narrowed to SpotScore and "*". On a table of
// valid profiles both must give kube-scheduler's answer, so that an upstream change to its
// enablement rules that breaks the narrowing fails here. The first row is the profile of
// issue 28: every default disabled, SpotScore enabled with a few others.
func TestModelOfAgreesWithNew(t *testing.T) {
	const refused = "does not enable SpotScore"
	tests := []struct {
		name    string
		plugins string
		wantErr string
	}{
		{"every default disabled, SpotScore enabled with a few", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}, {name: PrioritySort}, {name: DefaultBinder}, {name: NodeResourcesFit}]
      disabled: [{name: "*"}]`, ""},
		{"SpotScore at multiPoint", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]`, ""},
		{"SpotScore at score only", `
    score:
      enabled: [{name: SpotScore, weight: 1000}]`, ""},
		{"SpotScore at multiPoint and again at score", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]
    score:
      enabled: [{name: SpotScore, weight: 500}]`, ""},
		{"every score plugin disabled, SpotScore re-enabled at score", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]
    score:
      enabled: [{name: SpotScore, weight: 1000}]
      disabled: [{name: "*"}]`, ""},
		{"every default disabled at multiPoint, SpotScore at score", `
    multiPoint:
      enabled: [{name: PrioritySort}, {name: DefaultBinder}, {name: NodeResourcesFit}]
      disabled: [{name: "*"}]
    score:
      enabled: [{name: SpotScore, weight: 1000}]`, ""},
		{"SpotScore at multiPoint, every score plugin disabled", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]
    score:
      disabled: [{name: "*"}]`, refused},
		{"SpotScore at multiPoint, disabled at score", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]
    score:
      disabled: [{name: SpotScore}]`, refused},
		{"SpotScore at filter only", `
    filter:
      enabled: [{name: SpotScore}]`, refused},
		// multiPoint.disabled only removes default plugins: the profile's own entry stays.
		{"SpotScore enabled and disabled at multiPoint", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]
      disabled: [{name: SpotScore}]`, ""},
		{"every default disabled, no SpotScore", `
    multiPoint:
      enabled: [{name: PrioritySort}, {name: DefaultBinder}, {name: NodeResourcesFit}]
      disabled: [{name: "*"}]`, refused},
		{"no SpotScore", `
    multiPoint:
      enabled: [{name: NodeResourcesFit}]`, refused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeProfile(t, tc.plugins, "")
			check := func(who string, err error) {
				t.Helper()
				switch {
				case tc.wantErr == "" && err != nil:
					t.Errorf("%s refused it: %v", who, err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `profile "spot-scheduler"`)):
					t.Errorf("%s: error %v, want one naming the profile and saying %q", who, err, tc.wantErr)
				}
			}
			model, err := simulator.LoadModel(klog.Background(), path, "spot-scheduler")
			check("ModelOf", err)
			sim, err := load(t, path)
			check("New", err)
			if tc.wantErr == "" && err == nil && (sim.Model == nil || model == nil) {
				t.Errorf("accepted without a capacity model (ModelOf %v, New %v)", model, sim.Model)
			}
		})
	}
}

// TestIssue28ProfileSimulates: the profile that disables every default plugin and enables
// SpotScore, PrioritySort, DefaultBinder and NodeResourcesFit simulates with exactly those:
// the node too small for the pod is rejected by NodeResourcesFit, the tainted one is not
// (TaintToleration is off), and SpotScore ranks the spot node first.
func TestIssue28ProfileSimulates(t *testing.T) {
	path := writeProfile(t, `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}, {name: PrioritySort}, {name: DefaultBinder}, {name: NodeResourcesFit}]
      disabled: [{name: "*"}]`, "")
	sim, err := load(t, path)
	if err != nil {
		t.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(t)
	me := pod("me", "web", "", "2")
	nodes := []*v1.Node{
		spotNode("spot-small", "1"),
		node("spot-tainted", "4", testobj.SpotLabels, v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}),
		odNode("od-1", "4"),
	}
	eval := evaluate(ctx, t, sim, nodes, nil, me)
	got := map[string]simulator.NodeVerdict{}
	for _, n := range eval.Nodes {
		got[n.Node] = n
	}
	if n := got["spot-small"]; n.Feasible || n.FailedPlugin != "NodeResourcesFit" {
		t.Errorf("spot-small: %+v, want rejected by NodeResourcesFit", n)
	}
	if n := got["spot-tainted"]; !n.Feasible {
		t.Errorf("spot-tainted: %+v, want feasible (the profile has no TaintToleration)", n)
	}
	if eval.Chosen != "spot-tainted" {
		t.Errorf("chosen %q, want spot-tainted (SpotScore ranks spot first)", eval.Chosen)
	}
}

// coschedulingProfile enables scheduler-plugins' Coscheduling, which builds a
// controller-runtime client of PodGroups from the framework's kubeconfig.
const coschedulingProfile = `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}, {name: Coscheduling}]
    queueSort:
      enabled: [{name: Coscheduling}]
      disabled: [{name: "*"}]`

// TestPluginNeedingKubeConfig: a plugin that needs the kubeconfig is built with the one given
// (WithKubeConfig, as the rebalancer and explain pass theirs); without one, New fails with an
// error naming the plugin instead of panicking.
func TestPluginNeedingKubeConfig(t *testing.T) {
	path := writeProfile(t, coschedulingProfile, "")
	_, err := load(t, path)
	if err == nil || !strings.Contains(err.Error(), "Coscheduling") || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("without a kubeconfig: error %v, want one naming Coscheduling and the missing kubeconfig", err)
	}
	// Building the plugin contacts no server (its client and cache start lazily), so an
	// unreachable one will do.
	if _, err := load(t, path, simulator.WithKubeConfig(&rest.Config{Host: "https://offline.invalid"})); err != nil {
		t.Errorf("with a kubeconfig: %v", err)
	}
}

// TestResourceClaimsEvaluate: the simulation has no DRA manager; DynamicResources stands aside
// as with its feature off, so a pod holding a ResourceClaim is evaluated (explain may be asked
// about one) instead of crashing the plugin.
func TestResourceClaimsEvaluate(t *testing.T) {
	sim := testobj.Simulator(t, shippedConfig)
	_, ctx := ktesting.NewTestContext(t)
	me := pod("me", "web", "", "1")
	me.Spec.ResourceClaims = []v1.PodResourceClaim{{Name: "gpu", ResourceClaimName: ptr.To("gpu-claim")}}
	eval := evaluate(ctx, t, sim, []*v1.Node{spotNode("spot-1", "4")}, nil, me)
	if eval.Chosen != "spot-1" {
		t.Errorf("chosen %q, want spot-1 (%+v)", eval.Chosen, eval.Nodes)
	}
}
