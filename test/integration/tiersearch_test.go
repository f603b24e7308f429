package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// The tier search (SpotScore narrows a pod to its best tier first, sampling works inside it)
// on a real control plane, against the shipped profile, which leaves percentageOfNodesToScore
// at its default. Each fallback case makes the best tier infeasible for the pod in one way and
// checks that the pod binds on the next tier at once: bound within the wait, and never reported
// unschedulable (no FailedScheduling event), which an autoscaler would act on.

var (
	zoneA = map[string]string{"topology.kubernetes.io/zone": "a"}
	zoneB = map[string]string{"topology.kubernetes.io/zone": "b"}
)

// bindsOnWithoutFailure creates pod, waits for its binding, and fails the test unless it is on
// want and the scheduler never reported it unschedulable.
func bindsOnWithoutFailure(env *framework.Env, pod *v1.Pod, want string) {
	env.T.Helper()
	start := time.Now()
	if got := createPod(env, pod); got != want {
		env.T.Fatalf("pod %s bound to %s, want %s", pod.Name, got, want)
	}
	env.T.Logf("pod %s bound to %s %s after creation", pod.Name, want, time.Since(start).Round(time.Millisecond))
	if evs := env.Events(pod.Namespace, "involvedObject.name="+pod.Name+",reason=FailedScheduling"); len(evs) > 0 {
		env.T.Fatalf("pod %s was reported unschedulable before it bound: %s", pod.Name, evs[0].Message)
	}
}

// emptyReplicaSet creates a ReplicaSet of no replica selecting app=name (no controller manager
// runs here: the test creates its pods) and returns what makes a pod one of its own.
func emptyReplicaSet(env *framework.Env, name string) func(*v1.Pod) *v1.Pod {
	env.T.Helper()
	labels := map[string]string{"app": name}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.ReplicaSetSpec{
		Replicas: ptr.To[int32](0),
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: framework.PodSpec("1")},
	}}
	created, err := env.Client.AppsV1().ReplicaSets(ns).Create(env.Ctx, rs, metav1.CreateOptions{})
	if err != nil {
		env.T.Fatal(err)
	}
	return func(p *v1.Pod) *v1.Pod {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name, UID: created.UID, Controller: ptr.To(true)}}
		return p
	}
}

func boundTo(pod *v1.Pod, node string) *v1.Pod {
	pod.Spec.NodeName = node
	return pod
}

// TestTierSearchSamplingKeepsStrictOrder: with sampling at its default, 120 on-demand nodes
// and one spot node, the scheduler stops looking after 100 feasible nodes; without the tier
// search a pod would land on on-demand whenever the spot node is not among them. Every pod
// binds on spot.
func TestTierSearchSamplingKeepsStrictOrder(t *testing.T) {
	env := startWithScheduler(t, false)
	nodes := []*v1.Node{framework.Node("spot-1", "8", framework.SpotLabels)}
	for i := 0; i < 120; i++ {
		nodes = append(nodes, framework.Node(fmt.Sprintf("ondemand-%03d", i), "8", framework.OnDemandLabels))
	}
	env.CreateNodes(nodes...)
	for i := 0; i < 6; i++ {
		bindsOnWithoutFailure(env, framework.Pod(ns, fmt.Sprintf("p-%d", i), "1", nil), "spot-1")
	}
}

// TestTierSearchBestTierFullByResources: spot has no room left; the pod binds on on-demand
// in the same cycle.
func TestTierSearchBestTierFullByResources(t *testing.T) {
	env := startWithScheduler(t, false)
	env.CreateNodes(framework.Node("spot-1", "2", framework.SpotLabels), framework.Node("spot-2", "2", framework.SpotLabels),
		framework.Node("ondemand-1", "4", framework.OnDemandLabels))
	env.CreateBoundPods(boundTo(framework.Pod(ns, "fill-1", "1500m", nil), "spot-1"), boundTo(framework.Pod(ns, "fill-2", "1500m", nil), "spot-2"))
	bindsOnWithoutFailure(env, framework.Pod(ns, "overflow", "1", nil), "ondemand-1")
	// Room on spot again: the next pod takes it.
	deletePod(env, "fill-2")
	env.WaitFor("fill-2 gone from the scheduler's view", 30*time.Second, func(ctx context.Context) (bool, error) {
		_, unbound := env.ScheduledPods(ns, "")
		return unbound == 0, nil
	})
	bindsOnWithoutFailure(env, framework.Pod(ns, "back-to-spot", "1", nil), "spot-2")
}

