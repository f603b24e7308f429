// Package framework is the integration-test harness: a real control plane per test
// (internal/localcluster), the spot-scheduler binary started against it, and helpers to build
// nodes and workloads and to wait on conditions with bounded timeouts.
package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
)

// BinaryEnv names the environment variable holding a prebuilt spot-scheduler binary.
const BinaryEnv = "SPOT_SCHEDULER_BINARY"

// Env is one test's control plane.
type Env struct {
	*localcluster.Cluster
	T   testing.TB
	Ctx context.Context
}

// Start brings up a fresh control plane for the test and tears it down when the test ends.
// A failed test keeps its directory (every component's log) and prints where it is.
func Start(t testing.TB, opts localcluster.Options) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs a real control plane (run without -short)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	dir, err := os.MkdirTemp("", "spot-it-"+sanitize(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	opts.Dir = dir
	if opts.BinDir == "" {
		opts.BinDir = controlPlaneOf(t)
	}
	started := time.Now()
	c, err := localcluster.Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Logf("control plane up in %s (logs in %s)", time.Since(started).Round(time.Millisecond), dir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- cluster state at failure ---\n%s", dumpState(c))
		}
		cancel()
		if err := c.Stop(); err != nil {
			t.Logf("stopping the control plane: %v", err)
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, l := range logs {
				data, _ := os.ReadFile(l)
				t.Logf("--- last lines of %s ---\n%s", filepath.Base(l), tail(string(data), 2000))
			}
			t.Logf("kept the logs of every component in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return &Env{Cluster: c, T: t, Ctx: ctx}
}

// controlPlanes maps a test's name to the control-plane binaries it runs (UseControlPlane).
var controlPlanes sync.Map

// UseControlPlane makes Start, for t and its subtests, run the control-plane binaries in dir
// (another Kubernetes minor's, from hack/build-compat.sh) instead of $SPOT_SCHEDULER_BIN_DIR's.
// The compatibility tests run the integration tests themselves this way.
func UseControlPlane(t testing.TB, dir string) {
	controlPlanes.Store(t.Name(), dir)
	t.Cleanup(func() { controlPlanes.Delete(t.Name()) })
}

// controlPlaneOf returns the directory UseControlPlane gave t or a parent test, "" if none.
func controlPlaneOf(t testing.TB) string {
	for name := t.Name(); ; {
		if dir, ok := controlPlanes.Load(name); ok {
			return dir.(string)
		}
		i := strings.LastIndex(name, "/")
		if i < 0 {
			return ""
		}
		name = name[:i]
	}
}

func sanitize(name string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(name)
}

// SchedulerBinary returns the spot-scheduler binary under test: $SPOT_SCHEDULER_BINARY, or
// one built from this checkout once per test process.
func SchedulerBinary(t testing.TB) string {
	t.Helper()
	return GoBinary(t, "./cmd/scheduler", BinaryEnv)
}

// RepoFile returns the path of a file of this repository (e.g. manifests/scheduler-config.yaml).
func RepoFile(t testing.TB, rel string) string {
	t.Helper()
	root, err := localcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := localcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// StartScheduler runs the spot-scheduler binary with a KubeSchedulerConfiguration file (the
// shipped manifests/scheduler-config.yaml unless configFile is given), pointed at this
// cluster, and waits until it holds its Lease. It stops when the test ends.
func (e *Env) StartScheduler(name, configFile string, extraArgs ...string) *localcluster.Process {
	e.T.Helper()
	if configFile == "" {
		configFile = RepoFile(e.T, "manifests/scheduler-config.yaml")
	}
	data, err := os.ReadFile(configFile)
	if err != nil {
		e.T.Fatal(err)
	}
	// With --config, kube-scheduler takes the kubeconfig path from the file only.
	data = append(data, []byte(fmt.Sprintf("\nclientConnection:\n  kubeconfig: %q\n", e.Kubeconfig))...)
	cfg := filepath.Join(e.Dir, name+"-config.yaml")
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		e.T.Fatal(err)
	}
	args := append([]string{
		"--config=" + cfg,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", FreePort(e.T)),
		"--v=2",
	}, extraArgs...)
	return e.startLeader(name, SchedulerBinary(e.T), "spot-scheduler", args...)
}

// startLeader runs a binary of the product, stopped when the test ends, and waits until some
// instance holds its Lease (kube-system/lease); an instance that exits fails the test with the
// end of its log.
func (e *Env) startLeader(name, binary, lease string, args ...string) *localcluster.Process {
	e.T.Helper()
	p, err := e.StartProcess(e.Ctx, name, binary, args...)
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { p.Stop(10 * time.Second) })
	e.WaitFor(name+" holds its lease", 60*time.Second, func(ctx context.Context) (bool, error) {
		if p.Exited() {
			log, _ := os.ReadFile(p.Log)
			return false, fmt.Errorf("%s exited: %v\n%s", name, p.Wait(0), tail(string(log), 3000))
		}
		l, err := e.Client.CoordinationV1().Leases("kube-system").Get(ctx, lease, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "", err
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// WaitFor polls cond every 100ms until it holds, fails the test with desc after timeout.
func (e *Env) WaitFor(desc string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	e.T.Helper()
	var lastErr error
	err := wait.PollUntilContextTimeout(e.Ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil && !isTransient(err) {
			return false, err
		}
		lastErr = err
		return ok, nil
	})
	if err != nil {
		e.T.Fatalf("waiting for %s (up to %s): %v (last: %v)", desc, timeout, err, lastErr)
	}
}

func isTransient(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err)
}

// CreateNodes creates the nodes and waits until kwok reports each Ready.
func (e *Env) CreateNodes(nodes ...*v1.Node) {
	e.T.Helper()
	for _, n := range nodes {
		if _, err := e.Client.CoreV1().Nodes().Create(e.Ctx, n, metav1.CreateOptions{}); err != nil {
			e.T.Fatalf("creating node %s: %v", n.Name, err)
		}
	}
	for _, n := range nodes {
		name := n.Name
		e.WaitFor("node "+name+" Ready", 30*time.Second, func(ctx context.Context) (bool, error) {
			node, err := e.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range node.Status.Conditions {
				if c.Type == v1.NodeReady && c.Status == v1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
	}
}

// DeleteNodes reclaims the nodes as a cloud does (localcluster.Reclaim: the Node objects go,
// their pods are left to the pod garbage collector) and waits until nodes and pods are gone.
func (e *Env) DeleteNodes(names ...string) {
	e.T.Helper()
	for _, name := range names {
		if err := localcluster.Reclaim(e.Ctx, e.Client, name); err != nil {
			e.T.Fatal(err)
		}
	}
	e.WaitFor(fmt.Sprintf("nodes %v and their pods gone", names), localcluster.OrphanLifetime, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			if _, err := e.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
			pods, err := e.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
			if err != nil || len(pods.Items) > 0 {
				return false, err
			}
		}
		return true, nil
	})
}

// CreateNamespace creates a namespace for the test's workloads.
func (e *Env) CreateNamespace(name string) {
	e.T.Helper()
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := e.Client.CoreV1().Namespaces().Create(e.Ctx, ns, metav1.CreateOptions{}); err != nil {
		e.T.Fatal(err)
	}
}

// CreateBoundPods creates pods that already name their node (spec.nodeName set, as a
// kubelet's static or pre-bound pods are) and waits until each is Running and Ready.
//
// Why wait: kube-scheduler feeds bound pods to its cache and pending pods to its queue through
// two handlers of one informer, each with its own goroutine, so a pending pod created right
// after a bound one can be scheduled before the cache counts the bound pod. A real kubelet
// would then refuse the pod (OutOfcpu); kwok admits anything. Ready means kwok has seen the
// pod and written its status, a round trip after the scheduler's informer got it too.
func (e *Env) CreateBoundPods(pods ...*v1.Pod) {
	e.T.Helper()
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			e.T.Fatalf("CreateBoundPods: pod %s names no node", p.Name)
		}
		if _, err := e.Client.CoreV1().Pods(p.Namespace).Create(e.Ctx, p, metav1.CreateOptions{}); err != nil {
			e.T.Fatalf("creating pod %s: %v", p.Name, err)
		}
	}
	for _, p := range pods {
		ns, name := p.Namespace, p.Name
		e.WaitFor("pod "+ns+"/"+name+" Running and Ready", 30*time.Second, func(ctx context.Context) (bool, error) {
			got, err := e.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == v1.PodReady && c.Status == v1.ConditionTrue {
					return got.Status.Phase == v1.PodRunning, nil
				}
			}
			return false, nil
		})
	}
}

// WaitPodBound waits until the pod has a node and returns the node's name.
func (e *Env) WaitPodBound(ns, name string, timeout time.Duration) string {
	e.T.Helper()
	var nodeName string
	e.WaitFor("pod "+ns+"/"+name+" bound", timeout, func(ctx context.Context) (bool, error) {
		p, err := e.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		nodeName = p.Spec.NodeName
		return nodeName != "", nil
	})
	return nodeName
}

// ScheduledPods lists the pods matching selector in ns and groups the bound ones by node;
// it also returns how many are not bound yet.
func (e *Env) ScheduledPods(ns, selector string) (byNode map[string]int, unbound int) {
	e.T.Helper()
	pods, err := e.Client.CoreV1().Pods(ns).List(e.Ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		e.T.Fatal(err)
	}
	byNode = map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Spec.NodeName == "" {
			unbound++
			continue
		}
		byNode[p.Spec.NodeName]++
	}
	return byNode, unbound
}

// dumpState describes what a failed test most often needs to know and the component logs do
// not say: every pod with its node, phase, readiness and deletion mark, and every PDB's
// status as the disruption controller last wrote it.
func dumpState(c *localcluster.Cluster) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("listing pods: %v", err)
	}
	for _, p := range pods.Items {
		ready := "NotReady"
		for _, cond := range p.Status.Conditions {
			if cond.Type == v1.PodReady && cond.Status == v1.ConditionTrue {
				ready = "Ready"
			}
		}
		deleting := ""
		if p.DeletionTimestamp != nil {
			deleting = " deleting since " + p.DeletionTimestamp.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "pod %s/%s uid=%s node=%q phase=%s %s%s\n", p.Namespace, p.Name, p.UID, p.Spec.NodeName, p.Status.Phase, ready, deleting)
	}
	pdbs, err := c.Client.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return b.String() + fmt.Sprintf("listing PDBs: %v", err)
	}
	for _, p := range pdbs.Items {
		s := p.Status
		fmt.Fprintf(&b, "pdb %s/%s generation=%d observed=%d expected=%d currentHealthy=%d desiredHealthy=%d disruptionsAllowed=%d disruptedPods=%v\n",
			p.Namespace, p.Name, p.Generation, s.ObservedGeneration, s.ExpectedPods, s.CurrentHealthy, s.DesiredHealthy, s.DisruptionsAllowed, s.DisruptedPods)
	}
	return b.String()
}

// Events lists the core/v1 events of a namespace that match a field selector ("" for all),
// failing the test on error.
func (e *Env) Events(namespace, fieldSelector string) []v1.Event {
	e.T.Helper()
	events, err := e.Client.CoreV1().Events(namespace).List(e.Ctx, metav1.ListOptions{FieldSelector: fieldSelector})
	if err != nil {
		e.T.Fatalf("listing events in %s (%s): %v", namespace, fieldSelector, err)
	}
	return events.Items
}
