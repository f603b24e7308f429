package preempt

import (
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Metrics, served on the scheduler's /metrics. Labels are bounded: outcome has three values.
var (
	attempts = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "spot_scheduler",
		Name:           "placeholder_preemption_attempts_total",
		Help:           "Placeholder preemption attempts by outcome (preempted, no_candidate, error).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"outcome"})
	victims = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      "spot_scheduler",
		Name:           "placeholder_preemption_victims_total",
		Help:           "Placeholder pods preempted to make room for real pods.",
		StabilityLevel: metrics.ALPHA,
	})
)

func init() {
	legacyregistry.MustRegister(attempts, victims)
}
