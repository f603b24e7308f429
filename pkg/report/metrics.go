package report

import (
	"context"
	"errors"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// ExportInterval is how often the Exporter recomputes the metrics: prices change with the
// pods and nodes, and a reclaim ages out of the window without any event.
const ExportInterval = 30 * time.Second

// The report's numbers as metrics. Labels are bounded: tiers by configuration (at most 10),
// pools by the reclaim history's bound (reclaimhistory.MaxPools).
var (
	podsCost = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Name: "pods_cost_dollars_per_hour",
		Help:           "What the priced pods of spot-scheduler's profile cost per hour (their requests at their nodes' prices), by the tier they run on.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"tier"})
	podsSavings = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Name: "pods_savings_dollars_per_hour",
		Help:           "What the priced pods of spot-scheduler's profile save per hour against the same requests on the reference tier (on-demand by default), by the tier they run on; negative where they cost more.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"tier"})
	podsUnpriced = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Name: "pods_unpriced",
		Help:           "Pods of spot-scheduler's profile left out of the dollar metrics: no known price now or on the reference tier, by tier.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"tier"})
	nodesCost = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Name: "nodes_cost_dollars_per_hour",
		Help:           "What the priced nodes cost per hour, by tier.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"tier"})
	nodesUnpriced = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Name: "nodes_unpriced",
		Help:           "Nodes without a known price (no readable price label, no price table entry), by tier.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"tier"})
	poolReclaims = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "spot_scheduler", Name: "pool_reclaims",
		Help:           "Reclaims of each pool recorded in the reclaim history's window (pools with at least one).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"pool"})
)

func init() {
	legacyregistry.MustRegister(podsCost, podsSavings, podsUnpriced, nodesCost, nodesUnpriced, poolReclaims)
}

// Exporter keeps the metrics above up to date from informers (the rebalancer's leader), and
// gives a node whose price label cannot be read a Warning event, once per value.
type Exporter struct {
	model         *capacity.Model
	schedulerName string
	nodes         corelisters.NodeLister
	pods          corelisters.PodLister
	synced        []cache.InformerSynced
	reclaims      capacity.ReclaimSource
	recorder      events.EventRecorder
	clock         clock.WithTicker
	trigger       chan struct{}
	// warned: node UID -> the price label value it got a Warning event for.
	warned map[types.UID]string
}

// NewExporter registers the Exporter on factory's node and pod informers.
func NewExporter(model *capacity.Model, schedulerName string, factory informers.SharedInformerFactory, reclaims capacity.ReclaimSource, recorder events.EventRecorder, clk clock.WithTicker) *Exporter {
	nodes, pods := factory.Core().V1().Nodes(), factory.Core().V1().Pods()
	for _, t := range model.TierNames() {
		for _, g := range []*metrics.GaugeVec{podsCost, podsSavings, podsUnpriced, nodesCost, nodesUnpriced} {
			g.WithLabelValues(t)
		}
	}
	return &Exporter{
		model: model, schedulerName: schedulerName, nodes: nodes.Lister(), pods: pods.Lister(),
		synced:   []cache.InformerSynced{nodes.Informer().HasSynced, pods.Informer().HasSynced},
		reclaims: reclaims, recorder: recorder, clock: clk, trigger: make(chan struct{}, 1), warned: map[types.UID]string{},
	}
}

// Trigger asks for an export soon (the reclaim history changed).
func (e *Exporter) Trigger() {
	select {
	case e.trigger <- struct{}{}:
	default:
	}
}

// Run exports every ExportInterval and on Trigger until ctx ends.
func (e *Exporter) Run(ctx context.Context) {
	if !cache.WaitForCacheSync(ctx.Done(), e.synced...) {
		return
	}
	ticker := e.clock.NewTicker(ExportInterval)
	defer ticker.Stop()
	for {
		e.Export(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		case <-e.trigger:
		}
	}
}

// Export recomputes the metrics once.
func (e *Exporter) Export(ctx context.Context) {
	nodes, err := e.nodes.List(labels.Everything())
	if err != nil {
		klog.FromContext(ctx).Error(err, "Listing nodes for the cost metrics")
		return
	}
	pods, err := e.pods.List(labels.Everything())
	if err != nil {
		klog.FromContext(ctx).Error(err, "Listing pods for the cost metrics")
		return
	}
	var reclaims capacity.Reclaims
	if e.reclaims != nil {
		reclaims = e.reclaims.Reclaims()
	}
	r := Build(Input{Model: e.model, SchedulerName: e.schedulerName, Nodes: nodes, Pods: pods, Reclaims: reclaims})
	for tier, c := range r.PodTiers {
		podsCost.WithLabelValues(tier).Set(c.PerHour)
		podsSavings.WithLabelValues(tier).Set(c.SavingPerHour)
		podsUnpriced.WithLabelValues(tier).Set(float64(c.Unpriced))
	}
	for _, t := range r.Tiers {
		nodesCost.WithLabelValues(t.Tier).Set(t.PerHour)
		nodesUnpriced.WithLabelValues(t.Tier).Set(float64(t.UnpricedNodes))
	}
	poolReclaims.Reset()
	for pool, n := range reclaims {
		poolReclaims.WithLabelValues(pool).Set(float64(n))
	}
	e.warnInvalidPrices(ctx, nodes)
}

// warnInvalidPrices gives each node whose price label cannot be read a Warning event naming
// the label, the value and the allowed values, once per value.
func (e *Exporter) warnInvalidPrices(ctx context.Context, nodes []*v1.Node) {
	seen := make(map[types.UID]bool, len(nodes))
	for _, n := range nodes {
		seen[n.UID] = true
		_, err := e.model.Price(n)
		var invalid *wellknown.InvalidValueError
		if !errors.As(err, &invalid) {
			delete(e.warned, n.UID)
			continue
		}
		if e.warned[n.UID] == invalid.Value {
			continue
		}
		e.warned[n.UID] = invalid.Value
		klog.FromContext(ctx).Info("Node price label not understood", "node", klog.KObj(n), "err", err)
		if e.recorder != nil {
			e.recorder.Eventf(n, nil, v1.EventTypeWarning, wellknown.InvalidValueReason, "Price", "%s", err.Error())
		}
	}
	for uid := range e.warned {
		if !seen[uid] {
			delete(e.warned, uid)
		}
	}
}
