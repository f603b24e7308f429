// Package bench holds the benchmarks that run against a real control plane: the scheduling
// throughput benchmark here, and the strategy benchmark (bench/strategy, bench/cmd/strategies).
package bench

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/internal/testobj"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

var (
	tpNodes    = flag.String("throughput.nodes", "1000,5000", "Node counts of the scheduling throughput benchmark, comma-separated, ascending, up to 5000 (the cluster grows from one to the next).")
	tpPods     = flag.String("throughput.pods", "3000,2000", "Pods scheduled per measurement: one count for every node count, or one per node count.")
	tpFallback = flag.Int("throughput.fallback-pods", 20, "Pods per case of the fallback latency measurement (0: none).")
	tpRounds   = flag.Int("throughput.rounds", 3, "Rounds; each round measures every configuration, alternating the order.")
	tpUpstream = flag.Bool("throughput.upstream", true, "Also measure the upstream kube-scheduler binary of the product's own minor (default profile).")
	tpNewest   = flag.String("throughput.newest", "1.37", "Minor of the newest upstream kube-scheduler to measure against (hack/build-compat.sh builds it); the whole run uses that minor's API server. Empty: none, on the product's own control plane.")
	tpProfile  = flag.String("throughput.cpuprofile", "", "Directory for a CPU profile of each measurement (the scheduler's /debug/pprof/profile over -throughput.profile-seconds); empty: none.")
	tpProfSecs = flag.Int("throughput.profile-seconds", 10, "Length of each CPU profile.")
	tpBaseline = flag.String("throughput.baseline", "", "Another spot-scheduler binary (an earlier commit's build) measured in the same rounds with the shipped profile, as spot-scheduler-baseline, for an A/B on one host; empty: none.")
	tpBaseCfg  = flag.String("throughput.baseline-config", "", "The baseline's KubeSchedulerConfiguration (its own commit's manifests/scheduler-config.yaml); empty: this checkout's.")
)

func TestMain(m *testing.M) {
	flag.Parse()
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false)))
	os.Exit(m.Run())
}

const tpNamespace = "throughput"

// baselineName is the configuration of -throughput.baseline: the shipped profile on another
// binary.
const baselineName = "spot-scheduler-baseline"

// tpConfig is one scheduler configuration under measurement.
type tpConfig struct {
	name          string
	binary        string
	config        string // KubeSchedulerConfiguration file
	schedulerName string
}

