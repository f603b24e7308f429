package demo

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// KarpenterSummary is what the story with Karpenter measured: nodes are Karpenter's, and
// their cost is real node-time at the price of the offering each was launched on.
type KarpenterSummary struct {
	FailoverSeconds float64 `json:"failoverSeconds"`
	// FailbackSeconds: spot back -> every app pod on spot; OnDemandGoneSeconds: spot back ->
	// Karpenter has removed every on-demand node.
	FailbackSeconds     float64 `json:"failbackSeconds"`
	OnDemandGoneSeconds float64 `json:"onDemandGoneSeconds"`
	// Evictions of the app's pods, by the rebalancer and by Karpenter (its drains): during the
	// interruption (Karpenter drains the spot nodes one by one, so a replacement placed on a
	// spot node not drained yet moves again); of the pods that failed over (failback, by
	// either: Karpenter's consolidation of an underutilized on-demand node also sends pods
	// back to spot); and of pods created after spot returned, which moved a second time.
	InterruptionEvictions map[string]int `json:"interruptionEvictions"`
	FailbackEvictions     map[string]int `json:"failbackEvictions"`
	RepeatEvictions       map[string]int `json:"repeatEvictions"`
	// NodesLaunched counts Karpenter's nodes per capacity type over the story.
	NodesLaunched map[string]int `json:"nodesLaunched"`
	// NodeSecondsByCapacityType integrates Karpenter's nodes; NodeCost prices them.
	NodeSecondsByCapacityType map[string]float64 `json:"nodeSecondsByCapacityType"`
	NodeCost                  float64            `json:"nodeCost"`
}

// karpenterNodePools are the demo's NodePools: the settings docs/install.md recommends
// (spot first by weight, spot consolidating only empty nodes, on-demand also underutilized
// ones), with a short consolidateAfter so the story plays in a couple of minutes.
func karpenterNodePools() []localcluster.NodePool {
	after := 10 * time.Second
	return []localcluster.NodePool{
		{Name: "spot", CapacityType: localcluster.CapacityTypeSpot, Weight: 100, ConsolidationPolicy: localcluster.ConsolidateWhenEmpty, ConsolidateAfter: &after, InstanceTypes: []string{"c-4x"}},
		{Name: "on-demand", CapacityType: localcluster.CapacityTypeOnDemand, Weight: 10, ConsolidationPolicy: localcluster.ConsolidateWhenEmptyOrUnderutilized, ConsolidateAfter: &after, InstanceTypes: []string{"c-4x"}},
	}
}

// nodeMeter integrates Karpenter's nodes per capacity type and their price.
type nodeMeter struct {
	mu       sync.Mutex
	secs     map[string]float64
	cost     float64
	launched map[string]map[string]bool
}

func (r *run) meterNodes(ctx context.Context, m *nodeMeter) func() {
	return sample(ctx, func(ctx context.Context, dt float64) {
		nodes, err := r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: localcluster.KarpenterNodePoolLabel})
		if err != nil {
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, n := range nodes.Items {
			ct := n.Labels[localcluster.KarpenterCapacityTypeLabel]
			price, _ := strconv.ParseFloat(n.Labels[localcluster.KarpenterPriceLabel], 64)
			m.secs[ct] += dt
			m.cost += dt / 3600 * price
			if m.launched[ct] == nil {
				m.launched[ct] = map[string]bool{}
			}
			m.launched[ct][n.Name] = true
		}
	})
}

// watchPodCreations records when each pod of the demo's namespace first appeared (to the
// millisecond, which creationTimestamp is not), until stop is called.
func (r *run) watchPodCreations(ctx context.Context) (created func(name string) (time.Time, bool), stop func(), err error) {
	var mu sync.Mutex
	seen := map[string]time.Time{}
	factory := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithNamespace(ns))
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*v1.Pod); ok {
				mu.Lock()
				defer mu.Unlock()
				if _, dup := seen[pod.Name]; !dup {
					seen[pod.Name] = time.Now()
				}
			}
		},
	}); err != nil {
		return nil, nil, err
	}
	stopCh := make(chan struct{})
	factory.Start(stopCh)
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			close(stopCh)
			return nil, nil, fmt.Errorf("pod informer %v did not sync", typ)
		}
	}
	var once sync.Once
	stop = func() { once.Do(func() { close(stopCh); factory.Shutdown() }) }
	created = func(name string) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		t, ok := seen[name]
		return t, ok
	}
	return created, stop, nil
}

