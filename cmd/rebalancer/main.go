// Command rebalancer runs spot-scheduler's controllers next to the scheduler: today the
// deletion-cost controller (scale-down bias, pkg/deletioncost); the failback rebalancer will
// join it. It reads the scheduler's own KubeSchedulerConfiguration (--scheduler-config,
// --profile) so that tiers can never disagree, and runs under leader election on its own Lease
// (kube-system/spot-scheduler-controller by default, never the scheduler's).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	"k8s.io/klog/v2"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/compat"
	"github.com/spot-scheduler/spot-scheduler/pkg/deletioncost"
	"github.com/spot-scheduler/spot-scheduler/pkg/schedconfig"
	"github.com/spot-scheduler/spot-scheduler/pkg/version"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

type options struct {
	kubeconfig      string
	schedulerConfig string
	profile         string

	leaderElect   bool
	leaseNS       string
	leaseName     string
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration

	deletionCostQPS     float32
	deletionCostBurst   int
	deletionCostWorkers int

	serving     *servingOptions
	showVersion bool

	kubeAPIQPS   float32
	kubeAPIBurst int

	rebalance rebalanceFlags
}

func (o *options) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path of a kubeconfig; default: clientConnection.kubeconfig of --scheduler-config, else the in-cluster configuration.")
	fs.StringVar(&o.schedulerConfig, "scheduler-config", "", "Path of the scheduler's KubeSchedulerConfiguration (required): tiers, risk and pools come from its SpotScore args.")
	fs.StringVar(&o.profile, "profile", schedconfig.DefaultProfile, "Profile (schedulerName) of --scheduler-config whose pods are managed.")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "Run only while holding the Lease --leader-elect-namespace/--leader-elect-lease-name.")
	fs.StringVar(&o.leaseNS, "leader-elect-namespace", "kube-system", "Namespace of the leader-election Lease.")
	fs.StringVar(&o.leaseName, "leader-elect-lease-name", wellknown.ControllerLeaseName, "Name of the leader-election Lease (never the scheduler's).")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a non-leader waits after the last renewal before taking over.")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader retries renewing before giving up leadership.")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "Interval between leader-election attempts.")
	fs.Float32Var(&o.deletionCostQPS, "deletion-cost-qps", deletioncost.DefaultQPS, "Most pod deletion-cost writes per second (token bucket).")
	fs.IntVar(&o.deletionCostBurst, "deletion-cost-burst", deletioncost.DefaultBurst, "Burst of pod deletion-cost writes above --deletion-cost-qps.")
	fs.IntVar(&o.deletionCostWorkers, "deletion-cost-workers", 2, "Workloads reconciled in parallel by the deletion-cost controller.")
	o.serving = newServingOptions()
	o.serving.addFlags(fs)
	fs.BoolVar(&o.showVersion, "version", false, "Print the version and exit.")
	fs.Float32Var(&o.kubeAPIQPS, "kube-api-qps", 50, "Client-side limit of API requests per second (reads and writes of all controllers).")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", 100, "Burst of API requests above --kube-api-qps.")
	o.rebalance.addFlags(fs)
}