// BenchmarkSchedulingThroughput schedules the same workload (default 3000 pods on 1000 nodes,
// then 2000 on 5000, of spot, on-demand and burst tiers, 30 ReplicaSet owners) against a real
// kube-apiserver with the spot-scheduler binary run with the upstream default profile, with the
// default plugins scoring all nodes (percentageOfNodesToScore 100, what strict tier order cost
// before the tier search), and with the shipped spot-scheduler profile (and, with
// -throughput.upstream, the upstream kube-scheduler binary), alternating the order every round.
// The pods exist before the
// scheduler starts; throughput is the pods bound between the first and the last binding per
// second. Run it with `make bench-throughput` or
//
//	go test ./bench -run '^$' -bench SchedulingThroughput -benchtime 1x
func BenchmarkSchedulingThroughput(b *testing.B) {
	if testing.Short() {
		b.Skip("needs a real control plane")
	}
	nodeCounts, podCounts, err := parseCounts(*tpNodes, *tpPods)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	ownBinDir, err := localcluster.ResolveBinDir("")
	if err != nil {
		b.Fatal(err)
	}
	// The newest upstream scheduler runs against its own minor's API server (a scheduler newer
	// than its API server is outside Kubernetes' skew policy); every configuration shares it.
	binDir, newestBinary := ownBinDir, ""
	if *tpNewest != "" {
		if binDir, err = buildCompat(b, *tpNewest, "kube-scheduler"); err != nil {
			b.Fatal(err)
		}
		newestBinary = filepath.Join(binDir, "kube-scheduler")
	}
	c, err := localcluster.Start(ctx, localcluster.Options{NoKwok: true, BinDir: binDir})
	if err != nil {
		b.Fatal(err)
	}
	if v, err := kubernetes.NewForConfigOrDie(c.Config).Discovery().ServerVersion(); err == nil {
		fmt.Printf("API server %s (%s)\n", v.GitVersion, binDir)
	}
	defer func() { _ = c.Stop(); _ = os.RemoveAll(c.Dir) }()
	cfg := *c.Config
	cfg.QPS, cfg.Burst = 2000, 4000
	client := kubernetes.NewForConfigOrDie(&cfg)

	var upstream []tpConfig
	if *tpUpstream {
		upstream = append(upstream, tpConfig{name: upstreamName(ownMinor(b)), binary: filepath.Join(ownBinDir, "kube-scheduler")})
	}
	if newestBinary != "" {
		upstream = append(upstream, tpConfig{name: upstreamName(*tpNewest), binary: newestBinary})
	}
	shippedConfig := framework.RepoFile(b, "manifests/scheduler-config.yaml")
	configs, err := throughputConfigs(c, framework.SchedulerBinary(b), shippedConfig, upstream)
	if err != nil {
		b.Fatal(err)
	}
	var baseline []tpConfig
	if *tpBaseline != "" {
		cfg := *tpBaseCfg
		if cfg == "" {
			cfg = shippedConfig
		}
		base, err := shippedProfile(c, baselineName, *tpBaseline, cfg)
		if err != nil {
			b.Fatalf("-throughput.baseline: %v", err)
		}
		baseline = []tpConfig{base}
		configs = append(configs, base)
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tpNamespace}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}

	var ratioLines []string
	created := 0
	for k, nodes := range nodeCounts {
		if err := createThroughputNodes(ctx, client, created, nodes); err != nil {
			b.Fatal(err)
		}
		created = nodes
		pods := podCounts[k]
		results := map[string][]float64{}
		for i := 0; i < b.N; i++ {
			for round := 0; round < *tpRounds; round++ {
				order := append([]tpConfig{}, configs...)
				if round%2 == 1 {
					for l, r := 0, len(order)-1; l < r; l, r = l+1, r-1 {
						order[l], order[r] = order[r], order[l]
					}
				}
				for _, tc := range order {
					rate, err := measure(ctx, c, client, tc, pods)
					if err != nil {
						b.Fatal(err)
					}
					b.Logf("nodes %d, round %d: %-24s %7.1f pods/s", nodes, round+1, tc.name, rate)
					results[tc.name] = append(results[tc.name], rate)
				}
			}
		}
		var lines []string
		for _, tc := range configs {
			m := mean(results[tc.name])
			b.ReportMetric(m, fmt.Sprintf("nodes-%d-%s-pods/s", nodes, tc.name))
			lines = append(lines, fmt.Sprintf("%-24s %8.1f pods/s  (runs: %s)", tc.name, m, fmtRates(results[tc.name])))
		}
		ratio := mean(results["spot-scheduler"]) / mean(results["default-profile"])
		b.ReportMetric(ratio, fmt.Sprintf("nodes-%d-spot/default-ratio", nodes))
		if all := mean(results["default-all-nodes"]); all > 0 {
			lines = append(lines, fmt.Sprintf("ratio spot-scheduler / default plugins scoring all nodes: %.2f", mean(results["spot-scheduler"])/all))
		}
		if *tpFallback > 0 {
			spot := configs[indexOf(configs, "spot-scheduler")]
			fb, err := measureFallback(ctx, c, client, spot, nodes, *tpFallback)
			if err != nil {
				b.Fatal(err)
			}
			lines = append(lines, fb...)
		}
		fmt.Printf("\nscheduling throughput, %d nodes, %d pods, %d rounds:\n  %s\n\n", nodes, pods, *tpRounds, strings.Join(lines, "\n  "))
		ratioLines = append(ratioLines, fmt.Sprintf("ratio nodes=%d spot-scheduler/default-profile=%.2f%s", nodes, ratio, spread(results["spot-scheduler"], results["default-profile"])))
		for _, base := range baseline {
			ratioLines = append(ratioLines,
				fmt.Sprintf("ratio nodes=%d %s/default-profile=%.2f%s", nodes, base.name, mean(results[base.name])/mean(results["default-profile"]), spread(results[base.name], results["default-profile"])),
				fmt.Sprintf("ratio nodes=%d spot-scheduler/%s=%.2f%s", nodes, base.name, mean(results["spot-scheduler"])/mean(results[base.name]), spread(results["spot-scheduler"], results[base.name])))
		}
		for _, up := range upstream {
			r := mean(results["spot-scheduler"]) / mean(results[up.name])
			b.ReportMetric(r, fmt.Sprintf("nodes-%d-spot/%s-ratio", nodes, up.name))
			ratioLines = append(ratioLines, fmt.Sprintf("ratio nodes=%d spot-scheduler/%s=%.2f%s", nodes, up.name, r, spread(results["spot-scheduler"], results[up.name])))
		}
	}
	b.StopTimer()
	// Last, one line per node count, for scripts.
	fmt.Println(strings.Join(ratioLines, "\n"))
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// spread gives the lowest and the highest of the per-round ratios a/b (each round measures
// both, back to back), as " lo=L hi=H", or "" with a single round.
func spread(a, b []float64) string {
	if len(a) < 2 || len(a) != len(b) {
		return ""
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range a {
		r := a[i] / b[i]
		lo, hi = math.Min(lo, r), math.Max(hi, r)
	}
	return fmt.Sprintf(" lo=%.2f hi=%.2f", lo, hi)
}

// upstreamName names the upstream kube-scheduler of a minor ("upstream-1.37").
func upstreamName(minor string) string { return "upstream-" + minor }

// ownMinor is the minor of k8s.io/kubernetes the product is built on (go.mod), e.g. "1.34".
func ownMinor(b *testing.B) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "k8s.io/kubernetes").Output()
	if err != nil {
		b.Fatalf("go list -m k8s.io/kubernetes: %v", err)
	}
	v := strings.Split(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
	if len(v) < 2 {
		b.Fatalf("k8s.io/kubernetes version %q", out)
	}
	return v[0] + "." + v[1]
}

