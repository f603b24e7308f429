// Package perf runs upstream's scheduler performance suite
// (k8s.io/kubernetes/test/integration/scheduler_perf) as the yardstick of the spot-scheduler
// profile: a chosen set of upstream workloads, each once with kube-scheduler's default profile and
// once with the spot-scheduler profile, in the same process, and a table of the two throughputs
// next to upstream's published thresholds. See perf_test.go for the benchmark and docs/benchmarks.md.
//
// Nothing of upstream is copied: the test-case file handed to scheduler_perf is generated at run
// time from upstream's own performance-config.yaml files in the module cache (their templates are
// referenced where they are), and the spot-scheduler profile is derived at run time from the
// shipped configuration file.
package perf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

// DefaultSchedulerName is the profile name scheduler_perf's pods ask for (they set no
// spec.schedulerName).
const DefaultSchedulerName = "default-scheduler"

// Profile labels, as they appear in benchmark names and in the table.
const (
	DefaultProfile = "default-profile"
	SpotProfile    = "spot-scheduler"
)

// Topics are upstream's scheduler_perf sub-directories searched for a test case.
var Topics = []string{"misc", "affinity", "topology_spreading", "volumes", "event_handling", "dra"}

// Selection names one upstream workload: a test case and one of its workloads.
type Selection struct {
	TestCase string
	Workload string
}

func (s Selection) String() string { return s.TestCase + "/" + s.Workload }

// ParseSelections parses "TestCase/Workload,..." (a workload name may itself contain '/', a
// test case name does not).
func ParseSelections(s string) ([]Selection, error) {
	var out []Selection
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		tc, w, ok := strings.Cut(item, "/")
		if !ok || tc == "" || w == "" {
			return nil, fmt.Errorf("workload %q: want TestCase/Workload (e.g. SchedulingBasic/500Nodes)", item)
		}
		out = append(out, Selection{TestCase: tc, Workload: w})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no workloads selected")
	}
	return out, nil
}

// ProfileRun is one scheduler configuration a workload runs with: Label names it, ConfigPath is
// the KubeSchedulerConfiguration file ("" means scheduler_perf's default, i.e. kube-scheduler's
// default profile).
type ProfileRun struct {
	Label      string
	ConfigPath string
}

// Threshold is upstream's published throughput threshold for a test case.
type Threshold struct {
	// PodsPerSecond is the minimum average SchedulingThroughput; 0 when upstream publishes none.
	PodsPerSecond float64
	// Workload is the upstream workload the threshold belongs to, and Nodes its node count.
	Workload string
	Nodes    int
}

// Case describes one selected workload as generated.
type Case struct {
	Selection
	Topic       string
	Nodes       int
	MeasurePods int
	Threshold   Threshold
}

// Generated is the scheduler_perf test-case file built from upstream's configuration.
type Generated struct {
	// YAML is the test-case file: for each selection, one test case per profile, named
	// "<TestCase>/<profile label>", back to back (alternating which profile goes first).
	YAML  []byte
	Cases []Case
}

// TestCaseName is the name of a generated test case: the benchmark runs
// BenchmarkPerfScheduling/<TestCase>/<profile>/<Workload>.
func TestCaseName(testCase, profile string) string { return testCase + "/" + profile }

// GateIsDefault reports whether enabling (or disabling) a feature gate equals that gate's default.
type GateIsDefault func(gate string, enabled bool) bool

