package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/test/chart"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// The compatibility smoke suite (docs/compatibility.md): the product's binaries against the API
// server, kube-controller-manager and etcd of every Kubernetes minor from 1.32 to 1.38 (1.38 in beta until its GA). Each
// TestCompat<minor><What> runs one of this package's own integration tests, unchanged, on that
// minor's control plane (hack/build-compat.sh builds and caches it): spot-first placement,
// failover to on-demand, placeholder preemption, failback, deletion cost on scale-in, explain,
// and the chart's RBAC run as its ServiceAccounts.
//
// CompatMinorsEnv selects the minors a run covers: `make test-compat` sets every one; unset (as
// in `make test`), the oldest and the newest run and the others skip, saying so.
const CompatMinorsEnv = "SPOT_SCHEDULER_COMPAT_MINORS"

var defaultCompatMinors = []string{"1.32", "1.38"}

func compatSelected(minor string) bool {
	minors := defaultCompatMinors
	if v := os.Getenv(CompatMinorsEnv); v != "" {
		minors = strings.Fields(strings.ReplaceAll(v, ",", " "))
	}
	for _, m := range minors {
		if m == minor {
			return true
		}
	}
	return false
}

type compatControlPlane struct {
	once sync.Once
	dir  string
	err  error
}

var compatControlPlanes sync.Map // minor -> *compatControlPlane

// compatDir returns the control-plane binaries of a minor, built (or reused from the cache) by
// hack/build-compat.sh once per test process.
func compatDir(t *testing.T, minor string) string {
	t.Helper()
	v, _ := compatControlPlanes.LoadOrStore(minor, &compatControlPlane{})
	cp := v.(*compatControlPlane)
	cp.once.Do(func() {
		cmd := exec.Command("bash", framework.RepoFile(t, "hack/build-compat.sh"), minor)
		cmd.Dir = framework.RepoFile(t, ".")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			cp.err = fmt.Errorf("hack/build-compat.sh %s: %w", minor, err)
			return
		}
		cp.dir = strings.TrimSpace(string(out))
	})
	if cp.err != nil {
		t.Fatal(cp.err)
	}
	return cp.dir
}

// compat runs test against minor's control plane.
func compat(t *testing.T, minor string, test func(*testing.T)) {
	if testing.Short() {
		t.Skip("integration test: needs a real control plane (run without -short)")
	}
	if !compatSelected(minor) {
		t.Skipf("Kubernetes %s not selected (%s=%q; make test-compat runs every minor)", minor, CompatMinorsEnv, os.Getenv(CompatMinorsEnv))
	}
	dir := compatDir(t, minor)
	framework.UseControlPlane(t, dir)
	t.Logf("control plane of Kubernetes %s: %s", minor, dir)
	test(t)
}

// testServerFeatures: the scheduler and the rebalancer decide from what the API server serves:
// where it serves no resource.k8s.io/v1 (1.32, 1.33), each logs that DynamicResourceAllocation
// is off and why; where it does, neither turns anything off. The scheduler is then Ready
// (/readyz: its informers synced) and schedules.
func testServerFeatures(t *testing.T) {
	env := framework.Start(t, localcluster.Options{})
	env.CreateNamespace(ns)
	sched := env.StartScheduler("spot-scheduler", "")
	version, err := env.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	served := true
	if _, err := env.Client.Discovery().ServerResourcesForGroupVersion("resource.k8s.io/v1"); err != nil {
		served = false
	}
	rb := startRebalancer(env)
	const turnedOff = "feature turned off"
	for _, log := range []string{sched.Log, rb.log} {
		lines := logLines(t, log, turnedOff)
		switch {
		case served && len(lines) > 0:
			t.Errorf("%s serves resource.k8s.io/v1, yet %s says: %v", version.GitVersion, log, lines)
		case !served && (len(lines) != 1 || !strings.Contains(lines[0], "DynamicResourceAllocation") || !strings.Contains(lines[0], version.GitVersion)):
			t.Errorf("%s serves no resource.k8s.io/v1; %s should say once that DynamicResourceAllocation is off, naming the server version: %v", version.GitVersion, log, lines)
		}
		t.Logf("%s (resource.k8s.io/v1 served: %v): %s: %v", version.GitVersion, served, log, lines)
	}
	port := ""
	for _, a := range sched.Cmd.Args {
		if v, ok := strings.CutPrefix(a, "--secure-port="); ok {
			port = v
		}
	}
	base := "https://127.0.0.1:" + port
	resp, err := adminHTTPS(env, base).Get(base + "/readyz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scheduler /readyz: %s\n%s", resp.Status, body)
	}
	env.CreateNodes(framework.Node("spot-1", "4", framework.SpotLabels))
	if got := createPod(env, framework.Pod(ns, "p", "1", nil)); got != "spot-1" {
		t.Fatalf("pod bound to %s, want spot-1", got)
	}
}