// TestTierSearchPodAntiAffinity: the spot node runs a pod the new pod's required anti-affinity
// excludes, and then a pod whose own anti-affinity excludes the next one: both bind on
// on-demand.
func TestTierSearchPodAntiAffinity(t *testing.T) {
	env := startWithScheduler(t, false)
	env.CreateNodes(framework.Node("spot-1", "8", framework.SpotLabels), framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	env.CreateBoundPods(boundTo(framework.Pod(ns, "db-0", "1", map[string]string{"app": "db"}), "spot-1"))
	apart := framework.Pod(ns, "db-1", "1", map[string]string{"app": "db"})
	apart.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		TopologyKey:   "kubernetes.io/hostname",
	}}}}
	bindsOnWithoutFailure(env, apart, "ondemand-1")

	// An existing pod's anti-affinity: a pod of no constraint of its own, selected by it.
	env2 := startWithScheduler(t, false)
	env2.CreateNodes(framework.Node("spot-1", "8", framework.SpotLabels), framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	guard := boundTo(framework.Pod(ns, "guard", "1", map[string]string{"app": "guard"}), "spot-1")
	guard.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "noisy"}},
		TopologyKey:   "kubernetes.io/hostname",
	}}}}
	env2.CreateBoundPods(guard)
	bindsOnWithoutFailure(env2, framework.Pod(ns, "noisy", "1", map[string]string{"app": "noisy"}), "ondemand-1")
}

// TestTierSearchTopologySpread: spot is all in zone a, which already runs one pod of the
// workload; a DoNotSchedule zone spread of skew 1 sends the next pod to on-demand in zone b.
func TestTierSearchTopologySpread(t *testing.T) {
	env := startWithScheduler(t, false)
	env.CreateNodes(framework.Node("spot-a", "8", framework.Labels(framework.SpotLabels, zoneA)),
		framework.Node("ondemand-b", "8", framework.Labels(framework.OnDemandLabels, zoneB)))
	env.CreateBoundPods(boundTo(framework.Pod(ns, "web-0", "1", map[string]string{"app": "web"}), "spot-a"))
	pod := framework.Pod(ns, "web-1", "1", map[string]string{"app": "web"})
	pod.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: v1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
	}}
	bindsOnWithoutFailure(env, pod, "ondemand-b")
}

// TestTierSearchHostPorts: the spot node's host port 8080 is taken.
func TestTierSearchHostPorts(t *testing.T) {
	env := startWithScheduler(t, false)
	env.CreateNodes(framework.Node("spot-1", "8", framework.SpotLabels), framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	withPort := func(p *v1.Pod) *v1.Pod {
		p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 8080, HostPort: 8080, Protocol: v1.ProtocolTCP}}
		return p
	}
	env.CreateBoundPods(boundTo(withPort(framework.Pod(ns, "agent-0", "1", nil)), "spot-1"))
	bindsOnWithoutFailure(env, withPort(framework.Pod(ns, "agent-1", "1", nil)), "ondemand-1")
}

