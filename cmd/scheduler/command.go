package main

import (
	"sort"

	"github.com/spf13/cobra"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/spot-scheduler/spot-scheduler/pkg/explain"
	"github.com/spot-scheduler/spot-scheduler/pkg/plugins"
	"github.com/spot-scheduler/spot-scheduler/pkg/version"
)

// RegistryOptions registers every out-of-tree plugin with the kube-scheduler command.
func RegistryOptions() []app.Option {
	registry := plugins.OutOfTree()
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	sort.Strings(names)
	opts := make([]app.Option, 0, len(names))
	for _, name := range names {
		opts = append(opts, app.WithPlugin(name, registry[name]))
	}
	return opts
}

// NewCommand is the kube-scheduler command carrying spot-scheduler's plugins.
func NewCommand() *cobra.Command {
	cmd := app.NewSchedulerCommand(RegistryOptions()...)
	cmd.Use = "spot-scheduler"
	cmd.Short = "spot-scheduler: a kube-scheduler that keeps pods on the cheapest safe capacity"
	cmd.Long = cmd.Short + " (version " + version.Version + "). It accepts every kube-scheduler flag; " +
		"give it a KubeSchedulerConfiguration with a profile enabling SpotScore. " +
		"`spot-scheduler explain` evaluates pods against a live cluster with the same profile."
	cmd.AddCommand(explain.NewCommand())
	return cmd
}

// NewKubectlPlugin is the command run as `kubectl spot` (the binary installed as kubectl-spot).
func NewKubectlPlugin() *cobra.Command {
	cmd := &cobra.Command{Use: "kubectl spot", Short: "spot-scheduler's kubectl plugin", SilenceUsage: true}
	cmd.AddCommand(explain.NewCommand())
	return cmd
}
