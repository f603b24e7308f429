// Package day is the real-day benchmark (make bench-day, docs/benchmarks.md): each strategy runs
// a library of episodes in real time on its own local control plane with the real Karpenter
// (kwok provider) adding and removing every node, and a day is composed from the episodes'
// measurements by Monte Carlo (compose.go). Nothing is rescaled: the components run at their
// production settings, nodes take 30-60 s from launch to Ready, and a quiet stretch between
// episodes is charged analytically from the settled node set.
package day

import (
	"fmt"
	"time"
)

// Tiers of the benchmark's pools.
const (
	Spot     = "spot"
	OnDemand = "on-demand"
	Burst    = "burst"
)

// Tiers in price order.
var Tiers = []string{Spot, OnDemand, Burst}

// Pool is a Karpenter NodePool standing for one capacity pool of the cloud: spot pools are
// reclaimed and return; on-demand and burst never are.
type Pool struct {
	Name string
	Tier string
	// Zone of the pool's nodes ("" for every zone).
	Zone string
	// CPULimit is the CPU the cloud can give the pool (its NodePool's limit).
	CPULimit int64
}

// Workload is a Deployment of the benchmark.
type Workload struct {
	Name string
	// Replicas off-peak, and at the daily peak.
	Replicas, Peak int
	MilliCPU       int64
	// PDB: "maxUnavailable=25%", "minAvailable=75%", "" for none.
	PDB string
	// Policy: the strategies that declare a capacity policy put Shape.Policy on it.
	Policy bool
}

// Shape is the cluster the episodes run on.
type Shape struct {
	Name string
	// NodeCPU: every node (Karpenter's kwok instance types) has this many CPUs; Karpenter's
	// kwok provider keeps 100m of it.
	NodeCPU int
	// OnDemandNodeHour is what an on-demand node costs per hour ($); spot's and burst's
	// prices follow from the discount and BurstFactor.
	OnDemandNodeHour float64
	BurstFactor      float64
	Pools            []Pool
	Workloads        []Workload
	// Policy holds the capacity-policy annotations of the workloads with Policy.
	Policy map[string]string
	// NodeRegistrationDelay + up to NodeReadyJitter: from a launch to a Ready node.
	NodeRegistrationDelay, NodeReadyJitter time.Duration
	// PodReadyDelay: a container's start-up.
	PodReadyDelay time.Duration
	// ConsolidateAfter of every NodePool (Karpenter's recommended 1m; the karpenter-30m
	// strategy uses 30m).
	ConsolidateAfter time.Duration
	// Quiet: an episode has settled when nothing is Pending, no node is launching or
	// going, and nothing changed for this long (longer than every timer of every component:
	// consolidateAfter + Karpenter's validation, the rebalancer's minimum pod age + interval).
	Quiet time.Duration
	// EpisodeTimeout bounds an episode (then it is reported as not settled).
	EpisodeTimeout time.Duration
	// ZoneLag: the second pool of a zone is reclaimed this long after the first (correlated
	// reclaims: within 3 minutes of each other, 90 s on average).
	ZoneLag time.Duration
	// UnavailableAfterRefusal: after the cloud refuses a launch in a pool, the pool takes no
	// launch for this long (its NodePool limit held at 0), as Karpenter's AWS provider keeps
	// an offering that returned insufficient capacity out of its launches for 3 minutes (the
	// kwok provider cannot fail a launch, so the runner deletes the claim instead).
	UnavailableAfterRefusal time.Duration
}

// nodeMilliCPU is what a node offers pods.
func (s *Shape) nodeMilliCPU() int64 { return int64(s.NodeCPU)*1000 - karpenterReserveMilliCPU }

// karpenterReserveMilliCPU is what Karpenter's kwok provider keeps of every node's CPU.
const karpenterReserveMilliCPU = 100

// SpotPools lists the spot pools; zone groups them by zone, in order.
func (s *Shape) SpotPools() []Pool {
	var out []Pool
	for _, p := range s.Pools {
		if p.Tier == Spot {
			out = append(out, p)
		}
	}
	return out
}

// Zones lists the spot pools of each zone, zones in order of first appearance.
func (s *Shape) Zones() (order []string, pools map[string][]string) {
	pools = map[string][]string{}
	for _, p := range s.SpotPools() {
		if _, ok := pools[p.Zone]; !ok {
			order = append(order, p.Zone)
		}
		pools[p.Zone] = append(pools[p.Zone], p.Name)
	}
	return order, pools
}

// TierOf returns a pool's tier.
func (s *Shape) TierOf(pool string) string {
	for _, p := range s.Pools {
		if p.Name == pool {
			return p.Tier
		}
	}
	return ""
}

