package strategy

// The Karpenter autoscaler mode: the real Karpenter (its kwok cloud provider, built by
// hack/build-karpenter.sh) launches and removes every node. Each pool of the trace is a
// NodePool (spot pools by capacity type spot, heaviest weight first; on-demand; the virtual
// node's pool as a burst NodePool of tainted virtual-kubelet nodes), its CPU limit the CPU the
// trace gives the pool at that moment. The trace's events become what Karpenter sees:
//   - notice: the pool's limit drops by the noticed nodes (Karpenter launches nothing more
//     there) and the nodes get the interruption-notice taint, as in the scripted mode;
//   - reclaim: Karpenter's interruption path, the nodes' NodeClaims are deleted: Karpenter
//     taints them karpenter.sh/disrupted, evicts their pods and removes them;
//   - capacity returning: the pool's limit is restored; Karpenter launches there only for
//     Pending pods (placeholders, or pods its consolidation moves);
//   - scale: the Deployments' replicas, as in the scripted mode.
//
// A NodePool's limit is not hard: Karpenter checks it against the NodePool's status, which
// lags its launches, so two batches in a row can launch past it (seen: five spot nodes for
// 16 CPU). A cloud whose pool has that much capacity would refuse the extra launch, so the
// runner plays the cloud: a NodeClaim launched after the pool's limit was last set that takes
// the pool past it is deleted at once (counted as a refused launch); nodes that predate the
// limit (those given a notice) are left to the trace's reclaim.

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/spot-scheduler/spot-scheduler/bench/trace"
	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
)

// karpenterNodeReserveMilliCPU is what Karpenter's kwok provider keeps of every node's CPU
// (kube-reserved 100m).
const karpenterNodeReserveMilliCPU = 100

// karpenterNodeCPU is the size of every node Karpenter launches: the trace's nodes have 4 CPUs
// (the virtual node's pool becomes as many 4-CPU virtual nodes as its CPU allows).
const karpenterNodeCPU = 4

// karpenterConsolidateAfter is the NodePools' consolidateAfter: the recommended 1 minute
// (docs/install.md) compressed like the trace. Karpenter's own polling (10 s) and validation
// (15 s) delays are not compressible.
const karpenterConsolidateAfter = time.Second

// warmUpNode serves the warm-up probe in the Karpenter mode; it is deleted before Karpenter starts.
var warmUpNode = trace.Node{Name: "warm-up", Pool: "warm-up", Zone: "zone-1", Tier: trace.OnDemand, CPU: 4}

// Instance type names of the Karpenter mode.
const (
	standardInstanceType = "bench-4"
	virtualInstanceType  = "virtual-4"
)

// karpenterInstanceTypes prices the trace's tiers per node: a 4-CPU node with a spot and an
// on-demand offering at the trace's CPU-hour prices, and a 4-CPU virtual node at the burst price.
func karpenterInstanceTypes(tr *trace.Trace) []localcluster.InstanceType {
	cpu := float64(karpenterNodeCPU)
	return []localcluster.InstanceType{
		{Name: standardInstanceType, CPU: karpenterNodeCPU, MemoryGi: 4 * karpenterNodeCPU,
			OnDemandPrice: cpu * tr.Prices[trace.OnDemand], SpotPrice: cpu * tr.Prices[trace.Spot], Zones: []string{"zone-1"}},
		{Name: virtualInstanceType, CPU: karpenterNodeCPU, MemoryGi: 4 * karpenterNodeCPU,
			OnDemandPrice: cpu * tr.Prices[trace.Burst], SpotPrice: cpu * tr.Prices[trace.Burst], Zones: []string{"zone-1"}},
	}
}

// KarpenterNodePools are the NodePools of a strategy: one per trace pool, limited to the CPU
// the trace starts it with. Weights order new nodes spot first (the first spot pool heaviest),
// then on-demand, then burst. The karpenter strategy consolidates underutilized nodes in every
// NodePool (its own failback); the others only remove empty nodes, which is what the scripted
// mode assumes of an autoscaler, and leave moving pods to the strategy.
func KarpenterNodePools(tr *trace.Trace, strategy string) []localcluster.NodePool {
	after := karpenterConsolidateAfter
	consolidation := localcluster.ConsolidateWhenEmpty
	if strategy == Karpenter {
		consolidation = localcluster.ConsolidateWhenEmptyOrUnderutilized
	}
	limits := tr.StateAfter(0).PoolCPU(false)
	var pools []localcluster.NodePool
	spot, onDemand := 0, 0
	for _, p := range tr.Pools() {
		np := localcluster.NodePool{
			Name: p.Name, CPULimit: strconv.FormatInt(limits[p.Name], 10),
			ConsolidationPolicy: consolidation, ConsolidateAfter: &after,
			CapacityType: localcluster.CapacityTypeOnDemand, InstanceTypes: []string{standardInstanceType},
		}
		switch p.Tier {
		case trace.Spot:
			np.CapacityType, np.Weight = localcluster.CapacityTypeSpot, int32(max(51, 100-10*spot))
			spot++
		case trace.OnDemand:
			np.Weight = int32(max(11, 50-onDemand))
			onDemand++
		case trace.Burst:
			np.Weight = 1
			np.InstanceTypes = []string{virtualInstanceType}
			np.Labels = map[string]string{"type": "virtual-kubelet"}
			np.Taints = []v1.Taint{{Key: virtualTaint, Value: "azure", Effect: v1.TaintEffectNoSchedule}}
		}
		pools = append(pools, np)
	}
	return pools
}

