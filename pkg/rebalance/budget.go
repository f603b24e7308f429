package rebalance

import (
	v1 "k8s.io/api/core/v1"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// Disruption budgets (docs/design.md, "Disruption budgets"): a workload may have at most its
// budget of desired replicas unavailable while the rebalancer moves it, counting every pod
// that is not Ready (an evicted pod whose replacement is not Ready yet, and any other), so
// that a move never takes a workload below desired - budget Ready replicas; PDBs apply on top
// through the Eviction API. Cluster-wide, at most MaxEvictionsInFlight evictions may await
// Ready replacements, to protect the API server and the scheduler.

// Disruptions is what the budgets count beyond the pods given to PlanMoves: the controller's
// view of the workloads' desired sizes and of its own evictions. The zero value (or nil)
// counts a workload's pods as its desired size and nothing in flight.
type Disruptions struct {
	// Replicas returns the desired replicas of the workload owning pod (its controller's
	// spec.replicas); false when unknown, and the workload's active pods are counted instead.
	Replicas func(pod *v1.Pod) (int, bool)
	// Unseen counts, per workload key, evictions issued whose pods still look available in the
	// pods given (the informer has not shown them terminating yet).
	Unseen map[string]int
	// InFlight counts evictions issued cluster-wide whose workloads have not recovered yet.
	InFlight int
}

// workloadBudget is one workload's disruption budget in a pass.
type workloadBudget struct {
	// desired and ready replicas; unavailable = desired - ready + unseen evictions.
	desired, ready, unavailable int
	// budget: pods the workload may have unavailable at once.
	budget int
	// invalid names an unreadable budget annotation (read as 0: the workload does not move).
	invalid error
}

// allowance is how many more of the workload's pods may be evicted now.
func (b *workloadBudget) allowance() int { return max(b.budget-b.unavailable, 0) }

// workloadCounts are a workload's active and Ready pods.
type workloadCounts struct{ active, ready int }

// countWorkloads counts every workload's active (not terminating, not finished) and Ready pods.
func countWorkloads(pods []*v1.Pod) map[string]workloadCounts {
	out := map[string]workloadCounts{}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
			continue
		}
		w, ok := capacity.WorkloadKey(pod)
		if !ok {
			continue
		}
		c := out[w]
		c.active++
		if podutil.IsPodReady(pod) {
			c.ready++
		}
		out[w] = c
	}
	return out
}

// budgetOf returns the disruption budget of pod's workload in this pass (computed once per
// workload, from the first of its pods asked about).
func (pl *planner) budgetOf(pod *v1.Pod) *workloadBudget {
	w, _ := capacity.WorkloadKey(pod)
	if b, ok := pl.budgets[w]; ok {
		return b
	}
	counts := pl.counts[w]
	b := &workloadBudget{desired: counts.active, ready: counts.ready}
	if pl.disruptions.Replicas != nil {
		if n, ok := pl.disruptions.Replicas(pod); ok {
			b.desired = n
		}
	}
	b.unavailable = max(b.desired-b.ready, 0) + pl.disruptions.Unseen[w]
	share := pl.opts.DisruptionBudget
	if v, ok := pod.Annotations[wellknown.DisruptionBudgetAnnotation]; ok {
		parsed, err := wellknown.ParseDisruptionBudget(v)
		if err != nil {
			b.invalid = &wellknown.InvalidValueError{Kind: "annotation", Key: wellknown.DisruptionBudgetAnnotation, Value: v,
				Allowed: wellknown.AllowedDisruptionBudgetValues, Reading: "read as 0: the rebalancer does not move the workload"}
		}
		share = parsed // the zero value (0) when invalid
	}
	b.budget = wellknown.DisruptionBudget(share, b.desired)
	pl.budgets[w] = b
	return b
}

// inFlightLeft is how many more evictions the cluster-wide limit allows in this pass.
func (pl *planner) inFlightLeft() int {
	return pl.opts.MaxEvictionsInFlight - pl.disruptions.InFlight - pl.evictions
}
