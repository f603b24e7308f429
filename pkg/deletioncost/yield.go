package deletioncost

import (
	"bytes"
	"context"
	"encoding/json"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// Karpenter v1.15 added an alpha feature gate, PodDeletionCostManagement, under which Karpenter
// writes controller.kubernetes.io/pod-deletion-cost on the ReplicaSet pods of the nodes it
// manages (negative ranks on the nodes it plans to consolidate) and removes it from the pods of
// every other node it manages, once a minute when its view of the cluster changed. That is the
// same annotation this controller keeps, for a different order (tiers, not consolidation
// candidates): with both running, Karpenter's removals would be written back here and
// overwritten there again, and the ReplicaSet would follow whichever wrote last.
//
// The controller never fights: the first time it finds a pod in its scope whose deletion cost
// is owned (managedFields) by Karpenter's field manager, it yields for the rest of its run. It
// stops setting costs, removes the values it wrote (so the ReplicaSet follows Karpenter's
// order alone, not a mix of the two scales), records a Warning event on that pod and a log
// line, and reports spot_scheduler_deletion_cost_yielded 1. Turning the gate off and restarting
// spot-rebalancer brings the tier order back (docs/operations.md).

// YieldedReason is the reason of the Warning event recorded when the controller yields.
const YieldedReason = "DeletionCostYielded"

var costField = []byte(`"f:` + wellknown.PodDeletionCostAnnotation + `"`)

// TransformManagedFields is the informer transform of every object the rebalancer caches: it
// drops managedFields (nothing here reads them, every object carries them), except on a pod
// the entries that own the pod's deletion cost, reduced to their manager's name, which is all
// costManagers reads.
func TransformManagedFields(obj any) (any, error) {
	o, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil
	}
	var kept []metav1.ManagedFieldsEntry
	if _, isPod := obj.(*v1.Pod); isPod {
		for _, e := range o.GetManagedFields() {
			if e.FieldsV1 != nil && bytes.Contains(e.FieldsV1.Raw, costField) && ownsCost(e.FieldsV1.Raw) {
				kept = append(kept, metav1.ManagedFieldsEntry{Manager: e.Manager, Operation: e.Operation})
			}
		}
	}
	o.SetManagedFields(kept)
	return obj, nil
}

// ownsCost reads a managedFields entry's field set: does it own
// metadata.annotations[controller.kubernetes.io/pod-deletion-cost]?
func ownsCost(raw []byte) bool {
	var fields struct {
		Metadata struct {
			Annotations map[string]json.RawMessage `json:"f:annotations"`
		} `json:"f:metadata"`
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return false
	}
	_, ok := fields.Metadata.Annotations["f:"+wellknown.PodDeletionCostAnnotation]
	return ok
}

// costManagers are the field managers owning the pod's deletion cost, from managedFields as
// the API server returned them or as TransformManagedFields left them.
func costManagers(pod *v1.Pod) []string {
	var out []string
	for _, e := range pod.ManagedFields {
		if e.FieldsV1 == nil || ownsCost(e.FieldsV1.Raw) {
			out = append(out, e.Manager)
		}
	}
	return out
}

// karpenterOwnsCost: Karpenter wrote the pod's current deletion cost.
func karpenterOwnsCost(pod *v1.Pod) bool {
	if _, ok := pod.Annotations[wellknown.PodDeletionCostAnnotation]; !ok {
		return false
	}
	for _, m := range costManagers(pod) {
		if m == wellknown.KarpenterFieldManager {
			return true
		}
	}
	return false
}

// Yielded reports whether the controller has yielded the deletion cost to Karpenter.
func (c *Controller) Yielded() bool { return c.yielded.Load() }

// yield makes the controller stand aside (once): every workload in scope is queued again, so
// that the values the controller wrote are removed.
func (c *Controller) yield(ctx context.Context, pod *v1.Pod) {
	if !c.yielded.CompareAndSwap(false, true) {
		return
	}
	yieldedGauge.Set(1)
	msg := "Karpenter writes controller.kubernetes.io/pod-deletion-cost in this cluster (its PodDeletionCostManagement feature gate): " +
		"spot-scheduler's deletion-cost controller stops writing and removes its own values, so that scale-in follows Karpenter's order alone; " +
		"turn the gate off and restart spot-rebalancer to scale in by tier again"
	klog.FromContext(ctx).Info("Deletion cost yielded to Karpenter", "pod", klog.KObj(pod), "reason", YieldedReason, "detail", msg)
	if c.recorder != nil {
		c.recorder.Eventf(pod, nil, v1.EventTypeWarning, YieldedReason, "Yield", msg)
	}
	for _, obj := range c.pods.List() {
		c.enqueuePod(obj.(*v1.Pod))
	}
}
