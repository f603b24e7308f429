// Package app is spot-scheduler's command: kube-scheduler's, with spot-scheduler's plugins
// registered and the explain and report subcommands (cmd/scheduler runs it).
package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/cli/globalflag"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/term"
	k8sversion "k8s.io/component-base/version"
	"k8s.io/component-base/version/verflag"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"sigs.k8s.io/yaml"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/compat"
	"github.com/spot-scheduler/spot-scheduler/pkg/explain"
	"github.com/spot-scheduler/spot-scheduler/pkg/plugins"
	"github.com/spot-scheduler/spot-scheduler/pkg/preempt"
	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
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

// NewCommand is kube-scheduler's command, with its options, flags and help, carrying
// spot-scheduler's plugins. It is assembled from kube-scheduler's exported pieces (options,
// app.Setup, app.Run) rather than app.NewSchedulerCommand because three steps must run between
// parsing and Setup: --version prints the product's version; --kubeconfig is honoured together
// with --config (kube-scheduler ignores it then and falls back to the in-cluster configuration);
// and the scheduler framework is fitted to what the API server serves (pkg/compat) before
// scheduler.New starts informers. After Setup it reports informers that do not sync.
func NewCommand() *cobra.Command {
	opts := options.NewOptions()
	cmd := &cobra.Command{
		Use:   "spot-scheduler",
		Short: "spot-scheduler: a kube-scheduler that keeps pods on the cheapest safe capacity",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			// Feature gates from --feature-gates, before RunE (as kube-scheduler does).
			return opts.ComponentGlobalsRegistry.Set()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runScheduler(cmd, opts)
		},
		Args: func(cmd *cobra.Command, args []string) error {
			for _, arg := range args {
				if len(arg) > 0 {
					return fmt.Errorf("%q does not take any arguments, got %q", cmd.CommandPath(), args)
				}
			}
			return nil
		},
		SilenceUsage: true,
	}
	cmd.Long = cmd.Short + " (version " + version.Version + "). It accepts every kube-scheduler flag; " +
		"give it a KubeSchedulerConfiguration with a profile enabling SpotScore. " +
		"`spot-scheduler explain` evaluates pods against a live cluster with the same profile; " +
		"`spot-scheduler report` shows what the pods cost and save."
	nfs := opts.Flags
	verflag.AddFlags(nfs.FlagSet("global"))
	globalflag.AddGlobalFlags(nfs.FlagSet("global"), cmd.Name(), logs.SkipLoggingConfigurationFlags())
	if f := nfs.FlagSet("deprecated").Lookup("kubeconfig"); f != nil {
		// Honoured with --config too (see kubeconfigWithConfig).
		f.Usage = "Path to a kubeconfig file; with --config it overrides the file's clientConnection.kubeconfig."
		f.Deprecated = ""
	}
	fs := cmd.Flags()
	for _, f := range nfs.FlagSets {
		fs.AddFlagSet(f)
	}
	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cliflag.SetUsageAndHelpFunc(cmd, *nfs, cols)
	cmd.AddCommand(explain.NewCommand(), explain.NewReportCommand())
	return cmd
}

// runScheduler is kube-scheduler's run sequence (logging, Setup, Run) with spot-scheduler's
// steps in between.
func runScheduler(cmd *cobra.Command, opts *options.Options) error {
	if v := cmd.Flags().Lookup("version"); v != nil && v.Value.String() == "true" {
		fmt.Fprintln(cmd.OutOrStdout(), version.String())
		return nil
	}
	verflag.PrintAndExitIfRequested() // --version=raw
	fg := opts.ComponentGlobalsRegistry.FeatureGateFor(basecompatibility.DefaultKubeComponent)
	if err := logsapi.ValidateAndApply(opts.Logs, fg); err != nil {
		return err
	}
	cliflag.PrintFlags(cmd.Flags())
	ctx := server.SetupSignalContext()
	logger := klog.FromContext(ctx)
	logger.Info("Starting spot-scheduler", "version", version.Version, "kubernetes", k8sversion.Get().GitVersion)

	// The file is read here once to check spot-scheduler's plugin args and find the kubeconfig,
	// and once more by Setup: Setup resets opts.ComponentConfig and loads --config itself.
	cfg, err := loadConfigFile(ctx, opts)
	if err != nil {
		return err
	}
	cleanup, err := kubeconfigWithConfig(cmd.Flags(), opts)
	if err != nil {
		return err
	}
	defer cleanup()
	// The kubeconfig Setup will use: --kubeconfig, else the file's (see kubeconfigWithConfig).
	kubeconfig := opts.Deprecated.Kubeconfig
	if cfg != nil && !cmd.Flags().Changed("kubeconfig") {
		kubeconfig = cfg.ClientConnection.Kubeconfig
	}
	if err := adaptToServer(ctx, opts.Master, kubeconfig); err != nil {
		return err
	}
	cc, sched, err := app.Setup(ctx, opts, RegistryOptions()...)
	if err != nil {
		return err
	}
	cleanup()
	fg.(featuregate.MutableFeatureGate).AddMetrics()
	opts.ComponentGlobalsRegistry.AddMetrics()
	go reportUnsyncedInformers(ctx, cc.InformerFactory, cc.DynInformerFactory, unsyncedReportAfter, unsyncedReportEvery)
	return app.Run(ctx, cc, sched)
}

