package rebalance

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

// The capacity policy through events, at the simulator level: the scheduler (the profile's
// own plugins, one pending pod at a time, each placement seen by the next, as the scheduler's
// assumed pods are) and the rebalancer (PlanMoves; each move an eviction whose replacement
// the scheduler places) play random sequences of reclaims as clouds do them (the pool's
// nodes go, their pods are replaced), returns of a pool and scale changes (scale-in in the
// deletion-cost controller's order, policy.KeepOrder). After every settle, whenever on-demand
// has room for every pod, the policy holds: the on-demand base and the spot share (no
// shortfall on non-reclaimable capacity) and every pool cap (no excess), and nothing is
// Pending.

// eventCluster is one cluster played through events.
type eventCluster struct {
	t   testing.TB
	ctx context.Context
	sim *simulator.Simulator
	rng *rand.Rand
	// nodes by name; pools' nodes come and go with reclaims and returns.
	nodes map[string]*v1.Node
	// pools holds each spot pool's nodes, to return them.
	pools   map[string][]*v1.Node
	bound   []*v1.Pod
	pending []*v1.Pod
	// desired replicas per workload, and the policy annotations of "web".
	desired     map[string]int
	annotations []string
	seq         int
	log         []string
}

var eventPolicies = [][]string{
	{policy.OnDemandBaseAnnotation, "2", policy.SpotShareAnnotation, "50", policy.MaxPerPoolAnnotation, "50%"},
	{policy.OnDemandBaseAnnotation, "2", policy.SpotShareAnnotation, "75", policy.MaxPerPoolAnnotation, "50%"},
	{policy.MaxPerPoolAnnotation, "2"},
	{policy.MaxPerPoolAnnotation, "34%"},
	{policy.OnDemandBaseAnnotation, "1", policy.SpotShareAnnotation, "60", policy.MaxPerPoolAnnotation, "1"},
	{policy.SpotShareAnnotation, "30"},
}

func newEventCluster(t testing.TB, sim *simulator.Simulator, seed int64) *eventCluster {
	_, ctx := ktesting.NewTestContext(t)
	rng := rand.New(rand.NewSource(seed))
	c := &eventCluster{t: t, ctx: ctx, sim: sim, rng: rng, nodes: map[string]*v1.Node{}, pools: map[string][]*v1.Node{}, desired: map[string]int{}}
	for _, pool := range []string{"a", "b", "c"} {
		for i := range 1 + rng.Intn(2) {
			n := poolNode(fmt.Sprintf("%s-%d", pool, i), fmt.Sprint(2+rng.Intn(5)), pool)
			c.pools[pool] = append(c.pools[pool], n)
			c.nodes[n.Name] = n
		}
	}
	// On-demand has room for every pod in most clusters (the policy must then hold), and is
	// short of it in some (only the invariants that need no room are checked).
	od := odNode("od-1", fmt.Sprint([]int{4, 24, 24, 24}[rng.Intn(4)]))
	c.nodes[od.Name] = od
	c.annotations = eventPolicies[rng.Intn(len(eventPolicies))]
	c.scale("web", 3+rng.Intn(8))
	c.scale("plain", rng.Intn(4))
	return c
}

func (c *eventCluster) newPod(owner string) *v1.Pod {
	c.seq++
	p := pod(fmt.Sprintf("%s-%03d", owner, c.seq), owner, "", "1")
	if owner == "web" {
		withPolicy(p, c.annotations...)
	}
	return p
}

// scale sets a workload's replicas: new pods are Pending; on scale-in the ReplicaSet deletes
// Pending pods first, then bound ones in the deletion-cost order the policy gives.
func (c *eventCluster) scale(owner string, n int) {
	c.desired[owner] = n
	have := c.count(owner)
	for ; have < n; have++ {
		c.pending = append(c.pending, c.newPod(owner))
	}
	for have > n && c.dropPending(owner) {
		have--
	}
	if have <= n {
		return
	}
	var mine []*v1.Pod
	for _, p := range c.bound {
		if p.Labels["app"] == owner {
			mine = append(mine, p)
		}
	}
	p, _ := c.sim.Model.PolicyFor(mine[0])
	replicas := make([]policy.Replica, len(mine))
	for i, pd := range mine {
		cl := c.sim.Model.Classify(c.nodes[pd.Spec.NodeName])
		replicas[i] = policy.Replica{Reclaimable: c.sim.Model.Reclaimable(cl.Tier), Pool: cl.Pool, AtRisk: cl.AtRisk, Name: pd.Name}
	}
	order := p.KeepOrder(replicas)
	gone := map[string]bool{}
	for _, i := range order[n:] {
		gone[mine[i].Name] = true
	}
	c.removeBound(func(p *v1.Pod) bool { return gone[p.Name] })
}

func (c *eventCluster) count(owner string) int {
	n := 0
	for _, p := range append(append([]*v1.Pod(nil), c.bound...), c.pending...) {
		if p.Labels["app"] == owner {
			n++
		}
	}
	return n
}

func (c *eventCluster) dropPending(owner string) bool {
	for i, p := range c.pending {
		if p.Labels["app"] == owner {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return true
		}
	}
	return false
}

// removeBound removes the bound pods gone says, and returns their workloads.
func (c *eventCluster) removeBound(gone func(*v1.Pod) bool) []string {
	var owners []string
	kept := c.bound[:0]
	for _, p := range c.bound {
		if gone(p) {
			owners = append(owners, p.Labels["app"])
			continue
		}
		kept = append(kept, p)
	}
	c.bound = kept
	return owners
}

