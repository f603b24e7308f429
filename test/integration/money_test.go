package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/reclaimhistory"
	"github.com/spot-scheduler/spot-scheduler/pkg/report"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// Tests of what spot-scheduler saves and risks: the savings report, its metrics, and the
// reclaim history that ranks the pools of a tier.

const (
	historyNamespace = "kube-system"
	historyName      = "spot-scheduler-reclaim-history"
	priceLabel       = "eks-node-viewer/instance-price"
	itnTaintKey      = "aws-node-termination-handler/spot-itn"
)

// configWith writes the shipped scheduler configuration with extra SpotScore args (YAML lines
// at the args' indentation) and returns its path.
func configWith(env *framework.Env, name, extraArgs string) string {
	env.T.Helper()
	data, err := os.ReadFile(framework.RepoFile(env.T, "manifests/scheduler-config.yaml"))
	if err != nil {
		env.T.Fatal(err)
	}
	const anchor = "      spreadWeight: 50\n"
	if !bytes.Contains(data, []byte(anchor)) {
		env.T.Fatalf("the shipped configuration has no %q line to add SpotScore args after", anchor)
	}
	data = bytes.Replace(data, []byte(anchor), []byte(anchor+extraArgs), 1)
	path := filepath.Join(env.Dir, name+".yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		env.T.Fatal(err)
	}
	return path
}

