package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// waitReadyOn waits until exactly want pods of app exist, every one Ready on one of nodes.
func waitReadyOn(env *framework.Env, app string, want int, timeout time.Duration, nodes ...string) {
	env.T.Helper()
	allowed := map[string]bool{}
	for _, n := range nodes {
		allowed[n] = true
	}
	env.WaitFor(fmt.Sprintf("%d pods of %s Ready on %v", want, app, nodes), timeout, func(context.Context) (bool, error) {
		got := 0
		for _, p := range podsOf(env, "app="+app) {
			if p.DeletionTimestamp != nil || !allowed[p.Spec.NodeName] || !framework.PodReady(&p) {
				return false, nil
			}
			got++
		}
		return got == want, nil
	})
}

// TestFailbackBudget: pods take 5 s to turn Ready after they start; after a reclaim, failback
// moves each workload in waves of its disruption budget (web: the default 25% of 12 = 3; api:
// its annotation's 50% of 4 = 2, under a PDB of maxUnavailable 1 that applies on top), each wave
// started by the previous one's replacements turning Ready (the periodic pass is an hour
// away). Sampled four times a second: web never has fewer than 12 - 3 Ready replicas, api
// never fewer than 4 - 1 (its PDB), no PDB is ever breached, and every pod moves once.
func TestFailbackBudget(t *testing.T) {
	env := framework.Start(t, localcluster.Options{ControllerManager: true, PodReadyDelay: 5 * time.Second})
	env.CreateNamespace(ns)
	env.StartScheduler("spot-scheduler", "")
	spot := []string{"spot-1", "spot-2", "spot-3", "spot-4"}
	for _, n := range spot {
		env.CreateNodes(framework.Node(n, "4", framework.SpotLabels))
	}
	env.CreateNodes(framework.Node("ondemand-1", "8", framework.OnDemandLabels), framework.Node("ondemand-2", "8", framework.OnDemandLabels))
	createDeployment(env, framework.Deployment(ns, "web", 12, "1"))
	api := framework.Deployment(ns, "api", 4, "1")
	api.Spec.Template.Annotations = map[string]string{wellknown.DisruptionBudgetAnnotation: "50%"}
	createDeployment(env, api)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}},
	}
	if _, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).Create(env.Ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReadyOn(env, "web", 12, time.Minute, spot...)
	waitReadyOn(env, "api", 4, time.Minute, spot...)
	rb := startRebalancer(env, "--rebalance-interval=1h")

	env.DeleteNodes("spot-3", "spot-4")
	waitReadyOn(env, "web", 12, 2*time.Minute, "spot-1", "spot-2", "ondemand-1", "ondemand-2")
	waitReadyOn(env, "api", 4, 2*time.Minute, "spot-1", "spot-2", "ondemand-1", "ondemand-2")
	byNode, _ := env.ScheduledPods(ns, "")
	needed := byNode["ondemand-1"] + byNode["ondemand-2"]
	t.Logf("after the reclaim: %v; %d pods to move back", byNode, needed)
	if needed != 8 || rb.evictions() != 0 {
		t.Fatalf("%d pods on on-demand and %v evictions after the failover, want 8 and none", needed, rb.evictions())
	}

	sampler := framework.StartReadySampler(env.Client, ns, []string{"web", "api"}, 250*time.Millisecond)
	returned := time.Now()
	env.CreateNodes(framework.Node("spot-5", "4", framework.SpotLabels), framework.Node("spot-6", "4", framework.SpotLabels))
	back := []string{"spot-1", "spot-2", "spot-5", "spot-6"}
	waitReadyOn(env, "web", 12, 3*time.Minute, back...)
	waitReadyOn(env, "api", 4, 3*time.Minute, back...)
	took := time.Since(returned)
	fewest, breaches, samples := sampler.Stop()
	acting := passesThatEvicted(t, rb.log)
	t.Logf("failback of %d pods in %s, %d evicting passes %v, %v evictions; fewest Ready web %d/12, api %d/4 (%d samples)",
		needed, took.Round(time.Millisecond), len(acting), acting, rb.evictions(), fewest["web"], fewest["api"], samples)

	if fewest["web"] < 12-3 {
		t.Errorf("web fell to %d Ready replicas, below 12 - its budget of 3", fewest["web"])
	}
	if fewest["api"] < 4-1 {
		t.Errorf("api fell to %d Ready replicas, below 4 - its PDB's maxUnavailable of 1", fewest["api"])
	}
	if len(breaches) > 0 {
		t.Errorf("PDB breached: %v", breaches)
	}
	if got := len(rebalancedEvents(env)); got != needed || int(rb.evictions()) != needed {
		t.Errorf("%d Rebalanced events, %v evictions; want exactly %d (one per needed move)", got, rb.evictions(), needed)
	}
	// Waves, each within the budgets: web's 6 or so moves cannot go at once.
	if len(acting) < 2 {
		t.Errorf("evicting passes %v, want the moves spread over waves", acting)
	}
	for _, n := range acting {
		if n > 3+1 {
			t.Errorf("a pass evicted %d pods, more than web's budget (3) and api's PDB (1) allow at once", n)
		}
	}
	if skips := rb.metric(`spot_scheduler_rebalance_skips_total{reason="disruption_budget"}`); skips == 0 {
		t.Errorf("no pod counted as held back by its disruption budget")
	}
}

// TestFailbackBudgetAnnotation: a workload annotated with a budget of 0 is never moved; one
// with a value the rebalancer cannot read is not moved either (the cautious reading), and
// gets a Warning naming the annotation and the allowed values; a workload beside them with
// the default budget moves back.
func TestFailbackBudgetAnnotation(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	for name, budget := range map[string]string{"frozen": "0", "garbled": "a quarter", "web": ""} {
		d := framework.Deployment(ns, name, 2, "1")
		if budget != "" {
			d.Spec.Template.Annotations = map[string]string{wellknown.DisruptionBudgetAnnotation: budget}
		}
		createDeployment(env, d)
	}
	for _, app := range []string{"frozen", "garbled", "web"} {
		waitRunningOn(env, app, 2, "ondemand-1")
	}
	env.CreateNodes(framework.Node("spot-1", "8", framework.SpotLabels))
	rb := startRebalancer(env, "--rebalance-interval=500ms")
	waitRunningOn(env, "web", 2, "spot-1")
	env.WaitFor("a Warning on a garbled pod", 30*time.Second, func(context.Context) (bool, error) {
		for _, e := range env.Events(ns, "reason="+wellknown.InvalidValueReason) {
			if strings.HasPrefix(e.InvolvedObject.Name, "garbled-") && e.Type == v1.EventTypeWarning &&
				strings.Contains(e.Message, wellknown.DisruptionBudgetAnnotation) && strings.Contains(e.Message, `"25%"`) {
				return true, nil
			}
		}
		return false, nil
	})
	rb.waitPasses(5)
	byNode, _ := env.ScheduledPods(ns, "app in (frozen,garbled)")
	if byNode["ondemand-1"] != 4 {
		t.Errorf("frozen and garbled pods per node %v, want all 4 still on ondemand-1", byNode)
	}
	for pod := range rebalancedEvents(env) {
		if !strings.HasPrefix(pod, "web-") {
			t.Errorf("pod %s moved", pod)
		}
	}
}
