package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/explain"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// The capacity policy on a real control plane: two spot pools (a, b) and on-demand.

// policyDeployment is a Deployment whose pod template carries the policy annotations.
func policyDeployment(name string, replicas int32, cpu string, annotations map[string]string) *appsv1.Deployment {
	d := framework.Deployment(ns, name, replicas, cpu)
	d.Spec.Template.Annotations = annotations
	return d
}

var policyBase2Share75Cap50 = map[string]string{
	policy.OnDemandBaseAnnotation: "2", policy.SpotShareAnnotation: "75", policy.MaxPerPoolAnnotation: "50%",
}

// tierSplit counts the Running (not terminating) pods of app per kind of node: "on-demand",
// "spot-a", "spot-b" (nodes named ondemand-*, a-*, b-*), and returns the total.
func tierSplit(env *framework.Env, app string) (map[string]int, int) {
	env.T.Helper()
	out := map[string]int{}
	total := 0
	for _, p := range podsOf(env, "app="+app) {
		if p.DeletionTimestamp != nil || p.Status.Phase != v1.PodRunning || p.Spec.NodeName == "" {
			continue
		}
		total++
		switch {
		case strings.HasPrefix(p.Spec.NodeName, "ondemand-"):
			out["on-demand"]++
		case strings.HasPrefix(p.Spec.NodeName, "a-"):
			out["spot-a"]++
		case strings.HasPrefix(p.Spec.NodeName, "b-"):
			out["spot-b"]++
		default:
			out[p.Spec.NodeName]++
		}
	}
	return out, total
}

// waitSplit waits until app has exactly want Running pods per kind of node (and no other pod).
func waitSplit(env *framework.Env, app string, want map[string]int, timeout time.Duration) {
	env.T.Helper()
	var got map[string]int
	wantTotal := 0
	for _, n := range want {
		wantTotal += n
	}
	env.WaitFor(fmt.Sprintf("%s split %v", app, want), timeout, func(context.Context) (bool, error) {
		var total int
		got, total = tierSplit(env, app)
		if total != wantTotal || len(podsOf(env, "app="+app)) != wantTotal {
			return false, nil
		}
		for k, n := range want {
			if got[k] != n {
				return false, nil
			}
		}
		return true, nil
	})
}

// TestPolicyPlacement: a Deployment of 10 with a base of 2, a spot share of 75 % and a pool
// cap of 50 % lands as the policy says: 4 on on-demand (2 + 2 of the 8 above the base, the
// rounding favouring on-demand), 6 on spot, 3 per pool; spot has room for all 10.
func TestPolicyPlacement(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(spotPoolNode("a-1", "a", "8"), spotPoolNode("b-1", "b", "8"), onDemandPoolNode("ondemand-1", "8"))
	createDeployment(env, policyDeployment("web", 10, "500m", policyBase2Share75Cap50))
	waitSplit(env, "web", map[string]int{"on-demand": 4, "spot-a": 3, "spot-b": 3}, 90*time.Second)
}

// waitOnDemandOf waits until app has exactly total Running pods (none terminating) with
// onDemand of them on on-demand nodes, and returns the split.
func waitOnDemandOf(env *framework.Env, app string, total, onDemand int, timeout time.Duration) map[string]int {
	env.T.Helper()
	var got map[string]int
	env.WaitFor(fmt.Sprintf("%d pods of %s Running, %d on on-demand", total, app, onDemand), timeout, func(context.Context) (bool, error) {
		var n int
		got, n = tierSplit(env, app)
		return n == total && len(podsOf(env, "app="+app)) == total && got["on-demand"] == onDemand, nil
	})
	return got
}

