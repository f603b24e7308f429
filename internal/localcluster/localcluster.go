// Package localcluster starts a real local control plane from binaries built out of Go
// modules (hack/build-control-plane.sh): etcd and kube-apiserver through controller-runtime's
// envtest, and optionally kube-controller-manager and kwok (fake kubelets that make nodes
// Ready and bound pods Running). The integration tests, `make demo` and the benchmarks all
// run on it; there is no Docker and no mocked API server.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// BinDirEnv names the environment variable holding the directory of the control-plane binaries.
const BinDirEnv = "SPOT_SCHEDULER_BIN_DIR"

// DefaultControllers are the kube-controller-manager controllers the product's stories need:
// Deployments, ReplicaSets (scale-in honours pod-deletion-cost), PDBs, the garbage collector
// so that deleting a Deployment removes its pods, and the pod garbage collector, which
// removes the pods of a reclaimed node (see Reclaim).
var DefaultControllers = []string{"deployment", "replicaset", "disruption", "garbagecollector", "podgc"}

// Options say what to start.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and
	// kwok-stages.yaml. Empty means $SPOT_SCHEDULER_BIN_DIR, else hack/build-control-plane.sh.
	BinDir string
	// Dir is where data, kubeconfig and logs go. Empty means a new temporary directory.
	Dir string
	// ControllerManager starts kube-controller-manager with Controllers (default DefaultControllers).
	ControllerManager bool
	Controllers       []string
	// ControllerManagerArgs are added to kube-controller-manager's flags (e.g. its client QPS).
	ControllerManagerArgs []string
	// NoKwok leaves nodes and pods to the caller (nothing makes them Ready).
	NoKwok bool
	// PodReadyDelay: kwok turns a bound pod Running and Ready this long after it sees it (a
	// container's start-up; 0: at once).
	PodReadyDelay time.Duration
	// NodeReadyDelay and NodeReadyJitter: kwok reports a new node Ready after a delay drawn
	// uniformly from [NodeReadyDelay, NodeReadyDelay+NodeReadyJitter] (a machine's boot and
	// kubelet start-up; 0: at once).
	NodeReadyDelay, NodeReadyJitter time.Duration
	// NotReadyTaint keeps the API server's TaintNodesByCondition admission, so that a new node
	// carries node.kubernetes.io/not-ready:NoSchedule until it is Ready, and removes the taint
	// when kwok reports it Ready, as the node-lifecycle controller does (which does not run
	// here). Without it a node is schedulable from its creation.
	NotReadyTaint bool
	// Karpenter, when set, starts Karpenter (kwok cloud provider) after the rest (karpenter.go).
	Karpenter *KarpenterOptions
}

// Cluster is a running local control plane.
type Cluster struct {
	// Dir holds the kubeconfig and every component's log (<name>.log).
	Dir string
	// Kubeconfig is the path of an admin kubeconfig.
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	BinDir     string
	// Karpenter is the running Karpenter when Options.Karpenter was set.
	Karpenter *Karpenter

	env   *envtest.Environment
	procs []*Process
	// stopHelpers stops what runs in this process for the cluster (the not-ready taint lifter).
	stopHelpers context.CancelFunc
}