func TestCompat132ServerFeatures(t *testing.T) { compat(t, "1.32", testServerFeatures) }
func TestCompat133ServerFeatures(t *testing.T) { compat(t, "1.33", testServerFeatures) }
func TestCompat134ServerFeatures(t *testing.T) { compat(t, "1.34", testServerFeatures) }
func TestCompat135ServerFeatures(t *testing.T) { compat(t, "1.35", testServerFeatures) }
func TestCompat136ServerFeatures(t *testing.T) { compat(t, "1.36", testServerFeatures) }
func TestCompat137ServerFeatures(t *testing.T) { compat(t, "1.37", testServerFeatures) }
func TestCompat138ServerFeatures(t *testing.T) { compat(t, "1.38", testServerFeatures) }

func TestCompat132SpotFirst(t *testing.T) { compat(t, "1.32", TestSpotScoreSpotFirst) }
func TestCompat132Failover(t *testing.T)  { compat(t, "1.32", TestSpotScoreFallback) }
func TestCompat132PlaceholderPreemption(t *testing.T) {
	compat(t, "1.32", TestPreemptPlaceholdersOnSpot)
}
func TestCompat132Failback(t *testing.T)     { compat(t, "1.32", TestRebalanceFailback) }
func TestCompat132DeletionCost(t *testing.T) { compat(t, "1.32", TestDeletionCostScaleInKeepsSpot) }
func TestCompat132Explain(t *testing.T)      { compat(t, "1.32", TestExplainPod) }
func TestCompat132ChartRBAC(t *testing.T)    { compat(t, "1.32", TestChartComponentsRunAsServiceAccounts) }

func TestCompat133SpotFirst(t *testing.T) { compat(t, "1.33", TestSpotScoreSpotFirst) }
func TestCompat133Failover(t *testing.T)  { compat(t, "1.33", TestSpotScoreFallback) }
func TestCompat133PlaceholderPreemption(t *testing.T) {
	compat(t, "1.33", TestPreemptPlaceholdersOnSpot)
}
func TestCompat133Failback(t *testing.T)     { compat(t, "1.33", TestRebalanceFailback) }
func TestCompat133DeletionCost(t *testing.T) { compat(t, "1.33", TestDeletionCostScaleInKeepsSpot) }
func TestCompat133Explain(t *testing.T)      { compat(t, "1.33", TestExplainPod) }
func TestCompat133ChartRBAC(t *testing.T)    { compat(t, "1.33", TestChartComponentsRunAsServiceAccounts) }

