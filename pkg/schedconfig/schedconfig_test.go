package schedconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	return filepath.Join("..", "..", rel)
}

const header = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
`

const spotProfile = `profiles:
- schedulerName: spot-scheduler
  plugins:
    multiPoint:
      enabled:
      - name: SpotScore
        weight: 1000
`

func TestShippedConfigurations(t *testing.T) {
	examples, err := filepath.Glob(repoFile(t, "manifests/examples/*.yaml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	defaultTiers := []string{"reserved", "spot", "on-demand", "burst"}
	want := map[string]struct {
		tiers        []string
		defaultTier  string
		spreadWeight int32
		lease        string
	}{
		"scheduler-config.yaml":              {defaultTiers, "on-demand", 50, "kube-system/spot-scheduler"},
		"scheduler-config-coscheduling.yaml": {defaultTiers, "on-demand", 50, "kube-system/spot-scheduler"},
		"scheduler-config-custom-tiers.yaml": {[]string{"committed", "spot", "ondemand", "virtual"}, "ondemand", 80, "spot-scheduler/spot-scheduler"},
	}
	files := append([]string{repoFile(t, "manifests/scheduler-config.yaml")}, examples...)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			p, err := Load(file, "")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if p.Name != DefaultProfile || p.File != file {
				t.Errorf("profile %q from %q, want %q from %q", p.Name, p.File, DefaultProfile, file)
			}
			if !p.SchedulerLeaderElect {
				t.Errorf("scheduler leader election off")
			}
			w, ok := want[filepath.Base(file)]
			if !ok {
				// A new example: it must load; its content is the example's own business.
				return
			}
			var tiers []string
			for _, tr := range p.SpotScore.Tiers {
				tiers = append(tiers, tr.Name)
			}
			if diff := cmp.Diff(w.tiers, tiers); diff != "" {
				t.Errorf("tiers (-want +got):\n%s", diff)
			}
			if p.SpotScore.DefaultTier != w.defaultTier {
				t.Errorf("defaultTier %q, want %q", p.SpotScore.DefaultTier, w.defaultTier)
			}
			if p.SpotScore.SpreadWeight == nil || *p.SpotScore.SpreadWeight != w.spreadWeight {
				t.Errorf("spreadWeight %v, want %d", p.SpotScore.SpreadWeight, w.spreadWeight)
			}
			if got := p.SchedulerLeaseNamespace + "/" + p.SchedulerLeaseName; got != w.lease {
				t.Errorf("scheduler lease %s, want %s", got, w.lease)
			}
		})
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		data    string
		profile string
		// wantErr: every substring must appear in the error; empty means success.
		wantErr []string
		check   func(t *testing.T, p *Profile)
	}{
		{
			name: "no pluginConfig means default args",
			data: header + spotProfile,
			check: func(t *testing.T, p *Profile) {
				if len(p.SpotScore.Tiers) != 4 || p.SpotScore.DefaultTier != "on-demand" {
					t.Errorf("want default tiers, got %+v", p.SpotScore.CapacityModel)
				}
				if p.SchedulerLeaseNamespace != "kube-system" || p.SchedulerLeaseName != "kube-scheduler" {
					t.Errorf("want kube-scheduler's default lease, got %s/%s", p.SchedulerLeaseNamespace, p.SchedulerLeaseName)
				}
			},
		},
		{
			name: "second profile chosen by name, score extension point",
			data: header + `clientConnection:
  kubeconfig: /etc/kubeconfig
profiles:
- schedulerName: default-scheduler
- schedulerName: cheap
  plugins:
    score:
      enabled:
      - name: SpotScore
        weight: 1000
  pluginConfig:
  - name: NodeResourcesFit
    args: {scoringStrategy: {type: MostAllocated}}
  - name: SpotScore
    args:
      tiers:
      - name: spot
        reclaimable: true
        nodeSelectors: [{matchLabels: {capacity: spot}}]
      - name: regular
      defaultTier: regular