// Generate builds the test-case file for sel from upstream's configuration under upstreamDir
// (.../k8s.io/kubernetes@VERSION/test/integration/scheduler_perf). Relative template paths become
// absolute paths into upstreamDir; the selected workload's threshold is dropped (this machine is
// not upstream's CI machine: the threshold is reported, not enforced); every other field is kept
// as upstream wrote it. The threshold reported for a test case is that of its upstream workload
// whose feature gates are all at their defaults (isDefault), else the highest one.
func Generate(upstreamDir string, sel []Selection, profiles []ProfileRun, isDefault GateIsDefault) (*Generated, error) {
	if len(profiles) == 0 {
		return nil, fmt.Errorf("no profiles to run")
	}
	configs := map[string][]map[string]any{}
	loadTopic := func(topic string) ([]map[string]any, error) {
		if c, ok := configs[topic]; ok {
			return c, nil
		}
		file := filepath.Join(upstreamDir, topic, "performance-config.yaml")
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var cases []map[string]any
		if err := yaml.Unmarshal(data, &cases); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		configs[topic] = cases
		return cases, nil
	}
	find := func(name string) (string, map[string]any, error) {
		for _, topic := range Topics {
			cases, err := loadTopic(topic)
			if err != nil {
				if os.IsNotExist(err) {
					continue
				}
				return "", nil, err
			}
			for _, tc := range cases {
				if tc["name"] == name {
					return topic, tc, nil
				}
			}
		}
		return "", nil, fmt.Errorf("test case %q: not in upstream's scheduler_perf under %s (topics %s)", name, upstreamDir, strings.Join(Topics, ", "))
	}

	var out []any
	// generated: the test cases written so far, by name. Workloads of one upstream test case
	// share its generated test case per profile (scheduler_perf wants unique names), each run
	// in the order selected.
	generated := map[string]map[string]any{}
	gen := &Generated{}
	for i, s := range sel {
		topic, tc, err := find(s.TestCase)
		if err != nil {
			return nil, err
		}
		if p, ok := tc["schedulerConfigPath"]; ok && p != "" {
			return nil, fmt.Errorf("test case %s sets its own schedulerConfigPath %v: comparing profiles on it is not supported", s.TestCase, p)
		}
		workloads, _ := tc["workloads"].([]any)
		var chosen map[string]any
		for _, w := range workloads {
			if wm, ok := w.(map[string]any); ok && wm["name"] == s.Workload {
				chosen = wm
			}
		}
		if chosen == nil {
			var names []string
			for _, w := range workloads {
				if wm, ok := w.(map[string]any); ok {
					names = append(names, fmt.Sprint(wm["name"]))
				}
			}
			return nil, fmt.Errorf("workload %s: test case %s has no workload %q (it has: %s)", s, s.TestCase, s.Workload, strings.Join(names, ", "))
		}
		template, _ := tc["workloadTemplate"].([]any)
		c := Case{
			Selection:   s,
			Topic:       topic,
			Nodes:       countOps(template, chosen, "createNodes", false),
			MeasurePods: countOps(template, chosen, "createPods", true),
			Threshold:   threshold(tc, template, isDefault),
		}
		gen.Cases = append(gen.Cases, c)

		order := append([]ProfileRun(nil), profiles...)
		if i%2 == 1 {
			// Alternate which profile runs first, so that drift on a shared machine does not
			// always favour the same one.
			for l, r := 0, len(order)-1; l < r; l, r = l+1, r-1 {
				order[l], order[r] = order[r], order[l]
			}
		}
		for _, p := range order {
			w := deepCopy(chosen).(map[string]any)
			delete(w, "threshold")
			name := TestCaseName(s.TestCase, p.Label)
			if prev, ok := generated[name]; ok {
				prev["workloads"] = append(prev["workloads"].([]any), w)
				continue
			}
			copyTC := deepCopy(tc).(map[string]any)
			resolvePaths(copyTC, filepath.Join(upstreamDir, topic))
			copyTC["workloads"] = []any{w}
			copyTC["name"] = name
			generated[name] = copyTC
			if p.ConfigPath != "" {
				copyTC["schedulerConfigPath"] = p.ConfigPath
			}
			out = append(out, copyTC)
		}
	}
	data, err := yaml.Marshal(out)
	if err != nil {
		return nil, err
	}
	gen.YAML = data
	return gen, nil
}

