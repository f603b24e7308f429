// Package reclaimhistory is the cluster's own record of spot reclaims: the rebalancer (its
// leader) records every reclaim it sees, per pool, in a ConfigMap bounded in size, and every
// component reads it back (an informer on that one ConfigMap), so that within a tier the pools
// reclaimed least rank first (capacity.Model.PoolLoad) and the report can say what each pool
// has cost. The ConfigMap outlives any process: the history survives restarts and leader
// changes, and reclaims older than the window (default 7 days) stop counting and are pruned.
package reclaimhistory

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
)

// DataKey is the ConfigMap key holding the history (JSON: readable with kubectl get -o yaml).
const DataKey = "history.json"

// Bounds of the history, so that the ConfigMap stays far below the 1 MiB an object may hold
// (a reclaim takes about 200 bytes): past them the oldest reclaims go first, then the pools
// whose latest reclaim is the oldest.
const (
	MaxReclaims = 1000
	MaxPools    = 100
)

// Signals: what told the rebalancer that a node's removal was a reclaim.
const (
	// SignalRunningPods: the node was removed while pods still ran on it.
	SignalRunningPods = "running-pods"
)

// Reclaim is one node of a reclaimable tier removed after an interruption signal, or while
// pods still ran on it.
type Reclaim struct {
	Node string    `json:"node"`
	UID  types.UID `json:"uid"`
	// At is when the rebalancer saw the node go.
	At   metav1.Time `json:"at"`
	Tier string      `json:"tier"`
	// Signal is the interruption taint's key, or SignalRunningPods.
	Signal string `json:"signal"`
}

// History is every recorded reclaim within the window, by pool (capacity.Class.Pool), each
// pool's oldest first.
type History struct {
	Pools map[string][]Reclaim `json:"pools"`
}

// Decode reads the history from its ConfigMap; a ConfigMap without the key (or none: nil) is
// an empty history.
func Decode(cm *v1.ConfigMap) (History, error) {
	h := History{Pools: map[string][]Reclaim{}}
	if cm == nil {
		return h, nil
	}
	data, ok := cm.Data[DataKey]
	if !ok {
		return h, nil
	}
	if err := json.Unmarshal([]byte(data), &h); err != nil {
		return History{Pools: map[string][]Reclaim{}}, fmt.Errorf("ConfigMap %s/%s, key %s: %w", cm.Namespace, cm.Name, DataKey, err)
	}
	if h.Pools == nil {
		h.Pools = map[string][]Reclaim{}
	}
	return h, nil
}

// Encode is the ConfigMap value of the history.
func (h History) Encode() (string, error) {
	data, err := json.Marshal(h)
	return string(data), err
}

// Add records a reclaim of pool, unless the history holds that node (by UID) already: two
// leaders one after the other, or a retried write, never count a reclaim twice. It reports
// whether the history changed.
func (h *History) Add(pool string, r Reclaim) bool {
	if h.Pools == nil {
		h.Pools = map[string][]Reclaim{}
	}
	for _, rs := range h.Pools {
		for _, x := range rs {
			if x.UID == r.UID && x.Node == r.Node {
				return false
			}
		}
	}
	rs := append(h.Pools[pool], r)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].At.Before(&rs[j].At) })
	h.Pools[pool] = rs
	return true
}

// Prune drops the reclaims older than window at now, then keeps the history within
// MaxReclaims and MaxPools.
func (h *History) Prune(now time.Time, window time.Duration) {
	cutoff := now.Add(-window)
	total := 0
	for pool, rs := range h.Pools {
		i := sort.Search(len(rs), func(i int) bool { return rs[i].At.Time.After(cutoff) })
		if rs = rs[i:]; len(rs) == 0 {
			delete(h.Pools, pool)
			continue
		}
		h.Pools[pool] = rs
		total += len(rs)
	}
	for total > MaxReclaims {
		pool := h.oldestPool(func(rs []Reclaim) time.Time { return rs[0].At.Time })
		h.Pools[pool] = h.Pools[pool][1:]
		if len(h.Pools[pool]) == 0 {
			delete(h.Pools, pool)
		}
		total--
	}
	for len(h.Pools) > MaxPools {
		delete(h.Pools, h.oldestPool(func(rs []Reclaim) time.Time { return rs[len(rs)-1].At.Time }))
	}
}

// oldestPool is the pool whose reclaim picked by at is the oldest (ties: the first by name).
func (h *History) oldestPool(at func([]Reclaim) time.Time) string {
	var oldest string
	var when time.Time
	for pool, rs := range h.Pools {
		t := at(rs)
		if oldest == "" || t.Before(when) || (t.Equal(when) && pool < oldest) {
			oldest, when = pool, t
		}
	}
	return oldest
}

// Counts returns each pool's reclaims within window at now, and when the first of them ages
// out (the zero time when none will).
func (h History) Counts(now time.Time, window time.Duration) (capacity.Reclaims, time.Time) {
	cutoff := now.Add(-window)
	var out capacity.Reclaims
	var next time.Time
	for pool, rs := range h.Pools {
		n := 0
		for _, r := range rs {
			if !r.At.Time.After(cutoff) {
				continue
			}
			n++
			if expires := r.At.Time.Add(window); next.IsZero() || expires.Before(next) {
				next = expires
			}
		}
		if n > 0 {
			if out == nil {
				out = capacity.Reclaims{}
			}
			out[pool] = n
		}
	}
	return out, next
}

// Len is the number of reclaims recorded.
func (h History) Len() int {
	n := 0
	for _, rs := range h.Pools {
		n += len(rs)
	}
	return n
}

// Fixed is a capacity.ReclaimSource that always gives the same counts (explain and the
// report, which read the history once).
type Fixed capacity.Reclaims

// Reclaims implements capacity.ReclaimSource.
func (f Fixed) Reclaims() capacity.Reclaims { return capacity.Reclaims(f) }

var _ capacity.ReclaimSource = Fixed(nil)
