package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/spot-scheduler/spot-scheduler/pkg/rebalance"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// setUnschedulable cordons (true) or uncordons a node.
func setUnschedulable(env *framework.Env, name string, unschedulable bool) {
	env.T.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := env.Client.CoreV1().Nodes().Get(env.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.Unschedulable = unschedulable
		_, err = env.Client.CoreV1().Nodes().Update(env.Ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		env.T.Fatal(err)
	}
}

func hasPackingTaint(env *framework.Env, name string) bool {
	env.T.Helper()
	n, err := env.Client.CoreV1().Nodes().Get(env.Ctx, name, metav1.GetOptions{})
	if err != nil {
		env.T.Fatal(err)
	}
	return rebalance.HasPackingTaint(n)
}

// TestPackWithinTierEmptiesNode: with --pack-within-tier, the rebalancer empties the spot node
// whose pods fit on the other spot node: it taints it (no replacement lands there again),
// evicts its pod, and leaves the other workload alone; when a pod then cannot be scheduled,
// the taint goes and the pod gets the room. Nothing moves after that (no loop).
func TestPackWithinTierEmptiesNode(t *testing.T) {
	env := startWithScheduler(t, true)
	// Fragment the spot tier as a day leaves it: web on spot-1, api alone on spot-2.
	spot2 := framework.Node("spot-2", "4", framework.SpotLabels)
	spot2.Spec.Unschedulable = true
	env.CreateNodes(framework.Node("spot-1", "4", framework.SpotLabels), spot2)
	createDeployment(env, framework.Deployment(ns, "web", 2, "1"))
	waitRunningOn(env, "web", 2, "spot-1")
	setUnschedulable(env, "spot-2", false)
	setUnschedulable(env, "spot-1", true)
	createDeployment(env, framework.Deployment(ns, "api", 1, "1"))
	waitRunningOn(env, "api", 1, "spot-2")
	setUnschedulable(env, "spot-1", false)
	web := podUIDs(env, "app=web")

	rb := startRebalancer(env, "--pack-within-tier", "--rebalance-interval=2s")
	waitRunningOn(env, "api", 1, "spot-1")
	if !hasPackingTaint(env, "spot-2") {
		t.Fatalf("spot-2 emptied without the %s taint", wellknown.PackingTaintKey)
	}
	if got := podUIDs(env, "app=web"); fmt.Sprint(got) != fmt.Sprint(web) {
		t.Fatalf("web moved while spot-2 was packed: %v -> %v", web, got)
	}
	if n := rb.metric("spot_scheduler_rebalance_packed_nodes_total"); n != 1 {
		t.Fatalf("packed_nodes_total = %v, want 1", n)
	}
	if e := env.Events("default", "reason=Packing,involvedObject.name=spot-2"); len(e) != 1 {
		t.Fatalf("Packing events on spot-2: %d, want 1", len(e))
	}
	if e := rebalancedEvents(env); len(e) != 1 {
		t.Fatalf("Rebalanced events %v, want api's only", e)
	}

	// Two more web pods need 2 CPU; spot-1 has 1: one cannot be scheduled, and takes spot-2.
	scaleTo(env, "web", 4)
	env.WaitFor("the packing taint removed from spot-2", 60*time.Second, func(context.Context) (bool, error) {
		return !hasPackingTaint(env, "spot-2"), nil
	})
	waitRunningOn(env, "web", 4, "spot-1", "spot-2")
	if e := env.Events("default", "reason=PackingReleased,involvedObject.name=spot-2"); len(e) != 1 {
		t.Fatalf("PackingReleased events on spot-2: %d, want 1", len(e))
	}
	before := podUIDs(env, "app")
	rb.waitPasses(5)
	if after := podUIDs(env, "app"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("pods moved with nothing to pack: %v -> %v", before, after)
	}
	if n := rb.metric("spot_scheduler_rebalance_packed_nodes_total"); n != 1 {
		t.Fatalf("packed_nodes_total = %v after the release, want still 1", n)
	}
}
