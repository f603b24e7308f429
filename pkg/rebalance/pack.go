package rebalance

import (
	"context"
	"slices"
	"sort"

	v1 "k8s.io/api/core/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// pack is the planner's last phase (--pack-within-tier): when failback has nothing to move
// and no pod of the profile waits for a node, it empties the least requested node whose
// every pod the scheduler would place on the other nodes of the same band (or a better one),
// all or nothing, within the disruption budgets. The controller taints the node
// (wellknown.PackingTaintKey) before it evicts, so the node stays empty and the autoscaler
// removes it (Karpenter's WhenEmpty): inside a tier the pods' requests then sit on fewer
// nodes, and a pool at its limit has room to launch whole nodes when load rises, instead of
// the autoscaler falling back to a worse tier. One node per pass: the next is chosen on the
// state the moves leave, and a workload's budget is spent on one node at a time.
func (pl *planner) pack(ctx context.Context, pods, candidates []*v1.Pod) error {
	if !pl.opts.PackWithinTier || len(pl.plan.Moves) > 0 {
		return nil
	}
	for _, pod := range pods {
		// A pod waiting for a node (a new replica, a replacement, a failback buffer's
		// placeholder) needs room, not fewer nodes.
		if pod.Spec.NodeName == "" && pod.Spec.SchedulerName == pl.sim.SchedulerName && pod.DeletionTimestamp == nil &&
			pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed {
			return nil
		}
	}
	for _, s := range pl.packSources(pods, candidates) {
		emptied, err := pl.empty(ctx, s, pl.tryPack)
		if err != nil {
			return err
		}
		if emptied { // one node per pass
			pl.plan.PackedNodes = append(pl.plan.PackedNodes, s.name)
			return nil
		}
	}
	return nil
}

// packSources are the healthy nodes, not already being packed nor just released from it,
// whose every pod but DaemonSet and mirror pods is the profile's and may move, least
// requested first.
func (pl *planner) packSources(pods, candidates []*v1.Pod) []*sourceNode {
	sources := map[string]*sourceNode{}
	for _, n := range pl.targets {
		if !HasPackingTaint(n) && (pl.opts.packBackoff == nil || !pl.opts.packBackoff(n.Name)) {
			sources[n.Name] = &sourceNode{name: n.Name}
		}
	}
	movable := map[*v1.Pod]bool{}
	for _, pod := range candidates {
		if pod.Spec.SchedulerName == pl.sim.SchedulerName {
			if reason, _ := protection(pod, pl.now, pl.opts); reason == "" {
				movable[pod] = true
			}
		}
	}
	for _, pod := range pods {
		s := sources[pod.Spec.NodeName]
		switch {
		case s == nil || pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed:
		case movable[pod]:
			s.movable = append(s.movable, pod)
		case !isDaemonOrMirror(pod):
			s.blocking++ // placeholders included: the node would not be empty
		}
	}
	var order []*sourceNode
	for _, s := range sources {
		if len(s.movable) == 0 || s.blocking > 0 {
			continue
		}
		ni, err := pl.snapshot.Get(s.name)
		if err != nil {
			continue
		}
		s.requested = ni.GetRequested().GetMilliCPU()
		sort.Slice(s.movable, func(i, j int) bool { return biggerFirst(s.movable[i], s.movable[j]) })
		order = append(order, s)
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].requested != order[j].requested {
			return order[i].requested < order[j].requested
		}
		return order[i].name < order[j].name
	})
	return order
}

// HasPackingTaint reports whether the rebalancer is emptying the node (pack.go).
func HasPackingTaint(n *v1.Node) bool {
	return slices.ContainsFunc(n.Spec.Taints, isPackingTaint)
}

func isPackingTaint(t v1.Taint) bool { return t.Key == wellknown.PackingTaintKey }
