// Command rebalancer (spot-rebalancer) runs spot-scheduler's controllers next to the
// scheduler: the failback rebalancer (pkg/rebalance) and the deletion-cost controller
// (pkg/deletioncost). It loads the scheduler's own KubeSchedulerConfiguration
// (--scheduler-config, --profile) once, with kube-scheduler's loader, and builds one profile
// simulation whose capacity model both controllers use, over one informer factory, so tiers
// can never disagree. It runs under leader election on its own Lease (never the scheduler's),
// with kube-scheduler's flag names for leader election and secure serving.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	cliflag "k8s.io/component-base/cli/flag"
	componentbaseconfig "k8s.io/component-base/config"
	componentbaseoptions "k8s.io/component-base/config/options"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/utils/clock"

	"github.com/spot-scheduler/spot-scheduler/pkg/compat"
	"github.com/spot-scheduler/spot-scheduler/pkg/deletioncost"
	"github.com/spot-scheduler/spot-scheduler/pkg/rebalance"
	"github.com/spot-scheduler/spot-scheduler/pkg/reclaimhistory"
	"github.com/spot-scheduler/spot-scheduler/pkg/report"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
	"github.com/spot-scheduler/spot-scheduler/pkg/version"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	kubeconfig      string
	schedulerConfig string
	profile         string
	kubeAPIQPS      float32
	kubeAPIBurst    int
	showVersion     bool

	leaderElection componentbaseconfig.LeaderElectionConfiguration
	serving        *servingOptions
	rebalance      rebalanceFlags
	deletionCost   deletionCostFlags
}

func newOptions() *options {
	return &options{
		profile: wellknown.SchedulerName,
		// Karpenter's client defaults: a failback of a thousand pods makes four requests per
		// move (the pod and the target re-read, the eviction, its event) beside the
		// deletion-cost writes; at 50 requests/s it took over two minutes
		// (make bench-failback, docs/benchmarks.md).
		kubeAPIQPS:   200,
		kubeAPIBurst: 300,
		leaderElection: componentbaseconfig.LeaderElectionConfiguration{
			LeaderElect:       true,
			LeaseDuration:     metav1.Duration{Duration: 15 * time.Second},
			RenewDeadline:     metav1.Duration{Duration: 10 * time.Second},
			RetryPeriod:       metav1.Duration{Duration: 2 * time.Second},
			ResourceLock:      resourcelock.LeasesResourceLock,
			ResourceName:      wellknown.RebalancerLeaseName,
			ResourceNamespace: "kube-system",
		},
		serving: newServingOptions(),
	}
}

// flags returns the flags by section, as kube-scheduler prints them.
func (o *options) flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	fs := fss.FlagSet("misc")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path of a kubeconfig; default: clientConnection.kubeconfig of --scheduler-config, else the in-cluster configuration.")
	fs.StringVar(&o.schedulerConfig, "scheduler-config", "", "Path of the scheduler's KubeSchedulerConfiguration (required): tiers, risk and pools come from its SpotScore args.")
	fs.StringVar(&o.profile, "profile", o.profile, "Profile (schedulerName) of --scheduler-config whose pods are managed.")
	fs.Float32Var(&o.kubeAPIQPS, "kube-api-qps", o.kubeAPIQPS, "Client-side limit of API requests per second (reads and writes of all controllers).")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", o.kubeAPIBurst, "Burst of API requests above --kube-api-qps.")
	fs.BoolVar(&o.showVersion, "version", false, "Print the version on stdout and exit.")
	componentbaseoptions.BindLeaderElectionFlags(&o.leaderElection, fss.FlagSet("leader election"))
	o.serving.addFlags(&fss)
	o.rebalance.addFlags(fss.FlagSet("rebalancer"))
	o.deletionCost.addFlags(fss.FlagSet("deletion cost"))
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fss.FlagSet("logging").AddGoFlagSet(klogFlags)
	return fss
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
	errs = append(errs, o.deletionCost.validate()...)
	errs = append(errs, o.serving.validate()...)
	if le := o.leaderElection; le.LeaderElect {
		if le.ResourceNamespace == "" {
			errs = append(errs, errors.New("--leader-elect-resource-namespace: must not be empty"))
		}
		if le.ResourceName == "" {
			errs = append(errs, errors.New("--leader-elect-resource-name: must not be empty"))
		}
		if le.ResourceName == "kube-scheduler" {
			errs = append(errs, errors.New("--leader-elect-resource-name: kube-scheduler is the default scheduler's Lease"))
		}
		if le.ResourceLock != resourcelock.LeasesResourceLock {
			errs = append(errs, fmt.Errorf("--leader-elect-resource-lock: Unsupported value: %q: supported values: %q", le.ResourceLock, resourcelock.LeasesResourceLock))
		}
		if le.RetryPeriod.Duration <= 0 || le.RenewDeadline.Duration <= le.RetryPeriod.Duration || le.LeaseDuration.Duration <= le.RenewDeadline.Duration {
			errs = append(errs, fmt.Errorf("--leader-elect-lease-duration, --leader-elect-renew-deadline, --leader-elect-retry-period: need lease duration (%s) > renew deadline (%s) > retry period (%s) > 0",
				le.LeaseDuration.Duration, le.RenewDeadline.Duration, le.RetryPeriod.Duration))
		}
	}
	if !(o.kubeAPIQPS > 0) || o.kubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps, --kube-api-burst: must be > 0 and >= 1, got %v and %d", o.kubeAPIQPS, o.kubeAPIBurst))
	}
	errs = append(errs, o.rebalance.validate()...)
	return errors.Join(errs...)
}

