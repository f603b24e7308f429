package integration

// The failback buffer with the real Karpenter: after every spot node is reclaimed and the pods
// failed over to on-demand, nothing but the buffer asks Karpenter for spot again (no standing
// placeholders here; the on-demand NodePool consolidates only empty nodes, so Karpenter's own
// consolidation, TestKarpenterOwnConsolidationFailback, does not move pods either).

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// bufferNamespace is the rebalancer's namespace in these tests, enforcing the restricted Pod
// Security level as the chart's namespace does (docs/install.md): the buffer's pods pass it.
const bufferNamespace = "spot-system"

// failbackBound bounds the failback with the buffer, and is the time the test without it
// watches for any pod going back to spot.
const failbackBound = 2 * time.Minute

// failedOverToOnDemand runs web (6 pods of 1 CPU) on Karpenter's spot nodes with no standing
// placeholders, starts the rebalancer with args, then makes spot unavailable (the spot
// NodePool's limit 0) and reclaims every spot node: web fails over to on-demand nodes that
// Karpenter launches. It returns once all of web runs on on-demand.
func failedOverToOnDemand(t *testing.T, args ...string) (*framework.Env, *rebalancer) {
	t.Helper()
	env := startKarpenterEnv(t, []localcluster.NodePool{
		pool("spot", localcluster.CapacityTypeSpot, 100, localcluster.ConsolidateWhenEmpty, "c-4x"),
		pool("on-demand", localcluster.CapacityTypeOnDemand, 10, localcluster.ConsolidateWhenEmpty, "c-4x"),
	})
	chartBufferObjects(env)
	createDeployment(env, framework.Deployment(ns, "web", 6, "1"))
	waitAppOn(env, "web", 6, karpenterWait, localcluster.CapacityTypeSpot)
	rb := startRebalancer(env, append([]string{"--failback-buffer-namespace=" + bufferNamespace}, args...)...)

	if err := env.Karpenter.SetNodePoolCPULimit(env.Ctx, "spot", "0"); err != nil {
		t.Fatal(err)
	}
	reclaimed := time.Now()
	for _, n := range nodeNames(karpenterNodes(env)[localcluster.CapacityTypeSpot]) {
		if err := env.Karpenter.Interrupt(env.Ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	waitAppOn(env, "web", 6, karpenterWait, localcluster.CapacityTypeOnDemand)
	t.Logf("spot reclaimed: all 6 pods on on-demand %s later (nodes %v)", time.Since(reclaimed).Round(time.Millisecond),
		nodeNames(karpenterNodes(env)[localcluster.CapacityTypeOnDemand]))
	return env, rb
}

// chartBufferObjects creates what the chart creates for the buffer: its namespace (restricted
// Pod Security) and rebalancer.failback.buffer.priorityClass.
func chartBufferObjects(env *framework.Env) {
	env.T.Helper()
	chartCreateRestrictedNamespace(env, bufferNamespace)
	never := v1.PreemptNever
	if _, err := env.Client.SchedulingV1().PriorityClasses().Create(env.Ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: wellknown.FailbackBufferPriorityClass}, Value: -10, PreemptionPolicy: &never,
	}, metav1.CreateOptions{}); err != nil {
		env.T.Fatal(err)
	}
}

