package framework

import (
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/testobj"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// Node is the unit tests' node (internal/testobj: cpu CPUs, 64Gi of memory, room for 110
// pods) managed by kwok. It has no Ready condition: kwok initialises it.
func Node(name, cpu string, labels map[string]string, taints ...v1.Taint) *v1.Node {
	n := testobj.Node(name, cpu, Labels(map[string]string{"type": "kwok"}, labels), taints...)
	n.Annotations = map[string]string{"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"}
	return n
}

// Labels merges label maps (later ones win).
func Labels(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Node labels of each default tier (internal/testobj's), and the burst tier's taint.
var (
	SpotLabels     = testobj.SpotLabels
	OnDemandLabels = testobj.OnDemandLabels
	// BurstLabels and BurstTaint: a virtual-kubelet node, of the default burst tier.
	BurstLabels = testobj.BurstLabels
	BurstTaint  = v1.Taint{Key: "virtual-kubelet.io/provider", Value: "azure", Effect: v1.TaintEffectNoSchedule}
)

// Pod returns a pod requesting cpu, scheduled by schedulerName (spot-scheduler if empty).
func Pod(ns, name, cpu string, labels map[string]string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       PodSpec(cpu),
	}
}

// PodSpec is an opted-in pod spec requesting cpu that tolerates virtual nodes.
func PodSpec(cpu string) v1.PodSpec {
	return v1.PodSpec{
		SchedulerName: wellknown.SchedulerName,
		Containers: []v1.Container{{
			Name:  "app",
			Image: "registry.k8s.io/pause:3.10",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
				v1.ResourceCPU:    resource.MustParse(cpu),
				v1.ResourceMemory: resource.MustParse("64Mi"),
			}},
		}},
		Tolerations:                   []v1.Toleration{{Key: BurstTaint.Key, Operator: v1.TolerationOpExists}},
		TerminationGracePeriodSeconds: ptr.To[int64](0),
	}
}

// Deployment returns an opted-in Deployment of replicas pods requesting cpu each.
func Deployment(ns, name string, replicas int32, cpu string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       PodSpec(cpu),
			},
		},
	}
}

// DaemonSet returns an opted-in DaemonSet whose pods request cpu.
func DaemonSet(ns, name, cpu string) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: PodSpec(cpu)},
		},
	}
}
