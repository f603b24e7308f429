package integration

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/deletioncost"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// deletionCostController is the rebalancer binary (hosting the deletion-cost controller) run
// against a test cluster.
type deletionCostController struct {
	*rebalancer
	model *capacity.Model
}

// terminate sends SIGTERM and checks that the process exits 0 having released its Lease.
func (c *deletionCostController) terminate() {
	c.env.T.Helper()
	if err := c.proc.Signal(syscall.SIGTERM); err != nil {
		c.env.T.Fatal(err)
	}
	if err := c.proc.Wait(20 * time.Second); err != nil {
		c.env.T.Fatalf("rebalancer after SIGTERM: %v, want exit 0", err)
	}
	lease, err := c.env.Client.CoordinationV1().Leases("kube-system").Get(c.env.Ctx, wellknown.RebalancerLeaseName, metav1.GetOptions{})
	if err != nil {
		c.env.T.Fatal(err)
	}
	if lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
		c.env.T.Fatalf("lease still held by %s after SIGTERM", *lease.Spec.HolderIdentity)
	}
}

// writes reads the controller's own count of pod writes from its /metrics.
func (c *deletionCostController) writes() float64 {
	c.env.T.Helper()
	return c.metric("spot_scheduler_deletion_cost_writes_total{")
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func costOf(p *v1.Pod) (int32, bool) {
	v, ok := p.Annotations[wellknown.PodDeletionCostAnnotation]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	return int32(n), err == nil
}

// waitSettled waits until want pods of the app are bound and Ready and each carries, as the
// controller's own value, the cost the capacity model gives it (the controller has caught up),
// and returns them.
func (c *deletionCostController) waitSettled(app string, want int) []v1.Pod {
	c.env.T.Helper()
	var pods []v1.Pod
	c.env.WaitFor(fmt.Sprintf("%d pods of %s Ready with their deletion costs", want, app), 60*time.Second, func(ctx context.Context) (bool, error) {
		list, err := c.env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false, err
		}
		nodes, err := c.env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		byName := map[string]*v1.Node{}
		for i := range nodes.Items {
			byName[nodes.Items[i].Name] = &nodes.Items[i]
		}
		pods = pods[:0]
		ptrs := []*v1.Pod{}
		for i := range list.Items {
			if p := &list.Items[i]; p.DeletionTimestamp == nil {
				pods = append(pods, *p)
				ptrs = append(ptrs, p)
			}
		}
		if len(pods) != want {
			return false, nil
		}
		all, err := c.env.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		everyPod := make([]*v1.Pod, len(all.Items))
		for i := range all.Items {
			everyPod[i] = &all.Items[i]
		}
		desired := deletioncost.DesiredWithReclaims(c.model, wellknown.SchedulerName, ptrs, func(n string) (*v1.Node, bool) {
			node, ok := byName[n]
			return node, ok
		}, nil, func(n string) float64 { return deletioncost.NodeFill(byName[n], everyPod) })
		for _, p := range ptrs {
			d, ok := desired[p.UID]
			if !ok || !podReady(p) {
				return false, nil
			}
			want := strconv.Itoa(int(d.Cost))
			if p.Annotations[wellknown.PodDeletionCostAnnotation] != want || p.Annotations[wellknown.ManagedDeletionCostAnnotation] != want {
				return false, nil
			}
		}
		return true, nil
	})
	return pods
}

// costsByNode lists the pods' costs per node, sorted, for messages.
func costsByNode(pods []v1.Pod) map[string][]int32 {
	out := map[string][]int32{}
	for _, p := range pods {
		c, _ := costOf(&p)
		out[p.Spec.NodeName] = append(out[p.Spec.NodeName], c)
	}
	for _, cs := range out {
		sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
	}
	return out
}

