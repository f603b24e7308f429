package preempt

import (
	"context"
	"math"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
)

// The tier gate makes headroom work across tiers. Preemption runs only when a pod fits
// nowhere, so without the gate a pod would take free on-demand room rather than displace
// placeholders holding room on spot, and the rebalancer, which counts placeholder room as
// free, would evict it again and again. The gate's Filter rejects every node of a worse band
// than the best band where the pod fits once placeholders are removed; when that best node is
// full of placeholders, no node is feasible and PostFilter preempts them there.

const (
	// ErrReasonPlaceholderRoom is the Filter reason on nodes the gate rejects.
	ErrReasonPlaceholderRoom = "a better capacity tier has room held by placeholders"
	gateStateKey             = "Filter" + Name
)

// gateState is written by PreFilter and completed once per scheduling cycle, on the first
// Filter call.
type gateState struct {
	once  sync.Once
	model *capacity.Model
	// bestBand is the best band with a node on which the pod fits after removing its
	// placeholders; math.MaxInt when there is none.
	bestBand int
	// order is how the pod ranks nodes in this cycle (SpotScore's, capacity policy included),
	// set with bestBand.
	order ranking.Order
}

// Clone shares the state: it is written once and read afterwards.
func (s *gateState) Clone() fwk.StateData { return s }

// Filter rejects nodes of a worse band than a node where placeholders hold room for the pod.
// It runs only in cycles where PreFilter found the gate relevant.
func (pl *PlaceholderPreemption) Filter(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo) *fwk.Status {
	if ranking.ModeOf(state).Has(ranking.NoTierGate) {
		return nil // our own fit check running the filters, or a simulation without placeholders
	}
	gs := pl.gate(ctx, state, pod)
	if gs == nil || gs.bestBand == math.MaxInt || nodeInfo.Node() == nil {
		return nil
	}
	if gs.order.Band(gs.model.Classify(nodeInfo.Node())) > gs.bestBand {
		return fwk.NewStatus(fwk.Unschedulable, ErrReasonPlaceholderRoom)
	}
	return nil
}

// PreFilter decides, once per cycle, whether the gate has anything to do; if not, it returns
// Skip and the framework leaves the gate's Filter out of the cycle: pods that cannot preempt
// (placeholders, preemptionPolicy Never), profiles without SpotScore's tiers, and clusters
// where no node hosts a placeholder (a cached lookup per node). Otherwise the gate's fit check
// needs every plugin's PreFilter state, so it runs lazily, once, on the first Filter call.
func (pl *PlaceholderPreemption) PreFilter(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodes []fwk.NodeInfo) (*framework.PreFilterResult, *fwk.Status) {
	model := pl.model()
	if model == nil || !pl.canPreempt(pod) || !pl.anyHostsPlaceholders(state, nodes) {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	state.Write(gateStateKey, &gateState{model: model, bestBand: math.MaxInt})
	return nil, nil
}

// anyHostsPlaceholders: SpotScore's PreFilter, which runs first in a profile with both
// (multiPoint order), has counted the nodes hosting a placeholder in its walk over the nodes;
// otherwise the placeholder-room index counts them (ranking.PlaceholderIndex.HostingNodes).
func (pl *PlaceholderPreemption) anyHostsPlaceholders(state fwk.CycleState, nodes []fwk.NodeInfo) bool {
	if n, ok := spotscore.PlaceholderNodes(state); ok {
		return n > 0
	}
	return pl.placeholders.HostingNodes(nodes) > 0
}

// PreFilterExtensions of the PreFilter plugin: none.
func (pl *PlaceholderPreemption) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// gate returns the cycle's gate state, computing it on first use; nil if PreFilter did not run.
func (pl *PlaceholderPreemption) gate(ctx context.Context, state fwk.CycleState, pod *v1.Pod) *gateState {
	c, err := state.Read(gateStateKey)
	if err != nil {
		return nil
	}
	gs, ok := c.(*gateState)
	if !ok {
		return nil
	}
	gs.once.Do(func() {
		order, ok := spotscore.OrderFor(state)
		if !ok {
			order = ranking.New(gs.model).ForPod(pod)
		}
		gs.order = order
		gs.bestBand = pl.bestPlaceholderBand(ctx, state, pod, gs.model, order)
	})
	return gs
}

// bestPlaceholderBand simulates removing the placeholders of each healthy node that hosts
// some, with upstream's victim search (which runs every Filter plugin), and returns the best
// band where the pod then fits.
func (pl *PlaceholderPreemption) bestPlaceholderBand(ctx context.Context, state fwk.CycleState, pod *v1.Pod, model *capacity.Model, order ranking.Order) int {
	logger := klog.FromContext(ctx)
	best := math.MaxInt
	nodeInfos, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		logger.Error(err, "Listing nodes for the tier gate")
		return best
	}
	for _, ni := range nodeInfos {
		// Cheapest test first: most nodes host no placeholder. A NodeInfo without a node
		// (pods bound to a node that is gone) is no place for anyone.
		if ni.Node() == nil || !pl.placeholders.Hosts(ni) {
			continue
		}
		class := model.Classify(ni.Node())
		band := order.Band(class)
		if class.AtRisk || band >= best {
			continue
		}
		sim := state.Clone()
		// The question is whether the pod fits once the placeholders are gone, whatever
		// the band: the gate and SpotScore's own search stand aside.
		ranking.SetMode(sim, ranking.NoTierGate|ranking.NoTierSearch)
		if _, _, status := pl.victimSearch.SelectVictimsOnNode(ctx, sim, pod, ni.Snapshot(), nil); status.IsSuccess() {
			best = band
		}
	}
	return best
}

// canPreempt: the gate must never keep a pod that cannot take placeholder room off worse
// tiers.
func (pl *PlaceholderPreemption) canPreempt(pod *v1.Pod) bool {
	return ranking.MayTakePlaceholderRoom(pod, pl.IsPlaceholder)
}

// EventsToRegister: a pod the gate rejected may fit after placeholders leave a node or a
// node changes; the queue retries it then.
func (pl *PlaceholderPreemption) EventsToRegister(_ context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.Pod, ActionType: fwk.Delete}, QueueingHintFn: spotscore.RoomOpenedByPodDelete(pl.handle)},
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeLabel | fwk.UpdateNodeTaint | fwk.UpdateNodeAllocatable}},
	}, nil
}

var _ framework.PreFilterPlugin = &PlaceholderPreemption{}
var _ framework.FilterPlugin = &PlaceholderPreemption{}
var _ framework.EnqueueExtensions = &PlaceholderPreemption{}
