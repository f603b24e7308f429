// Package spotscore is the SpotScore scheduler plugin: it ranks nodes by capacity tier (a
// feasible node of a better tier always beats every node of a worse tier), puts at-risk nodes
// below every healthy one, and spreads a workload's pods across pools within a tier.
package spotscore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/kubernetes/pkg/scheduler/util"
	"k8s.io/utils/lru"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/profilestate"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
)

const (
	// Name is the name of the plugin used in the plugin registry and configurations.
	Name = "SpotScore"
	// preFilterStateKey and preScoreStateKey are SpotScore's keys in CycleState.
	preFilterStateKey = "PreFilter" + Name
	preScoreStateKey  = "PreScore" + Name
)

// errNodeNotFound is what the in-tree plugins answer for a NodeInfo without a node; the
// scheduler never scores one, but a caller building its own snapshot might.
var errNodeNotFound = errors.New("node not found")

// SpotScore is a score plugin ordering nodes by capacity tier, risk and pool spread.
type SpotScore struct {
	handle framework.Handle
	model  *capacity.Model
	ranker *ranking.Ranker
	// bandWidth is the score span of one band (tier x risk); spreadRange is the part of a band
	// the spread bonus may use. The rest of the band is the gap that keeps bands strict.
	bandWidth   int64
	spreadRange int64
	// index keeps every node's class, every workload's pods by tier and pool, and the nodes
	// hosting placeholders up to date with the nodes that changed since the last cycle.
	index *nodeIndex

	// The tier search (tiersearch.go): what the profile allows it (off until checkProfile
	// has seen the profile: a framework built for simulation never runs it), the profile's shared
	// state (the placeholder rule and its placeholder-room index), and the pods whose narrowed
	// search failed.
	search  searchConfig
	shared  *profilestate.Registry
	widened *lru.Cache
	// nextStart moves the tier search's first node on, cycle after cycle.
	nextStart atomic.Uint64
	// readHistory starts reading the reclaim history once, in a scheduler (risk.go).
	readHistory sync.Once
}

var _ framework.PreFilterPlugin = &SpotScore{}
var _ framework.FilterPlugin = &SpotScore{}
var _ framework.PostFilterPlugin = &SpotScore{}
var _ framework.PreScorePlugin = &SpotScore{}
var _ framework.ScorePlugin = &SpotScore{}
var _ framework.EnqueueExtensions = &SpotScore{}

// NewFactory returns SpotScore's factory. The plugin records the capacity model its args
// define in shared, where the profile's other plugins (PlaceholderPreemption) and the
// simulator read it.
func NewFactory(shared *profilestate.Registry) frameworkruntime.PluginFactory {
	return func(ctx context.Context, obj runtime.Object, h framework.Handle) (framework.Plugin, error) {
		pl, err := New(ctx, obj, h)
		if err != nil {
			return nil, err
		}
		pl.(*SpotScore).shared = shared
		shared.SetModel(h, pl.(*SpotScore).model)
		return pl, nil
	}
}

// New validates the args and builds the plugin. Bad args fail the scheduler's start-up with
// the path of the field at fault.
func New(_ context.Context, obj runtime.Object, h framework.Handle) (framework.Plugin, error) {
	args, err := v1alpha1.DecodeSpotScoreArgs(obj, field.NewPath("pluginConfig").Key(Name).Child("args"))
	if err != nil {
		return nil, err
	}
	model, err := capacity.New(args.CapacityModel)
	if err != nil {
		return nil, err
	}
	return newWithModel(h, model, *args.SpreadWeight), nil
}

func newWithModel(h framework.Handle, model *capacity.Model, spreadWeight int32) *SpotScore {
	ranker := ranking.New(model)
	bandWidth := framework.MaxNodeScore / int64(ranker.NumBands())
	pl := &SpotScore{
		handle:      h,
		model:       model,
		ranker:      ranker,
		bandWidth:   bandWidth,
		spreadRange: bandWidth * int64(spreadWeight) / 100,
		widened:     lru.New(widenedPods),
	}
	pl.index = pl.newNodeIndex()
	return pl
}

// Name returns name of the plugin. It is used in logs, etc.
func (pl *SpotScore) Name() string { return Name }

// preFilterState is what SpotScore knows of the pod before any node is looked at.
type preFilterState struct {
	// order is how the pod ranks nodes this cycle: its avoid-spot annotation and its capacity
	// policy's decision for the workload's next replica (policy.go).
	order ranking.Order
	// podsPerPool counts the pods of the pod's workload in each pool, over all nodes (only
	// with a spread bonus).
	podsPerPool map[string]int
	// classes are the cycle's node classes (the snapshot's node list).
	classes *ranking.NodeClasses
	// placeholderNodes counts the cycle's nodes hosting a placeholder (PlaceholderNodes).
	placeholderNodes int
	// reclaims are the reclaim history's counts the cycle ranks pools with (risk.go); nil
	// without ranking by risk.
	reclaims capacity.Reclaims
}