// assertOrdered checks that every pod on a node of an earlier group costs more than every pod
// on a node of a later group.
func assertOrdered(t *testing.T, pods []v1.Pod, groups ...[]string) {
	t.Helper()
	groupOf := map[string]int{}
	for i, g := range groups {
		for _, n := range g {
			groupOf[n] = i
		}
	}
	lo := make([]int32, len(groups))
	hi := make([]int32, len(groups))
	for i := range groups {
		lo[i], hi[i] = math.MaxInt32, math.MinInt32
	}
	for _, p := range pods {
		g, ok := groupOf[p.Spec.NodeName]
		if !ok {
			t.Fatalf("pod %s on unexpected node %s", p.Name, p.Spec.NodeName)
		}
		c, _ := costOf(&p)
		lo[g], hi[g] = min(lo[g], c), max(hi[g], c)
	}
	for i := 0; i+1 < len(groups); i++ {
		if lo[i] <= hi[i+1] {
			t.Fatalf("pods on %v (lowest cost %d) do not all cost more than pods on %v (highest %d): %v",
				groups[i], lo[i], groups[i+1], hi[i+1], costsByNode(pods))
		}
	}
}

func taintNode(env *framework.Env, name string, taint v1.Taint) {
	env.T.Helper()
	if err := localcluster.TaintNode(env.Ctx, env.Client, name, taint); err != nil {
		env.T.Fatal(err)
	}
}

var spotITN = v1.Taint{Key: "aws-node-termination-handler/spot-itn", Value: "x", Effect: v1.TaintEffectNoSchedule}

// TestDeletionCostScaleInKeepsSpot: 9 replicas, 3 each on spot, on-demand and burst nodes.
// Scaled to 6, the burst pods go; scaled to 3, the on-demand pods go: the survivors are the
// spot pods. (Without the controller the ReplicaSet keeps no such order.)
func TestDeletionCostScaleInKeepsSpot(t *testing.T) {
	env := startWithScheduler(t, true)
	ctrl := startDeletionCostController(env)
	env.CreateNodes(
		framework.Node("spot-1", "3", framework.SpotLabels),
		framework.Node("ondemand-1", "3", framework.OnDemandLabels),
		framework.Node("virtual-1", "100", framework.BurstLabels, framework.BurstTaint),
	)
	createDeployment(env, framework.Deployment(ns, "web", 9, "1"))
	byNode := waitAllBound(env, "web", 9)
	if got := [3]int{byNode["spot-1"], byNode["ondemand-1"], byNode["virtual-1"]}; got != [3]int{3, 3, 3} {
		t.Fatalf("spot/on-demand/burst = %v, want [3 3 3]", got)
	}
	pods := ctrl.waitSettled("web", 9)
	assertOrdered(t, pods, []string{"spot-1"}, []string{"ondemand-1"}, []string{"virtual-1"})
	t.Logf("costs per node: %v", costsByNode(pods))

	scaleTo(env, "web", 6)
	byNode = waitAllBound(env, "web", 6)
	if byNode["spot-1"] != 3 || byNode["ondemand-1"] != 3 {
		t.Fatalf("after scaling to 6: %v, want the 3 spot and 3 on-demand pods kept", byNode)
	}
	ctrl.waitSettled("web", 6)
	scaleTo(env, "web", 3)
	byNode = waitAllBound(env, "web", 3)
	if byNode["spot-1"] != 3 {
		t.Fatalf("after scaling to 3: %v, want the 3 spot pods kept", byNode)
	}
}

