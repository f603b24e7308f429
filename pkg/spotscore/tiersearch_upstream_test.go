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
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeaffinity"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodename"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/noderesources"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeunschedulable"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/tainttoleration"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	st "k8s.io/kubernetes/pkg/scheduler/testing"
	"k8s.io/utils/ptr"
)

// extendedResource is a device plugin's resource, which the resource check leaves to the
// filters (a pod requesting one is never narrowed).
const extendedResource v1.ResourceName = "example.com/gpu"

// upstreamTable is the nodes and pods on which the tier search's node-local checks are held
// to the upstream filters they restate: every toleration operator and taint effect, cordons
// with and without a toleration, node names that match and do not, required node affinity
// (every operator, match fields, several terms) with and without a nodeSelector, and requests
// of every kind NodeResourcesFit counts (pods, extended resources, init containers, sidecars,
// overhead, pod-level resources).
func upstreamTable() (nodes []*v1.Node, existing, pods []*v1.Pod) {
	capacity := func(cpu, mem, pods string) map[v1.ResourceName]string {
		return map[v1.ResourceName]string{v1.ResourceCPU: cpu, v1.ResourceMemory: mem, v1.ResourcePods: pods, v1.ResourceEphemeralStorage: "100Gi"}
	}
	std := capacity("8", "16Gi", "110")
	withGPU := capacity("8", "16Gi", "110")
	withGPU[extendedResource] = "2"
	nodes = []*v1.Node{
		st.MakeNode().Name("plain").Label("zone", "a").Label("cores", "8").Capacity(std).Obj(),
		st.MakeNode().Name("n-b").Label("zone", "b").Label("disk", "ssd").Label("cores", "32").Capacity(std).Obj(),
		st.MakeNode().Name("unlabeled").Capacity(std).Obj(),
		st.MakeNode().Name("cordoned").Label("zone", "a").Unschedulable(true).Capacity(std).Obj(),
		// As the node controller taints a cordoned node.
		st.MakeNode().Name("cordoned-tainted").Label("zone", "a").Unschedulable(true).
			Taints([]v1.Taint{{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}}).Capacity(std).Obj(),
		st.MakeNode().Name("gpu").Label("zone", "a").Taints([]v1.Taint{{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}}).Capacity(withGPU).Obj(),
		st.MakeNode().Name("noexec").Taints([]v1.Taint{{Key: "other", Effect: v1.TaintEffectNoExecute}}).Capacity(std).Obj(),
		st.MakeNode().Name("prefer").Label("zone", "a").Taints([]v1.Taint{{Key: "soft", Effect: v1.TaintEffectPreferNoSchedule}}).Capacity(std).Obj(),
		st.MakeNode().Name("many-taints").Label("zone", "b").Taints([]v1.Taint{
			{Key: "a", Value: "1", Effect: v1.TaintEffectNoSchedule},
			{Key: "b", Value: "2", Effect: v1.TaintEffectNoExecute},
			{Key: "soft", Effect: v1.TaintEffectPreferNoSchedule},
		}).Capacity(std).Obj(),
		st.MakeNode().Name("busy").Label("zone", "b").Capacity(std).Obj(),
		st.MakeNode().Name("full-pods").Label("zone", "a").Capacity(capacity("8", "16Gi", "1")).Obj(),
		st.MakeNode().Name("small").Label("zone", "a").Capacity(capacity("1", "1Gi", "110")).Obj(),
		st.MakeNode().Name("gpu-open").Label("zone", "b").Capacity(withGPU).Obj(),
	}
	gpuUser := cpuPod("gpu-user", "100m").Node("gpu-open").Obj()
	gpuUser.Spec.Containers[0].Resources.Requests[extendedResource] = resource.MustParse("1")
	existing = []*v1.Pod{
		cpuPod("busy-1", "7500m").Node("busy").Obj(),
		cpuPod("one", "100m").Node("full-pods").Obj(),
		gpuUser,
	}

	req := func(name string, r map[v1.ResourceName]string) *st.PodWrapper {
		return st.MakePod().Namespace("apps").Name(name).UID(name).Req(r)
	}
	tolerating := func(name string, tolerations ...v1.Toleration) *v1.Pod {
		return cpuPod(name, "1").Tolerations(tolerations).Obj()
	}
	affinity := func(name string, terms ...v1.NodeSelectorTerm) *st.PodWrapper {
		return cpuPod(name, "1").NodeAffinity(&v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: terms}})
	}
	expr := func(key string, op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorRequirement {
		return v1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	byName := func(op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorRequirement {
		return v1.NodeSelectorRequirement{Key: "metadata.name", Operator: op, Values: values}
	}
	withOverhead := req("overhead", map[v1.ResourceName]string{v1.ResourceCPU: "500m"}).Overhead(v1.ResourceList{v1.ResourceCPU: resource.MustParse("600m")}).Obj()
	podLevel := req("pod-level", map[v1.ResourceName]string{v1.ResourceCPU: "100m"}).Obj()
	podLevel.Spec.Resources = &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1500m")}}
	initAndSidecar := cpuPod("init-and-sidecar", "200m").SidecarReq(map[v1.ResourceName]string{v1.ResourceCPU: "300m"}).
		InitReq(map[v1.ResourceName]string{v1.ResourceCPU: "900m"}).Obj()
	gpuPod := func(name, count string) *v1.Pod {
		p := cpuPod(name, "100m").Obj()
		p.Spec.Containers[0].Resources.Requests[extendedResource] = resource.MustParse(count)
		return p
	}

	pods = []*v1.Pod{
		cpuPod("plain", "1").Obj(),
		// NodeName
		cpuPod("pinned", "1").Node("n-b").Obj(),
		cpuPod("pinned-elsewhere", "1").Node("no-such-node").Obj(),
		// TaintToleration: every operator and effect.
		cpuPod("tolerates-gpu", "1").Toleration("dedicated").Obj(),
		tolerating("equal-value-effect", v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "gpu", Effect: v1.TaintEffectNoSchedule}),
		tolerating("equal-wrong-value", v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "cpu", Effect: v1.TaintEffectNoSchedule}),
		tolerating("equal-wrong-effect", v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "gpu", Effect: v1.TaintEffectNoExecute}),
		tolerating("equal-any-effect", v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "gpu"}),
		tolerating("operator-defaults-to-equal", v1.Toleration{Key: "dedicated", Value: "gpu"}),
		tolerating("exists-key", v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpExists}),
		tolerating("tolerates-all", v1.Toleration{Operator: v1.TolerationOpExists}),
		tolerating("exists-all-noschedule", v1.Toleration{Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}),
		tolerating("noexecute-for-a-while", v1.Toleration{Key: "other", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](60)}),
		tolerating("noexecute-as-noschedule", v1.Toleration{Key: "other", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}),
		tolerating("prefer-only", v1.Toleration{Key: "soft", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectPreferNoSchedule}),
		tolerating("some-of-many",
			v1.Toleration{Key: "a", Operator: v1.TolerationOpEqual, Value: "1", Effect: v1.TaintEffectNoSchedule}),
		tolerating("all-of-many",
			v1.Toleration{Key: "a", Operator: v1.TolerationOpEqual, Value: "1", Effect: v1.TaintEffectNoSchedule},
			v1.Toleration{Key: "b", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute}),
		// NodeUnschedulable: with and without a toleration of the cordon.
		tolerating("tolerates-cordon", v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}),
		tolerating("tolerates-cordon-equal", v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpEqual, Effect: v1.TaintEffectNoSchedule}),
		tolerating("cordon-key-any-effect", v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists}),
		tolerating("cordon-wrong-effect", v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute}),
		// NodeAffinity: required terms (every operator, match fields, terms ORed, requirements
		// ANDed), nodeSelector, both.
		cpuPod("zone-b", "1").NodeAffinityIn("zone", []string{"b"}, st.NodeSelectorTypeMatchExpressions).Obj(),
		cpuPod("not-zone-a", "1").NodeAffinityNotIn("zone", []string{"a"}).Obj(),
		affinity("zone-exists", v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{expr("zone", v1.NodeSelectorOpExists)}}).Obj(),
		affinity("zone-absent", v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{expr("zone", v1.NodeSelectorOpDoesNotExist)}}).Obj(),
		affinity("cores-gt", v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{expr("cores", v1.NodeSelectorOpGt, "16")}}).Obj(),
		affinity("cores-lt", v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{expr("cores", v1.NodeSelectorOpLt, "16")}}).Obj(),
		affinity("cores-gt-not-a-number", v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{expr("cores", v1.NodeSelectorOpGt, "many")}}).Obj(),
		cpuPod("field-in", "1").NodeAffinityIn("metadata.name", []string{"n-b", "plain"}, st.NodeSelectorTypeMatchFields).Obj(),
		affinity("field-not-in", v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{byName(v1.NodeSelectorOpNotIn, "plain")}}).Obj(),
		affinity("two-terms",
			v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{expr("disk", v1.NodeSelectorOpIn, "ssd")}},
			v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{byName(v1.NodeSelectorOpIn, "unlabeled")}}).Obj(),
		affinity("expression-and-field", v1.NodeSelectorTerm{
			MatchExpressions: []v1.NodeSelectorRequirement{expr("zone", v1.NodeSelectorOpIn, "a")},
			MatchFields:      []v1.NodeSelectorRequirement{byName(v1.NodeSelectorOpIn, "plain", "n-b")},
		}).Obj(),
		affinity("empty-term", v1.NodeSelectorTerm{}).Obj(),
		affinity("no-terms").Obj(),
		cpuPod("selector", "1").NodeSelector(map[string]string{"disk": "ssd"}).Obj(),
		cpuPod("selector-missing-label", "1").NodeSelector(map[string]string{"disk": "hdd"}).Obj(),
		affinity("selector-and-affinity", v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{expr("zone", v1.NodeSelectorOpIn, "a", "b")}}).
			NodeSelector(map[string]string{"disk": "ssd"}).Obj(),
		// NodeResourcesFit: every request it counts.
		cpuPod("big-cpu", "7").Obj(),
		req("big-memory", map[v1.ResourceName]string{v1.ResourceCPU: "100m", v1.ResourceMemory: "2Gi"}).Obj(),
		req("storage", map[v1.ResourceName]string{v1.ResourceEphemeralStorage: "200Gi"}).Obj(),
		req("no-requests", nil).Obj(),
		cpuPod("init-larger", "100m").InitReq(map[v1.ResourceName]string{v1.ResourceCPU: "900m"}).Obj(),
		cpuPod("sidecar", "500m").SidecarReq(map[v1.ResourceName]string{v1.ResourceCPU: "600m"}).Obj(),
		initAndSidecar,
		withOverhead,
		podLevel,
		gpuPod("one-gpu", "1"),
		gpuPod("two-gpus", "2"),
	}
	return nodes, existing, pods
}

