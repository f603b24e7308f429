// Command demo plays spot-scheduler's story on a local control plane: `make demo`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spot-scheduler/spot-scheduler/internal/demo"
)

func main() {
	opts := demo.Options{Out: os.Stdout}
	flag.StringVar(&opts.SchedulerBinary, "scheduler", "bin/spot-scheduler", "spot-scheduler binary")
	flag.StringVar(&opts.RebalancerBinary, "rebalancer", "bin/spot-rebalancer", "rebalancer binary")
	flag.StringVar(&opts.SchedulerConfig, "scheduler-config", "manifests/scheduler-config.yaml", "KubeSchedulerConfiguration")
	flag.StringVar(&opts.BinDir, "bin-dir", "", "control-plane binaries (default: $SPOT_SCHEDULER_BIN_DIR or hack/build-control-plane.sh)")
	flag.BoolVar(&opts.Keep, "keep", os.Getenv("KEEP") == "1", "leave the cluster running at the end (or KEEP=1)")
	karpenter := flag.Bool("karpenter", false, "play failover and failback with Karpenter (kwok provider) adding and removing the nodes")
	karpenterDir := flag.String("karpenter-dir", "", "Karpenter's build (default: $SPOT_SCHEDULER_KARPENTER_DIR or hack/build-karpenter.sh)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *karpenter {
		_, err = demo.RunKarpenter(ctx, opts, *karpenterDir)
	} else {
		_, err = demo.Run(ctx, opts)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}
