package reclaimhistory

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
)

// notAnInterruption lists the at-risk taints that do not tell a reclaim from a voluntary
// removal: Karpenter puts karpenter.sh/disrupted on every node it removes, the ones it
// consolidates too. Such a node counts as reclaimed only when pods still ran on it.
var notAnInterruption = map[string]bool{"karpenter.sh/disrupted": true}

// Label values of recordedTotal (bounded: two).
const (
	metricSignalInterruption = "interruption"
	metricSignalRunningPods  = "running_pods"
)

var recordedTotal = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace: "spot_scheduler", Subsystem: "reclaim_history", Name: "recorded_total",
	Help:           "Reclaims the rebalancer recorded in the reclaim history, by signal (interruption: an interruption taint; running_pods: removed while pods ran).",
	StabilityLevel: metrics.ALPHA,
}, []string{"signal"})

func init() {
	legacyregistry.MustRegister(recordedTotal)
}

const writeKey = "write"

// Recorder watches nodes and records each reclaim in the history's ConfigMap: a node of a
// reclaimable tier removed after an interruption signal (an at-risk taint of the model other
// than a cordon and karpenter.sh/disrupted) or while pods other than DaemonSet and mirror pods
// still ran on it. It runs in the rebalancer's leader only (nodes deleted while no leader
// watches are not recorded). Writes read, change and update the ConfigMap (a conflict is
// retried), so a history written by an earlier leader or process is kept.
type Recorder struct {
	client          kubernetes.Interface
	model           *capacity.Model
	namespace, name string
	clock           clock.PassiveClock
	pods            corelisters.PodLister
	queue           workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	pending []pendingReclaim
}

type pendingReclaim struct {
	pool    string
	reclaim Reclaim
}

// NewRecorder registers the Recorder on factory's node and pod informers (start the factory
// afterwards, and Run the Recorder).
func NewRecorder(client kubernetes.Interface, factory informers.SharedInformerFactory, model *capacity.Model, clk clock.PassiveClock) (*Recorder, error) {
	namespace, name := model.ReclaimHistoryConfigMap()
	r := &Recorder{
		client: client, model: model, namespace: namespace, name: name, clock: clk,
		pods: factory.Core().V1().Pods().Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "reclaim_history"}),
	}
	if _, err := factory.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: r.nodeDeleted}); err != nil {
		return nil, err
	}
	// Every series exists from the start: dashboards see 0, not nothing.
	recordedTotal.WithLabelValues(metricSignalInterruption)
	recordedTotal.WithLabelValues(metricSignalRunningPods)
	return r, nil
}

func (r *Recorder) nodeDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	node, ok := obj.(*v1.Node)
	if !ok {
		return
	}
	class := r.model.Classify(node)
	if !r.model.Reclaimable(class.Tier) {
		return
	}
	signal := r.signalOf(node)
	if signal == "" {
		return // drained first: a scale-down or a consolidation, not a reclaim
	}
	rec := Reclaim{Node: node.Name, UID: node.UID, At: metav1.NewTime(r.clock.Now().UTC().Truncate(time.Second)), Tier: class.TierName, Signal: signal}
	r.mu.Lock()
	r.pending = append(r.pending, pendingReclaim{pool: class.Pool, reclaim: rec})
	r.mu.Unlock()
	r.queue.Add(writeKey)
}

// signalOf says why the node's removal is a reclaim, or "" when it is not one.
func (r *Recorder) signalOf(node *v1.Node) string {
	for _, t := range node.Spec.Taints {
		if r.model.IsAtRiskTaint(t.Key) && !notAnInterruption[t.Key] {
			return t.Key
		}
	}
	pods, err := r.pods.List(labels.Everything())
	if err != nil {
		utilruntime.HandleError(err)
		return ""
	}
	for _, p := range pods {
		if p.Spec.NodeName == node.Name && p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed && !daemonOrMirror(p) {
			return SignalRunningPods
		}
	}
	return ""
}

// daemonOrMirror: pods that belong to the node itself, not workloads it served.
func daemonOrMirror(p *v1.Pod) bool {
	if _, mirror := p.Annotations[v1.MirrorPodAnnotationKey]; mirror {
		return true
	}
	ref := metav1.GetControllerOfNoCopy(p)
	return ref != nil && ref.Kind == "DaemonSet"
}

// Run writes the recorded reclaims until ctx ends (one worker: writes of one ConfigMap).
func (r *Recorder) Run(ctx context.Context) {
	defer r.queue.ShutDown()
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		for r.processNext(ctx) {
		}
	}, 0)
	<-ctx.Done()
}

func (r *Recorder) processNext(ctx context.Context) bool {
	key, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(key)
	if err := r.write(ctx); err != nil {
		if ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Recording reclaims; retrying", "configMap", r.namespace+"/"+r.name)
		}
		r.queue.AddRateLimited(key)
		return true
	}
	r.queue.Forget(key)
	return true
}

// write adds the pending reclaims to the ConfigMap (creating it when missing) and prunes it.
func (r *Recorder) write(ctx context.Context) error {
	r.mu.Lock()
	batch := append([]pendingReclaim(nil), r.pending...)
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := r.client.CoreV1().ConfigMaps(r.namespace).Get(ctx, r.name, metav1.GetOptions{})
		create := apierrors.IsNotFound(err)
		if err != nil && !create {
			return err
		}
		h, derr := Decode(cm)
		if derr != nil {
			klog.FromContext(ctx).Error(derr, "Reclaim history unreadable; starting it afresh")
		}
		for _, p := range batch {
			h.Add(p.pool, p.reclaim)
		}
		h.Prune(r.clock.Now(), r.model.ReclaimWindow())
		data, err := h.Encode()
		if err != nil {
			return err
		}
		if create {
			cm = &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.namespace, Name: r.name,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "spot-rebalancer"}}}
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[DataKey] = data
		if create {
			_, err = r.client.CoreV1().ConfigMaps(r.namespace).Create(ctx, cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// Created meanwhile (another leader's last write): read it and retry.
				return apierrors.NewConflict(v1.Resource("configmaps"), r.name, err)
			}
			return err
		}
		_, err = r.client.CoreV1().ConfigMaps(r.namespace).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("ConfigMap %s/%s: %w", r.namespace, r.name, err)
	}
	r.mu.Lock()
	r.pending = r.pending[len(batch):]
	r.mu.Unlock()
	logger := klog.FromContext(ctx)
	for _, p := range batch {
		signal := metricSignalInterruption
		if p.reclaim.Signal == SignalRunningPods {
			signal = metricSignalRunningPods
		}
		recordedTotal.WithLabelValues(signal).Inc()
		logger.Info("Recorded a reclaim", "pool", p.pool, "node", p.reclaim.Node, "tier", p.reclaim.Tier, "signal", p.reclaim.Signal)
	}
	return nil
}
