package rebalance

import (
	"context"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	"k8s.io/kubernetes/pkg/controller"

	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// packingHold: a node the rebalancer tainted to pack it still holds pods this long after the
// taint (an eviction refused by a PodDisruptionBudget, a pod that came back): the node is not
// going to empty, so its room is given back. Long enough for the evicted pods to terminate
// (the default grace period is 30 s).
const packingHold = 2 * time.Minute

// packingBackoff: a node released for still holding pods is not packed again for this long,
// so that a PodDisruptionBudget that keeps refusing does not make the node's taint come and
// go every packingHold.
const packingBackoff = 10 * time.Minute

// packBackoff tells whether the node was released from packing within packingBackoff.
func (c *Controller) packBackoff(node string) bool {
	released, ok := c.packReleased[node]
	return ok && c.clock.Since(released) < packingBackoff
}

// taintForPacking puts the packing taint on the node, so that no new pod (the evicted pods'
// replacements among them) lands there while it empties.
func (c *Controller) taintForPacking(ctx context.Context, name string) error {
	now := metav1.NewTime(c.clock.Now())
	return controller.AddOrUpdateTaintOnNode(ctx, c.client, name, &v1.Taint{Key: wellknown.PackingTaintKey, Effect: v1.TaintEffectNoSchedule, TimeAdded: &now})
}

// releasePackingTaints removes the packing taint from nodes that are not going to empty:
// every such node when a pod of the profile cannot be scheduled (it needs the room more than
// the autoscaler needs the node gone), else those still holding pods packingHold after the
// taint. An empty tainted node keeps it until the autoscaler removes the node.
func (c *Controller) releasePackingTaints(ctx context.Context, nodes []*v1.Node, pods []*v1.Pod) {
	var tainted []*v1.Node
	for _, n := range nodes {
		if HasPackingTaint(n) {
			tainted = append(tainted, n)
		}
	}
	for name := range c.packReleased {
		if !c.packBackoff(name) {
			delete(c.packReleased, name)
		}
	}
	if len(tainted) == 0 {
		return
	}
	unschedulable := slices.ContainsFunc(pods, func(p *v1.Pod) bool {
		return p.Spec.NodeName == "" && p.Spec.SchedulerName == c.sim.SchedulerName && p.DeletionTimestamp == nil && isUnschedulable(p)
	})
	occupied := map[string]bool{}
	for _, p := range pods {
		if p.Spec.NodeName != "" && p.DeletionTimestamp == nil && p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed && !isDaemonOrMirror(p) {
			occupied[p.Spec.NodeName] = true
		}
	}
	logger := klog.FromContext(ctx)
	for _, n := range tainted {
		i := slices.IndexFunc(n.Spec.Taints, isPackingTaint)
		added := n.Spec.Taints[i].TimeAdded
		held := added == nil || c.clock.Since(added.Time) >= packingHold
		reason := ""
		switch {
		case unschedulable:
			reason = "a pod of the profile is unschedulable"
		case occupied[n.Name] && held:
			reason = "the node still holds pods"
		default:
			continue
		}
		if err := controller.RemoveTaintOffNode(ctx, c.client, n.Name, nil, &n.Spec.Taints[i]); err != nil {
			logger.Error(err, "Removing the packing taint", "node", n.Name)
			continue
		}
		if !unschedulable {
			c.packReleased[n.Name] = c.clock.Now()
		}
		packingReleasedTotal.Inc()
		logger.Info("Removed the packing taint", "node", n.Name, "reason", reason)
		c.recorder.Eventf(n, nil, v1.EventTypeNormal, "PackingReleased", "Pack", "Removed taint %s: %s", wellknown.PackingTaintKey, reason)
	}
}

func isUnschedulable(p *v1.Pod) bool {
	_, scheduled := podutil.GetPodCondition(&p.Status, v1.PodScheduled)
	return scheduled != nil && scheduled.Status == v1.ConditionFalse && scheduled.Reason == v1.PodReasonUnschedulable
}

// taintPackedNodes taints the source of every packing move before any of its pods is
// evicted; a node that cannot be tainted keeps its pods (its moves are dropped).
func (c *Controller) taintPackedNodes(ctx context.Context, todo []Move, dropped []Skip) ([]Move, []Skip) {
	failed := map[string]bool{}
	tainted := map[string]bool{}
	logger := klog.FromContext(ctx)
	for _, m := range todo {
		if !m.ForPacking || tainted[m.From] || failed[m.From] {
			continue
		}
		if err := c.taintForPacking(ctx, m.From); err != nil {
			logger.Error(err, "Tainting a node to pack it", "node", m.From)
			failed[m.From] = true
			continue
		}
		tainted[m.From] = true
		packedNodesTotal.Inc()
		logger.Info("Packing node: its pods fit on other nodes of its tier", "node", m.From, "tier", m.FromTier)
		if n, err := c.nodes.Get(m.From); err == nil {
			c.recorder.Eventf(n, nil, v1.EventTypeNormal, "Packing", "Pack", "Emptying the node onto other %s nodes (taint %s); the autoscaler can remove it", m.FromTier, wellknown.PackingTaintKey)
		}
	}
	var keep []Move
	for _, m := range todo {
		if m.ForPacking && failed[m.From] {
			dropped = append(dropped, Skip{Pod: m.Pod, Node: m.From, Reason: SkipChanged})
			continue
		}
		keep = append(keep, m)
	}
	return keep, dropped
}
