// Package capacity is the one capacity model every spot-scheduler component shares: it
// classifies a node into its tier, tells whether the node is at risk (interruption or drain
// signal) and names the pool (failure domain) it belongs to, from the plugin args in the
// scheduler's configuration.
package capacity

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// RiskCordoned is the risk reason of a node with spec.unschedulable set.
const RiskCordoned = "cordoned"

// Class is what the model says about one node.
type Class struct {
	// Tier is the node's tier index, 0 being the best.
	Tier int
	// TierName is the configured name of the tier.
	TierName string
	// AtRisk is set when the node carries an interruption or drain signal.
	AtRisk bool
	// RiskReason is the matching taint key, or RiskCordoned; empty when not at risk.
	RiskReason string
	// Pool is the failure-domain key: pool label, instance type and zone.
	Pool string
}

type tier struct {
	name        string
	reclaimable bool
	selectors   []labels.Selector
	// terms are the selectors as node selector terms (ORed), for pinning a pod to the tier.
	terms     []v1.NodeSelectorTerm
	taintKeys sets.Set[string]
}

// Model is a compiled capacity model. It is immutable and safe for concurrent use.
type Model struct {
	tiers            []tier
	defaultTier      int
	atRiskKeys       sets.Set[string]
	atRiskPrefixes   []string
	cordonedIsAtRisk bool
	poolLabelKeys    []string
	poolTopologyKeys []string
	// defaultPolicy is the capacity policy of pods carrying no policy annotation.
	defaultPolicy policy.Policy
	// The prices (price.go) and the reclaim history (risk.go).
	priceLabel                    string
	priceTable                    []priceEntry
	reclaimNamespace, reclaimName string
	reclaimWindow                 time.Duration
	reclaimWeight                 int32

	// classes caches Classify by node name. An entry holds the node object it was computed
	// from and serves only that object: informers replace a node object on every update (they
	// never modify one), so a changed node is a different pointer and is classified anew.
	classes     sync.Map // string -> cachedClass
	cachedCount atomic.Int64
}

type cachedClass struct {
	node  *v1.Node
	class Class
}

// maxCachedClasses bounds the cache: past it (node churn over a long life), it starts afresh.
const maxCachedClasses = 100_000

// New compiles a defaulted and validated capacity model (see v1alpha1.DecodeSpotScoreArgs).
func New(cfg v1alpha1.CapacityModel) (*Model, error) {
	m := &Model{
		defaultTier:      -1,
		atRiskKeys:       sets.New[string](),
		cordonedIsAtRisk: cfg.CordonedIsAtRisk == nil || *cfg.CordonedIsAtRisk,
		poolLabelKeys:    cfg.PoolLabelKeys,
		poolTopologyKeys: cfg.PoolTopologyKeys,
	}
	for i, t := range cfg.Tiers {
		ct := tier{name: t.Name, reclaimable: t.Reclaimable, taintKeys: sets.New(t.TaintKeys...)}
		for j := range t.NodeSelectors {
			sel, err := metav1.LabelSelectorAsSelector(&t.NodeSelectors[j])
			if err != nil {
				return nil, fmt.Errorf("tiers[%d].nodeSelectors[%d]: %w", i, j, err)
			}
			ct.selectors = append(ct.selectors, sel)
			ct.terms = append(ct.terms, nodeSelectorTerm(&t.NodeSelectors[j]))
		}
		if t.Name == cfg.DefaultTier {
			m.defaultTier = i
		}
		m.tiers = append(m.tiers, ct)
	}
	if m.defaultTier < 0 {
		return nil, fmt.Errorf("defaultTier %q is not one of the tiers", cfg.DefaultTier)
	}
	for _, t := range cfg.AtRiskTaints {
		if prefix, ok := strings.CutSuffix(t.Key, "/*"); ok {
			m.atRiskPrefixes = append(m.atRiskPrefixes, prefix+"/")
		} else {
			m.atRiskKeys.Insert(t.Key)
		}
	}
	def, err := policy.FromArgs(cfg.DefaultCapacityPolicy)
	if err != nil {
		return nil, err
	}
	m.defaultPolicy = def
	m.compilePrices(cfg.Prices)
	if err := m.compileReclaimHistory(cfg.ReclaimHistory); err != nil {
		return nil, fmt.Errorf("reclaimHistory.window: %w", err)
	}
	return m, nil
}

