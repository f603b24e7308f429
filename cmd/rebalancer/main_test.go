package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
)

// TestStartupRejectsBadInput: every bad flag or configuration fails at start-up, before any
// API call, with a message naming the flag or field.
func TestStartupRejectsBadInput(t *testing.T) {
	shipped := filepath.Join("..", "..", "manifests", "scheduler-config.yaml")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: spot-scheduler
  plugins:
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]
  pluginConfig:
  - name: SpotScore
    args: {defaultTier: nowhere}
`)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	writeFile(t, kubeconfig, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`)
	cases := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"no scheduler config", nil, 1, []string{"--scheduler-config: required"}},
		{"zero qps", []string{"--scheduler-config=" + shipped, "--deletion-cost-qps=0"}, 1, []string{"--deletion-cost-qps: must be > 0"}},
		{"zero burst", []string{"--scheduler-config=" + shipped, "--deletion-cost-burst=0"}, 1, []string{"--deletion-cost-burst"}},
		{"bad workers", []string{"--scheduler-config=" + shipped, "--deletion-cost-workers=0"}, 1, []string{"--deletion-cost-workers"}},
		{"bad buffer bound", []string{"--scheduler-config=" + shipped, "--failback-buffer-max-pods=0"}, 1, []string{"--failback-buffer-max-pods: must be 1 to 10000, got 0"}},
		{"bad buffer namespace", []string{"--scheduler-config=" + shipped, "--failback-buffer-namespace=Spot_System"}, 1, []string{"--failback-buffer-namespace", `"Spot_System"`}},
		{"bad buffer flag", []string{"--scheduler-config=" + shipped, "--failback-buffer=sometimes"}, 2, []string{"--failback-buffer"}},
		{"bind address with a port", []string{"--scheduler-config=" + shipped, "--bind-address=127.0.0.1:8081"}, 2, []string{"--bind-address"}},
		{"bad secure port", []string{"--scheduler-config=" + shipped, "--secure-port=70000"}, 1, []string{"--secure-port"}},
		{"negative secure port", []string{"--scheduler-config=" + shipped, "--secure-port=-1"}, 1, []string{"--secure-port"}},
		{"cert without key", []string{"--scheduler-config=" + shipped, "--kubeconfig=" + kubeconfig, "--bind-address=127.0.0.1", "--secure-port=" + freePort(t), "--tls-cert-file=/nonexistent/tls.crt"}, 1, []string{"--tls-private-key-file"}},
		{"missing cert file", []string{"--scheduler-config=" + shipped, "--kubeconfig=" + kubeconfig, "--bind-address=127.0.0.1", "--secure-port=" + freePort(t), "--tls-cert-file=/nonexistent/tls.crt", "--tls-private-key-file=/nonexistent/tls.key"}, 1, []string{"tls-cert-file", "/nonexistent/tls.crt"}},
		{"bad TLS version", []string{"--scheduler-config=" + shipped, "--kubeconfig=" + kubeconfig, "--bind-address=127.0.0.1", "--secure-port=" + freePort(t), "--tls-min-version=VersionTLS99"}, 1, []string{"--tls-min-version"}},
		{"bad authentication kubeconfig", []string{"--scheduler-config=" + shipped, "--kubeconfig=" + kubeconfig, "--bind-address=127.0.0.1", "--secure-port=" + freePort(t), "--authentication-kubeconfig=/nonexistent/authn"}, 1, []string{"/nonexistent/authn"}},
		{"bad lease timings", []string{"--scheduler-config=" + shipped, "--leader-elect-renew-deadline=20s"}, 1, []string{"--leader-elect-renew-deadline"}},
		{"kube-scheduler lease", []string{"--scheduler-config=" + shipped, "--leader-elect-resource-name=kube-scheduler"}, 1, []string{"--leader-elect-resource-name"}},
		{"the scheduler's lease", []string{"--scheduler-config=" + shipped, "--leader-elect-resource-name=spot-scheduler", "--leader-elect-resource-namespace=kube-system"}, 1, []string{"--leader-elect-resource-name", "scheduler's Lease"}},
		{"configmap lock", []string{"--scheduler-config=" + shipped, "--leader-elect-resource-lock=configmaps"}, 1, []string{"--leader-elect-resource-lock", "leases"}},
		{"missing config file", []string{"--scheduler-config=/nonexistent/config.yaml"}, 1, []string{"--scheduler-config", "/nonexistent/config.yaml"}},
		{"missing profile", []string{"--scheduler-config=" + shipped, "--profile=other"}, 1, []string{"--scheduler-config", `profile "other"`}},
		{"bad args", []string{"--scheduler-config=" + bad}, 1, []string{bad, `profile "spot-scheduler"`, "profiles[0].pluginConfig[0].args.defaultTier"}},
		{"bad kubeconfig", []string{"--scheduler-config=" + shipped, "--kubeconfig=/nonexistent/kubeconfig"}, 1, []string{"--kubeconfig"}},
		{"unknown flag", []string{"--qps=3"}, 2, []string{"unknown flag: --qps"}},
		{"bad flag value", []string{"--leader-elect=maybe"}, 2, []string{"--leader-elect"}},
		{"stray argument", []string{"--scheduler-config=" + shipped, "extra"}, 2, []string{"unexpected arguments"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(tc.args, &stderr, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, tc.wantCode, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), w)
				}
			}
		})
	}
}