// 1.34 is the minor the product is built on: the whole integration suite runs on it; these
// complete the matrix when make test-compat selects it.
func TestCompat134SpotFirst(t *testing.T) { compat(t, "1.34", TestSpotScoreSpotFirst) }
func TestCompat134Failover(t *testing.T)  { compat(t, "1.34", TestSpotScoreFallback) }
func TestCompat134PlaceholderPreemption(t *testing.T) {
	compat(t, "1.34", TestPreemptPlaceholdersOnSpot)
}
func TestCompat134Failback(t *testing.T)     { compat(t, "1.34", TestRebalanceFailback) }
func TestCompat134DeletionCost(t *testing.T) { compat(t, "1.34", TestDeletionCostScaleInKeepsSpot) }
func TestCompat134Explain(t *testing.T)      { compat(t, "1.34", TestExplainPod) }
func TestCompat134ChartRBAC(t *testing.T)    { compat(t, "1.34", TestChartComponentsRunAsServiceAccounts) }

func TestCompat135SpotFirst(t *testing.T) { compat(t, "1.35", TestSpotScoreSpotFirst) }
func TestCompat135Failover(t *testing.T)  { compat(t, "1.35", TestSpotScoreFallback) }
func TestCompat135PlaceholderPreemption(t *testing.T) {
	compat(t, "1.35", TestPreemptPlaceholdersOnSpot)
}
func TestCompat135Failback(t *testing.T)     { compat(t, "1.35", TestRebalanceFailback) }
func TestCompat135DeletionCost(t *testing.T) { compat(t, "1.35", TestDeletionCostScaleInKeepsSpot) }
func TestCompat135Explain(t *testing.T)      { compat(t, "1.35", TestExplainPod) }
func TestCompat135ChartRBAC(t *testing.T)    { compat(t, "1.35", TestChartComponentsRunAsServiceAccounts) }

func TestCompat136SpotFirst(t *testing.T) { compat(t, "1.36", TestSpotScoreSpotFirst) }
func TestCompat136Failover(t *testing.T)  { compat(t, "1.36", TestSpotScoreFallback) }
func TestCompat136PlaceholderPreemption(t *testing.T) {
	compat(t, "1.36", TestPreemptPlaceholdersOnSpot)
}
func TestCompat136Failback(t *testing.T)     { compat(t, "1.36", TestRebalanceFailback) }
func TestCompat136DeletionCost(t *testing.T) { compat(t, "1.36", TestDeletionCostScaleInKeepsSpot) }
func TestCompat136Explain(t *testing.T)      { compat(t, "1.36", TestExplainPod) }
func TestCompat136ChartRBAC(t *testing.T)    { compat(t, "1.36", TestChartComponentsRunAsServiceAccounts) }

func TestCompat137SpotFirst(t *testing.T) { compat(t, "1.37", TestSpotScoreSpotFirst) }
func TestCompat137Failover(t *testing.T)  { compat(t, "1.37", TestSpotScoreFallback) }
func TestCompat137PlaceholderPreemption(t *testing.T) {
	compat(t, "1.37", TestPreemptPlaceholdersOnSpot)
}
func TestCompat137Failback(t *testing.T)     { compat(t, "1.37", TestRebalanceFailback) }
func TestCompat137DeletionCost(t *testing.T) { compat(t, "1.37", TestDeletionCostScaleInKeepsSpot) }
func TestCompat137Explain(t *testing.T)      { compat(t, "1.37", TestExplainPod) }
func TestCompat137ChartRBAC(t *testing.T)    { compat(t, "1.37", TestChartComponentsRunAsServiceAccounts) }