// validate checks the flags on their own; every error names its flag.
func (o *options) validate() error {
	var errs []error
	if o.schedulerConfig == "" {
		errs = append(errs, errors.New("--scheduler-config: required (the scheduler's KubeSchedulerConfiguration file)"))
	}
	if o.profile == "" {
		errs = append(errs, errors.New("--profile: must not be empty"))
	}
	if !(o.deletionCostQPS > 0) {
		errs = append(errs, fmt.Errorf("--deletion-cost-qps: must be > 0, got %v", o.deletionCostQPS))
	}
	if o.deletionCostBurst < 1 {
		errs = append(errs, fmt.Errorf("--deletion-cost-burst: must be >= 1, got %d", o.deletionCostBurst))
	}
	if o.deletionCostWorkers < 1 || o.deletionCostWorkers > 64 {
		errs = append(errs, fmt.Errorf("--deletion-cost-workers: must be in 1..64, got %d", o.deletionCostWorkers))
	}
	errs = append(errs, o.serving.validate()...)
	if o.leaderElect {
		if o.leaseNS == "" {
			errs = append(errs, errors.New("--leader-elect-namespace: must not be empty"))
		}
		if o.leaseName == "" {
			errs = append(errs, errors.New("--leader-elect-lease-name: must not be empty"))
		}
		if o.leaseName == "kube-scheduler" {
			errs = append(errs, errors.New("--leader-elect-lease-name: kube-scheduler is the default scheduler's Lease"))
		}
		if o.retryPeriod <= 0 || o.renewDeadline <= o.retryPeriod || o.leaseDuration <= o.renewDeadline {
			errs = append(errs, fmt.Errorf("--leader-elect-lease-duration, --leader-elect-renew-deadline, --leader-elect-retry-period: need lease duration (%s) > renew deadline (%s) > retry period (%s) > 0",
				o.leaseDuration, o.renewDeadline, o.retryPeriod))
		}
	}
	if !(o.kubeAPIQPS > 0) || o.kubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps, --kube-api-burst: must be > 0 and >= 1, got %v and %d", o.kubeAPIQPS, o.kubeAPIBurst))
	}
	errs = append(errs, o.rebalance.validate()...)
	return errors.Join(errs...)
}

func run(args []string, stderr io.Writer) int {
	o := &options{}
	fs := pflag.NewFlagSet("rebalancer", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o.addFlags(fs)
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "rebalancer: %v\n", err)
		return 2
	}
	defer klog.Flush()
	if o.showVersion {
		fmt.Fprintln(stderr, version.Version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rebalancer: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "rebalancer: invalid flags:\n%v\n", err)
		return 1
	}
	profile, err := schedconfig.Load(o.schedulerConfig, o.profile)
	if err != nil {
		fmt.Fprintf(stderr, "rebalancer: --scheduler-config: %v\n", err)
		return 1
	}
	if o.leaderElect && profile.SchedulerLeaderElect && o.leaseNS == profile.SchedulerLeaseNamespace && o.leaseName == profile.SchedulerLeaseName {
		fmt.Fprintf(stderr, "rebalancer: --leader-elect-lease-name: %s/%s is the scheduler's Lease (leaderElection of %s); use another\n", o.leaseNS, o.leaseName, o.schedulerConfig)
		return 1
	}
	model, err := capacity.New(profile.SpotScore.CapacityModel)
	if err != nil {
		fmt.Fprintf(stderr, "rebalancer: --scheduler-config: %s: profile %q: %v\n", o.schedulerConfig, o.profile, err)
		return 1
	}
	restConfig, err := clientConfig(o.kubeconfig, profile.Kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "rebalancer: %v\n", err)
		return 1
	}
	restConfig.UserAgent = "spot-scheduler-rebalancer/" + version.Version
	// client-go's default of 5 requests/s would pace evictions at one every few hundred ms.
	restConfig.QPS, restConfig.Burst = o.kubeAPIQPS, o.kubeAPIBurst
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		fmt.Fprintf(stderr, "rebalancer: --kubeconfig: %v\n", err)
		return 1
	}
	deletioncost.RegisterMetrics()
	ctrl, err := deletioncost.New(client, deletioncost.Options{
		SchedulerName: profile.Name,
		Model:         model,
		QPS:           o.deletionCostQPS,
		Burst:         o.deletionCostBurst,
	})
	if err != nil {
		fmt.Fprintf(stderr, "rebalancer: %v\n", err)
		return 1
	}

	signalCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := klog.Background()
	logger.Info("Starting", "version", version.Version, "schedulerConfig", o.schedulerConfig, "profile", profile.Name,
		"tiers", model.TierNames(), "leaderElect", o.leaderElect, "deletionCostQPS", o.deletionCostQPS)

	var healthz *leaderelection.HealthzAdaptor
	if o.leaderElect {
		healthz = leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
	}
	if o.serving.enabled() {
		kubeconfig := o.kubeconfig
		if kubeconfig == "" {
			kubeconfig = profile.Kubeconfig
		}
		stopServing := make(chan struct{})
		stopped, err := o.serving.start(kubeconfig, healthz, stopServing)
		if err != nil {
			fmt.Fprintf(stderr, "rebalancer: %v\n", err)
			return 1
		}
		defer func() {
			close(stopServing)
			select {
			case <-stopped:
			case <-time.After(10 * time.Second):
			}
		}()
	}

	if err := compat.Adapt(signalCtx, client.Discovery(), logger); err != nil {
		fmt.Fprintf(stderr, "rebalancer: %v\n", err)
		return 1
	}

	runControllers := func(ctx context.Context) error {
		// Both controllers run while this process leads; the first to fail stops the other.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errs := make(chan error, 2)
		go func() {
			errs <- o.rebalance.run(klog.NewContext(ctx, logger.WithName("rebalancer")), o.schedulerConfig, o.profile, client)
		}()
		go func() {
			errs <- ctrl.Run(klog.NewContext(ctx, logger.WithName("deletion-cost")), o.deletionCostWorkers)
		}()
		first := <-errs
		cancel()
		second := <-errs
		return errors.Join(first, second)
	}
	if !o.leaderElect {
		if err := runControllers(signalCtx); err != nil && signalCtx.Err() == nil {
			logger.Error(err, "Controllers failed")
			return 1
		}
		logger.Info("Stopped")
		return 0
	}
	return runLeaderElected(signalCtx, o, client, healthz, runControllers)
}