// TestDeletionCostAtRiskGoesFirst: two spot nodes and one on-demand node hold 3 replicas each;
// one spot node gets an interruption notice, the controller re-ranks its pods below every
// healthy pod, and the next scale-in removes exactly those.
func TestDeletionCostAtRiskGoesFirst(t *testing.T) {
	env := startWithScheduler(t, true)
	ctrl := startDeletionCostController(env)
	pool := func(name string) map[string]string {
		return framework.Labels(framework.SpotLabels, map[string]string{"karpenter.sh/nodepool": name})
	}
	env.CreateNodes(
		framework.Node("spot-a", "3", pool("a")),
		framework.Node("spot-b", "3", pool("b")),
		framework.Node("ondemand-1", "3", framework.OnDemandLabels),
	)
	createDeployment(env, framework.Deployment(ns, "web", 9, "1"))
	byNode := waitAllBound(env, "web", 9)
	if got := [3]int{byNode["spot-a"], byNode["spot-b"], byNode["ondemand-1"]}; got != [3]int{3, 3, 3} {
		t.Fatalf("spot-a/spot-b/on-demand = %v, want [3 3 3]", got)
	}
	pods := ctrl.waitSettled("web", 9)
	assertOrdered(t, pods, []string{"spot-a", "spot-b"}, []string{"ondemand-1"})

	start := time.Now()
	taintNode(env, "spot-a", spotITN)
	pods = ctrl.waitSettled("web", 9)
	t.Logf("re-ranked %s after the interruption notice: %v", time.Since(start).Round(time.Millisecond), costsByNode(pods))
	assertOrdered(t, pods, []string{"spot-b"}, []string{"ondemand-1"}, []string{"spot-a"})

	scaleTo(env, "web", 6)
	byNode = waitAllBound(env, "web", 6)
	if byNode["spot-a"] != 0 || byNode["spot-b"] != 3 || byNode["ondemand-1"] != 3 {
		t.Fatalf("after scaling to 6: %v, want the 3 pods of the at-risk node gone", byNode)
	}
	ctrl.terminate()
}

