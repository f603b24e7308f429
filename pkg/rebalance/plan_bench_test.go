package rebalance

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/spot-scheduler/spot-scheduler/internal/testobj"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// planSnapshot is a large cluster just after spot capacity came back: 1500 full spot nodes,
// 500 new empty spot nodes, 2900 on-demand nodes and 100 virtual nodes (5000 nodes, 16 CPU
// each, virtual nodes larger), 24 000 pods on spot and 26 000 on on-demand (50 000 pods of 1
// CPU, 500 workloads), spread over 10 spot pools in 3 zones.
//
// -plan.scale divides every count (e.g. 10 for 500 nodes and 5000 pods).
func planSnapshot() ([]*v1.Node, []*v1.Pod) {
	f := *planScale
	if f < 1 {
		f = 1
	}
	var (
		spotFull, spotNew, onDemand, virtual = 1500 / f, 500 / f, 2900 / f, max(1, 100/f)
		podsOnSpot, podsOnDemand             = 24000 / f, 26000 / f
		workloads                            = max(1, 500/f)
	)
	withPool := func(labels map[string]string, pool string, zone int) map[string]string {
		l := map[string]string{"karpenter.sh/nodepool": pool, "topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", zone), "node.kubernetes.io/instance-type": "m5.4xlarge"}
		for k, v := range labels {
			l[k] = v
		}
		return l
	}
	var nodes []*v1.Node
	for i := 0; i < spotFull+spotNew; i++ {
		nodes = append(nodes, node(fmt.Sprintf("spot-%04d", i), "16", withPool(spotLabels, fmt.Sprintf("spot-%d", i%10), i%3)))
	}
	for i := 0; i < onDemand; i++ {
		nodes = append(nodes, node(fmt.Sprintf("od-%04d", i), "16", withPool(odLabels, "on-demand", i%3)))
	}
	for i := 0; i < virtual; i++ {
		nodes = append(nodes, node(fmt.Sprintf("vk-%03d", i), "256", withPool(testobj.BurstLabels, "virtual", i%3)))
	}
	pods := make([]*v1.Pod, 0, podsOnSpot+podsOnDemand)
	for i := 0; i < podsOnSpot+podsOnDemand; i++ {
		nodeName := fmt.Sprintf("spot-%04d", i/16)
		if i >= podsOnSpot {
			nodeName = fmt.Sprintf("od-%04d", (i-podsOnSpot)%onDemand)
		}
		pods = append(pods, pod(fmt.Sprintf("p-%05d", i), fmt.Sprintf("w-%03d", i%workloads), nodeName, "1"))
	}
	return nodes, pods
}

var planScale = flag.Int("plan.scale", 1, "BenchmarkPlan: divide the snapshot's 5000 nodes and 50 000 pods by this.")

// BenchmarkPlan times one planning pass of the rebalancer over 5000 nodes and 50 000 pods with
// the shipped profile and default options (caps of 50 evictions per pass, 10 per workload),
// and reports allocations and peak memory: the largest HeapInuse growth seen while planning
// (peak-heap-MB) and the growth of memory obtained from the OS (sys-MB).
func BenchmarkPlan(b *testing.B) {
	p := testProfile(b, "")
	nodes, pods := planSnapshot()
	opts := DefaultOptions()
	ctx := klog.NewContext(context.Background(), logr.Discard())

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	b.ReportAllocs()
	b.ResetTimer()
	var moves int
	for i := 0; i < b.N; i++ {
		plan, err := PlanMoves(ctx, p, nodes, pods, now, opts, nil)
		if err != nil {
			b.Fatal(err)
		}
		moves = len(plan.Moves)
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if moves == 0 {
		b.Fatal("the plan moved nothing: the snapshot does not exercise the planner")
	}
	b.ReportMetric(float64(moves), "moves/op")
	b.ReportMetric(float64(peak.Load()-min(peak.Load(), before.HeapInuse))/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(after.Sys-min(after.Sys, before.Sys))/(1<<20), "sys-MB")
}
