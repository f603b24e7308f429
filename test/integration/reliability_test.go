package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// handoverLimit is how long a standby may take to lead after the leader is killed: the Lease
// duration (15 s, both components' default) plus one retry period, rounded up.
const handoverLimit = 20 * time.Second

const schedulerLease = "spot-scheduler"

// logLines returns the lines of a component's log that contain substr.
func logLines(t testing.TB, path, substr string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func acquiredLease(t testing.TB, p *localcluster.Process, lease string) bool {
	return len(logLines(t, p.Log, "successfully acquired lease kube-system/"+lease)) > 0
}

func leaseHolder(env *framework.Env, lease string) string {
	env.T.Helper()
	l, err := env.Client.CoordinationV1().Leases("kube-system").Get(env.Ctx, lease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		env.T.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// leaderOf waits until exactly one of the live processes has acquired the Lease and returns
// it with the other live ones.
func leaderOf(env *framework.Env, lease string, procs ...*localcluster.Process) (leader *localcluster.Process, standbys []*localcluster.Process) {
	env.T.Helper()
	env.WaitFor("one leader of "+lease, handoverLimit+10*time.Second, func(context.Context) (bool, error) {
		leader, standbys = nil, nil
		for _, p := range procs {
			if p.Exited() {
				continue
			}
			if acquiredLease(env.T, p, lease) {
				if leader != nil {
					return false, fmt.Errorf("both %s and %s acquired %s", leader.Name, p.Name, lease)
				}
				leader = p
			} else {
				standbys = append(standbys, p)
			}
		}
		return leader != nil && leaseHolder(env, lease) != "", nil
	})
	return leader, standbys
}

// handover stops the leader with sig and returns the standby that took the Lease over and
// how long that took (from the signal to the standby's "acquired" log line being seen).
func handover(env *framework.Env, lease string, leader *localcluster.Process, sig syscall.Signal, standbys ...*localcluster.Process) (*localcluster.Process, time.Duration) {
	env.T.Helper()
	before := leaseHolder(env, lease)
	start := time.Now()
	if err := leader.Signal(sig); err != nil {
		env.T.Fatal(err)
	}
	var next *localcluster.Process
	env.WaitFor(fmt.Sprintf("a standby leads %s after %s of %s", lease, sig, leader.Name), handoverLimit+10*time.Second, func(context.Context) (bool, error) {
		for _, p := range standbys {
			if !p.Exited() && acquiredLease(env.T, p, lease) {
				h := leaseHolder(env, lease)
				if h != "" && h != before {
					next = p
					return true, nil
				}
			}
		}
		return false, nil
	})
	return next, time.Since(start)
}

// boundBy counts the pods the scheduler's log says it bound.
func boundBy(t testing.TB, p *localcluster.Process) int {
	return len(logLines(t, p.Log, "Successfully bound pod to node"))
}

// evictedBy counts the pods the rebalancer's log says it evicted.
func evictedBy(t testing.TB, r *rebalancer) int {
	return len(logLines(t, r.log, "Evicted pod to move it"))
}

// TestReliabilityHA runs two schedulers and two rebalancers. Only the Lease holders bind and
// evict; SIGTERM of a leader exits 0 and releases its Lease (the standby leads within a retry
// period); SIGKILL of a leader hands over within the Lease duration (< 20 s); the Leases are
// spot-scheduler's own, never kube-system/kube-scheduler.
func TestReliabilityHA(t *testing.T) {
	env := framework.Start(t, localcluster.Options{ControllerManager: true})
	env.CreateNamespace(ns)
	env.CreateNodes(framework.Node("ondemand-1", "16", framework.OnDemandLabels))
	sched := []*localcluster.Process{env.StartScheduler("scheduler-a", ""), env.StartScheduler("scheduler-b", "")}
	rbs := map[*localcluster.Process]*rebalancer{}
	for _, name := range []string{"rebalancer-a", "rebalancer-b"} {
		r := startRebalancerAs(env, name, "--rebalance-interval=1h")
		rbs[r.proc] = r
	}
	rbProcs := func() []*localcluster.Process {
		var out []*localcluster.Process
		for p := range rbs {
			out = append(out, p)
		}
		return out
	}

	// Round 1: the first leaders bind and evict; the standbys do neither.
	schedLeader, schedStandbys := leaderOf(env, schedulerLease, sched...)
	rbLeaderProc, _ := leaderOf(env, wellknown.RebalancerLeaseName, rbProcs()...)
	t.Logf("leaders: %s and %s", schedLeader.Name, rbLeaderProc.Name)
	failbackRound := func(round int, spotNode string) {
		t.Helper()
		app := fmt.Sprintf("web-%d", round)
		createDeployment(env, framework.Deployment(ns, app, 3, "1"))
		waitRunningOn(env, app, 3, "ondemand-1")
		// Exactly the workload's room: the earlier rounds' spot nodes stay full.
		env.CreateNodes(framework.Node(spotNode, "3", framework.SpotLabels))
		waitRunningOn(env, app, 3, spotNode)
	}
	failbackRound(1, "spot-1")
	checkOnlyLeaderActs := func(round int, schedLeader *localcluster.Process, rbLeader *rebalancer, wantEvicted int) {
		t.Helper()
		for _, p := range sched {
			if p != schedLeader && boundBy(t, p) > 0 && !p.Exited() {
				t.Errorf("round %d: standby %s bound pods", round, p.Name)
			}
		}
		if boundBy(t, schedLeader) == 0 {
			t.Errorf("round %d: leader %s bound nothing", round, schedLeader.Name)
		}
		for _, r := range rbs {
			if r != rbLeader && evictedBy(t, r) > 0 && !r.proc.Exited() {
				t.Errorf("round %d: standby %s evicted pods", round, r.proc.Name)
			}
		}
		if got := evictedBy(t, rbLeader); got != wantEvicted {
			t.Errorf("round %d: leader %s evicted %d pods, want %d", round, rbLeader.proc.Name, got, wantEvicted)
		}
	}
	checkOnlyLeaderActs(1, schedLeader, rbs[rbLeaderProc], 3)

	// SIGTERM: the leaders exit 0 and release their Leases; the standbys lead at their next
	// retry instead of waiting out the Lease duration.
	next, took := handover(env, schedulerLease, schedLeader, syscall.SIGTERM, schedStandbys...)
	if err := schedLeader.Wait(20 * time.Second); err != nil {
		t.Errorf("%s after SIGTERM: %v, want exit 0", schedLeader.Name, err)
	}
	t.Logf("scheduler SIGTERM: %s exited 0, %s leads %s later", schedLeader.Name, next.Name, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("scheduler handover after SIGTERM took %s: the Lease was not released", took)
	}
	schedLeader = next
	var rbStandbys []*localcluster.Process
	for _, p := range rbProcs() {
		if p != rbLeaderProc {
			rbStandbys = append(rbStandbys, p)
		}
	}
	nextRB, took := handover(env, wellknown.RebalancerLeaseName, rbLeaderProc, syscall.SIGTERM, rbStandbys...)
	if err := rbLeaderProc.Wait(20 * time.Second); err != nil {
		t.Errorf("%s after SIGTERM: %v, want exit 0", rbLeaderProc.Name, err)
	}
	t.Logf("rebalancer SIGTERM: %s exited 0, %s leads %s later", rbLeaderProc.Name, nextRB.Name, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("rebalancer handover after SIGTERM took %s: the Lease was not released", took)
	}
	rbLeaderProc = nextRB

	// New standbys, then SIGKILL of the leaders: the standbys take over within the Lease
	// duration, and only the new leaders act.
	schedC := env.StartScheduler("scheduler-c", "")
	sched = append(sched, schedC)
	rc := startRebalancerAs(env, "rebalancer-c", "--rebalance-interval=1h")
	rbs[rc.proc] = rc
	boundBefore := boundBy(t, schedLeader)
	next, took = handover(env, schedulerLease, schedLeader, syscall.SIGKILL, schedC)
	t.Logf("scheduler SIGKILL: %s leads %s later", next.Name, took.Round(time.Millisecond))
	if took > handoverLimit {
		t.Errorf("scheduler handover after SIGKILL took %s, want <= %s", took, handoverLimit)
	}
	nextRB, took = handover(env, wellknown.RebalancerLeaseName, rbLeaderProc, syscall.SIGKILL, rc.proc)
	t.Logf("rebalancer SIGKILL: %s leads %s later", nextRB.Name, took.Round(time.Millisecond))
	if took > handoverLimit {
		t.Errorf("rebalancer handover after SIGKILL took %s, want <= %s", took, handoverLimit)
	}
	_ = schedLeader.Wait(10 * time.Second)
	_ = rbLeaderProc.Wait(10 * time.Second)
	if schedLeader.Exited() && boundBy(t, schedLeader) != boundBefore {
		t.Errorf("%s bound pods after SIGKILL", schedLeader.Name)
	}
	failbackRound(2, "spot-2")
	if boundBy(t, next) == 0 {
		t.Errorf("the new scheduler leader %s bound nothing", next.Name)
	}
	if got := evictedBy(t, rbs[nextRB]); got != 3 {
		t.Errorf("the new rebalancer leader %s evicted %d pods, want 3", nextRB.Name, got)
	}
	// Every pod was evicted once, by one instance: 6 Rebalanced events for 6 moves.
	if e := rebalancedEvents(env); len(e) != 6 {
		t.Errorf("Rebalanced events %d, want 6: %v", len(e), e)
	}

	// Lease names: spot-scheduler's own; the default scheduler's is never created.
	leases, err := env.Client.CoordinationV1().Leases("").List(env.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range leases.Items {
		names = append(names, l.Namespace+"/"+l.Name)
		if l.Namespace == "kube-system" && l.Name == "kube-scheduler" {
			t.Errorf("Lease kube-system/kube-scheduler exists: spot-scheduler must never take the default scheduler's Lease")
		}
	}
	t.Logf("Leases: %v", names)
	for _, want := range []string{"kube-system/" + schedulerLease, "kube-system/" + wellknown.RebalancerLeaseName} {
		if !chartContains(names, want) {
			t.Errorf("Lease %s missing (have %v)", want, names)
		}
	}
}

// waitPlanned waits until the rebalancer's current pass has planned want moves (the gauge is
// set before the validation delay, so the pass is now between planning and acting).
func (r *rebalancer) waitPlanned(want int) {
	r.env.T.Helper()
	r.env.WaitFor(fmt.Sprintf("a pass planning %d moves", want), 60*time.Second, func(context.Context) (bool, error) {
		return r.metric("spot_scheduler_rebalance_planned_moves") == float64(want), nil
	})
}

// roomAppearsMidPass adds spot room once the first pass is done, waits until a pass plans
// want moves towards it, and returns the pass count then: that pass is in its validation
// delay (between planning and acting) and counts when it ends.
func (r *rebalancer) roomAppearsMidPass(spot *v1.Node, want int) (passes float64) {
	r.env.T.Helper()
	r.waitPasses(1)
	r.env.CreateNodes(spot)
	r.waitPlanned(want)
	return r.passes()
}

// TestReliabilityCapacityVanishesMidPlan: the rebalancer plans moves to a new spot node, and
// the node is reclaimed (deleted) during the validation delay, between planning and acting.
// Nothing is evicted: the re-plan on fresh state drops the moves.
func TestReliabilityCapacityVanishesMidPlan(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	createDeployment(env, framework.Deployment(ns, "web", 2, "1"))
	waitRunningOn(env, "web", 2, "ondemand-1")
	before := podUIDs(env, "app=web")
	// Both pods of the workload in one pass (a budget of 100%): the pass is what is tested.
	rb := startRebalancer(env, "--rebalance-interval=1h", "--rebalance-validation-delay=8s", "--disruption-budget=100%")
	passes := rb.roomAppearsMidPass(framework.Node("spot-1", "4", framework.SpotLabels), 2)
	env.DeleteNodes("spot-1")
	env.WaitFor("the pass to end", 60*time.Second, func(context.Context) (bool, error) {
		return rb.passes() > passes, nil
	})
	if e := rebalancedEvents(env); len(e) != 0 || rb.evictions() != 0 {
		t.Fatalf("evicted towards a node that is gone: %v", e)
	}
	if after := podUIDs(env, "app=web"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("pods changed: %v -> %v", before, after)
	}
	dropped := rb.metric(`spot_scheduler_rebalance_skips_total{reason="changed_before_eviction"}`)
	if dropped < 2 {
		t.Fatalf("changed_before_eviction skips = %v, want the 2 planned moves dropped", dropped)
	}
	t.Logf("2 moves planned towards spot-1, spot-1 deleted during the validation delay: 0 evictions, %v moves dropped", dropped)
}

// ownedPod is an opted-in pod bound to node, owned by the ReplicaSet rs (no controller acts
// on it: the test recreates it by hand, same name, new UID).
func ownedPod(rs *appsv1.ReplicaSet, name, node string) *v1.Pod {
	p := framework.Pod(ns, name, "1", map[string]string{"app": rs.Name})
	p.Spec.NodeName = node
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}
	return p
}

// TestReliabilityRecreatedPodNotEvicted: between the rebalancer's plan and its act, a planned
// pod is deleted and recreated with the same name on the same node. The recreated pod is not
// evicted (the pass acts on pod UIDs, and the Eviction carries the UID and resourceVersion as
// preconditions); the pod planned alongside it, unchanged, is. The API server itself refuses
// an Eviction and a deletion-cost patch carrying the old pod's preconditions.
func TestReliabilityRecreatedPodNotEvicted(t *testing.T) {
	// No controller manager: nothing but the test creates or deletes these pods.
	env := framework.Start(t, localcluster.Options{})
	env.CreateNamespace(ns)
	env.CreateNodes(framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	rs, err := env.Client.AppsV1().ReplicaSets(ns).Create(env.Ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: framework.PodSpec("1")},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-a", "web-b"} {
		createPod(env, ownedPod(rs, name, "ondemand-1"))
	}
	waitRunningOn(env, "web", 2, "ondemand-1")
	// Both pods of the workload in one pass (a budget of 100%): the pass is what is tested.
	rb := startRebalancer(env, "--rebalance-interval=1h", "--rebalance-validation-delay=8s", "--disruption-budget=100%")
	passes := rb.roomAppearsMidPass(framework.Node("spot-1", "4", framework.SpotLabels), 2)
	old, err := env.Client.CoreV1().Pods(ns).Get(env.Ctx, "web-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deletePod(env, "web-a")
	createPod(env, ownedPod(rs, "web-a", "ondemand-1"))
	env.WaitFor("the pass to end", 60*time.Second, func(context.Context) (bool, error) {
		return rb.passes() > passes, nil
	})
	recreated, err := env.Client.CoreV1().Pods(ns).Get(env.Ctx, "web-a", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the recreated pod: %v", err)
	}
	if recreated.UID == old.UID || recreated.DeletionTimestamp != nil {
		t.Fatalf("web-a: uid %s (old %s), deleting %v: want the recreated pod, alive", recreated.UID, old.UID, recreated.DeletionTimestamp)
	}
	events := rebalancedEvents(env)
	if _, ok := events["web-a"]; ok {
		t.Fatalf("the recreated web-a was evicted: %v", events)
	}
	// The control: web-b, planned in the same pass and unchanged, was evicted.
	if _, ok := events["web-b"]; !ok || rb.evictions() != 1 {
		t.Fatalf("events %v, evictions %v: want web-b (unchanged) evicted, and only it", events, rb.evictions())
	}

	// The preconditions themselves, against the API server, as the rebalancer sends them:
	// the old pod's UID (evictions) and resourceVersion (deletion-cost patches) do not match
	// the recreated pod.
	uid, rv := old.UID, old.ResourceVersion
	err = env.Client.PolicyV1().Evictions(ns).Evict(env.Ctx, &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Namespace: ns, Name: "web-a"},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}},
	})
	if !apierrors.IsConflict(err) {
		t.Errorf("Eviction with the old pod's preconditions: %v, want a conflict", err)
	}
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,"annotations":{%q:"1"}}}`, rv, wellknown.PodDeletionCostAnnotation)
	_, err = env.Client.CoreV1().Pods(ns).Patch(env.Ctx, "web-a", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if !apierrors.IsConflict(err) {
		t.Errorf("deletion-cost patch with the old pod's resourceVersion: %v, want a conflict", err)
	}
}

// listeningPorts returns the TCP ports the process listens on (its own sockets, matched
// against /proc/net/tcp{,6} by inode).
func listeningPorts(t testing.TB, pid int) []int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			var port int
			if _, err := fmt.Sscanf(hexPort, "%X", &port); err == nil {
				ports = append(ports, port)
			}
		}
	}
	return ports
}

// saToken creates a ServiceAccount and returns a token of it.
func saToken(env *framework.Env, name string) string {
	env.T.Helper()
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(env.Ctx, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, metav1.CreateOptions{}); err != nil {
		env.T.Fatal(err)
	}
	tr, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(env.Ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		env.T.Fatal(err)
	}
	return tr.Status.Token
}

// get requests url with an optional bearer token and returns the status code (0 when the
// request failed at the transport level) and body.
func get(client *http.Client, url, token string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestReliabilitySecureServing: the scheduler and the rebalancer each listen on one TCP port,
// their HTTPS port; plain HTTP there gets no metrics; /healthz, /livez and /readyz answer
// without credentials; /metrics answers 401 to a bad token and 403 to anonymous callers and
// to a ServiceAccount without RBAC, and 200 to a ServiceAccount bound to a ClusterRole allowing
// GET /metrics (checked by TokenReview and SubjectAccessReview) and to the admin's client
// certificate.
func TestReliabilitySecureServing(t *testing.T) {
	env := framework.Start(t, localcluster.Options{})
	env.CreateNamespace(ns)
	schedPort := framework.FreePort(t)
	sched := env.StartScheduler("spot-scheduler", "", fmt.Sprintf("--secure-port=%d", schedPort),
		"--authentication-kubeconfig="+env.Kubeconfig, "--authorization-kubeconfig="+env.Kubeconfig)
	rb := startRebalancer(env)
	rbPort := 0
	fmt.Sscanf(rb.base, "https://127.0.0.1:%d", &rbPort)

	// RBAC: prometheus may GET /metrics, nobody may not.
	if _, err := env.Client.RbacV1().ClusterRoles().Create(env.Ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(env.Ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "prometheus"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	promToken, nobodyToken := saToken(env, "prometheus"), saToken(env, "nobody")

	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	plainClient := &http.Client{Timeout: 10 * time.Second}
	for _, c := range []struct {
		name   string
		proc   *localcluster.Process
		port   int
		health []string
		metric string
	}{
		{"spot-scheduler", sched, schedPort, []string{"/healthz", "/livez", "/readyz"}, "scheduler_"},
		{"spot-rebalancer", rb.proc, rbPort, []string{"/healthz", "/livez", "/readyz"}, "spot_scheduler_rebalance_"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if ports := listeningPorts(t, c.proc.Cmd.Process.Pid); len(ports) != 1 || ports[0] != c.port {
				t.Errorf("listens on TCP ports %v, want only its secure port %d", ports, c.port)
			}
			base := fmt.Sprintf("https://127.0.0.1:%d", c.port)
			for _, path := range []string{"/metrics", "/healthz"} {
				code, body := get(plainClient, fmt.Sprintf("http://127.0.0.1:%d%s", c.port, path), "")
				if code == http.StatusOK || strings.Contains(body, c.metric) {
					t.Errorf("plain HTTP %s answered %d: %.200s", path, code, body)
				}
			}
			for _, path := range c.health {
				if code, body := get(tlsClient, base+path, ""); code != http.StatusOK {
					t.Errorf("GET %s without credentials: %d %s, want 200", path, code, body)
				}
			}
			for _, tc := range []struct {
				who, token string
				want       int
			}{
				{"anonymous", "", http.StatusForbidden},
				{"a bad token", "not-a-token", http.StatusUnauthorized},
				{"a ServiceAccount without RBAC", nobodyToken, http.StatusForbidden},
			} {
				if code, body := get(tlsClient, base+"/metrics", tc.token); code != tc.want {
					t.Errorf("GET /metrics as %s: %d %.200s, want %d", tc.who, code, body, tc.want)
				}
			}
			env.WaitFor(c.name+" /metrics for prometheus' token", 30*time.Second, func(context.Context) (bool, error) {
				code, body := get(tlsClient, base+"/metrics", promToken)
				return code == http.StatusOK && strings.Contains(body, c.metric), nil
			})
			if code, _ := get(adminHTTPS(env, base), base+"/metrics", ""); code != http.StatusOK {
				t.Errorf("GET /metrics with the admin's client certificate: %d, want 200", code)
			}
		})
	}
}

// TestReliabilityAPIServerRestart restarts kube-apiserver (etcd keeps its data) while the
// scheduler and the rebalancer run, in the middle of a rebalancer pass: moves towards spot-2
// are planned, the API server goes away and comes back, spot-2 is reclaimed before the pass
// acts. Nothing is evicted towards it (the pass re-validates on fresh state); no pod is lost;
// scheduling resumes; and the rebalancer's later moves happen normally.
func TestReliabilityAPIServerRestart(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(framework.Node("spot-1", "4", framework.SpotLabels), framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	createDeployment(env, framework.Deployment(ns, "web", 4, "1"))
	waitRunningOn(env, "web", 4, "spot-1")
	createDeployment(env, framework.Deployment(ns, "api", 2, "1"))
	waitRunningOn(env, "api", 2, "ondemand-1")
	before := podUIDs(env, "app in (web,api)")
	// Both pods of the workload in one pass (a budget of 100%): the pass is what is tested.
	rb := startRebalancer(env, "--rebalance-interval=1h", "--rebalance-validation-delay=20s", "--disruption-budget=100%")
	passes := rb.roomAppearsMidPass(framework.Node("spot-2", "2", framework.SpotLabels), 2)
	down := time.Now()
	if err := env.RestartAPIServer(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver restarted: %s without an API server", time.Since(down).Round(time.Millisecond))
	env.DeleteNodes("spot-2")
	env.WaitFor("the interrupted pass to end", 60*time.Second, func(context.Context) (bool, error) {
		return rb.passes() > passes, nil
	})
	if e := rebalancedEvents(env); len(e) != 0 {
		t.Fatalf("evicted on stale state (towards the reclaimed spot-2): %v", e)
	}
	if dropped := rb.metric(`spot_scheduler_rebalance_skips_total{reason="changed_before_eviction"}`); dropped < 2 {
		t.Fatalf("changed_before_eviction skips = %v, want the 2 stale moves dropped", dropped)
	}
	after := podUIDs(env, "app in (web,api)")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("pods changed across the restart: %v -> %v", before, after)
	}
	for _, p := range []*localcluster.Process{rb.proc} {
		if p.Exited() {
			t.Fatalf("%s exited across the restart: %v", p.Name, p.Wait(0))
		}
	}

	// Scheduling resumes.
	createDeployment(env, framework.Deployment(ns, "late", 2, "1"))
	waitRunningOn(env, "late", 2, "ondemand-1")
	// The rebalancer acts again, on the current state: api moves to the new spot node.
	env.CreateNodes(framework.Node("spot-3", "2", framework.SpotLabels))
	env.WaitFor("api on spot-3", 90*time.Second, func(context.Context) (bool, error) {
		byNode, unbound := env.ScheduledPods(ns, "app=api")
		return unbound == 0 && byNode["spot-3"] == 2, nil
	})
	events := rebalancedEvents(env)
	for pod, msg := range events {
		if !strings.Contains(msg, "node spot-3") {
			t.Errorf("move of %s after the restart: %q, want towards spot-3", pod, msg)
		}
	}
	if len(events) != 2 {
		t.Errorf("Rebalanced events %v, want the 2 api moves", events)
	}
	waitRunningOn(env, "web", 4, "spot-1")
}

// TestReliabilityBadConfigRefused starts the real spot-scheduler and spot-rebalancer binaries
// on malformed configurations, one per args field and tier rule: each exits non-zero at
// start-up, before serving or leading, with a message naming the field. (Flag errors of the
// rebalancer are cmd/rebalancer's TestStartupRejectsBadInput; in-process setup errors of the
// scheduler are cmd/scheduler/app's TestBadConfigFailsSetup.)
func TestReliabilityBadConfigRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binaries")
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	// Nothing listens there: a binary that got past its configuration would hang or fail later.
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	config := func(spotArgs, placeholderArgs string) string {
		return `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection: {leaderElect: false}