// Clone implements the mandatory Clone interface. The state is never changed once written.
func (s *preFilterState) Clone() fwk.StateData { return s }

// preScoreState adds what depends on the feasible nodes.
type preScoreState struct {
	*preFilterState
	// maxPodsInPool is the highest count among the candidates' pools.
	maxPodsInPool int
	// rankByRisk: a pool has reclaims (risk.go); the spread bonus is then taken of the pools'
	// loads, maxLoad the highest among the candidates'. pl scores for ReclaimEffect.
	rankByRisk bool
	maxLoad    float64
	pl         *SpotScore
	// scores holds every candidate's score by node name. PreScore gets the candidates as a
	// list and classifies them in parallel; Score then costs one map lookup per node.
	scores map[string]int64
}

// Clone implements the mandatory Clone interface. The state is never changed once written.
func (s *preScoreState) Clone() fwk.StateData { return s }

// PreFilter does the work that depends on neither the node nor the filters' verdicts, once per
// cycle: the pod's tier order and where its workload already runs; then the tier search
// (tiersearch.go) may narrow the nodes to the pod's best band. It never rejects a pod.
func (pl *SpotScore) PreFilter(ctx context.Context, cycleState fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) (*framework.PreFilterResult, *fwk.Status) {
	key, _ := capacity.WorkloadKey(pod)
	view := pl.index.view(nodes, key)
	s := &preFilterState{classes: view.classes, placeholderNodes: view.placeholderNodes, reclaims: pl.readReclaims()}
	// The capacity policy hook (policy.go): its decision for the workload's next replica.
	s.order = pl.ranker.For(pl.readBooleans(ctx, pod), pl.policyDecision(ctx, pod, view.workloadPods))
	if pl.spreadRange > 0 {
		s.podsPerPool = map[string]int{}
		for at, n := range view.workloadPods {
			s.podsPerPool[at.pool] += n
		}
	}
	cycleState.Write(preFilterStateKey, s)
	return pl.searchTiers(ctx, cycleState, s, pod, nodes), nil
}

// PreFilterExtensions of the PreFilter plugin: none. The tier search's Filter depends on
// other pods only through the other filters, which it runs.
func (pl *SpotScore) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// PreScore finds the most crowded pool among the feasible nodes' pools and scores every
// feasible node.
func (pl *SpotScore) PreScore(ctx context.Context, cycleState fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) *fwk.Status {
	pre, err := readState[*preFilterState](cycleState, preFilterStateKey)
	if err != nil {
		return fwk.AsStatus(err)
	}
	s := &preScoreState{preFilterState: pre, scores: make(map[string]int64, len(nodes)), pl: pl}
	classes := make([]capacity.Class, len(nodes))
	for i, ni := range nodes {
		node := ni.Node()
		if node == nil {
			return fwk.AsStatus(errNodeNotFound)
		}
		// The cycle's nodes are the snapshot's, classified in PreFilter: a lookup by name.
		var ok bool
		if classes[i], ok = pre.classes.Class(node); !ok {
			classes[i] = pl.model.Classify(node)
		}
	}
	if len(pre.podsPerPool) > 0 {
		for _, c := range classes {
			s.maxPodsInPool = max(s.maxPodsInPool, pre.podsPerPool[c.Pool])
		}
	}
	if s.rankByRisk = pl.model.RanksByRisk(pre.reclaims); s.rankByRisk {
		s.maxLoad = pl.maxLoad(s, classes)
	}
	for i, c := range classes {
		s.scores[nodes[i].Node().Name] = pl.score(s, c)
	}
	cycleState.Write(preScoreStateKey, s)
	return nil
}

func readState[T fwk.StateData](cycleState fwk.CycleState, key fwk.StateKey) (T, error) {
	var zero T
	c, err := cycleState.Read(key)
	if err != nil {
		return zero, fmt.Errorf("reading %q from cycleState: %w", key, err)
	}
	s, ok := c.(T)
	if !ok {
		return zero, fmt.Errorf("%q holds %T, want %T", key, c, zero)
	}
	return s, nil
}