func run(args []string, stdout, stderr io.Writer) int {
	o := newOptions()
	fss := o.flags()
	fs := pflag.NewFlagSet("spot-rebalancer", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, name := range fss.Order {
		fs.AddFlagSet(fss.FlagSets[name])
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: spot-rebalancer --scheduler-config FILE [flags]\n")
		cliflag.PrintSections(stderr, fss, 0)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "spot-rebalancer: %v\n", err)
		return 2
	}
	defer klog.Flush()
	if o.showVersion {
		fmt.Fprintln(stdout, version.String())
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "spot-rebalancer: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "spot-rebalancer: invalid flags:\n%v\n", err)
		return 1
	}
	logger := klog.Background()
	cfg, err := simulator.LoadConfig(logger, o.schedulerConfig)
	if err != nil {
		fmt.Fprintf(stderr, "spot-rebalancer: --scheduler-config: %v\n", err)
		return 1
	}
	profile, err := simulator.Profile(cfg, o.profile)
	if err != nil {
		fmt.Fprintf(stderr, "spot-rebalancer: --scheduler-config: %s: %v\n", o.schedulerConfig, err)
		return 1
	}
	// Bad SpotScore args fail here, before any server is contacted.
	if _, err := simulator.ModelOf(cfg, o.profile); err != nil {
		fmt.Fprintf(stderr, "spot-rebalancer: --scheduler-config: %s: %v\n", o.schedulerConfig, err)
		return 1
	}
	le := o.leaderElection
	if le.LeaderElect && cfg.LeaderElection.LeaderElect && le.ResourceNamespace == cfg.LeaderElection.ResourceNamespace && le.ResourceName == cfg.LeaderElection.ResourceName {
		fmt.Fprintf(stderr, "spot-rebalancer: --leader-elect-resource-name: %s/%s is the scheduler's Lease (leaderElection of %s); use another\n", le.ResourceNamespace, le.ResourceName, o.schedulerConfig)
		return 1
	}
	kubeconfig := o.kubeconfig
	if kubeconfig == "" {
		kubeconfig = cfg.ClientConnection.Kubeconfig
	}
	restConfig, err := clientConfig(o.kubeconfig, cfg.ClientConnection.Kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "spot-rebalancer: %v\n", err)
		return 1
	}
	restConfig.UserAgent = "spot-rebalancer/" + version.Version
	// client-go's default of 5 requests/s would pace evictions at one every few hundred ms.
	restConfig.QPS, restConfig.Burst = o.kubeAPIQPS, o.kubeAPIBurst
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		fmt.Fprintf(stderr, "spot-rebalancer: --kubeconfig: %v\n", err)
		return 1
	}

	signalCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(deletioncost.TransformManagedFields))
	var leaderHealth *leaderelection.HealthzAdaptor
	if le.LeaderElect {
		leaderHealth = leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
	}
	// The rebalancer exists once the server has been asked what it serves (below); until then
	// its loop check has nothing to report.
	var rebalancer atomic.Pointer[rebalance.Controller]
	loopCheck := healthz.NamedCheck("rebalance-loop", func(r *http.Request) error {
		if c := rebalancer.Load(); c != nil {
			return c.Check(r)
		}
		return nil
	})
	if o.serving.enabled() {
		// Liveness: the process serves, holds its Lease when leading, and its rebalance loop
		// turns. Readiness adds the informers' sync, so a component that cannot list what it
		// needs says so on /readyz instead of hanging silently.
		live := []healthz.HealthChecker{healthz.PingHealthz, loopCheck}
		if leaderHealth != nil {
			live = append(live, leaderHealth)
		}
		ready := append([]healthz.HealthChecker{healthz.NewInformerSyncHealthz(factory)}, live...)
		stopServing := make(chan struct{})
		stopped, err := o.serving.start(kubeconfig, live, ready, stopServing)
		if err != nil {
			fmt.Fprintf(stderr, "spot-rebalancer: %v\n", err)
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
	// Fit the scheduler framework to what this API server serves (or refuse a server outside
	// the supported range) before the simulation registers its informers.
	if err := compat.Adapt(signalCtx, client.Discovery(), logger); err != nil {
		fmt.Fprintf(stderr, "spot-rebalancer: %v\n", err)
		return 1
	}
	ctrls, err := newControllers(klog.NewContext(signalCtx, logger), o, profile, client, restConfig, factory)
	if err != nil {
		fmt.Fprintf(stderr, "spot-rebalancer: --scheduler-config: %s: %v\n", o.schedulerConfig, err)
		return 1
	}
	rebalancer.Store(ctrls.rebalancer)
	logger.Info("Starting", "version", version.Version, "schedulerConfig", o.schedulerConfig, "profile", o.profile,
		"tiers", ctrls.sim.Model.TierNames(), "leaderElect", le.LeaderElect, "rebalance", o.rebalance.enabled)

	if !le.LeaderElect {
		if err := ctrls.run(signalCtx); err != nil && signalCtx.Err() == nil {
			logger.Error(err, "Controllers failed")
			return 1
		}
		logger.Info("Stopped")
		return 0
	}
	return runLeaderElected(signalCtx, le, client, leaderHealth, ctrls.run)
}

// controllers are the rebalancer and the deletion-cost controller over one informer factory
// and one profile simulation.
type controllers struct {
	factory      informers.SharedInformerFactory
	sim          *simulator.Simulator
	rebalancer   *rebalance.Controller
	deletionCost *deletioncost.Controller
	workers      int
	rebalance    bool
	// The reclaim history (read by every controller, written by the recorder) and the cost
	// metrics.
	reclaims *reclaimhistory.Reader
	recorder *reclaimhistory.Recorder
	exporter *report.Exporter
}

func newControllers(ctx context.Context, o *options, profile *config.KubeSchedulerProfile, client kubernetes.Interface, restConfig *rest.Config, factory informers.SharedInformerFactory) (*controllers, error) {
	// The kubeconfig, as kube-scheduler gives it to the plugins that build their own clients.
	sim, err := simulator.New(ctx, profile, client, factory, simulator.WithKubeConfig(restConfig))
	if err != nil {
		return nil, err
	}
	c := &controllers{factory: factory, sim: sim, workers: o.deletionCost.workers, rebalance: o.rebalance.enabled}
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	recorder := broadcaster.NewRecorder(scheme.Scheme, "spot-rebalancer")
	// The reclaim history: the simulation (so failback prefers the pools reclaimed least) and
	// the deletion-cost controller rank with what the recorder writes.
	namespace, name := sim.Model.ReclaimHistoryConfigMap()
	c.reclaims = reclaimhistory.NewReader(client, namespace, name, sim.Model.ReclaimWindow(), clock.RealClock{})
	sim.SetReclaims(c.reclaims)
	if c.recorder, err = reclaimhistory.NewRecorder(client, factory, sim.Model, clock.RealClock{}); err != nil {
		return nil, err
	}
	c.exporter = report.NewExporter(sim.Model, sim.SchedulerName, factory, c.reclaims, recorder, clock.RealClock{})
	if c.deletionCost, err = deletioncost.New(client, factory, deletioncost.Options{
		SchedulerName: sim.SchedulerName,
		Model:         sim.Model,
		QPS:           o.deletionCost.qps,
		Burst:         o.deletionCost.burst,
		Recorder:      recorder,
		Reclaims:      c.reclaims,

		ProtectPolicyReplicas: o.deletionCost.protectReplicas,
	}); err != nil {
		return nil, err
	}
	c.reclaims.OnChange(func() {
		c.exporter.Trigger()
		c.deletionCost.ReclaimsChanged()
	})
	opts := o.rebalance.opts
	opts.PlanOutput = os.Stdout
	if c.rebalancer, err = rebalance.NewController(sim, client, factory, recorder, opts, clock.RealClock{}); err != nil {
		return nil, err
	}
	return c, nil
}

// run starts the informers and runs both controllers until ctx ends; the first to fail stops
// the other.
func (c *controllers) run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	c.reclaims.Start(ctx)
	// The recorder and the exporter end with ctx; run returns after them, so that a write of
	// the history in flight finishes before the Lease is released.
	var helpers sync.WaitGroup
	defer helpers.Wait()
	helpers.Go(func() { c.recorder.Run(klog.NewContext(ctx, logger.WithName("reclaim-history"))) })
	helpers.Go(func() { c.exporter.Run(klog.NewContext(ctx, logger.WithName("cost-metrics"))) })
	errs := make(chan error, 2)
	go func() {
		if !c.rebalance {
			<-ctx.Done()
			errs <- nil
			return
		}
		c.rebalancer.Run(klog.NewContext(ctx, logger.WithName("rebalancer")))
		if ctx.Err() == nil {
			errs <- errors.New("rebalancer stopped")
			return
		}
		errs <- nil
	}()
	go func() {
		errs <- c.deletionCost.Run(klog.NewContext(ctx, logger.WithName("deletion-cost")), c.workers)
	}()
	first := <-errs
	cancel()
	second := <-errs
	return errors.Join(first, second)
}

