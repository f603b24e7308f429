package deletioncost

import (
	"strconv"

	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// BandWidth is the range of costs each band spans: a pool may rank up to BandWidth pods of one
// workload apart; beyond that they share the lowest cost of the band.
const BandWidth = 1000

// PolicyCostBase: the healthy pods of a workload with a capacity policy cost more than this
// (see keepPolicy), above every at-risk pod and every band of the default model.
const PolicyCostBase = 100_000

// Cost is the pod-deletion-cost of a pod (higher is kept longer). band is the node's band for
// the pod (capacity.Model.Band: 0 best; healthy tiers in order, then at-risk tiers), numBands
// the model's NumBands, and crowding the pod's 1-based position among the pods of its workload
// in the same pool and band, oldest first: the n-th pod of a pool holding n replicas has
// crowding n.
//
// Bands never overlap: every pod of a better band costs more than every pod of a worse one.
// Within a band, the pod with the highest crowding goes first, so a ReplicaSet scaling in takes
// pods from the pool holding most replicas first, level by level ("water filling"), which keeps
// the survivors spread over pools.
//
// With the default four tiers: reserved 7000-7999, spot 6000-6999, on-demand 5000-5999, burst
// 4000-4999, and at risk reserved 3000-3999 down to burst 0-999 (the oldest pod of a pool
// gets the top of its range).
func Cost(band, numBands, crowding int) int32 {
	if numBands < 1 {
		numBands = 1
	}
	band = min(max(band, 0), numBands-1)
	crowding = min(max(crowding, 1), BandWidth)
	keep := numBands - 1 - band
	return int32(keep*BandWidth + BandWidth - crowding)
}

// action is what the controller does to one pod's annotations.
type action int

const (
	actionNone action = iota
	actionSet
	actionRemove
)

// decideProtection applies the ownership rules to a pod's karpenter.sh/do-not-disrupt: want
// says whether the pod holds its capacity policy off spot (and the protection is on).
//
//   - The controller owns the annotation when it is absent, or is "true" with the
//     controller's mark (wellknown.ManagedDoNotDisruptAnnotation); anyone else's is never
//     touched (a pod the user protected is protected anyway).
//   - Wanted and not there: set, with the mark. Not wanted and the controller's: removed.
func decideProtection(annotations map[string]string, want bool) action {
	value, has := annotations[wellknown.KarpenterDoNotDisruptAnnotation]
	_, marked := annotations[wellknown.ManagedDoNotDisruptAnnotation]
	ours := has && marked && value == "true"
	switch {
	case has && !ours:
		return actionNone // someone else's
	case want && !ours:
		return actionSet
	case !want && marked:
		return actionRemove // ours, or a mark left after someone removed the annotation
	}
	return actionNone
}

// Skip reasons (the label values of the skips metric: a bounded set).
const (
	// SkipUserOwned: the pod carries a deletion cost the controller did not write.
	SkipUserOwned = "user_owned"
	// SkipNodeUnknown: the pod's node is not (yet) in the controller's cache.
	SkipNodeUnknown = "node_unknown"
	// SkipConflict: the pod changed between read and write; it is retried.
	SkipConflict = "conflict"
)

// decide applies the ownership rules to a pod's annotations. desired is the cost the pod
// should carry, or nil when the pod is outside the controller's scope.
//
//   - The controller owns the pod's deletion cost when the cost annotation is absent, or equals
//     the value recorded in its own annotation (wellknown.ManagedDeletionCostAnnotation).
//   - A cost it does not own is never touched (skip reason SkipUserOwned).
//   - In scope, an owned cost is set to desired (both annotations), unless already equal.
//   - Out of scope, an owned cost and the record are removed; nothing else happens.
func decide(annotations map[string]string, desired *int32) (act action, value string, skip string) {
	cost, hasCost := annotations[wellknown.PodDeletionCostAnnotation]
	mark, hasMark := annotations[wellknown.ManagedDeletionCostAnnotation]
	owned := !hasCost || (hasMark && cost == mark)
	if !owned {
		return actionNone, "", SkipUserOwned
	}
	if desired == nil {
		if hasMark {
			return actionRemove, "", ""
		}
		return actionNone, "", ""
	}
	want := strconv.FormatInt(int64(*desired), 10)
	if hasCost && cost == want && mark == want {
		return actionNone, want, ""
	}
	return actionSet, want, ""
}
