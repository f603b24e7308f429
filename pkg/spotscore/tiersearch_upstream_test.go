package spotscore

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeaffinity"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodename"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/noderesources"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeunschedulable"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/tainttoleration"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
)

// TestLocalCheckAgreesWithUpstreamFilters: the tier search's node-local checks (tiersearch.go)
// restate five upstream filters to rank nodes without running every filter on every node.
// On a table of pods and nodes covering what each check looks at, their verdict must be the
// filters' own (NodeName, NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit,
// built from the pinned Kubernetes version): a Kubernetes bump that changes one of them fails
// here instead of drifting silently.
func TestLocalCheckAgreesWithUpstreamFilters(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	capacity := func(cpu, mem, pods string) map[v1.ResourceName]string {
		return map[v1.ResourceName]string{v1.ResourceCPU: cpu, v1.ResourceMemory: mem, v1.ResourcePods: pods, v1.ResourceEphemeralStorage: "100Gi"}
	}
	nodes := []*v1.Node{
		st.MakeNode().Name("plain").Label("zone", "a").Capacity(capacity("8", "16Gi", "110")).Obj(),
		st.MakeNode().Name("n-b").Label("zone", "b").Label("disk", "ssd").Capacity(capacity("8", "16Gi", "110")).Obj(),
		st.MakeNode().Name("cordoned").Label("zone", "a").Unschedulable(true).Capacity(capacity("8", "16Gi", "110")).Obj(),
		st.MakeNode().Name("gpu").Label("zone", "a").Taints([]v1.Taint{{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}}).Capacity(capacity("8", "16Gi", "110")).Obj(),
		st.MakeNode().Name("noexec").Taints([]v1.Taint{{Key: "other", Effect: v1.TaintEffectNoExecute}}).Capacity(capacity("8", "16Gi", "110")).Obj(),
		st.MakeNode().Name("prefer").Label("zone", "a").Taints([]v1.Taint{{Key: "soft", Effect: v1.TaintEffectPreferNoSchedule}}).Capacity(capacity("8", "16Gi", "110")).Obj(),
		st.MakeNode().Name("busy").Label("zone", "b").Capacity(capacity("8", "16Gi", "110")).Obj(),
		st.MakeNode().Name("full-pods").Label("zone", "a").Capacity(capacity("8", "16Gi", "1")).Obj(),
		st.MakeNode().Name("small").Label("zone", "a").Capacity(capacity("1", "1Gi", "110")).Obj(),
	}
	existing := []*v1.Pod{
		cpuPod("busy-1", "7500m").Node("busy").Obj(),
		cpuPod("one", "100m").Node("full-pods").Obj(),
	}
	req := func(name string, r map[v1.ResourceName]string) *st.PodWrapper {
		return st.MakePod().Namespace("apps").Name(name).UID(name).Req(r)
	}
	withOverhead := req("overhead", map[v1.ResourceName]string{v1.ResourceCPU: "500m"}).Obj()
	withOverhead.Spec.Overhead = v1.ResourceList{v1.ResourceCPU: resource.MustParse("600m")}
	pods := []*v1.Pod{
		cpuPod("plain", "1").Obj(),
		cpuPod("pinned", "1").Node("n-b").Obj(),
		cpuPod("tolerates-gpu", "1").Toleration("dedicated").Obj(),
		cpuPod("tolerates-all", "1").Tolerations([]v1.Toleration{{Operator: v1.TolerationOpExists}}).Obj(),
		cpuPod("tolerates-cordon", "1").Tolerations([]v1.Toleration{{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}).Obj(),
		cpuPod("zone-b", "1").NodeAffinityIn("zone", []string{"b"}, st.NodeSelectorTypeMatchExpressions).Obj(),
		cpuPod("not-zone-a", "1").NodeAffinityNotIn("zone", []string{"a"}).Obj(),
		cpuPod("selector", "1").NodeSelector(map[string]string{"disk": "ssd"}).Obj(),
		cpuPod("big-cpu", "7").Obj(),
		req("big-memory", map[v1.ResourceName]string{v1.ResourceCPU: "100m", v1.ResourceMemory: "2Gi"}).Obj(),
		req("storage", map[v1.ResourceName]string{v1.ResourceEphemeralStorage: "200Gi"}).Obj(),
		req("no-requests", nil).Obj(),
		cpuPod("init-larger", "100m").InitReq(map[v1.ResourceName]string{v1.ResourceCPU: "900m"}).Obj(),
		cpuPod("sidecar", "500m").SidecarReq(map[v1.ResourceName]string{v1.ResourceCPU: "600m"}).Obj(),
		withOverhead,
	}

	snapshot := cache.NewSnapshot(existing, nodes)
	pl := newTestPlugin(ctx, t, nil, frameworkruntime.WithSnapshotSharedLister(snapshot), frameworkruntime.WithPodNominator(nominator{}))
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil, frameworkruntime.WithSnapshotSharedLister(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	fts := feature.NewSchedulerFeaturesFromGates(utilfeature.DefaultFeatureGate)
	fitArgs := &config.NodeResourcesFitArgs{ScoringStrategy: &config.ScoringStrategy{Type: config.LeastAllocated,
		Resources: []config.ResourceSpec{{Name: "cpu", Weight: 1}, {Name: "memory", Weight: 1}}}}
	var filters []framework.FilterPlugin
	for _, build := range []struct {
		new  func(context.Context, runtime.Object, framework.Handle, feature.Features) (framework.Plugin, error)
		args runtime.Object
	}{
		{nodename.New, nil}, {nodeunschedulable.New, nil}, {tainttoleration.New, nil},
		{nodeaffinity.New, &config.NodeAffinityArgs{}}, {noderesources.NewFit, fitArgs},
	} {
		p, err := build.new(ctx, build.args, fh, fts)
		if err != nil {
			t.Fatal(err)
		}
		filters = append(filters, p.(framework.FilterPlugin))
	}
	nodeInfos, _ := snapshot.NodeInfos().List()
	upstream := func(pod *v1.Pod, ni fwk.NodeInfo) bool {
		state := framework.NewCycleState()
		for _, f := range filters {
			if pre, ok := f.(framework.PreFilterPlugin); ok {
				if _, status := pre.PreFilter(ctx, state, pod, nodeInfos); !status.IsSuccess() && !status.IsSkip() {
					return false
				}
			}
			if !f.Filter(ctx, state, pod, ni).IsSuccess() {
				return false
			}
		}
		return true
	}
	checked := 0
	for _, pod := range pods {
		request := requestOf(pod)
		if !pl.nodeLocal(pod, request) {
			t.Fatalf("%s: not node-local; the table should hold pods the tier search checks", pod.Name)
		}
		check := pl.newLocalCheck(pod, request)
		check.cfg = allChecks()
		for _, ni := range nodeInfos {
			ours := check.fit(ni) != fitsNot
			if want := upstream(pod, ni); ours != want {
				t.Errorf("pod %s on node %s: the tier search's checks say fits=%v, the upstream filters %v", pod.Name, ni.Node().Name, ours, want)
			}
			checked++
		}
	}
	t.Logf("%d pod-node pairs agree", checked)
}
