// Package report is what spot-scheduler saves and what it risks, in dollars: per workload and
// in total, the pods per tier, what they cost per hour now, what the same pods would cost on
// the reference tier (on-demand by default), the saving, whether the capacity policy holds and
// how many pods run on at-risk nodes; per pool, its nodes, their price and the reclaims the
// rebalancer recorded. `kubectl spot report` prints it; the rebalancer exports the same
// numbers as metrics (Exporter). Build is a pure function of the objects, so every number can
// be checked by hand from `kubectl get` output:
//
//	node $/hour      = the price label's value, else vCPUs x perVCPUHour + GiB x perGiBHour of
//	                   the most specific table entry (capacity.Model.Price)
//	pod $/hour       = the pod's CPU request x the node's $/vCPU-hour + its memory request in
//	                   GiB x the node's $/GiB-hour (requests as the scheduler counts them)
//	pod on-demand    = the same requests at the rates of the reference tier for the node's
//	                   instance type and zone (capacity.Model.ReferencePrice)
//	saving           = on-demand - now; % of on-demand; per month x 730 hours
//
// A pod whose price now or on the reference tier is unknown counts in UNPRICED and in no
// dollar figure, so the dollars always compare the same pods.
package report

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// HoursPerMonth turns an hourly saving into a monthly one: 8760 hours a year over 12 months.
const HoursPerMonth = 730

// Input is what a report is built from.
type Input struct {
	Model *capacity.Model
	// SchedulerName selects the pods reported (spec.schedulerName).
	SchedulerName string
	// Namespace restricts the workloads to one namespace ("" for all). Pools are always the
	// whole cluster's.
	Namespace string
	Nodes     []*v1.Node
	Pods      []*v1.Pod
	// Owners maps a ReplicaSet (namespace/name) to its controller (kind/name, e.g.
	// Deployment/web), so that a Deployment is one workload across its ReplicaSets. Optional.
	Owners map[string]string
	// Reclaims are each pool's reclaims in the history's window.
	Reclaims capacity.Reclaims
}

// Report is the report (its JSON form is `kubectl spot report -o json`).
type Report struct {
	// Scope is "all namespaces" or "namespace NAME".
	Scope string `json:"scope"`
	// ReferenceTier is the tier savings are measured against.
	ReferenceTier string     `json:"referenceTier"`
	Workloads     []Workload `json:"workloads"`
	Total         Costs      `json:"total"`
	// PodTiers are the pods' numbers by the tier they run on (the metrics).
	PodTiers map[string]*Costs `json:"podTiers"`
	Pools    []Pool            `json:"pools"`
	Tiers    []Tier            `json:"tiers"`
	// Warnings name the nodes whose price label could not be read.
	Warnings []string `json:"warnings,omitempty"`
}

// Costs are the pods' numbers, of one workload or of all.
type Costs struct {
	Pods        int            `json:"pods"`
	PodsPerTier map[string]int `json:"podsPerTier"`
	// PodsAtRisk run on nodes with an interruption or drain signal.
	PodsAtRisk int `json:"podsAtRisk"`
	// Unpriced pods have no known price now or on the reference tier; the dollars leave them out.
	Unpriced int `json:"unpriced"`
	// PerHour is what the priced pods cost now; OnDemandPerHour what they would cost on the
	// reference tier.
	PerHour         float64 `json:"perHour"`
	OnDemandPerHour float64 `json:"onDemandPerHour"`
	SavingPerHour   float64 `json:"savingPerHour"`
	SavingPercent   float64 `json:"savingPercent"`
	SavingPerMonth  float64 `json:"savingPerMonth"`
}

// Workload is one workload's line.
type Workload struct {
	Namespace string `json:"namespace"`
	// Name is kind/name of the controller (Deployment/web), or pod/NAME for a bare pod.
	Name string `json:"name"`
	Costs
	// Policy is the capacity policy ("none"), PolicyHolds whether the placement keeps it, and
	// PolicyStatus says so in words.
	Policy       string `json:"policy"`
	PolicyHolds  bool   `json:"policyHolds"`
	PolicyStatus string `json:"policyStatus"`
}

// Pool is one pool of the cluster.
type Pool struct {
	Pool string `json:"pool"`
	Tier string `json:"tier"`
	// Nodes counts the pool's nodes now; PerHour is what the priced ones cost.
	Nodes         int     `json:"nodes"`
	UnpricedNodes int     `json:"unpricedNodes"`
	PerHour       float64 `json:"perHour"`
	// Reclaims are the pool's reclaims in the history's window.
	Reclaims int `json:"reclaims"`
}

// Tier is what the nodes of one tier cost.
type Tier struct {
	Tier          string  `json:"tier"`
	Nodes         int     `json:"nodes"`
	UnpricedNodes int     `json:"unpricedNodes"`
	PerHour       float64 `json:"perHour"`
}

// nodeFacts is what a report needs of a node.
type nodeFacts struct {
	class      capacity.Class
	price, ref capacity.Price
}

