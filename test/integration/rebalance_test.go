package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// passesThatEvicted reads the rebalancer's log: the evicted count of each pass that evicted.
func passesThatEvicted(t testing.TB, log string) []int {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `"Rebalance pass"`) {
			continue
		}
		_, after, ok := strings.Cut(line, " evicted=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.Fields(after)[0])
		if err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if n > 0 {
			counts = append(counts, n)
		}
	}
	return counts
}

// TestRebalanceFailback: spot nodes are reclaimed and pods fail over to on-demand; new spot
// nodes join; early passes bring every pod back to spot and empty on-demand, with one eviction
// per needed move, in waves of the workload's disruption budget (25% of 6: one pod at a time),
// each started by the previous wave's replacement turning Ready.
func TestRebalanceFailback(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(
		framework.Node("spot-1", "2", framework.SpotLabels), framework.Node("spot-2", "2", framework.SpotLabels), framework.Node("spot-3", "2", framework.SpotLabels),
		framework.Node("ondemand-1", "4", framework.OnDemandLabels), framework.Node("ondemand-2", "4", framework.OnDemandLabels),
	)
	// Only the pass at start and early passes: the periodic one would come after the test.
	rb := startRebalancer(env, "--rebalance-interval=1h")
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, "web", 6, "1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunningOn(env, "web", 6, "spot-1", "spot-2", "spot-3")

	// Reclaim: two spot nodes vanish with their pods; the Deployment fails over to on-demand.
	env.DeleteNodes("spot-1", "spot-2")
	failoverStart := time.Now()
	waitRunningOn(env, "web", 6, "spot-3", "ondemand-1", "ondemand-2")
	t.Logf("failover: all 6 pods Running again %s after the reclaim", time.Since(failoverStart).Round(time.Millisecond))
	byNode, _ := env.ScheduledPods(ns, "app=web")
	needed := byNode["ondemand-1"] + byNode["ondemand-2"]
	if needed != 4 {
		t.Fatalf("after failover: %v, want 4 pods on on-demand", byNode)
	}
	if len(rebalancedEvents(env)) != 0 {
		t.Fatalf("evictions while spot was short: %v", rebalancedEvents(env))
	}

	// Capacity returns.
	passesBefore := rb.passes()
	env.CreateNodes(framework.Node("spot-4", "2", framework.SpotLabels), framework.Node("spot-5", "2", framework.SpotLabels))
	roomAppeared := time.Now()
	waitRunningOn(env, "web", 6, "spot-3", "spot-4", "spot-5")
	failback := time.Since(roomAppeared)
	passes := rb.passes() - passesBefore
	events := rebalancedEvents(env)
	t.Logf("failback: %d moves needed, %d evictions (%v), %.0f pass(es); last pod Running on spot %s after spot room appeared",
		needed, len(events), rb.evictions(), passes, failback.Round(time.Millisecond))
	if len(events) != needed || int(rb.evictions()) != needed {
		t.Fatalf("%d Rebalanced events and %v evictions, want exactly %d (one per needed move): %v", len(events), rb.evictions(), needed, events)
	}
	// Waves within the budget: no pass evicted more than one pod.
	acting := passesThatEvicted(t, rb.log)
	for _, n := range acting {
		if n > 1 {
			t.Fatalf("evictions per acting pass %v, want at most the budget (1) each", acting)
		}
	}
	for pod, msg := range events {
		if !strings.Contains(msg, "from on-demand node ondemand-") || !strings.Contains(msg, "to spot") || !strings.Contains(msg, "node spot-") {
			t.Errorf("event on %s does not name source and target tier and node: %q", pod, msg)
		}
	}
	byNode, _ = env.ScheduledPods(ns, "app=web")
	if byNode["ondemand-1"]+byNode["ondemand-2"] != 0 {
		t.Fatalf("on-demand nodes still hold pods: %v", byNode)
	}
}

