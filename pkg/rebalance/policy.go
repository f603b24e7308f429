package rebalance

import (
	"sort"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

// The capacity policy in the rebalancer. A workload with a policy keeps its replicas' counts
// (non-reclaimable, reclaimable per pool) in the planner, updated by every planned move. For
// one of its pods, the planner ranks nodes as SpotScore will rank them for the replacement
// pod (ranking.Order.HealthyBand with the policy's decision for the workload without that pod), so:
//
//   - a pod the base or the share needs on on-demand has no better tier than on-demand;
//   - a base pod that had to land on spot ranks on-demand above spot and moves there when
//     room appears;
//   - a pod in a pool over the cap ranks its own (full) pool below the pools under the cap
//     and below every non-reclaimable tier (capacity.Model.PolicyBand): it moves to a pool
//     under the cap (the re-spread within the tier), else to the next tier with room
//     (on-demand, then burst), from where failback brings it back when a pool has room again.
//
// Every policy move must strictly reduce the potential (violations of the workload's policy,
// then the pod's tier rank: the cost), checked on the node the simulation chose. Other
// workloads are untouched by a move, so the cluster's potential decreases with every move
// and no sequence of passes can loop.

// SkipPolicy: the capacity policy keeps the pod where it is (its replacement would rank no
// node better), or the best node for it would not bring its workload closer to the policy nor
// save cost (see potential).
const SkipPolicy = "policy"

// workloadPolicy is one workload's policy and where its replicas are in the plan's snapshot.
type workloadPolicy struct {
	policy policy.Policy
	counts policy.Counts
}

// potential orders placements: fewer replicas out of policy first, then cheaper.
type potential struct {
	violations int
	cost       int
}

func (p potential) less(q potential) bool {
	return p.violations < q.violations || (p.violations == q.violations && p.cost < q.cost)
}

// initPolicies counts the replicas of every workload with an active policy among pods (those
// on nodes of the snapshot, placeholders aside).
func (pl *planner) initPolicies(pods []*v1.Pod) {
	pl.policies = map[string]*workloadPolicy{}
	for _, pod := range pods {
		key, ok := capacity.WorkloadKey(pod)
		if !ok {
			continue
		}
		wp, seen := pl.policies[key]
		if !seen {
			p, err := pl.sim.Model.PolicyFor(pod)
			if err != nil || !p.Active() {
				pl.policies[key] = nil
				continue
			}
			wp = &workloadPolicy{policy: p}
			pl.policies[key] = wp
		}
		if wp != nil {
			c := pl.classes[pod.Spec.NodeName]
			wp.counts.Add(pl.sim.Model.Reclaimable(c.Tier), c.Pool, 1)
		}
	}
}

// policyOf returns the pod's workload policy, nil when it has none.
func (pl *planner) policyOf(pod *v1.Pod) *workloadPolicy {
	key, ok := capacity.WorkloadKey(pod)
	if !ok {
		return nil
	}
	return pl.policies[key]
}

// decisionWithout is the policy's decision for the pod's replacement: the workload's next
// replica once the pod has left node from.
func (pl *planner) decisionWithout(wp *workloadPolicy, from string) policy.Decision {
	others := wp.counts.Clone()
	c := pl.classes[from]
	others.Add(pl.sim.Model.Reclaimable(c.Tier), c.Pool, -1)
	return wp.policy.Next(others)
}

// orderFor is how the pod's replacement ranks nodes under the policy's decision d, as
// SpotScore ranks them.
func (pl *planner) orderFor(pod *v1.Pod, d policy.Decision) ranking.Order {
	return pl.sim.Ranker.For(capacity.AvoidsSpot(pod), d)
}

// mayMoveForPolicy tells whether some healthy node ranks better for the pod's replacement
// than the node it is on: such a pod is a candidate even on the cheapest tier.
func (pl *planner) mayMoveForPolicy(pod *v1.Pod, wp *workloadPolicy) bool {
	order := pl.orderFor(pod, pl.decisionWithout(wp, pod.Spec.NodeName))
	here := order.HealthyBand(pl.classes[pod.Spec.NodeName])
	for _, n := range pl.targets {
		if order.HealthyBand(pl.classes[n.Name]) < here {
			return true
		}
	}
	return false
}

// potentialOf is the workload's violations with its replicas counted in c, and the pod's cost
// on a node of class on.
func (pl *planner) potentialOf(pod *v1.Pod, wp *workloadPolicy, c policy.Counts, on capacity.Class) potential {
	return potential{violations: wp.policy.Violation(c).Total(), cost: pl.sim.Ranker.TierRank(on.Tier, capacity.AvoidsSpot(pod))}
}

// policyMoveReduces tells whether moving the pod from one node to another strictly reduces
// the potential.
func (pl *planner) policyMoveReduces(pod *v1.Pod, wp *workloadPolicy, from, to string) bool {
	before := pl.potentialOf(pod, wp, wp.counts, pl.classes[from])
	return pl.potentialOf(pod, wp, pl.countsAfterMove(wp, from, to), pl.classes[to]).less(before)
}

// countsAfterMove is the workload's replica counts with one moved from one node to another.
func (pl *planner) countsAfterMove(wp *workloadPolicy, from, to string) policy.Counts {
	fromClass, toClass := pl.classes[from], pl.classes[to]
	after := wp.counts.Clone()
	after.Add(pl.sim.Model.Reclaimable(fromClass.Tier), fromClass.Pool, -1)
	after.Add(pl.sim.Model.Reclaimable(toClass.Tier), toClass.Pool, 1)
	return after
}

// policyMoveKeeps tells whether moving the pod from one node to another of the same tier
// leaves the workload's policy violations as they are or fewer (packing, pack.go).
func (pl *planner) policyMoveKeeps(wp *workloadPolicy, from, to string) bool {
	return wp.policy.Violation(pl.countsAfterMove(wp, from, to)).Total() <= wp.policy.Violation(wp.counts).Total()
}

// recordPolicyMove updates the workload's counts for a planned (sign 1) or undone (-1) move.
func (pl *planner) recordPolicyMove(pod *v1.Pod, from, to string, sign int) {
	wp := pl.policyOf(pod)
	if wp == nil {
		return
	}
	fromClass, toClass := pl.classes[from], pl.classes[to]
	wp.counts.Add(pl.sim.Model.Reclaimable(fromClass.Tier), fromClass.Pool, -sign)
	wp.counts.Add(pl.sim.Model.Reclaimable(toClass.Tier), toClass.Pool, sign)
}

// PolicyStatus is a workload's capacity policy and whether its replicas keep it.
type PolicyStatus struct {
	// Workload is capacity.WorkloadKey; Namespace and Name (the controller's kind and name,
	// else the first pod's name) are for people.
	Workload  string
	Namespace string
	Name      string
	Policy    policy.Policy
	Counts    policy.Counts
	Violation policy.Violation
}

// PolicyStatuses reports every workload with an active policy among pods (bound to one of
// nodes; placeholders, terminating and finished pods aside), sorted by workload. The
// simulator gives the capacity model and the profile's placeholder rule.
func PolicyStatuses(sim *simulator.Simulator, nodes []*v1.Node, pods []*v1.Pod) []PolicyStatus {
	model := sim.Model
	classes := make(map[string]capacity.Class, len(nodes))
	for _, n := range nodes {
		classes[n.Name] = model.Classify(n)
	}
	byWorkload := map[string]*PolicyStatus{}
	var order []string
	for _, pod := range pods {
		c, ok := classes[pod.Spec.NodeName]
		if !ok || pod.DeletionTimestamp != nil || pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
			continue
		}
		if sim.IsPlaceholder != nil && sim.IsPlaceholder(pod) {
			continue // headroom, not a replica
		}
		key, ok := capacity.WorkloadKey(pod)
		if !ok {
			continue
		}
		st, seen := byWorkload[key]
		if !seen {
			p, err := model.PolicyFor(pod)
			if err != nil || !p.Active() {
				byWorkload[key] = nil
				continue
			}
			st = &PolicyStatus{Workload: key, Namespace: pod.Namespace, Name: "pod/" + pod.Name, Policy: p}
			if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
				st.Name = ref.Kind + "/" + ref.Name
			}
			byWorkload[key] = st
			order = append(order, key)
		}
		if st != nil {
			st.Counts.Add(model.Reclaimable(c.Tier), c.Pool, 1)
		}
	}
	out := make([]PolicyStatus, 0, len(order))
	for _, k := range order {
		st := byWorkload[k]
		st.Violation = st.Policy.Violation(st.Counts)
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workload < out[j].Workload })
	return out
}

