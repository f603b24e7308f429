//go:build tools

// Package hack pins the control-plane binaries the test harness builds (hack/build-control-plane.sh)
// to this module's graph, so they share its build cache and its exact Kubernetes versions.
package hack

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
