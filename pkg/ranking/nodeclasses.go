package ranking

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
)

// NodeClasses is a node list's capacity classes, by position: what every scheduling cycle
// needs of every node (the bands of the tier search, the pools of the spread), kept up to date
// when a node changes rather than computed per cycle (SpotScore's node index keeps it from the
// scheduler's snapshot). Nodes are few classes (a tier, a pool, a risk), so each position holds
// a class id, and the grouping of the list by band, the same for every pod whose order ranks
// the classes alike, is computed once per ranking. Never modified once published, except for
// the grouping cache, which has its own lock.
type NodeClasses struct {
	// nodes is the node object at each position (nil: a NodeInfo without a node).
	nodes []*v1.Node
	// ids is each position's class, an index into classes (-1 without a node).
	ids     []int32
	classes []capacity.Class
	// position finds a node's position by name (PreScore gets nodes, not positions).
	position map[string]int32

	mu sync.Mutex
	// groupings caches ByBand's result per ranking of the classes (each class's band, one
	// byte each: bands are at most 2 x v1alpha1.MaxTiers), at most maxGroupings.
	groupings map[string][][]int
}

// maxGroupings bounds the groupings cached per list. Most pods rank classes alike (with or
// without avoid-spot); a capacity policy with full pools makes a few more rankings.
const maxGroupings = 32

// ClassifyNodes classifies every node of the list.
func ClassifyNodes(model *capacity.Model, nodes []fwk.NodeInfo) *NodeClasses {
	nc := &NodeClasses{
		nodes:    make([]*v1.Node, len(nodes)),
		ids:      make([]int32, len(nodes)),
		position: make(map[string]int32, len(nodes)),
	}
	ids := map[capacity.Class]int32{}
	for i, ni := range nodes {
		nc.ids[i] = -1
		node := ni.Node()
		if node == nil {
			continue
		}
		c := model.Classify(node)
		id, ok := ids[c]
		if !ok {
			id = int32(len(nc.classes))
			ids[c] = id
			nc.classes = append(nc.classes, c)
		}
		nc.nodes[i], nc.ids[i] = node, id
		nc.position[node.Name] = int32(i)
	}
	return nc
}

// Len is the length of the list the classes were computed for.
func (nc *NodeClasses) Len() int { return len(nc.nodes) }

// Update returns the classes of nodes, the list nc was computed for with the positions in
// touched changed (the caller's pernode.Tracker found their NodeInfo or its generation
// changed): nc itself when no node object changed (a pod came or went), otherwise a copy with
// those positions reclassified.
func (nc *NodeClasses) Update(model *capacity.Model, nodes []fwk.NodeInfo, touched []int) *NodeClasses {
	cur := nc
	renamed := false
	for _, i := range touched {
		if i >= len(nodes) {
			continue
		}
		node := nodes[i].Node()
		if node == cur.nodes[i] {
			continue
		}
		if cur == nc {
			cur = &NodeClasses{
				nodes:    append([]*v1.Node(nil), nc.nodes...),
				ids:      append([]int32(nil), nc.ids...),
				classes:  append([]capacity.Class(nil), nc.classes...),
				position: nc.position,
			}
		}
		was := cur.nodes[i]
		renamed = renamed || node == nil || was == nil || node.Name != was.Name
		cur.nodes[i], cur.ids[i] = node, -1
		if node != nil {
			cur.ids[i] = cur.idOf(model.Classify(node))
		}
	}
	if renamed {
		// Nodes moved in the list: positions by name afresh.
		cur.position = make(map[string]int32, len(cur.nodes))
		for i, node := range cur.nodes {
			if node != nil {
				cur.position[node.Name] = int32(i)
			}
		}
	}
	return cur
}

// idOf returns c's id, adding it to the classes (only while a copy is being built: a few
// changed nodes, a linear search each).
func (nc *NodeClasses) idOf(c capacity.Class) int32 {
	for id := range nc.classes {
		if nc.classes[id] == c {
			return int32(id)
		}
	}
	nc.classes = append(nc.classes, c)
	return int32(len(nc.classes) - 1)
}

// Class returns the class of a node of the list; ok is false for a node object the list does
// not hold (a caller with its own snapshot).
func (nc *NodeClasses) Class(node *v1.Node) (capacity.Class, bool) {
	if i, ok := nc.position[node.Name]; ok && nc.nodes[i] == node {
		return nc.classes[nc.ids[i]], true
	}
	return capacity.Class{}, false
}

// ByBand groups the list's positions (nodes only) by band in order o, in list order within a
// band: the band-by-band walk of the tier search over the whole list. The result must not be
// modified.
func (nc *NodeClasses) ByBand(o Order) [][]int {
	bandOf := make([]byte, len(nc.classes))
	for id, c := range nc.classes {
		bandOf[id] = byte(o.Band(c))
	}
	key := string(bandOf)
	nc.mu.Lock()
	grouped, ok := nc.groupings[key]
	nc.mu.Unlock()
	if ok {
		return grouped
	}
	sizes := make([]int, o.NumBands())
	for _, id := range nc.ids {
		if id >= 0 {
			sizes[bandOf[id]]++
		}
	}
	grouped = make([][]int, len(sizes))
	for b, n := range sizes {
		grouped[b] = make([]int, 0, n)
	}
	for i, id := range nc.ids {
		if id >= 0 {
			b := bandOf[id]
			grouped[b] = append(grouped[b], i)
		}
	}
	nc.mu.Lock()
	if nc.groupings == nil {
		nc.groupings = map[string][][]int{}
	}
	if len(nc.groupings) < maxGroupings {
		nc.groupings[key] = grouped
	}
	nc.mu.Unlock()
	return grouped
}
