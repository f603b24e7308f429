// Package testobj builds the test objects every test shares: nodes of each default tier
// (test/framework makes them kwok-managed for the integration tests), and the running
// opted-in pods of a ReplicaSet the unit tests of the simulation and the rebalancer use.
package testobj

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

// Now is the tests' clock: pods built here started an hour before it.
var Now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Labels of a node of each default tier.
var (
	SpotLabels     = map[string]string{"karpenter.sh/capacity-type": "spot"}
	OnDemandLabels = map[string]string{"karpenter.sh/capacity-type": "on-demand"}
	BurstLabels    = map[string]string{"type": "virtual-kubelet"}
)

// Node is a node with cpu cores, 64Gi of memory and 110 pods allocatable.
func Node(name, cpu string, labels map[string]string, taints ...v1.Taint) *v1.Node {
	res := v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("64Gi"), v1.ResourcePods: resource.MustParse("110")}
	l := map[string]string{"kubernetes.io/hostname": name}
	for k, v := range labels {
		l[k] = v
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}, Spec: v1.NodeSpec{Taints: taints}, Status: v1.NodeStatus{Capacity: res, Allocatable: res}}
}

// SpotNode, OnDemandNode and BurstNode are nodes of the default spot, on-demand and burst tiers.
func SpotNode(name, cpu string) *v1.Node     { return Node(name, cpu, SpotLabels) }
func OnDemandNode(name, cpu string) *v1.Node { return Node(name, cpu, OnDemandLabels) }
func BurstNode(name, cpu string) *v1.Node    { return Node(name, cpu, BurstLabels) }

// Pod is a running pod of profile spot-scheduler, owned by ReplicaSet owner (label app=owner),
// in namespace apps, bound to nodeName ("" for pending), started an hour before Now.
func Pod(name, owner, nodeName, cpu string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "apps", UID: types.UID(name),
			Labels:          map[string]string{"app": owner},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner, UID: types.UID("rs-" + owner), Controller: ptr.To(true)}},
		},
		Spec: v1.PodSpec{
			SchedulerName: "spot-scheduler",
			NodeName:      nodeName,
			Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
				v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("64Mi"),
			}}}},
		},
		// Running and Ready, as a kubelet reports a started pod (the rebalancer's disruption
		// budgets count pods that are not Ready as unavailable).
		Status: v1.PodStatus{Phase: v1.PodRunning, StartTime: &metav1.Time{Time: Now.Add(-time.Hour)},
			Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}}},
	}
}

// Placeholder is a pod carrying the default placeholder label.
func Placeholder(name, nodeName, cpu string) *v1.Pod {
	p := Pod(name, "headroom", nodeName, cpu)
	p.Labels["spot-scheduler.io/placeholder"] = "true"
	return p
}

// Simulator builds the profile spot-scheduler of configFile for simulation, with a fake
// clientset behind the plugins' informers.
func Simulator(t testing.TB, configFile string) *simulator.Simulator {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	cs := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(cs, 0)
	sim, err := simulator.Load(ctx, configFile, "spot-scheduler", cs, factory)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return sim
}
