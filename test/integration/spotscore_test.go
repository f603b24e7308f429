package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

const ns = "apps"

func sumOver(byNode map[string]int, nodes ...string) int {
	s := 0
	for _, n := range nodes {
		s += byNode[n]
	}
	return s
}

// TestSpotScoreSpotFirst: an opted-in Deployment fills spot, then on-demand, and reaches the
// virtual node only when both are full.
func TestSpotScoreSpotFirst(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(
		framework.Node("spot-1", "4", framework.SpotLabels),
		framework.Node("spot-2", "4", framework.SpotLabels),
		framework.Node("ondemand-1", "4", framework.OnDemandLabels),
		framework.Node("ondemand-2", "4", framework.OnDemandLabels),
		framework.Node("virtual-1", "100", framework.BurstLabels, framework.BurstTaint),
	)
	spot := []string{"spot-1", "spot-2"}
	onDemand := []string{"ondemand-1", "ondemand-2"}
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, "web", 6, "1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Each node holds 4 pods of 1 CPU: 8 fit on spot, 8 more on on-demand.
	for _, step := range []struct {
		replicas                    int32
		wantSpot, wantOD, wantBurst int
	}{
		{6, 6, 0, 0},
		{8, 8, 0, 0},
		{14, 8, 6, 0},
		{16, 8, 8, 0},
		{19, 8, 8, 3},
	} {
		scaleTo(env, "web", step.replicas)
		byNode := waitAllBound(env, "web", int(step.replicas))
		got := [3]int{sumOver(byNode, spot...), sumOver(byNode, onDemand...), byNode["virtual-1"]}
		if want := [3]int{step.wantSpot, step.wantOD, step.wantBurst}; got != want {
			t.Fatalf("%d replicas: spot/on-demand/burst = %v, want %v (per node %v)", step.replicas, got, want, byNode)
		}
		t.Logf("%d replicas: spot/on-demand/burst = %v", step.replicas, got)
	}
}

// TestSpotScoreProviderLabels: every default provider rule of the SPEC is honoured. Each case
// pits a small node carrying the rule against a big node of the next tier that every other
// score plugin prefers (more free room); only SpotScore's tier order sends the pod to the
// small one. A rule the model ignored would lose to the big node.
func TestSpotScoreProviderLabels(t *testing.T) {
	env := startWithScheduler(t, false)
	onDemand := map[string]string{}
	spot := framework.SpotLabels
	type node struct {
		labels map[string]string
		taints []v1.Taint
	}
	cases := []struct {
		name      string
		preferred node // the tier the rule puts first: small
		other     node // the next tier: big
	}{
		{"aks spot", node{labels: map[string]string{"kubernetes.azure.com/scalesetpriority": "spot"}}, node{labels: onDemand}},
		{"eks managed node group spot", node{labels: map[string]string{"eks.amazonaws.com/capacityType": "SPOT"}}, node{labels: onDemand}},
		{"karpenter spot", node{labels: map[string]string{"karpenter.sh/capacity-type": "spot"}}, node{labels: onDemand}},
		{"gke spot", node{labels: map[string]string{"cloud.google.com/gke-spot": "true"}}, node{labels: onDemand}},
		{"gke provisioning spot", node{labels: map[string]string{"cloud.google.com/gke-provisioning": "spot"}}, node{labels: onDemand}},
		{"gke preemptible", node{labels: map[string]string{"cloud.google.com/gke-preemptible": "true"}}, node{labels: onDemand}},
		{"oke preemptible", node{labels: map[string]string{"oci.oraclecloud.com/oke-is-preemptible": "true"}}, node{labels: onDemand}},
		{"kops spot worker", node{labels: map[string]string{"node-role.kubernetes.io/spot-worker": ""}}, node{labels: onDemand}},
		{"karpenter reserved beats spot", node{labels: map[string]string{"karpenter.sh/capacity-type": "reserved"}}, node{labels: spot}},
		{"on-demand beats virtual-kubelet label", node{labels: onDemand}, node{labels: framework.BurstLabels}},
		{"on-demand beats virtual-kubelet taint", node{labels: onDemand}, node{taints: []v1.Taint{framework.BurstTaint}}},
		{"on-demand beats fargate", node{labels: onDemand}, node{labels: map[string]string{"eks.amazonaws.com/compute-type": "fargate"}}},
	}
	for i, tc := range cases {
		small := fmt.Sprintf("case%d-preferred", i)
		big := fmt.Sprintf("case%d-other", i)
		env.CreateNodes(
			framework.Node(small, "2", tc.preferred.labels, tc.preferred.taints...),
			framework.Node(big, "64", tc.other.labels, tc.other.taints...),
		)
		pod := fmt.Sprintf("case%d", i)
		got := createPod(env, framework.Pod(ns, pod, "1", nil))
		if got != small {
			t.Errorf("%s: pod bound to %s, want %s", tc.name, got, small)
		}
		deletePod(env, pod)
		env.DeleteNodes(small, big)
	}
}