// startKarpenter deletes the warm-up node, then starts Karpenter with the strategy's NodePools.
func (r *runner) startKarpenter(ctx context.Context) error {
	if err := r.client.CoreV1().Nodes().Delete(ctx, warmUpNode.Name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	if err := localcluster.WaitForAPI(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		_, err := r.client.CoreV1().Nodes().Get(ctx, warmUpNode.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		return fmt.Errorf("waiting for the warm-up node to go: %w", err)
	}
	pools := KarpenterNodePools(r.tr, r.strategy)
	r.say("starting Karpenter (kwok provider) with NodePools %s", describePools(pools))
	k, err := r.cluster.StartKarpenter(ctx, localcluster.KarpenterOptions{
		Dir: r.opts.KarpenterDir, NodePools: pools, InstanceTypes: karpenterInstanceTypes(r.tr),
	})
	if err != nil {
		return err
	}
	r.karpenter = k
	r.procs = append(r.procs, k.Process)
	now := time.Now()
	for _, p := range pools {
		r.limits[p.Name], _ = strconv.ParseInt(p.CPULimit, 10, 64)
		r.limitSetAt[p.Name] = now
	}
	go r.refuseLaunchesPastLimits(ctx)
	return nil
}

// refuseLaunchesPastLimits deletes, every 200 ms, the NodeClaims launched after their pool's
// limit was last set that take the pool past it (see the top of the file).
func (r *runner) refuseLaunchesPastLimits(ctx context.Context) {
	_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		claims, err := r.karpenter.NodeClaims(ctx)
		if err != nil {
			return false, nil
		}
		byPool := map[string][]unstructured.Unstructured{}
		for _, c := range claims {
			if c.GetDeletionTimestamp() == nil {
				pool := c.GetLabels()[localcluster.KarpenterNodePoolLabel]
				byPool[pool] = append(byPool[pool], c)
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for pool, cs := range byPool {
			limit, ok := r.limits[pool]
			if !ok {
				continue
			}
			sort.Slice(cs, func(i, j int) bool {
				return cs[i].GetCreationTimestamp().Time.Before(cs[j].GetCreationTimestamp().Time)
			})
			since := r.limitSetAt[pool].Truncate(time.Second)
			older := 0
			var newer []unstructured.Unstructured
			for _, c := range cs {
				if c.GetCreationTimestamp().Time.Before(since) {
					older++
				} else {
					newer = append(newer, c)
				}
			}
			allowed := max(0, int(limit)/karpenterNodeCPU-older)
			for i := allowed; i < len(newer); i++ {
				if err := r.karpenter.Dynamic.Resource(localcluster.NodeClaimGVR).Delete(ctx, newer[i].GetName(), metav1.DeleteOptions{}); err == nil {
					r.refusedLaunches++
					r.say("refused launch %s: NodePool %s past its %d CPU", newer[i].GetName(), pool, limit)
				}
			}
		}
		return false, nil
	})
}

func describePools(pools []localcluster.NodePool) string {
	s := ""
	for i, p := range pools {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s (%s, weight %d, %s CPU, %s)", p.Name, p.CapacityType, p.Weight, p.CPULimit, p.ConsolidationPolicy)
	}
	return s
}

// meterNode records a live node of Karpenter's in the sample: its tier (its NodePool's) and
// its offering's price, which Karpenter's kwok provider puts in a label.
func (r *runner) meterNode(s *Sample, n *v1.Node, tierOf map[string]string) {
	pool, ok := n.Labels[localcluster.KarpenterNodePoolLabel]
	if !ok {
		return
	}
	tier := r.poolTier[pool]
	tierOf[n.Name] = tier
	if s.AutoscaledNodes == nil {
		s.AutoscaledNodes = map[string]int{}
	}
	s.AutoscaledNodes[tier]++
	price, _ := strconv.ParseFloat(n.Labels[localcluster.KarpenterPriceLabel], 64)
	s.NodePricePerHour += price
}

// karpenterNodes lists the live (not terminating) nodes of a NodePool, by name.
func (r *runner) karpenterNodes(ctx context.Context, pool string) ([]string, error) {
	return localcluster.LiveNodeNames(ctx, r.client, localcluster.KarpenterNodePoolLabel+"="+pool)
}

// pick maps trace nodes given a notice or reclaimed to Karpenter's nodes of the same pools:
// every node of a pool when the trace takes the whole pool, else as many nodes as the trace
// names (the noticed ones first).
func (r *runner) pick(ctx context.Context, index int, names []string) (map[string][]string, error) {
	before := r.tr.StateAfter(index)
	perPool, total := map[string]int{}, map[string]int{}
	for _, name := range names {
		if n, ok := before.Nodes[name]; ok {
			perPool[n.Pool]++
		}
	}
	for _, n := range before.Nodes {
		total[n.Pool]++
	}
	out := map[string][]string{}
	for pool, k := range perPool {
		nodes, err := r.karpenterNodes(ctx, pool)
		if err != nil {
			return nil, err
		}
		live := map[string]bool{}
		for _, n := range nodes {
			live[n] = true
		}
		var chosen []string
		for _, n := range r.noticed[pool] {
			if live[n] {
				chosen = append(chosen, n)
				delete(live, n)
			}
		}
		for _, n := range nodes {
			if live[n] {
				chosen = append(chosen, n)
			}
		}
		if k < total[pool] {
			chosen = chosen[:min(k, len(chosen))]
		}
		out[pool] = chosen
	}
	return out, nil
}

// applyKarpenter applies an event of the trace in the Karpenter mode (see the top of the file).
func (r *runner) applyKarpenter(ctx context.Context, index int, e trace.Event) error {
	var parts []string
	noticed, err := r.pick(ctx, index, e.Notice)
	if err != nil {
		return err
	}
	reclaimed, err := r.pick(ctx, index, e.Reclaim)
	if err != nil {
		return err
	}
	// Limits first, so that Karpenter never launches a replacement into a pool going away.
	if err := r.syncLimits(ctx, index+1, &parts); err != nil {
		return err
	}
	for pool, nodes := range noticed {
		r.noticed[pool] = nodes
		for _, name := range nodes {
			parts = append(parts, "notice "+name)
			if err := localcluster.TaintNode(ctx, r.client, name, v1.Taint{Key: noticeTaint, Value: "true", Effect: v1.TaintEffectNoSchedule}); err != nil {
				return err
			}
		}
	}
	for pool, nodes := range reclaimed {
		for _, name := range nodes {
			parts = append(parts, "interrupt "+name)
			r.mu.Lock()
			r.interrupted[name] = true
			r.mu.Unlock()
			if err := r.karpenter.Interrupt(ctx, name); err != nil && !apierrors.IsNotFound(err) {
				// A node whose NodeClaim is gone (a refused launch whose node stayed) has no
				// interruption path left: the cloud takes it, as in the scripted mode.
				r.say("no NodeClaim behind %s (%v): deleting the node", name, err)
				if err := localcluster.Reclaim(ctx, r.client, name); err != nil {
					return err
				}
			}
		}
		delete(r.noticed, pool)
	}
	if err := r.scale(ctx, e.Scale, &parts); err != nil {
		return err
	}
	r.say("t=%3.0fs %v", time.Since(r.start).Seconds(), parts)
	return nil
}

// syncLimits sets every NodePool's CPU limit to the CPU the trace gives its pool after the
// first events events, without the nodes given a notice.
func (r *runner) syncLimits(ctx context.Context, events int, parts *[]string) error {
	want := r.tr.StateAfter(events).PoolCPU(true)
	pools := make([]string, 0, len(r.limits))
	r.mu.Lock()
	for p := range r.limits {
		pools = append(pools, p)
	}
	r.mu.Unlock()
	sort.Strings(pools)
	for _, p := range pools {
		r.mu.Lock()
		same := want[p] == r.limits[p]
		r.mu.Unlock()
		if same {
			continue
		}
		r.mu.Lock()
		old := r.limits[p]
		if want[p] < old {
			// Lowered before Karpenter hears of it, so that no launch in between passes.
			r.limits[p], r.limitSetAt[p] = want[p], time.Now()
		}
		r.mu.Unlock()
		if err := r.karpenter.SetNodePoolCPULimit(ctx, p, strconv.FormatInt(want[p], 10)); err != nil {
			return err
		}
		*parts = append(*parts, fmt.Sprintf("limit %s %d->%d CPU", p, old, want[p]))
		r.mu.Lock()
		r.limits[p], r.limitSetAt[p] = want[p], time.Now()
		r.mu.Unlock()
	}
	return nil
}
