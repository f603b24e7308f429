package perf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

// TestGenerateYardstick generates the benchmark's test-case file from upstream's configuration in
// the module cache and checks what scheduler_perf will be given: every selected workload, once per
// profile, back to back; template paths that exist; no threshold enforced; the spot-scheduler
// configuration only on its own runs; and upstream's thresholds picked for the default gates.
func TestGenerateYardstick(t *testing.T) {
	gen := generateBothProfiles(t, yardstick)
	if len(gen.Cases) != 7 {
		t.Fatalf("%d cases, want the 7 of the yardstick", len(gen.Cases))
	}
	want := map[string]struct {
		nodes, pods int
		threshold   float64
		tWorkload   string
		tNodes      int
	}{
		"SchedulingBasic":           {500, 1000, 270, "5000Nodes_10000Pods_QueueingHintsEnabled", 5000},
		"SchedulingNodeAffinity":    {500, 1000, 220, "5000Nodes_10000Pods_QueueingHintsEnabled", 5000},
		"PreemptionBasic":           {1000, 1000, 0, "", 0},
		"TopologySpreading":         {500, 1000, 85, "5000Nodes_5000Pods_QueueingHintsEnabled", 5000},
		"SchedulingPodAntiAffinity": {5000, 1000, 60, "5000Nodes_2000Pods_QueueingHintsEnabled", 5000},
		// Upstream's 140 is for queueing hints off, which 1.34 no longer defaults to.
		"Unschedulable":          {500, 1000, 170, "5kNodes/100Init/10kPods_QueueingHintsEnabled", 5000},
		"MixedSchedulingBasePod": {500, 1000, 140, "5000Nodes_5000Pods_QueueingHintsEnabled", 5000},
	}
	for _, c := range gen.Cases {
		w, ok := want[c.TestCase]
		if !ok {
			t.Errorf("unexpected case %s", c.Selection)
			continue
		}
		if c.Nodes != w.nodes || c.MeasurePods != w.pods {
			t.Errorf("%s: %d nodes, %d measured pods; want %d, %d", c.Selection, c.Nodes, c.MeasurePods, w.nodes, w.pods)
		}
		if got := c.Threshold; got.PodsPerSecond != w.threshold || got.Workload != w.tWorkload || got.Nodes != w.tNodes {
			t.Errorf("%s: threshold %+v, want %v at %d nodes (%s)", c.Selection, got, w.threshold, w.tNodes, w.tWorkload)
		}
	}

	var cases []map[string]any
	if err := yaml.UnmarshalStrict(gen.YAML, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) != 14 {
		t.Fatalf("%d test cases generated, want 7 workloads x 2 profiles", len(cases))
	}
	for i, tc := range cases {
		s := gen.Cases[i/2]
		first, second := DefaultProfile, SpotProfile
		if (i/2)%2 == 1 {
			first, second = second, first
		}
		profile := first
		if i%2 == 1 {
			profile = second
		}
		if name := TestCaseName(s.TestCase, profile); tc["name"] != name {
			t.Errorf("test case %d is %v, want %s", i, tc["name"], name)
		}
		cfg, _ := tc["schedulerConfigPath"].(string)
		if (profile == SpotProfile) != (cfg == "/derived.yaml") {
			t.Errorf("%v: schedulerConfigPath %q", tc["name"], cfg)
		}
		workloads := tc["workloads"].([]any)
		if len(workloads) != 1 || workloads[0].(map[string]any)["name"] != s.Workload {
			t.Errorf("%v: workloads %v, want only %s", tc["name"], workloads, s.Workload)
		}
		if _, ok := workloads[0].(map[string]any)["threshold"]; ok {
			t.Errorf("%v: upstream's threshold is still enforced", tc["name"])
		}
		checkPaths(t, tc["name"], tc)
	}
}

// generateBothProfiles generates the test-case file for the selections, with the default
// profile and the spot-scheduler profile (config /derived.yaml).
func generateBothProfiles(t *testing.T, selections string) *Generated {
	t.Helper()
	sel, err := ParseSelections(selections)
	if err != nil {
		t.Fatal(err)
	}
	profiles := []ProfileRun{{Label: DefaultProfile}, {Label: SpotProfile, ConfigPath: "/derived.yaml"}}
	gen, err := Generate(moduleSchedulerPerfDir(t), sel, profiles, gateIsDefault)
	if err != nil {
		t.Fatal(err)
	}
	return gen
}

