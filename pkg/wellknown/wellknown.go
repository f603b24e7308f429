// Package wellknown names the labels and annotations spot-scheduler reads and writes on pods,
// so every component spells them the same way.
package wellknown

const (
	// SchedulerName is the default spec.schedulerName that opts a workload in.
	SchedulerName = "spot-scheduler"

	// AvoidSpotAnnotation set to "true" on a pod ranks reclaimable tiers below the next
	// non-reclaimable tier for that pod (stateful singletons). Hard exclusion stays the job of
	// taints and affinity.
	AvoidSpotAnnotation = "spot-scheduler.io/avoid-spot"

	// PlaceholderLabel set to "true" marks a headroom pod that real pods may preempt.
	PlaceholderLabel = "spot-scheduler.io/placeholder"

	// RebalanceAnnotation set to "false" keeps the rebalancer away from a pod.
	RebalanceAnnotation = "spot-scheduler.io/rebalance"
)

// IsTrue reports whether an annotation or label value means true.
func IsTrue(v string) bool { return v == "true" }