// TestVersionOnStdout: --version prints the product's and Kubernetes' versions on stdout, so
// that $(spot-rebalancer --version) captures them.
func TestVersionOnStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d (stderr %s)", code, stderr.String())
	}
	if got := stdout.String(); !strings.HasPrefix(got, "spot-scheduler ") || !strings.Contains(got, "(built on Kubernetes ") || stderr.Len() != 0 {
		t.Fatalf("stdout %q, stderr %q: want the versions on stdout only", got, stderr.String())
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	port, err := localcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(port)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStartupProfileEnablement: spot-rebalancer accepts a profile exactly when kube-scheduler
// enables SpotScore at score in it (issue 28: a profile disabling every default plugin and
// enabling SpotScore with a few others made it exit), and refuses one that does not, before
// contacting any server, with a message naming the profile and SpotScore.
func TestStartupProfileEnablement(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	// Nothing listens there: an accepted profile gets as far as contacting the server.
	writeFile(t, kubeconfig, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`)
	const refused = `profile "spot-scheduler" does not enable SpotScore`
	cases := []struct {
		name, plugins string
		accepted      bool
	}{
		{"every default disabled, SpotScore with a few", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}, {name: PrioritySort}, {name: DefaultBinder}, {name: NodeResourcesFit}]
      disabled: [{name: "*"}]`, true},
		{"SpotScore disabled at score", `
    multiPoint:
      enabled: [{name: SpotScore, weight: 1000}]
    score:
      disabled: [{name: SpotScore}]`, false},
		{"every default disabled, no SpotScore", `
    multiPoint:
      enabled: [{name: PrioritySort}, {name: DefaultBinder}, {name: NodeResourcesFit}]
      disabled: [{name: "*"}]`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			config := filepath.Join(t.TempDir(), "config.yaml")
			writeFile(t, config, `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection: {leaderElect: false}
profiles:
- schedulerName: spot-scheduler
  plugins:`+tc.plugins+"\n")
			var stderr bytes.Buffer
			code := run([]string{"--scheduler-config=" + config, "--kubeconfig=" + kubeconfig, "--leader-elect=false", "--secure-port=0"}, &stderr, &stderr)
			out := stderr.String()
			if code != 1 {
				t.Fatalf("exit code %d, want 1 (stderr: %s)", code, out)
			}
			if got := strings.Contains(out, refused); got == tc.accepted {
				t.Errorf("accepted=%v, but stderr is %q", tc.accepted, out)
			}
			if tc.accepted && !strings.Contains(out, "127.0.0.1:1") {
				t.Errorf("stderr %q: want the failure to reach the server", out)
			}
		})
	}
}
