package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// Default tier names.
const (
	TierReserved = "reserved"
	TierSpot     = "spot"
	TierOnDemand = "on-demand"
	TierBurst    = "burst"
)

// DefaultSpreadWeight is the share of a tier band used for spreading across pools.
const DefaultSpreadWeight int32 = 50

// DefaultTiers returns the default capacity tiers, best first, with the labels every major
// provider puts on its nodes.
func DefaultTiers() []Tier {
	labels := func(k, v string) metav1.LabelSelector {
		return metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
	return []Tier{
		{
			Name:          TierReserved,
			NodeSelectors: []metav1.LabelSelector{labels("karpenter.sh/capacity-type", "reserved")},
		},
		{
			Name:        TierSpot,
			Reclaimable: true,
			NodeSelectors: []metav1.LabelSelector{
				labels("kubernetes.azure.com/scalesetpriority", "spot"),  // AKS
				labels("eks.amazonaws.com/capacityType", "SPOT"),         // EKS managed node groups
				labels("karpenter.sh/capacity-type", "spot"),             // Karpenter
				labels("cloud.google.com/gke-spot", "true"),              // GKE Spot VMs
				labels("cloud.google.com/gke-provisioning", "spot"),      // GKE (newer label)
				labels("cloud.google.com/gke-preemptible", "true"),       // GKE preemptible VMs
				labels("oci.oraclecloud.com/oke-is-preemptible", "true"), // OKE
				{ // kops spot instance groups
					MatchExpressions: []metav1.LabelSelectorRequirement{{
						Key: "node-role.kubernetes.io/spot-worker", Operator: metav1.LabelSelectorOpExists,
					}},
				},
			},
		},
		{Name: TierOnDemand},
		{
			Name: TierBurst,
			NodeSelectors: []metav1.LabelSelector{
				labels("type", "virtual-kubelet"),                   // ACI virtual nodes, virtual-kubelet
				labels("eks.amazonaws.com/compute-type", "fargate"), // EKS Fargate
			},
			TaintKeys: []string{"virtual-kubelet.io/provider"},
		},
	}
}

// DefaultAtRiskTaints returns the taints interruption handlers and drains put on nodes.
func DefaultAtRiskTaints() []TaintMatch {
	return []TaintMatch{
		{Key: "karpenter.sh/disrupted"},
		{Key: "aws-node-termination-handler/*"}, // spot-itn, rebalance-recommendation, scheduled-maintenance, asg-lifecycle-termination
		{Key: "aks-node-termination-handler/preempt"},
		{Key: "cloud.google.com/impending-node-termination"},
		{Key: "remediator.aks.microsoft.com/unschedulable"},
		{Key: "node.kubernetes.io/out-of-service"},
	}
}

// DefaultPoolLabelKeys returns the node labels naming a provider's node pool, in precedence order.
func DefaultPoolLabelKeys() []string {
	return []string{
		"karpenter.sh/nodepool",
		"kubernetes.azure.com/agentpool",
		"eks.amazonaws.com/nodegroup",
		"cloud.google.com/gke-nodepool",
		"oci.oraclecloud.com/node-pool-id",
	}
}

// DefaultPoolTopologyKeys returns the labels combined with the pool label into a pool key.
func DefaultPoolTopologyKeys() []string {
	return []string{"node.kubernetes.io/instance-type", "topology.kubernetes.io/zone"}
}

// Defaults of the prices and the reclaim history.
const (
	// DefaultPriceLabel is the node label Karpenter's kwok provider writes each node's hourly
	// price into (for eks-node-viewer).
	DefaultPriceLabel = "eks-node-viewer/instance-price"
	// DefaultReclaimHistoryNamespace and DefaultReclaimHistoryName locate the history's
	// ConfigMap outside the Helm chart (which puts it in its release namespace).
	DefaultReclaimHistoryNamespace = "kube-system"
	DefaultReclaimHistoryName      = "spot-scheduler-reclaim-history"
	// DefaultReclaimWindow: a reclaim counts for 7 days.
	DefaultReclaimWindow = "168h"
	// DefaultReclaimWeight: each reclaim in the window counts a pool's replicas 50 % more.
	DefaultReclaimWeight int32 = 50
)

// SetDefaultsPrices fills the unset fields of the prices (nil gets the default prices).
func SetDefaultsPrices(p **Prices) {
	if *p == nil {
		*p = &Prices{}
	}
	if (*p).NodeLabel == nil {
		label := DefaultPriceLabel
		(*p).NodeLabel = &label
	}
	// No table and an empty one mean the same: no price but the label's.
	if len((*p).Table) == 0 {
		(*p).Table = nil
	}
}

// SetDefaultsReclaimHistory fills the unset fields of the reclaim history (nil gets the
// default history).
func SetDefaultsReclaimHistory(h **ReclaimHistory) {
	if *h == nil {
		*h = &ReclaimHistory{}
	}
	r := *h
	if r.Namespace == "" {
		r.Namespace = DefaultReclaimHistoryNamespace
	}
	if r.Name == "" {
		r.Name = DefaultReclaimHistoryName
	}
	if r.Window == "" {
		r.Window = DefaultReclaimWindow
	}
	if r.Weight == nil {
		w := DefaultReclaimWeight
		r.Weight = &w
	}
}

// SetDefaultsCapacityModel fills every unset field of the model. A field that is set (even to
// an empty, non-nil list) is left as the user wrote it, and validation judges it.
func SetDefaultsCapacityModel(m *CapacityModel) {
	if m.Tiers == nil {
		m.Tiers = DefaultTiers()
	}
	if m.DefaultTier == "" {
		m.DefaultTier = TierOnDemand
	}
	if m.AtRiskTaints == nil {
		m.AtRiskTaints = DefaultAtRiskTaints()
	}
	if m.CordonedIsAtRisk == nil {
		t := true
		m.CordonedIsAtRisk = &t
	}
	if m.PoolLabelKeys == nil {
		m.PoolLabelKeys = DefaultPoolLabelKeys()
	}
	if m.PoolTopologyKeys == nil {
		m.PoolTopologyKeys = DefaultPoolTopologyKeys()
	}
	SetDefaultsPrices(&m.Prices)
	SetDefaultsReclaimHistory(&m.ReclaimHistory)
}

// SetDefaultsSpotScoreArgs fills every unset field of the args.
func SetDefaultsSpotScoreArgs(args *SpotScoreArgs) {
	SetDefaultsCapacityModel(&args.CapacityModel)
	if args.SpreadWeight == nil {
		w := DefaultSpreadWeight
		args.SpreadWeight = &w
	}
}

// SetDefaultsPlaceholderPreemptionArgs fills every unset field of the args.
func SetDefaultsPlaceholderPreemptionArgs(args *PlaceholderPreemptionArgs) {
	if args.PlaceholderSelector == nil {
		args.PlaceholderSelector = &metav1.LabelSelector{MatchLabels: map[string]string{wellknown.PlaceholderLabel: "true"}}
	}
	if args.PlaceholderPriorityBelow == nil {
		var zero int32
		args.PlaceholderPriorityBelow = &zero
	}
}
