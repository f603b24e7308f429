package spotscore

import (
	"maps"
	"sync"

	fwk "k8s.io/kube-scheduler/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/pernode"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
)

// nodeIndex is what SpotScore and the tier gate need, in every cycle, of every node of the
// cluster: each node's class (ranking.NodeClasses: the tier search's bands, the spread's
// pools), every workload's pods by tier and pool (the spread bonus and the capacity policy
// need, for each pod, where the rest of its workload runs), and how many nodes host a
// placeholder (by the profile's ranking.PlaceholderIndex: whether the tier gate has anything
// to do). Recomputing those for every pod over every node was the largest cost left once the
// tier search had cut the filters and scores, and three walks over the list one after the
// other cost as much again. They are kept instead, and brought up to date at each cycle, in
// one walk, with the nodes that changed since the last one (pernode.Tracker):
// in a scheduler, the node of the pod bound last cycle and the nodes the informers updated.
// The index always describes the node list of the latest call, so any caller's list (the
// scheduler's, a simulation's) gets exact answers; a caller alternating between lists pays a
// cached lookup per node.
type nodeIndex struct {
	model *capacity.Model

	mu      sync.Mutex
	tracker *pernode.Tracker[nodeShare]
	// workloads: workload key (capacity.WorkloadKey) -> tier and pool -> pods. No zero entries.
	workloads map[string]map[tierPool]int
	// placeholderNodes counts the nodes hosting a placeholder not being deleted.
	placeholderNodes int
	// classes are the list's classes, replaced (never modified) when a node object changes.
	classes *ranking.NodeClasses
}

// tierPool is where a pod runs, as far as the spread and the policy care.
type tierPool struct {
	tier int
	pool string
}

// nodeShare is one node's share of the index. Never modified once computed (the tracker's
// cache hands it out again).
type nodeShare struct {
	at           tierPool
	pods         map[string]int
	placeholders bool
}

// indexView is the index for one cycle.
type indexView struct {
	classes *ranking.NodeClasses
	// workloadPods: the pod's workload's pods by tier and pool, the caller's own copy (nil
	// without a workload).
	workloadPods     map[tierPool]int
	placeholderNodes int
}

func (pl *SpotScore) newNodeIndex() *nodeIndex {
	compute := func(ni fwk.NodeInfo) nodeShare {
		s := nodeShare{pods: countWorkloads(ni), placeholders: pl.placeholders().Hosts(ni)}
		if node := ni.Node(); node != nil {
			c := pl.model.Classify(node)
			s.at = tierPool{tier: c.Tier, pool: c.Pool}
		}
		return s
	}
	return &nodeIndex{
		model:     pl.model,
		tracker:   pernode.NewTracker(pernode.New(compute)),
		workloads: map[string]map[tierPool]int{},
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

// view brings the index up to date with nodes and returns it for a pod of the workload key
// ("": none). The pod itself is not among the workload's pods: the scheduler's cycle is for a
// pod not yet bound, and the rebalancer's simulations take the pod off its node first.
func (x *nodeIndex) view(nodes []fwk.NodeInfo, key string) indexView {
	x.mu.Lock()
	defer x.mu.Unlock()
	var touched []int
	x.tracker.Sync(nodes, func(i int, s nodeShare) {
		x.count(s, -1)
		touched = append(touched, i)
	}, func(i int, s nodeShare) {
		x.count(s, 1)
		touched = append(touched, i)
	})
	if x.classes == nil || x.classes.Len() != len(nodes) {
		x.classes = ranking.ClassifyNodes(x.model, nodes)
	} else {
		x.classes = x.classes.Update(x.model, nodes, touched)
	}
	v := indexView{classes: x.classes, placeholderNodes: x.placeholderNodes}
	if key != "" {
		v.workloadPods = maps.Clone(x.workloads[key])
	}
	return v
}

func (x *nodeIndex) count(s nodeShare, sign int) {
	if s.placeholders {
		x.placeholderNodes += sign
	}
	for key, pods := range s.pods {
		perPool := x.workloads[key]
		if perPool == nil {
			perPool = map[tierPool]int{}
			x.workloads[key] = perPool
		}
		if perPool[s.at] += sign * pods; perPool[s.at] == 0 {
			delete(perPool, s.at)
			if len(perPool) == 0 {
				delete(x.workloads, key)
			}
		}
	}
}
