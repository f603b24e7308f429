// Package policy is the per-workload capacity policy ("safe spot"): an on-demand base, a spot
// share above it and a cap per pool, declared on the pod template with annotations (or a
// cluster-wide default in the SpotScore args), and the arithmetic every component shares:
// where the workload's next replica should go, how far a placement is from the policy, and in
// which order scale-in keeps the policy at every replica count.
//
// Semantics, for a workload of n replicas (the Auto Scaling group rules):
//
//	above      = max(n - base, 0)
//	reclaimable(n)    = floor(above x share / 100)   (rounding favours non-reclaimable capacity)
//	nonReclaimable(n) = n - reclaimable(n)            (a minimum: more is only a cost)
//	poolCap(n) = K, or max(1, ceil(Q/100 x reclaimable(n)))  (reclaimable replicas per pool)
//
// Reclaimable means a tier with reclaimable: true in the capacity model (spot by default);
// every other tier (reserved, on-demand, burst) is non-reclaimable.
//
// The package uses no Kubernetes machinery beyond the pod's annotations, so the scheduler
// plugin, the rebalancer, the deletion-cost controller and explain all share it.
package policy

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
)

// The pod annotations of a capacity policy. Set them on the pod template, so that every
// replica carries them.
const (
	OnDemandBaseAnnotation = "spot-scheduler.io/on-demand-base"
	SpotShareAnnotation    = "spot-scheduler.io/spot-share"
	MaxPerPoolAnnotation   = "spot-scheduler.io/max-per-pool"
)

// Annotations lists the policy annotations.
var Annotations = []string{OnDemandBaseAnnotation, SpotShareAnnotation, MaxPerPoolAnnotation}

// Policy is a compiled capacity policy. The zero value puts no constraint but a spot share of
// 0 %: use None for "no policy".
type Policy struct {
	// OnDemandBase: the first N replicas on non-reclaimable capacity.
	OnDemandBase int
	// SpotShare: percent (0..100) of the replicas above the base allowed on reclaimable tiers.
	SpotShare int
	// PoolCount and PoolPercent: the pool cap, as a count or a percent of reclaimable(n); at
	// most one is non-zero, both zero means no cap.
	PoolCount   int
	PoolPercent int
}

// None is the policy that constrains nothing.
var None = Policy{SpotShare: 100}

// Active reports whether the policy constrains anything.
func (p Policy) Active() bool {
	return p.OnDemandBase > 0 || p.SpotShare < 100 || p.PoolCount > 0 || p.PoolPercent > 0
}

// String is the policy in the annotations' notation.
func (p Policy) String() string {
	if !p.Active() {
		return "none"
	}
	s := fmt.Sprintf("on-demand-base=%d spot-share=%d%%", p.OnDemandBase, p.SpotShare)
	switch {
	case p.PoolCount > 0:
		s += fmt.Sprintf(" max-per-pool=%d", p.PoolCount)
	case p.PoolPercent > 0:
		s += fmt.Sprintf(" max-per-pool=%d%%", p.PoolPercent)
	}
	return s
}

// FromArgs compiles the args' default policy; nil args give None. The args are validated
// (v1alpha1.ValidateCapacityPolicy); an error here means they were not.
func FromArgs(a *v1alpha1.CapacityPolicy) (Policy, error) {
	p := None
	if a == nil {
		return p, nil
	}
	if a.OnDemandBase != nil {
		p.OnDemandBase = int(*a.OnDemandBase)
	}
	if a.SpotSharePercent != nil {
		p.SpotShare = int(*a.SpotSharePercent)
	}
	if a.MaxPerPool != nil {
		count, percent, err := v1alpha1.MaxPerPoolOf(*a.MaxPerPool)
		if err != nil {
			return None, fmt.Errorf("defaultCapacityPolicy.maxPerPool: %w", err)
		}
		p.PoolCount, p.PoolPercent = int(count), int(percent)
	}
	return p, nil
}

// InvalidError is a malformed policy annotation: the pod is scheduled as if it had no policy.
type InvalidError struct {
	Annotation string
	Value      string
	Allowed    string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("annotation %s=%q is invalid: allowed values are %s; the pod is scheduled as if it had no capacity policy",
		e.Annotation, e.Value, e.Allowed)
}

// HasAnnotations reports whether the pod carries any policy annotation.
func HasAnnotations(pod *v1.Pod) bool {
	for _, a := range Annotations {
		if _, ok := pod.Annotations[a]; ok {
			return true
		}
	}
	return false
}

