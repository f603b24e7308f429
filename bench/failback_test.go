package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

var (
	fbWorkloads = flag.Int("failback.workloads", 10, "Workloads (Deployments) of the failback benchmark.")
	fbReplicas  = flag.Int("failback.replicas", 300, "Replicas per workload (1 CPU each).")
	fbOutage    = flag.Duration("failback.outage", 150*time.Second, "How long the reclaimed pool stays away; longer than the rebalancer's --min-pod-age (2 min), as real outages are (the failed-over pods must be old enough to move).")
	fbOut       = flag.String("failback.out", "results/failback.txt", "Where the result line is written too (relative to bench/).")
)

const (
	fbNamespace = "failback"
	// 10-CPU nodes: three spot pools of 100 nodes hold the 3000 pods exactly; 200 on-demand
	// nodes take the third of them that a reclaimed pool displaces.
	fbNodeCPU       = 10
	fbPoolNodes     = 100
	fbOnDemandNodes = 200
	fbPodReadyDelay = 5 * time.Second
)

// BenchmarkFailback: 500 nodes (3 spot pools of 100, 200 on-demand), 10 workloads of 300
// one-CPU pods (half with a PDB of maxUnavailable 20%), pods Ready 5 s after they start. One
// spot pool (a third of spot) is reclaimed (its nodes drained and deleted, as an interruption
// handler does); the displaced pods fail over to on-demand; after the outage the pool returns
// (100 new nodes) and the rebalancer, at its defaults, brings every pod back. Measured: the
// time from the return to every pod Running and Ready on spot, evictions per second over that
// time, and the fewest Ready replicas of each workload during failback (sampled every second)
// against desired - budget. Run with `make bench-failback`.
func BenchmarkFailback(b *testing.B) {
	if testing.Short() {
		b.Skip("needs a real control plane")
	}
	env := framework.Start(b, localcluster.Options{
		ControllerManager: true,
		PodReadyDelay:     fbPodReadyDelay,
		// kube-controller-manager's default client limit (20 requests/s) would pace the
		// ReplicaSets' replacements at 20 pods/s; clusters of this size raise it.
		ControllerManagerArgs: []string{"--kube-api-qps=100", "--kube-api-burst=200"},
	})
	cfg := *env.Config
	cfg.QPS, cfg.Burst = 500, 1000
	client := kubernetes.NewForConfigOrDie(&cfg)
	env.CreateNamespace(fbNamespace)
	env.StartScheduler("spot-scheduler", "")
	ctx := env.Ctx

	// Nodes.
	pools := []string{"a", "b", "c"}
	var nodes []*v1.Node
	for _, pool := range pools {
		for i := range fbPoolNodes {
			nodes = append(nodes, framework.Node(fmt.Sprintf("spot-%s-%03d", pool, i), fmt.Sprint(fbNodeCPU),
				framework.Labels(framework.SpotLabels, map[string]string{"karpenter.sh/nodepool": pool})))
		}
	}
	for i := range fbOnDemandNodes {
		nodes = append(nodes, framework.Node(fmt.Sprintf("ondemand-%03d", i), fmt.Sprint(fbNodeCPU), framework.OnDemandLabels))
	}
	createNodes(b, ctx, client, nodes)

	// Workloads.
	budget := wellknown.DisruptionBudget(intstr.FromString("25%"), *fbReplicas)
	var apps []string
	for w := range *fbWorkloads {
		name := fmt.Sprintf("app-%02d", w)
		apps = append(apps, name)
		if _, err := client.AppsV1().Deployments(fbNamespace).Create(ctx, framework.Deployment(fbNamespace, name, int32(*fbReplicas), "1"), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		if w%2 == 1 {
			pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: fbNamespace, Name: name},
				Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("20%")),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}}}
			if _, err := client.PolicyV1().PodDisruptionBudgets(fbNamespace).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	total := *fbWorkloads * *fbReplicas
	start := time.Now()
	waitPods(b, env, client, "every pod Ready on spot", 15*time.Minute, func(s podState) bool { return s.ready == total && s.readyOn["spot"] == total })
	b.Logf("%d pods Ready on spot in %s", total, time.Since(start).Round(time.Second))
	p, base := env.StartRebalancer("spot-rebalancer")
	admin := env.AdminHTTPS(base)
	b.Logf("spot-rebalancer at its defaults (log %s)", p.Log)

	// Reclaim pool c: drained and deleted, as an interruption handler does.
	reclaimed := time.Now()
	var gone []string
	for _, n := range nodes {
		if n.Labels["karpenter.sh/nodepool"] == "c" {
			gone = append(gone, n.Name)
		}
	}
	reclaim(b, ctx, client, gone)
	var failedOver int
	waitPods(b, env, client, "the displaced pods Ready on on-demand", 15*time.Minute, func(s podState) bool {
		failedOver = s.readyOn["on-demand"]
		return s.ready == total && failedOver > 0 && s.readyOn["spot"]+failedOver == total
	})
	b.Logf("reclaim: %d pods failed over to on-demand, all Ready %s after the reclaim", failedOver, time.Since(reclaimed).Round(time.Second))
	if wait := *fbOutage - time.Since(reclaimed); wait > 0 {
		b.Logf("outage: the pool returns in %s", wait.Round(time.Second))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		}
	}

	// The pool returns.
	sampler := framework.StartReadySampler(client, fbNamespace, apps, time.Second)
	var back []*v1.Node
	for i := range fbPoolNodes {
		back = append(back, framework.Node(fmt.Sprintf("spot-c-new-%03d", i), fmt.Sprint(fbNodeCPU),
			framework.Labels(framework.SpotLabels, map[string]string{"karpenter.sh/nodepool": "c"})))
	}
	createNodes(b, ctx, client, back)
	returned := time.Now()
	evictionsBefore := framework.ScrapeMetric(b, admin, base+"/metrics", "spot_scheduler_rebalance_evictions_total")
	waitPods(b, env, client, "every pod Ready on spot again", 10*time.Minute, func(s podState) bool {
		return s.ready == total && s.readyOn["spot"] == total
	})
	backS := time.Since(returned).Seconds()
	fewest, breaches, samples := sampler.Stop()
	evictions := framework.ScrapeMetric(b, admin, base+"/metrics", "spot_scheduler_rebalance_evictions_total") - evictionsBefore

	ratio := 1e9
	var per []string
	for _, a := range apps {
		ratio = min(ratio, float64(fewest[a])/float64(*fbReplicas-budget))
		per = append(per, fmt.Sprintf("%s %d", a, fewest[a]))
	}
	b.Logf("fewest Ready replicas during failback (%d samples; desired %d, budget %d): %s", samples, *fbReplicas, budget, strings.Join(per, ", "))
	// Where the seconds went: the rebalancer's passes that evicted, from its log.
	if log, err := os.ReadFile(p.Log); err == nil {
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, `"Rebalance pass"`) && !strings.Contains(line, " evicted=0") {
				if at, err := time.Parse("15:04:05.000000", strings.Fields(line)[1]); err == nil {
					r := returned.UTC()
					at = time.Date(r.Year(), r.Month(), r.Day(), at.Hour(), at.Minute(), at.Second(), at.Nanosecond(), time.UTC)
					_, rest, _ := strings.Cut(line, `"Rebalance pass" `)
					b.Logf("  pass done at +%.1fs: %s", at.Sub(r).Seconds(), rest)
				}
			}
		}
	}
	if len(breaches) > 0 {
		b.Errorf("PDB breached during failback: %v", breaches)
	}
	line := fmt.Sprintf("failback pods=%d back_s=%.1f evictions_per_s=%.1f min_ready_ratio=%.2f", failedOver, backS, evictions/backS, ratio)
	b.ReportMetric(backS, "back_s")
	b.ReportMetric(ratio, "min_ready_ratio")
	fmt.Println(line)
	if err := os.MkdirAll(filepath.Dir(*fbOut), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(*fbOut, []byte(fmt.Sprintf("# %s, %d nodes, %d workloads x %d pods, pods Ready %s after start, evictions %v, PDB breaches %d\n%s\n",
		time.Now().UTC().Format(time.RFC3339), len(nodes), *fbWorkloads, *fbReplicas, fbPodReadyDelay, evictions, len(breaches), line)), 0o644); err != nil {
		b.Fatal(err)
	}
}

