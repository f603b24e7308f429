package spotscore

import (
	"context"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// podsScheduled counts bindings by the node's tier. Labels are bounded: tiers come from the
// configuration (at most 10), at_risk is true or false.
var podsScheduled = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace:      "spot_scheduler",
	Name:           "pods_scheduled_total",
	Help:           "Pods bound by spot-scheduler, by the capacity tier of the node and whether it was at risk.",
	StabilityLevel: metrics.ALPHA,
}, []string{"tier", "at_risk"})

func init() {
	legacyregistry.MustRegister(podsScheduled)
}

var _ framework.PostBindPlugin = &SpotScore{}

// PostBind counts the binding under the node's tier.
func (pl *SpotScore) PostBind(ctx context.Context, _ fwk.CycleState, pod *v1.Pod, nodeName string) {
	// Binding runs outside the scheduling cycle: read the informer's cache, not the snapshot.
	node, err := pl.handle.SharedInformerFactory().Core().V1().Nodes().Lister().Get(nodeName)
	if err != nil {
		klog.FromContext(ctx).V(4).Info("Node of a bound pod not in the cache; binding not counted", "pod", klog.KObj(pod), "node", nodeName)
		return
	}
	c := pl.model.Classify(node)
	podsScheduled.WithLabelValues(c.TierName, strconv.FormatBool(c.AtRisk)).Inc()
}
