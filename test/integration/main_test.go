// Package integration proves spot-scheduler's promises against a real control plane:
// kube-apiserver and etcd (and kube-controller-manager where workloads need it) built from
// the pinned Kubernetes modules, kwok making nodes Ready and bound pods Running, and the
// spot-scheduler binary itself. Nothing here mocks the API server.
package integration

import (
	"flag"
	"os"
	"testing"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

func TestMain(m *testing.M) {
	flag.Parse()
	// envtest logs through controller-runtime; without a logger it prints a stack trace after 30s.
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false)))
	os.Exit(m.Run())
}
