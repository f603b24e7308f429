package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/spot-scheduler/spot-scheduler/pkg/rebalance"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

// rebalanceFlags configure the failback rebalancer (pkg/rebalance).
type rebalanceFlags struct {
	enabled bool
	opts    rebalance.ControllerOptions
}

func (r *rebalanceFlags) addFlags(fs *pflag.FlagSet) {
	r.opts = rebalance.DefaultControllerOptions()
	fs.BoolVar(&r.enabled, "rebalance", true, "Run the failback rebalancer (moves pods to better capacity tiers).")
	fs.BoolVar(&r.opts.DryRun, "dry-run", false, "Rebalancer: print each pass's plan and make no mutating call (no eviction, no event).")
	fs.DurationVar(&r.opts.Interval, "rebalance-interval", r.opts.Interval, "Rebalancer: time between periodic passes.")
	fs.DurationVar(&r.opts.Debounce, "rebalance-debounce", r.opts.Debounce, "Rebalancer: delay of the early pass after room appears on a better tier.")
	fs.DurationVar(&r.opts.ValidationDelay, "rebalance-validation-delay", r.opts.ValidationDelay, "Rebalancer: the plan is made again after this delay on fresh state; only moves found both times happen.")
	fs.DurationVar(&r.opts.MinPodAge, "min-pod-age", r.opts.MinPodAge, "Rebalancer: pods younger than this are not moved.")
	fs.BoolVar(&r.opts.AllowLocalStorage, "allow-local-storage", false, "Rebalancer: also move pods with emptyDir (on disk) or hostPath volumes (their data is lost).")
	fs.IntVar(&r.opts.MaxEvictionsPerPass, "max-evictions-per-pass", r.opts.MaxEvictionsPerPass, "Rebalancer: most evictions in one pass.")
	fs.IntVar(&r.opts.MaxEvictionsPerNode, "max-evictions-per-node", r.opts.MaxEvictionsPerNode, "Rebalancer: most evictions from one node in one pass.")
	fs.IntVar(&r.opts.MaxEvictionsPerWorkload, "max-evictions-per-workload", r.opts.MaxEvictionsPerWorkload, "Rebalancer: most evictions of one workload's pods in one pass.")
}

func (r *rebalanceFlags) validate() []error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s: must be > 0, got %s", name, d))
		}
	}
	nonNegative := func(name string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("--%s: must be >= 0, got %s", name, d))
		}
	}
	positive("rebalance-interval", r.opts.Interval)
	nonNegative("rebalance-debounce", r.opts.Debounce)
	nonNegative("rebalance-validation-delay", r.opts.ValidationDelay)
	nonNegative("min-pod-age", r.opts.MinPodAge)
	for _, c := range []struct {
		name  string
		value int
	}{
		{"max-evictions-per-pass", r.opts.MaxEvictionsPerPass},
		{"max-evictions-per-node", r.opts.MaxEvictionsPerNode},
		{"max-evictions-per-workload", r.opts.MaxEvictionsPerWorkload},
	} {
		if c.value < 1 {
			errs = append(errs, fmt.Errorf("--%s: must be >= 1, got %d", c.name, c.value))
		}
	}
	return errs
}

// run builds the scheduler's profile from the same configuration file and runs the rebalancer
// until ctx ends.
func (r *rebalanceFlags) run(ctx context.Context, configFile, profileName string, client kubernetes.Interface) error {
	if !r.enabled {
		<-ctx.Done()
		return nil
	}
	logger := klog.FromContext(ctx)
	factory := informers.NewSharedInformerFactory(client, 0)
	profile, err := simulator.Load(ctx, configFile, profileName, client, factory)
	if err != nil {
		return err
	}
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, "spot-scheduler-rebalancer")
	opts := r.opts
	opts.PlanOutput = os.Stdout
	ctrl, err := rebalance.NewController(profile, client, factory, recorder, opts, clock.RealClock{})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	logger.Info("Rebalancer running", "interval", opts.Interval, "dryRun", opts.DryRun, "minPodAge", opts.MinPodAge,
		"maxEvictionsPerPass", opts.MaxEvictionsPerPass, "placeholdersAreRoom", profile.IsPlaceholder != nil)
	ctrl.Run(ctx)
	if ctx.Err() == nil {
		return errors.New("rebalancer stopped")
	}
	return nil
}
