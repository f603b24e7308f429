package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// SpotScoreArgs are the args of the SpotScore plugin. They carry the capacity model that every
// spot-scheduler component (scheduler, preemption, rebalancer, deletion-cost controller) reads
// from the same KubeSchedulerConfiguration, so tiers can never disagree between them.
type SpotScoreArgs struct {
	metav1.TypeMeta `json:",inline"`

	// CapacityModel classifies nodes into tiers, detects at-risk nodes and names pools.
	CapacityModel `json:",inline"`

	// SpreadWeight is the share, in percent, of each tier's score band used to spread a
	// workload's pods across pools. 0 turns spreading off; it must stay below 100 so that the
	// tier bands never overlap. Default 50.
	SpreadWeight *int32 `json:"spreadWeight,omitempty"`
}

// CapacityModel describes how nodes map to capacity tiers, risk and pools.
type CapacityModel struct {
	// Tiers, best (cheapest to keep pods on) first. A node belongs to the first tier that matches
	// it; a node no tier matches belongs to DefaultTier.
	Tiers []Tier `json:"tiers,omitempty"`
	// DefaultTier names the tier of nodes no tier matches. Default "on-demand".
	DefaultTier string `json:"defaultTier,omitempty"`
	// AtRiskTaints are taints that announce an interruption or drain. A node carrying one
	// (any effect) is at risk: it ranks below every healthy node, is never a rebalance target
	// and its pods go first on scale-down.
	AtRiskTaints []TaintMatch `json:"atRiskTaints,omitempty"`
	// CordonedIsAtRisk treats spec.unschedulable nodes as at risk. Default true.
	CordonedIsAtRisk *bool `json:"cordonedIsAtRisk,omitempty"`
	// PoolLabelKeys: the first of these labels present on a node names its pool (the failure
	// domain a provider reclaims at once).
	PoolLabelKeys []string `json:"poolLabelKeys,omitempty"`
	// PoolTopologyKeys are combined with the pool label to form the pool key. Default
	// node.kubernetes.io/instance-type and topology.kubernetes.io/zone.
	PoolTopologyKeys []string `json:"poolTopologyKeys,omitempty"`
	// DefaultCapacityPolicy applies to every workload whose pods carry none of the capacity
	// policy annotations (spot-scheduler.io/on-demand-base, spot-share, max-per-pool); an
	// annotation overrides its field. Unset (the default): no policy. It lives with the
	// capacity model so that every component reading the model keeps the same policy.
	DefaultCapacityPolicy *CapacityPolicy `json:"defaultCapacityPolicy,omitempty"`
	// Prices say what each node costs per hour: the savings report, the cost metrics. They
	// live with the capacity model so that every component prices a node alike.
	Prices *Prices `json:"prices,omitempty"`
	// ReclaimHistory says where the rebalancer records the reclaims it sees, how long a
	// reclaim counts and how much it weighs when pools of one tier are ranked: the scheduler,
	// the rebalancer and the deletion-cost controller read the same history.
	ReclaimHistory *ReclaimHistory `json:"reclaimHistory,omitempty"`
}

// Prices say what a node costs per hour, in dollars (or any one currency): from the node's
// own label where the provider or the autoscaler sets one, else from the table, else the price
// is unknown.
type Prices struct {
	// NodeLabel is a node label holding the node's price per hour, a decimal number such as
	// "0.0416". Default eks-node-viewer/instance-price, which Karpenter's kwok provider sets
	// (eks-node-viewer reads it); "" reads no label.
	NodeLabel *string `json:"nodeLabel,omitempty"`
	// Table prices the nodes without the label: per tier, optionally per instance type
	// (node.kubernetes.io/instance-type) and zone (topology.kubernetes.io/zone). The entry
	// naming most of those that match a node wins. A node costs its CPU capacity times
	// perVCPUHour plus its memory capacity in GiB times perGiBHour.
	Table []PriceEntry `json:"table,omitempty"`
}

