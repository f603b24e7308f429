package integration

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

const (
	placeholderClass = "placeholder" // -10, never preempts
	batchClass       = "batch"       // 10: a real, low-priority workload
	criticalClass    = "critical"    // 1000
)

// preemptedEvents returns victim name -> preemptor name from the Preempted events in ns.
func preemptedEvents(env *framework.Env) map[string]string {
	env.T.Helper()
	events := env.Events(ns, "reason=Preempted")
	out := map[string]string{}
	for _, e := range events {
		related := ""
		if e.Related != nil {
			related = e.Related.Name
		}
		out[e.InvolvedObject.Name] = related
	}
	return out
}

// TestPreemptPlaceholdersOnSpot: placeholders fill spot and on-demand nodes; a real pod that
// fits nowhere displaces a placeholder on a spot node, not on on-demand; the victim gets a
// Preempted event naming the preemptor; the displaced placeholder's replacement goes Pending.
func TestPreemptPlaceholdersOnSpot(t *testing.T) {
	env := startWithScheduler(t, true)
	createPriorityClasses(env)
	env.CreateNodes(
		framework.Node("spot-1", "2", framework.SpotLabels), framework.Node("spot-2", "2", framework.SpotLabels),
		framework.Node("ondemand-1", "2", framework.OnDemandLabels), framework.Node("ondemand-2", "2", framework.OnDemandLabels),
	)
	for _, d := range []*appsv1.Deployment{
		placeholderDeployment("headroom-spot", 4, framework.SpotLabels),
		placeholderDeployment("headroom-od", 4, framework.OnDemandLabels),
	} {
		if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitAllBound(env, "headroom-spot", 4)
	waitAllBound(env, "headroom-od", 4)
	before := map[string]string{} // placeholder name -> node
	for _, p := range append(podsOf(env, "app=headroom-spot"), podsOf(env, "app=headroom-od")...) {
		before[p.Name] = p.Spec.NodeName
	}

	web := framework.Pod(ns, "web", "1", nil)
	node := createPod(env, web)
	if node != "spot-1" && node != "spot-2" {
		t.Fatalf("real pod bound to %s, want a spot node", node)
	}
	var victims []string
	env.WaitFor("a Preempted event", 30*time.Second, func(context.Context) (bool, error) {
		victims = nil
		for victim, preemptor := range preemptedEvents(env) {
			if preemptor != "web" {
				return false, fmt.Errorf("victim %s names preemptor %q, want web", victim, preemptor)
			}
			victims = append(victims, victim)
		}
		return len(victims) > 0, nil
	})
	if len(victims) != 1 {
		t.Fatalf("victims %v, want exactly one (the pod needs 1 CPU)", victims)
	}
	if before[victims[0]] != node {
		t.Fatalf("victim %s was on %s, the preemptor landed on %s", victims[0], before[victims[0]], node)
	}
	for _, p := range podsOf(env, "app=headroom-od") {
		if before[p.Name] == "" {
			t.Fatalf("on-demand placeholder %s is new: an on-demand placeholder was preempted", p.Name)
		}
	}
	env.WaitFor("the replacement placeholder Pending", 30*time.Second, func(context.Context) (bool, error) {
		pending := 0
		for _, p := range podsOf(env, "app=headroom-spot") {
			if p.Spec.NodeName == "" && isUnschedulable(&p) {
				pending++
			}
		}
		return pending == 1, nil
	})
}

// startPlaceholderOnlyScheduler runs the shipped example with DefaultPreemption switched off.
func startPlaceholderOnlyScheduler(t *testing.T) *framework.Env {
	env := framework.Start(t, localcluster.Options{})
	env.CreateNamespace(ns)
	env.StartScheduler("spot-scheduler", framework.RepoFile(t, "manifests/examples/scheduler-config-placeholder-only.yaml"))
	createPriorityClasses(env)
	return env
}

// boundPod creates a pod already bound to node (as the scheduler would have) with a priority class.
func boundPod(env *framework.Env, name, node, cpu, class string, labels map[string]string) {
	env.T.Helper()
	p := framework.Pod(ns, name, cpu, labels)
	p.Spec.NodeName = node
	p.Spec.PriorityClassName = class
	env.CreateBoundPods(p)
}

// createUnschedulable creates a pod of that priority class and waits until the scheduler has
// found it unschedulable.
func createUnschedulable(env *framework.Env, name, cpu, class string) {
	env.T.Helper()
	p := framework.Pod(ns, name, cpu, nil)
	p.Spec.PriorityClassName = class
	if _, err := env.Client.CoreV1().Pods(ns).Create(env.Ctx, p, metav1.CreateOptions{}); err != nil {
		env.T.Fatal(err)
	}
	env.WaitFor(name+" found unschedulable", 30*time.Second, func(ctx context.Context) (bool, error) {
		p, err := env.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && isUnschedulable(p), err
	})
}

func podExists(env *framework.Env, name string) bool {
	env.T.Helper()
	p, err := env.Client.CoreV1().Pods(ns).Get(env.Ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		env.T.Fatal(err)
	}
	return p.DeletionTimestamp == nil
}

// TestPreemptNeverRealPods: placeholder preemption takes the placeholder beside a
// lower-priority real pod and never the real pod, even when that leaves the preemptor Pending.
func TestPreemptNeverRealPods(t *testing.T) {
	env := startPlaceholderOnlyScheduler(t)
	env.CreateNodes(framework.Node("spot-1", "2", framework.SpotLabels))
	boundPod(env, "batch", "spot-1", "1", batchClass, nil)
	boundPod(env, "headroom", "spot-1", "1", placeholderClass, map[string]string{"spot-scheduler.io/placeholder": "true"})

	first := framework.Pod(ns, "critical-1", "1", nil)
	first.Spec.PriorityClassName = criticalClass
	if got := createPod(env, first); got != "spot-1" {
		t.Fatalf("critical-1 bound to %s", got)
	}
	if podExists(env, "headroom") {
		t.Fatal("the placeholder survived")
	}
	createUnschedulable(env, "critical-2", "1", criticalClass)
	if !podExists(env, "batch") {
		t.Fatal("placeholder preemption took the real batch pod")
	}
}

// TestPreemptFallsBackToPriorityPreemption: with the shipped profile, standard priority
// preemption remains the last resort once no placeholder can make room.
func TestPreemptFallsBackToPriorityPreemption(t *testing.T) {
	env := startWithScheduler(t, false)
	createPriorityClasses(env)
	env.CreateNodes(framework.Node("spot-1", "1", framework.SpotLabels))
	boundPod(env, "batch", "spot-1", "1", batchClass, nil)
	critical := framework.Pod(ns, "critical", "1", nil)
	critical.Spec.PriorityClassName = criticalClass
	if _, err := env.Client.CoreV1().Pods(ns).Create(env.Ctx, critical, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := env.WaitPodBound(ns, "critical", 60*time.Second); got != "spot-1" {
		t.Fatalf("critical bound to %s", got)
	}
	if podExists(env, "batch") {
		t.Fatal("batch pod still there: DefaultPreemption did not act as the last resort")
	}
}

// TestPreemptDeterministic: two identical clusters built from scratch lose the same
// placeholders to the same preemptor.
func TestPreemptDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test") // the clusters run in subtests, whose skip the comparison below would not see
	}
	run := func(t *testing.T) (string, []string) {
		env := startPlaceholderOnlyScheduler(t)
		var nodes []*v1.Node
		for _, n := range []string{"spot-c", "spot-a", "spot-b"} {
			nodes = append(nodes, framework.Node(n, "3", framework.SpotLabels))
		}
		nodes = append(nodes, framework.Node("ondemand-1", "3", framework.OnDemandLabels))
		env.CreateNodes(nodes...)
		never := v1.PreemptNever
		for _, prio := range []int32{-20, -30} {
			pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("placeholder%d", prio)}, Value: prio, PreemptionPolicy: &never}
			if _, err := env.Client.SchedulingV1().PriorityClasses().Create(env.Ctx, pc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		// Every node holds three 1-CPU placeholders of priorities -10, -20, -30.
		var placeholders []*v1.Pod
		for _, n := range nodes {
			for i, class := range []string{placeholderClass, "placeholder-20", "placeholder-30"} {
				p := framework.Pod(ns, fmt.Sprintf("%s-p%d", n.Name, i), "1", map[string]string{"spot-scheduler.io/placeholder": "true"})
				p.Spec.NodeName = n.Name
				p.Spec.PriorityClassName = class
				placeholders = append(placeholders, p)
			}
		}
		env.CreateBoundPods(placeholders...)
		node := createPod(env, framework.Pod(ns, "web", "2", nil))
		var victims []string
		env.WaitFor("two placeholders gone", 30*time.Second, func(context.Context) (bool, error) {
			victims = nil
			for _, n := range nodes {
				for i := 0; i < 3; i++ {
					if name := fmt.Sprintf("%s-p%d", n.Name, i); !podExists(env, name) {
						victims = append(victims, name)
					}
				}
			}
			return len(victims) >= 2, nil
		})
		sort.Strings(victims)
		return node, victims
	}
	var nodes [2]string
	var victims [2][]string
	for i := range nodes {
		t.Run(fmt.Sprintf("cluster-%d", i+1), func(t *testing.T) { nodes[i], victims[i] = run(t) })
	}
	if t.Failed() {
		return // a cluster failed: its zero results compare to nothing
	}
	if nodes[0] != "spot-a" || fmt.Sprint(victims[0]) != "[spot-a-p1 spot-a-p2]" {
		t.Errorf("first cluster: node %s victims %v, want spot-a [spot-a-p1 spot-a-p2] (lowest priorities on the first spot node by name)", nodes[0], victims[0])
	}
	if nodes[0] != nodes[1] || fmt.Sprint(victims[0]) != fmt.Sprint(victims[1]) {
		t.Errorf("clusters disagree: %s %v vs %s %v", nodes[0], victims[0], nodes[1], victims[1])
	}
}

// TestPreemptHeadroomBeforeWorseTier: a new pod displaces placeholders holding room on spot
// rather than take free room on on-demand: that is what spot headroom is for.
func TestPreemptHeadroomBeforeWorseTier(t *testing.T) {
	env := startWithScheduler(t, true)
	createPriorityClasses(env)
	env.CreateNodes(framework.Node("spot-1", "2", framework.SpotLabels), framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, placeholderDeployment("headroom", 2, framework.SpotLabels), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAllBound(env, "headroom", 2)
	if got := createPod(env, framework.Pod(ns, "web", "1", nil)); got != "spot-1" {
		t.Fatalf("web bound to %s, want spot-1 (placeholder room on spot beats free on-demand room)", got)
	}
	if victims := preemptedEvents(env); len(victims) != 1 {
		t.Fatalf("victims %v, want exactly one placeholder", victims)
	}
}