// runLeaderElected runs the controllers while holding the Lease. On SIGTERM the controllers
// stop first (in-flight writes finish), then the Lease is released so a standby takes over at
// once; the process exits 0. Losing the Lease otherwise exits 1.
func runLeaderElected(signalCtx context.Context, o *options, client kubernetes.Interface, healthz *leaderelection.HealthzAdaptor, runControllers func(context.Context) error) int {
	logger := klog.Background()
	hostname, _ := os.Hostname()
	identity := hostname + "_" + string(uuid.NewUUID())
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.leaseNS, Name: o.leaseName},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	leCtx, stopLE := context.WithCancel(context.Background())
	defer stopLE()
	runCtx, stopRun := context.WithCancel(signalCtx)
	defer stopRun()
	ctrlDone := make(chan struct{})
	started := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		<-signalCtx.Done()
		logger.Info("Terminating: stopping the controllers, then releasing the Lease")
		select {
		case <-started:
			select {
			case <-ctrlDone:
			case <-time.After(o.renewDeadline):
				logger.Info("Controllers did not stop in time; releasing the Lease anyway")
			}
		default:
		}
		stopLE()
	}()
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.leaseDuration,
		RenewDeadline:   o.renewDeadline,
		RetryPeriod:     o.retryPeriod,
		ReleaseOnCancel: true,
		Name:            o.leaseName,
		WatchDog:        healthz,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				logger.Info("Leading", "lease", o.leaseNS+"/"+o.leaseName, "identity", identity)
				close(started)
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				context.AfterFunc(runCtx, cancel)
				err := runControllers(ctx)
				close(ctrlDone)
				if err != nil && ctx.Err() == nil {
					failed <- err
					stopLE()
				}
			},
			OnStoppedLeading: func() {
				logger.Info("Stopped leading", "lease", o.leaseNS+"/"+o.leaseName, "identity", identity)
			},
			OnNewLeader: func(id string) {
				if id != identity {
					logger.Info("Another instance leads", "leader", id)
				}
			},
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "rebalancer: leader election: %v\n", err)
		return 1
	}
	le.Run(leCtx)
	select {
	case err := <-failed:
		logger.Error(err, "Controllers failed")
		return 1
	default:
	}
	if signalCtx.Err() != nil {
		logger.Info("Stopped; Lease released")
		return 0
	}
	logger.Error(nil, "Lost the Lease", "lease", o.leaseNS+"/"+o.leaseName)
	return 1
}

func clientConfig(flagPath, filePath string) (*rest.Config, error) {
	path, source := flagPath, "--kubeconfig"
	if path == "" {
		path, source = filePath, "--scheduler-config clientConnection.kubeconfig"
	}
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: not given, and no in-cluster configuration: %w", err)
	}
	return cfg, nil
}
