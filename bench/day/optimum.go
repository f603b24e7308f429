package day

import (
	"math"
	"strconv"
)

// demandMilliCPU is the CPU the workloads ask for, off-peak or at the peak.
func demandMilliCPU(s *Shape, peak bool) (cpu int64, pods int) {
	for _, w := range s.Workloads {
		n := w.Replicas
		if peak {
			n = w.Peak
		}
		cpu += int64(n) * w.MilliCPU
		pods += n
	}
	return cpu, pods
}

// optimumNodes is the optimum in whole nodes: the fewest nodes of the cheapest tiers that
// hold the demand's CPU, spot first up to what the pools not out can give, then on-demand up
// to its pool, then burst. Pods may be split across nodes (a lower bound no placement can
// beat), nodes may not.
func optimumNodes(s *Shape, peak bool, out map[string]bool) map[string]float64 {
	cpu, _ := demandMilliCPU(s, peak)
	node := s.nodeMilliCPU()
	capNodes := map[string]int64{}
	for _, p := range s.Pools {
		if !out[p.Name] {
			capNodes[p.Tier] += p.CPULimit / int64(s.NodeCPU)
		}
	}
	nodes := map[string]float64{}
	rest := cpu
	for _, tier := range Tiers {
		if rest <= 0 {
			break
		}
		need := (rest + node - 1) / node
		n := need
		if tier != Burst {
			n = min(need, capNodes[tier])
		}
		nodes[tier] = float64(n)
		rest -= n * node
	}
	return nodes
}

// optimumOffSpotPods: pods the optimum runs off spot (the demand beyond spot's room, in
// pods of the average size).
func optimumOffSpotPods(s *Shape, peak bool, out map[string]bool) int {
	cpu, pods := demandMilliCPU(s, peak)
	spot := int64(optimumNodes(s, peak, out)[Spot]) * s.nodeMilliCPU()
	if cpu <= spot {
		return 0
	}
	return int(math.Ceil(float64(cpu-spot) / (float64(cpu) / float64(pods))))
}

// policyBase: replicas the capacity policy keeps on on-demand.
func policyBase(s *Shape) int {
	base, _ := strconv.Atoi(s.Policy["spot-scheduler.io/on-demand-base"])
	n := 0
	for _, w := range s.Workloads {
		if w.Policy {
			n += base
		}
	}
	return n
}