// runLeaderElected runs the controllers while holding the Lease. On SIGTERM the controllers
// stop first (in-flight writes finish), then the Lease is released so a standby takes over at
// once; the process exits 0. Losing the Lease otherwise exits 1.
func runLeaderElected(signalCtx context.Context, le componentbaseconfig.LeaderElectionConfiguration, client kubernetes.Interface, healthz *leaderelection.HealthzAdaptor, runControllers func(context.Context) error) int {
	logger := klog.Background()
	hostname, _ := os.Hostname()
	identity := hostname + "_" + string(uuid.NewUUID())
	lease := le.ResourceNamespace + "/" + le.ResourceName
	lock, err := resourcelock.New(le.ResourceLock, le.ResourceNamespace, le.ResourceName, client.CoreV1(), client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: identity})
	if err != nil {
		logger.Error(err, "Leader election lock", "lease", lease)
		return 1
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
			case <-time.After(le.RenewDeadline.Duration):
				logger.Info("Controllers did not stop in time; releasing the Lease anyway")
			}
		default:
		}
		stopLE()
	}()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration.Duration,
		RenewDeadline:   le.RenewDeadline.Duration,
		RetryPeriod:     le.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		Name:            le.ResourceName,
		WatchDog:        healthz,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				logger.Info("Leading", "lease", lease, "identity", identity)
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
				logger.Info("Stopped leading", "lease", lease, "identity", identity)
			},
			OnNewLeader: func(id string) {
				if id != identity {
					logger.Info("Another instance leads", "leader", id)
				}
			},
		},
	})
	if err != nil {
		logger.Error(err, "Leader election", "lease", lease)
		return 1
	}
	elector.Run(leCtx)
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
	logger.Error(nil, "Lost the Lease", "lease", lease)
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
