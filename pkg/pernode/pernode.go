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

	// list is the last list Values saw, by position.
	listMu sync.Mutex
	list   []listEntry[T]
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

// Values returns compute's result for every node of nodes, in order (the zero value for a
// NodeInfo without a node). A scheduler hands every cycle the same list of NodeInfos, changed
// in a node or two: Values remembers the last list by position, so an unchanged entry costs a
// comparison of the NodeInfo and its generation instead of a map lookup with a hash of the
// node's name. Safe for concurrent use; concurrent calls serialise.
func (c *Cache[T]) Values(nodes []fwk.NodeInfo) []T {
	c.listMu.Lock()
	defer c.listMu.Unlock()
	if len(c.list) != len(nodes) {
		c.list = make([]listEntry[T], len(nodes))
	}
	out := make([]T, len(nodes))
	for i, ni := range nodes {
		if ni.Node() == nil {
			continue
		}
		e := &c.list[i]
		if gen := ni.GetGeneration(); e.ni != ni || e.generation != gen {
			*e = listEntry[T]{ni: ni, generation: gen, value: c.Get(ni)}
		}
		out[i] = e.value
	}
	return out
}

type listEntry[T any] struct {
	ni         fwk.NodeInfo
	generation int64
	value      T
}
