// Command strategies is the strategy benchmark (`make bench`): it replays a capacity trace on a
// fresh local control plane per strategy (the field's recipes with the real kube-scheduler and
// descheduler, and spot-scheduler), computes the offline optimum, and writes a markdown table,
// CSVs and a PNG chart of pods per tier over time.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/spot-scheduler/spot-scheduler/bench/strategy"
	"github.com/spot-scheduler/spot-scheduler/bench/trace"
	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
)

func main() {
	var (
		traceName   = flag.String("trace", "default", "Trace: a built-in name (default, smoke) or a YAML file.")
		autoscaler  = flag.String("autoscaler", strategy.KarpenterAutoscaler, "Who adds and removes nodes: karpenter (the real Karpenter, kwok provider: NodePools per trace pool) or scripted (the runner creates and deletes the trace's nodes).")
		strategies  = flag.String("strategies", "", "Comma-separated strategies to run (default: every strategy of the autoscaler: "+strings.Join(strategy.Strategies(strategy.KarpenterAutoscaler), ",")+"; scripted has no karpenter).")
		karpenter   = flag.String("karpenter-dir", "", "Karpenter's build (default: $SPOT_SCHEDULER_KARPENTER_DIR or hack/build-karpenter.sh).")
		out         = flag.String("out", "", "Directory of the reports (default: bench/results for karpenter, bench/results/scripted for scripted).")
		logs        = flag.String("logs", "", "Keep every component's log under this directory (default: only on failure).")
		binDir      = flag.String("bin-dir", "", "Control-plane binaries (default: $SPOT_SCHEDULER_BIN_DIR or hack/build-control-plane.sh).")
		scheduler   = flag.String("scheduler", "bin/spot-scheduler", "spot-scheduler binary.")
		rebalancer  = flag.String("rebalancer", "bin/spot-rebalancer", "spot-rebalancer binary.")
		config      = flag.String("scheduler-config", "manifests/scheduler-config.yaml", "spot-scheduler's KubeSchedulerConfiguration.")
		descheduler = flag.String("descheduler", "", "descheduler binary (default: built or reused by hack/build-descheduler.sh).")
		interval    = flag.Duration("interval", 10*time.Second, "Loop interval of the descheduler and of the rebalancer.")
	)
	flag.Parse()
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *out == "" {
		*out = "bench/results"
		if *autoscaler == strategy.Scripted {
			*out = "bench/results/scripted"
		}
	}
	names := strategy.Strategies(*autoscaler)
	if *strategies != "" {
		names = strings.Split(*strategies, ",")
	}
	if *autoscaler != strategy.Scripted && *autoscaler != strategy.KarpenterAutoscaler {
		fmt.Fprintf(os.Stderr, "bench: --autoscaler=%q is not one of %v\n", *autoscaler, strategy.Autoscalers)
		os.Exit(2)
	}
	if err := run(ctx, *traceName, names, *autoscaler, *karpenter, *out, *logs, *binDir, *scheduler, *rebalancer, *config, *descheduler, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, traceName string, names []string, autoscaler, karpenterDir, out, logs, binDir, scheduler, rebalancer, config, descheduler string, interval time.Duration) error {
	tr, err := trace.Load(traceName)
	if err != nil {
		return err
	}
	for _, s := range names {
		if strategy.UsesDescheduler(s) && descheduler == "" {
			cmd := exec.CommandContext(ctx, "bash", "hack/build-descheduler.sh")
			cmd.Stderr = os.Stderr
			b, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("building the descheduler: %w", err)
			}
			descheduler = strings.TrimSpace(string(b))
		}
	}
	abs := func(p string) string {
		if p == "" {
			return ""
		}
		a, _ := filepath.Abs(p)
		return a
	}
	opts := strategy.Options{
		Trace: tr, BinDir: binDir, SchedulerBinary: abs(scheduler), RebalancerBinary: abs(rebalancer), SchedulerConfig: abs(config),
		DeschedulerBinary: abs(descheduler), LoopInterval: interval, LogDir: logs, Out: os.Stdout,
		Autoscaler: autoscaler, KarpenterDir: karpenterDir,
	}
	if autoscaler == strategy.KarpenterAutoscaler {
		dir, err := localcluster.ResolveKarpenterDir(karpenterDir)
		if err != nil {
			return err
		}
		opts.KarpenterDir = dir
	}
	began := time.Now()
	var runs []*strategy.Run
	for _, s := range names {
		r, err := strategy.Execute(ctx, s, opts)
		if err != nil {
			return err
		}
		fmt.Printf("[%s] finished in %s\n", s, r.Wall.Round(time.Second))
		runs = append(runs, r)
	}
	all, ms := strategy.Results(tr, runs, 1)
	header := fmt.Sprintf("Trace `%s` (%.0f s of replay, 1 s = %.0f s modelled), autoscaler %s, loop interval %s, %s, %d CPUs, %s/%s, %s. Whole benchmark: %s.\n\n",
		tr.Name, tr.Duration, tr.ModelSecondsPerSecond, autoscaler, interval, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		time.Since(began).Round(time.Second))
	if err := strategy.WriteReports(out, tr, all, ms, header); err != nil {
		return err
	}
	b, _ := os.ReadFile(filepath.Join(out, "results.md"))
	fmt.Printf("\n%s\nreports in %s (results.md, summary.csv, timeseries.csv, pods-per-tier.png)\n", b, out)
	return nil
}
