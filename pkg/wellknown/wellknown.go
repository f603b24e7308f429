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

	// PodDeletionCostAnnotation is the ReplicaSet controller's scale-in hint: pods with a lower
	// cost are deleted first.
	PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

	// ManagedDeletionCostAnnotation records the pod-deletion-cost value the deletion-cost
	// controller wrote. The controller owns a pod's deletion cost only while the two annotations
	// carry the same value (or the cost is absent); any other value was set by someone else and
	// is never touched.
	ManagedDeletionCostAnnotation = "spot-scheduler.io/managed-deletion-cost"

	// DeletionCostFieldManager is the field manager of the deletion-cost controller's writes.
	DeletionCostFieldManager = "spot-scheduler-deletion-cost"

	// RebalancerLeaseName is the Lease of the rebalancer binary (deletion-cost controller and
	// rebalancer), distinct from the scheduler's.
	RebalancerLeaseName = "spot-rebalancer"
)

// IsTrue reports whether an annotation or label value means true.
func IsTrue(v string) bool { return v == "true" }