// buildCompat runs hack/build-compat.sh (it builds or reuses a minor's binaries, cached).
func buildCompat(b *testing.B, args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{framework.RepoFile(b, "hack/build-compat.sh")}, args...)...)
	cmd.Dir = framework.RepoFile(b, ".")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/build-compat.sh %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func indexOf(configs []tpConfig, name string) int {
	for i, tc := range configs {
		if tc.name == name {
			return i
		}
	}
	panic("no configuration " + name)
}

// parseCounts reads -throughput.nodes and -throughput.pods.
func parseCounts(nodesFlag, podsFlag string) (nodes, pods []int, err error) {
	parse := func(name, v string) ([]int, error) {
		var out []int
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("-%s: %q is not a number", name, f)
			}
			out = append(out, n)
		}
		return out, nil
	}
	if nodes, err = parse("throughput.nodes", nodesFlag); err != nil {
		return nil, nil, err
	}
	for i, n := range nodes {
		if n < 1 || n > 5000 || (i > 0 && n <= nodes[i-1]) {
			return nil, nil, fmt.Errorf("-throughput.nodes %q: counts must ascend, each in 1..5000", nodesFlag)
		}
	}
	if pods, err = parse("throughput.pods", podsFlag); err != nil {
		return nil, nil, err
	}
	if len(pods) == 1 {
		for len(pods) < len(nodes) {
			pods = append(pods, pods[0])
		}
	}
	if len(pods) != len(nodes) {
		return nil, nil, fmt.Errorf("-throughput.pods %q: one count, or one per node count (%d)", podsFlag, len(nodes))
	}
	for _, p := range pods {
		if p < 2 {
			return nil, nil, fmt.Errorf("-throughput.pods %q: each count must be at least 2", podsFlag)
		}
	}
	return nodes, pods, nil
}

func fmtRates(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(s, ", ")
}

// throughputConfigs writes the configurations: every one without leader election and with a
// client rate limit high enough not to be the bottleneck (the same for all).
func throughputConfigs(c *localcluster.Cluster, spotBinary, shippedConfig string, upstream []tpConfig) ([]tpConfig, error) {
	defaultCfg := func(schedulerName string) map[string]any {
		return map[string]any{
			"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
			"profiles": []any{map[string]any{"schedulerName": schedulerName}},
		}
	}
	var out []tpConfig
	p, err := writeThroughputConfig(c, "default-profile", defaultCfg("default-profile"))
	if err != nil {
		return nil, err
	}
	out = append(out, tpConfig{"default-profile", spotBinary, p, "default-profile"})
	// The default plugins scoring every node, as the spot-scheduler profile does: separates
	// the cost of scoring all nodes from the cost of the spot-scheduler plugins.
	all := defaultCfg("default-all-nodes")
	all["profiles"].([]any)[0].(map[string]any)["percentageOfNodesToScore"] = 100
	if p, err = writeThroughputConfig(c, "default-all-nodes", all); err != nil {
		return nil, err
	}
	out = append(out, tpConfig{"default-all-nodes", spotBinary, p, "default-all-nodes"})

	spot, err := shippedProfile(c, "spot-scheduler", spotBinary, shippedConfig)
	if err != nil {
		return nil, err
	}
	out = append(out, spot)
	for _, up := range upstream {
		if p, err = writeThroughputConfig(c, up.name, defaultCfg(up.name)); err != nil {
			return nil, err
		}
		out = append(out, tpConfig{up.name, up.binary, p, up.name})
	}
	return out, nil
}