// PriceEntry is one row of the price table.
type PriceEntry struct {
	// Tier is one of the tier names.
	Tier string `json:"tier"`
	// InstanceType and Zone narrow the entry to nodes with that label value; empty: any.
	InstanceType string `json:"instanceType,omitempty"`
	Zone         string `json:"zone,omitempty"`
	// PerVCPUHour and PerGiBHour are the prices of one vCPU and of one GiB of memory for an
	// hour, 0 to 1000.
	PerVCPUHour float64 `json:"perVCPUHour"`
	PerGiBHour  float64 `json:"perGiBHour"`
}

// ReclaimHistory configures the reclaim history: the rebalancer (its leader) records every
// reclaim it sees in a ConfigMap, per pool; within a tier, pools with fewer reclaims in the
// window rank first (then the spread), for the scheduler, the rebalancer and scale-in alike.
type ReclaimHistory struct {
	// Namespace and Name of the ConfigMap. Default kube-system/spot-scheduler-reclaim-history
	// (the Helm chart uses its release namespace).
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// Window: a reclaim counts for this long, a duration from 1m to 2160h (90 days). Default
	// 168h (7 days).
	Window string `json:"window,omitempty"`
	// Weight: each reclaim of a pool within the window counts each replica of a workload in
	// that pool this many percent more when pools of a tier are ranked, 0 to 1000. 0 turns
	// the ranking by risk off (the history is still recorded and reported). Default 50.
	Weight *int32 `json:"weight,omitempty"`
}

// CapacityPolicy is a workload's floor and ratio of non-reclaimable capacity, with the Auto
// Scaling group semantics (OnDemandBaseCapacity, OnDemandPercentageAboveBaseCapacity), plus a
// cap per pool. Unset fields put no constraint.
type CapacityPolicy struct {
	// OnDemandBase: the workload's first N replicas run on non-reclaimable tiers. 0..100000.
	OnDemandBase *int32 `json:"onDemandBase,omitempty"`
	// SpotSharePercent: of the replicas above the base, at most this percent (rounded down,
	// in favour of non-reclaimable capacity as Auto Scaling groups do) on reclaimable tiers.
	// 0..100; unset means 100.
	SpotSharePercent *int32 `json:"spotSharePercent,omitempty"`
	// MaxPerPool: at most this many of the workload's reclaimable replicas in one pool: a
	// count (1..100000) or a percent of the replicas the policy allows on reclaimable tiers
	// ("1%".."100%", rounded up, at least 1).
	MaxPerPool *intstr.IntOrString `json:"maxPerPool,omitempty"`
}

// Tier is one class of capacity.
type Tier struct {
	// Name of the tier, a DNS label such as "spot". Unique.
	Name string `json:"name"`
	// Reclaimable marks capacity the provider takes back at short notice (spot/preemptible).
	// Pods annotated spot-scheduler.io/avoid-spot=true rank such a tier below the next
	// non-reclaimable tier.
	Reclaimable bool `json:"reclaimable,omitempty"`
	// NodeSelectors: a node matches the tier when any selector matches its labels.
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
	// TaintKeys: a node matches the tier when it carries a taint with one of these keys.
	TaintKeys []string `json:"taintKeys,omitempty"`
}

// TaintMatch matches a taint by key, either exactly or, with a trailing "/*", every key under
// a prefix (e.g. "aws-node-termination-handler/*").
type TaintMatch struct {
	Key string `json:"key"`
}

// PlaceholderPreemptionArgs are the args of the PlaceholderPreemption plugin.
type PlaceholderPreemptionArgs struct {
	metav1.TypeMeta `json:",inline"`

	// PlaceholderSelector: pods whose labels match are placeholders (headroom pods real pods
	// may displace). Default: spot-scheduler.io/placeholder=true.
	PlaceholderSelector *metav1.LabelSelector `json:"placeholderSelector,omitempty"`
	// PlaceholderPriorityBelow: pods with a priority below this value are placeholders too.
	// Default 0: every negative-priority pod, as overprovisioner charts create them.
	PlaceholderPriorityBelow *int32 `json:"placeholderPriorityBelow,omitempty"`
}