// Validate names the first field that is wrong.
func (s *Shape) Validate() error {
	if s.NodeCPU < 1 || s.OnDemandNodeHour <= 0 || s.BurstFactor <= 0 {
		return fmt.Errorf("shape %s: NodeCPU, OnDemandNodeHour and BurstFactor must be positive", s.Name)
	}
	tiers := map[string]int{}
	names := map[string]bool{}
	for i, p := range s.Pools {
		if names[p.Name] || p.Name == "" {
			return fmt.Errorf("shape %s: Pools[%d].Name %q is empty or used twice", s.Name, i, p.Name)
		}
		names[p.Name] = true
		switch p.Tier {
		case Spot, OnDemand, Burst:
		default:
			return fmt.Errorf("shape %s: Pools[%d].Tier %q is not one of %v", s.Name, i, p.Tier, Tiers)
		}
		if p.CPULimit < int64(s.NodeCPU) {
			return fmt.Errorf("shape %s: Pools[%d].CPULimit %d holds no node of %d CPU", s.Name, i, p.CPULimit, s.NodeCPU)
		}
		tiers[p.Tier]++
	}
	if tiers[Spot] == 0 || tiers[OnDemand] != 1 || tiers[Burst] > 1 {
		return fmt.Errorf("shape %s: Pools: want at least one spot pool, exactly one on-demand pool and at most one burst pool, got %v", s.Name, tiers)
	}
	for i, w := range s.Workloads {
		if w.Name == "" || w.Replicas < 1 || w.Peak < w.Replicas || w.MilliCPU <= 0 || w.MilliCPU > s.nodeMilliCPU() {
			return fmt.Errorf("shape %s: Workloads[%d] %+v: want a name, 1 <= Replicas <= Peak and 0 < MilliCPU <= %d", s.Name, i, w, s.nodeMilliCPU())
		}
	}
	if s.Quiet <= 0 || s.EpisodeTimeout <= s.Quiet {
		return fmt.Errorf("shape %s: Quiet must be positive and below EpisodeTimeout", s.Name)
	}
	return nil
}

// Default is the benchmark's cluster: about 40 nodes off-peak and 55 at the peak over three
// spot pools (two in zone-1, one in zone-2; each can hold 13 nodes: spot capacity is finite,
// so every pool is in use off-peak and the peak spills to on-demand), an on-demand pool and
// a burst pool; eight workloads of 0.5 to 2 CPU per pod, four with a PDB, three with a
// capacity policy. One node is about 2.5 % of the bill.
func Default() *Shape {
	return &Shape{
		Name:             "default",
		NodeCPU:          4,
		OnDemandNodeHour: 0.192, // an m5.xlarge-class node
		BurstFactor:      1.5,
		Pools: []Pool{
			{Name: "spot-a", Tier: Spot, Zone: "zone-1", CPULimit: 52},
			{Name: "spot-b", Tier: Spot, Zone: "zone-1", CPULimit: 52},
			{Name: "spot-c", Tier: Spot, Zone: "zone-2", CPULimit: 52},
			{Name: "on-demand", Tier: OnDemand, CPULimit: 240},
			{Name: "burst", Tier: Burst, CPULimit: 400},
		},
		Workloads: []Workload{
			{Name: "web", Replicas: 32, Peak: 48, MilliCPU: 1000, PDB: "maxUnavailable=25%"},
			{Name: "api", Replicas: 16, Peak: 24, MilliCPU: 1500, PDB: "minAvailable=75%", Policy: true},
			{Name: "checkout", Replicas: 8, Peak: 12, MilliCPU: 2000, PDB: "maxUnavailable=1", Policy: true},
			{Name: "worker", Replicas: 28, Peak: 40, MilliCPU: 500},
			{Name: "search", Replicas: 12, Peak: 16, MilliCPU: 1000, Policy: true},
			{Name: "ingest", Replicas: 14, Peak: 20, MilliCPU: 750},
			{Name: "cache", Replicas: 8, Peak: 8, MilliCPU: 2000, PDB: "maxUnavailable=1"},
			{Name: "frontend", Replicas: 20, Peak: 30, MilliCPU: 500},
		},
		Policy: map[string]string{
			"spot-scheduler.io/on-demand-base": "2",
			"spot-scheduler.io/spot-share":     "100",
			"spot-scheduler.io/max-per-pool":   "50%",
		},
		NodeRegistrationDelay: 30 * time.Second,
		NodeReadyJitter:       30 * time.Second,
		PodReadyDelay:         5 * time.Second,
		ConsolidateAfter:      time.Minute,
		// The rebalancer's minimum pod age (2m) + its periodic pass (1m) is the longest timer.
		Quiet:          3*time.Minute + 10*time.Second,
		EpisodeTimeout: 20 * time.Minute,
		ZoneLag:        90 * time.Second,
		// Karpenter's AWS provider: UnavailableOfferingsTTL.
		UnavailableAfterRefusal: 3 * time.Minute,
	}
}

// Smoke is the accounting smoke of make test: a handful of nodes, short delays (the timers
// of the components are not shortened, only the settle window that waits for them is: the
// smoke checks the accounting, not the outcome).
func Smoke() *Shape {
	s := Default()
	s.Name = "smoke"
	s.Pools = []Pool{
		{Name: "spot-a", Tier: Spot, Zone: "zone-1", CPULimit: 16},
		{Name: "spot-b", Tier: Spot, Zone: "zone-2", CPULimit: 16},
		{Name: "on-demand", Tier: OnDemand, CPULimit: 32},
	}
	s.Workloads = []Workload{
		{Name: "web", Replicas: 4, Peak: 6, MilliCPU: 1000, PDB: "maxUnavailable=1"},
		{Name: "worker", Replicas: 3, Peak: 4, MilliCPU: 500, Policy: true},
	}
	s.NodeRegistrationDelay, s.NodeReadyJitter, s.PodReadyDelay = 2*time.Second, 2*time.Second, time.Second
	s.ConsolidateAfter = 10 * time.Second
	s.Quiet, s.EpisodeTimeout = 20*time.Second, 4*time.Minute
	s.ZoneLag = 5 * time.Second
	s.UnavailableAfterRefusal = 10 * time.Second
	return s
}