// TestRebalanceNoLoop: with spot full and no placeholders, 20 passes evict nothing.
func TestRebalanceNoLoop(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(framework.Node("spot-1", "2", framework.SpotLabels), framework.Node("ondemand-1", "8", framework.OnDemandLabels), framework.Node("ondemand-2", "8", framework.OnDemandLabels))
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, "web", 6, "1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunningOn(env, "web", 6, "spot-1", "ondemand-1", "ondemand-2")
	before := podUIDs(env, "app=web")
	rb := startRebalancer(env, "--rebalance-interval=200ms")
	rb.waitPasses(20)
	if e := rebalancedEvents(env); len(e) != 0 || rb.evictions() != 0 {
		t.Fatalf("evictions with no better-tier room: %v", e)
	}
	after := podUIDs(env, "app=web")
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("pods changed: %v -> %v", before, after)
	}
	if skips := rb.metric(`spot_scheduler_rebalance_skips_total{reason="no_better_room"}`); skips < 20*4 {
		t.Fatalf("no_better_room skips = %v, want the 4 on-demand pods counted on each of 20 passes", skips)
	}
}

// TestRebalancePlaceholderRoom: spot full of placeholders only: pods move to spot and the
// displaced placeholders go Pending.
func TestRebalancePlaceholderRoom(t *testing.T) {
	env := startWithScheduler(t, true)
	createPriorityClasses(env)
	env.CreateNodes(framework.Node("ondemand-1", "4", framework.OnDemandLabels))
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, "web", 2, "1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunningOn(env, "web", 2, "ondemand-1")
	env.CreateNodes(framework.Node("spot-1", "2", framework.SpotLabels))
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, placeholderDeployment("headroom", 2, framework.SpotLabels), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunningOn(env, "headroom", 2, "spot-1")
	startRebalancer(env, "--rebalance-interval=2s")
	waitRunningOn(env, "web", 2, "spot-1")
	env.WaitFor("both placeholders Pending", 60*time.Second, func(context.Context) (bool, error) {
		pending := 0
		for _, p := range podsOf(env, "app=headroom") {
			if p.Spec.NodeName == "" && isUnschedulable(&p) {
				pending++
			}
		}
		return pending == 2, nil
	})
	if e := rebalancedEvents(env); len(e) != 2 {
		t.Fatalf("Rebalanced events %v, want 2", e)
	}
}

// TestRebalancePDB: a PDB allowing no disruption blocks the move; once it allows one, the
// move happens.
func TestRebalancePDB(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(framework.Node("ondemand-1", "4", framework.OnDemandLabels))
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, "web", 2, "1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunningOn(env, "web", 2, "ondemand-1")
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
	}
	if _, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).Create(env.Ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.WaitFor("PDB observed", 30*time.Second, func(ctx context.Context) (bool, error) {
		p, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && p.Status.ObservedGeneration == p.Generation && p.Status.ExpectedPods == 2, err
	})
	env.CreateNodes(framework.Node("spot-1", "4", framework.SpotLabels))
	rb := startRebalancer(env, "--rebalance-interval=500ms")
	env.WaitFor("evictions refused by the PDB", 60*time.Second, func(context.Context) (bool, error) {
		return rb.metric(`spot_scheduler_rebalance_skips_total{reason="pdb"}`) >= 2, nil
	})
	if e := rebalancedEvents(env); len(e) != 0 {
		t.Fatalf("moves despite the PDB: %v", e)
	}
	byNode, _ := env.ScheduledPods(ns, "app=web")
	if byNode["ondemand-1"] != 2 {
		t.Fatalf("pods moved despite the PDB: %v", byNode)
	}
	// Allow one disruption at a time: the pods move one by one.
	pdb, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).Get(env.Ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	if _, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).Update(env.Ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunningOn(env, "web", 2, "spot-1")
}