// TestSchedulerNamesUnsyncedInformers: a scheduler whose informer cannot sync (here RBAC does
// not let it list CSINodes; on an old server, an API it does not serve) does not hang silently:
// its log names the informer it waits for, its /readyz fails naming the handler sync, and once
// the cause is gone it syncs, takes its Lease and schedules.
func TestSchedulerNamesUnsyncedInformers(t *testing.T) {
	env := framework.Start(t, localcluster.Options{})
	chartCreateRestrictedNamespace(env, chartNamespace)
	env.CreateNamespace(ns)
	r := chart.Render(t, chartRelease, chartNamespace)
	role := r.Get(t, "ClusterRole", chartRelease+"-scheduler")
	withoutCSINodes := role.DeepCopy()
	rules, _, _ := unstructured.NestedSlice(withoutCSINodes.Object, "rules")
	for _, rule := range rules {
		m := rule.(map[string]interface{})
		var kept []interface{}
		for _, res := range m["resources"].([]interface{}) {
			if res != "csinodes" {
				kept = append(kept, res)
			}
		}
		m["resources"] = kept
	}
	if err := unstructured.SetNestedSlice(withoutCSINodes.Object, rules, "rules"); err != nil {
		t.Fatal(err)
	}
	applier := newChartApplier(env)
	var objs []*unstructured.Unstructured
	for _, o := range r.Objects {
		if o.GetKind() == "ClusterRole" && o.GetName() == role.GetName() {
			o = withoutCSINodes
		}
		objs = append(objs, o)
	}
	applier.apply(objs, chartRBACKinds...)
	user := chartSAUser(chartSchedSA)
	chartWaitAuthorized(env, user, authorizationv1.ResourceAttributes{Verb: "list", Resource: "nodes"})

	kubeconfig := chartKubeconfigAs(env, user)
	port := framework.FreePort(t)
	sched, err := env.StartProcess(env.Ctx, "spot-scheduler", framework.SchedulerBinary(t),
		"--config="+r.WriteSchedulerConfig(t, env.Dir, kubeconfig), "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
		"--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Stop(10 * time.Second) })
	env.WaitFor("the scheduler's log names the CSINode informer", 60*time.Second, func(context.Context) (bool, error) {
		if sched.Exited() {
			return false, fmt.Errorf("scheduler exited: %v", sched.Wait(0))
		}
		for _, l := range logLines(t, sched.Log, "informers have not synced") {
			if strings.Contains(l, "k8s.io/api/storage/v1.CSINode") {
				t.Logf("scheduler log: %s", l)
				return true, nil
			}
		}
		return false, nil
	})
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	code, body := chartScrape(t, adminHTTPS(env, base), base+"/readyz?verbose")
	if code != http.StatusServiceUnavailable && code != http.StatusInternalServerError || !strings.Contains(body, "sched-handler-sync failed") {
		t.Errorf("/readyz while an informer cannot sync: %d\n%s\nwant not ready with sched-handler-sync failed", code, body)
	}
	if _, err := env.Client.CoordinationV1().Leases(chartNamespace).Get(env.Ctx, chartSchedLease, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Lease %s/%s: %v; want none while the informers have not synced", chartNamespace, chartSchedLease, err)
	}

	// The cause goes away: the chart's own role.
	applier.apply([]*unstructured.Unstructured{role})
	chartWaitLease(env, sched, chartNamespace, chartSchedLease)
	env.CreateNodes(framework.Node("spot-1", "4", framework.SpotLabels))
	if got := createPod(env, framework.Pod(ns, "p", "1", nil)); got != "spot-1" {
		t.Fatalf("pod bound to %s, want spot-1", got)
	}
	code, body = chartScrape(t, adminHTTPS(env, base), base+"/readyz")
	if code != http.StatusOK {
		t.Errorf("/readyz after sync: %d %s", code, body)
	}
}

func TestCompat138SpotFirst(t *testing.T) { compat(t, "1.38", TestSpotScoreSpotFirst) }
func TestCompat138Failover(t *testing.T)  { compat(t, "1.38", TestSpotScoreFallback) }
func TestCompat138PlaceholderPreemption(t *testing.T) {
	compat(t, "1.38", TestPreemptPlaceholdersOnSpot)
}
func TestCompat138Failback(t *testing.T)     { compat(t, "1.38", TestRebalanceFailback) }
func TestCompat138DeletionCost(t *testing.T) { compat(t, "1.38", TestDeletionCostScaleInKeepsSpot) }
func TestCompat138Explain(t *testing.T)      { compat(t, "1.38", TestExplainPod) }
func TestCompat138ChartRBAC(t *testing.T)    { compat(t, "1.38", TestChartComponentsRunAsServiceAccounts) }
