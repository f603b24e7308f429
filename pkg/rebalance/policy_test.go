package rebalance

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/spot-scheduler/spot-scheduler/internal/testobj"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

func poolNode(name, cpu, pool string) *v1.Node {
	return node(name, cpu, map[string]string{"karpenter.sh/capacity-type": "spot", "karpenter.sh/nodepool": pool})
}

func withPolicy(p *v1.Pod, kv ...string) *v1.Pod {
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Annotations[kv[i]] = kv[i+1]
	}
	return p
}

var base2Share75 = []string{policy.OnDemandBaseAnnotation, "2", policy.SpotShareAnnotation, "75"}

func policyPods(n int, node string, annotations ...string) []*v1.Pod {
	var out []*v1.Pod
	for i := range n {
		out = append(out, withPolicy(pod(fmt.Sprintf("%s-%d", node, i), "web", node, "1"), annotations...))
	}
	return out
}

// countMoves counts planned moves by source and target node.
func countMoves(plan *Plan) map[string]int {
	out := map[string]int{}
	for _, m := range plan.Moves {
		out[m.From+"->"+m.To]++
	}
	return out
}

var base2Share50Cap50 = []string{policy.OnDemandBaseAnnotation, "2", policy.SpotShareAnnotation, "50", policy.MaxPerPoolAnnotation, "50%"}

func TestPlanPolicy(t *testing.T) {
	p := testProfile(t, "")
	capTwo := []string{policy.MaxPerPoolAnnotation, "2"}
	tests := []struct {
		name      string
		nodes     []*v1.Node
		pods      []*v1.Pod
		wantMoves map[string]int
	}{
		{
			name:  "failback moves exactly what the policy allows to spot: 6 of 10",
			nodes: []*v1.Node{poolNode("a-1", "8", "a"), poolNode("b-1", "8", "b"), odNode("od-1", "16")},
			pods:  policyPods(10, "od-1", append(base2Share75, policy.MaxPerPoolAnnotation, "50%")...),
			// 3 per pool (cap 50 % of 6)
			wantMoves: map[string]int{"od-1->a-1": 3, "od-1->b-1": 3},
		},
		{
			name:      "base pods that had to land on spot go back to on-demand when room appears",
			nodes:     []*v1.Node{poolNode("a-1", "8", "a"), odNode("od-1", "8")},
			pods:      append(policyPods(1, "od-1", base2Share75...), policyPods(3, "a-1", base2Share75...)...),
			wantMoves: map[string]int{"a-1->od-1": 2}, // 4 replicas: 3 on-demand, 1 spot
		},
		{
			name:      "a pool over its cap is re-spread within the tier",
			nodes:     []*v1.Node{poolNode("a-1", "8", "a"), poolNode("b-1", "8", "b"), odNode("od-1", "8")},
			pods:      policyPods(4, "a-1", capTwo...),
			wantMoves: map[string]int{"a-1->b-1": 2},
		},
		{
			name:      "a pool over its cap with no other pool under it: the excess goes to the next tier with room",
			nodes:     []*v1.Node{poolNode("a-1", "8", "a"), odNode("od-1", "8")},
			pods:      policyPods(4, "a-1", capTwo...),
			wantMoves: map[string]int{"a-1->od-1": 2},
		},
		{
			name:      "the next tier with room may be burst when on-demand is full",
			nodes:     []*v1.Node{poolNode("a-1", "8", "a"), odNode("od-1", "1"), burstNode("vk", "100")},
			pods:      append(policyPods(4, "a-1", capTwo...), withPolicy(pod("x", "other", "od-1", "1"), "spot-scheduler.io/rebalance", "false")),
			wantMoves: map[string]int{"a-1->vk": 2},
		},
		{
			// The reclaim of TestPolicyPoolCapAfterReclaim, had both replacements landed in b.
			name:      "base 2, 50 %, cap 50 %: 3 in the one pool left, 1 goes to on-demand",
			nodes:     []*v1.Node{poolNode("b-1", "8", "b"), odNode("od-1", "8")},
			pods:      append(policyPods(5, "od-1", base2Share50Cap50...), policyPods(3, "b-1", base2Share50Cap50...)...),
			wantMoves: map[string]int{"b-1->od-1": 1},
		},
		{
			name:      "the lost pool returns: failback restores the cheaper split",
			nodes:     []*v1.Node{poolNode("a-1", "8", "a"), poolNode("b-1", "8", "b"), odNode("od-1", "8")},
			pods:      append(policyPods(6, "od-1", base2Share50Cap50...), policyPods(2, "b-1", base2Share50Cap50...)...),
			wantMoves: map[string]int{"od-1->a-1": 1},
		},
		{
			name:      "no room where the policy wants the pods: nothing moves",
			nodes:     []*v1.Node{poolNode("a-1", "3", "a"), odNode("od-1", "1")},
			pods:      append(policyPods(1, "od-1", base2Share75...), policyPods(3, "a-1", base2Share75...)...),
			wantMoves: map[string]int{},
		},
		{
			name:      "the policy holds: nothing moves, though spot has room for the on-demand pods",
			nodes:     []*v1.Node{poolNode("a-1", "8", "a"), odNode("od-1", "8")},
			pods:      append(policyPods(3, "od-1", base2Share75...), policyPods(1, "a-1", base2Share75...)...),
			wantMoves: map[string]int{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := runPlan(t, p, tc.nodes, tc.pods, wholeBudget())
			got := countMoves(plan)
			if fmt.Sprint(got) != fmt.Sprint(tc.wantMoves) {
				t.Errorf("moves %v, want %v (skips %v)", got, tc.wantMoves, plan.SkipCounts())
			}
			checkPotentialDecreases(t, p.Model, tc.nodes, tc.pods, plan)
			if strings.HasPrefix(tc.name, "the policy holds") {
				if got := plan.SkipCounts()[SkipPolicy]; got != 3 {
					t.Errorf("skips %v, want the 3 on-demand pods kept by the policy", plan.SkipCounts())
				}
			}
		})
	}
}

