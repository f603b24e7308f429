package integration

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// readmeCommands returns the command lines of the README's shell blocks that run a binary of
// bin/ (as `make build` leaves them), exactly as written.
func readmeCommands(t *testing.T, docs ...string) []string {
	t.Helper()
	var lines []string
	for _, doc := range docs {
		f, err := os.Open(framework.RepoFile(t, doc))
		if err != nil {
			t.Fatal(err)
		}
		inShell := false
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case strings.HasPrefix(line, "```"):
				inShell = !inShell && (line == "```sh" || line == "```bash" || line == "```shell")
			case inShell && strings.HasPrefix(line, "bin/"):
				lines = append(lines, line)
			}
		}
		f.Close()
	}
	return lines
}

// TestReadmeCommandLines runs the README's (and docs/install.md's) command lines for the
// binaries exactly as a newcomer types them, after `make build`, with ~/.kube/config pointing at
// a test cluster: the scheduler (given --config and --kubeconfig, which kube-scheduler alone
// would ignore) reaches the cluster, takes its Lease and binds a pod; the rebalancer takes its
// Lease; kubectl-spot explains the pod. Only bin/ (the binaries under test), ~ (a home of the
// test's) and the placeholder NAMESPACE/NAME are substituted.
func TestReadmeCommandLines(t *testing.T) {
	env := framework.Start(t, localcluster.Options{ControllerManager: true})
	env.CreateNamespace(ns)
	lines := readmeCommands(t, "README.md", "docs/install.md")
	want := map[string]bool{"bin/spot-scheduler ": false, "bin/spot-rebalancer ": false, "bin/kubectl-spot ": false}
	for _, l := range lines {
		for prefix := range want {
			if strings.HasPrefix(l, prefix) {
				want[prefix] = true
			}
		}
	}
	for prefix, found := range want {
		if !found {
			t.Fatalf("the README shows no %s command line any more (found %q): update this test", prefix, lines)
		}
	}

	// bin/ as `make build` leaves it, ~ with the cluster's kubeconfig as ~/.kube/config.
	bin := filepath.Join(t.TempDir(), "bin")
	home := t.TempDir()
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	scheduler := framework.SchedulerBinary(t)
	for name, target := range map[string]string{
		"spot-scheduler":  scheduler,
		"kubectl-spot":    scheduler,
		"spot-rebalancer": framework.RebalancerBinary(t),
	} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	repo := framework.RepoFile(t, ".")

	env.CreateNodes(framework.Node("spot-1", "4", framework.SpotLabels), framework.Node("ondemand-1", "4", framework.OnDemandLabels))
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "bin/spot-scheduler "):
			p := runLine(t, env, "readme-scheduler", line, bin, home, repo)
			chartWaitLease(env, p, "kube-system", "spot-scheduler")
			if got := createPod(env, framework.Pod(ns, "readme", "1", nil)); got != "spot-1" {
				t.Fatalf("the README's scheduler bound the pod to %s, want spot-1", got)
			}
		case strings.HasPrefix(line, "bin/spot-rebalancer "):
			p := runLine(t, env, "readme-rebalancer", line, bin, home, repo)
			chartWaitLease(env, p, "kube-system", wellknown.RebalancerLeaseName)
		}
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, "bin/kubectl-spot ") {
			continue
		}
		line = strings.ReplaceAll(line, "NAMESPACE/NAME", ns+"/readme")
		cmd := exec.CommandContext(env.Ctx, "/bin/bash", "-c", strings.Replace(line, "bin/", bin+"/", 1))
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "HOME="+home, "KUBECONFIG=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "spot-1") {
			t.Errorf("%s printed no word of the pod's node spot-1:\n%s", line, stdout.String())
		}
	}
}

// runLine starts a README command line in the repository with HOME set to home, so that
// ~/.kube/config is the test cluster's kubeconfig.
func runLine(t *testing.T, env *framework.Env, name, line, bin, home, repo string) *localcluster.Process {
	t.Helper()
	script := "cd " + repo + " && exec " + strings.Replace(line, "bin/", bin+"/", 1)
	p, err := env.StartProcess(env.Ctx, name, "/usr/bin/env", "HOME="+home, "KUBECONFIG=", "/bin/bash", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(10 * time.Second) })
	return p
}
