package rebalance

import (
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Metrics. Every label is bounded: tiers by configuration (at most 10), reasons by the Skip*
// constants, results by two values.
var (
	passesTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "spot_scheduler", Subsystem: "rebalance", Name: "passes_total",
		Help: "Rebalancer passes by result (ok, error).", StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	evictionsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "spot_scheduler", Subsystem: "rebalance", Name: "evictions_total",
		Help: "Pods evicted to move them to a better capacity tier, by source and target tier.", StabilityLevel: metrics.ALPHA,
	}, []string{"from_tier", "to_tier"})
	skipsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "spot_scheduler", Subsystem: "rebalance", Name: "skips_total",
		Help: "Pods on a worse tier left in place, by reason.", StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	passPanicsTotal = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: "spot_scheduler", Subsystem: "rebalance", Name: "pass_panics_total",
		Help: "Rebalancer passes that panicked (logged with their stack; the loop goes on).", StabilityLevel: metrics.ALPHA,
	})
	plannedMoves = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Subsystem: "rebalance", Name: "planned_moves",
		Help: "Moves planned by the last pass (also in dry-run mode).", StabilityLevel: metrics.ALPHA,
	})
	evictionsInFlight = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Subsystem: "rebalance", Name: "evictions_in_flight",
		Help: "The rebalancer's evictions whose workloads have not recovered yet (not every desired replica Ready), as of the last plan; bounded by --max-evictions-in-flight.", StabilityLevel: metrics.ALPHA,
	})
	planDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: "spot_scheduler", Subsystem: "rebalance", Name: "plan_duration_seconds",
		Help: "Time to plan one pass.", Buckets: metrics.ExponentialBuckets(0.001, 4, 10), StabilityLevel: metrics.ALPHA,
	})
	packedNodesTotal = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: "spot_scheduler", Subsystem: "rebalance", Name: "packed_nodes_total",
		Help: "Nodes the rebalancer tainted to empty them onto other nodes of their tier (--pack-within-tier).", StabilityLevel: metrics.ALPHA,
	})
	packingReleasedTotal = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: "spot_scheduler", Subsystem: "rebalance", Name: "packing_released_total",
		Help: "Packing taints the rebalancer removed because a pod needed the room or the node kept pods.", StabilityLevel: metrics.ALPHA,
	})
	podsPerTier = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Name: "pods",
		Help: "Running pods of spot-scheduler's profile per capacity tier and risk, as of the last pass.", StabilityLevel: metrics.ALPHA,
	}, []string{"tier", "at_risk"})
)

func init() {
	legacyregistry.MustRegister(passesTotal, passPanicsTotal, packedNodesTotal, packingReleasedTotal, evictionsTotal, skipsTotal, plannedMoves, evictionsInFlight, planDuration, podsPerTier)
}

// allSkipReasons lists every skip reason, so that each series exists (at zero) from the start.
var allSkipReasons = []string{
	SkipNotRunning, SkipTerminating, SkipBarePod, SkipDaemonSet, SkipMirrorPod, SkipSystemCritical,
	SkipLocalStorage, SkipResourceClaims, SkipOptedOut, SkipDoNotDisrupt, SkipNotSafeToEvict,
	SkipTooYoung, SkipNoBetterRoom, SkipBudget, SkipInFlight, SkipPDB, SkipChanged,
	SkipEvictionFailure,
	SkipPolicy,
}

// initMetrics creates every bounded series at zero: dashboards and alerts see a 0, not nothing.
func initMetrics(tiers []string) {
	for _, r := range []string{"ok", "error"} {
		passesTotal.WithLabelValues(r)
	}
	for _, r := range allSkipReasons {
		skipsTotal.WithLabelValues(r)
	}
	for i, from := range tiers {
		for _, to := range tiers[:i] {
			evictionsTotal.WithLabelValues(from, to)
		}
	}
}
