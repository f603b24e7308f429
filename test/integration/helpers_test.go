package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// Helpers shared by this package's tests: start the binaries, create and wait for objects.

// startDeletionCostController runs the rebalancer binary with the shipped scheduler
// configuration, leader election on, and waits until it holds its Lease.
func startDeletionCostController(env *framework.Env) *deletionCostController {
	env.T.Helper()
	config := framework.RepoFile(env.T, "manifests/scheduler-config.yaml")
	model, err := simulator.LoadModel(klog.FromContext(env.Ctx), config, wellknown.SchedulerName)
	if err != nil {
		env.T.Fatal(err)
	}
	// Only the deletion-cost controller: the rebalancer's moves would be writes too.
	rb := startRebalancer(env, "--rebalance=false")
	return &deletionCostController{rebalancer: rb, model: model}
}

func createDeployment(env *framework.Env, d *appsv1.Deployment) {
	env.T.Helper()
	if _, err := env.Client.AppsV1().Deployments(d.Namespace).Create(env.Ctx, d, metav1.CreateOptions{}); err != nil {
		env.T.Fatal(err)
	}
}

// runExplain runs the shipped binary's explain command against the cluster.
func runExplain(env *framework.Env, args ...string) string {
	env.T.Helper()
	args = append([]string{"explain", "--kubeconfig", env.Kubeconfig,
		"--scheduler-config", framework.RepoFile(env.T, "manifests/scheduler-config.yaml"), "--min-pod-age", "0s"}, args...)
	cmd := exec.CommandContext(env.Ctx, framework.SchedulerBinary(env.T), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		env.T.Fatalf("explain %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

func spotPoolNode(name, pool, cpu string) *v1.Node {
	return framework.Node(name, cpu, framework.Labels(framework.SpotLabels, map[string]string{"karpenter.sh/nodepool": "spot-" + pool}))
}

func onDemandPoolNode(name, cpu string) *v1.Node {
	return framework.Node(name, cpu, framework.Labels(framework.OnDemandLabels, map[string]string{"karpenter.sh/nodepool": "on-demand"}))
}

func createPriorityClasses(env *framework.Env) {
	env.T.Helper()
	never := v1.PreemptNever
	for _, pc := range []*schedulingv1.PriorityClass{
		{ObjectMeta: metav1.ObjectMeta{Name: placeholderClass}, Value: -10, PreemptionPolicy: &never},
		{ObjectMeta: metav1.ObjectMeta{Name: batchClass}, Value: 10},
		{ObjectMeta: metav1.ObjectMeta{Name: criticalClass}, Value: 1000},
	} {
		if _, err := env.Client.SchedulingV1().PriorityClasses().Create(env.Ctx, pc, metav1.CreateOptions{}); err != nil {
			env.T.Fatal(err)
		}
	}
}

// placeholderDeployment pins replicas of 1-CPU placeholders to nodes with the given labels.
func placeholderDeployment(name string, replicas int32, nodeSelector map[string]string) *appsv1.Deployment {
	d := framework.Deployment(ns, name, replicas, "1")
	d.Spec.Template.Labels["spot-scheduler.io/placeholder"] = "true"
	d.Spec.Template.Spec.PriorityClassName = placeholderClass
	d.Spec.Template.Spec.NodeSelector = nodeSelector
	return d
}

func podsOf(env *framework.Env, selector string) []v1.Pod {
	env.T.Helper()
	pods, err := env.Client.CoreV1().Pods(ns).List(env.Ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		env.T.Fatal(err)
	}
	return pods.Items
}

func isUnschedulable(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

// rebalancer is the rebalancer binary running against a test cluster.
type rebalancer struct {
	env  *framework.Env
	proc *localcluster.Process
	// base is the secure serving endpoint (https://127.0.0.1:port); metricsURL its /metrics.
	base       string
	metricsURL string
	// admin is an HTTPS client presenting the envtest admin's client certificate (allowed to
	// read /metrics through the rebalancer's delegated authentication and authorization).
	admin *http.Client
	log   string
}

// startRebalancer runs the rebalancer binary (with the deletion-cost controller) on the
// shipped scheduler configuration, with test timings unless overridden, and waits for its Lease.
func startRebalancer(env *framework.Env, args ...string) *rebalancer {
	env.T.Helper()
	return startRebalancerAs(env, "rebalancer", args...)
}

// startRebalancerAs is startRebalancer with the process (and its log) named name, so that
// several instances can run side by side; it returns once some instance holds the Lease.
// The test timings: every pod may move at once (no minimum age), early passes after 1 s, the
// re-validation after 500 ms.
func startRebalancerAs(env *framework.Env, name string, args ...string) *rebalancer {
	env.T.Helper()
	p, base := env.StartRebalancer(name, append([]string{
		"--min-pod-age=0s",
		"--rebalance-debounce=1s",
		"--rebalance-validation-delay=500ms",
	}, args...)...)
	return &rebalancer{env: env, proc: p, base: base, metricsURL: base + "/metrics", admin: env.AdminHTTPS(base), log: p.Log}
}

// adminHTTPS is framework's Env.AdminHTTPS.
func adminHTTPS(env *framework.Env, base string) *http.Client { return env.AdminHTTPS(base) }

// metric sums the samples of a metric of the rebalancer whose line starts with prefix.
func (r *rebalancer) metric(prefix string) float64 {
	r.env.T.Helper()
	return framework.ScrapeMetric(r.env.T, r.admin, r.metricsURL, prefix)
}

// scrapeMetric is framework.ScrapeMetric.
var scrapeMetric = framework.ScrapeMetric

func (r *rebalancer) passes() float64 {
	return r.metric(`spot_scheduler_rebalance_passes_total{result="ok"}`)
}

func (r *rebalancer) evictions() float64 {
	return r.metric("spot_scheduler_rebalance_evictions_total")
}

// waitPasses waits until the rebalancer has completed n more passes.
func (r *rebalancer) waitPasses(n int) {
	r.env.T.Helper()
	start := r.passes()
	r.env.WaitFor(fmt.Sprintf("%d rebalancer passes", n), 2*time.Minute, func(context.Context) (bool, error) {
		return r.passes() >= start+float64(n), nil
	})
}

// rebalancedEvents returns the Rebalanced events in ns: pod name -> message.
func rebalancedEvents(env *framework.Env) map[string]string {
	env.T.Helper()
	events := env.Events(ns, "reason=Rebalanced")
	out := map[string]string{}
	for _, e := range events {
		out[e.InvolvedObject.Name] = e.Message
	}
	return out
}

func podUIDs(env *framework.Env, selector string) map[string]string {
	env.T.Helper()
	out := map[string]string{}
	for _, p := range podsOf(env, selector) {
		out[string(p.UID)] = p.Spec.NodeName
	}
	return out
}

// waitRunningOn waits until want pods of app are Running, all on the given nodes.
func waitRunningOn(env *framework.Env, app string, want int, nodes ...string) {
	env.T.Helper()
	allowed := map[string]bool{}
	for _, n := range nodes {
		allowed[n] = true
	}
	env.WaitFor(fmt.Sprintf("%d pods of %s Running on %v", want, app, nodes), 90*time.Second, func(context.Context) (bool, error) {
		running := 0
		for _, p := range podsOf(env, "app="+app) {
			if p.DeletionTimestamp != nil {
				return false, nil
			}
			if !allowed[p.Spec.NodeName] || p.Status.Phase != v1.PodRunning {
				return false, nil
			}
			running++
		}
		return running == want, nil
	})
}

func startWithScheduler(t *testing.T, controllerManager bool) *framework.Env {
	env := framework.Start(t, localcluster.Options{ControllerManager: controllerManager})
	env.CreateNamespace(ns)
	env.StartScheduler("spot-scheduler", "")
	return env
}

func scaleTo(env *framework.Env, name string, replicas int32) {
	env.T.Helper()
	if err := localcluster.ScaleDeployment(env.Ctx, env.Client, ns, name, replicas); err != nil {
		env.T.Fatal(err)
	}
}

// waitAllBound waits until exactly want pods of the app exist and all are bound, and returns
// their count per node.
func waitAllBound(env *framework.Env, app string, want int) map[string]int {
	env.T.Helper()
	var byNode map[string]int
	env.WaitFor(fmt.Sprintf("%d pods of %s bound", want, app), 60*time.Second, func(context.Context) (bool, error) {
		var unbound int
		byNode, unbound = env.ScheduledPods(ns, "app="+app)
		bound := 0
		for _, n := range byNode {
			bound += n
		}
		return unbound == 0 && bound == want, nil
	})
	return byNode
}

// createPod creates a pod and returns the node it was bound to.
func createPod(env *framework.Env, pod *v1.Pod) string {
	env.T.Helper()
	if _, err := env.Client.CoreV1().Pods(pod.Namespace).Create(env.Ctx, pod, metav1.CreateOptions{}); err != nil {
		env.T.Fatalf("creating pod %s: %v", pod.Name, err)
	}
	return env.WaitPodBound(pod.Namespace, pod.Name, 30*time.Second)
}

func deletePod(env *framework.Env, name string) {
	env.T.Helper()
	zero := int64(0)
	if err := env.Client.CoreV1().Pods(ns).Delete(env.Ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		env.T.Fatal(err)
	}
}
