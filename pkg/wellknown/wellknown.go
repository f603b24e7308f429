// Package wellknown names the labels and annotations spot-scheduler reads and writes on pods,
// so every component spells them the same way.
package wellknown

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// SchedulerName is the default spec.schedulerName that opts a workload in.
	SchedulerName = "spot-scheduler"

	// AvoidSpotAnnotation set to "true" on a pod ranks reclaimable tiers below the next
	// non-reclaimable tier for that pod (stateful singletons); so does any value that is not a
	// boolean (the cautious reading). Hard exclusion stays the job of taints and affinity.
	AvoidSpotAnnotation = "spot-scheduler.io/avoid-spot"

	// PlaceholderLabel set to "true" marks a headroom pod that real pods may preempt (the
	// default placeholder rule); a value that is not a boolean marks nothing (PlaceholderLabels).
	PlaceholderLabel = "spot-scheduler.io/placeholder"

	// FailbackBufferLabel set to "true" marks a pod of the rebalancer's failback buffer: a
	// placeholder (it also carries PlaceholderLabel) that holds or asks for room on a better
	// tier for pods that failed over to a worse one, created and removed by the rebalancer's
	// leader only. Pods carrying it in the buffer's namespace are the rebalancer's: it adopts
	// or deletes them.
	FailbackBufferLabel = "spot-scheduler.io/failback-buffer"
	// FailbackBufferShapeLabel on a failback-buffer pod names its shape (a hash of its requests,
	// node affinity and tolerations): pods of one shape stand for the same kind of room.
	FailbackBufferShapeLabel = "spot-scheduler.io/failback-buffer-shape"
	// FailbackBufferNamePrefix is the generateName of failback-buffer pods.
	FailbackBufferNamePrefix = "failback-buffer-"
	// FailbackBufferPriorityClass is the default PriorityClass of failback-buffer pods (the
	// chart creates <fullname>-failback-buffer: negative priority, preemptionPolicy Never).
	FailbackBufferPriorityClass = "spot-scheduler-failback-buffer"

	// PackingTaintKey is the NoSchedule taint the rebalancer puts on a node it empties onto
	// fuller nodes of the same tier (--pack-within-tier), so that no new pod lands there before
	// the autoscaler removes it; the rebalancer removes the taint when pods need the room.
	PackingTaintKey = "spot-scheduler.io/packing"

	// RebalanceAnnotation set to "false" keeps the rebalancer away from a pod; so does any
	// value that is not a boolean (the cautious reading of an opt-out).
	RebalanceAnnotation = "spot-scheduler.io/rebalance"

	// DisruptionBudgetAnnotation on a pod (set it in the workload's pod template) is the share of
	// the workload's desired replicas the rebalancer may make unavailable at once ("25%", or a
	// count such as "3"; "0" keeps the rebalancer from moving the workload). It overrides the
	// rebalancer's --disruption-budget (ParseDisruptionBudget).
	DisruptionBudgetAnnotation = "spot-scheduler.io/disruption-budget"

	// KarpenterDoNotDisruptAnnotation is Karpenter's opt-out from voluntary disruption; the
	// rebalancer honours it too.
	KarpenterDoNotDisruptAnnotation = "karpenter.sh/do-not-disrupt"

	// AutoscalerSafeToEvictAnnotation is cluster-autoscaler's; "false" keeps the rebalancer
	// away as well.
	AutoscalerSafeToEvictAnnotation = "cluster-autoscaler.kubernetes.io/safe-to-evict"

	// PodDeletionCostAnnotation is the ReplicaSet controller's scale-in hint: pods with a lower
	// cost are deleted first.
	PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

	// ManagedDeletionCostAnnotation records the pod-deletion-cost value the deletion-cost
	// controller wrote. The controller owns a pod's deletion cost only while the two annotations
	// carry the same value (or the cost is absent); any other value was set by someone else and
	// is never touched.
	ManagedDeletionCostAnnotation = "spot-scheduler.io/managed-deletion-cost"

	// ManagedDoNotDisruptAnnotation marks a KarpenterDoNotDisruptAnnotation the deletion-cost
	// controller set on a pod that holds its capacity policy's on-demand base (Karpenter's
	// consolidation, which does not know the policy, would otherwise move it to spot). The
	// controller removes only a do-not-disrupt it marked; one set by anyone else is never
	// touched.
	ManagedDoNotDisruptAnnotation = "spot-scheduler.io/managed-do-not-disrupt"

	// DeletionCostFieldManager is the field manager of the deletion-cost controller's writes.
	DeletionCostFieldManager = "spot-scheduler-deletion-cost"
	// KarpenterFieldManager is the field manager of Karpenter's writes (the API server takes it
	// from Karpenter's user agent, "karpenter/<version>"). With its PodDeletionCostManagement
	// feature gate on, Karpenter writes PodDeletionCostAnnotation under this manager.
	KarpenterFieldManager = "karpenter"

	// RebalancerLeaseName is the Lease of the rebalancer binary (deletion-cost controller and
	// rebalancer), distinct from the scheduler's.
	RebalancerLeaseName = "spot-rebalancer"
)

