package framework

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// RebalancerBinaryEnv names the environment variable holding a prebuilt rebalancer binary.
const RebalancerBinaryEnv = "SPOT_SCHEDULER_REBALANCER_BINARY"

// RebalancerBinary returns the spot-rebalancer binary: $SPOT_SCHEDULER_REBALANCER_BINARY, else
// one built from ./cmd/rebalancer once per process.
func RebalancerBinary(t testing.TB) string {
	return GoBinary(t, "./cmd/rebalancer", RebalancerBinaryEnv)
}

// StartRebalancer runs the spot-rebalancer binary (rebalancer and deletion-cost controller) on
// the shipped scheduler configuration, serving on a loopback port, with args after the
// defaults (production settings unless args change them). It waits until some instance holds
// the rebalancers' Lease and this one serves /metrics to the admin, and returns the process
// and its base URL (https://127.0.0.1:port). It stops when the test ends.
func (e *Env) StartRebalancer(name string, args ...string) (*localcluster.Process, string) {
	e.T.Helper()
	port := FreePort(e.T)
	all := append([]string{
		"--kubeconfig=" + e.Kubeconfig,
		"--scheduler-config=" + RepoFile(e.T, "manifests/scheduler-config.yaml"),
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--v=2",
	}, args...)
	p := e.startLeader(name, RebalancerBinary(e.T), wellknown.RebalancerLeaseName, all...)
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	admin := e.AdminHTTPS(base)
	// The client CA comes from kube-system/extension-apiserver-authentication, loaded
	// asynchronously: until then a client certificate counts as anonymous.
	e.WaitFor(name+" serves /metrics to the admin", 30*time.Second, func(context.Context) (bool, error) {
		resp, err := admin.Get(base + "/metrics")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return p, base
}

// AdminHTTPS returns an HTTPS client for a component's secure port at base that presents the
// admin's client certificate (system:masters). The components' serving certificates are
// self-signed, so the server is not verified.
func (e *Env) AdminHTTPS(base string) *http.Client {
	e.T.Helper()
	cfg := rest.CopyConfig(e.Config)
	cfg.Host = base
	cfg.TLSClientConfig.CAData, cfg.TLSClientConfig.CAFile, cfg.TLSClientConfig.Insecure = nil, "", true
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		e.T.Fatal(err)
	}
	client.Timeout = 10 * time.Second
	return client
}

// ScrapeMetric sums the samples of a metric whose line starts with prefix (name and labels).
func ScrapeMetric(t testing.TB, client *http.Client, url, prefix string) float64 {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		total += v
	}
	return total
}