// upstreamCheck is one upstream filter and the tier search restricted to the check that
// restates it.
type upstreamCheck struct {
	name   string
	filter framework.FilterPlugin
	only   searchConfig
}

// upstreamChecks builds the five upstream filters the node-local checks restate (from the
// pinned Kubernetes version, with default args), each with its check alone.
func upstreamChecks(ctx context.Context, t *testing.T, fh framework.Handle) []upstreamCheck {
	t.Helper()
	fts := feature.NewSchedulerFeaturesFromGates(utilfeature.DefaultFeatureGate)
	fitArgs := &config.NodeResourcesFitArgs{ScoringStrategy: &config.ScoringStrategy{Type: config.LeastAllocated,
		Resources: []config.ResourceSpec{{Name: "cpu", Weight: 1}, {Name: "memory", Weight: 1}}}}
	checks := []struct {
		name string
		new  func(context.Context, runtime.Object, framework.Handle, feature.Features) (framework.Plugin, error)
		args runtime.Object
		only searchConfig
	}{
		{names.NodeName, nodename.New, nil, searchConfig{nodeName: true}},
		{names.NodeUnschedulable, nodeunschedulable.New, nil, searchConfig{unschedulable: true}},
		{names.TaintToleration, tainttoleration.New, nil, searchConfig{taints: true}},
		{names.NodeAffinity, nodeaffinity.New, &config.NodeAffinityArgs{}, searchConfig{affinity: true}},
		{names.NodeResourcesFit, noderesources.NewFit, fitArgs, searchConfig{resources: true}},
	}
	var out []upstreamCheck
	for _, c := range checks {
		p, err := c.new(ctx, c.args, fh, fts)
		if err != nil {
			t.Fatal(err)
		}
		c.only.on, c.only.narrow = true, true
		out = append(out, upstreamCheck{name: c.name, filter: p.(framework.FilterPlugin), only: c.only})
	}
	return out
}

