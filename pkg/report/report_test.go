package report

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/metrics/testutil"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/capacitytest"
	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// Prices of the tests: spot $0.01/vCPU-h and $0.001/GiB-h, on-demand $0.04 and $0.004.
func model(t *testing.T) *capacity.Model {
	t.Helper()
	cfg := v1alpha1.CapacityModel{Prices: &v1alpha1.Prices{Table: []v1alpha1.PriceEntry{
		{Tier: "spot", PerVCPUHour: 0.01, PerGiBHour: 0.001},
		{Tier: "on-demand", PerVCPUHour: 0.04, PerGiBHour: 0.004},
	}}}
	return capacitytest.Model(t, cfg)
}

func node(name, capacityType, pool string, extra map[string]string, taints ...v1.Taint) *v1.Node {
	res := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("16Gi")}
	labels := map[string]string{"karpenter.sh/nodepool": pool}
	if capacityType != "" {
		labels["karpenter.sh/capacity-type"] = capacityType
	}
	for k, v := range extra {
		labels[k] = v
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: labels}, Spec: v1.NodeSpec{Taints: taints},
		Status: v1.NodeStatus{Capacity: res, Allocatable: res}}
}

func pod(ns, name, node, owner, cpu, mem string, annotations map[string]string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: v1.PodSpec{NodeName: node, SchedulerName: wellknown.SchedulerName, Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem)}}}}},
		Status: v1.PodStatus{Phase: v1.PodRunning}}
	if owner != "" {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner, UID: types.UID(owner), Controller: ptr.To(true)}}
	}
	return p
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

var itn = v1.Taint{Key: "aws-node-termination-handler/spot-itn", Effect: v1.TaintEffectNoSchedule}

func cluster() ([]*v1.Node, []*v1.Pod) {
	nodes := []*v1.Node{
		node("spot-a", "spot", "a", nil),
		node("spot-b", "spot", "b", nil, itn),
		node("od-1", "on-demand", "od", nil),
		node("labelled", "spot", "c", map[string]string{v1alpha1.DefaultPriceLabel: "0.1"}),
		node("bad-label", "spot", "c", map[string]string{v1alpha1.DefaultPriceLabel: "ten-cents"}),
		node("virtual", "", "vk", map[string]string{"type": "virtual-kubelet"}),
	}
	checkout := map[string]string{policy.OnDemandBaseAnnotation: "1", policy.MaxPerPoolAnnotation: "1"}
	pods := []*v1.Pod{
		pod("shop", "web-1", "spot-a", "web-abc", "1", "2Gi", nil),
		pod("shop", "web-2", "spot-b", "web-abc", "1", "2Gi", nil),
		pod("shop", "web-3", "od-1", "web-abc", "1", "2Gi", nil),
		pod("shop", "web-4", "labelled", "web-abc", "2", "4Gi", nil),
		pod("shop", "web-5", "virtual", "web-abc", "1", "2Gi", nil), // burst: no price
		pod("shop", "checkout-1", "spot-a", "checkout-x", "500m", "1Gi", checkout),
		pod("shop", "checkout-2", "spot-a", "checkout-x", "500m", "1Gi", checkout),
		pod("other", "bare", "od-1", "", "250m", "512Mi", nil),
	}
	gone := pod("shop", "web-6", "spot-a", "web-abc", "1", "2Gi", nil)
	gone.Status.Phase = v1.PodSucceeded
	foreign := pod("shop", "foreign", "spot-a", "x", "1", "2Gi", nil)
	foreign.Spec.SchedulerName = "default-scheduler"
	return nodes, append(pods, gone, foreign)
}

