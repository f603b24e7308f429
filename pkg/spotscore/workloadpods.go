package spotscore

import (
	"maps"
	"sync"

	fwk "k8s.io/kube-scheduler/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/pernode"
)

// workloadPods counts every workload's pods by tier and pool over the scheduler's node list.
// The spread bonus and the capacity policy need, for each pod, where the rest of its workload
// runs; recounting that over every node for every pod cost a lookup per node and pod. The
// counts are kept instead, and brought up to date at each cycle with the nodes that changed
// since the last one (pernode.Tracker): in a scheduler, the node of the pod bound last cycle
// and the nodes the informers updated. The total is always that of the node list of the
// latest call, so any caller's snapshot (the scheduler's, a simulation's) gets exact counts;
// a caller alternating between snapshots pays a cached lookup per node, as before.
type workloadPods struct {
	mu      sync.Mutex
	tracker *pernode.Tracker[nodeWorkloads]
	// counts: workload key (capacity.WorkloadKey) -> tier and pool -> pods. No zero entries.
	counts map[string]map[tierPool]int
}

// tierPool is where a pod runs, as far as the spread and the policy care.
type tierPool struct {
	tier int
	pool string
}

// nodeWorkloads is one node's share of the counts: its tier and pool, and its pods per
// workload. Never modified once computed (the tracker's cache hands it out again).
type nodeWorkloads struct {
	at   tierPool
	pods map[string]int
}

func newWorkloadPods(model *capacity.Model) *workloadPods {
	compute := func(ni fwk.NodeInfo) nodeWorkloads {
		n := nodeWorkloads{pods: countWorkloads(ni)}
		if node := ni.Node(); node != nil {
			c := model.Classify(node)
			n.at = tierPool{tier: c.Tier, pool: c.Pool}
		}
		return n
	}
	return &workloadPods{
		tracker: pernode.NewTracker(pernode.New(compute)),
		counts:  map[string]map[tierPool]int{},
	}
}

// countWorkloads counts the pods on a node per workload.
func countWorkloads(ni fwk.NodeInfo) map[string]int {
	var counts map[string]int
	for _, p := range ni.GetPods() {
		if key, ok := capacity.WorkloadKey(p.GetPod()); ok {
			if counts == nil {
				counts = map[string]int{}
			}
			counts[key]++
		}
	}
	return counts
}

// of returns the workload's pods on nodes by tier and pool: the caller's own copy. The pod
// being scheduled is not among them: the scheduler's cycle is for a pod not yet bound, and the
// rebalancer's simulations take the pod off its node first.
func (w *workloadPods) of(nodes []fwk.NodeInfo, key string) map[tierPool]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tracker.Sync(nodes, func(n nodeWorkloads) { w.add(n, -1) }, func(n nodeWorkloads) { w.add(n, 1) })
	return maps.Clone(w.counts[key])
}

func (w *workloadPods) add(n nodeWorkloads, sign int) {
	for key, pods := range n.pods {
		perPool := w.counts[key]
		if perPool == nil {
			perPool = map[tierPool]int{}
			w.counts[key] = perPool
		}
		if perPool[n.at] += sign * pods; perPool[n.at] == 0 {
			delete(perPool, n.at)
			if len(perPool) == 0 {
				delete(w.counts, key)
			}
		}
	}
}
