// Command day is the real-day benchmark (`make bench-day`, docs/benchmarks.md): every strategy
// runs the episode library in real time on its own local control plane with the real
// Karpenter, each run is saved under <out>/runs (runs accumulate over invocations), and days
// composed from every saved run are reported in <out>/summary.txt, results.md and PNGs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/spot-scheduler/spot-scheduler/bench/day"
	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
)

func main() {
	var (
		strategies  = flag.String("strategies", day.Karpenter+","+day.SpotScheduler, "Comma-separated strategies to run: "+strings.Join(day.AllStrategies, ", ")+" (none: only report the saved runs).")
		reps        = flag.Int("repetitions", 1, "Runs of each strategy in this invocation.")
		chains      = flag.String("chains", "2,karpenter=4", "Split each repetition's episodes into chains, each on its own cluster (whole reclaim/return and scale pairs, balanced by the episode times of earlier runs in --out): a count for every strategy, and strategy=count for one (Karpenter's returns run longest).")
		parallel    = flag.Int("parallel", 6, "Clusters run side by side.")
		stress      = flag.Bool("stress", false, "Also run the all-spot reclaim and its return.")
		only        = flag.String("episodes", "", "Comma-separated episodes to run instead of the library (and --stress): "+strings.Join(append(slices.Clone(day.Library), day.Stress...), ", ")+".")
		shapeName   = flag.String("shape", "default", "Cluster shape: default or smoke.")
		out         = flag.String("out", "bench/results/day", "Directory of the saved runs and the reports.")
		logs        = flag.String("logs", "", "Keep every component's log under this directory (default: only on failure).")
		binDir      = flag.String("bin-dir", "", "Control-plane binaries (default: $SPOT_SCHEDULER_BIN_DIR or hack/build-control-plane.sh).")
		karpenter   = flag.String("karpenter-dir", "", "Karpenter's build (default: $SPOT_SCHEDULER_KARPENTER_DIR or hack/build-karpenter.sh).")
		scheduler   = flag.String("scheduler", "bin/spot-scheduler", "spot-scheduler binary.")
		rebalancer  = flag.String("rebalancer", "bin/spot-rebalancer", "spot-rebalancer binary.")
		config      = flag.String("scheduler-config", "manifests/scheduler-config.yaml", "spot-scheduler's KubeSchedulerConfiguration (the chart's).")
		verbosity   = flag.Int("verbosity", 1, "Log level (--v) of the schedulers and spot-rebalancer; above 1 for diagnosis only (it costs them CPU).")
		descheduler = flag.String("descheduler", "", "descheduler binary for aks-recipe (default: hack/build-descheduler.sh).")
	)
	flag.Parse()
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *strategies, *reps, *chains, *parallel, *stress, *only, *shapeName, *out, *logs, *verbosity, *binDir, *karpenter, *scheduler, *rebalancer, *config, *descheduler); err != nil {
		fmt.Fprintln(os.Stderr, "bench-day:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, strategies string, reps int, chains string, parallel int, stress bool, only string, shapeName, out, logs string, verbosity int, binDir, karpenterDir, scheduler, rebalancer, config, descheduler string) error {
	began := time.Now()
	var shape *day.Shape
	switch shapeName {
	case "default":
		shape = day.Default()
	case "smoke":
		shape = day.Smoke()
	default:
		return fmt.Errorf("--shape=%q is not one of default, smoke", shapeName)
	}
	if reps < 1 || parallel < 1 {
		return fmt.Errorf("--repetitions and --parallel must be at least 1")
	}
	if verbosity < 1 || verbosity > 10 {
		return fmt.Errorf("--verbosity=%d: want 1 to 10", verbosity)
	}
	var names []string
	if strategies != "" {
		names = strings.Split(strategies, ",")
	}
	for _, s := range names {
		if err := day.ValidStrategy(s); err != nil {
			return fmt.Errorf("--strategies: %w", err)
		}
	}
	chainsOf, err := parseChains(chains)
	if err != nil {
		return err
	}
	episodes := slices.Clone(day.Library)
	if stress {
		episodes = append(episodes, day.Stress...)
	}
	if only != "" {
		known := append(slices.Clone(day.Library), day.Stress...)
		episodes = strings.Split(only, ",")
		for _, e := range episodes {
			if !slices.Contains(known, e) {
				return fmt.Errorf("--episodes: %q is not one of %s", e, strings.Join(known, ", "))
			}
		}
	}
	if slices.Contains(names, day.AKSRecipe) && descheduler == "" {
		b, err := exec.CommandContext(ctx, "bash", "hack/build-descheduler.sh").Output()
		if err != nil {
			return fmt.Errorf("building the descheduler: %w", err)
		}
		descheduler = strings.TrimSpace(string(b))
	}
	if binDir, err = localcluster.ResolveBinDir(binDir); err != nil {
		return err
	}
	if karpenterDir, err = localcluster.ResolveKarpenterDir(karpenterDir); err != nil {
		return err
	}
	for _, p := range []*string{&scheduler, &rebalancer, &config} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	type job struct {
		strategy string
		rep      int
		chain    int
		episodes []string
	}
	invocation := began.UTC().Format("20060102T150405")
	// Earlier runs tell what each episode costs, so the chains come out even.
	earlier, err := day.LoadRuns(out, shape.Name)
	if err != nil {
		return err
	}
	var jobs []job
	for r := 1; r <= reps; r++ {
		for _, s := range names {
			for c, eps := range day.Chains(episodes, chainsOf(s), day.EpisodeCosts(shape, earlier)) {
				jobs = append(jobs, job{s, r, c, eps})
			}
		}
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := day.Execute(ctx, j.strategy, day.Options{Shape: shape, Episodes: j.episodes, BinDir: binDir, KarpenterDir: karpenterDir,
				SchedulerBinary: scheduler, RebalancerBinary: rebalancer, SchedulerConfig: config, DeschedulerBinary: descheduler,
				LogDir: logs, Verbosity: verbosity, Repetition: j.rep, Invocation: invocation, Chain: j.chain, Out: os.Stdout})
			if err == nil {
				if cerr := r.CheckAccounting(); cerr != nil {
					fmt.Fprintln(os.Stderr, "bench-day: accounting:", cerr)
				}
				var path string
				if path, err = day.SaveRun(out, r); err == nil {
					fmt.Printf("[%s r%d.%d] saved %s (%.0f min)\n", j.strategy, j.rep, j.chain, path, r.Wall/60)
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s r%d.%d: %w", j.strategy, j.rep, j.chain, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, "bench-day:", err)
	}
	runs, err := day.LoadRuns(out, shape.Name)
	if err != nil {
		return err
	}
	rep := day.Summarize(shape, runs)
	if err := rep.WriteReports(out, day.Header(shape, filepath.Base(karpenterDir), time.Since(began))); err != nil {
		return err
	}
	for _, l := range rep.SummaryLines() {
		fmt.Println(l)
	}
	fmt.Printf("bench-day: %d runs of shape %s reported in %s (this invocation: %s)\n", len(runs), shape.Name, out, time.Since(began).Round(time.Second))
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d runs failed", len(errs), len(jobs))
	}
	return nil
}

// parseChains reads --chains: a count for every strategy and strategy=count for one.
func parseChains(v string) (func(strategy string) int, error) {
	all, per := 1, map[string]int{}
	for _, part := range strings.Split(v, ",") {
		name, count, named := strings.Cut(strings.TrimSpace(part), "=")
		if !named {
			count, name = name, ""
		}
		n, err := strconv.Atoi(count)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--chains: %q: want a count of at least 1, or strategy=count (strategies: %s)", part, strings.Join(day.AllStrategies, ", "))
		}
		if !named {
			all = n
			continue
		}
		if err := day.ValidStrategy(name); err != nil {
			return nil, fmt.Errorf("--chains: %w", err)
		}
		per[name] = n
	}
	return func(strategy string) int {
		if n, ok := per[strategy]; ok {
			return n
		}
		return all
	}, nil
}
