package day

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/spot-scheduler/spot-scheduler/bench/strategy"
	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
)

// Strategies. Karpenter adds and removes every node in all of them.
const (
	// Karpenter: the default scheduler (pods prefer spot nodes) and Karpenter's consolidation
	// of empty or underutilized nodes in every NodePool: its own failback.
	Karpenter = "karpenter"
	// KarpenterBalanced: the same with Karpenter v1.15's Balanced consolidation.
	KarpenterBalanced = "karpenter-balanced"
	// Karpenter30m: the same with consolidateAfter 30m.
	Karpenter30m = "karpenter-30m"
	// AKSRecipe: seed 000's recipe on Karpenter: preferred spot affinity, the descheduler
	// evicting pods that violate it, two placeholder pods of headroom on spot.
	AKSRecipe = "aks-recipe"
	// SpotScheduler: as docs/install.md tells a user to run it with Karpenter.
	SpotScheduler = "spot-scheduler"
	// SpotSchedulerPolicy: the same, with the capacity policy on the workloads that have one.
	SpotSchedulerPolicy = "spot-scheduler-policy"
)

// AllStrategies in report order; Peer is the one every ratio is paired with.
var AllStrategies = []string{Karpenter, KarpenterBalanced, Karpenter30m, AKSRecipe, SpotScheduler, SpotSchedulerPolicy}

// Peer is the strategy the product is compared with.
const Peer = Karpenter

func isSpotScheduler(s string) bool { return s == SpotScheduler || s == SpotSchedulerPolicy }

// ValidStrategy names the allowed values.
func ValidStrategy(s string) error {
	if !slices.Contains(AllStrategies, s) {
		return fmt.Errorf("strategy %q is not one of %v", s, AllStrategies)
	}
	return nil
}

// aksHeadroom is the recipe's standing placeholders (seed 000's overprovisioner): two pods of
// one CPU pinned to spot.
const (
	aksHeadroomReplicas = 2
	aksHeadroomMilliCPU = 1000
)

// Instance types of the benchmark: one node shape, with spot and on-demand offerings in every
// zone of the shape, and a virtual node of the same size for burst.
const (
	nodeInstanceType    = "bench-4"
	virtualInstanceType = "virtual-4"
	virtualTaintKey     = "virtual-kubelet.io/provider"
)

// labelDiscount is the spot discount of the price Karpenter's kwok provider sees (and puts
// in its price label). Dollars are computed afterwards from node-seconds at every discount
// of the report; Karpenter's choices depend only on spot being cheaper than on-demand.
const labelDiscount = 0.70

func instanceTypes(s *Shape) []localcluster.InstanceType {
	var zones []string
	for _, p := range s.Pools {
		if p.Zone != "" && !slices.Contains(zones, p.Zone) {
			zones = append(zones, p.Zone)
		}
	}
	od := s.OnDemandNodeHour
	return []localcluster.InstanceType{
		{Name: nodeInstanceType, CPU: s.NodeCPU, MemoryGi: 4 * s.NodeCPU, OnDemandPrice: od, SpotPrice: od * (1 - labelDiscount), Zones: zones},
		{Name: virtualInstanceType, CPU: s.NodeCPU, MemoryGi: 4 * s.NodeCPU, OnDemandPrice: od * s.BurstFactor, SpotPrice: od * s.BurstFactor, Zones: zones},
	}
}