`,
			profile: "cheap",
			check: func(t *testing.T, p *Profile) {
				if p.Name != "cheap" || len(p.SpotScore.Tiers) != 2 || p.SpotScore.Tiers[0].Name != "spot" {
					t.Errorf("wrong profile read: %+v", p.SpotScore)
				}
				if p.Kubeconfig != "/etc/kubeconfig" {
					t.Errorf("kubeconfig %q", p.Kubeconfig)
				}
			},
		},
		{
			name:    "missing profile",
			data:    header + spotProfile,
			profile: "nope",
			wantErr: []string{"test.yaml", `profile "nope"`, "no profile has this schedulerName", "spot-scheduler"},
		},
		{
			name:    "no profiles at all",
			data:    header,
			wantErr: []string{"test.yaml", `profile "spot-scheduler"`, "default-scheduler (implicit)"},
		},
		{
			name: "bad operator in args",
			data: header + spotProfile + `  pluginConfig:
  - name: SpotScore
    args:
      tiers:
      - name: spot
        nodeSelectors:
        - matchExpressions: [{key: a, operator: Like, values: [b]}]
      - name: on-demand
`,
			wantErr: []string{"test.yaml", `profile "spot-scheduler"`, "profiles[0].pluginConfig[0].args.tiers[0].nodeSelectors[0].matchExpressions[0].operator", "Like"},
		},
		{
			name: "unknown field in args",
			data: header + spotProfile + `  pluginConfig:
  - name: SpotScore
    args:
      spredWeight: 10
`,
			wantErr: []string{"test.yaml", `profile "spot-scheduler"`, "profiles[0].pluginConfig[0].args", "spredWeight"},
		},
		{
			name: "spreadWeight out of range",
			data: header + spotProfile + `  pluginConfig:
  - name: SpotScore
    args:
      spreadWeight: 100
`,
			wantErr: []string{"test.yaml", "profiles[0].pluginConfig[0].args.spreadWeight"},
		},
		{
			name: "duplicate SpotScore args",
			data: header + spotProfile + `  pluginConfig:
  - name: SpotScore
  - name: SpotScore
`,
			wantErr: []string{"test.yaml", "profiles[0].pluginConfig[1].name", "Duplicate"},
		},
		{
			name: "SpotScore not enabled",
			data: header + `profiles:
- schedulerName: spot-scheduler
`,
			wantErr: []string{"test.yaml", "profiles[0].plugins", "SpotScore is not enabled"},
		},
		{
			name: "SpotScore disabled at score",
			data: header + spotProfile + `    score:
      disabled:
      - name: "*"
`,
			wantErr: []string{"SpotScore is not enabled"},
		},
		{
			name:    "duplicate profile",
			data:    header + spotProfile + "- schedulerName: spot-scheduler\n",
			wantErr: []string{"profiles[1].schedulerName", "Duplicate"},
		},
		{
			name:    "unknown top-level field",
			data:    header + "leaderElect: true\n" + spotProfile,
			wantErr: []string{"test.yaml", "leaderElect"},
		},
		{
			name:    "wrong apiVersion",
			data:    "apiVersion: kubescheduler.config.k8s.io/v1beta3\nkind: KubeSchedulerConfiguration\n" + spotProfile,
			wantErr: []string{"test.yaml", "apiVersion", "v1beta3"},
		},
		{
			name:    "wrong kind",
			data:    "apiVersion: kubescheduler.config.k8s.io/v1\nkind: Pod\n" + spotProfile,
			wantErr: []string{"test.yaml", "kind", "Pod"},
		},
		{
			name:    "not YAML",
			data:    "profiles: [",
			wantErr: []string{"test.yaml"},
		},
		{
			name:    "empty file",
			data:    "\n",
			wantErr: []string{"test.yaml", "empty"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("test.yaml", []byte(tc.data), tc.profile)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want an error containing %q, got none", tc.wantErr)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(file, "")
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("want an error naming %s, got %v", file, err)
	}
	if _, statErr := os.Stat(file); !os.IsNotExist(statErr) {
		t.Fatal(statErr)
	}
}