clientConnection: {kubeconfig: ` + kubeconfig + `}
profiles:
- schedulerName: spot-scheduler
  percentageOfNodesToScore: 100
  plugins:
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}, {name: PlaceholderPreemption}]
  pluginConfig:
  - name: SpotScore
    args: ` + spotArgs + `
  - name: PlaceholderPreemption
    args: ` + placeholderArgs + `
`
	}
	// want is the field's path under the plugin's args: the scheduler names the plugin
	// (pluginConfig[SpotScore].args.tiers), the rebalancer the index
	// (profiles[0].pluginConfig[0].args.tiers).
	sel := func(s string) string { return `{tiers: [{name: spot, nodeSelectors: [` + s + `]}, {name: on-demand}]}` }
	cases := []struct {
		name, spot, placeholder string
		want                    string
		// rebalancer: the rebalancer reads the SpotScore args at start-up (it decodes the
		// placeholder args only once it leads).
		rebalancer bool
	}{
		{"unknown field", `{tierz: []}`, `{}`, `unknown field "tierz"`, true},
		{"wrong kind", `{kind: PlaceholderPreemptionArgs}`, `{}`, "args.kind", true},
		{"wrong apiVersion", `{apiVersion: v9}`, `{}`, "args.apiVersion", true},
		{"no tiers", `{tiers: []}`, `{}`, "args.tiers", true},
		{"tier without name", `{tiers: [{name: ""}], defaultTier: on-demand}`, `{}`, "args.tiers[0].name", true},
		{"tier name not a DNS label", `{tiers: [{name: Spot_Tier}, {name: on-demand}]}`, `{}`, "args.tiers[0].name", true},
		{"duplicate tier", `{tiers: [{name: on-demand}, {name: on-demand}]}`, `{}`, "args.tiers[1].name", true},
		{"empty node selector", sel(`{}`), `{}`, "args.tiers[0].nodeSelectors[0]", true},
		{"bad selector operator", sel(`{matchExpressions: [{key: a, operator: Like}]}`), `{}`, "args.tiers[0].nodeSelectors[0].matchExpressions[0].operator", true},
		{"bad selector label key", sel(`{matchLabels: {"bad key": x}}`), `{}`, "args.tiers[0].nodeSelectors[0]", true},
		{"bad tier taint key", `{tiers: [{name: spot, taintKeys: ["no spaces"]}, {name: on-demand}]}`, `{}`, "args.tiers[0].taintKeys[0]", true},
		{"default tier unknown", `{defaultTier: nowhere}`, `{}`, "args.defaultTier", true},
		{"bad at-risk taint", `{atRiskTaints: [{key: "a b"}]}`, `{}`, "args.atRiskTaints[0].key", true},
		{"bad at-risk prefix", `{atRiskTaints: [{key: "/*"}]}`, `{}`, "args.atRiskTaints[0].key", true},
		{"cordonedIsAtRisk not a bool", `{cordonedIsAtRisk: maybe}`, `{}`, "cordonedIsAtRisk", true},
		{"bad pool label key", `{poolLabelKeys: ["a b"]}`, `{}`, "args.poolLabelKeys[0]", true},
		{"duplicate pool topology key", `{poolTopologyKeys: [zone, zone]}`, `{}`, "args.poolTopologyKeys[1]", true},
		{"spread weight 100", `{spreadWeight: 100}`, `{}`, "args.spreadWeight", true},
		{"spread weight negative", `{spreadWeight: -1}`, `{}`, "args.spreadWeight", true},
		{"placeholder selector empty", `{}`, `{placeholderSelector: {}}`, "args.placeholderSelector", false},
		{"placeholder selector operator", `{}`, `{placeholderSelector: {matchExpressions: [{key: a, operator: Like}]}}`, "args.placeholderSelector.matchExpressions[0].operator", false},
		{"placeholder priority", `{}`, `{placeholderPriorityBelow: 2000000000}`, "args.placeholderPriorityBelow", false},
		{"placeholder unknown field", `{}`, `{placeholderPriority: -1}`, `unknown field "placeholderPriority"`, false},
	}
	sched := framework.SchedulerBinary(t)
	rebal := framework.RebalancerBinary(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("config-%d.yaml", i))
			if err := os.WriteFile(file, []byte(config(tc.spot, tc.placeholder)), 0o600); err != nil {
				t.Fatal(err)
			}
			runs := [][]string{{sched, "--config=" + file, "--secure-port=0"}}
			if tc.rebalancer {
				runs = append(runs, []string{rebal, "--scheduler-config=" + file, "--kubeconfig=" + kubeconfig, "--secure-port=0"})
			}
			for _, argv := range runs {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
				timedOut := ctx.Err() != nil
				cancel()
				bin := filepath.Base(argv[0])
				if timedOut {
					t.Fatalf("%s did not exit within 60s on a bad configuration", bin)
				}
				if err == nil {
					t.Errorf("%s exited 0 on a bad configuration", bin)
				}
				// klog quotes the scheduler's error: unescape it.
				if !strings.Contains(strings.ReplaceAll(string(out), `\"`, `"`), tc.want) {
					t.Errorf("%s output does not name %q:\n%s", bin, tc.want, tail(string(out), 1500))
				}
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
