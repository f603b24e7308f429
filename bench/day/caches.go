package day

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// caches are the runner's view of the cluster: watches, not lists. Sampling every second and
// checking launches every 200 ms by listing from the API server cost a quarter of a core per
// cluster (the runner decoding, the API server encoding), taken from the components under
// test; a watch is behind by milliseconds, far under the second a sample stands for.
type caches struct {
	nodes  corelisters.NodeLister
	pods   corelisters.PodNamespaceLister
	buffer corelisters.PodLister
	claims cache.GenericLister
}

// startCaches starts the watches and waits (a minute at most) until they hold the cluster.
func (r *runner) startCaches(ctx context.Context) (*caches, error) {
	all := informers.NewSharedInformerFactory(r.client, 0)
	// spot-rebalancer's failback buffer: placeholders in its own namespace.
	buffer := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = wellknown.FailbackBufferLabel + "=true"
	}))
	dyn := dynamicinformer.NewDynamicSharedInformerFactory(r.k.Dynamic, 0)
	c := &caches{
		nodes:  all.Core().V1().Nodes().Lister(),
		pods:   all.Core().V1().Pods().Lister().Pods(namespace),
		buffer: buffer.Core().V1().Pods().Lister(),
		claims: dyn.ForResource(localcluster.NodeClaimGVR).Lister(),
	}
	all.Start(ctx.Done())
	buffer.Start(ctx.Done())
	dyn.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, synced := range []map[string]bool{typedSynced(all.WaitForCacheSync(syncCtx.Done())), typedSynced(buffer.WaitForCacheSync(syncCtx.Done()))} {
		for what, ok := range synced {
			if !ok {
				return nil, fmt.Errorf("watching %s: not in sync after a minute", what)
			}
		}
	}
	for gvr, ok := range dyn.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return nil, fmt.Errorf("watching %s: not in sync after a minute", gvr.Resource)
		}
	}
	return c, nil
}

func typedSynced[K interface {
	comparable
	fmt.Stringer
}](m map[K]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k.String()] = v
	}
	return out
}

// nodeClaims lists the NodeClaims the watch holds.
func (c *caches) nodeClaims() ([]*unstructured.Unstructured, error) {
	objs, err := c.claims.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out, nil
}

// workloadPods lists the workloads' pods and the failback buffer's.
func (c *caches) workloadPods() ([]*v1.Pod, error) {
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	buffer, err := c.buffer.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	return append(pods, buffer...), nil
}