// TestTierSearchVolumeZone: the pod's bound volume lives in zone b, and spot is all in zone a.
func TestTierSearchVolumeZone(t *testing.T) {
	env := startWithScheduler(t, false)
	env.CreateNodes(framework.Node("spot-a", "8", framework.Labels(framework.SpotLabels, zoneA)),
		framework.Node("ondemand-b", "8", framework.Labels(framework.OnDemandLabels, zoneB)))
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "data-b", Labels: zoneB},
		Spec: v1.PersistentVolumeSpec{
			Capacity:               v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: "disk.example.com", VolumeHandle: "b-1"}},
			ClaimRef:               &v1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: "data"},
			StorageClassName:       "",
		},
	}
	if _, err := env.Client.CoreV1().PersistentVolumes().Create(env.Ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data", Annotations: map[string]string{"pv.kubernetes.io/bind-completed": "yes"}},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, VolumeName: "data-b", StorageClassName: ptr.To(""),
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	created, err := env.Client.CoreV1().PersistentVolumeClaims(ns).Create(env.Ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// No controller manager here: the claim is bound by hand, as the binder would.
	created.Status.Phase = v1.ClaimBound
	if _, err := env.Client.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(env.Ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := framework.Pod(ns, "stateful", "1", nil)
	pod.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	bindsOnWithoutFailure(env, pod, "ondemand-b")
}

// TestTierSearchPolicySteersOffSpot: a workload with an on-demand base of 1 puts its first
// replica on on-demand although spot has room, its second on spot; once on-demand is full, a
// replica the base wants on on-demand takes spot rather than wait.
func TestTierSearchPolicySteersOffSpot(t *testing.T) {
	env := startWithScheduler(t, false)
	env.CreateNodes(spotPoolNode("spot-1", "a", "8"), onDemandPoolNode("ondemand-1", "1"))
	ofRS := emptyReplicaSet(env, "api")
	replica := func(name string) *v1.Pod {
		p := ofRS(framework.Pod(ns, name, "1", map[string]string{"app": "api"}))
		p.Annotations = map[string]string{policy.OnDemandBaseAnnotation: "1"}
		return p
	}
	bindsOnWithoutFailure(env, replica("api-0"), "ondemand-1")
	bindsOnWithoutFailure(env, replica("api-1"), "spot-1")
	// The base replica leaves; on-demand is taken by another workload meanwhile.
	deletePod(env, "api-0")
	env.CreateBoundPods(boundTo(framework.Pod(ns, "other", "1", nil), "ondemand-1"))
	bindsOnWithoutFailure(env, replica("api-2"), "spot-1")
}

// TestTierSearchProfileArgsTheChecksMiss: the profile's PodTopologySpread args add a
// DoNotSchedule zone spread to every pod of a ReplicaSet, which the node-local checks do not
// see: the pod is narrowed to spot (zone a, already one pod ahead), every spot node fails the
// filters, and SpotScore's PostFilter nominates the pod on on-demand (zone b) and has it
// retried at once. It binds there without waiting for any cluster event.
func TestTierSearchProfileArgsTheChecksMiss(t *testing.T) {
	env := framework.Start(t, localcluster.Options{})
	env.CreateNamespace(ns)
	shipped, err := os.ReadFile(framework.RepoFile(t, "manifests/scheduler-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spread := `  - name: PodTopologySpread
    args:
      defaultingType: List
      defaultConstraints:
      - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule}
`
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte(strings.Replace(string(shipped), "  pluginConfig:\n", "  pluginConfig:\n"+spread, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The ReplicaSet exists before the scheduler starts: its informers list it before the
	// first cycle, so the default constraint applies to the very first pod.
	// Default constraints select the pods of the pod's controller.
	ofRS := emptyReplicaSet(env, "web")
	env.StartScheduler("spot-scheduler", config)
	env.CreateNodes(framework.Node("spot-a", "8", framework.Labels(framework.SpotLabels, zoneA)),
		framework.Node("ondemand-b", "8", framework.Labels(framework.OnDemandLabels, zoneB)))
	env.CreateBoundPods(ofRS(boundTo(framework.Pod(ns, "web-0", "1", map[string]string{"app": "web"}), "spot-a")))
	start := time.Now()
	pod := ofRS(framework.Pod(ns, "web-1", "1", map[string]string{"app": "web"}))
	if _, err := env.Client.CoreV1().Pods(ns).Create(env.Ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Bounded well below the queue's five-minute flush of unschedulable pods: only the
	// PostFilter's immediate retry binds it in time.
	if got := env.WaitPodBound(ns, "web-1", 20*time.Second); got != "ondemand-b" {
		t.Fatalf("pod bound to %s, want ondemand-b", got)
	}
	t.Logf("bound on the next tier %s after creation", time.Since(start).Round(time.Millisecond))
	// The failed narrowed cycle nominated the pod where it fits: an autoscaler leaves it alone.
	for _, e := range env.Events(ns, "involvedObject.name=web-1,reason=FailedScheduling") {
		t.Logf("event: %s", e.Message)
	}
}