// countOps sums the counts of the template's ops with the given opcode for workload w (only ops
// that collect metrics when measured is set).
func countOps(template []any, w map[string]any, opcode string, measured bool) int {
	params, _ := w["params"].(map[string]any)
	total := 0
	for _, o := range template {
		op, ok := o.(map[string]any)
		if !ok || op["opcode"] != opcode {
			continue
		}
		if measured {
			if cm, _ := op["collectMetrics"].(bool); !cm {
				continue
			}
		}
		if p, ok := op["countParam"].(string); ok && strings.HasPrefix(p, "$") {
			if n, ok := params[p[1:]].(float64); ok {
				total += int(n)
			}
			continue
		}
		if n, ok := op["count"].(float64); ok {
			total += int(n)
		}
	}
	return total
}

// threshold returns the upstream threshold of a test case (see Generate).
func threshold(tc map[string]any, template []any, isDefault GateIsDefault) Threshold {
	if sel, ok := tc["defaultThresholdMetricSelector"].(map[string]any); ok && sel["name"] != "SchedulingThroughput" {
		return Threshold{}
	}
	var best Threshold
	bestDefault := false
	workloads, _ := tc["workloads"].([]any)
	for _, raw := range workloads {
		w, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		v, _ := w["threshold"].(float64)
		if v <= 0 {
			continue
		}
		if sel, ok := w["thresholdMetricSelector"].(map[string]any); ok && sel["name"] != "SchedulingThroughput" {
			continue
		}
		atDefaults := true
		gates, _ := w["featureGates"].(map[string]any)
		for g, e := range gates {
			if b, _ := e.(bool); isDefault == nil || !isDefault(g, b) {
				atDefaults = false
			}
		}
		t := Threshold{PodsPerSecond: v, Workload: fmt.Sprint(w["name"]), Nodes: countOps(template, w, "createNodes", false)}
		if (atDefaults && !bestDefault) || (atDefaults == bestDefault && v > best.PodsPerSecond) {
			best, bestDefault = t, atDefaults
		}
	}
	return best
}

// resolvePaths makes the relative file paths of a test case (fields named *Path, *Paths) absolute,
// relative to dir, where upstream's files have them (scheduler_perf runs in the topic directory).
func resolvePaths(v any, dir string) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			switch {
			case strings.HasSuffix(k, "Path"):
				if s, ok := val.(string); ok && s != "" && !filepath.IsAbs(s) {
					t[k] = filepath.Join(dir, s)
				}
			case strings.HasSuffix(k, "Paths"):
				if list, ok := val.([]any); ok {
					for i, e := range list {
						if s, ok := e.(string); ok && s != "" && !filepath.IsAbs(s) {
							list[i] = filepath.Join(dir, s)
						}
					}
				}
			default:
				resolvePaths(val, dir)
			}
		}
	case []any:
		for _, e := range t {
			resolvePaths(e, dir)
		}
	}
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = deepCopy(e)
		}
		return l
	default:
		return v
	}
}

// DeriveProfile reads the KubeSchedulerConfiguration in file, checks that its profile named
// profile is a valid spot-scheduler profile (simulator.LoadModel: kube-scheduler's loader, valid SpotScore args), and
// returns the same configuration with only that profile, renamed default-scheduler: scheduler_perf's
// pods set no schedulerName, so this is how they reach the spot-scheduler's plugins and args.
// Every other field (percentageOfNodesToScore, plugins, pluginConfig, ...) is kept as shipped.
func DeriveProfile(file, profile string) ([]byte, error) {
	if _, err := simulator.LoadModel(klog.Background(), file, profile); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("scheduler configuration %s: %w", file, err)
	}
	profiles, _ := cfg["profiles"].([]any)
	for _, p := range profiles {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		name, _ := pm["schedulerName"].(string)
		if name == "" {
			name = DefaultSchedulerName
		}
		if name == profile {
			pm["schedulerName"] = DefaultSchedulerName
			cfg["profiles"] = []any{pm}
			return yaml.Marshal(cfg)
		}
	}
	// simulator.LoadModel found it, so this cannot happen short of a race with an editor.
	return nil, fmt.Errorf("scheduler configuration %s: profile %q not found", file, profile)
}

