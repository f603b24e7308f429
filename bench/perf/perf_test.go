package perf

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/component-base/featuregate"
	_ "k8s.io/component-base/logs/json/register" // -logging-format=json, as upstream's topics offer
	_ "k8s.io/kubernetes/pkg/features"           // registers kube-scheduler's feature gates and their defaults
	schedperf "k8s.io/kubernetes/test/integration/scheduler_perf"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/plugins"
	"github.com/spot-scheduler/spot-scheduler/pkg/preempt"
	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// The yardstick: upstream's smallest "performance" size of each test case (500 nodes; 1000 for
// PreemptionBasic, whose smallest), in the variant whose feature gates are this version's
// defaults; for SchedulingPodAntiAffinity the 5000-node size, since its 400 measured pods at 500
// nodes schedule in less than the one-second sampling of scheduler_perf's throughput.
const yardstick = "SchedulingBasic/500Nodes," +
	"SchedulingNodeAffinity/500Nodes," +
	"PreemptionBasic/1000Nodes_QueueingHintsEnabled," +
	"TopologySpreading/500Nodes," +
	"SchedulingPodAntiAffinity/5000Nodes," +
	"Unschedulable/500Nodes/10Init/1kPods," +
	"MixedSchedulingBasePod/500Nodes"

// The smoke test's workload: upstream's 5-node SchedulingBasic (10 pods measured) at default gates.
const smokeWorkload = "SchedulingBasic/5Nodes_QueueingHintsEnabled"

// smokeTimeout bounds the smoke test's run.
const smokeTimeout = 5 * time.Minute

// topic is the name scheduler_perf puts into its data-items file name.
const topic = "spot-scheduler"

var (
	flagProfile   = flag.String("perf.profile", filepath.Join("..", "..", "manifests", "scheduler-config.yaml"), "KubeSchedulerConfiguration holding the spot-scheduler profile (the shipped one by default).")
	flagProfName  = flag.String("perf.profile-name", wellknown.SchedulerName, "schedulerName of the profile to measure in -perf.profile.")
	flagWorkloads = flag.String("perf.workloads", yardstick, "Upstream workloads to run, TestCase/Workload, comma-separated.")
	flagProfiles  = flag.String("perf.profiles", DefaultProfile+","+SpotProfile, "Profiles to run each workload with: "+DefaultProfile+" (kube-scheduler's default) and/or "+SpotProfile+" (-perf.profile).")
	flagUpstream  = flag.String("perf.upstream-dir", "", "Upstream's scheduler_perf directory (default: test/integration/scheduler_perf of k8s.io/kubernetes in the module cache, at the version go.mod pins).")
	flagSummary   = flag.String("perf.summary", "", "Also write the rows as JSON to this file.")
)

func TestMain(m *testing.M) {
	// scheduler_perf's own flags (-perf-scheduling-label-filter, -data-items-dir, -v, ...) and
	// logging set-up; it parses the command line.
	if err := schedperf.InitTests(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Collect per-plugin metrics for ours as well.
	schedperf.PluginNames = append(schedperf.PluginNames, spotscore.Name, preempt.Name)
	os.Exit(m.Run())
}

// BenchmarkPerfScheduling runs the selected upstream scheduler_perf workloads (-perf.workloads)
// with each profile (-perf.profiles) through scheduler_perf's RunBenchmarkPerfScheduling with this
// project's out-of-tree plugins, then prints a table: per workload, both throughputs (the
// average of scheduler_perf's per-second SchedulingThroughput samples over the measured pods),
// their ratio, and upstream's published threshold. A workload that does not complete fails the
// benchmark (scheduler_perf waits for every pod to be scheduled, within its 30-minute limit) and
// shows as "did not complete". Run it with `make bench-perf`, or
//
//	go test ./bench/perf -run '^$' -bench '^BenchmarkPerfScheduling$' -benchtime 1x -timeout 120m
func BenchmarkPerfScheduling(b *testing.B) {
	if testing.Short() {
		b.Skip("needs etcd and runs kube-apiserver in process")
	}
	sel, err := ParseSelections(*flagWorkloads)
	if err != nil {
		b.Fatalf("-perf.workloads: %v", err)
	}
	ensureEtcd(b)
	upstreamDir := *flagUpstream
	if upstreamDir == "" {
		upstreamDir = moduleSchedulerPerfDir(b)
	}
	work := b.TempDir()

	var profiles []ProfileRun
	for _, p := range strings.Split(*flagProfiles, ",") {
		switch strings.TrimSpace(p) {
		case DefaultProfile:
			profiles = append(profiles, ProfileRun{Label: DefaultProfile})
		case SpotProfile:
			derived, err := DeriveProfile(*flagProfile, *flagProfName)
			if err != nil {
				b.Fatalf("-perf.profile: %v", err)
			}
			path := filepath.Join(work, "spot-scheduler-profile.yaml")
			if err := os.WriteFile(path, derived, 0o644); err != nil {
				b.Fatal(err)
			}
			profiles = append(profiles, ProfileRun{Label: SpotProfile, ConfigPath: path})
		default:
			b.Fatalf("-perf.profiles: unsupported value %q: supported values: %q, %q", p, DefaultProfile, SpotProfile)
		}
	}

	gen, err := Generate(upstreamDir, sel, profiles, gateIsDefault)
	if err != nil {
		b.Fatal(err)
	}
	testCases := filepath.Join(work, "performance-config.yaml")
	if err := os.WriteFile(testCases, gen.YAML, 0o644); err != nil {
		b.Fatal(err)
	}

	// The generated file selects exactly what runs: no label filtering on top.
	schedperf.PerfSchedulingLabelFilter = ""
	dataDir := flag.Lookup("data-items-dir").Value.String()
	dataNote := dataDir
	if dataDir == "" {
		dataNote = "temporary (-data-items-dir keeps them)"
		dataDir = filepath.Join(work, "data-items")
		if err := flag.Set("data-items-dir", dataDir); err != nil {
			b.Fatal(err)
		}
	}
	// Each workload's scheduler and API server log goes to a file under $ARTIFACTS, kept only when
	// the workload fails, instead of into the benchmark's output.
	if os.Getenv("ARTIFACTS") == "" {
		artifacts := filepath.Join(os.TempDir(), "spot-scheduler-perf-logs")
		if err := os.MkdirAll(artifacts, 0o755); err != nil {
			b.Fatal(err)
		}
		b.Setenv("ARTIFACTS", artifacts)
	}
	start := time.Now()
	schedperf.RunBenchmarkPerfScheduling(b, testCases, topic, plugins.OutOfTree())

	file, err := LatestDataItemsFile(dataDir, b.Name(), topic)
	if err != nil {
		b.Fatal(err)
	}
	rows, err := Collect(file, b.Name(), gen.Cases, profiles)
	if err != nil {
		b.Fatal(err)
	}
	if *flagSummary != "" {
		data, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(*flagSummary, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	profileFile, _ := filepath.Abs(*flagProfile)
	fmt.Printf("\nscheduler_perf of %s: default profile vs profile %q of %s; %s on %s, GOMAXPROCS %d; data items: %s; logs of failed workloads: %s\n\n%s\n",
		filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(upstreamDir)))), *flagProfName, profileFile,
		time.Since(start).Round(time.Second), time.Now().Format("2006-01-02"), runtime.GOMAXPROCS(0), dataNote, os.Getenv("ARTIFACTS"), FormatTable(rows))
	for _, r := range rows {
		for _, p := range profiles {
			if !r.Results[p.Label].Completed {
				b.Errorf("%s did not complete with the %s profile", r.Selection, p.Label)
			}
		}
	}
}