// bufferPods lists the failback buffer's pods that are not terminating.
func bufferPods(env *framework.Env) []v1.Pod {
	env.T.Helper()
	list, err := env.Client.CoreV1().Pods(bufferNamespace).List(env.Ctx, metav1.ListOptions{LabelSelector: wellknown.FailbackBufferLabel + "=true"})
	if err != nil {
		env.T.Fatal(err)
	}
	var out []v1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// pinnedToSpot: the pod's required node affinity admits Karpenter's spot nodes only.
func pinnedToSpot(p *v1.Pod) bool {
	a := p.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for _, term := range terms {
		spot := false
		for _, e := range term.MatchExpressions {
			spot = spot || (e.Key == localcluster.KarpenterCapacityTypeLabel && e.Operator == v1.NodeSelectorOpIn &&
				len(e.Values) == 1 && e.Values[0] == localcluster.CapacityTypeSpot)
		}
		if !spot {
			return false
		}
	}
	return len(terms) > 0
}

// TestFailbackBufferBringsSpotBack: once web has failed over to on-demand, the rebalancer keeps
// a buffer of 6 Pending placeholders (one per pod that would move back, 1 CPU each, pinned to
// spot, placeholder-labelled, negative priority, never preempting) while spot is unavailable;
// no spot node is launched for it then. When spot is allowed again, Karpenter launches spot
// for the buffer, the rebalancer moves every pod back into that room, the buffer is gone, and
// Karpenter removes the on-demand nodes the failback emptied; every spot node left holds web
// pods (no node was launched that nobody needed).
func TestFailbackBufferBringsSpotBack(t *testing.T) {
	env, rb := failedOverToOnDemand(t)
	var buffer []v1.Pod
	env.WaitFor("a failback buffer of 6 Pending placeholders pinned to spot", time.Minute, func(context.Context) (bool, error) {
		buffer = bufferPods(env)
		if len(buffer) != 6 {
			return false, nil
		}
		for i := range buffer {
			p := &buffer[i]
			if p.Spec.NodeName != "" || !isUnschedulable(p) {
				return false, nil
			}
		}
		return true, nil
	})
	for i := range buffer {
		p := &buffer[i]
		if !pinnedToSpot(p) || p.Labels[wellknown.PlaceholderLabel] != "true" || p.Spec.SchedulerName != wellknown.SchedulerName ||
			p.Spec.Priority == nil || *p.Spec.Priority >= 0 || p.Spec.PreemptionPolicy == nil || *p.Spec.PreemptionPolicy != v1.PreemptNever ||
			p.Spec.Containers[0].Resources.Requests.Cpu().String() != "1" {
			t.Fatalf("buffer pod %s: labels %v, affinity %+v, scheduler %q, priority %v, preemption %v, requests %v; want a placeholder pinned to spot, sized like a web pod",
				p.Name, p.Labels, p.Spec.Affinity, p.Spec.SchedulerName, p.Spec.Priority, p.Spec.PreemptionPolicy, p.Spec.Containers[0].Resources.Requests)
		}
	}
	if spot := karpenterNodes(env)[localcluster.CapacityTypeSpot]; len(spot) != 0 {
		t.Fatalf("spot nodes %v launched while the spot NodePool's limit is 0", nodeNames(spot))
	}
	if got := rb.metric(`spot_scheduler_failback_buffer_pods{state="pending"}`); got != 6 {
		t.Errorf("spot_scheduler_failback_buffer_pods{state=pending} = %v, want 6", got)
	}
	onDemand := nodeNames(karpenterNodes(env)[localcluster.CapacityTypeOnDemand])

	allowed := time.Now()
	if err := env.Karpenter.SetNodePoolCPULimit(env.Ctx, "spot", ""); err != nil {
		t.Fatal(err)
	}
	var firstSpot time.Duration
	env.WaitFor("Karpenter launches spot for the buffer", failbackBound, func(context.Context) (bool, error) {
		firstSpot = time.Since(allowed)
		return len(karpenterNodes(env)[localcluster.CapacityTypeSpot]) > 0, nil
	})
	waitAppOn(env, "web", 6, failbackBound, localcluster.CapacityTypeSpot)
	back := time.Since(allowed)
	env.WaitFor("the buffer is gone", time.Minute, func(context.Context) (bool, error) {
		return len(bufferPods(env)) == 0, nil
	})
	gone := time.Since(allowed)
	env.WaitFor("Karpenter removes the on-demand nodes failback emptied", karpenterWait, func(context.Context) (bool, error) {
		return len(karpenterNodes(env)[localcluster.CapacityTypeOnDemand]) == 0, nil
	})
	removed := time.Since(allowed)
	spot := karpenterNodes(env)[localcluster.CapacityTypeSpot]
	byNode, _ := env.ScheduledPods(ns, "app=web")
	for _, n := range spot {
		if byNode[n.Name] == 0 {
			t.Errorf("spot node %s holds no web pod: launched for room nobody used (web on %v)", n.Name, byNode)
		}
	}
	evicted := evictedPods(env)
	t.Logf("spot allowed again: first spot node %s later, all 6 pods back on spot after %s, buffer gone after %s, on-demand nodes %v removed after %s; spot nodes %v; rebalancer evictions %d (metric %v), Karpenter's (the reclaim) %d; buffer pods created %v, deleted %v (the rest preempted by the moving pods)",
		firstSpot.Round(time.Millisecond), back.Round(time.Millisecond), gone.Round(time.Millisecond), onDemand, removed.Round(time.Millisecond),
		nodeNames(spot), countWho(evicted, "rebalancer"), rb.evictions(), countWho(evicted, "karpenter"),
		rb.metric(`spot_scheduler_failback_buffer_writes_total{operation="create",result="ok"}`), rb.metric(`spot_scheduler_failback_buffer_writes_total{operation="delete",result="ok"}`))
	if n := countWho(evicted, "rebalancer"); n != 6 {
		t.Errorf("rebalancer moved %d pods, want the 6 on on-demand: %v", n, evicted)
	}
	if created := bufferEvents(env, "FailbackBufferCreated"); created != 6 {
		t.Errorf("%d FailbackBufferCreated events, want 6 (one per buffer pod, none created twice)", created)
	}
}

// TestFailbackBufferOffSpotStaysAway: the same failover with --failback-buffer=false: no
// buffer, and after spot is allowed again, for as long as the buffer took to bring every pod
// back at most (failbackBound), no spot node is launched and no pod goes back to spot. The
// buffer is what brings spot back.
func TestFailbackBufferOffSpotStaysAway(t *testing.T) {
	env, _ := failedOverToOnDemand(t, "--failback-buffer=false")
	if err := env.Karpenter.SetNodePoolCPULimit(env.Ctx, "spot", ""); err != nil {
		t.Fatal(err)
	}
	allowed := time.Now()
	var violation string
	err := wait.PollUntilContextTimeout(env.Ctx, time.Second, failbackBound, true, func(context.Context) (bool, error) {
		if b := bufferPods(env); len(b) != 0 {
			violation = fmt.Sprintf("%d buffer pods with the buffer off", len(b))
		}
		if spot := karpenterNodes(env)[localcluster.CapacityTypeSpot]; len(spot) != 0 {
			violation = fmt.Sprintf("spot nodes %v launched", nodeNames(spot))
		}
		return violation != "", nil
	})
	if err != nil && !wait.Interrupted(err) {
		t.Fatal(err)
	}
	if violation != "" {
		t.Fatalf("%s after %s, with the buffer off", violation, time.Since(allowed).Round(time.Millisecond))
	}
	byType := waitAppOn(env, "web", 6, time.Minute)
	if byType[localcluster.CapacityTypeSpot] != 0 {
		t.Fatalf("web by capacity type %v, want none on spot", byType)
	}
	t.Logf("buffer off: %s after spot was allowed again, web is still all on on-demand (%v), no spot node launched", time.Since(allowed).Round(time.Second), byType)
}

func countWho(evicted map[string]string, who string) int {
	n := 0
	for _, w := range evicted {
		if w == who {
			n++
		}
	}
	return n
}

// bufferEvents counts the events of the given reason on the buffer's pods.
func bufferEvents(env *framework.Env, reason string) int {
	env.T.Helper()
	n := 0
	for _, e := range env.Events(bufferNamespace, "") {
		if e.Reason == reason {
			n++
		}
	}
	return n
}

// TestFailbackBufferOnDemandBase: under Karpenter, a workload whose capacity policy wants its
// first replica on on-demand lands whole on spot when no on-demand node exists (the scheduler
// never keeps a pod Pending for its base, and a pod on spot asks Karpenter for nothing). The
// buffer then asks for on-demand room (a placeholder pinned off spot), Karpenter launches an
// on-demand node for it, and the rebalancer moves one replica there: the base holds, with one
// move, and the buffer is gone. The on-demand NodePool consolidates WhenEmptyOrUnderutilized,
// as docs/install.md recommends: to Karpenter the base pod's node is underutilized and the pod
// fits on spot, so the base pod carries karpenter.sh/do-not-disrupt (the deletion-cost
// controller's, marked as its own), Karpenter reports the node blocked by it, and the base
// stays.
func TestFailbackBufferOnDemandBase(t *testing.T) {
	env := startKarpenterEnv(t, []localcluster.NodePool{
		pool("spot", localcluster.CapacityTypeSpot, 100, localcluster.ConsolidateWhenEmpty, "c-4x"),
		pool("on-demand", localcluster.CapacityTypeOnDemand, 10, localcluster.ConsolidateWhenEmptyOrUnderutilized, "c-4x"),
	})
	chartBufferObjects(env)
	db := framework.Deployment(ns, "db", 3, "1")
	db.Spec.Template.Annotations = map[string]string{policy.OnDemandBaseAnnotation: "1"}
	createDeployment(env, db)
	waitAppOn(env, "db", 3, karpenterWait, localcluster.CapacityTypeSpot)
	if od := karpenterNodes(env)[localcluster.CapacityTypeOnDemand]; len(od) != 0 {
		t.Fatalf("on-demand nodes %v before the rebalancer runs: nothing should have asked for them", nodeNames(od))
	}
	rb := startRebalancer(env, "--failback-buffer-namespace="+bufferNamespace)
	started := time.Now()
	var asked time.Duration
	env.WaitFor("a buffer placeholder for db's base, pinned off spot", time.Minute, func(context.Context) (bool, error) {
		for _, p := range bufferPods(env) {
			if !pinnedToSpot(&p) && p.Spec.Affinity != nil {
				asked = time.Since(started)
				return true, nil
			}
		}
		return false, nil
	})
	byType := waitAppOnSplit(env, "db", map[string]int{localcluster.CapacityTypeOnDemand: 1, localcluster.CapacityTypeSpot: 2}, failbackBound)
	based := time.Since(started)
	env.WaitFor("the buffer is gone", time.Minute, func(context.Context) (bool, error) {
		return len(bufferPods(env)) == 0, nil
	})
	evicted := evictedPods(env)
	t.Logf("rebalancer started: buffer asked for on-demand after %s, db %v after %s (on-demand nodes %v), buffer gone after %s; rebalancer evictions %d",
		asked.Round(time.Millisecond), byType, based.Round(time.Millisecond), nodeNames(karpenterNodes(env)[localcluster.CapacityTypeOnDemand]),
		time.Since(started).Round(time.Millisecond), countWho(evicted, "rebalancer"))
	if n := countWho(evicted, "rebalancer"); n != 1 {
		t.Errorf("rebalancer moved %d pods, want 1 (the base): %v", n, evicted)
	}
	if got := rb.metric(`spot_scheduler_failback_buffer_pods{state="pending"}`); got != 0 {
		t.Errorf("spot_scheduler_failback_buffer_pods{state=pending} = %v after the base holds, want 0", got)
	}
	// Karpenter would consolidate the base pod's node onto spot: the pod is protected, and
	// Karpenter says so on the node.
	ct := capacityTypes(env)
	var basePod, baseNode string
	env.WaitFor("the base pod protected with the controller's karpenter.sh/do-not-disrupt", time.Minute, func(context.Context) (bool, error) {
		for _, p := range podsOf(env, "app=db") {
			if ct[p.Spec.NodeName] == localcluster.CapacityTypeOnDemand && p.DeletionTimestamp == nil {
				basePod, baseNode = p.Name, p.Spec.NodeName
				return p.Annotations[wellknown.KarpenterDoNotDisruptAnnotation] == "true" && p.Annotations[wellknown.ManagedDoNotDisruptAnnotation] != "", nil
			}
		}
		return false, nil
	})
	for _, p := range podsOf(env, "app=db") {
		if _, marked := p.Annotations[wellknown.ManagedDoNotDisruptAnnotation]; marked && p.Name != basePod {
			t.Errorf("pod %s on %s carries the controller's do-not-disrupt: only the base pod should", p.Name, ct[p.Spec.NodeName])
		}
	}
	env.WaitFor("Karpenter's DisruptionBlocked on the base pod's node, naming do-not-disrupt", 3*time.Minute, func(context.Context) (bool, error) {
		evs, err := env.Client.CoreV1().Events(metav1.NamespaceAll).List(env.Ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Node,involvedObject.name=" + baseNode})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "DisruptionBlocked" && strings.Contains(e.Message, wellknown.KarpenterDoNotDisruptAnnotation) {
				return true, nil
			}
		}
		return false, nil
	})
	if got := waitAppOnSplit(env, "db", map[string]int{localcluster.CapacityTypeOnDemand: 1, localcluster.CapacityTypeSpot: 2}, time.Minute); got[localcluster.CapacityTypeOnDemand] != 1 {
		t.Errorf("db %v after Karpenter's consolidation looked at it, want the base on on-demand", got)
	}
	if n := countWho(evictedPods(env), "karpenter"); n != 0 {
		t.Errorf("Karpenter evicted %d db pods: the protected base should keep its node", n)
	}
}

// waitAppOnSplit waits until app has exactly the wanted pods Running per capacity type, none
// Pending or terminating; it returns the count per capacity type.
func waitAppOnSplit(env *framework.Env, app string, want map[string]int, timeout time.Duration) map[string]int {
	env.T.Helper()
	var byType map[string]int
	env.WaitFor(fmt.Sprintf("pods of %s Running as %v", app, want), timeout, func(context.Context) (bool, error) {
		ct := capacityTypes(env)
		byType = map[string]int{}
		for _, p := range podsOf(env, "app="+app) {
			if p.DeletionTimestamp != nil || p.Spec.NodeName == "" || p.Status.Phase != v1.PodRunning {
				return false, nil
			}
			byType[ct[p.Spec.NodeName]]++
		}
		return maps.Equal(byType, want), nil
	})
	return byType
}