// runUpstream runs the filters on one node as the framework does for a cycle: each filter's
// PreFilter, then its Filter. true: the node passes them all.
func runUpstream(ctx context.Context, filters []framework.FilterPlugin, pod *v1.Pod, ni fwk.NodeInfo, all []fwk.NodeInfo) bool {
	state := framework.NewCycleState()
	for _, f := range filters {
		if pre, ok := f.(framework.PreFilterPlugin); ok {
			if _, status := pre.PreFilter(ctx, state, pod, all); !status.IsSuccess() && !status.IsSkip() {
				return false
			}
		}
		if !f.Filter(ctx, state, pod, ni).IsSuccess() {
			return false
		}
	}
	return true
}

// TestLocalCheckAgreesWithUpstreamFilters: the tier search's node-local checks (tiersearch.go)
// restate five upstream filters to rank nodes without running every filter on every node.
// On a table of pods and nodes covering what each check looks at (upstreamTable), each check
// alone must give its filter's verdict (NodeName, NodeUnschedulable, TaintToleration,
// NodeAffinity, NodeResourcesFit, built from the pinned Kubernetes version), and all five
// together the five filters' verdict: a Kubernetes bump that changes one of them fails here
// instead of drifting silently. The one allowed difference is the one the design relies on:
// the resource check leaves extended resources to the filters, so for a pod requesting one it
// may pass a node the filter rejects (never the reverse), and such a pod is never narrowed.
func TestLocalCheckAgreesWithUpstreamFilters(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nodes, existing, pods := upstreamTable()
	snapshot := cache.NewSnapshot(existing, nodes)
	pl := newTestPlugin(ctx, t, nil, frameworkruntime.WithSnapshotSharedLister(snapshot), frameworkruntime.WithPodNominator(nominator{}))
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil, frameworkruntime.WithSnapshotSharedLister(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	checks := upstreamChecks(ctx, t, fh)
	var all []framework.FilterPlugin
	for _, c := range checks {
		all = append(all, c.filter)
	}
	nodeInfos, _ := snapshot.NodeInfos().List()

	// agree compares one verdict of the copy with upstream's; mayPassMore: the copy may pass
	// a node upstream rejects (it leaves the difference to the filters).
	agree := func(what string, pod *v1.Pod, ni fwk.NodeInfo, ours, upstream, mayPassMore bool) {
		t.Helper()
		if ours == upstream || (mayPassMore && ours && !upstream) {
			return
		}
		t.Errorf("%s: pod %s on node %s: the tier search's check says fits=%v, upstream %v", what, pod.Name, ni.Node().Name, ours, upstream)
	}
	checked, rejectedBy := 0, map[string]int{}
	for _, pod := range pods {
		request := requestOf(pod)
		local := pl.nodeLocal(pod, request)
		if !local && !request.extended {
			t.Fatalf("%s: not node-local; the table should hold pods the tier search narrows, or extended-resource ones", pod.Name)
		}
		for _, ni := range nodeInfos {
			for _, c := range checks {
				check := pl.newLocalCheck(pod, request)
				check.cfg = c.only
				upstream := runUpstream(ctx, []framework.FilterPlugin{c.filter}, pod, ni, nodeInfos)
				agree(c.name, pod, ni, check.fit(ni) != fitsNot, upstream, !local && c.name == names.NodeResourcesFit)
				if !upstream {
					rejectedBy[c.name]++
				}
			}
			check := pl.newLocalCheck(pod, request)
			check.cfg = allChecks()
			agree("all five", pod, ni, check.fit(ni) != fitsNot, runUpstream(ctx, all, pod, ni, nodeInfos), !local)
			checked++
		}
	}
	// The table must exercise every filter, or agreement would prove nothing.
	for _, c := range checks {
		if rejectedBy[c.name] == 0 {
			t.Errorf("%s rejects no pod-node pair of the table", c.name)
		}
	}
	t.Logf("%d pod-node pairs agree (rejections by filter: %v)", checked, rejectedBy)
}
