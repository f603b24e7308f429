// Command spot-scheduler is kube-scheduler with spot-scheduler's plugins (and those of
// sigs.k8s.io/scheduler-plugins) registered. It takes every kube-scheduler flag; run it with
// a KubeSchedulerConfiguration whose profile enables SpotScore (see manifests/).
package main

import (
	"os"
	"path/filepath"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
)

func main() {
	if filepath.Base(os.Args[0]) == "kubectl-spot" {
		os.Exit(cli.Run(NewKubectlPlugin()))
	}
	os.Exit(cli.Run(NewCommand()))
}
