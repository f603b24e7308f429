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
	cluster := informers.NewSharedInformerFactory(r.client, 0)
	workloads := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithNamespace(namespace))
	// spot-rebalancer's failback buffer: placeholders in its own namespace.
	buffer := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = wellknown.FailbackBufferLabel + "=true"
	}))
	claims := dynamicinformer.NewDynamicSharedInformerFactory(r.k.Dynamic, 0).ForResource(localcluster.NodeClaimGVR)
	nodes, pods, bufferPods := cluster.Core().V1().Nodes(), workloads.Core().V1().Pods(), buffer.Core().V1().Pods()
	c := &caches{nodes: nodes.Lister(), pods: pods.Lister().Pods(namespace), buffer: bufferPods.Lister(), claims: claims.Lister()}
	for _, inf := range []cache.SharedIndexInformer{nodes.Informer(), pods.Informer(), bufferPods.Informer(), claims.Informer()} {
		go inf.Run(ctx.Done())
	}
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), nodes.Informer().HasSynced, pods.Informer().HasSynced, bufferPods.Informer().HasSynced, claims.Informer().HasSynced) {
		return nil, fmt.Errorf("watching nodes, pods and NodeClaims: not in sync after a minute")
	}
	return c, nil
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
