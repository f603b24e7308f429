package strategy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
)

// DefaultSchedulerConfig runs the upstream kube-scheduler with its default profile, alone, as
// a cluster's default scheduler (no leader election: nothing else competes).
const DefaultSchedulerConfig = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
leaderElection:
  leaderElect: false
`

// AKSDeschedulerPolicy is seed 000's descheduler policy: RemovePodsViolatingNodeAffinity on the preferred
// affinity, DefaultEvictor allowing local-storage pods.
const AKSDeschedulerPolicy = `apiVersion: descheduler/v1alpha2
kind: DeschedulerPolicy
profiles:
- name: nodeAffinity-profile
  pluginConfig:
  - name: RemovePodsViolatingNodeAffinity
    args:
      nodeAffinityType:
      - preferredDuringSchedulingIgnoredDuringExecution
  - name: DefaultEvictor
    args:
      evictLocalStoragePods: true
  plugins:
    deschedule:
      enabled:
      - RemovePodsViolatingNodeAffinity
`

// okePolicy is seed 002's descheduler policy: LowNodeUtilization (40/70) with nodeFit, at
// most 1 eviction per node and 3 per run, RemovePodsViolatingNodeAffinity disabled.
const okePolicy = `apiVersion: descheduler/v1alpha2
kind: DeschedulerPolicy
maxNoOfPodsToEvictPerNode: 1
maxNoOfPodsToEvictPerTotal: 3
profiles:
- name: default
  pluginConfig:
  - name: DefaultEvictor
    args:
      ignorePvcPods: true
      evictLocalStoragePods: true
      evictSystemCriticalPods: false
      nodeFit: true
  - name: LowNodeUtilization
    args:
      thresholds:
        cpu: 40
        memory: 40
      targetThresholds:
        cpu: 70
        memory: 70
  plugins:
    balance:
      enabled:
      - LowNodeUtilization
`

func (r *runner) writeFile(name, content string) (string, error) {
	p := filepath.Join(r.cluster.Dir, name)
	return p, os.WriteFile(p, []byte(content), 0o600)
}

// startComponents runs the strategy's real components against the cluster.
func (r *runner) startComponents(ctx context.Context) error {
	interval := r.opts.LoopInterval.String()
	switch r.strategy {
	case Affinity, AKSRecipe, OKERecipe, Karpenter:
		cfg, err := r.writeFile("kube-scheduler-config.yaml", fmt.Sprintf(DefaultSchedulerConfig, r.cluster.Kubeconfig))
		if err != nil {
			return err
		}
		if err := r.startProcess(ctx, "kube-scheduler", filepath.Join(r.cluster.BinDir, "kube-scheduler"),
			"--config="+cfg, "--secure-port=0", "--v=1"); err != nil {
			return err
		}
		if !UsesDescheduler(r.strategy) {
			return nil
		}
		if r.opts.DeschedulerBinary == "" {
			return fmt.Errorf("strategy %s needs the descheduler binary (hack/build-descheduler.sh)", r.strategy)
		}
		policy := AKSDeschedulerPolicy
		if r.strategy == OKERecipe {
			policy = okePolicy
		}
		p, err := r.writeFile("descheduler-policy.yaml", policy)
		if err != nil {
			return err
		}
		return r.startProcess(ctx, "descheduler", r.opts.DeschedulerBinary,
			"--client-connection-kubeconfig="+r.cluster.Kubeconfig, "--policy-config-file="+p,
			"--descheduling-interval="+interval, "--secure-port=0", "--disable-metrics", "--v=3")
	case SpotScheduler, SpotSchedulerPolicy:
		if r.opts.SchedulerBinary == "" || r.opts.RebalancerBinary == "" || r.opts.SchedulerConfig == "" {
			return fmt.Errorf("strategy %s needs the spot-scheduler and spot-rebalancer binaries and the scheduler configuration", r.strategy)
		}
		data, err := os.ReadFile(r.opts.SchedulerConfig)
		if err != nil {
			return err
		}
		cfg, err := r.writeFile("scheduler-config.yaml", string(data)+fmt.Sprintf("\nclientConnection:\n  kubeconfig: %q\n", r.cluster.Kubeconfig))
		if err != nil {
			return err
		}
		if err := r.startProcess(ctx, "spot-scheduler", r.opts.SchedulerBinary,
			"--config="+cfg, "--bind-address=127.0.0.1", "--secure-port=0", "--v=1"); err != nil {
			return err
		}
		// The rebalancer with the loop interval of the descheduler runs, its early pass when
		// capacity appears, and a minimum pod age compressed like the trace.
		return r.startProcess(ctx, "spot-rebalancer", r.opts.RebalancerBinary,
			"--scheduler-config="+cfg, "--secure-port=0", "--min-pod-age=2s", "--rebalance-debounce=1s",
			"--rebalance-validation-delay=500ms", "--rebalance-interval="+interval, "--v=1")
	}
	return fmt.Errorf("unknown strategy %q (want one of %v)", r.strategy, Strategies(KarpenterAutoscaler))
}

func (r *runner) startProcess(ctx context.Context, name, bin string, args ...string) error {
	p, err := r.cluster.StartProcess(ctx, name, bin, args...)
	if err != nil {
		return err
	}
	r.procs = append(r.procs, p)
	return nil
}

// checkComponents fails when a component of the strategy has exited: a run without its
// components would measure nothing.
func (r *runner) checkComponents() error { return localcluster.AnyExited(r.procs) }