// Policy metrics, as of the last pass. Labels are bounded: two reasons, two verdicts.
var (
	replicasOutOfPolicy = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Subsystem: "capacity_policy", Name: "replicas_out_of_policy",
		Help: "Replicas out of their workload's capacity policy, summed over workloads, by reason: " +
			"below_on_demand_base (missing on non-reclaimable capacity: base and share) or over_pool_cap.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	policyWorkloads = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Subsystem: "capacity_policy", Name: "workloads",
		Help:           "Workloads with a capacity policy, by whether their replicas keep it.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"holds"})
)

func init() {
	legacyregistry.MustRegister(replicasOutOfPolicy, policyWorkloads)
}

// recordPolicies sets the policy metrics from the pass's nodes and pods.
func recordPolicies(sim *simulator.Simulator, nodes []*v1.Node, pods []*v1.Pod) {
	var shortfall, excess, holds, broken int
	for _, st := range PolicyStatuses(sim, nodes, pods) {
		shortfall += st.Violation.Shortfall
		excess += st.Violation.PoolExcess
		if st.Violation.Holds() {
			holds++
		} else {
			broken++
		}
	}
	replicasOutOfPolicy.WithLabelValues("below_on_demand_base").Set(float64(shortfall))
	replicasOutOfPolicy.WithLabelValues("over_pool_cap").Set(float64(excess))
	policyWorkloads.WithLabelValues("true").Set(float64(holds))
	policyWorkloads.WithLabelValues("false").Set(float64(broken))
}