// Score returns the node's score computed in PreScore.
func (pl *SpotScore) Score(ctx context.Context, cycleState fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo) (int64, *fwk.Status) {
	if nodeInfo.Node() == nil {
		return 0, fwk.AsStatus(errNodeNotFound)
	}
	s, err := readState[*preScoreState](cycleState, preScoreStateKey)
	if err != nil {
		return 0, fwk.AsStatus(err)
	}
	if score, ok := s.scores[nodeInfo.Node().Name]; ok {
		return score, nil
	}
	// Not among PreScore's candidates (a caller scoring other nodes): score it now.
	return pl.score(s, pl.model.Classify(nodeInfo.Node())), nil
}

// score places a node of class c in its band (tier rank for this pod, healthy before at
// risk), then adds the spread bonus, which never reaches the next band.
func (pl *SpotScore) score(s *preScoreState, c capacity.Class) int64 {
	band := int64(s.order.Band(c))
	return (int64(pl.ranker.NumBands())-1-band)*pl.bandWidth + pl.spreadBonusFor(s, c)
}

// spreadBonus favours pools holding fewer pods of the workload, scaled to spreadRange.
func (pl *SpotScore) spreadBonus(s *preScoreState, pool string) int64 {
	if s.maxPodsInPool == 0 {
		return pl.spreadRange
	}
	return pl.spreadRange * int64(s.maxPodsInPool-s.podsPerPool[pool]) / int64(s.maxPodsInPool)
}

// ScoreExtensions of the Score plugin: none, Score already returns 0..MaxNodeScore.
func (pl *SpotScore) ScoreExtensions() framework.ScoreExtensions { return nil }

// RequiredWeight is the lowest SpotScore weight that keeps tier order strict in a profile whose
// other score plugins weigh otherWeights in total: the smallest gap between two bands, times
// the weight, must exceed what all other plugins together can add (each at most MaxNodeScore).
func (pl *SpotScore) RequiredWeight(otherWeights int64) int64 {
	gap := pl.bandWidth - pl.spreadRange
	return otherWeights*framework.MaxNodeScore/gap + 1
}

// profileView is the part of the framework a plugin's handle offers once the profile is built.
type profileView interface {
	ProfileName() string
	ListPlugins() *config.Plugins
	PercentageOfNodesToScore() *int32
}

// placeholderGate is PlaceholderPreemption's name (package preempt imports this one): its
// Filter is the tier gate, whose placeholder room the tier search counts as free.
const placeholderGate = "PlaceholderPreemption"

// checkProfile refuses a profile in which SpotScore cannot keep its promise that a feasible
// node of a better tier always wins: its weight must outweigh every other score plugin, and
// sampling (percentageOfNodesToScore below 100, or unset) needs the tier search, which runs in
// SpotScore's Filter. It also sets what the tier search may do in this profile.
func (pl *SpotScore) checkProfile() error {
	p, ok := pl.handle.(profileView)
	if !ok {
		// The framework's handle has exposed its profile since the scheduler framework's
		// profiles existed; a kube-scheduler that stopped would silently turn off this check
		// and the tier search, so refuse to start instead.
		return fmt.Errorf("the scheduler framework's handle (%T) does not expose its profile (ProfileName, ListPlugins, PercentageOfNodesToScore): "+
			"%s cannot check the profile's weights nor run its tier search with this kube-scheduler version", pl.handle, Name)
	}
	plugins := p.ListPlugins()
	var own, others int64
	for _, sp := range plugins.Score.Enabled {
		if sp.Name == Name {
			own = int64(sp.Weight)
		} else {
			others += int64(sp.Weight)
		}
	}
	if need := pl.RequiredWeight(others); own < need {
		return fmt.Errorf("profile %q: plugins.score.enabled[%s].weight is %d; the profile's other score plugins weigh %d in total, "+
			"so strict tier order needs a weight of at least %d", p.ProfileName(), Name, own, others, need)
	}
	pl.search = searchConfigFor(pluginNames(plugins.Filter.Enabled), pluginNames(plugins.PostFilter.Enabled), placeholderGate)
	pl.search.on = pl.search.on && slices.Contains(pluginNames(plugins.PreFilter.Enabled), Name)
	pl.search.percentage = p.PercentageOfNodesToScore()
	if pct := p.PercentageOfNodesToScore(); (pct == nil || *pct != 100) && !pl.search.on {
		return fmt.Errorf("profile %q: percentageOfNodesToScore samples nodes (unset or below 100), which keeps tier order strict only with %s's tier search: "+
			"enable %s at preFilter and filter (plugins.multiPoint does both), or set percentageOfNodesToScore: 100", p.ProfileName(), Name, Name)
	}
	return nil
}