// AllowedBoolValues are the values every boolean annotation and label accepts.
const AllowedBoolValues = `"true" or "false" (any letter case)`

// InvalidValueReason is the reason of the Warning event an object gets when one of its labels
// or annotations holds a value the product does not understand.
const InvalidValueReason = "InvalidValue"

// ParseBool reads a boolean annotation or label value: "true" or "false" in any letter case,
// spaces around it ignored. ok is false for anything else ("yes", "1", "", ...): the values
// Kubernetes users write for booleans are understood, and any other value is named, never
// guessed at.
func ParseBool(v string) (value, ok bool) {
	switch v = strings.TrimSpace(v); {
	case strings.EqualFold(v, "true"):
		return true, true
	case strings.EqualFold(v, "false"):
		return false, true
	}
	return false, false
}

// InvalidValueError is a label or annotation whose value the product does not understand. It
// says what the product does instead (the cautious reading).
type InvalidValueError struct {
	// Kind is "annotation" or "label".
	Kind    string
	Key     string
	Value   string
	Allowed string
	// Reading is what the product does with the object instead, e.g. `read as "true": ...`.
	Reading string
}

func (e *InvalidValueError) Error() string {
	return fmt.Sprintf("%s %s=%q is invalid: allowed values are %s; %s", e.Kind, e.Key, e.Value, e.Allowed, e.Reading)
}

// Bool is a boolean annotation or label the product reads. Every one is read the same way:
// "true" or "false" in any letter case; absent means Default; any other value means Cautious
// (the reading that risks nothing: an unreadable opt-out is an opt-out) and is named by an
// *InvalidValueError.
type Bool struct {
	// Kind is "annotation" or "label".
	Kind string
	Key  string
	// Default is the reading when the key is absent.
	Default bool
	// Cautious is the reading of a value that is not a boolean.
	Cautious bool
	// Meaning says what the product does when the reading is Cautious, for the error.
	Meaning string
}

// Read reads the key from an object's annotations or labels (b.Kind says which map to pass).
func (b Bool) Read(m map[string]string) (bool, error) {
	v, present := m[b.Key]
	if !present {
		return b.Default, nil
	}
	value, ok := ParseBool(v)
	if !ok {
		return b.Cautious, &InvalidValueError{Kind: b.Kind, Key: b.Key, Value: v, Allowed: AllowedBoolValues,
			Reading: fmt.Sprintf("read as %q: %s", strconv.FormatBool(b.Cautious), b.Meaning)}
	}
	return value, nil
}