// writeThroughputConfig writes a KubeSchedulerConfiguration for the cluster (its
// kubeconfig, high client limits, no leader election) as name.yaml in the cluster's directory.
func writeThroughputConfig(c *localcluster.Cluster, name string, cfg map[string]any) (string, error) {
	cfg["clientConnection"] = map[string]any{"kubeconfig": c.Kubeconfig, "qps": 5000, "burst": 5000}
	cfg["leaderElection"] = map[string]any{"leaderElect": false}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	p := filepath.Join(c.Dir, name+".yaml")
	return p, os.WriteFile(p, data, 0o600)
}

// shippedProfile is the shipped spot-scheduler profile (schedulerName spot-scheduler, from
// configFile) on binary, measured as name.
func shippedProfile(c *localcluster.Cluster, name, binary, configFile string) (tpConfig, error) {
	data, err := os.ReadFile(configFile)
	if err != nil {
		return tpConfig{}, err
	}
	shipped := map[string]any{}
	if err := yaml.Unmarshal(data, &shipped); err != nil {
		return tpConfig{}, fmt.Errorf("%s: %w", configFile, err)
	}
	p, err := writeThroughputConfig(c, name, shipped)
	return tpConfig{name, binary, p, "spot-scheduler"}, err
}

// createThroughputNodes makes nodes from..to-1 of 32 CPU: 40% spot over 6 pools in 3 zones,
// 55% on-demand, 5% virtual (burst, tainted).
func createThroughputNodes(ctx context.Context, client kubernetes.Interface, from, to int) error {
	return parallel(to-from, 16, func(k int) error {
		i := from + k
		name := fmt.Sprintf("node-%05d", i)
		labels := map[string]string{"topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%3), "node.kubernetes.io/instance-type": "m5.8xlarge"}
		var taints []v1.Taint
		switch tier := tierOfNode(i); tier {
		case "spot":
			labels = framework.Labels(labels, testobj.SpotLabels, map[string]string{"karpenter.sh/nodepool": fmt.Sprintf("spot-%d", i%6)})
		case "on-demand":
			labels = framework.Labels(labels, testobj.OnDemandLabels, map[string]string{"karpenter.sh/nodepool": "on-demand"})
		default:
			labels = framework.Labels(labels, testobj.BurstLabels)
			taints = []v1.Taint{{Key: "virtual-kubelet.io/provider", Value: "azure", Effect: v1.TaintEffectNoSchedule}}
		}
		node := testobj.Node(name, "32", labels, taints...)
		node.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
		created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		// Status is a subresource: make the node Ready (no kubelet here).
		created.Status = node.Status
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	})
}

// tierOfNode is the tier of node i: spot for 40 in 100, on-demand for 55, burst for 5.
func tierOfNode(i int) string {
	switch pct := i % 100; {
	case pct < 40:
		return "spot"
	case pct < 95:
		return "on-demand"
	default:
		return "burst"
	}
}

// tpPod is pod i of a measurement: one of 30 ReplicaSets, 500m CPU, tolerating burst.
func tpPod(schedulerName, name string, i int) *v1.Pod {
	pod := testobj.Pod(name, fmt.Sprintf("app-%02d", i%30), "", "500m")
	pod.Namespace, pod.UID, pod.Status = tpNamespace, "", v1.PodStatus{}
	pod.Spec.SchedulerName = schedulerName
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	pod.Spec.Tolerations = []v1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: v1.TolerationOpExists}}
	pod.Spec.Containers[0].Image = "registry.k8s.io/pause:3.10"
	return pod
}

