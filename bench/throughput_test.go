// Package bench holds the benchmarks that run against a real control plane: the scheduling
// throughput benchmark here, and the strategy benchmark (bench/strategy, bench/cmd/strategies).
package bench

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/spot-scheduler/spot-scheduler/pkg/localcluster"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

var (
	tpNodes    = flag.Int("throughput.nodes", 1000, "Nodes of the scheduling throughput benchmark (up to 5000).")
	tpPods     = flag.Int("throughput.pods", 3000, "Pods scheduled per measurement.")
	tpRounds   = flag.Int("throughput.rounds", 2, "Rounds; each round measures every configuration, alternating the order.")
	tpUpstream = flag.Bool("throughput.upstream", true, "Also measure the upstream kube-scheduler binary (default profile).")
	tpProfile  = flag.String("throughput.cpuprofile", "", "Directory for a CPU profile of each measurement (the scheduler's /debug/pprof/profile over -throughput.profile-seconds); empty: none.")
	tpProfSecs = flag.Int("throughput.profile-seconds", 10, "Length of each CPU profile.")
)

func TestMain(m *testing.M) {
	flag.Parse()
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false)))
	os.Exit(m.Run())
}

const tpNamespace = "throughput"

// tpConfig is one scheduler configuration under measurement.
type tpConfig struct {
	name          string
	binary        string
	config        string // KubeSchedulerConfiguration file
	schedulerName string
}

// BenchmarkSchedulingThroughput schedules the same workload (default 3000 pods on 1000 nodes
// of spot, on-demand and burst tiers, 30 ReplicaSet owners) against a real kube-apiserver with
// the spot-scheduler binary run with the upstream default profile, with the default plugins
// scoring all nodes (percentageOfNodesToScore 100, as the spot-scheduler profile does), and with
// the shipped spot-scheduler profile (and, with -throughput.upstream, the upstream
// kube-scheduler binary), alternating the order every round. The pods exist before the
// scheduler starts; throughput is the pods bound between the first and the last binding per
// second. Run it with `make bench-throughput` or
//
//	go test ./bench -run '^$' -bench SchedulingThroughput -benchtime 1x
func BenchmarkSchedulingThroughput(b *testing.B) {
	if testing.Short() {
		b.Skip("needs a real control plane")
	}
	if *tpNodes > 5000 || *tpNodes < 1 || *tpPods < 2 {
		b.Fatalf("-throughput.nodes must be in 1..5000 and -throughput.pods >= 2")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Options{NoKwok: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Stop(); _ = os.RemoveAll(c.Dir) }()
	cfg := *c.Config
	cfg.QPS, cfg.Burst = 2000, 4000
	client := kubernetes.NewForConfigOrDie(&cfg)

	configs, err := throughputConfigs(c, framework.SchedulerBinary(b), framework.RepoFile(b, "manifests/scheduler-config.yaml"), *tpUpstream)
	if err != nil {
		b.Fatal(err)
	}
	if err := createThroughputNodes(ctx, client, *tpNodes); err != nil {
		b.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tpNamespace}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}

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
				rate, err := measure(ctx, c, client, tc, *tpPods)
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("round %d: %-22s %7.1f pods/s", round+1, tc.name, rate)
				results[tc.name] = append(results[tc.name], rate)
			}
		}
	}
	b.StopTimer()
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	var lines []string
	for _, tc := range configs {
		m := mean(results[tc.name])
		b.ReportMetric(m, tc.name+"-pods/s")
		lines = append(lines, fmt.Sprintf("%-24s %8.1f pods/s  (runs: %s)", tc.name, m, fmtRates(results[tc.name])))
	}
	ratio := mean(results["spot-scheduler"]) / mean(results["default-profile"])
	b.ReportMetric(ratio, "spot/default-ratio")
	lines = append(lines, fmt.Sprintf("ratio spot-scheduler / default profile: %.2f", ratio))
	if all := mean(results["default-all-nodes"]); all > 0 {
		b.ReportMetric(mean(results["spot-scheduler"])/all, "spot/default-all-nodes-ratio")
		lines = append(lines, fmt.Sprintf("ratio spot-scheduler / default plugins scoring all nodes: %.2f", mean(results["spot-scheduler"])/all))
	}
	fmt.Printf("\nscheduling throughput, %d nodes, %d pods, %d rounds:\n  %s\n\n", *tpNodes, *tpPods, *tpRounds, strings.Join(lines, "\n  "))
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
func throughputConfigs(c *localcluster.Cluster, spotBinary, shippedConfig string, upstream bool) ([]tpConfig, error) {
	conn := map[string]any{"kubeconfig": c.Kubeconfig, "qps": 5000, "burst": 5000}
	write := func(name string, cfg map[string]any) (string, error) {
		cfg["clientConnection"] = conn
		cfg["leaderElection"] = map[string]any{"leaderElect": false}
		data, err := yaml.Marshal(cfg)
		if err != nil {
			return "", err
		}
		p := filepath.Join(c.Dir, name+".yaml")
		return p, os.WriteFile(p, data, 0o600)
	}
	defaultCfg := func(schedulerName string) map[string]any {
		return map[string]any{
			"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
			"profiles": []any{map[string]any{"schedulerName": schedulerName}},
		}
	}
	var out []tpConfig
	p, err := write("default-profile", defaultCfg("default-profile"))
	if err != nil {
		return nil, err
	}
	out = append(out, tpConfig{"default-profile", spotBinary, p, "default-profile"})
	// The default plugins scoring every node, as the spot-scheduler profile does: separates
	// the cost of scoring all nodes from the cost of the spot-scheduler plugins.
	all := defaultCfg("default-all-nodes")
	all["profiles"].([]any)[0].(map[string]any)["percentageOfNodesToScore"] = 100
	if p, err = write("default-all-nodes", all); err != nil {
		return nil, err
	}
	out = append(out, tpConfig{"default-all-nodes", spotBinary, p, "default-all-nodes"})

	data, err := os.ReadFile(shippedConfig)
	if err != nil {
		return nil, err
	}
	shipped := map[string]any{}
	if err := yaml.Unmarshal(data, &shipped); err != nil {
		return nil, err
	}
	if p, err = write("spot-scheduler", shipped); err != nil {
		return nil, err
	}
	out = append(out, tpConfig{"spot-scheduler", spotBinary, p, "spot-scheduler"})
	if upstream {
		if p, err = write("upstream-kube-scheduler", defaultCfg("upstream-kube-scheduler")); err != nil {
			return nil, err
		}
		out = append(out, tpConfig{"upstream-kube-scheduler", filepath.Join(c.BinDir, "kube-scheduler"), p, "upstream-kube-scheduler"})
	}
	return out, nil
}