// runSpot runs the kubectl plugin's binary (bin/kubectl-spot is the scheduler binary) and
// returns its stdout; it fails the test on an error unless wantErr.
func runSpot(env *framework.Env, wantErr bool, args ...string) (string, string) {
	env.T.Helper()
	cmd := exec.CommandContext(env.Ctx, framework.SchedulerBinary(env.T), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if (err != nil) != wantErr {
		env.T.Fatalf("%v: error %v, want an error: %v\n%s%s", args, err, wantErr, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// history reads the reclaim history's ConfigMap as kubectl get would.
func history(env *framework.Env) reclaimhistory.History {
	env.T.Helper()
	cm, err := env.Client.CoreV1().ConfigMaps(historyNamespace).Get(env.Ctx, historyName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return reclaimhistory.History{}
	}
	if err != nil {
		env.T.Fatal(err)
	}
	var h reclaimhistory.History
	if err := json.Unmarshal([]byte(cm.Data[reclaimhistory.DataKey]), &h); err != nil {
		env.T.Fatalf("the history's ConfigMap: %v", err)
	}
	return h
}

// reclaimNode reclaims a node of the pool as a cloud does after an interruption notice: a pod
// runs on it, the notice taints it, the Node goes (its pod is left to the pod garbage
// collector). It waits until the rebalancer has recorded the reclaim, and returns the history.
func reclaimNode(env *framework.Env, name string, labels map[string]string) reclaimhistory.History {
	env.T.Helper()
	env.CreateNodes(framework.Node(name, "2", labels))
	p := framework.Pod(ns, name+"-pod", "100m", nil)
	p.Spec.NodeName = name
	env.CreateBoundPods(p)
	if err := localcluster.TaintNode(env.Ctx, env.Client, name, v1.Taint{Key: itnTaintKey, Value: "notice", Effect: v1.TaintEffectNoSchedule}); err != nil {
		env.T.Fatal(err)
	}
	if err := localcluster.Reclaim(env.Ctx, env.Client, name); err != nil {
		env.T.Fatal(err)
	}
	var h reclaimhistory.History
	env.WaitFor("the reclaim of "+name+" recorded", 30*time.Second, func(context.Context) (bool, error) {
		h = history(env)
		for _, rs := range h.Pools {
			for _, r := range rs {
				if r.Node == name {
					return r.Signal == itnTaintKey, nil
				}
			}
		}
		return false, nil
	})
	return h
}

// TestReclaimHistoryRanksPoolsWithinATier: two spot pools of the same tier and shape; the
// rebalancer records three reclaims of pool b (interruption notices, then the nodes go), the
// scheduler reads them, and a new workload gets fewer replicas in b than in the clean pool a,
// while every pool still gets replicas (the spread) and a capacity policy's pool cap holds in
// the safer pool. Before the reclaims, the same workload splits evenly (the control).
func TestReclaimHistoryRanksPoolsWithinATier(t *testing.T) {
	env := framework.Start(t, localcluster.Options{ControllerManager: true})
	env.CreateNamespace(ns)
	sched := env.StartScheduler("spot-scheduler", "")
	rb := startRebalancer(env)
	env.CreateNodes(spotPoolNode("a-1", "a", "8"), spotPoolNode("a-2", "a", "8"), spotPoolNode("b-1", "b", "8"), spotPoolNode("b-2", "b", "8"))

	createDeployment(env, framework.Deployment(ns, "before", 6, "1"))
	waitAllBound(env, "before", 6)
	if got := poolCounts(env, "before"); got["spot-a"] != 3 || got["spot-b"] != 3 {
		t.Fatalf("without reclaims: replicas per pool %v, want 3 and 3 (the spread)", got)
	}

	for i := 1; i <= 3; i++ {
		reclaimNode(env, fmt.Sprintf("b-reclaimed-%d", i), framework.Labels(framework.SpotLabels, map[string]string{"karpenter.sh/nodepool": "spot-b"}))
	}
	h := history(env)
	if n := len(h.Pools["karpenter.sh/nodepool=spot-b"]); n != 3 || len(h.Pools) != 1 {
		t.Fatalf("history %+v, want 3 reclaims of pool spot-b", h.Pools)
	}
	// The scheduler has read them (its informer on the ConfigMap logs each change).
	env.WaitFor("the scheduler reads 3 reclaims", 30*time.Second, func(context.Context) (bool, error) {
		return strings.Contains(strings.Join(logLines(t, sched.Log, `"Reclaim history read"`), "\n"), "reclaims=3"), nil
	})

	createDeployment(env, framework.Deployment(ns, "after", 8, "1"))
	waitAllBound(env, "after", 8)
	after := poolCounts(env, "after")
	t.Logf("8 replicas after 3 reclaims of pool b: %v", after)
	if after["spot-a"] <= after["spot-b"] || after["spot-b"] < 1 {
		t.Errorf("replicas per pool %v: want fewer in the reclaimed pool b than in a, and at least one there (the spread)", after)
	}

	// A capacity policy's pool cap holds in the safer pool: at most 2 per pool.
	capped := framework.Deployment(ns, "capped", 4, "1")
	capped.Spec.Template.Annotations = map[string]string{policy.MaxPerPoolAnnotation: "2"}
	createDeployment(env, capped)
	waitAllBound(env, "capped", 4)
	if got := poolCounts(env, "capped"); got["spot-a"] != 2 || got["spot-b"] != 2 {
		t.Errorf("max-per-pool 2: replicas per pool %v, want 2 and 2", got)
	}

	// explain shows each pool's reclaims and what they did to the score.
	out, _ := runSpot(env, false, "explain", "--kubeconfig", env.Kubeconfig, "--scheduler-config", framework.RepoFile(t, "manifests/scheduler-config.yaml"),
		"-o", "json", "pod", ns+"/"+podsOf(env, "app=after")[0].Name)
	var explained struct {
		Evaluation simulator.Evaluation `json:"evaluation"`
	}
	if err := json.Unmarshal([]byte(out), &explained); err != nil {
		t.Fatalf("explain JSON: %v\n%s", err, out)
	}
	for _, n := range explained.Evaluation.Nodes {
		want := map[bool]int{true: 3, false: 0}[strings.HasPrefix(n.Node, "b-")]
		if n.PoolReclaims != want {
			t.Errorf("explain: node %s pool reclaims %d, want %d", n.Node, n.PoolReclaims, want)
		}
		// The history takes points from the reclaimed pool (the clean one may gain some).
		if strings.HasPrefix(n.Node, "b-") && n.ReclaimEffect < 0 {
			t.Errorf("explain: node %s of the reclaimed pool gained %d points from reclaims", n.Node, -n.ReclaimEffect)
		}
	}
	if table, _ := runSpot(env, false, "explain", "--kubeconfig", env.Kubeconfig, "--scheduler-config", framework.RepoFile(t, "manifests/scheduler-config.yaml"),
		"pod", ns+"/"+podsOf(env, "app=after")[0].Name); !strings.Contains(table, "RECLAIMS") {
		t.Errorf("explain's table has no RECLAIMS column:\n%s", table)
	}
	if got := rb.metric(`spot_scheduler_reclaim_history_recorded_total{signal="interruption"}`); got != 3 {
		t.Errorf("rebalancer recorded %v reclaims by interruption, want 3", got)
	}
}

// TestReclaimHistorySurvivesRestartAndLeaderChange: the history lives in the ConfigMap, so a
// rebalancer that takes the Lease over from another (a leader change), or that comes back
// after a restart, adds to what the previous leader recorded; only the leader records.
func TestReclaimHistorySurvivesRestartAndLeaderChange(t *testing.T) {
	env := framework.Start(t, localcluster.Options{})
	env.CreateNamespace(ns)
	pool := framework.Labels(framework.SpotLabels, map[string]string{"karpenter.sh/nodepool": "spot-p"})
	first := startRebalancerAs(env, "rebalancer-a")
	second := startRebalancerAs(env, "rebalancer-b")
	leader, standbys := leaderOf(env, wellknown.RebalancerLeaseName, first.proc, second.proc)

	reclaimNode(env, "p-1", pool)

	// A leader change: SIGTERM releases the Lease, the standby takes over.
	next, _ := handover(env, wellknown.RebalancerLeaseName, leader, syscall.SIGTERM, standbys...)
	if code := leader.Wait(20 * time.Second); code != nil {
		t.Fatalf("%s exited with %v after SIGTERM", leader.Name, code)
	}
	h := reclaimNode(env, "p-2", pool)
	if n := len(h.Pools["karpenter.sh/nodepool=spot-p"]); n != 2 {
		t.Fatalf("after a leader change: history %+v, want both reclaims", h.Pools)
	}

	// A restart: the stopped instance comes back (a new process), and leads once the other stops.
	restarted := startRebalancerAs(env, leader.Name+"-restarted")
	handover(env, wellknown.RebalancerLeaseName, next, syscall.SIGTERM, restarted.proc)
	h = reclaimNode(env, "p-3", pool)
	rs := h.Pools["karpenter.sh/nodepool=spot-p"]
	if len(rs) != 3 || rs[0].Node != "p-1" || rs[1].Node != "p-2" || rs[2].Node != "p-3" {
		t.Fatalf("after a restart: history %+v, want p-1, p-2 and p-3", h.Pools)
	}
	// Each reclaim was recorded once, by the leader of the moment.
	for _, p := range []*localcluster.Process{leader, next, restarted.proc} {
		t.Logf("%s recorded %d reclaims", p.Name, len(logLines(t, p.Log, `"Recorded a reclaim"`)))
	}
	total := 0
	for _, p := range []*localcluster.Process{leader, next, restarted.proc} {
		total += len(logLines(t, p.Log, `"Recorded a reclaim"`))
	}
	if total != 3 {
		t.Errorf("%d reclaims recorded over the three processes, want 3 (once each, by the leader)", total)
	}
	// The report shows them.
	out, _ := runSpot(env, false, "report", "--kubeconfig", env.Kubeconfig, "--scheduler-config", framework.RepoFile(t, "manifests/scheduler-config.yaml"), "-A", "-o", "json")
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, out)
	}
	for _, p := range r.Pools {
		if p.Pool == "karpenter.sh/nodepool=spot-p" && p.Reclaims != 3 {
			t.Errorf("report: pool %s has %d reclaims, want 3", p.Pool, p.Reclaims)
		}
	}
}

// Prices of TestReportDollarsMatchObjects, per vCPU-hour and GiB-hour.
const reportPrices = `      prices:
        table:
        - {tier: spot, perVCPUHour: 0.01, perGiBHour: 0.001}
        - {tier: spot, instanceType: m5.xlarge, zone: zone-b, perVCPUHour: 0.012, perGiBHour: 0.0011}
        - {tier: on-demand, perVCPUHour: 0.04, perGiBHour: 0.004}
`

// TestReportDollarsMatchObjects: kubectl spot report's dollars, for every workload, the total
// and every pool, equal a computation by hand from the objects kubectl get shows (the nodes'
// labels and capacity, the pods' requests, the price table of the configuration, the history's
// ConfigMap); the rebalancer's metrics carry the same numbers; a node label that is not a price
// gets a Warning event and the table's price, and crashes nothing; a bad price in the
// configuration stops every binary at start-up naming the field and the allowed values.
func TestReportDollarsMatchObjects(t *testing.T) {
	env := framework.Start(t, localcluster.Options{ControllerManager: true})
	env.CreateNamespace(ns)
	env.CreateNamespace("batch")
	config := configWith(env, "priced", reportPrices)
	env.StartScheduler("spot-scheduler", config)
	rb := startRebalancer(env, "--scheduler-config="+config)

	shape := func(zone string, extra map[string]string) map[string]string {
		return framework.Labels(map[string]string{"node.kubernetes.io/instance-type": "m5.xlarge", "topology.kubernetes.io/zone": zone}, extra)
	}
	spot := func(pool, zone string, extra map[string]string) map[string]string {
		return shape(zone, framework.Labels(framework.SpotLabels, map[string]string{"karpenter.sh/nodepool": pool}, extra))
	}
	env.CreateNodes(
		framework.Node("spot-a", "4", spot("a", "zone-a", nil)),
		framework.Node("spot-b", "4", spot("b", "zone-b", nil)),
		framework.Node("spot-label", "4", spot("c", "zone-a", map[string]string{priceLabel: "0.05"})),
		framework.Node("spot-bad", "4", spot("c", "zone-a", map[string]string{priceLabel: "five-cents"})),
		framework.Node("ondemand", "4", shape("zone-a", framework.Labels(framework.OnDemandLabels, map[string]string{"karpenter.sh/nodepool": "od"}))),
		framework.Node("virtual", "64", framework.BurstLabels, framework.BurstTaint),
	)
	reclaimNode(env, "spot-a-reclaimed", spot("a", "zone-a", nil))

	createDeployment(env, framework.Deployment(ns, "web", 10, "1"))
	checkout := framework.Deployment(ns, "checkout", 3, "500m")
	checkout.Spec.Template.Annotations = map[string]string{policy.OnDemandBaseAnnotation: "1"}
	createDeployment(env, checkout)
	burst := framework.Pod("batch", "burst", "2", map[string]string{"app": "burst"})
	burst.Spec.NodeSelector = framework.BurstLabels
	if _, err := env.Client.CoreV1().Pods("batch").Create(env.Ctx, burst, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAllBound(env, "web", 10)
	waitAllBound(env, "checkout", 3)
	env.WaitPodBound("batch", "burst", 30*time.Second)
	// An interruption notice on spot-a: its pods are at risk.
	if err := localcluster.TaintNode(env.Ctx, env.Client, "spot-a", v1.Taint{Key: itnTaintKey, Value: "notice", Effect: v1.TaintEffectNoSchedule}); err != nil {
		t.Fatal(err)
	}

	// The hand computation, from the objects alone.
	nodes, err := env.Client.CoreV1().Nodes().List(env.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type rates struct{ vcpu, gib float64 }
	nodeRates := map[string]*rates{}
	poolDollars, poolNodes := map[string]float64{}, map[string]int{}
	for _, n := range nodes.Items {
		cpu := float64(n.Status.Capacity.Cpu().MilliValue()) / 1000
		gib := float64(n.Status.Capacity.Memory().Value()) / (1 << 30)
		var r *rates
		switch {
		case n.Labels[priceLabel] == "0.05":
			// The label's price, split between CPU and memory as the spot entry splits the
			// node's table price (0.01 x 4 for the CPUs, 0.001 x 64 for the memory).
			cpuPart := 0.05 * (0.01 * cpu) / (0.01*cpu + 0.001*gib)
			r = &rates{cpuPart / cpu, (0.05 - cpuPart) / gib}
		case n.Labels["karpenter.sh/capacity-type"] == "spot" && n.Labels["topology.kubernetes.io/zone"] == "zone-b":
			r = &rates{0.012, 0.0011}
		case n.Labels["karpenter.sh/capacity-type"] == "spot":
			r = &rates{0.01, 0.001} // spot-bad's label is no price: the table's
		case n.Labels["karpenter.sh/capacity-type"] == "on-demand":
			r = &rates{0.04, 0.004}
		}
		nodeRates[n.Name] = r
		pool := "karpenter.sh/nodepool=" + n.Labels["karpenter.sh/nodepool"] + ",node.kubernetes.io/instance-type=m5.xlarge,topology.kubernetes.io/zone=" + n.Labels["topology.kubernetes.io/zone"]
		if n.Name == "virtual" {
			pool = "node=virtual"
		}
		poolNodes[pool]++
		if r != nil {
			poolDollars[pool] += cpu*r.vcpu + gib*r.gib
		}
	}
	type sums struct {
		pods, unpriced, atRisk int
		now, onDemand          float64
	}
	want := map[string]*sums{}
	total := &sums{}
	spotNow := 0.0
	pods, err := env.Client.CoreV1().Pods("").List(env.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		r, onNode := nodeRates[p.Spec.NodeName]
		if p.Spec.SchedulerName != wellknown.SchedulerName || !onNode || p.DeletionTimestamp != nil {
			continue // not scheduled by the profile, or on a reclaimed node
		}
		name := p.Namespace + "/pod/" + p.Name
		if ref := metav1.GetControllerOf(&p); ref != nil {
			rs, err := env.Client.AppsV1().ReplicaSets(p.Namespace).Get(env.Ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			owner := metav1.GetControllerOf(rs)
			name = p.Namespace + "/" + owner.Kind + "/" + owner.Name
		}
		if want[name] == nil {
			want[name] = &sums{}
		}
		cpu, mem := resource.Quantity{}, resource.Quantity{}
		for _, c := range p.Spec.Containers {
			cpu.Add(*c.Resources.Requests.Cpu())
			mem.Add(*c.Resources.Requests.Memory())
		}
		cores, gib := float64(cpu.MilliValue())/1000, float64(mem.Value())/(1<<30)
		for _, s := range []*sums{want[name], total} {
			s.pods++
			if p.Spec.NodeName == "spot-a" {
				s.atRisk++
			}
			if r == nil {
				s.unpriced++
				continue
			}
			s.now += cores*r.vcpu + gib*r.gib
			s.onDemand += cores*0.04 + gib*0.004
		}
		if r != nil && strings.HasPrefix(p.Spec.NodeName, "spot-") {
			spotNow += cores*r.vcpu + gib*r.gib
		}
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	check := func(what string, got report.Costs, w *sums) {
		t.Helper()
		saving := w.onDemand - w.now
		if got.Pods != w.pods || got.Unpriced != w.unpriced || got.PodsAtRisk != w.atRisk || !near(got.PerHour, w.now) || !near(got.OnDemandPerHour, w.onDemand) ||
			!near(got.SavingPerHour, saving) || !near(got.SavingPerMonth, 730*saving) || (w.onDemand > 0 && !near(got.SavingPercent, 100*saving/w.onDemand)) {
			t.Errorf("%s: report %+v, by hand %+v ($%v saved an hour)", what, got, *w, saving)
		}
	}

	out, _ := runSpot(env, false, "report", "--kubeconfig", env.Kubeconfig, "--scheduler-config", config, "--all-namespaces", "-o", "json")
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, out)
	}
	if len(r.Workloads) != len(want) {
		t.Errorf("report lists %d workloads, by hand %d", len(r.Workloads), len(want))
	}
	for _, w := range r.Workloads {
		s := want[w.Namespace+"/"+w.Name]
		if s == nil {
			t.Errorf("report lists %s/%s, which is no workload of the profile", w.Namespace, w.Name)
			continue
		}
		check(w.Namespace+"/"+w.Name, w.Costs, s)
	}
	check("total", r.Total, total)
	if co := want[ns+"/Deployment/checkout"]; co == nil || r.Total.Unpriced != 1 || total.now <= 0 {
		t.Fatalf("the cluster was not what the test built: checkout %+v, total %+v", co, *total)
	}
	for _, w := range r.Workloads {
		if w.Name == "Deployment/checkout" && (w.Policy == "none" || w.PolicyStatus == "") {
			t.Errorf("checkout's capacity policy not reported: %+v", w)
		}
	}
	reclaims := history(env)
	for _, p := range r.Pools {
		if p.Nodes != poolNodes[p.Pool] || !near(p.PerHour, poolDollars[p.Pool]) || p.Reclaims != len(reclaims.Pools[p.Pool]) {
			t.Errorf("pool %s: report %+v; by hand %d nodes, $%v an hour, %d reclaims", p.Pool, p, poolNodes[p.Pool], poolDollars[p.Pool], len(reclaims.Pools[p.Pool]))
		}
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `spot-bad: label eks-node-viewer/instance-price="five-cents" is invalid`) {
		t.Errorf("report warnings %v, want spot-bad's label named", r.Warnings)
	}

	// One namespace; the table.
	out, _ = runSpot(env, false, "report", "--kubeconfig", env.Kubeconfig, "--scheduler-config", config, "--namespace", "batch", "-o", "json")
	var batch report.Report
	if err := json.Unmarshal([]byte(out), &batch); err != nil {
		t.Fatal(err)
	}
	if batch.Scope != "namespace batch" || len(batch.Workloads) != 1 || batch.Total.Pods != 1 || batch.Total.Unpriced != 1 {
		t.Errorf("report --namespace batch: %+v", batch)
	}
	table, _ := runSpot(env, false, "report", "--kubeconfig", env.Kubeconfig, "--scheduler-config", config, "-A")
	for _, s := range []string{"$/HOUR NOW", "$/HOUR ON ON-DEMAND", ns + "/Deployment/web", "TOTAL", fmt.Sprintf("$%.4f", total.now), "RECLAIMS"} {
		if !strings.Contains(table, s) {
			t.Errorf("report table lacks %q:\n%s", s, table)
		}
	}
	t.Logf("kubectl spot report -A:\n%s", table)

	// The metrics say the same; spot-bad got a Warning event naming its label.
	env.WaitFor("the rebalancer's cost metrics", 90*time.Second, func(context.Context) (bool, error) {
		return near(rb.metric(`spot_scheduler_pods_cost_dollars_per_hour{tier="spot"}`), spotNow) &&
			near(rb.metric(`spot_scheduler_pods_savings_dollars_per_hour`), total.onDemand-total.now), nil
	})
	env.WaitFor("a Warning event on spot-bad", 30*time.Second, func(context.Context) (bool, error) {
		for _, e := range env.Events("", "involvedObject.name=spot-bad") {
			if e.Type == v1.EventTypeWarning && e.Reason == wellknown.InvalidValueReason && strings.Contains(e.Message, wellknown.AllowedPriceValues) {
				return true, nil
			}
		}
		return false, nil
	})

	// A bad price in the configuration: every binary refuses to start, naming the field and
	// the allowed values, before it contacts any server.
	bad := configWith(env, "bad-price", "      prices:\n        table:\n        - {tier: spot, perVCPUHour: -0.01}\n")
	wantMsg := "prices.table[0].perVCPUHour: Invalid value: -0.01: must be a number from 0 to 1000"
	if _, stderr := runSpot(env, true, "report", "--kubeconfig", env.Kubeconfig, "--scheduler-config", bad, "-A"); !strings.Contains(stderr, wantMsg) {
		t.Errorf("report with a bad price: %s, want %q", stderr, wantMsg)
	}
	for name, args := range map[string][]string{
		"spot-scheduler":  {framework.SchedulerBinary(t), "--config=" + bad, "--kubeconfig=" + env.Kubeconfig},
		"spot-rebalancer": {framework.RebalancerBinary(t), "--scheduler-config=" + bad, "--kubeconfig=" + env.Kubeconfig},
	} {
		cmd := exec.CommandContext(env.Ctx, args[0], args[1:]...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), wantMsg) {
			t.Errorf("%s with a bad price: %v\n%s\nwant an exit naming %q", name, err, out, wantMsg)
		}
	}
	for _, p := range []*localcluster.Process{rb.proc} {
		if p.Exited() {
			t.Errorf("%s exited", p.Name)
		}
	}
}