// TestRebalanceProtectedPods: a bare pod, a DaemonSet pod and a do-not-disrupt pod on
// on-demand stay put with spot room free.
func TestRebalanceProtectedPods(t *testing.T) {
	env := framework.Start(t, localcluster.Options{ControllerManager: true, Controllers: append(localcluster.DefaultControllers, "daemonset")})
	env.CreateNamespace(ns)
	env.StartScheduler("spot-scheduler", "")
	env.CreateNodes(framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	bare := framework.Pod(ns, "bare", "1", map[string]string{"app": "bare"})
	createPod(env, bare)
	ds := framework.DaemonSet(ns, "agent", "100m")
	ds.Spec.Template.Spec.NodeSelector = framework.OnDemandLabels
	if _, err := env.Client.AppsV1().DaemonSets(ns).Create(env.Ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	keep := framework.Deployment(ns, "keep", 1, "1")
	keep.Spec.Template.Annotations = map[string]string{"karpenter.sh/do-not-disrupt": "true"}
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, keep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunningOn(env, "bare", 1, "ondemand-1")
	waitRunningOn(env, "agent", 1, "ondemand-1")
	waitRunningOn(env, "keep", 1, "ondemand-1")
	env.CreateNodes(framework.Node("spot-1", "8", framework.SpotLabels))
	before := podUIDs(env, "app in (bare,agent,keep)")
	rb := startRebalancer(env, "--rebalance-interval=300ms")
	rb.waitPasses(5)
	if e := rebalancedEvents(env); len(e) != 0 {
		t.Fatalf("protected pods evicted: %v", e)
	}
	if after := podUIDs(env, "app in (bare,agent,keep)"); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("protected pods changed: %v -> %v", before, after)
	}
	for reason, want := range map[string]float64{"bare_pod": 5, "daemonset": 5, "do_not_disrupt": 5} {
		if got := rb.metric(`spot_scheduler_rebalance_skips_total{reason="` + reason + `"}`); got < want {
			t.Errorf("skips %s = %v, want >= %v", reason, got, want)
		}
	}
}

// TestRebalanceTwoWorkloadsOneSlot: two workloads on on-demand, one free spot slot: exactly
// one pod moves.
func TestRebalanceTwoWorkloadsOneSlot(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(framework.Node("ondemand-1", "4", framework.OnDemandLabels))
	for _, name := range []string{"web", "api"} {
		if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, name, 1, "1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRunningOn(env, name, 1, "ondemand-1")
	}
	env.CreateNodes(framework.Node("spot-1", "1", framework.SpotLabels))
	rb := startRebalancer(env, "--rebalance-interval=300ms")
	env.WaitFor("one pod Running on spot", 60*time.Second, func(context.Context) (bool, error) {
		onSpot, _ := env.ScheduledPods(ns, "app in (web,api)")
		return onSpot["spot-1"] == 1, nil
	})
	rb.waitPasses(5)
	if e := rebalancedEvents(env); len(e) != 1 {
		t.Fatalf("Rebalanced events %v, want exactly 1", e)
	}
	byNode, _ := env.ScheduledPods(ns, "app in (web,api)")
	if byNode["spot-1"] != 1 || byNode["ondemand-1"] != 1 {
		t.Fatalf("placement %v, want one pod on spot-1 and one on ondemand-1", byNode)
	}
}

// TestEarlyPassOnStartupTaintRemoved: a new spot node turns Ready before its start-up taint
// (here Karpenter's karpenter.sh/unregistered) is gone, so the early pass its arrival triggers
// finds no room. Removing the taint triggers the next early pass: failback starts within the
// debounce, not at the next periodic pass (an hour away here).
func TestEarlyPassOnStartupTaintRemoved(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	rb := startRebalancer(env, "--rebalance-interval=1h")
	createDeployment(env, framework.Deployment(ns, "web", 3, "1"))
	waitRunningOn(env, "web", 3, "ondemand-1")

	startup := v1.Taint{Key: "karpenter.sh/unregistered", Effect: v1.TaintEffectNoExecute}
	passes := rb.passes()
	env.CreateNodes(framework.Node("spot-1", "8", framework.SpotLabels, startup))
	env.WaitFor("spot-1 Ready with its start-up taint", 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := env.Client.CoreV1().Nodes().Get(ctx, "spot-1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == v1.NodeReady && c.Status == v1.ConditionTrue {
				return len(n.Spec.Taints) > 0, nil
			}
		}
		return false, nil
	})
	// The passes the node's arrival and readiness trigger find no room (the taint).
	env.WaitFor("the early passes after spot-1 joined", 30*time.Second, func(context.Context) (bool, error) {
		return rb.passes() >= passes+1, nil
	})
	if e := rebalancedEvents(env); len(e) != 0 {
		t.Fatalf("evictions towards a node that still carries its start-up taint: %v", e)
	}

	env.WaitFor("the start-up taint removed", 30*time.Second, func(ctx context.Context) (bool, error) {
		n, err := env.Client.CoreV1().Nodes().Get(ctx, "spot-1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		n.Spec.Taints = nil
		_, err = env.Client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err == nil, nil
	})
	usable := time.Now()
	waitRunningOn(env, "web", 3, "spot-1")
	took := time.Since(usable)
	t.Logf("failback after the start-up taint went: %s (debounce 1s, validation 500ms), %v evictions", took.Round(time.Millisecond), rb.evictions())
	if took > 45*time.Second {
		t.Errorf("failback took %s after the node became usable; an early pass should start within the debounce", took)
	}
}