// globalPotential is the rebalancer's potential over the whole cluster: the replicas out of
// policy summed over workloads, then the tier ranks (each pod's own order) summed over pods.
func globalPotential(m *capacity.Model, nodes []*v1.Node, pods []*v1.Pod, at map[string]string) potential {
	classes := map[string]capacity.Class{}
	for _, n := range nodes {
		classes[n.Name] = m.Classify(n)
	}
	type wl struct {
		p policy.Policy
		c policy.Counts
	}
	workloads := map[string]*wl{}
	var out potential
	for _, pod := range pods {
		c := classes[at[pod.Name]]
		out.cost += ranking.New(m).TierRank(c.Tier, capacity.AvoidsSpot(pod))
		p, err := m.PolicyFor(pod)
		if err != nil || !p.Active() {
			continue
		}
		key, _ := capacity.WorkloadKey(pod)
		if workloads[key] == nil {
			workloads[key] = &wl{p: p}
		}
		workloads[key].c.Add(m.Reclaimable(c.Tier), c.Pool, 1)
	}
	for _, w := range workloads {
		out.violations += w.p.Violation(w.c).Total()
	}
	return out
}

// checkPotentialDecreases applies the plan's moves one by one: each strictly reduces the
// cluster's potential.
func checkPotentialDecreases(t *testing.T, m *capacity.Model, nodes []*v1.Node, pods []*v1.Pod, plan *Plan) {
	t.Helper()
	at := map[string]string{}
	for _, p := range pods {
		at[p.Name] = p.Spec.NodeName
	}
	before := globalPotential(m, nodes, pods, at)
	for _, mv := range plan.Moves {
		at[mv.Pod.Name] = mv.To
		after := globalPotential(m, nodes, pods, at)
		if !after.less(before) {
			t.Fatalf("move %s %s -> %s: potential %+v -> %+v, not a strict decrease", mv.Pod.Name, mv.From, mv.To, before, after)
		}
		before = after
	}
}

