package rebalance

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

// clusterShape turns fuzz bytes into nodes and pods of every shape a real cluster passes
// through: nodes of each tier, at risk, cordoned, without pods; pods running, pending,
// terminating, finished, bound to a node that no longer exists (a reclaim, until the pod
// garbage collector), of unknown owners, bare, DaemonSet pods, placeholders.
func clusterShape(data []byte) ([]*v1.Node, []*v1.Pod) {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	var nodes []*v1.Node
	for i := range int(next()%6) + 1 {
		name := fmt.Sprintf("n%d", i)
		var n *v1.Node
		switch next() % 3 {
		case 0:
			n = spotNode(name, "4")
		case 1:
			n = odNode(name, "4")
		default:
			n = burstNode(name, "8")
		}
		switch next() % 4 {
		case 0:
			n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: "karpenter.sh/disrupted", Effect: v1.TaintEffectNoSchedule})
		case 1:
			n.Spec.Unschedulable = true
		}
		nodes = append(nodes, n)
	}
	var pods []*v1.Pod
	for i := range int(next() % 16) {
		nodeName := ""
		switch b := next() % 8; {
		case b < 5:
			nodeName = nodes[int(b)%len(nodes)].Name
		case b == 5:
			nodeName = "gone" // bound to a node deleted with its pods still there
		}
		p := pod(fmt.Sprintf("p%d", i), fmt.Sprintf("w%d", next()%3), nodeName, fmt.Sprintf("%dm", 250*(1+int(next()%8))))
		switch next() % 9 {
		case 0:
			p.DeletionTimestamp = &metav1.Time{Time: now}
		case 1:
			p.Status.Phase = v1.PodSucceeded
		case 2:
			p.Status.Phase = v1.PodPending
			p.Status.StartTime = nil
		case 3:
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Mystery", Name: "m", UID: types.UID("m"), Controller: ptr.To(true)}}
		case 4:
			p.OwnerReferences = nil
		case 5:
			p.OwnerReferences[0].Kind = "DaemonSet"
		case 6:
			p.Labels["spot-scheduler.io/placeholder"] = "true"
		case 7:
			p.Spec.SchedulerName = "default-scheduler"
		}
		pods = append(pods, p)
	}
	return nodes, pods
}

// FuzzClusterShapes runs the planner and the simulation behind explain (and with them every
// plugin of the shipped profile, SpotScore and the tier gate included) on random cluster
// shapes: they must never fail or panic, and every planned move must leave a node that exists
// for a healthy node of a strictly better tier.
func FuzzClusterShapes(f *testing.F) {
	f.Add([]byte{3, 0, 0, 1, 2, 1, 0, 6, 0, 0, 1, 0, 5, 0, 0, 3, 1, 1, 2, 9, 1, 0, 4})
	f.Add([]byte{1, 0, 0, 4, 5, 0, 0, 0, 5, 1, 2, 0, 6, 2, 1, 8})
	f.Add([]byte{5, 2, 1, 1, 0, 0, 2, 1, 3, 0, 3, 15, 4, 1, 7, 3, 0, 2, 2, 4, 1, 1, 5, 5, 2, 0, 6, 0, 1, 1})
	sim := testProfile(f, "")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, ctx := ktesting.NewTestContext(t)
		nodes, pods := clusterShape(data)
		plan, err := PlanMoves(ctx, sim, nodes, pods, now, DefaultOptions(), nil)
		if err != nil {
			t.Fatalf("PlanMoves: %v", err)
		}
		byName := map[string]*v1.Node{}
		for _, n := range nodes {
			byName[n.Name] = n
		}
		for _, m := range plan.Moves {
			from, to := byName[m.From], byName[m.To]
			if from == nil || to == nil {
				t.Fatalf("move %s from %q to %q: both nodes must exist", m.Pod.Name, m.From, m.To)
			}
			fc, tc := sim.Model.Classify(from), sim.Model.Classify(to)
			avoid := false
			if tc.AtRisk || sim.Ranker.TierRank(tc.Tier, avoid) >= sim.Ranker.TierRank(fc.Tier, avoid) {
				t.Fatalf("move %s from %s (%+v) to %s (%+v): target must be healthy and of a strictly better tier", m.Pod.Name, m.From, fc, m.To, tc)
			}
		}
		for _, p := range pods {
			var others []*v1.Pod
			for _, o := range pods {
				if o.UID != p.UID {
					others = append(others, o)
				}
			}
			session := sim.Begin(sim.NewSnapshot(nodes, others, false))
			eval, err := session.Evaluate(ctx, simulator.Unbound(p))
			session.End()
			if err != nil {
				t.Fatalf("Evaluate %s: %v", p.Name, err)
			}
			if len(eval.Nodes) != len(nodes) {
				t.Fatalf("Evaluate %s: %d verdicts for %d nodes", p.Name, len(eval.Nodes), len(nodes))
			}
		}
	})
}
