package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"k8s.io/component-base/configz"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	"k8s.io/kubernetes/pkg/scheduler"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"

	"github.com/spot-scheduler/spot-scheduler/pkg/preempt"
	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
)

// setupScheduler runs a configuration file through kube-scheduler's own Setup, with our
// plugins registered, against a dummy API endpoint (Setup does not need a live cluster).
func setupScheduler(t *testing.T, configFile string) (*scheduler.Scheduler, error) {
	t.Helper()
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(server.Close)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {token: t}}]
current-context: c
`, server.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	// With --config, kube-scheduler reads the kubeconfig path from the file only.
	data, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	withClient := filepath.Join(t.TempDir(), "config.yaml")
	data = append(data, []byte(fmt.Sprintf("\nclientConnection:\n  kubeconfig: %q\n", kubeconfig))...)
	if err := os.WriteFile(withClient, data, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := options.NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	for _, f := range opts.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse([]string{"--config", withClient}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	opts.SecureServing.Listener = l
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Setup registers the configuration with configz; a second Setup in this process would fail.
	t.Cleanup(func() { configz.Delete("componentconfig") })
	_, sched, err := app.Setup(ctx, opts, RegistryOptions()...)
	return sched, err
}

func pluginNames(ps []config.Plugin) []string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return names
}

func weightOf(ps []config.Plugin, name string) int32 {
	for _, p := range ps {
		if p.Name == name {
			return p.Weight
		}
	}
	return 0
}

// TestExampleConfigs loads every shipped example configuration through the scheduler's own
// Setup and checks the resulting plugin sets of the spot-scheduler profile.
func TestExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../../manifests/examples/*.yaml")
	files = append(files, "../../../manifests/scheduler-config.yaml")
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	// Default-profile plugins the spot-scheduler profile must keep, at each extension point.
	wantFilters := []string{"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts", "NodeResourcesFit", "VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding", "VolumeZone", "PodTopologySpread", "InterPodAffinity"}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			sched, err := setupScheduler(t, file)
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			fwk, ok := sched.Profiles["spot-scheduler"]
			if !ok {
				t.Fatalf("no spot-scheduler profile, got %v", sched.Profiles)
			}
			plugins := fwk.ListPlugins()
			if w := weightOf(plugins.Score.Enabled, spotscore.Name); w != 1000 {
				t.Errorf("SpotScore score weight = %d, want 1000; score plugins %v", w, plugins.Score.Enabled)
			}
			if !contains(pluginNames(plugins.PostBind.Enabled), spotscore.Name) {
				t.Errorf("SpotScore missing from PostBind (pods scheduled per tier): %v", pluginNames(plugins.PostBind.Enabled))
			}
			if !contains(pluginNames(plugins.PreScore.Enabled), spotscore.Name) {
				t.Errorf("SpotScore missing from PreScore: %v", pluginNames(plugins.PreScore.Enabled))
			}
			filters := pluginNames(plugins.Filter.Enabled)
			if !contains(filters, preempt.Name) {
				t.Errorf("%s missing from Filter (its tier gate): %v", preempt.Name, filters)
			}
			for _, want := range wantFilters {
				if !contains(filters, want) {
					t.Errorf("filter %s missing: %v", want, filters)
				}
			}
			// SpotScore between the two: it catches a tier search the filters disagreed with
			// before standard preemption would act on the narrowed nodes.
			wantPostFilter := []string{preempt.Name, spotscore.Name, "DefaultPreemption"}
			if strings.Contains(file, "placeholder-only") {
				wantPostFilter = []string{preempt.Name, spotscore.Name}
			}
			for _, ext := range []config.PluginSet{plugins.PreFilter, plugins.Filter} {
				if !contains(pluginNames(ext.Enabled), spotscore.Name) {
					t.Errorf("SpotScore missing from PreFilter or Filter (its tier search): %v", pluginNames(ext.Enabled))
				}
			}
			if diff := cmp.Diff(wantPostFilter, pluginNames(plugins.PostFilter.Enabled)); diff != "" {
				t.Errorf("PostFilter plugins (-want +got): %s", diff)
			}
			if strings.Contains(file, "coscheduling") {
				if got := pluginNames(plugins.QueueSort.Enabled); len(got) != 1 || got[0] != "Coscheduling" {
					t.Errorf("queueSort = %v, want [Coscheduling]", got)
				}
				if !contains(pluginNames(plugins.Permit.Enabled), "Coscheduling") {
					t.Errorf("Coscheduling missing from Permit: %v", pluginNames(plugins.Permit.Enabled))
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestBadConfigFailsSetup: a configuration SpotScore cannot honour stops the scheduler at
// start-up, with a message naming the field.
func TestBadConfigFailsSetup(t *testing.T) {
	profile := func(weight, pct, args string) string {
		return `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection: {leaderElect: false}
profiles:
- schedulerName: spot-scheduler
  ` + pct + `
  plugins:
    multiPoint:
      enabled:
      - name: SpotScore
        ` + weight + `
    postFilter:
      enabled:
      - name: PlaceholderPreemption
  pluginConfig:
  - name: SpotScore
    args: ` + args + `
`
	}
	tests := []struct {
		name, config, wantErr string
	}{
		{"weight too low", profile("weight: 10", "percentageOfNodesToScore: 100", "{}"), "plugins.score.enabled[SpotScore].weight is 10"},
		{"sampling without the tier search", strings.Replace(profile("weight: 1000", "", "{}"), "    postFilter:",
			"    filter:\n      disabled:\n      - name: SpotScore\n    postFilter:", 1), "enable SpotScore at preFilter and filter"},
		{"unknown operator", profile("weight: 1000", "percentageOfNodesToScore: 100",
			`{tiers: [{name: spot, nodeSelectors: [{matchExpressions: [{key: a, operator: Matches}]}]}, {name: on-demand}]}`),
			`pluginConfig[SpotScore].args.tiers[0].nodeSelectors[0].matchExpressions[0].operator: Unsupported value: "Matches": supported values: "In", "NotIn", "Exists", "DoesNotExist"`},
		{"empty tiers", profile("weight: 1000", "percentageOfNodesToScore: 100", `{tiers: []}`), "pluginConfig[SpotScore].args.tiers: Required value"},
		{"duplicate tier", profile("weight: 1000", "percentageOfNodesToScore: 100",
			`{tiers: [{name: on-demand}, {name: on-demand}]}`), `pluginConfig[SpotScore].args.tiers[1].name: Duplicate value: "on-demand"`},
		{"bad spread weight", profile("weight: 1000", "percentageOfNodesToScore: 100", `{spreadWeight: 100}`), "pluginConfig[SpotScore].args.spreadWeight: Invalid value: 100"},
		{"misspelt field", profile("weight: 1000", "percentageOfNodesToScore: 100", `{spreadWieght: 10}`), `unknown field "spreadWieght"`},
		{"bad placeholder threshold", profile("weight: 1000", "percentageOfNodesToScore: 100", "{}\n  - name: PlaceholderPreemption\n    args: {placeholderPriorityBelow: 2000000000}"),
			"pluginConfig[PlaceholderPreemption].args.placeholderPriorityBelow: Invalid value: 2000000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(file, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := setupScheduler(t, file)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Setup error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