// ForPod returns the pod's policy: def (the cluster-wide default), with each annotation the
// pod carries overriding its field. A malformed annotation gives None and an *InvalidError
// naming it (never a panic).
func ForPod(pod *v1.Pod, def Policy) (Policy, error) {
	if pod == nil || !HasAnnotations(pod) {
		return def, nil
	}
	p := def
	if v, ok := pod.Annotations[OnDemandBaseAnnotation]; ok {
		n, err := v1alpha1.ParseOnDemandBase(v)
		if err != nil {
			return None, &InvalidError{Annotation: OnDemandBaseAnnotation, Value: v, Allowed: v1alpha1.AllowedOnDemandBase}
		}
		p.OnDemandBase = int(n)
	}
	if v, ok := pod.Annotations[SpotShareAnnotation]; ok {
		n, err := v1alpha1.ParseSpotShare(v)
		if err != nil {
			return None, &InvalidError{Annotation: SpotShareAnnotation, Value: v, Allowed: v1alpha1.AllowedSpotShare}
		}
		p.SpotShare = int(n)
	}
	if v, ok := pod.Annotations[MaxPerPoolAnnotation]; ok {
		count, percent, err := v1alpha1.ParseMaxPerPool(v)
		if err != nil {
			return None, &InvalidError{Annotation: MaxPerPoolAnnotation, Value: v, Allowed: v1alpha1.AllowedMaxPerPool}
		}
		p.PoolCount, p.PoolPercent = int(count), int(percent)
	}
	return p, nil
}

// Split is a replica count divided by capacity class.
type Split struct {
	// NonReclaimable is the minimum on non-reclaimable tiers.
	NonReclaimable int
	// Reclaimable is the maximum on reclaimable tiers.
	Reclaimable int
}

// Target is the split for n replicas: at most floor((n-base) x share/100) reclaimable.
func (p Policy) Target(n int) Split {
	if n <= 0 {
		return Split{}
	}
	above := max(n-p.OnDemandBase, 0)
	reclaimable := above * p.SpotShare / 100
	return Split{NonReclaimable: n - reclaimable, Reclaimable: reclaimable}
}

// PoolCap is the most reclaimable replicas of an n-replica workload one pool may hold
// (math.MaxInt when the policy has no cap). A percent cap is rounded up and is at least 1, so
// that a single reclaimable replica is always allowed somewhere.
func (p Policy) PoolCap(n int) int {
	switch {
	case p.PoolCount > 0:
		return p.PoolCount
	case p.PoolPercent > 0:
		r := p.Target(n).Reclaimable
		return max(1, (r*p.PoolPercent+99)/100)
	}
	return math.MaxInt
}

// Counts is where a workload's replicas are.
type Counts struct {
	NonReclaimable int
	// ReclaimablePerPool counts replicas on reclaimable tiers by pool.
	ReclaimablePerPool map[string]int
}

// Add counts delta replicas (negative to remove) on a node of that class and pool.
func (c *Counts) Add(reclaimable bool, pool string, delta int) {
	if !reclaimable {
		c.NonReclaimable += delta
		return
	}
	if c.ReclaimablePerPool == nil {
		c.ReclaimablePerPool = map[string]int{}
	}
	c.ReclaimablePerPool[pool] += delta
	if c.ReclaimablePerPool[pool] <= 0 {
		delete(c.ReclaimablePerPool, pool)
	}
}

// Reclaimable is the number of replicas on reclaimable tiers.
func (c Counts) Reclaimable() int {
	n := 0
	for _, v := range c.ReclaimablePerPool {
		n += v
	}
	return n
}

// Total is the number of replicas counted.
func (c Counts) Total() int { return c.NonReclaimable + c.Reclaimable() }

// Clone returns an independent copy.
func (c Counts) Clone() Counts {
	out := Counts{NonReclaimable: c.NonReclaimable}
	for k, v := range c.ReclaimablePerPool {
		out.Add(true, k, v)
	}
	return out
}

// Decision is where the policy wants the workload's next replica.
type Decision struct {
	// NonReclaimable: the next replica belongs on non-reclaimable capacity (it is ranked like
	// an avoid-spot pod: reclaimable tiers only when nothing else fits).
	NonReclaimable bool
	// FullPools are the pools already holding the cap of reclaimable replicas: a reclaimable
	// replica there would exceed it.
	FullPools map[string]bool
}

// Next decides the next replica of a workload whose other replicas are counted in c.
func (p Policy) Next(c Counts) Decision {
	n := c.Total() + 1
	d := Decision{NonReclaimable: c.NonReclaimable < p.Target(n).NonReclaimable}
	limit := p.PoolCap(n)
	for pool, k := range c.ReclaimablePerPool {
		if k >= limit {
			if d.FullPools == nil {
				d.FullPools = map[string]bool{}
			}
			d.FullPools[pool] = true
		}
	}
	return d
}