// TestDeletionCostUserValueUntouched: deletion costs the controller did not write are never
// changed: one set in a Deployment's template, one a user put on a pod, and one a user put in
// place of the controller's value; the controller still re-ranks the pod it owns.
func TestDeletionCostUserValueUntouched(t *testing.T) {
	env := startWithScheduler(t, true)
	ctrl := startDeletionCostController(env)
	env.CreateNodes(framework.Node("spot-1", "8", framework.SpotLabels))
	pinned := framework.Deployment(ns, "pinned", 2, "100m")
	pinned.Spec.Template.Annotations = map[string]string{wellknown.PodDeletionCostAnnotation: "100"}
	createDeployment(env, pinned)
	createDeployment(env, framework.Deployment(ns, "web", 3, "100m"))
	pods := ctrl.waitSettled("web", 3)
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	overridden, userSet, owned := pods[0].Name, pods[1].Name, pods[2].Name
	overriddenBefore, _ := costOf(&pods[0])
	ownedBefore, _ := costOf(&pods[2])

	patch := func(name, body string) {
		t.Helper()
		if _, err := env.Client.CoreV1().Pods(ns).Patch(env.Ctx, name, types.MergePatchType, []byte(body), metav1.PatchOptions{FieldManager: "user"}); err != nil {
			t.Fatal(err)
		}
	}
	// The user changes the controller's value (its record stays)...
	patch(overridden, fmt.Sprintf(`{"metadata":{"annotations":{%q:"-7"}}}`, wellknown.PodDeletionCostAnnotation))
	// ...and replaces another with a value of its own.
	patch(userSet, fmt.Sprintf(`{"metadata":{"annotations":{%q:"42",%q:null}}}`, wellknown.PodDeletionCostAnnotation, wellknown.ManagedDeletionCostAnnotation))

	// The node gets an interruption notice: the controller re-ranks the pod it still owns.
	taintNode(env, "spot-1", spotITN)
	env.WaitFor("the controller re-ranks the pod it owns", 30*time.Second, func(ctx context.Context) (bool, error) {
		p, err := env.Client.CoreV1().Pods(ns).Get(ctx, owned, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c, ok := costOf(p)
		return ok && c < ownedBefore && p.Annotations[wellknown.ManagedDeletionCostAnnotation] == p.Annotations[wellknown.PodDeletionCostAnnotation], nil
	})
	check := func(name, wantCost, wantMark string, neverWritten bool) {
		t.Helper()
		p, err := env.Client.CoreV1().Pods(ns).Get(env.Ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cost, mark := p.Annotations[wellknown.PodDeletionCostAnnotation], p.Annotations[wellknown.ManagedDeletionCostAnnotation]
		if cost != wantCost || mark != wantMark {
			t.Errorf("pod %s: cost %q record %q, want cost %q record %q", name, cost, mark, wantCost, wantMark)
		}
		for _, mf := range p.ManagedFields {
			if mf.Manager == wellknown.DeletionCostFieldManager && neverWritten {
				t.Errorf("pod %s: the controller wrote to it (managedFields %s)", name, mf.FieldsV1)
			}
		}
	}
	check(overridden, "-7", strconv.Itoa(int(overriddenBefore)), false)
	check(userSet, "42", "", false)
	list, err := env.Client.CoreV1().Pods(ns).List(env.Ctx, metav1.ListOptions{LabelSelector: "app=pinned"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("%d pinned pods, want 2", len(list.Items))
	}
	for _, p := range list.Items {
		check(p.Name, "100", "", true)
	}
}

// TestDeletionCostSteadyStateNoWrites: once every pod carries its cost, the controller makes
// no API write for a full minute while the cluster runs (kwok heartbeats keep updating nodes
// and the controller keeps its informers). Counted twice: from a watch on the pods (any change
// of the deletion-cost annotations, or any pod update at all) and from the controller's own
// writes metric.
func TestDeletionCostSteadyStateNoWrites(t *testing.T) {
	env := startWithScheduler(t, true)
	ctrl := startDeletionCostController(env)
	pool := func(name string) map[string]string {
		return framework.Labels(framework.SpotLabels, map[string]string{"karpenter.sh/nodepool": name})
	}
	env.CreateNodes(
		framework.Node("spot-a", "4", pool("a")),
		framework.Node("spot-b", "4", pool("b")),
		framework.Node("ondemand-1", "4", framework.OnDemandLabels),
		framework.Node("virtual-1", "100", framework.BurstLabels, framework.BurstTaint),
	)
	createDeployment(env, framework.Deployment(ns, "api", 3, "500m"))
	waitAllBound(env, "api", 3)
	createDeployment(env, framework.Deployment(ns, "web", 14, "1"))
	waitAllBound(env, "web", 14)
	ctrl.waitSettled("api", 3)
	pods := ctrl.waitSettled("web", 14)
	t.Logf("settled: web costs per node %v", costsByNode(pods))

	list, err := env.Client.CoreV1().Pods(ns).List(env.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	last := map[types.UID][2]string{}
	for _, p := range list.Items {
		last[p.UID] = [2]string{p.Annotations[wellknown.PodDeletionCostAnnotation], p.Annotations[wellknown.ManagedDeletionCostAnnotation]}
	}
	writesBefore := ctrl.writes()
	rv := list.ResourceVersion
	const window = time.Minute
	deadline := time.Now().Add(window)
	costChanges, podEvents := 0, 0
	for time.Now().Before(deadline) {
		timeout := int64(time.Until(deadline).Seconds()) + 1
		w, err := env.Client.CoreV1().Pods(ns).Watch(env.Ctx, metav1.ListOptions{ResourceVersion: rv, TimeoutSeconds: &timeout})
		if err != nil {
			t.Fatal(err)
		}
		timer := time.NewTimer(time.Until(deadline))
	loop:
		for {
			select {
			case <-timer.C:
				break loop
			case ev, ok := <-w.ResultChan():
				if !ok {
					break loop
				}
				p, isPod := ev.Object.(*v1.Pod)
				if !isPod {
					t.Fatalf("watch error: %v", ev.Object)
				}
				rv = p.ResourceVersion
				podEvents++
				now := [2]string{p.Annotations[wellknown.PodDeletionCostAnnotation], p.Annotations[wellknown.ManagedDeletionCostAnnotation]}
				if ev.Type != watch.Deleted && now != last[p.UID] {
					costChanges++
					t.Logf("%s pod %s: deletion cost %v -> %v", ev.Type, p.Name, last[p.UID], now)
				}
				last[p.UID] = now
			}
		}
		timer.Stop()
		w.Stop()
	}
	writes := ctrl.writes() - writesBefore
	t.Logf("steady state over %s: %v controller writes (metric), %d deletion-cost changes and %d pod events seen by a watch", window, writes, costChanges, podEvents)
	if writes != 0 || costChanges != 0 {
		t.Fatalf("the controller wrote in steady state: %v writes, %d deletion-cost changes", writes, costChanges)
	}
}
