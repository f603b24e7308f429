package integration

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// soakMinPodAge is the rebalancer's --min-pod-age in the soak: the cooldown within which a
// pod (the replacement of an evicted one included) must never be evicted.
const soakMinPodAge = 10 * time.Second

// soakInvariants watches pods and events while the soak runs and records every violation.
type soakInvariants struct {
	mu         sync.Mutex
	violations []string
	// figures
	evictions, preemptions int
	evictedUIDs            map[types.UID]time.Time
	created                map[types.UID]time.Time
	podLabels              map[types.UID]map[string]string
	podPriority            map[types.UID]int32
	// guardedOut counts evicted guarded pods not yet replaced by a Ready one.
	guardedOut, guardedMaxOut int
	guardedReady              map[types.UID]bool
}

func (s *soakInvariants) violate(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

func (s *soakInvariants) pod(p *v1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.created[p.UID]; !ok {
		s.created[p.UID] = p.CreationTimestamp.Time
		s.podLabels[p.UID] = p.Labels
		s.podPriority[p.UID] = ptr.Deref(p.Spec.Priority, 0)
	}
	if p.Labels["app"] == "guarded" && podReady(p) && p.DeletionTimestamp == nil && !s.guardedReady[p.UID] {
		s.guardedReady[p.UID] = true
		if s.guardedOut > 0 {
			s.guardedOut--
		}
	}
}

func (s *soakInvariants) event(e *v1.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	uid := e.InvolvedObject.UID
	switch e.Reason {
	case "Rebalanced":
		s.evictions++
		at := e.EventTime.Time
		if at.IsZero() {
			at = e.CreationTimestamp.Time
		}
		if prev, ok := s.evictedUIDs[uid]; ok {
			s.violate("pod %s (uid %s) evicted twice: %s and %s", e.InvolvedObject.Name, uid, prev, at)
		}
		s.evictedUIDs[uid] = at
		if created, ok := s.created[uid]; ok && at.Sub(created) < soakMinPodAge-time.Second {
			s.violate("pod %s evicted %s after its creation, within the %s cooldown", e.InvolvedObject.Name, at.Sub(created), soakMinPodAge)
		}
		switch app := s.podLabels[uid]["app"]; app {
		case "keep", "bare":
			s.violate("protected pod %s (%s) evicted: %s", e.InvolvedObject.Name, app, e.Message)
		case "guarded":
			s.guardedOut++
			if s.guardedOut > s.guardedMaxOut {
				s.violate("PDB of guarded violated: %d evicted guarded pods not yet replaced (maxUnavailable %d)", s.guardedOut, s.guardedMaxOut)
			}
			delete(s.guardedReady, uid)
		}
	case "Preempted":
		s.preemptions++
		labels, known := s.podLabels[uid]
		if !known {
			s.violate("preempted pod %s never seen", e.InvolvedObject.Name)
		} else if labels[wellknown.PlaceholderLabel] != "true" && s.podPriority[uid] >= 0 {
			s.violate("real pod %s preempted: %s", e.InvolvedObject.Name, e.Message)
		}
	}
}

// TestReliabilitySoak churns a kwok cluster while the scheduler and the rebalancer (with the
// deletion-cost controller) run: spot nodes get an interruption notice (taint) and are
// reclaimed, new spot capacity arrives, workloads scale up and down, for $SOAK_DURATION
// (default 60s; `make soak` runs ~10 minutes) with a seeded RNG ($SOAK_SEED, logged). Checked
// continuously: no pod evicted twice or within the cooldown (--min-pod-age), no PDB violated,
// no protected pod evicted, no real pod preempted by the placeholder logic; and after the churn
// stops, every opted-in workload is fully Running again.
func TestReliabilitySoak(t *testing.T) {
	duration := 60 * time.Second
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_DURATION: %v", err)
		}
		duration = d
	}
	seed := time.Now().UnixNano()
	if v := os.Getenv("SOAK_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED: %v", err)
		}
		seed = s
	}
	t.Logf("soak: %s, seed %d (SOAK_SEED=%d reproduces the action sequence)", duration, seed, seed)
	rng := rand.New(rand.NewSource(seed))

	env := startWithScheduler(t, true)
	createPriorityClasses(env)
	env.CreateNodes(framework.Node("ondemand-1", "32", framework.OnDemandLabels),
		framework.Node("spot-0", "4", framework.SpotLabels), framework.Node("spot-1", "4", framework.SpotLabels))
	inv := &soakInvariants{evictedUIDs: map[types.UID]time.Time{}, created: map[types.UID]time.Time{}, podLabels: map[types.UID]map[string]string{},
		podPriority: map[types.UID]int32{}, guardedReady: map[types.UID]bool{}, guardedMaxOut: 1}

	// Watch before any workload exists, so every pod and event is seen.
	watchCtx, stopWatch := context.WithCancel(env.Ctx)
	defer stopWatch()
	var watchers sync.WaitGroup
	watchLoop := func(name string, start func(context.Context) (watch.Interface, error), handle func(watch.Event)) {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			for watchCtx.Err() == nil {
				w, err := start(watchCtx)
				if err != nil {
					time.Sleep(200 * time.Millisecond)
					continue
				}
				for ev := range w.ResultChan() {
					handle(ev)
				}
				w.Stop()
			}
		}()
	}
	seenEvents := map[types.UID]bool{}
	watchLoop("pods", func(ctx context.Context) (watch.Interface, error) {
		return env.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	}, func(ev watch.Event) {
		if p, ok := ev.Object.(*v1.Pod); ok {
			inv.pod(p)
		}
	})
	watchLoop("events", func(ctx context.Context) (watch.Interface, error) {
		return env.Client.CoreV1().Events(ns).Watch(ctx, metav1.ListOptions{})
	}, func(ev watch.Event) {
		if e, ok := ev.Object.(*v1.Event); ok && (ev.Type == watch.Added) && !seenEvents[e.UID] {
			seenEvents[e.UID] = true
			inv.event(e)
		}
	})

	// Workloads: two opted-in Deployments that scale, one behind a PDB, one protected
	// (do-not-disrupt), a bare pod, and placeholders holding spot headroom.
	createDeployment(env, framework.Deployment(ns, "web", 4, "1"))
	createDeployment(env, framework.Deployment(ns, "api", 3, "1"))
	createDeployment(env, framework.Deployment(ns, "guarded", 3, "1"))
	if _, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).Create(env.Ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "guarded"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(int32(inv.guardedMaxOut))),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	keep := framework.Deployment(ns, "keep", 2, "1")
	keep.Spec.Template.Annotations = map[string]string{"karpenter.sh/do-not-disrupt": "true"}
	createDeployment(env, keep)
	bare := framework.Pod(ns, "bare", "1", map[string]string{"app": "bare"})
	bare.Spec.NodeSelector = framework.OnDemandLabels // nothing recreates it if its node goes
	createPod(env, bare)
	createDeployment(env, placeholderDeployment("headroom", 2, framework.SpotLabels))
	rb := startRebalancer(env, "--rebalance-interval=5s", "--min-pod-age="+soakMinPodAge.String())

	// Churn.
	spot := map[string]bool{"spot-0": true, "spot-1": true}
	next := 2
	replicas := map[string]int32{"web": 4, "api": 3}
	var reclaims, returns, scales int
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) {
		switch r := rng.Intn(10); {
		case r < 4 && len(spot) > 1: // reclaim with a notice
			names := make([]string, 0, len(spot))
			for n := range spot {
				names = append(names, n)
			}
			sort.Strings(names)
			victim := names[rng.Intn(len(names))]
			taintNode(env, victim, v1.Taint{Key: "aws-node-termination-handler/spot-itn", Effect: v1.TaintEffectNoSchedule})
			time.Sleep(time.Duration(1+rng.Intn(3)) * time.Second) // the notice period
			// As a cloud does: the Node goes, its pods stay bound to it until the pod garbage
			// collector removes them; the churn goes on meanwhile.
			if err := localcluster.Reclaim(env.Ctx, env.Client, victim); err != nil {
				t.Fatal(err)
			}
			delete(spot, victim)
			reclaims++
		case r < 7 && len(spot) < 5: // capacity returns
			name := fmt.Sprintf("spot-%d", next)
			next++
			env.CreateNodes(framework.Node(name, strconv.Itoa(2+rng.Intn(3)), framework.SpotLabels))
			spot[name] = true
			returns++
		default: // scale
			app := []string{"web", "api"}[rng.Intn(2)]
			replicas[app] = int32(1 + rng.Intn(7))
			scaleTo(env, app, replicas[app])
			scales++
		}
		time.Sleep(time.Duration(1000+rng.Intn(2000)) * time.Millisecond)
	}
	t.Logf("churn stopped: %d reclaims (with notice), %d spot nodes returned, %d scale changes; spot nodes now %d", reclaims, returns, scales, len(spot))

	// After the churn: everything opted in is Running again.
	// Orphans of the last reclaims live until the pod garbage collector removes them.
	env.WaitFor("every workload Running again", 3*time.Minute+localcluster.OrphanLifetime, func(ctx context.Context) (bool, error) {
		nodes, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		exists := map[string]bool{}
		for _, n := range nodes.Items {
			exists[n.Name] = true
		}
		for app, want := range map[string]int32{"web": replicas["web"], "api": replicas["api"], "guarded": 3, "keep": 2, "bare": 1} {
			running := int32(0)
			for _, p := range podsOf(env, "app="+app) {
				if !exists[p.Spec.NodeName] {
					return false, nil // bound to a reclaimed node: not yet replaced
				}
				if p.DeletionTimestamp == nil && p.Status.Phase == v1.PodRunning {
					running++
				} else if p.DeletionTimestamp == nil {
					return false, nil
				}
			}
			if running != want {
				return false, nil
			}
		}
		return true, nil
	})
	// Let the rebalancer finish moving back to spot what it can, then stop watching.
	rb.waitPasses(2)
	stopWatch()
	watchers.Wait()

	inv.mu.Lock()
	defer inv.mu.Unlock()
	t.Logf("soak figures: seed %d, %s of churn: %d reclaims, %d returns, %d scale changes; %d evictions (metric %v), %d placeholder preemptions, %d pods seen; violations = %d",
		seed, duration, reclaims, returns, scales, inv.evictions, rb.evictions(), inv.preemptions, len(inv.created), len(inv.violations))
	for _, v := range inv.violations {
		t.Errorf("violation: %s", v)
	}
}