// TestPolicyScaleIn: scaling the policy's Deployment 10 -> 4 -> 2 keeps the policy at each
// step: the deletion costs make the ReplicaSet remove spot pods while the base and the share
// need on-demand ones (4 = 3 on-demand + 1 spot; 2 = 2 on-demand), though spot pods are the
// ones kept without a policy.
func TestPolicyScaleIn(t *testing.T) {
	env := startWithScheduler(t, true)
	ctrl := startDeletionCostController(env)
	env.CreateNodes(spotPoolNode("a-1", "a", "8"), spotPoolNode("b-1", "b", "8"), onDemandPoolNode("ondemand-1", "8"))
	createDeployment(env, policyDeployment("web", 10, "500m", policyBase2Share75Cap50))
	waitSplit(env, "web", map[string]int{"on-demand": 4, "spot-a": 3, "spot-b": 3}, 90*time.Second)
	pods := ctrl.waitSettled("web", 10)
	t.Logf("costs per node at 10: %v", costsByNode(pods))

	scaleTo(env, "web", 4)
	split := waitOnDemandOf(env, "web", 4, 3, 60*time.Second)
	t.Logf("at 4: %v", split)
	ctrl.waitSettled("web", 4)

	scaleTo(env, "web", 2)
	split = waitOnDemandOf(env, "web", 2, 2, 60*time.Second)
	t.Logf("at 2: %v", split)
}

// existingNodes is the set of the cluster's node names.
func existingNodes(env *framework.Env) map[string]bool {
	env.T.Helper()
	nodes, err := env.Client.CoreV1().Nodes().List(env.Ctx, metav1.ListOptions{})
	if err != nil {
		env.T.Fatal(err)
	}
	exists := map[string]bool{}
	for _, n := range nodes.Items {
		exists[n.Name] = true
	}
	return exists
}

// runningOnExistingNodes counts the pods of app that are Running on a node that still exists
// (a reclaimed node's pods keep their Running status until the pod garbage collector removes
// them, but they run nowhere).
func runningOnExistingNodes(env *framework.Env, app string) int {
	env.T.Helper()
	exists := existingNodes(env)
	running := 0
	for _, p := range podsOf(env, "app="+app) {
		if p.DeletionTimestamp == nil && p.Status.Phase == v1.PodRunning && exists[p.Spec.NodeName] {
			running++
		}
	}
	return running
}

// rebalancedPods returns the pods of app with a Rebalanced event, and their messages.
func rebalancedPods(env *framework.Env, app string) map[string]string {
	env.T.Helper()
	out := map[string]string{}
	for pod, msg := range rebalancedEvents(env) {
		if strings.HasPrefix(pod, app+"-") {
			out[pod] = msg
		}
	}
	return out
}

// TestPolicyReclaimAndFailback: a Deployment of 10 with the policy (base 2, 75 %, 50 % per
// pool) next to a plain one of 10. Every spot node is reclaimed at once: the policy's 4
// on-demand replicas stay Running throughout (at least the base), the plain one has none
// left until its pods are replaced. When spot returns, failback moves exactly the 6 pods the
// policy allows to spot (3 per pool) and every plain pod.
func TestPolicyReclaimAndFailback(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(spotPoolNode("a-1", "a", "8"), spotPoolNode("b-1", "b", "8"), onDemandPoolNode("ondemand-1", "16"))
	rb := startRebalancer(env, "--rebalance-interval=1h")
	createDeployment(env, policyDeployment("safe", 10, "500m", policyBase2Share75Cap50))
	createDeployment(env, framework.Deployment(ns, "plain", 10, "500m"))
	waitSplit(env, "safe", map[string]int{"on-demand": 4, "spot-a": 3, "spot-b": 3}, 90*time.Second)
	waitOnDemandOf(env, "plain", 10, 0, 60*time.Second)

	// Reclaimed as a cloud does: the Nodes go at once, their pods stay (running nowhere) until
	// the pod garbage collector removes them and the ReplicaSets replace them.
	for _, n := range []string{"a-1", "b-1"} {
		if err := localcluster.Reclaim(env.Ctx, env.Client, n); err != nil {
			t.Fatal(err)
		}
	}
	reclaimed := time.Now()
	minSafe, minPlain := 10, 10
	env.WaitFor("both Deployments Running again on on-demand", localcluster.OrphanLifetime+time.Minute, func(context.Context) (bool, error) {
		safe, plain := runningOnExistingNodes(env, "safe"), runningOnExistingNodes(env, "plain")
		minSafe, minPlain = min(minSafe, safe), min(minPlain, plain)
		if minSafe < 2 {
			return false, fmt.Errorf("only %d replicas of the policy's Deployment Running during the reclaim, want at least the base of 2", minSafe)
		}
		return safe == 10 && plain == 10, nil
	})
	t.Logf("all-spot reclaim: fewest replicas Running: with policy %d of 10, without %d of 10; both back to 10 after %s",
		minSafe, minPlain, time.Since(reclaimed).Round(time.Second))
	if minSafe < 4 {
		t.Errorf("fewest Running with the policy = %d, want the 4 on-demand replicas throughout", minSafe)
	}
	if len(rebalancedEvents(env)) != 0 {
		t.Fatalf("evictions while spot was gone: %v", rebalancedEvents(env))
	}

	env.CreateNodes(spotPoolNode("a-2", "a", "8"), spotPoolNode("b-2", "b", "8"))
	waitSplit(env, "safe", map[string]int{"on-demand": 4, "spot-a": 3, "spot-b": 3}, 2*time.Minute)
	waitOnDemandOf(env, "plain", 10, 0, 2*time.Minute)
	safeMoves := rebalancedPods(env, "safe")
	if len(safeMoves) != 6 {
		t.Errorf("%d pods of the policy's Deployment moved, want exactly the 6 the policy allows to spot: %v", len(safeMoves), safeMoves)
	}
	for pod, msg := range safeMoves {
		if !strings.Contains(msg, "from on-demand") || !strings.Contains(msg, "to spot") || !strings.Contains(msg, "capacity policy") {
			t.Errorf("event on %s: %q", pod, msg)
		}
	}
	t.Logf("failback: %d policy moves, %d plain moves, %v evictions", len(safeMoves), len(rebalancedPods(env, "plain")), rb.evictions())
}