// TestBuild checks every number against a hand computation.
func TestBuild(t *testing.T) {
	nodes, pods := cluster()
	r := Build(Input{Model: model(t), SchedulerName: wellknown.SchedulerName, Nodes: nodes, Pods: pods,
		Owners: map[string]string{"shop/web-abc": "Deployment/web"}, Reclaims: capacity.Reclaims{"karpenter.sh/nodepool=b": 2, "karpenter.sh/nodepool=gone": 3}})
	if len(r.Workloads) != 3 {
		t.Fatalf("workloads %+v", r.Workloads)
	}
	byName := map[string]Workload{}
	for _, w := range r.Workloads {
		byName[w.Namespace+"/"+w.Name] = w
	}
	web := byName["shop/Deployment/web"]
	// 1 vCPU + 2 GiB: $0.012 on spot, $0.048 on on-demand. web-4 on the labelled node: the
	// label's $0.1 over 4 vCPU and 16 GiB split as the spot entry splits ($0.04 vs $0.016):
	// per vCPU 0.1 x 0.04/0.056 / 4, per GiB 0.1 x 0.016/0.056 / 16.
	labelled := 2*(0.1*0.04/0.056/4) + 4*(0.1*0.016/0.056/16)
	wantNow := 0.012 + 0.012 + 0.048 + labelled
	wantOD := 0.048 + 0.048 + 0.048 + 2*0.04 + 4*0.004
	if web.Pods != 5 || web.Unpriced != 1 || web.PodsAtRisk != 1 || web.PodsPerTier["spot"] != 3 || web.PodsPerTier["burst"] != 1 ||
		!near(web.PerHour, wantNow) || !near(web.OnDemandPerHour, wantOD) || !near(web.SavingPerHour, wantOD-wantNow) ||
		!near(web.SavingPercent, 100*(wantOD-wantNow)/wantOD) || !near(web.SavingPerMonth, 730*(wantOD-wantNow)) || web.Policy != "none" {
		t.Errorf("web %+v, want $%v now, $%v on on-demand", web, wantNow, wantOD)
	}
	checkout := byName["shop/ReplicaSet/checkout-x"]
	if checkout.Pods != 2 || !near(checkout.PerHour, 2*(0.5*0.01+0.001)) || checkout.PolicyHolds || !strings.Contains(checkout.PolicyStatus, "1 below the on-demand floor, 1 over a pool cap") {
		t.Errorf("checkout %+v", checkout)
	}
	bare := byName["other/pod/bare"]
	if bare.Pods != 1 || !near(bare.PerHour, 0.25*0.04+0.5*0.004) || !near(bare.SavingPerHour, 0) {
		t.Errorf("bare pod %+v", bare)
	}
	if r.Total.Pods != 8 || r.Total.Unpriced != 1 || !near(r.Total.PerHour, web.PerHour+checkout.PerHour+bare.PerHour) ||
		!near(r.Total.OnDemandPerHour, web.OnDemandPerHour+checkout.OnDemandPerHour+bare.OnDemandPerHour) {
		t.Errorf("total %+v", r.Total)
	}
	if !near(r.PodTiers["spot"].PerHour+r.PodTiers["on-demand"].PerHour, r.Total.PerHour) || r.PodTiers["burst"].Unpriced != 1 {
		t.Errorf("per tier %+v %+v", r.PodTiers["spot"], r.PodTiers["burst"])
	}
	pools := map[string]Pool{}
	for _, p := range r.Pools {
		pools[p.Pool] = p
	}
	// Pool c: the labelled node ($0.1) and the one whose label is bad (the spot entry: $0.056).
	if p := pools["karpenter.sh/nodepool=c"]; p.Nodes != 2 || !near(p.PerHour, 0.1+0.056) || p.UnpricedNodes != 0 {
		t.Errorf("pool c %+v", p)
	}
	if p := pools["karpenter.sh/nodepool=b"]; p.Reclaims != 2 || p.Nodes != 1 {
		t.Errorf("pool b %+v", p)
	}
	if p := pools["karpenter.sh/nodepool=gone"]; p.Reclaims != 3 || p.Nodes != 0 || p.Tier != "-" {
		t.Errorf("a reclaimed pool without nodes %+v", p)
	}
	if p := pools["karpenter.sh/nodepool=vk"]; p.UnpricedNodes != 1 {
		t.Errorf("virtual pool %+v", p)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `node bad-label: label eks-node-viewer/instance-price="ten-cents" is invalid: allowed values are a decimal number`) {
		t.Errorf("warnings %v", r.Warnings)
	}

	ns := Build(Input{Model: model(t), SchedulerName: wellknown.SchedulerName, Namespace: "other", Nodes: nodes, Pods: pods})
	if ns.Scope != "namespace other" || len(ns.Workloads) != 1 || ns.Total.Pods != 1 || len(ns.Pools) != len(r.Pools)-1 {
		t.Errorf("namespace scope: %+v", ns)
	}

	var table, js bytes.Buffer
	if err := PrintTable(&table, r, wellknown.SchedulerName, 168*time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WORKLOAD", "$/HOUR ON ON-DEMAND", "UNPRICED", "shop/Deployment/web", "TOTAL", "karpenter.sh/nodepool=gone", "RECLAIMS", "Warning: node bad-label"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if err := PrintJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || !near(back.Total.PerHour, r.Total.PerHour) {
		t.Errorf("JSON round trip: %v", err)
	}
}

func TestExporter(t *testing.T) {
	nodes, pods := cluster()
	var objs []runtime.Object
	for _, n := range nodes {
		objs = append(objs, n)
	}
	for _, p := range pods {
		objs = append(objs, p)
	}
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	recorder := events.NewFakeRecorder(10)
	e := NewExporter(model(t), wellknown.SchedulerName, factory, fixedReclaims{"karpenter.sh/nodepool=b": 2}, recorder, clocktesting.NewFakeClock(time.Now()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	e.Export(ctx)
	e.Export(ctx) // once per value: no second event
	want := Build(Input{Model: model(t), SchedulerName: wellknown.SchedulerName, Nodes: nodes, Pods: pods})
	for tier, c := range want.PodTiers {
		if got, _ := testutil.GetGaugeMetricValue(podsCost.WithLabelValues(tier)); !near(got, c.PerHour) {
			t.Errorf("pods cost %s: %v, want %v", tier, got, c.PerHour)
		}
		if got, _ := testutil.GetGaugeMetricValue(podsSavings.WithLabelValues(tier)); !near(got, c.SavingPerHour) {
			t.Errorf("savings %s: %v, want %v", tier, got, c.SavingPerHour)
		}
	}
	if got, _ := testutil.GetGaugeMetricValue(poolReclaims.WithLabelValues("karpenter.sh/nodepool=b")); got != 2 {
		t.Errorf("pool reclaims %v", got)
	}
	if got, _ := testutil.GetGaugeMetricValue(nodesUnpriced.WithLabelValues("burst")); got != 1 {
		t.Errorf("unpriced burst nodes %v", got)
	}
	close(recorder.Events)
	var evs []string
	for e := range recorder.Events {
		evs = append(evs, e)
	}
	if len(evs) != 1 || !strings.Contains(evs[0], "Warning InvalidValue") || !strings.Contains(evs[0], `eks-node-viewer/instance-price="ten-cents"`) {
		t.Errorf("events %v, want one Warning naming the label", evs)
	}
}

type fixedReclaims capacity.Reclaims

func (f fixedReclaims) Reclaims() capacity.Reclaims { return capacity.Reclaims(f) }
