package rebalance

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/component-base/metrics/testutil"
)

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLivenessFailsWhenTheLoopStalls: a leader whose loop completes no pass for three
// intervals is reported by its health check (so the kubelet's liveness probe restarts it); a
// loop that is not running (a standby) is healthy; the check recovers once a pass completes.
func TestLivenessFailsWhenTheLoopStalls(t *testing.T) {
	env := newControllerEnv(t, true)
	if err := env.ctrl.Check(nil); err != nil {
		t.Fatalf("standby (loop not running): %v, want healthy", err)
	}
	// Hold the simulator, as a pass stuck in a simulation would.
	sim := env.ctrl.sim
	held := sim.Begin(sim.NewSnapshot(nil, nil, false))
	ctx, cancel := context.WithCancel(env.ctx)
	done := make(chan struct{})
	go func() { env.ctrl.Run(ctx); close(done) }()
	defer func() { cancel(); held.End(); <-done }()
	waitUntil(t, "the loop runs", func() bool {
		env.ctrl.liveMu.Lock()
		defer env.ctrl.liveMu.Unlock()
		return env.ctrl.running
	})
	if err := env.ctrl.Check(nil); err != nil {
		t.Fatalf("right after start: %v, want healthy", err)
	}
	env.clock.Step(env.ctrl.stallAfter() - time.Second)
	if err := env.ctrl.Check(nil); err != nil {
		t.Fatalf("before three intervals: %v, want healthy", err)
	}
	env.clock.Step(2 * time.Second)
	err := env.ctrl.Check(nil)
	if err == nil || !strings.Contains(err.Error(), "no rebalance pass completed") {
		t.Fatalf("stalled loop: check = %v, want a failure naming the stall", err)
	}
	held.End() // the pass goes on and completes
	waitUntil(t, "the check recovers", func() bool { return env.ctrl.Check(nil) == nil })
}

// panickingPodLister stands for any cluster state a pass meets and does not survive.
type panickingPodLister struct{ corelisters.PodLister }

func (panickingPodLister) List(labels.Selector) ([]*v1.Pod, error) { panic("unforeseen state") }

// TestPanicInAPassDoesNotEndTheLoop: a panic inside a pass is recovered (counted, logged with
// its stack), the loop goes on to the next pass, and as no pass completes, the health check
// fails after three intervals.
func TestPanicInAPassDoesNotEndTheLoop(t *testing.T) {
	env := newControllerEnv(t, true)
	env.ctrl.pods = panickingPodLister{}
	before, _ := testutil.GetCounterMetricValue(passPanicsTotal)
	ctx, cancel := context.WithCancel(env.ctx)
	done := make(chan struct{})
	go func() { env.ctrl.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	panics := func() float64 { v, _ := testutil.GetCounterMetricValue(passPanicsTotal); return v - before }
	waitUntil(t, "the first pass panicked", func() bool { return panics() >= 1 })
	// The next pass is due one interval later: the loop is still there to run it.
	waitUntil(t, "the second pass is scheduled", func() bool { return env.clock.HasWaiters() })
	env.clock.Step(env.ctrl.opts.Interval)
	waitUntil(t, "the second pass panicked too", func() bool { return panics() >= 2 })
	select {
	case <-done:
		t.Fatal("the loop ended after a panic")
	default:
	}
	env.clock.Step(env.ctrl.stallAfter())
	if err := env.ctrl.Check(nil); err == nil {
		t.Fatal("no pass completed for three intervals, yet the check passes")
	}
}