func pluginNames(ps []config.Plugin) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// EventsToRegister returns the events after which a pod SpotScore rejected may fit: SpotScore
// rejects a pod only through the tier search's narrowing (the nodes it left out count as
// rejected by SpotScore when the narrowed cycle fails), so these are the events that can make
// a left-out node pass the node-local checks: a node added, or changed for the better (tier,
// risk, taints, labels, cordon, allocatable), and a bound pod deleted. The scheduler calls
// EventsToRegister once the profile is complete, before it schedules anything: that is where
// the profile is checked, so that a profile breaking strict tier order fails start-up.
func (pl *SpotScore) EventsToRegister(ctx context.Context) ([]fwk.ClusterEventWithHint, error) {
	if err := pl.checkProfile(); err != nil {
		return nil, err
	}
	pl.readHistory.Do(func() { pl.startReclaimHistory(ctx) })
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeLabel | fwk.UpdateNodeTaint | fwk.UpdateNodeAllocatable}, QueueingHintFn: pl.mayFitAfterNodeChange},
		{Event: fwk.ClusterEvent{Resource: fwk.Pod, ActionType: fwk.Delete}, QueueingHintFn: pl.mayFitAfterPodDelete},
	}, nil
}

// mayFitAfterNodeChange queues the pod when a node appeared, or changed in a way that can let
// the pod pass a node-local check it failed or rank the node better: a better band, more
// allocatable, a taint gone, a label changed, the cordon lifted. A node that only got worse
// (an interruption notice, a new taint, a cordon) cannot.
func (pl *SpotScore) mayFitAfterNodeChange(logger klog.Logger, pod *v1.Pod, oldObj, newObj interface{}) (fwk.QueueingHint, error) {
	oldNode, newNode, err := util.As[*v1.Node](oldObj, newObj)
	if err != nil {
		return fwk.Queue, err
	}
	if oldNode == nil {
		return fwk.Queue, nil
	}
	order := pl.ranker.ForPod(pod)
	if order.Band(pl.model.Classify(newNode)) < order.Band(pl.model.Classify(oldNode)) {
		return fwk.Queue, nil
	}
	if grew(oldNode.Status.Allocatable, newNode.Status.Allocatable) || taintGone(oldNode.Spec.Taints, newNode.Spec.Taints) ||
		(oldNode.Spec.Unschedulable && !newNode.Spec.Unschedulable) || !maps.Equal(oldNode.Labels, newNode.Labels) {
		return fwk.Queue, nil
	}
	logger.V(5).Info("Node only got worse for the pod", "pod", klog.KObj(pod), "node", klog.KObj(newNode))
	return fwk.QueueSkip, nil
}

func grew(old, cur v1.ResourceList) bool {
	for name, q := range cur {
		if o, ok := old[name]; !ok || q.Cmp(o) > 0 {
			return true
		}
	}
	return false
}

// taintGone: a taint of old is not in cur.
func taintGone(old, cur []v1.Taint) bool {
	for i := range old {
		if !slices.ContainsFunc(cur, func(t v1.Taint) bool { return t.MatchTaint(&old[i]) }) {
			return true
		}
	}
	return false
}

// mayFitAfterPodDelete queues the pod when a bound pod was deleted: room opened on its node.
func (pl *SpotScore) mayFitAfterPodDelete(logger klog.Logger, pod *v1.Pod, oldObj, newObj interface{}) (fwk.QueueingHint, error) {
	return RoomOpenedByPodDelete(pl.handle)(logger, pod, oldObj, newObj)
}

// RoomOpenedByPodDelete is the QueueingHint on pod deletions of a plugin that rejects nodes
// for want of room (SpotScore's tier search, the tier gate, whose placeholders going away free
// the room it pointed at): it queues the pod when a pod bound to a node that still exists was
// deleted.
func RoomOpenedByPodDelete(h framework.Handle) fwk.QueueingHintFn {
	return func(logger klog.Logger, pod *v1.Pod, oldObj, _ interface{}) (fwk.QueueingHint, error) {
		deleted, _, err := util.As[*v1.Pod](oldObj, nil)
		if err != nil {
			return fwk.Queue, err
		}
		if deleted.Spec.NodeName == "" {
			return fwk.QueueSkip, nil
		}
		// Hints run outside scheduling cycles: read the informer's cache, not the cycle snapshot.
		if _, err := h.SharedInformerFactory().Core().V1().Nodes().Lister().Get(deleted.Spec.NodeName); err != nil {
			return fwk.QueueSkip, nil // the node is gone too: no room opened
		}
		logger.V(5).Info("A bound pod was deleted, room opened", "pod", klog.KObj(pod), "deletedPod", klog.KObj(deleted), "node", deleted.Spec.NodeName)
		return fwk.Queue, nil
	}
}
