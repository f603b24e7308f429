package spotscore

import (
	"context"
	"errors"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// The capacity policy in placement (pkg/policy). What SpotScore does for a policy lives in
// this file; spotscore.go calls it from two places:
//
//   - PreFilter calls policyDecision: it counts where the pod's workload runs
//     (non-reclaimable, reclaimable per pool) and asks the policy where the next replica
//     belongs. The decision goes into the cycle's ranking.Order: when the next replica
//     belongs on non-reclaimable capacity the pod ranks like an avoid-spot pod (it still never
//     stays Pending while any node fits), and a reclaimable node in a pool already holding the
//     cap of the workload's reclaimable replicas ranks after every healthy node
//     (ranking.Order.Band).
//   - score calls spreadBonusFor: a full pool gets no spread bonus. So a reclaimable replica
//     goes to a pool under the cap when one fits; else to non-reclaimable capacity; else to
//     a full pool.
//
// OrderFor exposes the cycle's order to the profile's other plugins (the tier gate,
// preemption); the rebalancer's planner builds the same order with ranking.Ranker.For.

// InvalidPolicyReason is the reason of the Warning event a pod with a malformed policy
// annotation gets.
const InvalidPolicyReason = "InvalidCapacityPolicy"

// invalidPolicies counts pods seen with a malformed policy annotation, by annotation (three
// values).
var invalidPolicies = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace:      "spot_scheduler",
	Name:           "capacity_policy_invalid_total",
	Help:           "Scheduling cycles of pods whose capacity policy annotation is malformed (scheduled as if without policy), by annotation.",
	StabilityLevel: metrics.ALPHA,
}, []string{"annotation"})

// invalidValues counts scheduling cycles of pods carrying a boolean annotation or label the
// product reads (wellknown.PodBools) with a value that is not a boolean, by key (five values).
var invalidValues = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace:      "spot_scheduler",
	Name:           "invalid_values_total",
	Help:           "Scheduling cycles of pods whose boolean annotation or label (avoid-spot, rebalance, do-not-disrupt, safe-to-evict, placeholder) is not a boolean (read cautiously), by key.",
	StabilityLevel: metrics.ALPHA,
}, []string{"key"})

func init() {
	legacyregistry.MustRegister(invalidPolicies, invalidValues)
}

// readBooleans reads every boolean annotation and label the product takes on the pod
// (wellknown.PodBools: avoid-spot, the opt-outs the rebalancer honours, placeholder), reports
// each unreadable one (a Warning event naming it, the value, the allowed values and the
// cautious reading: at scheduling, so the owner hears of it when the pod is created, not when
// it is first a candidate to move), and returns the avoid-spot reading.
func (pl *SpotScore) readBooleans(ctx context.Context, pod *v1.Pod) bool {
	avoid := false
	for _, b := range wellknown.PodBools {
		v, err := b.Read(b.Of(pod.Labels, pod.Annotations))
		if err != nil {
			pl.reportInvalidValue(ctx, pod, err)
		}
		if b.Key == wellknown.AvoidSpotAnnotation {
			avoid = v
		}
	}
	return avoid
}

// reportInvalidValue gives the pod a Warning event for a label or annotation value the
// scheduler does not understand. Simulations (the rebalancer, explain) run without an event
// recorder and stay silent.
func (pl *SpotScore) reportInvalidValue(ctx context.Context, pod *v1.Pod, err error) {
	var invalid *wellknown.InvalidValueError
	if !errors.As(err, &invalid) {
		return
	}
	invalidValues.WithLabelValues(invalid.Key).Inc()
	klog.FromContext(ctx).V(2).Info("Value not understood; read cautiously", "pod", klog.KObj(pod), "err", err)
	pl.warn(pod, wellknown.InvalidValueReason, err)
}

// warn records a Warning event on the pod, when the plugin runs in a scheduler.
func (pl *SpotScore) warn(pod *v1.Pod, reason string, err error) {
	if pl.handle == nil {
		return
	}
	if r := pl.handle.EventRecorder(); r != nil {
		r.Eventf(pod, nil, v1.EventTypeWarning, reason, "Scheduling", "%s", err.Error())
	}
}

// policyDecision is the pod's capacity policy's decision for this cycle (see above): the
// zero Decision without an active policy or a workload. workloadPods is where the rest of the
// pod's workload runs (nil without a workload).
func (pl *SpotScore) policyDecision(ctx context.Context, pod *v1.Pod, workloadPods map[tierPool]int) policy.Decision {
	p, err := pl.model.PolicyFor(pod)
	if err != nil {
		pl.reportInvalidPolicy(ctx, pod, err)
		return policy.Decision{}
	}
	if !p.Active() {
		return policy.Decision{}
	}
	if _, ok := capacity.WorkloadKey(pod); !ok {
		return policy.Decision{}
	}
	var counts policy.Counts
	for at, n := range workloadPods {
		counts.Add(pl.model.Reclaimable(at.tier), at.pool, n)
	}
	return p.Next(counts)
}

// reportInvalidPolicy gives the pod a Warning event naming the annotation and the allowed
// values. Simulations (the rebalancer, explain) run without an event recorder and stay silent.
func (pl *SpotScore) reportInvalidPolicy(ctx context.Context, pod *v1.Pod, err error) {
	var invalid *policy.InvalidError
	if !errors.As(err, &invalid) {
		return
	}
	invalidPolicies.WithLabelValues(invalid.Annotation).Inc()
	klog.FromContext(ctx).V(2).Info("Malformed capacity policy; scheduling without policy", "pod", klog.KObj(pod), "err", err)
	pl.warn(pod, InvalidPolicyReason, err)
}

// spreadBonusFor is the spread bonus (of the pools' loads when they rank by risk, risk.go),
// none in a full pool.
func (pl *SpotScore) spreadBonusFor(s *preScoreState, c capacity.Class) int64 {
	if s.order.FullPool(c.Pool) && pl.model.Reclaimable(c.Tier) {
		return 0
	}
	if s.rankByRisk {
		return pl.riskSpreadBonus(s, c.Pool)
	}
	return pl.spreadBonus(s, c.Pool)
}

// OrderFor returns how the pod ranks nodes in this cycle (avoid-spot annotation and capacity
// policy included), once SpotScore's PreFilter has run; ok is false otherwise (the caller
// then ranks with the annotation alone, ranking.Ranker.ForPod).
func OrderFor(state fwk.CycleState) (order ranking.Order, ok bool) {
	s, err := readState[*preFilterState](state, preFilterStateKey)
	if err != nil {
		return ranking.Order{}, false
	}
	return s.order, true
}

// PlaceholderNodes returns how many of the cycle's nodes host a placeholder not being deleted
// (by the placeholder rule of the profile's registry), once SpotScore's PreFilter has run; ok
// is false otherwise. The tier gate reads it instead of walking every node itself.
func PlaceholderNodes(state fwk.CycleState) (n int, ok bool) {
	s, err := readState[*preFilterState](state, preFilterStateKey)
	if err != nil {
		return 0, false
	}
	return s.placeholderNodes, true
}
