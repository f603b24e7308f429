package integration

// Karpenter in the loop: the real Karpenter (its kwok cloud provider, built from Go modules by
// hack/build-karpenter.sh) adds and removes the nodes, spot-scheduler places the pods and the
// rebalancer moves them back to spot. Nothing here adds or removes a node by script except the
// static on-demand node of TestKarpenterSpotUnavailableFailover (a managed node group's node).
//
// How "spot unavailable" is modelled: the spot NodePool's CPU limit is set to 0. Karpenter then
// launches no spot node and turns to the next NodePool by weight (on-demand), the same path it
// takes when the cloud refuses spot capacity. The alternatives were worse: Karpenter's kwok
// provider has no insufficient-capacity switch (every offering is always available); an
// admission policy refusing spot Nodes would only make the kwok provider's asynchronous node
// creation fail, and Karpenter would wait its 15-minute registration timeout before giving up
// on the NodeClaim; one refusing spot NodeClaims makes Karpenter retry the same spot launch
// rather than fall back. The reclaim itself is Karpenter's interruption path: the NodeClaim
// is deleted, Karpenter taints the node karpenter.sh/disrupted, evicts its pods and removes it.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/internal/capacitytest"
	"github.com/spot-scheduler/spot-scheduler/internal/demo"
	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/deletioncost"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/chart"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// karpenterWait bounds every wait on Karpenter: a launch takes ~2 s (1 s batch idle, node
// creation, kwok's Ready), a consolidation consolidateAfter + up to 10 s (its polling) + 15 s
// (its validation delay) + the drain.
const karpenterWait = 3 * time.Minute

// shortConsolidation is the consolidateAfter the tests give Karpenter, so that its
// consolidation acts within the tests' bounds.
var shortConsolidation = 5 * time.Second

// startKarpenterEnv starts a control plane with kube-controller-manager, Karpenter with the
// given NodePools (nil: localcluster.DefaultNodePools()) and spot-scheduler.
func startKarpenterEnv(t *testing.T, pools []localcluster.NodePool, gates ...string) *framework.Env {
	t.Helper()
	started := time.Now()
	env := framework.Start(t, localcluster.Options{
		ControllerManager: true,
		Karpenter:         &localcluster.KarpenterOptions{NodePools: pools, FeatureGates: gates},
	})
	env.CreateNamespace(ns)
	env.StartScheduler("spot-scheduler", "")
	t.Cleanup(func() { t.Logf("test took %s", time.Since(started).Round(time.Second)) })
	return env
}

func pool(name, capacityType string, weight int32, consolidation string, instanceTypes ...string) localcluster.NodePool {
	return localcluster.NodePool{
		Name: name, CapacityType: capacityType, Weight: weight,
		ConsolidationPolicy: consolidation, ConsolidateAfter: &shortConsolidation, InstanceTypes: instanceTypes,
	}
}

// karpenterNodes returns the nodes Karpenter launched (they carry the NodePool label) that
// are not being deleted, by capacity type.
func karpenterNodes(env *framework.Env) map[string][]*v1.Node {
	env.T.Helper()
	nodes, err := env.Client.CoreV1().Nodes().List(env.Ctx, metav1.ListOptions{LabelSelector: localcluster.KarpenterNodePoolLabel})
	if err != nil {
		env.T.Fatal(err)
	}
	out := map[string][]*v1.Node{}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.DeletionTimestamp == nil {
			ct := n.Labels[localcluster.KarpenterCapacityTypeLabel]
			out[ct] = append(out[ct], n)
		}
	}
	return out
}

func nodeNames(nodes []*v1.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	sort.Strings(out)
	return out
}

