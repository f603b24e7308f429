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