// TestPolicyBaseBackToOnDemand: on-demand has room for 2 replicas, so the third of a base-2,
// 75 % Deployment of 4 (which the policy wants on on-demand) lands on spot rather than
// staying Pending; when an on-demand node joins, the rebalancer moves one spot pod there:
// 3 on-demand, 1 spot.
func TestPolicyBaseBackToOnDemand(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(spotPoolNode("a-1", "a", "8"), onDemandPoolNode("ondemand-1", "1"))
	startRebalancer(env, "--rebalance-interval=1h")
	createDeployment(env, policyDeployment("web", 4, "500m", map[string]string{policy.OnDemandBaseAnnotation: "2", policy.SpotShareAnnotation: "75"}))
	waitSplit(env, "web", map[string]int{"on-demand": 2, "spot-a": 2}, 60*time.Second)
	env.CreateNodes(onDemandPoolNode("ondemand-2", "4"))
	waitSplit(env, "web", map[string]int{"on-demand": 3, "spot-a": 1}, 90*time.Second)
	if moves := rebalancedPods(env, "web"); len(moves) != 1 {
		t.Fatalf("moves %v, want exactly one spot pod back to on-demand", moves)
	} else {
		for pod, msg := range moves {
			if !strings.Contains(msg, "from spot node a-1 to on-demand") {
				t.Errorf("event on %s: %q", pod, msg)
			}
		}
	}
}

// TestPolicyRespread: a pool cap of 2 replicas per pool and no on-demand capacity. Pool b is
// reclaimed: its replicas are replaced in pool a (over the cap: nothing else fits, and a pod
// never stays Pending); when pool b returns, the rebalancer re-spreads 2 replicas to it.
func TestPolicyRespread(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(spotPoolNode("a-1", "a", "8"), spotPoolNode("b-1", "b", "8"))
	startRebalancer(env, "--rebalance-interval=1h")
	createDeployment(env, policyDeployment("web", 4, "500m", map[string]string{policy.MaxPerPoolAnnotation: "2"}))
	waitSplit(env, "web", map[string]int{"spot-a": 2, "spot-b": 2}, 60*time.Second)
	env.DeleteNodes("b-1")
	waitSplit(env, "web", map[string]int{"spot-a": 4}, 3*time.Minute)
	if len(rebalancedEvents(env)) != 0 {
		t.Fatalf("evictions before pool b returned: %v", rebalancedEvents(env))
	}
	env.CreateNodes(spotPoolNode("b-2", "b", "8"))
	waitSplit(env, "web", map[string]int{"spot-a": 2, "spot-b": 2}, 90*time.Second)
	if moves := rebalancedPods(env, "web"); len(moves) != 2 {
		t.Fatalf("moves %v, want exactly 2 (a re-spread within the tier)", moves)
	}
}