// Build makes the report.
func Build(in Input) Report {
	m := in.Model
	r := Report{Scope: "all namespaces", ReferenceTier: m.TierName(m.ReferenceTier())}
	if in.Namespace != "" {
		r.Scope = "namespace " + in.Namespace
	}
	nodes, pools, tiers := map[string]nodeFacts{}, map[string]*Pool{}, make([]Tier, m.NumTiers())
	for t := range tiers {
		tiers[t].Tier = m.TierName(t)
	}
	for _, n := range in.Nodes {
		f := nodeFacts{class: m.Classify(n)}
		var err error
		f.price, err = m.Price(n)
		var invalid *wellknown.InvalidValueError
		if errors.As(err, &invalid) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("node %s: %v", n.Name, err))
		}
		f.ref, _ = m.ReferencePrice(n)
		nodes[n.Name] = f
		p := pools[f.class.Pool]
		if p == nil {
			p = &Pool{Pool: f.class.Pool, Tier: f.class.TierName}
			pools[f.class.Pool] = p
		}
		p.Nodes++
		tier := &tiers[f.class.Tier]
		tier.Nodes++
		if f.price.Known() {
			p.PerHour += f.price.PerHour
			tier.PerHour += f.price.PerHour
		} else {
			p.UnpricedNodes++
			tier.UnpricedNodes++
		}
	}
	for pool, n := range in.Reclaims {
		if pools[pool] == nil {
			pools[pool] = &Pool{Pool: pool, Tier: "-"} // every node of it is gone
		}
		pools[pool].Reclaims = n
	}
	for _, p := range pools {
		r.Pools = append(r.Pools, *p)
	}
	sort.Slice(r.Pools, func(i, j int) bool { return r.Pools[i].Pool < r.Pools[j].Pool })
	r.Tiers = tiers

	byWorkload := map[string]*workloadAcc{}
	r.Total.PodsPerTier = map[string]int{}
	r.PodTiers = map[string]*Costs{}
	for _, t := range m.TierNames() {
		r.PodTiers[t] = &Costs{PodsPerTier: map[string]int{}}
	}
	for _, pod := range in.Pods {
		f, ok := nodes[pod.Spec.NodeName]
		if !ok || !counted(pod, in) {
			continue
		}
		ns, name := pod.Namespace, workloadName(pod, in.Owners)
		key := ns + "/" + name
		acc := byWorkload[key]
		if acc == nil {
			acc = &workloadAcc{w: Workload{Namespace: ns, Name: name, Costs: Costs{PodsPerTier: map[string]int{}}}, first: pod}
			byWorkload[key] = acc
		}
		acc.counts.Add(m.Reclaimable(f.class.Tier), f.class.Pool, 1)
		cpu, mem := Requests(pod)
		for _, c := range []*Costs{&acc.w.Costs, &r.Total, r.PodTiers[f.class.TierName]} {
			c.add(f, cpu, mem)
		}
	}
	for _, acc := range byWorkload {
		acc.w.Costs.finish()
		acc.w.Policy, acc.w.PolicyHolds, acc.w.PolicyStatus = policyStatus(m, acc.first, acc.counts)
		r.Workloads = append(r.Workloads, acc.w)
	}
	sort.Slice(r.Workloads, func(i, j int) bool {
		a, b := r.Workloads[i], r.Workloads[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	r.Total.finish()
	for _, c := range r.PodTiers {
		c.finish()
	}
	return r
}

type workloadAcc struct {
	w      Workload
	first  *v1.Pod
	counts policy.Counts
}

// counted: a pod of the profile, in scope, bound and not finished or going away.
func counted(pod *v1.Pod, in Input) bool {
	return pod.Spec.SchedulerName == in.SchedulerName && (in.Namespace == "" || pod.Namespace == in.Namespace) &&
		pod.DeletionTimestamp == nil && pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed
}

// workloadName is the pod's controller, a ReplicaSet's own controller when known.
func workloadName(pod *v1.Pod, owners map[string]string) string {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return "pod/" + pod.Name
	}
	if ref.Kind == "ReplicaSet" {
		if owner, ok := owners[pod.Namespace+"/"+ref.Name]; ok {
			return owner
		}
	}
	return ref.Kind + "/" + ref.Name
}

// Requests are the pod's CPU (cores) and memory (GiB) requests as the scheduler counts them
// (containers, init containers and overhead).
func Requests(pod *v1.Pod) (cpu, memGiB float64) {
	req := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	return capacity.Cores(req.Cpu()), capacity.GiB(req.Memory())
}

func (c *Costs) add(f nodeFacts, cpu, mem float64) {
	c.Pods++
	c.PodsPerTier[f.class.TierName]++
	if f.class.AtRisk {
		c.PodsAtRisk++
	}
	if !f.price.Known() || !f.ref.Known() {
		c.Unpriced++
		return
	}
	c.PerHour += f.price.Of(cpu, mem)
	c.OnDemandPerHour += f.ref.Of(cpu, mem)
}

func (c *Costs) finish() {
	c.SavingPerHour = c.OnDemandPerHour - c.PerHour
	if c.OnDemandPerHour > 0 {
		c.SavingPercent = 100 * c.SavingPerHour / c.OnDemandPerHour
	}
	c.SavingPerMonth = c.SavingPerHour * HoursPerMonth
}

// policyStatus is the workload's capacity policy and whether its pods keep it.
func policyStatus(m *capacity.Model, pod *v1.Pod, counts policy.Counts) (string, bool, string) {
	p, err := m.PolicyFor(pod)
	if err != nil {
		return "invalid", true, "annotation not understood: scheduled as without a policy"
	}
	if !p.Active() {
		return "none", true, "-"
	}
	v := p.Violation(counts)
	if v.Holds() {
		return p.String(), true, "holds"
	}
	var parts []string
	if v.Shortfall > 0 {
		parts = append(parts, fmt.Sprintf("%d below the on-demand floor", v.Shortfall))
	}
	if v.PoolExcess > 0 {
		parts = append(parts, fmt.Sprintf("%d over a pool cap", v.PoolExcess))
	}
	return p.String(), false, "broken: " + strings.Join(parts, ", ")
}