// checkPaths fails for a *Path(s) field that is relative or names no file.
func checkPaths(t *testing.T, name any, v any) {
	t.Helper()
	check := func(k string, p any) {
		s, _ := p.(string)
		if !filepath.IsAbs(s) {
			t.Errorf("%v: %s %q is not absolute", name, k, s)
		} else if _, err := os.Stat(s); err != nil {
			t.Errorf("%v: %s: %v", name, k, err)
		}
	}
	switch m := v.(type) {
	case map[string]any:
		for k, e := range m {
			switch {
			case k == "schedulerConfigPath":
			case strings.HasSuffix(k, "Path"):
				check(k, e)
			case strings.HasSuffix(k, "Paths"):
				for _, p := range e.([]any) {
					check(k, p)
				}
			default:
				checkPaths(t, name, e)
			}
		}
	case []any:
		for _, e := range m {
			checkPaths(t, name, e)
		}
	}
}

// TestGenerateTwoWorkloadsOfOneCase: two workloads of one upstream test case share its
// generated test case per profile (scheduler_perf refuses a name twice), in the order selected,
// and each still has its own row.
func TestGenerateTwoWorkloadsOfOneCase(t *testing.T) {
	gen := generateBothProfiles(t, "SchedulingPodAntiAffinity/500Nodes,SchedulingBasic/500Nodes,SchedulingPodAntiAffinity/5000Nodes")
	if len(gen.Cases) != 3 {
		t.Fatalf("%d cases, want one per selected workload", len(gen.Cases))
	}
	var cases []map[string]any
	if err := yaml.UnmarshalStrict(gen.YAML, &cases); err != nil {
		t.Fatal(err)
	}
	names := map[string][]string{}
	var order []string
	for _, tc := range cases {
		name := tc["name"].(string)
		if _, dup := names[name]; dup {
			t.Fatalf("test case %s generated twice", name)
		}
		order = append(order, name)
		for _, w := range tc["workloads"].([]any) {
			names[name] = append(names[name], w.(map[string]any)["name"].(string))
		}
	}
	if len(cases) != 4 {
		t.Fatalf("test cases %v, want 2 test cases x 2 profiles", order)
	}
	for _, p := range []string{DefaultProfile, SpotProfile} {
		if got := names[TestCaseName("SchedulingPodAntiAffinity", p)]; !slices.Equal(got, []string{"500Nodes", "5000Nodes"}) {
			t.Errorf("%s: workloads %v, want [500Nodes 5000Nodes]", p, got)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := moduleSchedulerPerfDir(t)
	profiles := []ProfileRun{{Label: DefaultProfile}}
	for _, tc := range []struct{ sel, want string }{
		{"NoSuchCase/500Nodes", `test case "NoSuchCase": not in upstream's scheduler_perf`},
		{"SchedulingBasic/7Nodes", `test case SchedulingBasic has no workload "7Nodes" (it has: 5Nodes,`},
	} {
		sel, err := ParseSelections(tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Generate(dir, sel, profiles, gateIsDefault); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.sel, err, tc.want)
		}
	}
	for _, s := range []string{"", "SchedulingBasic", "/500Nodes", "SchedulingBasic/"} {
		if _, err := ParseSelections(s); err == nil {
			t.Errorf("ParseSelections(%q) accepted", s)
		}
	}
}

// TestDeriveProfile: the shipped profile reaches scheduler_perf's pods (schedulerName
// default-scheduler) with everything else as shipped, and a bad file or profile name is refused
// with the reason.
func TestDeriveProfile(t *testing.T) {
	shipped := filepath.Join("..", "..", "manifests", "scheduler-config.yaml")
	data, err := DeriveProfile(shipped, "spot-scheduler")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	derived := filepath.Join(dir, "derived.yaml")
	if err := os.WriteFile(derived, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := simulator.LoadModel(klog.Background(), derived, DefaultSchedulerName)
	if err != nil {
		t.Fatalf("derived configuration: %v\n%s", err, data)
	}
	want, err := simulator.LoadModel(klog.Background(), shipped, "spot-scheduler")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.TierNames(), want.TierNames()) || got.NumTiers() != want.NumTiers() {
		t.Errorf("SpotScore tiers changed: %v, want %v", got.TierNames(), want.TierNames())
	}
	var orig, out map[string]any
	raw, _ := os.ReadFile(shipped)
	if err := yaml.Unmarshal(raw, &orig); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	op := orig["profiles"].([]any)[0].(map[string]any)
	dp := out["profiles"].([]any)[0].(map[string]any)
	if dp["schedulerName"] != DefaultSchedulerName {
		t.Errorf("schedulerName %v, want %s", dp["schedulerName"], DefaultSchedulerName)
	}
	delete(op, "schedulerName")
	delete(dp, "schedulerName")
	a, _ := yaml.Marshal(op)
	b, _ := yaml.Marshal(dp)
	if string(a) != string(b) {
		t.Errorf("profile changed beyond its name:\n%s\nwant\n%s", b, a)
	}

	if _, err := DeriveProfile(shipped, "no-such-profile"); err == nil || !strings.Contains(err.Error(), `profile "no-such-profile"`) {
		t.Errorf("unknown profile: error %v", err)
	}
	noSpot := filepath.Join(dir, "no-spot.yaml")
	if err := os.WriteFile(noSpot, []byte("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: spot-scheduler\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := DeriveProfile(noSpot, "spot-scheduler"); err == nil || !strings.Contains(err.Error(), "does not enable SpotScore") {
		t.Errorf("profile without SpotScore: error %v", err)
	}
}

// TestCollectAndTable reads a data-items file as scheduler_perf writes it: a workload with data
// completed, a missing one did not, and the table and ratio lines say so.
func TestCollectAndTable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "items.json")
	items := `{"version":"v1","dataItems":[
	 {"data":{"Average":300,"Perc50":310},"unit":"pods/s","labels":{"Metric":"SchedulingThroughput","Name":"BenchmarkPerfScheduling/SchedulingBasic/default-profile/500Nodes/namespace-2"}},
	 {"data":{"Perc50":1},"unit":"ms","labels":{"Metric":"scheduler_scheduling_attempt_duration_seconds","Name":"BenchmarkPerfScheduling/SchedulingBasic/spot-scheduler/500Nodes/namespace-2"}},
	 {"data":{"Average":150,"Perc50":149},"unit":"pods/s","labels":{"Metric":"SchedulingThroughput","Name":"BenchmarkPerfScheduling/SchedulingBasic/spot-scheduler/500Nodes/namespace-2"}}
	]}`
	if err := os.WriteFile(file, []byte(items), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []Case{
		{Selection: Selection{"SchedulingBasic", "500Nodes"}, Nodes: 500, MeasurePods: 1000, Threshold: Threshold{270, "5000Nodes_10000Pods", 5000}},
		{Selection: Selection{"PreemptionBasic", "1000Nodes"}, Nodes: 1000, MeasurePods: 1000},
	}
	rows, err := Collect(file, "BenchmarkPerfScheduling", cases, []ProfileRun{{Label: DefaultProfile}, {Label: SpotProfile}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rows[0].Results[SpotProfile]; !r.Completed || r.PodsPerSecond != 150 {
		t.Errorf("spot-scheduler result %+v", r)
	}
	if rows[0].Ratio() != 0.5 {
		t.Errorf("ratio %v, want 0.5", rows[0].Ratio())
	}
	if rows[1].Results[DefaultProfile].Completed {
		t.Errorf("a workload without data items counted as completed")
	}
	table := FormatTable(rows)
	for _, want := range []string{
		"| SchedulingBasic/500Nodes | 500 | 1000 | 300.0 | 150.0 | 0.50 | 270 pods/s at 5000 nodes (5000Nodes_10000Pods) |",
		"| PreemptionBasic/1000Nodes | 1000 | 1000 | did not complete | did not complete | n/a | none published |",
		"ratio workload=SchedulingBasic/500Nodes spot-scheduler/default-profile=0.50",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