// The boolean annotations and labels the product reads on pods (docs/operations.md has the
// table: allowed values and what a bad value does).
var (
	// AvoidSpot: "true" ranks reclaimable tiers below on-demand for the pod.
	AvoidSpot = Bool{Kind: "annotation", Key: AvoidSpotAnnotation, Default: false, Cautious: true,
		Meaning: "reclaimable tiers rank below the next non-reclaimable tier for this pod"}
	// Rebalance: "false" keeps the rebalancer away from the pod.
	Rebalance = Bool{Kind: "annotation", Key: RebalanceAnnotation, Default: true, Cautious: false,
		Meaning: "the rebalancer does not move the pod"}
	// DoNotDisrupt: Karpenter's opt-out, honoured by the rebalancer.
	DoNotDisrupt = Bool{Kind: "annotation", Key: KarpenterDoNotDisruptAnnotation, Default: false, Cautious: true,
		Meaning: "the rebalancer does not move the pod"}
	// SafeToEvict: cluster-autoscaler's; "false" keeps the rebalancer away.
	SafeToEvict = Bool{Kind: "annotation", Key: AutoscalerSafeToEvictAnnotation, Default: true, Cautious: false,
		Meaning: "the rebalancer does not move the pod"}
	// Placeholder: the default placeholder rule's label (PlaceholderLabels).
	Placeholder = Bool{Kind: "label", Key: PlaceholderLabel, Default: false, Cautious: false,
		Meaning: "the pod is not a placeholder (never preempted as one)"}
)

// PodBools are every boolean annotation and label read on pods, in the order explain shows them.
var PodBools = []Bool{AvoidSpot, Rebalance, DoNotDisrupt, SafeToEvict, Placeholder}

// Of returns the map of the pod's that b reads: its labels or its annotations.
func (b Bool) Of(labels, annotations map[string]string) map[string]string {
	if b.Kind == "label" {
		return labels
	}
	return annotations
}

// PlaceholderLabels returns the labels a placeholder rule (a label selector) is matched
// against: the pod's own, with PlaceholderLabel's value read as a boolean, so that "True"
// matches a rule on "true". An unreadable value is left out, so that no rule on it matches (a
// pod is preempted only when it is unambiguously a placeholder), and the error names it. The
// pod's map itself is returned when nothing needs reading (the common case: no copy).
func PlaceholderLabels(labels map[string]string) (map[string]string, error) {
	v, ok := labels[PlaceholderLabel]
	if !ok || v == "true" || v == "false" {
		return labels, nil
	}
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		out[k] = v
	}
	b, err := Placeholder.Read(labels)
	if err != nil {
		delete(out, PlaceholderLabel)
		return out, err
	}
	out[PlaceholderLabel] = strconv.FormatBool(b)
	return out, nil
}

// AllowedDisruptionBudgetValues are the values DisruptionBudgetAnnotation and the rebalancer's
// --disruption-budget accept.
const AllowedDisruptionBudgetValues = `a count ("3") or a percentage of the desired replicas ("25%"), 0 to 100%`

// ParseDisruptionBudget reads a disruption budget: a non-negative count or a percentage from 0%
// to 100% (spaces around it ignored).
func ParseDisruptionBudget(v string) (intstr.IntOrString, error) {
	v = strings.TrimSpace(v)
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 100 {
			return intstr.IntOrString{}, fmt.Errorf("%q is not a percentage from 0%% to 100%%", v)
		}
		return intstr.FromString(strconv.Itoa(n) + "%"), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return intstr.IntOrString{}, fmt.Errorf("%q is neither a count (0 or more) nor a percentage", v)
	}
	return intstr.FromInt32(int32(min(n, 1<<30))), nil
}

// DisruptionBudget is how many of desired replicas the budget b lets be unavailable at once: a
// percentage rounds down, and a budget that is not zero allows at least one.
func DisruptionBudget(b intstr.IntOrString, desired int) int {
	if b.Type == intstr.Int {
		return max(b.IntValue(), 0)
	}
	pct, err := strconv.Atoi(strings.TrimSuffix(b.StrVal, "%"))
	if err != nil || pct <= 0 {
		return 0
	}
	return max(desired*pct/100, 1)
}
