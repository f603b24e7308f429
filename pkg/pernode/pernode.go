// Package pernode caches values that a scheduler plugin derives from a node's pods, for as
// long as the node's content is unchanged. A NodeInfo's generation comes from one global
// counter and moves on every change (pod added, removed or updated, node updated), in the
// scheduler's cache, its snapshots and their clones alike, so an equal generation means equal
// content. A per-cycle scan over every pod of the cluster thus becomes a lookup per node plus
// a scan of the few nodes that changed since the last cycle.
package pernode

import (
	"sync"
	"sync/atomic"

	fwk "k8s.io/kube-scheduler/framework"
)

// maxEntries bounds the cache: past it (node churn over a long life), it starts afresh.
const maxEntries = 100_000

// Cache maps a node name to a value computed from its NodeInfo at one generation. It is safe
// for concurrent use (Filter and Score run in parallel over nodes).
type Cache[T any] struct {
	compute func(fwk.NodeInfo) T
	entries sync.Map // node name -> entry[T]
	stored  atomic.Int64
}

type entry[T any] struct {
	generation int64
	value      T
}

// New returns a cache of compute's results. compute must depend on the NodeInfo only, and
// its result must not be modified by callers.
func New[T any](compute func(fwk.NodeInfo) T) *Cache[T] {
	return &Cache[T]{compute: compute}
}

// Get returns compute(ni), from the cache when ni's generation has been seen for its node.
func (c *Cache[T]) Get(ni fwk.NodeInfo) T {
	node := ni.Node()
	if node == nil {
		return c.compute(ni)
	}
	gen := ni.GetGeneration()
	if v, ok := c.entries.Load(node.Name); ok {
		if e := v.(entry[T]); e.generation == gen {
			return e.value
		}
	}
	value := c.compute(ni)
	if c.stored.Add(1) > maxEntries {
		c.entries.Clear()
		c.stored.Store(0)
	}
	c.entries.Store(node.Name, entry[T]{generation: gen, value: value})
	return value
}

// Tracker keeps a caller's total over a node list up to date position by position. A
// scheduler hands every cycle the same list of NodeInfos, changed in a node or two (the pod
// bound last cycle, a node update): Sync compares each position's generation with the last
// call's and hands the caller only what changed, the old value to take out of the total and
// the new one to put in. The generation alone says it: it comes from one global counter, so
// the same generation at a position is the same NodeInfo or a clone of it, with the same
// content. A total over every node of the cluster (a workload's pods per pool, the nodes
// hosting placeholders) thus costs a generation comparison per node and the work for the
// changed ones, instead of a lookup per node. Values come from a Cache, so a node
// that only moved in the list costs a lookup, not a recomputation.
//
// A Tracker is not safe for concurrent use: the caller serialises Sync with its reads of the
// total (one mutex around both).
type Tracker[T any] struct {
	cache *Cache[T]
	// list is the last list Sync saw, by position.
	list []listEntry[T]
}

type listEntry[T any] struct {
	// seen: the position held a NodeInfo, of this generation, in the last list.
	seen       bool
	generation int64
	// counted: the value is in the caller's total (the NodeInfo had a node).
	counted bool
	value   T
}

// NewTracker returns a tracker of the cache's values.
func NewTracker[T any](cache *Cache[T]) *Tracker[T] {
	return &Tracker[T]{cache: cache}
}

// Sync brings the caller's total from the last list to nodes: for each position whose
// generation changed, remove(position, old value) if the old entry was counted,
// then add(position, new value) if the NodeInfo has a node (one without holds pods of a node
// that is gone: they run nowhere and count nowhere). When the list's length changed, every
// old entry is removed first (with its old position) and every position of the new list is
// added.
func (t *Tracker[T]) Sync(nodes []fwk.NodeInfo, remove, add func(int, T)) {
	if len(t.list) != len(nodes) {
		// Nodes came or went: the positions no longer match; start from an empty total.
		for i, e := range t.list {
			if e.counted {
				remove(i, e.value)
			}
		}
		t.list = make([]listEntry[T], len(nodes))
	}
	for i, ni := range nodes {
		e := &t.list[i]
		gen := ni.GetGeneration()
		if e.seen && e.generation == gen {
			continue
		}
		if e.counted {
			remove(i, e.value)
		}
		*e = listEntry[T]{seen: true, generation: gen}
		if ni.Node() != nil {
			e.value, e.counted = t.cache.Get(ni), true
			add(i, e.value)
		}
	}
}
