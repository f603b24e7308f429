package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// The capacity policy on a real control plane: two spot pools (a, b) and on-demand.

func spotPoolNode(name, pool, cpu string) *v1.Node {
	return framework.Node(name, cpu, framework.Labels(framework.SpotLabels, map[string]string{"karpenter.sh/nodepool": "spot-" + pool}))
}

func onDemandPoolNode(name, cpu string) *v1.Node {
	return framework.Node(name, cpu, framework.Labels(framework.OnDemandLabels, map[string]string{"karpenter.sh/nodepool": "on-demand"}))
}

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
