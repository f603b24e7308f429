package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/spot-scheduler/spot-scheduler/pkg/deletioncost"
	"github.com/spot-scheduler/spot-scheduler/pkg/rebalance"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// rebalanceFlags configure the failback rebalancer (pkg/rebalance).
type rebalanceFlags struct {
	enabled bool
	opts    rebalance.ControllerOptions
	budget  string // --disruption-budget, parsed by validate
}

func (r *rebalanceFlags) addFlags(fs *pflag.FlagSet) {
	r.opts = rebalance.DefaultControllerOptions()
	fs.BoolVar(&r.enabled, "rebalance", true, "Run the failback rebalancer (moves pods to better capacity tiers).")
	fs.BoolVar(&r.opts.DryRun, "dry-run", false, "Rebalancer: print each pass's plan and make no mutating call (no eviction, no event).")
	fs.DurationVar(&r.opts.Interval, "rebalance-interval", r.opts.Interval, "Rebalancer: time between periodic passes.")
	fs.DurationVar(&r.opts.Debounce, "rebalance-debounce", r.opts.Debounce, "Rebalancer: delay of the early pass after room appears on a better tier.")
	fs.DurationVar(&r.opts.ValidationDelay, "rebalance-validation-delay", r.opts.ValidationDelay, "Rebalancer: the plan is made again after this delay on fresh state; only moves found both times happen.")
	fs.DurationVar(&r.opts.MinPodAge, "min-pod-age", r.opts.MinPodAge, "Rebalancer: pods younger than this are not moved.")
	fs.BoolVar(&r.opts.AllowLocalStorage, "allow-local-storage", false, "Rebalancer: also move pods with emptyDir (on disk) or hostPath volumes (their data is lost).")
	fs.StringVar(&r.budget, "disruption-budget", r.opts.DisruptionBudget.String(), "Rebalancer: share of a workload's desired replicas that may be unavailable while it moves them ("+wellknown.AllowedDisruptionBudgetValues+"); the pod annotation "+wellknown.DisruptionBudgetAnnotation+" overrides it per workload.")
	fs.IntVar(&r.opts.MaxEvictionsInFlight, "max-evictions-in-flight", r.opts.MaxEvictionsInFlight, "Rebalancer: most evictions awaiting Ready replacements cluster-wide.")
	fs.BoolVar(&r.opts.PackWithinTier, "pack-within-tier", r.opts.PackWithinTier, "Rebalancer: when nothing moves to a better tier and no pod waits for a node, empty one node per pass whose pods the scheduler would place on the other nodes of its tier (taint "+wellknown.PackingTaintKey+":NoSchedule, then evictions within the disruption budgets), so that the autoscaler removes it (Karpenter: consolidationPolicy WhenEmpty or WhenEmptyOrUnderutilized).")
	fs.IntVar(&r.opts.EvictionWorkers, "eviction-workers", r.opts.EvictionWorkers, "Rebalancer: evictions issued at once (--kube-api-qps applies on top).")
	b := &r.opts.Buffer
	fs.BoolVar(&b.Enabled, "failback-buffer", b.Enabled, "Rebalancer: while pods that failed over would move back to a better reclaimable tier (spot) if room existed there, keep that many Pending placeholder pods pinned to that tier, sized like them, so that the autoscaler launches it; removed as failback completes. Off: the leader deletes the buffer's pods.")
	fs.IntVar(&b.MaxPods, "failback-buffer-max-pods", b.MaxPods, "Rebalancer: most pods in the failback buffer (the rest of the pods to move back get room as the first ones move).")
	fs.StringVar(&b.Namespace, "failback-buffer-namespace", b.Namespace, "Rebalancer: namespace of the failback buffer's pods (the rebalancer's own; it needs create, delete and list of pods there).")
	fs.StringVar(&b.PriorityClassName, "failback-buffer-priority-class", b.PriorityClassName, "Rebalancer: PriorityClass of the failback buffer's pods; it must exist, with a negative value (at least -10, cluster-autoscaler's expendable cut-off) and preemptionPolicy Never.")
	fs.StringVar(&b.Image, "failback-buffer-image", b.Image, "Rebalancer: image of the failback buffer's pods (a pause image; it runs only once a node has come up for it).")
	// The fixed counts the disruption budgets replaced: still accepted, so that an upgrade
	// does not fail on them, and ignored with a warning.
	for _, name := range []string{"max-evictions-per-pass", "max-evictions-per-node", "max-evictions-per-workload"} {
		fs.Int(name, 0, "")
		_ = fs.MarkDeprecated(name, "ignored: the rebalancer is bounded by --disruption-budget and --max-evictions-in-flight")
	}
}

func (r *rebalanceFlags) validate() []error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s: must be > 0, got %s", name, d))
		}
	}
	nonNegative := func(name string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("--%s: must be >= 0, got %s", name, d))
		}
	}
	positive("rebalance-interval", r.opts.Interval)
	nonNegative("rebalance-debounce", r.opts.Debounce)
	nonNegative("rebalance-validation-delay", r.opts.ValidationDelay)
	nonNegative("min-pod-age", r.opts.MinPodAge)
	if b, err := wellknown.ParseDisruptionBudget(r.budget); err != nil {
		errs = append(errs, fmt.Errorf("--disruption-budget: %v; allowed: %s", err, wellknown.AllowedDisruptionBudgetValues))
	} else {
		r.opts.DisruptionBudget = b
	}
	if r.opts.MaxEvictionsInFlight < 1 {
		errs = append(errs, fmt.Errorf("--max-evictions-in-flight: must be >= 1, got %d", r.opts.MaxEvictionsInFlight))
	}
	if r.opts.EvictionWorkers < 1 || r.opts.EvictionWorkers > 256 {
		errs = append(errs, fmt.Errorf("--eviction-workers: must be 1 to 256, got %d", r.opts.EvictionWorkers))
	}
	errs = append(errs, r.opts.Buffer.Validate()...)
	return errs
}

// deletionCostFlags configure the deletion-cost controller (pkg/deletioncost).
type deletionCostFlags struct {
	qps             float32
	burst           int
	workers         int
	protectReplicas bool
}

func (d *deletionCostFlags) addFlags(fs *pflag.FlagSet) {
	fs.Float32Var(&d.qps, "deletion-cost-qps", deletioncost.DefaultQPS, "Most pod deletion-cost writes per second (token bucket).")
	fs.IntVar(&d.burst, "deletion-cost-burst", deletioncost.DefaultBurst, "Burst of pod deletion-cost writes above --deletion-cost-qps.")
	fs.IntVar(&d.workers, "deletion-cost-workers", 2, "Workloads reconciled in parallel by the deletion-cost controller.")
	fs.BoolVar(&d.protectReplicas, "protect-policy-replicas", true, "Mark the replicas a capacity policy keeps on non-reclaimable capacity (its on-demand base and share) with karpenter.sh/do-not-disrupt while they run there, so that Karpenter's consolidation, which does not know the policy, does not move them to spot; the mark spot-scheduler.io/managed-do-not-disrupt records which ones the controller set (it removes only those).")
}

func (d *deletionCostFlags) validate() []error {
	var errs []error
	if !(d.qps > 0) {
		errs = append(errs, fmt.Errorf("--deletion-cost-qps: must be > 0, got %v", d.qps))
	}
	if d.burst < 1 {
		errs = append(errs, fmt.Errorf("--deletion-cost-burst: must be >= 1, got %d", d.burst))
	}
	if d.workers < 1 || d.workers > 64 {
		errs = append(errs, fmt.Errorf("--deletion-cost-workers: must be in 1..64, got %d", d.workers))
	}
	return errs
}
