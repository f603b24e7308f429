package rebalance

import (
	"fmt"
	"net/http"
	"time"
)

// The rebalancer's liveness: a leader whose loop has stopped passing must not look healthy,
// or failback silently stops for good. The controller is a healthz.HealthChecker for the
// binary's /livez and /healthz: it fails when the loop runs (this process leads) and no pass
// has completed for stallFactor intervals (plus the validation delay a pass may wait). A
// standby, whose loop does not run, is healthy.

// stallFactor is how many intervals without a completed pass make the loop stalled: one
// missed pass can be a slow API server; three is a loop that no longer turns.
const stallFactor = 3

// Name is the check's name in /livez and /healthz.
func (c *Controller) Name() string { return "rebalance-loop" }

// Check fails while the loop runs and has completed no pass for too long.
func (c *Controller) Check(_ *http.Request) error {
	c.liveMu.Lock()
	running, last := c.running, c.lastProgress
	c.liveMu.Unlock()
	if !running {
		return nil
	}
	if since := c.clock.Since(last); since > c.stallAfter() {
		return fmt.Errorf("no rebalance pass completed for %s (interval %s): the loop is stuck", since.Round(time.Second), c.opts.Interval)
	}
	return nil
}

func (c *Controller) stallAfter() time.Duration {
	return stallFactor*c.opts.Interval + c.opts.ValidationDelay
}

func (c *Controller) loopStarted() {
	c.liveMu.Lock()
	defer c.liveMu.Unlock()
	c.running, c.lastProgress = true, c.clock.Now()
}

func (c *Controller) passCompleted() {
	c.liveMu.Lock()
	defer c.liveMu.Unlock()
	c.lastProgress = c.clock.Now()
}

func (c *Controller) loopStopped() {
	c.liveMu.Lock()
	defer c.liveMu.Unlock()
	c.running = false
}
