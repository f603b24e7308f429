package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