// TestSchedulerPerfSmoke runs one tiny upstream workload (SchedulingBasic, 5 nodes, 10 measured
// pods) through scheduler_perf with the spot-scheduler profile, and fails unless it completes: the
// shipped profile keeps working under upstream's harness. RunBenchmarkPerfScheduling needs a
// *testing.B, so the test runs BenchmarkPerfScheduling in a child process of this test binary.
func TestSchedulerPerfSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("needs etcd and runs kube-apiserver in process")
	}
	// It takes ~30 s; scheduler_perf itself would wait 30 minutes for pods that never schedule.
	deadline := time.Now().Add(smokeTimeout)
	if d, ok := t.Deadline(); ok && d.Add(-30*time.Second).Before(deadline) {
		deadline = d.Add(-30 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	// Not t.TempDir: the workload's logs stay here when it fails (hack/run-tests.sh keeps TMPDIR).
	dir, err := os.MkdirTemp("", "scheduler-perf-smoke-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_ = os.RemoveAll(dir)
		}
	})
	summary := filepath.Join(dir, "summary.json")
	profile, err := filepath.Abs(*flagProfile)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-test.run=^$", "-test.bench=^BenchmarkPerfScheduling$", "-test.benchtime=1x",
		"-perf.workloads=" + smokeWorkload, "-perf.profiles=" + SpotProfile,
		"-perf.profile=" + profile, "-perf.profile-name=" + *flagProfName,
		"-perf.summary=" + summary, "-data-items-dir=" + filepath.Join(dir, "data-items"),
	}
	if *flagUpstream != "" {
		args = append(args, "-perf.upstream-dir="+*flagUpstream)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "ARTIFACTS="+dir)
	// Its own process group, killed whole at the deadline: the etcd it starts must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start, limit := time.Now(), time.Until(deadline)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scheduler_perf %s with the spot-scheduler profile did not complete: %v after %s (limit %s)\n%s\n(the workload's log: %s)",
			smokeWorkload, err, time.Since(start).Round(time.Second), limit.Round(time.Second), tail(out, 80), dir)
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatalf("no summary written: %v\n%s", err, tail(out, 80))
	}
	var rows []Row
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || !rows[0].Results[SpotProfile].Completed {
		t.Fatalf("%s did not complete with the spot-scheduler profile: %s\n%s", smokeWorkload, data, tail(out, 80))
	}
	t.Logf("%s completed with the spot-scheduler profile in %s", smokeWorkload, time.Since(start).Round(time.Second))
}

// ensureEtcd puts the control-plane cache's etcd on PATH: scheduler_perf starts etcd from PATH.
func ensureEtcd(tb testing.TB) {
	if _, err := exec.LookPath("etcd"); err == nil {
		return
	}
	dir, err := localcluster.ResolveBinDir("")
	if err != nil {
		tb.Fatalf("scheduler_perf needs etcd on PATH: %v", err)
	}
	tb.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// moduleSchedulerPerfDir finds upstream's scheduler_perf directory in the module cache, at the
// k8s.io/kubernetes version go.mod pins.
func moduleSchedulerPerfDir(tb testing.TB) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes").Output()
	if err != nil {
		tb.Fatalf("locating k8s.io/kubernetes in the module cache (go list -m): %v (set -perf.upstream-dir)", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "test", "integration", "scheduler_perf")
	if _, err := os.Stat(dir); err != nil {
		tb.Fatalf("upstream scheduler_perf: %v (set -perf.upstream-dir)", err)
	}
	return dir
}

func gateIsDefault(gate string, enabled bool) bool {
	spec, ok := utilfeature.DefaultMutableFeatureGate.GetAll()[featuregate.Feature(gate)]
	return ok && spec.Default == enabled
}

func tail(out []byte, lines int) string {
	l := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