// NumTiers is the number of configured tiers.
func (m *Model) NumTiers() int { return len(m.tiers) }

// TierName returns the name of tier t.
func (m *Model) TierName(t int) string { return m.tiers[t].name }

// TierNames returns the tier names, best first.
func (m *Model) TierNames() []string {
	names := make([]string, len(m.tiers))
	for i, t := range m.tiers {
		names[i] = t.name
	}
	return names
}

// TierNodeSelectorTerms returns node selector terms (ORed, as in required node affinity) that
// match the nodes tier t's label selectors match, so that a pod can be pinned to the tier with
// whatever labels the provider uses; nil when no label selector defines the tier (the default
// tier, or a tier matched by taint keys only), which node affinity cannot express. A node
// matching the terms that also matches a better tier's selectors is of that better tier.
// The caller may modify the terms it gets.
func (m *Model) TierNodeSelectorTerms(t int) []v1.NodeSelectorTerm {
	out := make([]v1.NodeSelectorTerm, 0, len(m.tiers[t].terms))
	for _, term := range m.tiers[t].terms {
		out = append(out, *term.DeepCopy())
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// PinningTerms returns node selector terms (ORed) that pin a pod to tier t: the tier's own
// (TierNodeSelectorTerms), or for the default tier, which is what no other tier's selector
// matches, one term that matches no other tier's selectors, when node affinity can say so
// (every other tier's selectors test one label each: the default tiers' do). nil otherwise.
func (m *Model) PinningTerms(t int) []v1.NodeSelectorTerm {
	if terms := m.TierNodeSelectorTerms(t); terms != nil || t != m.defaultTier {
		return terms
	}
	// NotIn and DoesNotExist also match nodes without the label: the default tier's.
	var term v1.NodeSelectorTerm
	notIn := map[string][]string{}
	var keys []string
	for i, tier := range m.tiers {
		if i == t {
			continue
		}
		for _, sel := range tier.terms {
			if len(sel.MatchExpressions) != 1 {
				return nil // a conjunction: its negation is an OR, no one term
			}
			r := sel.MatchExpressions[0]
			switch r.Operator {
			case v1.NodeSelectorOpIn:
				if _, ok := notIn[r.Key]; !ok {
					keys = append(keys, r.Key)
				}
				notIn[r.Key] = append(notIn[r.Key], r.Values...)
			case v1.NodeSelectorOpExists:
				term.MatchExpressions = append(term.MatchExpressions, v1.NodeSelectorRequirement{Key: r.Key, Operator: v1.NodeSelectorOpDoesNotExist})
			default:
				return nil
			}
		}
	}
	for _, k := range keys {
		values := slices.Compact(slices.Sorted(slices.Values(notIn[k])))
		term.MatchExpressions = append(term.MatchExpressions, v1.NodeSelectorRequirement{Key: k, Operator: v1.NodeSelectorOpNotIn, Values: values})
	}
	if len(term.MatchExpressions) == 0 {
		return nil
	}
	return []v1.NodeSelectorTerm{term}
}

// nodeSelectorTerm translates a validated label selector into the node selector term that
// matches the same labels (the operators of both are In, NotIn, Exists and DoesNotExist).
func nodeSelectorTerm(sel *metav1.LabelSelector) v1.NodeSelectorTerm {
	var term v1.NodeSelectorTerm
	keys := make([]string, 0, len(sel.MatchLabels))
	for k := range sel.MatchLabels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		term.MatchExpressions = append(term.MatchExpressions, v1.NodeSelectorRequirement{Key: k, Operator: v1.NodeSelectorOpIn, Values: []string{sel.MatchLabels[k]}})
	}
	for _, e := range sel.MatchExpressions {
		term.MatchExpressions = append(term.MatchExpressions, v1.NodeSelectorRequirement{Key: e.Key, Operator: v1.NodeSelectorOperator(e.Operator), Values: slices.Clone(e.Values)})
	}
	return term
}

// Reclaimable reports whether tier t is reclaimable (spot-like) capacity.
func (m *Model) Reclaimable(t int) bool { return m.tiers[t].reclaimable }

// Classify returns the node's tier, risk and pool. Schedulers call it for every node of every
// cycle, so results are cached per node object (see Model.classes).
func (m *Model) Classify(node *v1.Node) Class {
	if v, ok := m.classes.Load(node.Name); ok {
		if c := v.(cachedClass); c.node == node {
			return c.class
		}
	}
	class := m.classify(node)
	if m.cachedCount.Add(1) > maxCachedClasses {
		m.classes.Clear()
		m.cachedCount.Store(0)
	}
	m.classes.Store(node.Name, cachedClass{node: node, class: class})
	return class
}

func (m *Model) classify(node *v1.Node) Class {
	t := m.tierOf(node)
	c := Class{Tier: t, TierName: m.tiers[t].name, Pool: m.PoolOf(node)}
	c.RiskReason = m.riskOf(node)
	c.AtRisk = c.RiskReason != ""
	return c
}

func (m *Model) tierOf(node *v1.Node) int {
	nodeLabels := labels.Set(node.Labels)
	for i := range m.tiers {
		t := &m.tiers[i]
		for _, sel := range t.selectors {
			if sel.Matches(nodeLabels) {
				return i
			}
		}
		if t.taintKeys.Len() > 0 {
			for _, taint := range node.Spec.Taints {
				if t.taintKeys.Has(taint.Key) {
					return i
				}
			}
		}
	}
	return m.defaultTier
}

func (m *Model) riskOf(node *v1.Node) string {
	for _, taint := range node.Spec.Taints {
		if m.IsAtRiskTaint(taint.Key) {
			return taint.Key
		}
	}
	if m.cordonedIsAtRisk && node.Spec.Unschedulable {
		return RiskCordoned
	}
	return ""
}

// IsAtRiskTaint reports whether a taint with this key marks a node at risk.
func (m *Model) IsAtRiskTaint(key string) bool {
	if m.atRiskKeys.Has(key) {
		return true
	}
	for _, p := range m.atRiskPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// PoolOf returns the node's pool key: the first pool label present, then the topology labels,
// as "key=value" parts joined by ",". A node with none of them is a pool of its own.
func (m *Model) PoolOf(node *v1.Node) string {
	var parts []string
	for _, k := range m.poolLabelKeys {
		if v, ok := node.Labels[k]; ok {
			parts = append(parts, k+"="+v)
			break
		}
	}
	for _, k := range m.poolTopologyKeys {
		if v, ok := node.Labels[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 0 {
		return "node=" + node.Name
	}
	return strings.Join(parts, ",")
}

// DefaultPolicy is the cluster-wide capacity policy (policy.None unless configured).
func (m *Model) DefaultPolicy() policy.Policy { return m.defaultPolicy }

// PolicyFor returns the pod's capacity policy: its annotations over the cluster-wide default.
// A malformed annotation gives policy.None and a *policy.InvalidError.
func (m *Model) PolicyFor(pod *v1.Pod) (policy.Policy, error) {
	return policy.ForPod(pod, m.defaultPolicy)
}

// AvoidsSpot reports whether the pod asks to rank reclaimable capacity below on-demand: its
// avoid-spot annotation read as every boolean is (wellknown.AvoidSpot: "true"/"false" in any
// letter case; any other value is read as true, the cautious reading, which the scheduler
// names in a Warning event).
func AvoidsSpot(pod *v1.Pod) bool {
	avoid, _ := wellknown.AvoidSpot.Read(pod.Annotations)
	return avoid
}

// StartTime is when the pod started, or was created if it has not started yet: the age every
// component ranks pods by (oldest placeholders are preempted last, young pods are not moved).
func StartTime(pod *v1.Pod) time.Time {
	if pod.Status.StartTime != nil {
		return pod.Status.StartTime.Time
	}
	return pod.CreationTimestamp.Time
}