// TestPolicyNoLoop: the policy is violated (on-demand full: a base pod on spot; one pool over
// the cap) and there is no room anywhere that would help: 20 passes evict nothing.
func TestPolicyNoLoop(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(spotPoolNode("a-1", "a", "8"), onDemandPoolNode("ondemand-1", "1"))
	createDeployment(env, policyDeployment("web", 4, "500m", map[string]string{
		policy.OnDemandBaseAnnotation: "2", policy.SpotShareAnnotation: "75", policy.MaxPerPoolAnnotation: "1",
	}))
	waitSplit(env, "web", map[string]int{"on-demand": 2, "spot-a": 2}, 60*time.Second)
	before := podUIDs(env, "app=web")
	rb := startRebalancer(env, "--rebalance-interval=200ms")
	rb.waitPasses(20)
	if e := rebalancedEvents(env); len(e) != 0 || rb.evictions() != 0 {
		t.Fatalf("evictions with no room that helps the policy: %v", e)
	}
	if after := podUIDs(env, "app=web"); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("pods changed: %v -> %v", before, after)
	}
	if v := rb.metric(`spot_scheduler_capacity_policy_replicas_out_of_policy{reason="below_on_demand_base"}`); v != 1 {
		t.Errorf("replicas below the on-demand floor reported %v, want 1", v)
	}
	if v := rb.metric(`spot_scheduler_capacity_policy_replicas_out_of_policy{reason="over_pool_cap"}`); v != 1 {
		t.Errorf("replicas over the pool cap reported %v, want 1", v)
	}
	// explain shows the policy, the replicas per tier and pool, and that it does not hold.
	var scope explain.ScopeReport
	if err := json.Unmarshal([]byte(runExplain(env, "namespace", ns, "-o", "json")), &scope); err != nil {
		t.Fatal(err)
	}
	if len(scope.Policies) != 1 {
		t.Fatalf("explain policies %+v, want the one workload", scope.Policies)
	}
	got := scope.Policies[0]
	if got.Holds || got.NonReclaimable != 2 || got.ReclaimablePerPool["karpenter.sh/nodepool=spot-a"] != 2 || got.WantNonReclaimable != 3 ||
		got.MaxPerPool != 1 || got.BelowOnDemandBase != 1 || got.OverPoolCap != 1 || !strings.Contains(got.Policy, "on-demand-base=2") {
		t.Errorf("explain policy report %+v", got)
	}
	table := runExplain(env, "namespace", ns)
	if !strings.Contains(table, "Capacity policies:") || !strings.Contains(table, "no: 1 below the on-demand floor of 3, 1 over the pool cap") {
		t.Errorf("explain table does not show the policy:\n%s", table)
	}
	t.Logf("explain:\n%s", table)
}

// TestPolicyMalformedAnnotation: a malformed annotation gives the pod a Warning event naming
// the annotation and the allowed values, and the pod is scheduled as without policy (spot).
func TestPolicyMalformedAnnotation(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(spotPoolNode("a-1", "a", "8"), onDemandPoolNode("ondemand-1", "8"))
	createDeployment(env, policyDeployment("web", 2, "500m", map[string]string{policy.OnDemandBaseAnnotation: "two"}))
	waitSplit(env, "web", map[string]int{"spot-a": 2}, 60*time.Second)
	env.WaitFor("InvalidCapacityPolicy events", 30*time.Second, func(ctx context.Context) (bool, error) {
		list, err := env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=InvalidCapacityPolicy"})
		if err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.Type != v1.EventTypeWarning || !strings.Contains(e.Message, policy.OnDemandBaseAnnotation) ||
				!strings.Contains(e.Message, `"two"`) || !strings.Contains(e.Message, "an integer from 0 to 100000") {
				return false, fmt.Errorf("event %s %q does not name the annotation and the allowed values", e.Type, e.Message)
			}
		}
		return len(list.Items) >= 2, nil
	})
}

