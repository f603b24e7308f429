// Command spot-scheduler is kube-scheduler with spot-scheduler's plugins (and those of
// sigs.k8s.io/scheduler-plugins) registered. It takes every kube-scheduler flag; run it with
// a KubeSchedulerConfiguration whose profile enables SpotScore (see manifests/). The command
// itself is in cmd/scheduler/app, importable (a main package is not), so that tests elsewhere
// can read its flags (cmd/rebalancer's TestDocsMatchCode).
package main

import (
	"os"
	"path/filepath"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric

	"github.com/spot-scheduler/spot-scheduler/cmd/scheduler/app"
)

func main() {
	if filepath.Base(os.Args[0]) == "kubectl-spot" {
		os.Exit(cli.Run(app.NewKubectlPlugin()))
	}
	os.Exit(cli.Run(app.NewCommand()))
}
