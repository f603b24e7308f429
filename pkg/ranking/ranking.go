// Package ranking owns the product's one idea: for a pod, every node falls in a band, and a
// feasible node of a better band always wins. The band of a node for a pod comes from the
// node's class (capacity.Model: tier, at risk, pool) and from the pod (its avoid-spot
// annotation and its capacity policy's decision for the workload's next replica):
//
//	rank  = the tier's place in the pod's tier order (tiers in order; for a pod avoiding spot,
//	        each reclaimable tier just below the next non-reclaimable one)
//	band  = rank, plus the number of tiers when the node is at risk, or is of a reclaimable
//	        tier in a pool already holding the policy's cap of the workload (a full pool)
//
// so there are 2 x tiers bands and every healthy node precedes every at-risk one. SpotScore's
// score and tier search, the tier gate, preemption's candidate order, the simulator's search,
// the rebalancer's planner and failback demand, deletion cost and explain all read bands here;
// none derives one on its own. The package also keeps what the scheduler's per-cycle searches
// need of every node, up to date from its snapshot: the node classes and their grouping by band
// (NodeClasses), and the room placeholders hold (PlaceholderIndex).
package ranking

import (
	v1 "k8s.io/api/core/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
)

// Ranker ranks the nodes of one capacity model. It is immutable and safe for concurrent use.
type Ranker struct {
	model *capacity.Model
	// avoiding[t] is tier t's rank for pods that avoid reclaimable capacity.
	avoiding []int
}

// New returns the ranker of a capacity model.
func New(model *capacity.Model) *Ranker {
	n := model.NumTiers()
	order := make([]int, 0, n)
	var held []int
	for t := range n {
		if model.Reclaimable(t) {
			held = append(held, t)
			continue
		}
		order = append(order, t)
		order = append(order, held...)
		held = held[:0]
	}
	order = append(order, held...)
	avoiding := make([]int, n)
	for r, t := range order {
		avoiding[t] = r
	}
	return &Ranker{model: model, avoiding: avoiding}
}

// Model is the capacity model the ranker ranks with.
func (r *Ranker) Model() *capacity.Model { return r.model }

// NumBands is the number of distinct bands: healthy and at-risk for every tier.
func (r *Ranker) NumBands() int { return 2 * r.model.NumTiers() }

// TierRank is tier t's rank (0 best) for a pod that avoids spot or not.
func (r *Ranker) TierRank(t int, avoidSpot bool) int {
	if avoidSpot {
		return r.avoiding[t]
	}
	return t
}

// For is the order of a pod that avoids spot or not (its annotation), under its capacity
// policy's decision d for the workload's next replica (the zero Decision: no policy).
func (r *Ranker) For(avoidSpot bool, d policy.Decision) Order {
	return Order{r: r, avoidSpot: avoidSpot || d.NonReclaimable, fullPools: d.FullPools}
}

// ForPod is the order of a pod by its avoid-spot annotation alone, for callers that do not
// evaluate its capacity policy (a node's change in a QueueingHint, deletion cost).
func (r *Ranker) ForPod(pod *v1.Pod) Order {
	return Order{r: r, avoidSpot: capacity.AvoidsSpot(pod)}
}

// Order is how one pod ranks nodes. The zero Order is not usable.
type Order struct {
	r         *Ranker
	avoidSpot bool
	fullPools map[string]bool
}

// AvoidsSpot reports whether reclaimable tiers rank below the next non-reclaimable one (the
// annotation, or the policy wants the next replica off spot).
func (o Order) AvoidsSpot() bool { return o.avoidSpot }

// FullPool reports whether the pool holds the policy's cap of the workload.
func (o Order) FullPool(pool string) bool { return o.fullPools[pool] }

// NumBands is the number of distinct bands.
func (o Order) NumBands() int { return o.r.NumBands() }

// TierRank is tier t's rank in this order.
func (o Order) TierRank(t int) int { return o.r.TierRank(t, o.avoidSpot) }

// Band is a node of class c's band, 0 best: healthy nodes first, tiers in this order; an
// at-risk node, or a node of a reclaimable tier in a full pool, after every healthy one. So a
// replica under a policy goes to a pool under the cap when one fits, else to the next
// non-reclaimable tier with room, and to a full pool only when nothing else fits.
func (o Order) Band(c capacity.Class) int {
	b := o.TierRank(c.Tier)
	if c.AtRisk || (o.fullPools[c.Pool] && o.r.model.Reclaimable(c.Tier)) {
		b += o.r.model.NumTiers()
	}
	return b
}

// HealthyBand is the band a healthy node of class c's tier and pool has: the rank the
// rebalancer plans with, so that it moves a pod only where the scheduler will put it.
func (o Order) HealthyBand(c capacity.Class) int {
	return o.Band(capacity.Class{Tier: c.Tier, Pool: c.Pool})
}

// GroupByBand groups items by band, in their order within a band: the band-by-band walk
// every search makes (a feasible node of a better band wins, so a search can stop at the
// first band with one).
func GroupByBand[T any](items []T, numBands int, bandOf func(T) int) [][]T {
	sizes := make([]int, numBands)
	bands := make([]int, len(items))
	for i, it := range items {
		bands[i] = bandOf(it)
		sizes[bands[i]]++
	}
	grouped := make([][]T, numBands)
	for b, n := range sizes {
		grouped[b] = make([]T, 0, n)
	}
	for i, it := range items {
		grouped[bands[i]] = append(grouped[bands[i]], it)
	}
	return grouped
}

// MayTakePlaceholderRoom reports whether the pod may take the room placeholders hold (by the
// profile's placeholder rule isPlaceholder, nil when it preempts none): placeholders and pods
// with preemptionPolicy Never cannot displace anything, so that room is not theirs, and the
// tier search and the tier gate count it as taken for them.
func MayTakePlaceholderRoom(pod *v1.Pod, isPlaceholder func(*v1.Pod) bool) bool {
	never := pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == v1.PreemptNever
	return isPlaceholder != nil && !never && !isPlaceholder(pod)
}