// Start brings the control plane up and waits until it serves.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	binDir, err := ResolveBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "spot-scheduler-cluster-"); err != nil {
			return nil, err
		}
	}
	c := &Cluster{Dir: dir, BinDir: binDir}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()

	c.env = &envtest.Environment{
		BinaryAssetsDirectory:   binDir,
		ControlPlaneStopTimeout: 20 * time.Second,
	}
	apiServer := c.env.ControlPlane.GetAPIServer()
	apiServer.Out, apiServer.Err = mustLog(dir, "kube-apiserver")
	// A directory of ours (envtest deletes a directory it made when the API server stops), so
	// that RestartAPIServer keeps the serving certificate and every client keeps working.
	apiServer.CertDir = filepath.Join(dir, "kube-apiserver-certs")
	if err = os.MkdirAll(apiServer.CertDir, 0o700); err != nil {
		return nil, err
	}
	// No node-lifecycle controller runs, so nothing would lift the not-ready taint that
	// TaintNodesByCondition puts on every new node; kwok reports the nodes Ready instead.
	disabled := []string{"ServiceAccount", "TaintNodesByCondition"}
	if opts.NotReadyTaint {
		disabled = disabled[:1]
	}
	apiServer.Configure().Set("disable-admission-plugins", disabled...)
	etcd := &envtest.Etcd{}
	etcd.Out, etcd.Err = mustLog(dir, "etcd")
	c.env.ControlPlane.Etcd = etcd
	if c.Config, err = c.env.Start(); err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w (logs in %s)", binDir, err, dir)
	}
	c.Config.QPS, c.Config.Burst = 200, 400
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err = os.WriteFile(c.Kubeconfig, c.env.KubeConfig, 0o600); err != nil {
		return nil, err
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}

	if opts.ControllerManager {
		controllers := opts.Controllers
		if len(controllers) == 0 {
			controllers = DefaultControllers
		}
		if _, err = c.StartProcess(ctx, "kube-controller-manager", filepath.Join(binDir, "kube-controller-manager"),
			append([]string{
				"--kubeconfig=" + c.Kubeconfig,
				"--controllers=" + strings.Join(controllers, ","),
				"--leader-elect=false",
				"--secure-port=0",
				"--concurrent-deployment-syncs=5",
				"--concurrent-replicaset-syncs=5",
			}, opts.ControllerManagerArgs...)...,
		); err != nil {
			return nil, err
		}
	}
	if !opts.NoKwok {
		stages, err := kwokStages(binDir, dir, opts.PodReadyDelay, opts.NodeReadyDelay, opts.NodeReadyJitter)
		if err != nil {
			return nil, err
		}
		if _, err = c.StartProcess(ctx, "kwok", filepath.Join(binDir, "kwok"),
			"--kubeconfig="+c.Kubeconfig,
			"--manage-all-nodes=true",
			"--config="+stages,
		); err != nil {
			return nil, err
		}
	}
	if opts.NotReadyTaint {
		helpers, stop := context.WithCancel(context.WithoutCancel(ctx))
		c.stopHelpers = stop
		if err = c.liftNotReadyTaints(helpers); err != nil {
			return nil, err
		}
	}
	if opts.Karpenter != nil {
		if c.Karpenter, err = c.StartKarpenter(ctx, *opts.Karpenter); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func mustLog(dir, name string) (*os.File, *os.File) {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, nil
	}
	return f, f
}

// ResolveBinDir finds the control-plane binaries: dir if given, else $SPOT_SCHEDULER_BIN_DIR,
// else the output of hack/build-control-plane.sh found above the working directory (which
// builds them on first use and reuses its cache afterwards).
func ResolveBinDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(BinDirEnv)
	}
	if dir == "" {
		script, err := findUp("hack/build-control-plane.sh")
		if err != nil {
			return "", fmt.Errorf("no %s set and %w", BinDirEnv, err)
		}
		cmd := exec.Command("bash", script)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("building the control plane with %s: %w", script, err)
		}
		dir = strings.TrimSpace(string(out))
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kwok", "kwok-stages.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("control-plane binaries incomplete in %s (run hack/build-control-plane.sh): %w", dir, err)
		}
	}
	return dir, nil
}

// RepoRoot is the directory of this repository at or above the working directory (tests,
// the demo and the benchmarks run from inside it): the first one holding go.mod and hack/.
func RepoRoot() (string, error) {
	script, err := findUp("hack/build-control-plane.sh")
	if err != nil {
		return "", err
	}
	return filepath.Dir(filepath.Dir(script)), nil
}

func findUp(rel string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s not found above %s", rel, wd)
		}
	}
}

// Process is a child process of the cluster (a component, or a product binary under test).
type Process struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
	err  error
}

// StartProcess runs a binary with its output in <Dir>/<name>.log. The child gets its own
// process group (so Stop can kill all it started) and is killed if this process dies first.
func (c *Cluster) StartProcess(ctx context.Context, name, bin string, args ...string) (*Process, error) {
	return c.startProcess(ctx, name, bin, nil, args...)
}

