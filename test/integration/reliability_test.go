package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// handoverLimit is how long a standby may take to lead after the leader is killed: the Lease
// duration (15 s, both components' default) plus one retry period, rounded up.
const handoverLimit = 20 * time.Second

const schedulerLease = "spot-scheduler"

// logLines returns the lines of a component's log that contain substr.
func logLines(t testing.TB, path, substr string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func acquiredLease(t testing.TB, p *localcluster.Process, lease string) bool {
	return len(logLines(t, p.Log, "successfully acquired lease kube-system/"+lease)) > 0
}

func leaseHolder(env *framework.Env, lease string) string {
	env.T.Helper()
	l, err := env.Client.CoordinationV1().Leases("kube-system").Get(env.Ctx, lease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		env.T.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// leaderOf waits until exactly one of the live processes has acquired the Lease and returns
// it with the other live ones.
func leaderOf(env *framework.Env, lease string, procs ...*localcluster.Process) (leader *localcluster.Process, standbys []*localcluster.Process) {
	env.T.Helper()
	env.WaitFor("one leader of "+lease, handoverLimit+10*time.Second, func(context.Context) (bool, error) {
		leader, standbys = nil, nil
		for _, p := range procs {
			if p.Exited() {
				continue
			}
			if acquiredLease(env.T, p, lease) {
				if leader != nil {
					return false, fmt.Errorf("both %s and %s acquired %s", leader.Name, p.Name, lease)
				}
				leader = p
			} else {
				standbys = append(standbys, p)
			}
		}
		return leader != nil && leaseHolder(env, lease) != "", nil
	})
	return leader, standbys
}

// handover stops the leader with sig and returns the standby that took the Lease over and
// how long that took (from the signal to the standby's "acquired" log line being seen).
func handover(env *framework.Env, lease string, leader *localcluster.Process, sig syscall.Signal, standbys ...*localcluster.Process) (*localcluster.Process, time.Duration) {
	env.T.Helper()
	before := leaseHolder(env, lease)
	start := time.Now()
	if err := leader.Signal(sig); err != nil {
		env.T.Fatal(err)
	}
	var next *localcluster.Process
	env.WaitFor(fmt.Sprintf("a standby leads %s after %s of %s", lease, sig, leader.Name), handoverLimit+10*time.Second, func(context.Context) (bool, error) {
		for _, p := range standbys {
			if !p.Exited() && acquiredLease(env.T, p, lease) {
				h := leaseHolder(env, lease)
				if h != "" && h != before {
					next = p
					return true, nil
				}
			}
		}
		return false, nil
	})
	return next, time.Since(start)
}

// boundBy counts the pods the scheduler's log says it bound.
func boundBy(t testing.TB, p *localcluster.Process) int {
	return len(logLines(t, p.Log, "Successfully bound pod to node"))
}

// evictedBy counts the pods the rebalancer's log says it evicted.
func evictedBy(t testing.TB, r *rebalancer) int {
	return len(logLines(t, r.log, "evicted pod to move it to a better tier"))
}

// TestReliabilityHA runs two schedulers and two rebalancers. Only the Lease holders bind and
// evict; SIGTERM of a leader exits 0 and releases its Lease (the standby leads within a retry
// period); SIGKILL of a leader hands over within the Lease duration (< 20 s); the Leases are
// spot-scheduler's own, never kube-system/kube-scheduler.
func TestReliabilityHA(t *testing.T) {
	env := framework.Start(t, localcluster.Options{ControllerManager: true})
	env.CreateNamespace(ns)
	env.CreateNodes(framework.Node("ondemand-1", "16", framework.OnDemandLabels))
	sched := []*localcluster.Process{env.StartScheduler("scheduler-a", ""), env.StartScheduler("scheduler-b", "")}
	rbs := map[*localcluster.Process]*rebalancer{}
	for _, name := range []string{"rebalancer-a", "rebalancer-b"} {
		r := startRebalancerAs(env, name, "--rebalance-interval=1h")
		rbs[r.proc] = r
	}
	rbProcs := func() []*localcluster.Process {
		var out []*localcluster.Process
		for p := range rbs {
			out = append(out, p)
		}
		return out
	}

	// Round 1: the first leaders bind and evict; the standbys do neither.
	schedLeader, schedStandbys := leaderOf(env, schedulerLease, sched...)
	rbLeaderProc, _ := leaderOf(env, wellknown.ControllerLeaseName, rbProcs()...)
	t.Logf("leaders: %s and %s", schedLeader.Name, rbLeaderProc.Name)
	failbackRound := func(round int, spotNode string) {
		t.Helper()
		app := fmt.Sprintf("web-%d", round)
		createDeployment(env, framework.Deployment(ns, app, 3, "1"))
		waitRunningOn(env, app, 3, "ondemand-1")
		// Exactly the workload's room: the earlier rounds' spot nodes stay full.
		env.CreateNodes(framework.Node(spotNode, "3", framework.SpotLabels))
		waitRunningOn(env, app, 3, spotNode)
	}
	failbackRound(1, "spot-1")
	checkOnlyLeaderActs := func(round int, schedLeader *localcluster.Process, rbLeader *rebalancer, wantEvicted int) {
		t.Helper()
		for _, p := range sched {
			if p != schedLeader && boundBy(t, p) > 0 && !p.Exited() {
				t.Errorf("round %d: standby %s bound pods", round, p.Name)
			}
		}
		if boundBy(t, schedLeader) == 0 {
			t.Errorf("round %d: leader %s bound nothing", round, schedLeader.Name)
		}
		for _, r := range rbs {
			if r != rbLeader && evictedBy(t, r) > 0 && !r.proc.Exited() {
				t.Errorf("round %d: standby %s evicted pods", round, r.proc.Name)
			}
		}
		if got := evictedBy(t, rbLeader); got != wantEvicted {
			t.Errorf("round %d: leader %s evicted %d pods, want %d", round, rbLeader.proc.Name, got, wantEvicted)
		}
	}
	checkOnlyLeaderActs(1, schedLeader, rbs[rbLeaderProc], 3)

	// SIGTERM: the leaders exit 0 and release their Leases; the standbys lead at their next
	// retry instead of waiting out the Lease duration.
	next, took := handover(env, schedulerLease, schedLeader, syscall.SIGTERM, schedStandbys...)
	if err := schedLeader.Wait(20 * time.Second); err != nil {
		t.Errorf("%s after SIGTERM: %v, want exit 0", schedLeader.Name, err)
	}
	t.Logf("scheduler SIGTERM: %s exited 0, %s leads %s later", schedLeader.Name, next.Name, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("scheduler handover after SIGTERM took %s: the Lease was not released", took)
	}
	schedLeader = next
	var rbStandbys []*localcluster.Process
	for _, p := range rbProcs() {
		if p != rbLeaderProc {
			rbStandbys = append(rbStandbys, p)
		}
	}
	nextRB, took := handover(env, wellknown.ControllerLeaseName, rbLeaderProc, syscall.SIGTERM, rbStandbys...)
	if err := rbLeaderProc.Wait(20 * time.Second); err != nil {
		t.Errorf("%s after SIGTERM: %v, want exit 0", rbLeaderProc.Name, err)
	}
	t.Logf("rebalancer SIGTERM: %s exited 0, %s leads %s later", rbLeaderProc.Name, nextRB.Name, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("rebalancer handover after SIGTERM took %s: the Lease was not released", took)
	}
	rbLeaderProc = nextRB

	// New standbys, then SIGKILL of the leaders: the standbys take over within the Lease
	// duration, and only the new leaders act.
	schedC := env.StartScheduler("scheduler-c", "")
	sched = append(sched, schedC)
	rc := startRebalancerAs(env, "rebalancer-c", "--rebalance-interval=1h")
	rbs[rc.proc] = rc
	boundBefore := boundBy(t, schedLeader)
	next, took = handover(env, schedulerLease, schedLeader, syscall.SIGKILL, schedC)
	t.Logf("scheduler SIGKILL: %s leads %s later", next.Name, took.Round(time.Millisecond))
	if took > handoverLimit {
		t.Errorf("scheduler handover after SIGKILL took %s, want <= %s", took, handoverLimit)
	}
	nextRB, took = handover(env, wellknown.ControllerLeaseName, rbLeaderProc, syscall.SIGKILL, rc.proc)
	t.Logf("rebalancer SIGKILL: %s leads %s later", nextRB.Name, took.Round(time.Millisecond))
	if took > handoverLimit {
		t.Errorf("rebalancer handover after SIGKILL took %s, want <= %s", took, handoverLimit)
	}
	_ = schedLeader.Wait(10 * time.Second)
	_ = rbLeaderProc.Wait(10 * time.Second)
	if schedLeader.Exited() && boundBy(t, schedLeader) != boundBefore {
		t.Errorf("%s bound pods after SIGKILL", schedLeader.Name)
	}
	failbackRound(2, "spot-2")
	if boundBy(t, next) == 0 {
		t.Errorf("the new scheduler leader %s bound nothing", next.Name)
	}
	if got := evictedBy(t, rbs[nextRB]); got != 3 {
		t.Errorf("the new rebalancer leader %s evicted %d pods, want 3", nextRB.Name, got)
	}
	// Every pod was evicted once, by one instance: 6 Rebalanced events for 6 moves.
	if e := rebalancedEvents(env); len(e) != 6 {
		t.Errorf("Rebalanced events %d, want 6: %v", len(e), e)
	}

	// Lease names: spot-scheduler's own; the default scheduler's is never created.
	leases, err := env.Client.CoordinationV1().Leases("").List(env.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range leases.Items {
		names = append(names, l.Namespace+"/"+l.Name)
		if l.Namespace == "kube-system" && l.Name == "kube-scheduler" {
			t.Errorf("Lease kube-system/kube-scheduler exists: spot-scheduler must never take the default scheduler's Lease")
		}
	}
	t.Logf("Leases: %v", names)
	for _, want := range []string{"kube-system/" + schedulerLease, "kube-system/" + wellknown.ControllerLeaseName} {
		if !chartContains(names, want) {
			t.Errorf("Lease %s missing (have %v)", want, names)
		}
	}
}