// reclaim deletes a pool's nodes as a cloud does; once the pod garbage collector has removed
// their pods, the ReplicaSets create replacements, all at once.
func (c *eventCluster) reclaim(pool string) {
	for _, n := range c.pools[pool] {
		delete(c.nodes, n.Name)
	}
	for _, owner := range c.removeBound(func(p *v1.Pod) bool { return c.nodes[p.Spec.NodeName] == nil }) {
		c.pending = append(c.pending, c.newPod(owner))
	}
}

func (c *eventCluster) returnPool(pool string) {
	for _, n := range c.pools[pool] {
		c.nodes[n.Name] = n
	}
}

func (c *eventCluster) nodeList() []*v1.Node {
	out := make([]*v1.Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// schedule places the Pending pods one at a time, each seeing the ones placed before it.
func (c *eventCluster) schedule() {
	var still []*v1.Pod
	for _, p := range c.pending {
		session := c.sim.Begin(c.sim.NewSnapshot(c.nodeList(), c.bound, false))
		eval, err := session.Evaluate(c.ctx, p)
		session.End()
		if err != nil {
			c.t.Fatal(err)
		}
		if eval.Chosen == "" {
			still = append(still, p)
			continue
		}
		placed := p.DeepCopy()
		placed.Spec.NodeName = eval.Chosen
		c.bound = append(c.bound, placed)
	}
	c.pending = still
}

// settle schedules and rebalances until the rebalancer plans nothing (at most 30 passes).
func (c *eventCluster) settle() int {
	evictions := 0
	for pass := 0; ; pass++ {
		c.schedule()
		if pass == 30 {
			c.t.Fatalf("no settle after 30 passes: a loop\n%s", strings.Join(c.log, "\n"))
		}
		plan, err := PlanMoves(c.ctx, c.sim, c.nodeList(), c.bound, now, DefaultOptions(), nil)
		if err != nil {
			c.t.Fatal(err)
		}
		if len(plan.Moves) == 0 {
			return evictions
		}
		moved := map[string]bool{}
		for _, m := range plan.Moves {
			moved[m.Pod.Name] = true
			c.log = append(c.log, fmt.Sprintf("  evict %s %s -> %s", m.Pod.Name, m.From, m.To))
		}
		for _, owner := range c.removeBound(func(p *v1.Pod) bool { return moved[p.Name] }) {
			c.pending = append(c.pending, c.newPod(owner))
		}
		evictions += len(plan.Moves)
	}
}

// check asserts the policy after a settle, when on-demand has room for every pod.
func (c *eventCluster) check(step string) bool {
	free := c.nodes["od-1"].Status.Allocatable.Cpu().Value()
	for _, p := range c.bound {
		if p.Spec.NodeName == "od-1" {
			free--
		}
	}
	var counts policy.Counts
	var web *v1.Pod
	for _, p := range c.bound {
		if p.Labels["app"] != "web" {
			continue
		}
		web = p
		cl := c.sim.Model.Classify(c.nodes[p.Spec.NodeName])
		counts.Add(c.sim.Model.Reclaimable(cl.Tier), cl.Pool, 1)
	}
	// Room: on-demand could take every spot pod of "web" on top of what it runs.
	room := free >= int64(counts.Reclaimable()) && len(c.pending) == 0
	if !room || web == nil {
		return false
	}
	p, err := c.sim.Model.PolicyFor(web)
	if err != nil {
		c.t.Fatal(err)
	}
	if v := p.Violation(counts); !v.Holds() {
		c.t.Fatalf("after %s: policy %s does not hold with room on on-demand: %s, shortfall %d, pool excess %d\n%s",
			step, p, policy.FormatCounts(counts), v.Shortfall, v.PoolExcess, strings.Join(c.log, "\n"))
	}
	return true
}

// play runs steps random events and checks after each settle; it returns the checks made.
func (c *eventCluster) play(steps int) (checked int) {
	c.settle()
	for step := range steps {
		var what string
		switch r := c.rng.Intn(10); {
		case r < 4:
			pool := []string{"a", "b", "c"}[c.rng.Intn(3)]
			what = "reclaim of pool " + pool
			c.reclaim(pool)
		case r < 7:
			pool := []string{"a", "b", "c"}[c.rng.Intn(3)]
			what = "return of pool " + pool
			c.returnPool(pool)
		default:
			owner := []string{"web", "web", "plain"}[c.rng.Intn(3)]
			n := 1 + c.rng.Intn(10)
			if owner == "plain" {
				n = c.rng.Intn(4)
			}
			what = fmt.Sprintf("scale %s to %d", owner, n)
			c.scale(owner, n)
		}
		c.log = append(c.log, fmt.Sprintf("step %d: %s", step, what))
		c.settle()
		if c.check(fmt.Sprintf("step %d (%s)", step, what)) {
			checked++
		}
	}
	return checked
}

// TestPolicyHoldsThroughEvents plays 200 random sequences.
func TestPolicyHoldsThroughEvents(t *testing.T) {
	sim := testProfile(t, "")
	checked := 0
	sequences := 200
	if testing.Short() {
		sequences = 40
	}
	for seed := range int64(sequences) {
		checked += newEventCluster(t, sim, seed).play(8)
	}
	if checked < sequences {
		t.Fatalf("only %d settles had room on on-demand: the test checks too little", checked)
	}
	t.Logf("%d sequences, %d settles checked", sequences, checked)
}

// FuzzPolicyThroughEvents is the same property on fuzzed seeds and lengths (make fuzz).
func FuzzPolicyThroughEvents(f *testing.F) {
	for seed := range int64(8) {
		f.Add(seed, uint8(8))
	}
	sim := testProfile(f, "")
	f.Fuzz(func(t *testing.T, seed int64, steps uint8) {
		c := newEventCluster(t, sim, seed)
		c.play(int(steps % 16))
	})
}