// podNames returns the names of a workload's pods.
func (r *run) podNames(ctx context.Context, name string) (map[string]bool, error) {
	pods, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, p := range pods.Items {
		names[p.Name] = true
	}
	return names, nil
}

func (r *run) karpenterNodeNames(ctx context.Context, capacityType string) ([]string, error) {
	return localcluster.LiveNodeNames(ctx, r.client, localcluster.KarpenterCapacityTypeLabel+"="+capacityType)
}

func (r *run) showNodes(ctx context.Context) {
	spot, _ := r.karpenterNodeNames(ctx, localcluster.CapacityTypeSpot)
	onDemand, _ := r.karpenterNodeNames(ctx, localcluster.CapacityTypeOnDemand)
	r.say("          Karpenter's nodes: %d spot, %d on-demand", len(spot), len(onDemand))
}

// karpenterStory plays failover and failback with Karpenter adding and removing every node.
func (r *run) karpenterStory(ctx context.Context) (*KarpenterSummary, error) {
	k := r.cluster.Karpenter
	s := &KarpenterSummary{}
	r.say("1. Karpenter (kwok provider) with a spot NodePool (weight 100) and an on-demand one (weight 10); no node yet")
	if err := r.createNamespace(ctx); err != nil {
		return nil, err
	}
	meter := &nodeMeter{secs: map[string]float64{}, launched: map[string]map[string]bool{}}
	stopMeter := r.meterNodes(ctx, meter)
	defer stopMeter()

	r.say("2. the app %q (9 replicas of 1 CPU, schedulerName spot-scheduler) and 2 spot placeholders: Karpenter launches spot", app)
	if _, err := r.client.AppsV1().Deployments(ns).Create(ctx, deployment(app, 9, map[string]string{"app": app}, podSpec("", nil)), metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if err := r.waitRunning(ctx, app, 9, func(t string) bool { return t == "spot" }); err != nil {
		return nil, err
	}
	placeholders := deployment("headroom", 2, map[string]string{"app": "headroom", wellknown.PlaceholderLabel: "true"}, podSpec("placeholder", spot))
	if _, err := r.client.AppsV1().Deployments(ns).Create(ctx, placeholders, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	if err := r.waitRunning(ctx, "headroom", 2, nil); err != nil {
		return nil, err
	}
	r.show(ctx, "everything on spot")
	r.showNodes(ctx)

	created, stopWatch, err := r.watchPodCreations(ctx)
	if err != nil {
		return nil, err
	}
	defer stopWatch()
	r.say("3. spot runs out: the spot NodePool may launch nothing more (limit 0) and every spot node is interrupted")
	if err := k.SetNodePoolCPULimit(ctx, "spot", "0"); err != nil {
		return nil, err
	}
	spotNodes, err := r.karpenterNodeNames(ctx, localcluster.CapacityTypeSpot)
	if err != nil {
		return nil, err
	}
	reclaim := time.Now()
	for _, n := range spotNodes {
		if err := k.Interrupt(ctx, n); err != nil {
			return nil, err
		}
	}
	if err := r.waitRunning(ctx, app, 9, func(t string) bool { return t == "on-demand" }); err != nil {
		return nil, err
	}
	s.FailoverSeconds = time.Since(reclaim).Seconds()
	r.show(ctx, fmt.Sprintf("failover: all 9 replicas Running on Karpenter's on-demand nodes %.1fs after the interruption", s.FailoverSeconds))
	r.showNodes(ctx)
	failedOver, err := r.podNames(ctx, app)
	if err != nil {
		return nil, err
	}

	r.say("4. spot returns (limit lifted): the Pending placeholders make Karpenter launch spot, the rebalancer moves the app back")
	if err := k.SetNodePoolCPULimit(ctx, "spot", ""); err != nil {
		return nil, err
	}
	back := time.Now()
	if err := r.waitRunning(ctx, app, 9, func(t string) bool { return t == "spot" }); err != nil {
		return nil, err
	}
	s.FailbackSeconds = time.Since(back).Seconds()
	r.show(ctx, fmt.Sprintf("failback: every replica back on spot %.1fs after spot returned", s.FailbackSeconds))
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		od, err := r.karpenterNodeNames(ctx, localcluster.CapacityTypeOnDemand)
		return err == nil && len(od) == 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for Karpenter to remove the emptied on-demand nodes: %w", err)
	}
	s.OnDemandGoneSeconds = time.Since(back).Seconds()
	r.say("Karpenter removed the emptied on-demand nodes %.1fs after spot returned", s.OnDemandGoneSeconds)
	r.showNodes(ctx)
	stopMeter()

	s.InterruptionEvictions, s.FailbackEvictions, s.RepeatEvictions = map[string]int{}, map[string]int{}, map[string]int{}
	for by, reason := range map[string]string{"rebalancer": "Rebalanced", "karpenter": "Evicted"} {
		for _, e := range r.events(ctx, reason) {
			pod := e.InvolvedObject.Name
			seen, known := created(pod)
			switch {
			case e.InvolvedObject.Kind != "Pod" || !strings.HasPrefix(pod, app+"-"):
			case failedOver[pod]:
				s.FailbackEvictions[by]++
			case known && seen.Before(back):
				s.InterruptionEvictions[by]++
			default:
				s.RepeatEvictions[by]++
			}
		}
	}
	meter.mu.Lock()
	s.NodeSecondsByCapacityType, s.NodeCost = meter.secs, meter.cost
	s.NodesLaunched = map[string]int{}
	for ct, names := range meter.launched {
		s.NodesLaunched[ct] = len(names)
	}
	meter.mu.Unlock()
	w := tabwriter.NewWriter(r.opts.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nSUMMARY (Karpenter)\t")
	fmt.Fprintf(w, "time to failover (interruption -> all replicas Running on on-demand)\t%.1fs\n", s.FailoverSeconds)
	fmt.Fprintf(w, "time to failback (spot back -> all replicas on spot)\t%.1fs\n", s.FailbackSeconds)
	fmt.Fprintf(w, "time until Karpenter removed the on-demand nodes\t%.1fs\n", s.OnDemandGoneSeconds)
	fmt.Fprintf(w, "evictions at the interruption: rebalancer / Karpenter\t%d / %d\n", s.InterruptionEvictions["rebalancer"], s.InterruptionEvictions["karpenter"])
	fmt.Fprintf(w, "evictions at failback (pods that failed over): rebalancer / Karpenter\t%d / %d\n", s.FailbackEvictions["rebalancer"], s.FailbackEvictions["karpenter"])
	fmt.Fprintf(w, "pods moved a second time: rebalancer / Karpenter\t%d / %d\n", s.RepeatEvictions["rebalancer"], s.RepeatEvictions["karpenter"])
	fmt.Fprintf(w, "nodes launched: spot / on-demand\t%d / %d\n", s.NodesLaunched[localcluster.CapacityTypeSpot], s.NodesLaunched[localcluster.CapacityTypeOnDemand])
	fmt.Fprintf(w, "node-seconds: spot / on-demand\t%.0f / %.0f\n", s.NodeSecondsByCapacityType[localcluster.CapacityTypeSpot], s.NodeSecondsByCapacityType[localcluster.CapacityTypeOnDemand])
	fmt.Fprintf(w, "node cost at the offerings' prices\t$%.4f\n", s.NodeCost)
	_ = w.Flush()
	return s, nil
}