func parallel(n, workers int, fn func(int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// measure creates the pods for tc, starts its scheduler, and returns the binding rate.
func measure(ctx context.Context, c *localcluster.Cluster, client kubernetes.Interface, tc tpConfig, n int) (float64, error) {
	err := parallel(n, 16, func(i int) error {
		_, err := client.CoreV1().Pods(tpNamespace).Create(ctx, tpPod(tc.schedulerName, fmt.Sprintf("%s-%05d", tc.name, i), i), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("creating pods: %w", err)
	}

	var mu sync.Mutex
	var times []time.Time
	seen := map[types.UID]bool{}
	done := make(chan struct{})
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(tpNamespace))
	inf := factory.Core().V1().Pods().Informer()
	record := func(obj any) {
		p, ok := obj.(*v1.Pod)
		if !ok || p.Spec.NodeName == "" || p.Spec.SchedulerName != tc.schedulerName {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !seen[p.UID] {
			seen[p.UID] = true
			times = append(times, time.Now())
			if len(times) == n {
				close(done)
			}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, o any) { record(o) }}); err != nil {
		return 0, err
	}
	ictx, stopInformer := context.WithCancel(ctx)
	defer stopInformer()
	factory.Start(ictx.Done())
	cache.WaitForCacheSync(ictx.Done(), inf.HasSynced)

	args := []string{"--config=" + tc.config, "--secure-port=0", "--v=1"}
	var port int
	if *tpProfile != "" {
		port, err = localcluster.FreePort()
		if err != nil {
			return 0, err
		}
		args = append(args, "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
			"--authorization-always-allow-paths=/healthz,/readyz,/livez,/debug/pprof/*")
	}
	proc, err := c.StartProcess(ctx, tc.name, tc.binary, args...)
	if err != nil {
		return 0, err
	}
	profiled := make(chan error, 1)
	if *tpProfile != "" {
		round++
		go func(out string) { profiled <- captureCPUProfile(ctx, port, *tpProfSecs, out) }(filepath.Join(*tpProfile, fmt.Sprintf("%s-%d.pprof", tc.name, round)))
	} else {
		profiled <- nil
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		proc.Stop(5 * time.Second)
		return 0, fmt.Errorf("%s bound %d of %d pods in 10 minutes (log %s)", tc.name, len(times), n, proc.Log)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	perr := <-profiled
	proc.Stop(5 * time.Second)
	stopInformer()
	if perr != nil {
		return 0, fmt.Errorf("profiling %s: %w", tc.name, perr)
	}

	mu.Lock()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	span := times[len(times)-1].Sub(times[0]).Seconds()
	mu.Unlock()

	// Bound pods without a kubelet go away at once with a zero grace period.
	if err := client.CoreV1().Pods(tpNamespace).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
		return 0, err
	}
	err = localcluster.WaitForAPI(ctx, 5*time.Minute, func(ctx context.Context) (bool, error) {
		l, err := client.CoreV1().Pods(tpNamespace).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil && len(l.Items) == 0, nil
	})
	if err != nil {
		return 0, fmt.Errorf("deleting the pods: %w", err)
	}
	return float64(n-1) / span, nil
}

// round numbers the profiles of successive measurements.
var round int

// captureCPUProfile waits for the scheduler's secure port, then writes a CPU profile of the
// next seconds to out. The certificate is the scheduler's self-signed one.
func captureCPUProfile(ctx context.Context, port, seconds int, out string) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback, self-signed, benchmark only
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	err := localcluster.WaitForAPI(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return err
	}
	resp, err := client.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, seconds))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/profile: %s", resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// measureFallback measures, with tc's scheduler running and otherwise idle, how long a pod
// takes from its creation to its binding, n pods one after another, in three cases:
//   - direct: the best tier (spot) has room; the pod binds on spot.
//   - anti-affinity: every spot node is excluded by a constraint on other pods (a required
//     anti-affinity, over the capacity-type topology, to a pod running on spot): the exact
//     search; the pod binds on on-demand.
//   - spot-tainted: every spot node has become infeasible (a NoSchedule taint, as a reclaim
//     makes it); the narrowing goes to on-demand; the pod binds there.
//
// It returns one report line per case, and leaves the cluster as it found it.
func measureFallback(ctx context.Context, c *localcluster.Cluster, client kubernetes.Interface, tc tpConfig, nodes, n int) ([]string, error) {
	var waiting sync.Map // pod name -> chan string (the node)
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(tpNamespace))
	inf := factory.Core().V1().Pods().Informer()
	record := func(obj any) {
		if p, ok := obj.(*v1.Pod); ok && p.Spec.NodeName != "" {
			if ch, ok := waiting.LoadAndDelete(p.Name); ok {
				ch.(chan string) <- p.Spec.NodeName
			}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, o any) { record(o) }}); err != nil {
		return nil, err
	}
	ictx, stopInformer := context.WithCancel(ctx)
	defer stopInformer()
	factory.Start(ictx.Done())
	cache.WaitForCacheSync(ictx.Done(), inf.HasSynced)
	proc, err := c.StartProcess(ctx, tc.name+"-fallback", tc.binary, "--config="+tc.config, "--secure-port=0", "--v=1")
	if err != nil {
		return nil, err
	}
	defer proc.Stop(5 * time.Second)

	// bind creates pod and returns its node and the time from creation to binding.
	bind := func(pod *v1.Pod) (string, time.Duration, error) {
		ch := make(chan string, 1)
		waiting.Store(pod.Name, ch)
		start := time.Now()
		if _, err := client.CoreV1().Pods(tpNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return "", 0, err
		}
		select {
		case node := <-ch:
			return node, time.Since(start), nil
		case <-time.After(2 * time.Minute):
			return "", 0, fmt.Errorf("pod %s not bound in 2 minutes (log %s)", pod.Name, proc.Log)
		}
	}
	// The first binding includes the scheduler's start: not measured.
	if _, _, err := bind(tpPod(tc.schedulerName, "fallback-warmup", 0)); err != nil {
		return nil, err
	}
	var lines []string
	run := func(name, wantTier string, mk func(i int) *v1.Pod) error {
		lat := make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			node, d, err := bind(mk(i))
			if err != nil {
				return err
			}
			var idx int
			if _, err := fmt.Sscanf(node, "node-%d", &idx); err != nil || tierOfNode(idx) != wantTier {
				return fmt.Errorf("fallback case %s: pod bound to %s, want a %s node", name, node, wantTier)
			}
			lat = append(lat, d)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
		lines = append(lines, fmt.Sprintf("fallback latency nodes=%d case=%s pods=%d p50=%s p90=%s max=%s (creation to binding, on %s)",
			nodes, name, n, ms(lat[len(lat)/2]), ms(lat[len(lat)*9/10]), ms(lat[len(lat)-1]), wantTier))
		return nil
	}
	if err := run("direct", "spot", func(i int) *v1.Pod { return tpPod(tc.schedulerName, fmt.Sprintf("fallback-direct-%03d", i), i) }); err != nil {
		return nil, err
	}
	marker := tpPod(tc.schedulerName, "fallback-marker", 0)
	marker.Labels = map[string]string{"role": "marker"}
	marker.Spec.NodeName = "node-00000" // spot
	if _, err := client.CoreV1().Pods(tpNamespace).Create(ctx, marker, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	err = run("anti-affinity", "on-demand", func(i int) *v1.Pod {
		p := tpPod(tc.schedulerName, fmt.Sprintf("fallback-anti-%03d", i), i)
		p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "marker"}},
			TopologyKey:   "karpenter.sh/capacity-type",
		}}}}
		return p
	})
	if err != nil {
		return nil, err
	}
	if err := taintSpot(ctx, client, nodes, true); err != nil {
		return nil, err
	}
	err = run("spot-tainted", "on-demand", func(i int) *v1.Pod { return tpPod(tc.schedulerName, fmt.Sprintf("fallback-tainted-%03d", i), i) })
	if uerr := taintSpot(ctx, client, nodes, false); err == nil {
		err = uerr
	}
	if err != nil {
		return nil, err
	}
	if err := client.CoreV1().Pods(tpNamespace).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
		return nil, err
	}
	err = localcluster.WaitForAPI(ctx, 5*time.Minute, func(ctx context.Context) (bool, error) {
		l, err := client.CoreV1().Pods(tpNamespace).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil && len(l.Items) == 0, nil
	})
	return lines, err
}

// reclaimTaint makes a spot node infeasible, as a reclaim's NoSchedule taint does.
var reclaimTaint = v1.Taint{Key: "bench.spot-scheduler.io/reclaimed", Effect: v1.TaintEffectNoSchedule}

// taintSpot adds (or removes) reclaimTaint on every spot node among the first nodes.
func taintSpot(ctx context.Context, client kubernetes.Interface, nodes int, add bool) error {
	var spot []string
	for i := 0; i < nodes; i++ {
		if tierOfNode(i) == "spot" {
			spot = append(spot, fmt.Sprintf("node-%05d", i))
		}
	}
	return parallel(len(spot), 16, func(i int) error {
		node, err := client.CoreV1().Nodes().Get(ctx, spot[i], metav1.GetOptions{})
		if err != nil {
			return err
		}
		var taints []v1.Taint
		for _, t := range node.Spec.Taints {
			if t.Key != reclaimTaint.Key {
				taints = append(taints, t)
			}
		}
		if add {
			taints = append(taints, reclaimTaint)
		}
		node.Spec.Taints = taints
		_, err = client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
}
