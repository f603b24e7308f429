package deletioncost

import (
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Metric label values are bounded: operation is set|remove, result is
// success|conflict|not_found|error, result of a sync is
// success|error, reason is one of the Skip* constants.
var (
	writesTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "spot_scheduler",
		Name:           "deletion_cost_writes_total",
		Help:           "Pod writes (patches) made by the deletion-cost controller, by operation (set, remove) and result: a pod's deletion cost, with or without the do-not-disrupt of a capacity policy's replicas, or that protection alone.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"operation", "result"})
	skipsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "spot_scheduler",
		Name:           "deletion_cost_skips_total",
		Help:           "Pods the deletion-cost controller left alone when it evaluated them, by reason.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	yieldedGauge = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace:      "spot_scheduler",
		Name:           "deletion_cost_yielded",
		Help:           "1 when the deletion-cost controller found Karpenter writing pod deletion costs (its PodDeletionCostManagement feature gate) and stopped writing its own, else 0.",
		StabilityLevel: metrics.ALPHA,
	})
	syncsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "spot_scheduler",
		Name:           "deletion_cost_syncs_total",
		Help:           "Work items (workloads or single pods) the deletion-cost controller reconciled, by result (success, error).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
)

func init() {
	legacyregistry.MustRegister(writesTotal, skipsTotal, syncsTotal, yieldedGauge)
}