// startProcess is StartProcess with a hook that adjusts the command before it starts (e.g.
// its environment).
func (c *Cluster) startProcess(_ context.Context, name, bin string, configure func(*exec.Cmd), args ...string) (*Process, error) {
	logPath := filepath.Join(c.Dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if configure != nil {
		configure(cmd)
	}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to end, up to timeout, and returns its exit error.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", p.Name, timeout)
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	return p.Cmd.Process.Signal(sig)
}

// Stop ends the process: SIGTERM, then SIGKILL to its whole group after grace.
func (p *Process) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Stop ends every process the cluster started, newest first, then the API server and etcd.
func (c *Cluster) Stop() error {
	if c.stopHelpers != nil {
		c.stopHelpers()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop(5 * time.Second)
	}
	c.procs = nil
	if c.env != nil {
		env := c.env
		c.env = nil
		return env.Stop()
	}
	return nil
}

// RestartAPIServer kills kube-apiserver (SIGKILL: a crash; its graceful shutdown waits on
// open watches for longer than envtest's stop timeout), keeps it down for downtime, and
// starts it again on the same port with the same certificates and flags; etcd, and so every
// object, stays. It returns once the API server serves again.
func (c *Cluster) RestartAPIServer(downtime time.Duration) error {
	apiServer := c.env.ControlPlane.GetAPIServer()
	pid, err := findProcess("kube-apiserver", apiServer.CertDir)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing kube-apiserver (pid %d): %w", pid, err)
	}
	if err := apiServer.Stop(); err != nil {
		return fmt.Errorf("stopping kube-apiserver: %w", err)
	}
	time.Sleep(downtime)
	if err := apiServer.Start(); err != nil {
		return fmt.Errorf("starting kube-apiserver again: %w (log in %s)", err, c.Dir)
	}
	return nil
}

// findProcess returns the pid of this process's child named name whose command line
// contains marker.
func findProcess(name, marker string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil || !strings.Contains(string(stat), "("+name+")") {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), marker) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no %s process with %q in its command line", name, marker)
}

// WaitForAPI polls fn until it returns true, an error, or timeout passes.
func WaitForAPI(ctx context.Context, timeout time.Duration, fn func(context.Context) (bool, error)) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, fn)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("condition not met within %s", timeout)
	}
	return err
}

// Reclaim takes a node back as a cloud provider does: the VM goes, and the cloud controller
// deletes its Node object. Nothing deletes its pods then: they stay bound to the missing node
// until kube-controller-manager's pod garbage collector removes them (its orphan check runs
// every 20 s and waits out a 40 s quarantine, so orphans live 40 to 80 s), and only then do
// their controllers recreate them elsewhere. Run the controller manager with "podgc"
// (DefaultControllers has it). An interruption notice, if any, is the caller's TaintNode
// before this.
func Reclaim(ctx context.Context, client kubernetes.Interface, nodeName string) error {
	if err := client.CoreV1().Nodes().Delete(ctx, nodeName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting node %s: %w", nodeName, err)
	}
	return nil
}

// OrphanLifetime bounds how long the pods of a reclaimed node may stay before the pod garbage
// collector removes them: its check period (20 s) plus its quarantine (40 s), plus slack for a
// loaded machine.
const OrphanLifetime = 2 * time.Minute

// ScaleDeployment sets a Deployment's replicas through its scale subresource. A merge patch
// carries no resourceVersion, so it cannot conflict with the deployment controller's status
// writes (a Get-then-UpdateScale right after creation loses that race now and then).
func ScaleDeployment(ctx context.Context, client kubernetes.Interface, namespace, name string, replicas int32) error {
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas))
	if _, err := client.AppsV1().Deployments(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}, "scale"); err != nil {
		return fmt.Errorf("scaling deployment %s/%s to %d: %w", namespace, name, replicas, err)
	}
	return nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// TaintNode adds a taint to a node (an interruption notice, in tests, the demo and the