// createNodes creates nodes 16 at a time.
func createNodes(b *testing.B, ctx context.Context, client kubernetes.Interface, nodes []*v1.Node) {
	b.Helper()
	if err := parallel(len(nodes), 16, func(i int) error {
		_, err := client.CoreV1().Nodes().Create(ctx, nodes[i], metav1.CreateOptions{})
		return err
	}); err != nil {
		b.Fatal(err)
	}
}

// reclaim drains the nodes (tainted with Karpenter's karpenter.sh/disrupted, their pods
// deleted at once, as an interruption handler's drain does within the notice) and deletes them.
func reclaim(b *testing.B, ctx context.Context, client kubernetes.Interface, names []string) {
	b.Helper()
	err := parallel(len(names), 16, func(i int) error {
		n, err := client.CoreV1().Nodes().Get(ctx, names[i], metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: "karpenter.sh/disrupted", Effect: v1.TaintEffectNoSchedule})
		if _, err := client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			return err
		}
		pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + names[i]})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if err := client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
				return err
			}
		}
		return client.CoreV1().Nodes().Delete(ctx, names[i], metav1.DeleteOptions{})
	})
	if err != nil {
		b.Fatal(err)
	}
}

// podState counts the benchmark's pods: Ready (not terminating) ones, and those per capacity
// type of their node.
type podState struct {
	ready   int
	readyOn map[string]int
}

func readState(ctx context.Context, client kubernetes.Interface) (podState, error) {
	s := podState{readyOn: map[string]int{}}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, err
	}
	capacityType := map[string]string{}
	for _, n := range nodes.Items {
		capacityType[n.Name] = n.Labels["karpenter.sh/capacity-type"]
	}
	pods, err := client.CoreV1().Pods(fbNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && framework.PodReady(p) {
			s.ready++
			s.readyOn[capacityType[p.Spec.NodeName]]++
		}
	}
	return s, nil
}

func waitPods(b *testing.B, env *framework.Env, client kubernetes.Interface, desc string, timeout time.Duration, done func(podState) bool) {
	b.Helper()
	env.WaitFor(desc, timeout, func(ctx context.Context) (bool, error) {
		s, err := readState(ctx, client)
		return err == nil && done(s), nil
	})
}