// Result is the outcome of one workload with one profile.
type Result struct {
	Profile string `json:"profile"`
	// Completed: scheduler_perf finished the workload (all its pods scheduled) and reported data.
	Completed bool `json:"completed"`
	// PodsPerSecond is the average SchedulingThroughput; 0 when not measured (a workload shorter
	// than scheduler_perf's 1 s sampling interval).
	PodsPerSecond float64 `json:"podsPerSecond"`
	Perc50        float64 `json:"perc50"`
}

// Row is one line of the table.
type Row struct {
	Case
	Results map[string]Result `json:"results"`
}

// Ratio is spot-scheduler / default-profile throughput, 0 when either is missing.
func (r Row) Ratio() float64 {
	d, s := r.Results[DefaultProfile], r.Results[SpotProfile]
	if d.PodsPerSecond == 0 || s.PodsPerSecond == 0 {
		return 0
	}
	return s.PodsPerSecond / d.PodsPerSecond
}

// dataItems is the JSON scheduler_perf writes (its DataItems type, read back).
type dataItems struct {
	DataItems []struct {
		Data   map[string]float64 `json:"data"`
		Unit   string             `json:"unit"`
		Labels map[string]string  `json:"labels"`
	} `json:"dataItems"`
}

// Collect reads scheduler_perf's data-items JSON file and returns one row per case. benchName is
// the top-level benchmark's name: scheduler_perf labels each item with
// "<benchName>/<TestCase>/<profile>/<Workload>/<namespace>".
func Collect(file, benchName string, cases []Case, profiles []ProfileRun) ([]Row, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var items dataItems
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var rows []Row
	for _, c := range cases {
		row := Row{Case: c, Results: map[string]Result{}}
		for _, p := range profiles {
			prefix := benchName + "/" + TestCaseName(c.TestCase, p.Label) + "/" + c.Workload + "/"
			res := Result{Profile: p.Label}
			for _, it := range items.DataItems {
				if !strings.HasPrefix(it.Labels["Name"], prefix) {
					continue
				}
				res.Completed = true
				if it.Labels["Metric"] == "SchedulingThroughput" {
					res.PodsPerSecond = it.Data["Average"]
					res.Perc50 = it.Data["Perc50"]
				}
			}
			row.Results[p.Label] = res
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// LatestDataItemsFile returns the newest data-items file scheduler_perf wrote into dir for the
// benchmark benchName and topic.
func LatestDataItemsFile(dir, benchName, topic string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, benchName+"_benchmark_"+topic+"_*.json"))
	if err != nil {
		return "", err
	}
	if len(matches) == 0 {
		return "", fmt.Errorf("scheduler_perf wrote no data items into %s", dir)
	}
	sort.Strings(matches) // the names end in an RFC 3339 time stamp
	return matches[len(matches)-1], nil
}

// FormatTable renders rows as a Markdown table followed by one line per row that a script can read:
// "ratio workload=SchedulingBasic/500Nodes spot-scheduler/default-profile=0.48".
func FormatTable(rows []Row) string {
	var b strings.Builder
	b.WriteString("| workload | nodes | measured pods | default profile pods/s | spot-scheduler pods/s | ratio | upstream threshold |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s |\n", r.Selection, r.Nodes, r.MeasurePods,
			formatResult(r.Results[DefaultProfile]), formatResult(r.Results[SpotProfile]), formatRatio(r.Ratio()), formatThreshold(r.Threshold))
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "ratio workload=%s spot-scheduler/default-profile=%s\n", r.Selection, formatRatio(r.Ratio()))
	}
	return b.String()
}

func formatResult(r Result) string {
	switch {
	case r.Profile == "":
		return "not run"
	case !r.Completed:
		return "did not complete"
	case r.PodsPerSecond == 0:
		return "completed, < 1 s (not measured)"
	}
	return fmt.Sprintf("%.1f", r.PodsPerSecond)
}

func formatRatio(v float64) string {
	if v == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v)
}

func formatThreshold(t Threshold) string {
	if t.PodsPerSecond == 0 {
		return "none published"
	}
	return fmt.Sprintf("%g pods/s at %d nodes (%s)", t.PodsPerSecond, t.Nodes, t.Workload)
}