// TestSpotScoreStrictOrder: with the full default profile enabled, a spot node that every
// other score plugin ranks worse still wins over an on-demand node. A control profile in the
// same scheduler, the default one without SpotScore, sends the same pod to on-demand: proof
// that the other plugins do prefer it.
func TestSpotScoreStrictOrder(t *testing.T) {
	env := framework.Start(t, localcluster.Options{})
	env.CreateNamespace(ns)
	shipped, err := os.ReadFile(framework.RepoFile(t, "manifests/scheduler-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	withControl := filepath.Join(t.TempDir(), "config.yaml")
	control := "- schedulerName: control\n  percentageOfNodesToScore: 100\n"
	if err := os.WriteFile(withControl, []byte(strings.Replace(string(shipped), "profiles:\n", "profiles:\n"+control, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	env.StartScheduler("spot-scheduler", withControl)
	zoneA := map[string]string{"topology.kubernetes.io/zone": "a"}
	zoneB := map[string]string{"topology.kubernetes.io/zone": "b"}
	spotNode := framework.Node("spot-busy", "4", framework.Labels(framework.SpotLabels, zoneA),
		// TaintToleration: an untolerated PreferNoSchedule taint.
		v1.Taint{Key: "example.com/dislike", Value: "x", Effect: v1.TaintEffectPreferNoSchedule})
	odNode := framework.Node("ondemand-idle", "64", framework.Labels(framework.OnDemandLabels, zoneB, map[string]string{"preferred": "yes"}))
	// ImageLocality: only the on-demand node has the image.
	odNode.Status.Images = []v1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}, SizeBytes: 500 << 20}}
	env.CreateNodes(spotNode, odNode)
	// NodeResourcesFit and BalancedAllocation: the spot node is nearly full.
	filler := framework.Pod(ns, "filler", "2500m", map[string]string{"role": "filler"})
	filler.Spec.NodeName = "spot-busy"
	friend := framework.Pod(ns, "friend", "100m", map[string]string{"role": "friend"})
	friend.Spec.NodeName = "ondemand-idle"
	env.CreateBoundPods(filler, friend)
	pod := framework.Pod(ns, "contested", "1", map[string]string{"app": "contested"})
	pod.Spec.Affinity = &v1.Affinity{
		// NodeAffinity: prefers the on-demand node.
		NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{{
			Weight:     100,
			Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "preferred", Operator: v1.NodeSelectorOpIn, Values: []string{"yes"}}}},
		}}},
		// InterPodAffinity: prefers the zone of the friend pod (on-demand's).
		PodAffinity: &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: v1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "friend"}},
				TopologyKey:   "topology.kubernetes.io/zone",
			},
		}}},
	}
	// PodTopologySpread: a soft constraint whose skew is lower on the on-demand zone.
	pod.Labels["role"] = "filler"
	pod.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: v1.ScheduleAnyway,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "filler"}},
	}}
	controlPod := pod.DeepCopy()
	controlPod.Name = "contested-control"
	controlPod.Spec.SchedulerName = "control"
	if got := createPod(env, controlPod); got != "ondemand-idle" {
		t.Fatalf("control pod (default profile) bound to %s, want ondemand-idle: the setup does not make spot worse for the other plugins", got)
	}
	deletePod(env, controlPod.Name)
	if got := createPod(env, pod); got != "spot-busy" {
		t.Fatalf("pod bound to %s, want spot-busy: tier must beat every other score plugin", got)
	}
}

