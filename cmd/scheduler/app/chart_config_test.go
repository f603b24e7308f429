package app

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/klog/v2"
	schedv1 "k8s.io/kube-scheduler/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/preempt"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
	"github.com/spot-scheduler/spot-scheduler/test/chart"
)

// TestChartSchedulerConfigLoads renders the Helm chart with its default values and with the
// values file setting every option, and runs the KubeSchedulerConfiguration it renders through
// kube-scheduler's own Setup with our plugins: the chart can never ship a configuration the
// scheduler refuses. It also checks that the values reach the profile.
func TestChartSchedulerConfigLoads(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Helm CLI built from Go modules (hack/helm.sh)")
	}
	tests := []struct {
		name, release, namespace, profile string
		args                              []string
		weight                            int32
		postFilter                        []string
		queueSort                         string
		lease                             string
	}{
		{
			name: "defaults", release: "spot-scheduler", namespace: "spot-scheduler", profile: "spot-scheduler",
			weight: 1000, postFilter: []string{preempt.Name, spotscore.Name, "DefaultPreemption"}, queueSort: "PrioritySort", lease: "spot-scheduler",
		},
		{
			name: "all options", release: "spot", namespace: "spot-system", profile: "spot-scheduler-all",
			args:   []string{"-f", chart.AllOptionsValues},
			weight: 2000, postFilter: []string{preempt.Name, spotscore.Name}, queueSort: "Coscheduling", lease: "spot-scheduler-all",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := chart.Render(t, tc.release, tc.namespace, tc.args...)
			var raw schedv1.KubeSchedulerConfiguration
			if err := yaml.UnmarshalStrict(r.SchedulerConfig(t), &raw); err != nil {
				t.Fatalf("rendered configuration: %v", err)
			}
			le := raw.LeaderElection
			if le.LeaderElect == nil || !*le.LeaderElect || le.ResourceName != tc.lease || le.ResourceNamespace != tc.namespace || le.ResourceLock != "leases" {
				t.Errorf("leaderElection = %+v, want leases %s/%s", le, tc.namespace, tc.lease)
			}

			// packWithinTier (default on) configures NodeResourcesFit to MostAllocated.
			packs := false
			for _, pc := range raw.Profiles[0].PluginConfig {
				if pc.Name == "NodeResourcesFit" && strings.Contains(string(pc.Args.Raw), "MostAllocated") {
					packs = true
				}
			}
			if want := tc.name == "defaults"; packs != want {
				t.Errorf("NodeResourcesFit MostAllocated in the profile: %v, want %v (packWithinTier)", packs, want)
			}
			wantFitWeight := int32(1)
			if tc.name == "defaults" {
				wantFitWeight = 3
			}

			configFile := r.WriteSchedulerConfig(t, t.TempDir(), "")
			sched, err := setupScheduler(t, configFile)
			if err != nil {
				t.Fatalf("kube-scheduler Setup refused the chart's configuration: %v\n%s", err, r.SchedulerConfig(t))
			}
			if len(sched.Profiles) != 1 {
				t.Fatalf("profiles %v, want only %s", sched.Profiles, tc.profile)
			}
			fwk, ok := sched.Profiles[tc.profile]
			if !ok {
				t.Fatalf("no %s profile, got %v", tc.profile, sched.Profiles)
			}
			plugins := fwk.ListPlugins()
			if w := weightOf(plugins.Score.Enabled, spotscore.Name); w != tc.weight {
				t.Errorf("SpotScore weight = %d, want %d", w, tc.weight)
			}
			if w := weightOf(plugins.Score.Enabled, "NodeResourcesFit"); w != wantFitWeight {
				t.Errorf("NodeResourcesFit weight = %d, want %d", w, wantFitWeight)
			}
			if diff := cmp.Diff(tc.postFilter, pluginNames(plugins.PostFilter.Enabled)); diff != "" {
				t.Errorf("PostFilter (-want +got): %s", diff)
			}
			if got := pluginNames(plugins.QueueSort.Enabled); len(got) != 1 || got[0] != tc.queueSort {
				t.Errorf("queueSort = %v, want [%s]", got, tc.queueSort)
			}
			if tc.name == "all options" {
				if contains(pluginNames(plugins.Score.Enabled), "ImageLocality") {
					t.Errorf("ImageLocality still scores although extraPlugins.score disables it: %v", pluginNames(plugins.Score.Enabled))
				}
				if !contains(pluginNames(plugins.Permit.Enabled), "Coscheduling") {
					t.Errorf("Coscheduling missing from Permit: %v", pluginNames(plugins.Permit.Enabled))
				}
				// The default capacity policy reaches SpotScore's args, compiled as every
				// component compiles them.
				cfg, err := simulator.LoadConfig(klog.Background(), configFile)
				if err != nil {
					t.Fatal(err)
				}
				model, err := simulator.ModelOf(cfg, tc.profile)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := model.DefaultPolicy(), (policy.Policy{OnDemandBase: 2, SpotShare: 75, PoolPercent: 50}); got != want {
					t.Errorf("SpotScore's default capacity policy = %+v, want %+v", got, want)
				}
			}
		})
	}
}