// capacityTypes maps every node's name to its karpenter.sh/capacity-type label.
func capacityTypes(env *framework.Env) map[string]string {
	env.T.Helper()
	nodes, err := env.Client.CoreV1().Nodes().List(env.Ctx, metav1.ListOptions{})
	if err != nil {
		env.T.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range nodes.Items {
		out[n.Name] = n.Labels[localcluster.KarpenterCapacityTypeLabel]
	}
	return out
}

// waitAppOn waits until exactly want pods of app exist, all Running on nodes whose capacity
// type is one of types ("" matches any), none Pending or terminating; it returns the count per
// capacity type.
func waitAppOn(env *framework.Env, app string, want int, timeout time.Duration, types ...string) map[string]int {
	env.T.Helper()
	var byType map[string]int
	env.WaitFor(fmt.Sprintf("%d pods of %s Running on %v capacity", want, app, types), timeout, func(context.Context) (bool, error) {
		ct := capacityTypes(env)
		byType = map[string]int{}
		running := 0
		for _, p := range podsOf(env, "app="+app) {
			if p.DeletionTimestamp != nil || p.Spec.NodeName == "" || p.Status.Phase != v1.PodRunning {
				return false, nil
			}
			t := ct[p.Spec.NodeName]
			ok := len(types) == 0
			for _, w := range types {
				ok = ok || w == t
			}
			if !ok {
				return false, nil
			}
			byType[t]++
			running++
		}
		return running == want, nil
	})
	return byType
}

// karpenterMetric sums the samples of a metric of Karpenter whose line starts with prefix.
func karpenterMetric(env *framework.Env, prefix string) float64 {
	env.T.Helper()
	return scrapeMetric(env.T, &http.Client{Timeout: 5 * time.Second}, env.Karpenter.MetricsURL, prefix)
}

// karpenterEvictions is how many pods Karpenter evicted (successful eviction requests).
func karpenterEvictions(env *framework.Env) float64 {
	return karpenterMetric(env, `karpenter_pods_eviction_requests_total{code="200"}`)
}

// evictedPods lists the pods in ns evicted by Karpenter (its Evicted events) and by the
// rebalancer (Rebalanced events): pod name -> who.
func evictedPods(env *framework.Env) map[string]string {
	env.T.Helper()
	events := env.Events(ns, "")
	out := map[string]string{}
	for _, e := range events {
		switch {
		case e.Reason == "Rebalanced":
			out[e.InvolvedObject.Name] = "rebalancer"
		case e.Reason == "Evicted" && strings.HasPrefix(e.Message, "Evicted pod"):
			out[e.InvolvedObject.Name] = "karpenter"
		}
	}
	return out
}

func defaultModel(t *testing.T) *capacity.Model { return capacitytest.DefaultModel(t) }

// TestKarpenterProvisionsSpotFirst: pending spot-scheduler pods (no default scheduler runs)
// make Karpenter launch nodes from the spot NodePool (weight 100) and none from on-demand;
// the product's default capacity model classifies the new nodes as spot, pooled by NodePool.
func TestKarpenterProvisionsSpotFirst(t *testing.T) {
	env := startKarpenterEnv(t, nil)
	created := time.Now()
	createDeployment(env, framework.Deployment(ns, "web", 5, "1"))
	waitAppOn(env, "web", 5, karpenterWait, localcluster.CapacityTypeSpot)
	t.Logf("5 pending pods Running on Karpenter's spot nodes %s after creation", time.Since(created).Round(time.Millisecond))

	nodes := karpenterNodes(env)
	if len(nodes[localcluster.CapacityTypeOnDemand]) != 0 || len(nodes[localcluster.CapacityTypeSpot]) == 0 {
		t.Fatalf("Karpenter's nodes by capacity type: spot %v, on-demand %v; want spot only",
			nodeNames(nodes[localcluster.CapacityTypeSpot]), nodeNames(nodes[localcluster.CapacityTypeOnDemand]))
	}
	model := defaultModel(t)
	for _, n := range nodes[localcluster.CapacityTypeSpot] {
		c := model.Classify(n)
		if c.TierName != v1alpha1.TierSpot || c.AtRisk || !strings.Contains(c.Pool, localcluster.KarpenterNodePoolLabel+"=spot") {
			t.Errorf("node %s (labels %v) classified %+v by the default model, want tier spot, not at risk, pool of NodePool spot", n.Name, n.Labels, c)
		}
	}
	t.Logf("Karpenter launched %d spot node(s): %v", len(nodes[localcluster.CapacityTypeSpot]), nodeNames(nodes[localcluster.CapacityTypeSpot]))
}

// TestKarpenterSpotUnavailableFailover: the spot NodePool can launch nothing more (CPU limit
// 0, see the top of this file) and Karpenter reclaims every spot node. The evicted pods'
// replacements go at once to the free room of an existing on-demand node, Karpenter launches
// on-demand nodes for the rest, and no pod stays Pending.
func TestKarpenterSpotUnavailableFailover(t *testing.T) {
	env := startKarpenterEnv(t, nil)
	createDeployment(env, framework.Deployment(ns, "web", 6, "1"))
	waitAppOn(env, "web", 6, karpenterWait, localcluster.CapacityTypeSpot)
	// A node of a managed on-demand node group with room for two pods.
	env.CreateNodes(framework.Node("ondemand-static", "2", framework.OnDemandLabels))

	if err := env.Karpenter.SetNodePoolCPULimit(env.Ctx, "spot", "0"); err != nil {
		t.Fatal(err)
	}
	spotNodes := nodeNames(karpenterNodes(env)[localcluster.CapacityTypeSpot])
	reclaimed := time.Now()
	for _, n := range spotNodes {
		if err := env.Karpenter.Interrupt(env.Ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	env.WaitFor("two pods Running on the existing on-demand node", karpenterWait, func(context.Context) (bool, error) {
		byNode, _ := env.ScheduledPods(ns, "app=web")
		return byNode["ondemand-static"] == 2, nil
	})
	toStatic := time.Since(reclaimed)
	byType := waitAppOn(env, "web", 6, karpenterWait, localcluster.CapacityTypeOnDemand)
	t.Logf("spot reclaimed (%d nodes): 2 pods on the existing on-demand room after %s, all 6 Running on on-demand after %s (%v)",
		len(spotNodes), toStatic.Round(time.Millisecond), time.Since(reclaimed).Round(time.Millisecond), byType)
	nodes := karpenterNodes(env)
	if len(nodes[localcluster.CapacityTypeSpot]) != 0 {
		t.Fatalf("spot nodes %v launched while the spot NodePool's limit is 0", nodeNames(nodes[localcluster.CapacityTypeSpot]))
	}
	if len(nodes[localcluster.CapacityTypeOnDemand]) == 0 {
		t.Fatal("no on-demand node launched by Karpenter, yet 4 pods did not fit the existing on-demand room")
	}
	t.Logf("Karpenter launched on-demand nodes %v; it evicted %v pods", nodeNames(nodes[localcluster.CapacityTypeOnDemand]), karpenterEvictions(env))
}

// failbackSetup starts with spot unavailable (the spot NodePool's limit 0): web runs on
// Karpenter's on-demand nodes and the spot placeholders are Pending. It returns once that holds.
func failbackSetup(t *testing.T, pools []localcluster.NodePool, web, placeholders int32) *framework.Env {
	t.Helper()
	for i := range pools {
		if pools[i].CapacityType == localcluster.CapacityTypeSpot {
			pools[i].CPULimit = "0"
		}
	}
	env := startKarpenterEnv(t, pools)
	createPriorityClasses(env)
	createDeployment(env, framework.Deployment(ns, "web", web, "1"))
	waitAppOn(env, "web", int(web), karpenterWait, localcluster.CapacityTypeOnDemand)
	if placeholders == 0 {
		return env
	}
	createDeployment(env, placeholderDeployment("headroom", placeholders, framework.SpotLabels))
	env.WaitFor("placeholders Pending", time.Minute, func(context.Context) (bool, error) {
		pending := 0
		for _, p := range podsOf(env, "app=headroom") {
			if p.Spec.NodeName == "" && isUnschedulable(&p) {
				pending++
			}
		}
		return pending == int(placeholders), nil
	})
	return env
}

// TestKarpenterFailback: spot comes back (the spot NodePool's limit is lifted). The Pending
// placeholders make Karpenter launch spot nodes, the rebalancer moves web there (displacing
// placeholders, which make Karpenter launch more spot), and Karpenter removes the on-demand
// nodes failback emptied. The on-demand NodePool consolidates only empty nodes (the
// recommended setting, docs/install.md), so every move is the rebalancer's.
func TestKarpenterFailback(t *testing.T) {
	env := failbackSetup(t, []localcluster.NodePool{
		pool("spot", localcluster.CapacityTypeSpot, 100, localcluster.ConsolidateWhenEmpty, "c-4x"),
		pool("on-demand", localcluster.CapacityTypeOnDemand, 10, localcluster.ConsolidateWhenEmpty, "c-4x"),
	}, 6, 2)
	onDemandBefore := nodeNames(karpenterNodes(env)[localcluster.CapacityTypeOnDemand])
	rb := startRebalancer(env, "--rebalance-interval=2s")

	returned := time.Now()
	if err := env.Karpenter.SetNodePoolCPULimit(env.Ctx, "spot", ""); err != nil {
		t.Fatal(err)
	}
	waitAppOn(env, "web", 6, karpenterWait, localcluster.CapacityTypeSpot)
	onSpot := time.Since(returned)
	waitAppOn(env, "headroom", 2, karpenterWait, localcluster.CapacityTypeSpot)
	env.WaitFor("Karpenter removes the emptied on-demand nodes", karpenterWait, func(context.Context) (bool, error) {
		return len(karpenterNodes(env)[localcluster.CapacityTypeOnDemand]) == 0, nil
	})
	t.Logf("spot returned: all 6 pods on spot after %s, on-demand nodes %v removed after %s; spot nodes now %v",
		onSpot.Round(time.Millisecond), onDemandBefore, time.Since(returned).Round(time.Millisecond),
		nodeNames(karpenterNodes(env)[localcluster.CapacityTypeSpot]))
	evicted := evictedPods(env)
	byWho := map[string]int{}
	for _, who := range evicted {
		byWho[who]++
	}
	t.Logf("evictions: rebalancer %d (metric %v), Karpenter %d (metric %v)", byWho["rebalancer"], rb.evictions(), byWho["karpenter"], karpenterEvictions(env))
	if byWho["rebalancer"] != 6 {
		t.Errorf("rebalancer moved %d pods, want the 6 that were on on-demand: %v", byWho["rebalancer"], evicted)
	}
}

// TestKarpenterNoFight: spot comes back while Karpenter's consolidation of underutilized
// on-demand nodes (its own failback: replacing them with cheaper spot nodes) and the
// rebalancer act on the same pods; the spot NodePool consolidates only empty nodes (the
// recommended setting, docs/install.md: with underutilized spot consolidation Karpenter
// compacts the spot nodes the failback filled, moving pods a second time; seen here as 2 of 5
// moved pods evicted again ~25 s after the return). Over 20 rebalancer passes no pod is moved
// twice (a pod created during the window is a moved pod's replacement; none is evicted), every
// pod ends on spot, a karpenter.sh/do-not-disrupt pod on an underutilized on-demand node is
// left alone by both, and the evictions of each are reported.
func TestKarpenterNoFight(t *testing.T) {
	env := failbackSetup(t, []localcluster.NodePool{
		pool("spot", localcluster.CapacityTypeSpot, 100, localcluster.ConsolidateWhenEmpty, "c-4x"),
		pool("on-demand", localcluster.CapacityTypeOnDemand, 10, localcluster.ConsolidateWhenEmptyOrUnderutilized, "c-4x"),
	}, 5, 2)
	keep := framework.Deployment(ns, "keep", 1, "1")
	keep.Spec.Template.Annotations = map[string]string{localcluster.KarpenterDoNotDisrupt: "true"}
	createDeployment(env, keep)
	waitAppOn(env, "keep", 1, karpenterWait, localcluster.CapacityTypeOnDemand)
	keepBefore := podUIDs(env, "app=keep")
	initial := map[string]bool{}
	for _, p := range podsOf(env, "app=web") {
		initial[p.Name] = true
	}
	// Passes every 3 s: the 20 passes span a minute, long enough for Karpenter's consolidation
	// (consolidateAfter 5 s, up to 10 s polling, 15 s validation) to act in the same window.
	rb := startRebalancer(env, "--rebalance-interval=3s")
	passesBefore := rb.passes()

	returned := time.Now()
	if err := env.Karpenter.SetNodePoolCPULimit(env.Ctx, "spot", ""); err != nil {
		t.Fatal(err)
	}
	waitAppOn(env, "web", 5, karpenterWait, localcluster.CapacityTypeSpot)
	t.Logf("all 5 web pods on spot %s after spot returned", time.Since(returned).Round(time.Millisecond))
	// Karpenter removes the on-demand node failback emptied but not the one holding the
	// do-not-disrupt pod, underutilized as it is.
	keepNode := podsOf(env, "app=keep")[0].Spec.NodeName
	env.WaitFor("Karpenter removes the emptied on-demand node", karpenterWait, func(context.Context) (bool, error) {
		return len(karpenterNodes(env)[localcluster.CapacityTypeOnDemand]) == 1, nil
	})
	t.Logf("emptied on-demand node removed %s after spot returned", time.Since(returned).Round(time.Millisecond))
	rb.waitPasses(20 - int(rb.passes()-passesBefore))
	if od := nodeNames(karpenterNodes(env)[localcluster.CapacityTypeOnDemand]); len(od) != 1 || od[0] != keepNode {
		t.Errorf("on-demand nodes %v, want only %s (it holds the do-not-disrupt pod)", od, keepNode)
	}
	t.Logf("%v rebalancer passes in %s", rb.passes()-passesBefore, time.Since(returned).Round(time.Millisecond))

	evicted := evictedPods(env)
	byWho := map[string]int{}
	for pod, who := range evicted {
		byWho[who]++
		if strings.HasPrefix(pod, "web-") && !initial[pod] {
			t.Errorf("pod %s, created during the window (a moved pod's replacement), was moved again by the %s", pod, who)
		}
		if strings.HasPrefix(pod, "keep-") {
			t.Errorf("do-not-disrupt pod %s evicted by the %s", pod, who)
		}
	}
	if after := podUIDs(env, "app=keep"); fmt.Sprint(after) != fmt.Sprint(keepBefore) {
		t.Errorf("do-not-disrupt pod changed: %v -> %v", keepBefore, after)
	}
	if skips := rb.metric(`spot_scheduler_rebalance_skips_total{reason="do_not_disrupt"}`); skips == 0 {
		t.Errorf("the rebalancer never counted the do-not-disrupt pod as skipped")
	}
	t.Logf("evictions: rebalancer %d (metric %v), Karpenter %d (metric %v); nodes now spot %v, on-demand %v",
		byWho["rebalancer"], rb.evictions(), byWho["karpenter"], karpenterEvictions(env),
		nodeNames(karpenterNodes(env)[localcluster.CapacityTypeSpot]), nodeNames(karpenterNodes(env)[localcluster.CapacityTypeOnDemand]))
}

// TestKarpenterDisruptedTaint: Karpenter starts terminating a spot node (its NodeClaim is
// deleted, as on an interruption) whose pods it may not evict (karpenter.sh/do-not-disrupt),
// so the node stays with Karpenter's karpenter.sh/disrupted taint. spot-scheduler ranks it
// last (a pod tolerating the taint goes to the other spot node with the same room) and the
// deletion-cost controller ranks its pods first for scale-in (scaling down removes them).
func TestKarpenterDisruptedTaint(t *testing.T) {
	env := startKarpenterEnv(t, []localcluster.NodePool{
		pool("spot", localcluster.CapacityTypeSpot, 100, localcluster.ConsolidateWhenEmpty, "c-4x"),
	})
	web := framework.Deployment(ns, "web", 6, "1")
	web.Spec.Template.Annotations = map[string]string{localcluster.KarpenterDoNotDisrupt: "true"}
	createDeployment(env, web)
	waitAppOn(env, "web", 6, karpenterWait, localcluster.CapacityTypeSpot)
	byNode, _ := env.ScheduledPods(ns, "app=web")
	if len(byNode) != 2 {
		t.Fatalf("web on %v, want two c-4x spot nodes with three pods each", byNode)
	}
	var names []string
	for n := range byNode {
		names = append(names, n)
	}
	sort.Strings(names)
	doomed, healthy := names[0], names[1]
	dc := startDeletionCostController(env)

	if err := env.Karpenter.Interrupt(env.Ctx, doomed); err != nil {
		t.Fatal(err)
	}
	env.WaitFor("Karpenter's disrupted taint on "+doomed, karpenterWait, func(ctx context.Context) (bool, error) {
		n, err := env.Client.CoreV1().Nodes().Get(ctx, doomed, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == localcluster.KarpenterDisruptedTaint {
				return true, nil
			}
		}
		return false, nil
	})
	if c := defaultModel(t).Classify(mustNode(env, doomed)); !c.AtRisk || c.RiskReason != localcluster.KarpenterDisruptedTaint {
		t.Fatalf("node %s classified %+v, want at risk by %s", doomed, c, localcluster.KarpenterDisruptedTaint)
	}

	// Placement: both nodes have 900m free; the pod tolerates the taint, so only the ranking
	// keeps it off the node Karpenter is taking away.
	probe := framework.Pod(ns, "probe", "100m", map[string]string{"app": "probe"})
	probe.Spec.Tolerations = append(probe.Spec.Tolerations, v1.Toleration{Key: localcluster.KarpenterDisruptedTaint, Operator: v1.TolerationOpExists})
	createPod(env, probe)
	if got := env.WaitPodBound(ns, "probe", time.Minute); got != healthy {
		t.Fatalf("pod tolerating the disrupted taint bound to %s, want %s (not the disrupted %s)", got, healthy, doomed)
	}

	// Scale-in: the pods on the disrupted node cost least, so the ReplicaSet deletes them.
	pods := dc.waitSettled("web", 6)
	assertOrdered(t, pods, []string{healthy}, []string{doomed})
	scaleTo(env, "web", 3)
	env.WaitFor("web scaled in to the 3 pods on "+healthy, time.Minute, func(context.Context) (bool, error) {
		byNode, _ := env.ScheduledPods(ns, "app=web")
		return len(byNode) == 1 && byNode[healthy] == 3, nil
	})
	// With its do-not-disrupt pods gone, Karpenter finishes removing the node.
	env.WaitFor("Karpenter removes "+doomed, karpenterWait, func(ctx context.Context) (bool, error) {
		_, err := env.Client.CoreV1().Nodes().Get(ctx, doomed, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// TestKarpenterOwnConsolidationFailback measures Karpenter's own failback, with no
// rebalancer and no placeholders: spot returns and Karpenter's consolidation alone (both
// NodePools consolidate underutilized nodes) replaces the on-demand nodes with cheaper spot
// ones, its pods following to spot through spot-scheduler. This is the peer's behaviour the
// product is compared with (docs/install.md).
func TestKarpenterOwnConsolidationFailback(t *testing.T) {
	env := failbackSetup(t, []localcluster.NodePool{
		pool("spot", localcluster.CapacityTypeSpot, 100, localcluster.ConsolidateWhenEmptyOrUnderutilized, "c-4x"),
		pool("on-demand", localcluster.CapacityTypeOnDemand, 10, localcluster.ConsolidateWhenEmptyOrUnderutilized, "c-4x"),
	}, 6, 0)
	returned := time.Now()
	if err := env.Karpenter.SetNodePoolCPULimit(env.Ctx, "spot", ""); err != nil {
		t.Fatal(err)
	}
	waitAppOn(env, "web", 6, 5*time.Minute, localcluster.CapacityTypeSpot)
	t.Logf("Karpenter's consolidation alone brought all 6 pods to spot %s after spot returned; it evicted %v pods; nodes now spot %v, on-demand %v",
		time.Since(returned).Round(time.Millisecond), karpenterEvictions(env),
		nodeNames(karpenterNodes(env)[localcluster.CapacityTypeSpot]), nodeNames(karpenterNodes(env)[localcluster.CapacityTypeOnDemand]))
}

func mustNode(env *framework.Env, name string) *v1.Node {
	env.T.Helper()
	n, err := env.Client.CoreV1().Nodes().Get(env.Ctx, name, metav1.GetOptions{})
	if err != nil {
		env.T.Fatal(err)
	}
	return n
}

// TestKarpenterCapacityBuffer: the chart's placeholders.kind=CapacityBuffer (a Karpenter
// CapacityBuffer of two 1-CPU spot pods, feature gate CapacityBuffer) makes Karpenter keep that
// room free on a spot node with no pod in it. New spot-scheduler pods take it at once (no
// launch to wait for) and Karpenter launches another spot node to restore the buffer.
func TestKarpenterCapacityBuffer(t *testing.T) {
	env := startKarpenterEnv(t, []localcluster.NodePool{
		pool("spot", localcluster.CapacityTypeSpot, 100, localcluster.ConsolidateWhenEmpty, "c-4x"),
		pool("on-demand", localcluster.CapacityTypeOnDemand, 10, localcluster.ConsolidateWhenEmpty, "c-4x"),
	}, "CapacityBuffer=true")
	r := chart.Render(t, "spot", ns, "--set", "placeholders.enabled=true,placeholders.kind=CapacityBuffer,placeholders.replicas=2,placeholders.resources.requests.cpu=1,placeholders.resources.requests.memory=64Mi")
	newChartApplier(env).apply(r.Objects, "PodTemplate", "CapacityBuffer")
	declared := time.Now()
	var bufferNode string
	env.WaitFor("Karpenter launches a spot node for the buffer", karpenterWait, func(context.Context) (bool, error) {
		spot := karpenterNodes(env)[localcluster.CapacityTypeSpot]
		if len(spot) == 1 {
			bufferNode = spot[0].Name
		}
		return len(spot) == 1 && len(karpenterNodes(env)[localcluster.CapacityTypeOnDemand]) == 0, nil
	})
	t.Logf("buffer: spot node %s launched %s after the CapacityBuffer was declared", bufferNode, time.Since(declared).Round(time.Millisecond))
	if pods, err := env.Client.CoreV1().Pods("").List(env.Ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + bufferNode}); err != nil || len(pods.Items) != 0 {
		t.Fatalf("pods on the buffer's node: %v (err %v), want none: a buffer runs no pod", len(pods.Items), err)
	}

	created := time.Now()
	createDeployment(env, framework.Deployment(ns, "web", 2, "1"))
	waitAppOn(env, "web", 2, time.Minute, localcluster.CapacityTypeSpot)
	if byNode, _ := env.ScheduledPods(ns, "app=web"); byNode[bufferNode] != 2 {
		t.Fatalf("web on %v, want both pods in the buffer's room on %s", byNode, bufferNode)
	}
	t.Logf("2 new pods Running in the buffer's spot room %s after creation", time.Since(created).Round(time.Millisecond))
	env.WaitFor("Karpenter restores the buffer with a second spot node", karpenterWait, func(context.Context) (bool, error) {
		return len(karpenterNodes(env)[localcluster.CapacityTypeSpot]) == 2, nil
	})
	t.Logf("buffer restored (second spot node) %s after the pods were created", time.Since(created).Round(time.Millisecond))
	if od := karpenterNodes(env)[localcluster.CapacityTypeOnDemand]; len(od) != 0 {
		t.Fatalf("on-demand nodes %v launched, want the buffer on spot only", nodeNames(od))
	}
}

// TestKarpenterDemo plays `make demo-karpenter` to the end and checks its summary: spot first,
// failover onto on-demand that Karpenter launched, failback (each pod that failed over moved
// back once, by the rebalancer or Karpenter's consolidation), the on-demand nodes removed by
// Karpenter, and spot's node-time dominating the cost.
func TestKarpenterDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	summary, err := demo.RunKarpenter(ctx, demoOptions(t, &out), "")
	t.Logf("demo output:\n%s", out.String())
	t.Logf("test took %s", time.Since(started).Round(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if summary.NodesLaunched[localcluster.CapacityTypeSpot] == 0 || summary.NodesLaunched[localcluster.CapacityTypeOnDemand] == 0 {
		t.Errorf("nodes launched %v, want spot and on-demand", summary.NodesLaunched)
	}
	// Each of the 9 pods that failed over moves back once, by the rebalancer or by Karpenter's
	// consolidation of an underutilized on-demand node (both send it to spot); none moves twice.
	back := summary.FailbackEvictions["rebalancer"] + summary.FailbackEvictions["karpenter"]
	if back != 9 {
		t.Errorf("failback evictions %v, want the 9 pods that failed over", summary.FailbackEvictions)
	}
	if n := summary.RepeatEvictions["rebalancer"] + summary.RepeatEvictions["karpenter"]; n != 0 {
		t.Errorf("%d pods moved a second time (%v)", n, summary.RepeatEvictions)
	}
	if summary.InterruptionEvictions["karpenter"] == 0 {
		t.Errorf("Karpenter evicted nothing at the interruption, yet it drained the interrupted spot nodes (%v)", summary.InterruptionEvictions)
	}
	if s := summary.NodeSecondsByCapacityType; s[localcluster.CapacityTypeSpot] <= s[localcluster.CapacityTypeOnDemand] || summary.NodeCost <= 0 {
		t.Errorf("node-seconds %v, cost %.4f: want spot's node-time above on-demand's and a cost", s, summary.NodeCost)
	}
}

// TestKarpenterPodDeletionCostManagement: with Karpenter's PodDeletionCostManagement feature
// gate on (alpha in v1.15), Karpenter writes controller.kubernetes.io/pod-deletion-cost itself.
// The deletion-cost controller finds Karpenter's write (its field manager owns the annotation),
// yields: a Warning event, spot_scheduler_deletion_cost_yielded 1, its own values removed, and
// no value written afterwards, while Karpenter keeps writing (the ReplicaSet then follows
// Karpenter's order alone, never a mix of the two scales).
func TestKarpenterPodDeletionCostManagement(t *testing.T) {
	// Consolidation is on (Karpenter ranks only the nodes of NodePools that consolidate) but
	// acts after an hour: no node goes away during the test.
	hour := time.Hour
	env := startKarpenterEnv(t, []localcluster.NodePool{{
		Name: "spot", CapacityType: localcluster.CapacityTypeSpot, Weight: 100, InstanceTypes: []string{"c-4x"},
		ConsolidationPolicy: localcluster.ConsolidateWhenEmptyOrUnderutilized, ConsolidateAfter: &hour,
	}}, "PodDeletionCostManagement=true")
	createDeployment(env, framework.Deployment(ns, "web", 6, "1"))
	waitAppOn(env, "web", 6, karpenterWait, localcluster.CapacityTypeSpot)
	rb := startRebalancer(env)

	var yielded []v1.Event
	env.WaitFor("the rebalancer says it yields the deletion cost to Karpenter", karpenterWait, func(context.Context) (bool, error) {
		yielded = nil
		for _, e := range env.Events(ns, "") {
			if e.Reason == deletioncost.YieldedReason {
				yielded = append(yielded, e)
			}
		}
		return len(yielded) > 0, nil
	})
	if e := yielded[0]; e.Type != v1.EventTypeWarning || !strings.Contains(e.Message, "PodDeletionCostManagement") {
		t.Errorf("event %s %q, want a Warning naming the feature gate", e.Type, e.Message)
	}
	t.Logf("event: %s %s: %s", yielded[0].InvolvedObject.Name, yielded[0].Reason, yielded[0].Message)
	if got := rb.metric("spot_scheduler_deletion_cost_yielded"); got != 1 {
		t.Errorf("spot_scheduler_deletion_cost_yielded = %v, want 1", got)
	}
	costs := func() (ours, karpenters int) {
		for _, p := range podsOf(env, "app=web") {
			cost, hasCost := p.Annotations[wellknown.PodDeletionCostAnnotation]
			mark, hasMark := p.Annotations[wellknown.ManagedDeletionCostAnnotation]
			switch {
			case hasCost && hasMark && cost == mark:
				ours++
			case hasCost:
				karpenters++
			}
		}
		return ours, karpenters
	}
	env.WaitFor("no pod carries the controller's value; some carry Karpenter's", time.Minute, func(context.Context) (bool, error) {
		ours, karpenters := costs()
		return ours == 0 && karpenters > 0, nil
	})
	sets := rb.metric(`spot_scheduler_deletion_cost_writes_total{operation="set",result="success"}`)

	// More pods, a new node: Karpenter ranks again; nothing of ours comes back.
	scaleTo(env, "web", 10)
	waitAppOn(env, "web", 10, karpenterWait, localcluster.CapacityTypeSpot)
	env.WaitFor("Karpenter ranks the new pods too", karpenterWait, func(context.Context) (bool, error) {
		_, karpenters := costs()
		return karpenters > 0 && len(podsOf(env, "app=web")) == 10, nil
	})
	if ours, _ := costs(); ours != 0 {
		t.Errorf("%d pods carry the controller's value after it yielded", ours)
	}
	if after := rb.metric(`spot_scheduler_deletion_cost_writes_total{operation="set",result="success"}`); after != sets {
		t.Errorf("the controller set %v deletion costs after it yielded, want none", after-sets)
	}
	ours, karpenters := costs()
	t.Logf("after scale-up: %d pods with Karpenter's deletion cost, %d with the controller's; %d yield events", karpenters, ours, len(yielded))
}