// TestSpotScoreAtRisk: a spot node carrying an interruption notice ranks below a healthy
// on-demand node, and an avoid-spot pod ranks healthy spot below on-demand.
func TestSpotScoreAtRisk(t *testing.T) {
	env := startWithScheduler(t, false)
	env.CreateNodes(
		framework.Node("spot-noticed", "64", framework.SpotLabels,
			v1.Taint{Key: "aws-node-termination-handler/spot-itn", Value: "x", Effect: v1.TaintEffectPreferNoSchedule}),
		framework.Node("ondemand-1", "2", framework.OnDemandLabels),
	)
	if got := createPod(env, framework.Pod(ns, "p1", "1", nil)); got != "ondemand-1" {
		t.Fatalf("pod bound to %s, want ondemand-1 (the spot node is at risk)", got)
	}
	env.CreateNodes(framework.Node("spot-healthy", "64", framework.SpotLabels))
	if got := createPod(env, framework.Pod(ns, "p2", "100m", nil)); got != "spot-healthy" {
		t.Fatalf("pod bound to %s, want spot-healthy", got)
	}
	avoid := framework.Pod(ns, "stateful", "100m", nil)
	avoid.Annotations = map[string]string{"spot-scheduler.io/avoid-spot": "true"}
	if got := createPod(env, avoid); got != "ondemand-1" {
		t.Fatalf("avoid-spot pod bound to %s, want ondemand-1", got)
	}
}

// TestSpotScoreSpread: 6 replicas over 3 spot pools land 2/2/2, though one pool has two nodes
// (node-level spreading alone would give it more).
func TestSpotScoreSpread(t *testing.T) {
	env := startWithScheduler(t, true)
	pool := func(name, instanceType string) map[string]string {
		return framework.Labels(framework.SpotLabels, map[string]string{
			"karpenter.sh/nodepool":            name,
			"node.kubernetes.io/instance-type": instanceType,
			"topology.kubernetes.io/zone":      "a",
		})
	}
	env.CreateNodes(
		framework.Node("a-1", "8", pool("a", "m5.xlarge")),
		framework.Node("a-2", "8", pool("a", "m5.xlarge")),
		framework.Node("b-1", "8", pool("b", "c5.xlarge")),
		framework.Node("c-1", "8", pool("c", "r5.xlarge")),
		framework.Node("ondemand-1", "64", framework.OnDemandLabels),
	)
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, "web", 6, "500m"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	byNode := waitAllBound(env, "web", 6)
	got := [3]int{byNode["a-1"] + byNode["a-2"], byNode["b-1"], byNode["c-1"]}
	if got != [3]int{2, 2, 2} {
		t.Fatalf("pods per pool a/b/c = %v, want [2 2 2] (per node %v)", got, byNode)
	}
}

