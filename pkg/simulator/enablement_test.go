package simulator_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/klog/v2"

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