// createThroughputNodes makes n nodes of 32 CPU: 40% spot over 6 pools in 3 zones, 55%
// on-demand, 5% virtual (burst, tainted).
func createThroughputNodes(ctx context.Context, client kubernetes.Interface, n int) error {
	res := v1.ResourceList{v1.ResourceCPU: resource.MustParse("32"), v1.ResourceMemory: resource.MustParse("128Gi"), v1.ResourcePods: resource.MustParse("110")}
	return parallel(n, 16, func(i int) error {
		name := fmt.Sprintf("node-%05d", i)
		labels := map[string]string{"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%3),
			"node.kubernetes.io/instance-type": "m5.8xlarge"}
		var taints []v1.Taint
		switch pct := i % 100; {
		case pct < 40:
			labels["karpenter.sh/capacity-type"] = "spot"
			labels["karpenter.sh/nodepool"] = fmt.Sprintf("spot-%d", i%6)
		case pct < 95:
			labels["karpenter.sh/capacity-type"] = "on-demand"
			labels["karpenter.sh/nodepool"] = "on-demand"
		default:
			labels["type"] = "virtual-kubelet"
			taints = []v1.Taint{{Key: "virtual-kubelet.io/provider", Value: "azure", Effect: v1.TaintEffectNoSchedule}}
		}
		node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: v1.NodeSpec{Taints: taints},
			Status: v1.NodeStatus{Capacity: res, Allocatable: res, Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}}}
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
		owner := fmt.Sprintf("app-%02d", i%30)
		pod := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", tc.name, i), Namespace: tpNamespace, Labels: map[string]string{"app": owner},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner, UID: types.UID("rs-" + owner), Controller: ptr.To(true)}}},
			Spec: v1.PodSpec{
				SchedulerName:                 tc.schedulerName,
				TerminationGracePeriodSeconds: ptr.To[int64](0),
				Tolerations:                   []v1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: v1.TolerationOpExists}},
				Containers: []v1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
					Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("512Mi")}}}},
			},
		}
		_, err := client.CoreV1().Pods(tpNamespace).Create(ctx, pod, metav1.CreateOptions{})
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