// Violation measures how far a placement is from the policy.
type Violation struct {
	// Shortfall: replicas missing on non-reclaimable capacity.
	Shortfall int
	// PoolExcess: reclaimable replicas beyond the cap, summed over pools.
	PoolExcess int
}

// Total is the number of replicas out of policy.
func (v Violation) Total() int { return v.Shortfall + v.PoolExcess }

// Holds reports whether the placement keeps the policy.
func (v Violation) Holds() bool { return v.Total() == 0 }

// Violation of the placement c.
func (p Policy) Violation(c Counts) Violation {
	n := c.Total()
	v := Violation{Shortfall: max(0, p.Target(n).NonReclaimable-c.NonReclaimable)}
	limit := p.PoolCap(n)
	for _, k := range c.ReclaimablePerPool {
		v.PoolExcess += max(0, k-limit)
	}
	return v
}

// Replica is one replica, for KeepOrder.
type Replica struct {
	Reclaimable bool
	Pool        string
	// AtRisk replicas are deleted first, whatever the policy.
	AtRisk bool
	// Preference orders replicas the policy does not tell apart: higher is kept longer (the
	// deletion cost the workload would get without a policy).
	Preference int32
	// Name breaks ties, so the order is total.
	Name string
}

// KeepOrder returns the indices of replicas from the one kept longest to the one deleted
// first. Every healthy prefix of length k (the replicas left after scaling in to k) keeps the
// policy whenever the replicas allow it: the k-th replica kept is non-reclaimable while the
// first k fall short of Target(k), and a reclaimable replica is kept only in a pool below
// PoolCap(k); otherwise the most preferred replica. At-risk replicas come last (they go first
// on scale-in), in preference order.
func (p Policy) KeepOrder(replicas []Replica) []int {
	healthy, atRisk := make([]int, 0, len(replicas)), []int(nil)
	for i, r := range replicas {
		if r.AtRisk {
			atRisk = append(atRisk, i)
		} else {
			healthy = append(healthy, i)
		}
	}
	byPreference := func(idx []int) {
		sort.SliceStable(idx, func(a, b int) bool {
			ra, rb := replicas[idx[a]], replicas[idx[b]]
			if ra.Preference != rb.Preference {
				return ra.Preference > rb.Preference
			}
			return ra.Name < rb.Name
		})
	}
	byPreference(healthy)
	byPreference(atRisk)
	order := make([]int, 0, len(replicas))
	var kept Counts
	remaining := healthy
	for k := 1; len(remaining) > 0; k++ {
		needNonReclaimable := kept.NonReclaimable < p.Target(k).NonReclaimable
		limit := p.PoolCap(k)
		pick := -1
		for j, i := range remaining {
			r := replicas[i]
			if needNonReclaimable {
				if !r.Reclaimable {
					pick = j
					break
				}
				continue
			}
			if !r.Reclaimable || kept.ReclaimablePerPool[r.Pool] < limit {
				pick = j
				break
			}
		}
		if pick < 0 {
			// Only reclaimable replicas in pools at the cap (or, short of non-reclaimable
			// capacity, only reclaimable ones): keep the one of the least crowded pool, so the
			// excess stays as small as it can at every later prefix.
			for j, i := range remaining {
				if pick < 0 || kept.ReclaimablePerPool[replicas[i].Pool] < kept.ReclaimablePerPool[replicas[remaining[pick]].Pool] {
					pick = j
				}
			}
		}
		i := remaining[pick]
		remaining = append(remaining[:pick:pick], remaining[pick+1:]...)
		order = append(order, i)
		kept.Add(replicas[i].Reclaimable, replicas[i].Pool, 1)
	}
	return append(order, atRisk...)
}

// FormatCounts prints counts as "non-reclaimable=N reclaimable=M (pool=k, ...)".
func FormatCounts(c Counts) string {
	pools := make([]string, 0, len(c.ReclaimablePerPool))
	for pool, k := range c.ReclaimablePerPool {
		pools = append(pools, pool+"="+strconv.Itoa(k))
	}
	sort.Strings(pools)
	s := fmt.Sprintf("non-reclaimable=%d reclaimable=%d", c.NonReclaimable, c.Reclaimable())
	if len(pools) > 0 {
		s += " (" + strings.Join(pools, ", ") + ")"
	}
	return s
}