// TestSpotScoreFallback: with spot full, a new pod binds to on-demand at once, and a pending
// pod (nothing fits) binds as soon as a spot node with room appears.
func TestSpotScoreFallback(t *testing.T) {
	env := startWithScheduler(t, false)
	env.CreateNodes(framework.Node("spot-1", "2", framework.SpotLabels), framework.Node("ondemand-1", "2", framework.OnDemandLabels))
	createPod(env, framework.Pod(ns, "fill-1", "1", nil))
	createPod(env, framework.Pod(ns, "fill-2", "1", nil))
	start := time.Now()
	if got := createPod(env, framework.Pod(ns, "overflow", "1", nil)); got != "ondemand-1" {
		t.Fatalf("overflow pod bound to %s, want ondemand-1", got)
	}
	t.Logf("spot full: bound to on-demand %s after creation", time.Since(start).Round(time.Millisecond))
	createPod(env, framework.Pod(ns, "fill-3", "1", nil)) // on-demand is now full too
	pending := framework.Pod(ns, "pending", "1", nil)
	if _, err := env.Client.CoreV1().Pods(ns).Create(env.Ctx, pending, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.WaitFor("pending pod marked unschedulable", 30*time.Second, func(ctx context.Context) (bool, error) {
		p, err := env.Client.CoreV1().Pods(ns).Get(ctx, "pending", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonUnschedulable {
				return true, nil
			}
		}
		return false, nil
	})
	start = time.Now()
	// A spot node appears, then a bigger on-demand one: the pod takes spot.
	env.CreateNodes(framework.Node("spot-2", "2", framework.SpotLabels), framework.Node("ondemand-2", "64", framework.OnDemandLabels))
	if got := env.WaitPodBound(ns, "pending", 30*time.Second); got != "spot-2" {
		t.Fatalf("pending pod bound to %s, want spot-2", got)
	}
	t.Logf("pending pod bound %s after capacity appeared", time.Since(start).Round(time.Millisecond))
}

// TestSpotScoreLeavesOtherPodsAlone: pods that do not name spot-scheduler are not scheduled by it.
func TestSpotScoreLeavesOtherPodsAlone(t *testing.T) {
	env := startWithScheduler(t, false)
	env.CreateNodes(framework.Node("spot-1", "8", framework.SpotLabels))
	other := framework.Pod(ns, "default-scheduler-pod", "100m", nil)
	other.Spec.SchedulerName = v1.DefaultSchedulerName
	if _, err := env.Client.CoreV1().Pods(ns).Create(env.Ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// An opted-in pod created afterwards is bound: the scheduler has seen both.
	createPod(env, framework.Pod(ns, "opted-in", "100m", nil))
	p, err := env.Client.CoreV1().Pods(ns).Get(env.Ctx, "default-scheduler-pod", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" {
		t.Fatalf("pod for the default scheduler was bound to %s by spot-scheduler", p.Spec.NodeName)
	}
	if events := env.Events(ns, "involvedObject.name=default-scheduler-pod"); len(events) != 0 {
		t.Fatalf("spot-scheduler reported on a pod it does not own: %v", events[0].Message)
	}
}

// TestPackWithinTier: among nodes of one tier, the shipped profile (NodeResourcesFit
// MostAllocated) fills the nodes a pool has started before empty ones, so that the autoscaler
// can remove what stays empty, while SpotScore still spreads a workload across pools.
func TestPackWithinTier(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(spotPoolNode("a-1", "a", "4"), spotPoolNode("a-2", "a", "4"), spotPoolNode("b-1", "b", "4"), spotPoolNode("b-2", "b", "4"))
	// a-1 and b-1 are started: each runs a pod already.
	for _, n := range []string{"a-1", "b-1"} {
		p := framework.Pod(ns, "seed-"+n, "1", map[string]string{"app": "seed-" + n})
		p.Spec.NodeName = n
		env.CreateBoundPods(p)
	}
	// Four single-replica workloads: each lands on a started node.
	for i := range 4 {
		createDeployment(env, framework.Deployment(ns, fmt.Sprintf("solo-%d", i), 1, "500m"))
	}
	for i := range 4 {
		byNode := waitAllBound(env, fmt.Sprintf("solo-%d", i), 1)
		if byNode["a-2"]+byNode["b-2"] != 0 {
			t.Errorf("solo-%d on an empty node while started ones had room: %v", i, byNode)
		}
	}
	// A workload of 2: one replica per pool (the spread across pools), each on a started node.
	createDeployment(env, framework.Deployment(ns, "web", 2, "500m"))
	byNode := waitAllBound(env, "web", 2)
	if byNode["a-1"] != 1 || byNode["b-1"] != 1 {
		t.Errorf("web %v, want one replica on each pool's started node (a-1, b-1)", byNode)
	}
	for _, n := range []string{"a-2", "b-2"} {
		if pods, _ := env.ScheduledPods(ns, ""); pods[n] != 0 {
			t.Errorf("%s holds %d pods, want it left empty for the autoscaler", n, pods[n])
		}
	}
}