// TestPlanPotentialStrictlyDecreases: on random clusters (spot pools, on-demand, burst) with a
// policy workload and a plain one placed at random, every planned move strictly reduces the
// potential, and planning again after the moves (as the next pass would) keeps reducing it:
// passes cannot loop.
func TestPlanPotentialStrictlyDecreases(t *testing.T) {
	p := testProfile(t, "")
	rng := rand.New(rand.NewSource(3))
	policies := [][]string{
		base2Share75, append(base2Share75, policy.MaxPerPoolAnnotation, "50%"),
		{policy.MaxPerPoolAnnotation, "1"}, {policy.SpotShareAnnotation, "30"}, {policy.OnDemandBaseAnnotation, "3"},
	}
	totalMoves, repairs := 0, 0
	for iter := 0; iter < 60; iter++ {
		nodes := []*v1.Node{
			poolNode("a-1", fmt.Sprint(1+rng.Intn(4)), "a"), poolNode("a-2", fmt.Sprint(1+rng.Intn(4)), "a"),
			poolNode("b-1", fmt.Sprint(1+rng.Intn(4)), "b"), odNode("od-1", fmt.Sprint(1+rng.Intn(6))),
			odNode("od-2", fmt.Sprint(1+rng.Intn(6))), burstNode("vk", "100"),
		}
		free := map[string]int{}
		for _, n := range nodes {
			free[n.Name] = int(n.Status.Allocatable.Cpu().Value())
		}
		var pods []*v1.Pod
		annotations := policies[iter%len(policies)]
		for i := range 6 + rng.Intn(8) {
			target := nodes[rng.Intn(len(nodes))].Name
			if free[target] == 0 {
				target = "vk"
			}
			free[target]--
			owner := "web"
			if i%4 == 3 {
				owner = "plain"
			}
			pd := pod(fmt.Sprintf("p%02d", i), owner, target, "1")
			if owner == "web" {
				withPolicy(pd, annotations...)
			}
			pods = append(pods, pd)
		}
		for pass := 0; pass < 5; pass++ {
			plan := runPlan(t, p, nodes, pods, DefaultOptions())
			checkPotentialDecreases(t, p.Model, nodes, pods, plan)
			if len(plan.Moves) == 0 {
				break
			}
			totalMoves += len(plan.Moves)
			for _, m := range plan.Moves {
				// A pool-cap-only policy moving a pod off spot: a pool over its cap repaired
				// on a worse tier.
				if len(annotations) == 2 && annotations[0] == policy.MaxPerPoolAnnotation && m.FromTier == "spot" && m.ToTier != "spot" {
					repairs++
				}
			}
			pods = applyMoves(pods, plan)
		}
	}
	if totalMoves == 0 || repairs == 0 {
		t.Fatalf("%d moves planned, %d of them a pool over its cap repaired on a worse tier: the test must check both", totalMoves, repairs)
	}
	t.Logf("%d moves checked, %d of them pool-cap repairs on a worse tier", totalMoves, repairs)
}

// applyMoves returns the pods with the plan's moves made (each replacement pod lands where the
// simulation said).
func applyMoves(pods []*v1.Pod, plan *Plan) []*v1.Pod {
	to := map[string]string{}
	for _, m := range plan.Moves {
		to[m.Pod.Name] = m.To
	}
	out := make([]*v1.Pod, 0, len(pods))
	for _, p := range pods {
		if n, ok := to[p.Name]; ok {
			p = simulator.Unbound(p)
			p.Spec.NodeName = n
		}
		out = append(out, p)
	}
	return out
}

// TestPolicyStatusesLeavePlaceholdersOut: placeholder pods carrying a workload's policy
// annotations (a headroom Deployment copied from the workload's template) are not counted as
// its replicas.
func TestPolicyStatusesLeavePlaceholdersOut(t *testing.T) {
	sim := testProfile(t, "")
	nodes := []*v1.Node{poolNode("a-1", "8", "a"), odNode("od-1", "8")}
	pods := policyPods(2, "a-1", policy.MaxPerPoolAnnotation, "2")
	headroom := withPolicy(testobj.Placeholder("headroom-1", "a-1", "1"), policy.MaxPerPoolAnnotation, "2")
	headroom.OwnerReferences[0] = pods[0].OwnerReferences[0] // the same workload key
	statuses := PolicyStatuses(sim, nodes, append(pods, headroom))
	if len(statuses) != 1 {
		t.Fatalf("statuses %+v, want one workload", statuses)
	}
	if got := statuses[0].Counts.Reclaimable(); got != 2 || !statuses[0].Violation.Holds() {
		t.Errorf("counts %s (holds %v), want the 2 replicas only, holding the cap of 2", policy.FormatCounts(statuses[0].Counts), statuses[0].Violation.Holds())
	}
}