// kubeconfigWithConfig honours --kubeconfig together with --config. kube-scheduler reads the
// kubeconfig from the file's clientConnection.kubeconfig only and ignores the flag; a user
// following the usual `--config X --kubeconfig ~/.kube/config` then gets the in-cluster
// configuration, or "no configuration has been provided" outside a cluster. When both are
// given (and the file has passed loadConfigFile, so its errors name it), a copy with the flag's
// kubeconfig is written to a private directory and used in its place. The returned function
// removes the copy; Setup has read it by then.
func kubeconfigWithConfig(flags *pflag.FlagSet, opts *options.Options) (func(), error) {
	noop := func() {}
	if opts.ConfigFile == "" || !flags.Changed("kubeconfig") {
		return noop, nil
	}
	kubeconfig := opts.Deprecated.Kubeconfig
	data, err := os.ReadFile(opts.ConfigFile)
	if err != nil {
		return noop, err
	}
	var doc map[string]interface{}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return noop, fmt.Errorf("--config %s: %w", opts.ConfigFile, err)
	}
	conn, _ := doc["clientConnection"].(map[string]interface{})
	if conn == nil {
		conn = map[string]interface{}{}
	}
	conn["kubeconfig"] = kubeconfig
	doc["clientConnection"] = conn
	out, err := yaml.Marshal(doc)
	if err != nil {
		return noop, err
	}
	dir, err := os.MkdirTemp("", "spot-scheduler-config-")
	if err != nil {
		return noop, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	file := filepath.Join(dir, filepath.Base(opts.ConfigFile))
	if err := os.WriteFile(file, out, 0o600); err != nil {
		cleanup()
		return noop, err
	}
	klog.Background().V(2).Info("Using --kubeconfig with --config", "kubeconfig", kubeconfig, "config", opts.ConfigFile)
	opts.ConfigFile = file
	return cleanup, nil
}

// loadConfigFile reads --config with kube-scheduler's loader and checks the args of
// spot-scheduler's plugins, so that a bad file fails here, naming the field, before any server
// is asked anything (Setup decodes them too, but only after the server answered). It returns
// nil without --config.
func loadConfigFile(ctx context.Context, opts *options.Options) (*config.KubeSchedulerConfiguration, error) {
	if opts.ConfigFile == "" {
		return nil, nil
	}
	cfg, err := options.LoadConfigFromFile(klog.FromContext(ctx), opts.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", opts.ConfigFile, err)
	}
	if err := checkPluginArgs(ctx, cfg); err != nil {
		return nil, fmt.Errorf("--config %s: %w", opts.ConfigFile, err)
	}
	return cfg, nil
}

// adaptToServer connects as the scheduler will and fits its framework to the API server
// (pkg/compat): features whose APIs the server does not serve are turned off before
// scheduler.New would start informers that never sync.
func adaptToServer(ctx context.Context, master, kubeconfig string) error {
	restConfig, err := clientcmd.BuildConfigFromFlags(master, kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %q: %w", kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	return compat.Adapt(ctx, client.Discovery(), klog.FromContext(ctx))
}

// NewKubectlPlugin is the command run as `kubectl spot` (the binary installed as kubectl-spot).
func NewKubectlPlugin() *cobra.Command {
	cmd := &cobra.Command{Use: "kubectl spot", Short: "spot-scheduler's kubectl plugin", SilenceUsage: true}
	cmd.AddCommand(explain.NewCommand(), explain.NewReportCommand())
	return cmd
}

// checkPluginArgs decodes and validates the args of spot-scheduler's own plugins in every
// profile, through the same functions their factories use.
func checkPluginArgs(ctx context.Context, cfg *config.KubeSchedulerConfiguration) error {
	for _, profile := range cfg.Profiles {
		for _, pc := range profile.PluginConfig {
			var err error
			switch pc.Name {
			case spotscore.Name:
				_, err = spotscore.New(ctx, pc.Args, nil)
			case preempt.Name:
				_, err = v1alpha1.DecodePlaceholderPreemptionArgs(pc.Args, field.NewPath("pluginConfig").Key(preempt.Name).Child("args"))
			}
			if err != nil {
				return fmt.Errorf("profile %q: %w", profile.SchedulerName, err)
			}
		}
	}
	return nil
}