// benchmarks), retrying on write conflicts with the node's heartbeats. A taint with the same
// key and effect already there is left as it is.
func TaintNode(ctx context.Context, client kubernetes.Interface, name string, taint v1.Taint) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, t := range n.Spec.Taints {
			if t.MatchTaint(&taint) {
				return nil
			}
		}
		n.Spec.Taints = append(n.Spec.Taints, taint)
		_, err = client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("tainting node %s with %s: %w", name, taint.ToString(), err)
	}
	return nil
}

// kwokStages returns the kwok stages file to use: the built one, or, with a pod or node
// start-up delay, a copy in dir whose pod-ready (node-initialize) stage waits that long.
func kwokStages(binDir, dir string, podReadyDelay, nodeReadyDelay, nodeReadyJitter time.Duration) (string, error) {
	path := filepath.Join(binDir, "kwok-stages.yaml")
	if podReadyDelay <= 0 && nodeReadyDelay <= 0 && nodeReadyJitter <= 0 {
		return path, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	stages := string(data)
	// delay gives the stage a delay of d (drawn up to d + jitter), counted from the time the
	// jq expression from yields when it yields one (else from kwok's last sight of the object).
	delay := func(stage string, d, jitter time.Duration, from string) error {
		anchor := "  name: " + stage + "\nspec:\n"
		if !strings.Contains(stages, anchor) {
			return fmt.Errorf("%s has no %s stage to delay", path, stage)
		}
		spec := fmt.Sprintf("  delay:\n    durationMilliseconds: %d\n", d.Milliseconds())
		if from != "" {
			spec += fmt.Sprintf("    durationFrom:\n      jq:\n        expression: '%s'\n", from)
		}
		if jitter > 0 {
			// kwok draws the delay uniformly between the two values.
			spec += fmt.Sprintf("    jitterDurationMilliseconds: %d\n", (d + jitter).Milliseconds())
		}
		stages = strings.Replace(stages, anchor, anchor+spec, 1)
		return nil
	}
	if podReadyDelay > 0 {
		if err := delay("pod-ready", podReadyDelay, 0, podReadyFromBinding(podReadyDelay)); err != nil {
			return "", err
		}
	}
	if nodeReadyDelay > 0 || nodeReadyJitter > 0 {
		if err := delay("node-initialize", nodeReadyDelay, nodeReadyJitter, ""); err != nil {
			return "", err
		}
	}
	out := filepath.Join(dir, "kwok-stages.yaml")
	return out, os.WriteFile(out, []byte(stages), 0o600)
}

// podReadyFromBinding is the jq expression that counts a pod's start-up delay d from its
// binding (the PodScheduled condition's time), as a kubelet starts a container once it sees
// the binding. kwok counts a delay from the last update it saw of the object, so without this
// every write to a pod in the meantime (a controller's annotation) restarts its start-up:
// measured, writes of spot-rebalancer's deletion-cost controller during a failback made 10 of
// 87 replacements wait 11-15 s instead of 5, a cost no kubelet has. The condition's time has
// whole seconds: half a second is added, so that the delay is right on average (the plain
// delay remains the fallback for a pod without the condition).
func podReadyFromBinding(d time.Duration) string {
	d += 500 * time.Millisecond
	whole, frac := int64(d/time.Second), (d % time.Second).Milliseconds()
	return fmt.Sprintf(`.status.conditions[]? | select(.type == "PodScheduled" and .status == "True") | .lastTransitionTime | fromdateiso8601 + %d | todateiso8601 | sub("Z$"; ".%03dZ")`, whole, frac)
}

// AnyExited fails when one of the processes has exited, with the end of its log: a run
// without one of its components would measure nothing.
func AnyExited(procs []*Process) error {
	for _, p := range procs {
		if p.Exited() {
			log, _ := os.ReadFile(p.Log)
			lines := strings.Split(strings.TrimSpace(string(log)), "\n")
			return fmt.Errorf("%s exited during the run; its log ends with:\n%s", p.Name, strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	}
	return nil
}
