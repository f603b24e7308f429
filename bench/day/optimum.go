package day

import (
	"math"
	"strconv"
)

// podSizes is the demand as pod sizes: milliCPU -> pods of that size, off-peak or at the peak.
func podSizes(s *Shape, peak bool) map[int64]int {
	sizes := map[int64]int{}
	for _, w := range s.Workloads {
		n := w.Replicas
		if peak {
			n = w.Peak
		}
		sizes[w.MilliCPU] += n
	}
	return sizes
}

// demandMilliCPU is the CPU the workloads ask for, off-peak or at the peak, and their pods.
func demandMilliCPU(s *Shape, peak bool) (cpu int64, pods int) {
	for size, n := range podSizes(s, peak) {
		cpu += size * int64(n)
		pods += n
	}
	return cpu, pods
}

// optimumNodes is the optimum in whole nodes holding whole pods: the fewest nodes that hold
// the demand's pods (wholePodNodes: no placement can use fewer), of the cheapest tiers: spot
// first up to what the pools not out can give, then on-demand up to its pool, then burst.
// Every node offers the same room, so the fewest nodes of the cheapest tiers is the cheapest
// placement.
func optimumNodes(s *Shape, peak bool, out map[string]bool) map[string]float64 {
	capNodes := map[string]int64{}
	for _, p := range s.Pools {
		if !out[p.Name] {
			capNodes[p.Tier] += p.CPULimit / int64(s.NodeCPU)
		}
	}
	nodes := map[string]float64{}
	rest := int64(wholePodNodes(podSizes(s, peak), s.nodeMilliCPU()))
	for _, tier := range Tiers {
		if rest <= 0 {
			break
		}
		n := rest
		if tier != Burst {
			n = min(rest, capNodes[tier])
		}
		nodes[tier] = float64(n)
		rest -= n
	}
	return nodes
}

// wholePodNodes is a lower bound on the nodes of room capacity that hold pods of these sizes
// (milliCPU -> count) without splitting one: the largest of
//   - the room: the pods' CPU over a node's, in the sizes' common unit (a node of 3900 m holds
//     at most 3750 m of pods that are multiples of 250 m);
//   - the pods larger than half a node, which no two share;
//   - granularity: for a step d of that unit, a node holding only pods whose sizes are
//     multiples of d holds at most the largest multiple of d that fits, so every node short of
//     that needs a pod of another size (only 750 m pods let a node of 3900 m hold more than
//     3500 m of 500 m multiples).
//
// On the benchmark's shapes First Fit Decreasing meets it, so it is the optimum
// (TestWholePodNodes).
func wholePodNodes(sizes map[int64]int, capacity int64) int {
	unit := int64(0)
	for size, n := range sizes {
		if n > 0 {
			unit = gcd(unit, size)
		}
	}
	if unit == 0 {
		return 0
	}
	room := capacity / unit
	total, large := int64(0), 0
	for size, n := range sizes {
		total += size / unit * int64(n)
		if 2*(size/unit) > room {
			large += n
		}
	}
	best := max(int((total+room-1)/room), large)
	for d := int64(2); d <= room; d++ {
		coarse := room / d * d
		if coarse == room {
			continue
		}
		other := int64(0) // pods whose size is not a multiple of d
		for size, n := range sizes {
			if (size/unit)%d != 0 {
				other += int64(n)
			}
		}
		// Fewest nodes n with min(n, other) nodes of room and the rest of coarse room.
		n := (total + room - 1) / room
		if n > other {
			n = other + (total-other*room+coarse-1)/coarse
		}
		best = max(best, int(n))
	}
	return best
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
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