// poolCounts counts app's pods bound to each spot pool's nodes (a-*, b-*) that are not
// terminating and whose node still exists, whatever their phase: what a reclaim of that pool
// would take next.
func poolCounts(env *framework.Env, app string) map[string]int {
	env.T.Helper()
	exists := existingNodes(env)
	out := map[string]int{}
	for _, p := range podsOf(env, "app="+app) {
		if p.DeletionTimestamp != nil || !exists[p.Spec.NodeName] {
			continue
		}
		switch {
		case strings.HasPrefix(p.Spec.NodeName, "a-"):
			out["spot-a"]++
		case strings.HasPrefix(p.Spec.NodeName, "b-"):
			out["spot-b"]++
		}
	}
	return out
}

// TestPolicyPoolCapAfterReclaim: a Deployment of 8 with a base of 2, a spot share of 50 % and
// a pool cap of 50 % (at most 3 on spot, at most 2 per pool) runs 5 on on-demand and 2 + 1 in
// the spot pools. The pool holding 2 is reclaimed as a cloud does it; when the pod garbage
// collector removes both orphans, the ReplicaSet creates both replacements at once and the
// scheduler places them back to back. The other pool never holds more than its cap of 2 (the
// first replacement, placed while the workload counts 7, goes to on-demand), and no eviction
// is needed for it. When the pool returns, failback restores the cheaper split (5 on-demand).
func TestPolicyPoolCapAfterReclaim(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(spotPoolNode("a-1", "a", "8"), spotPoolNode("b-1", "b", "8"), onDemandPoolNode("ondemand-1", "16"))
	rb := startRebalancer(env, "--rebalance-interval=5s")
	annotations := map[string]string{policy.OnDemandBaseAnnotation: "2", policy.SpotShareAnnotation: "50", policy.MaxPerPoolAnnotation: "50%"}
	createDeployment(env, policyDeployment("web", 8, "500m", annotations))
	var split map[string]int
	env.WaitFor("web at 5 on-demand and 2 + 1 on spot", 90*time.Second, func(context.Context) (bool, error) {
		var total int
		split, total = tierSplit(env, "web")
		return total == 8 && split["on-demand"] == 5 && split["spot-a"]+split["spot-b"] == 3 && max(split["spot-a"], split["spot-b"]) == 2, nil
	})
	lost, kept, lostNode := "spot-a", "spot-b", "a-1"
	if split["spot-b"] == 2 {
		lost, kept, lostNode = "spot-b", "spot-a", "b-1"
	}
	if err := localcluster.Reclaim(env.Ctx, env.Client, lostNode); err != nil {
		t.Fatal(err)
	}
	reclaimed := time.Now()
	most := 0
	env.WaitFor("both replacements Running, the kept pool never over its cap", localcluster.OrphanLifetime+time.Minute, func(context.Context) (bool, error) {
		n := poolCounts(env, "web")[kept]
		most = max(most, n)
		if n > 2 {
			return false, fmt.Errorf("%d replicas in pool %s, over its cap of 2 (split %v)", n, kept, poolCounts(env, "web"))
		}
		return runningOnExistingNodes(env, "web") == 8, nil
	})
	split, _ = tierSplit(env, "web")
	t.Logf("after the reclaim of %s (%s): split %v, at most %d in %s", lost, time.Since(reclaimed).Round(time.Second), split, most, kept)
	if split["on-demand"] != 6 || split[kept] != 2 {
		t.Errorf("split after the reclaim %v, want 6 on on-demand and 2 in %s", split, kept)
	}
	if e := rebalancedEvents(env); len(e) != 0 {
		t.Errorf("evictions while %s was gone: %v", lost, e)
	}

	returned := "a-2"
	if lost == "spot-b" {
		returned = "b-2"
	}
	env.CreateNodes(spotPoolNode(returned, strings.TrimPrefix(lost, "spot-"), "8"))
	waitSplit(env, "web", map[string]int{"on-demand": 5, kept: 2, lost: 1}, 2*time.Minute)
	t.Logf("failback: %v evictions", rb.evictions())
}