// nodePools are a strategy's NodePools: one per pool, spot first by weight, then on-demand,
// then burst; Karpenter's default disruption budget (10 % of nodes).
//   - karpenter and aks-recipe: WhenEmptyOrUnderutilized everywhere, consolidateAfter from the
//     shape (karpenter-30m: 30m; karpenter-balanced: Balanced);
//   - spot-scheduler: what docs/install.md recommends, spot WhenEmpty, the rest
//     WhenEmptyOrUnderutilized.
func nodePools(s *Shape, strategy string) []localcluster.NodePool {
	after := s.ConsolidateAfter
	if strategy == Karpenter30m {
		after = 30 * time.Minute
	}
	var pools []localcluster.NodePool
	spot := 0
	for _, p := range s.Pools {
		np := localcluster.NodePool{
			Name: p.Name, CPULimit: strconv.FormatInt(p.CPULimit, 10), ConsolidateAfter: &after,
			ConsolidationPolicy: localcluster.ConsolidateWhenEmptyOrUnderutilized, DisruptionBudget: "10%",
			CapacityType: localcluster.CapacityTypeOnDemand, InstanceTypes: []string{nodeInstanceType},
		}
		if p.Zone != "" {
			np.Zones = []string{p.Zone}
		}
		if strategy == KarpenterBalanced {
			np.ConsolidationPolicy = localcluster.ConsolidateBalanced
		}
		switch p.Tier {
		case Spot:
			np.CapacityType, np.Weight = localcluster.CapacityTypeSpot, int32(max(51, 100-spot))
			spot++
			if isSpotScheduler(strategy) {
				np.ConsolidationPolicy = localcluster.ConsolidateWhenEmpty
			}
		case OnDemand:
			np.Weight = 10
		case Burst:
			np.Weight = 1
			np.InstanceTypes = []string{virtualInstanceType}
			np.Labels = map[string]string{"type": "virtual-kubelet"}
			np.Taints = []v1.Taint{{Key: virtualTaintKey, Value: "bench", Effect: v1.TaintEffectNoSchedule}}
		}
		pools = append(pools, np)
	}
	return pools
}

// startComponents runs the strategy's scheduler (and rebalancer or descheduler), each at its
// defaults.
func (r *runner) startComponents() error {
	c := r.cluster
	write := func(name, content string) (string, error) {
		p := filepath.Join(c.Dir, name)
		return p, os.WriteFile(p, []byte(content), 0o600)
	}
	start := func(name, bin string, args ...string) error {
		p, err := c.StartProcess(r.ctx, name, bin, args...)
		if err == nil {
			r.procs = append(r.procs, p)
		}
		return err
	}
	verbosity := fmt.Sprintf("--v=%d", max(1, r.opts.Verbosity))
	if isSpotScheduler(r.strategy) {
		o := r.opts
		if o.SchedulerBinary == "" || o.RebalancerBinary == "" || o.SchedulerConfig == "" {
			return fmt.Errorf("strategy %s needs the spot-scheduler and spot-rebalancer binaries and the scheduler configuration", r.strategy)
		}
		data, err := os.ReadFile(o.SchedulerConfig)
		if err != nil {
			return err
		}
		cfg, err := write("scheduler-config.yaml", string(data)+fmt.Sprintf("\nclientConnection:\n  kubeconfig: %q\n", c.Kubeconfig))
		if err != nil {
			return err
		}
		if err := start("spot-scheduler", o.SchedulerBinary, "--config="+cfg, "--bind-address=127.0.0.1", "--secure-port=0", verbosity); err != nil {
			return err
		}
		// Every timer of the rebalancer at its default; packing within a tier on, as
		// docs/install.md recommends with Karpenter (rebalancer.failback.packWithinTier).
		return start("spot-rebalancer", o.RebalancerBinary, "--scheduler-config="+cfg, "--secure-port=0", "--pack-within-tier", verbosity)
	}
	cfg, err := write("kube-scheduler-config.yaml", fmt.Sprintf(strategy.DefaultSchedulerConfig, c.Kubeconfig))
	if err != nil {
		return err
	}
	if err := start("kube-scheduler", filepath.Join(c.BinDir, "kube-scheduler"), "--config="+cfg, "--secure-port=0", verbosity); err != nil {
		return err
	}
	if r.strategy != AKSRecipe {
		return nil
	}
	if r.opts.DeschedulerBinary == "" {
		return fmt.Errorf("strategy %s needs the descheduler binary (hack/build-descheduler.sh)", r.strategy)
	}
	policy, err := write("descheduler-policy.yaml", strategy.AKSDeschedulerPolicy)
	if err != nil {
		return err
	}
	// Every 2 minutes: the descheduler Helm chart's default CronJob schedule.
	return start("descheduler", r.opts.DeschedulerBinary, "--client-connection-kubeconfig="+c.Kubeconfig, "--policy-config-file="+policy,
		"--descheduling-interval=2m", "--secure-port=0", "--disable-metrics", "--v=3")
}
