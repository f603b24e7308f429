// Package rebalance is the failback controller: it moves pods of opted-in workloads from
// worse-tier nodes to nodes of a strictly better tier, deciding with the scheduler's own
// profile (its Filter plugins and SpotScore) on a snapshot of the cluster. It evicts a pod only
// when, in that snapshot, a better-tier node can host it, so it never loops.
package rebalance

import (
	"context"
	"fmt"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/validation"
	internalcache "k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkplugins "k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedulermetrics "k8s.io/kubernetes/pkg/scheduler/metrics"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/plugins"
	"github.com/spot-scheduler/spot-scheduler/pkg/preempt"
	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
)

// Profile is the scheduler's profile rebuilt for simulation: the same plugins with the same
// args, run against snapshots the rebalancer builds.
type Profile struct {
	Framework     framework.Framework
	Model         *capacity.Model
	SchedulerName string
	// IsPlaceholder is the profile's PlaceholderPreemption rule; nil when the profile has no
	// such plugin (then placeholders are not counted as free room).
	IsPlaceholder func(*v1.Pod) bool

	snapshots *swappableSnapshot
}

// swappableSnapshot lets one framework run against a new snapshot on every pass: plugins keep
// the lister they got at construction, and it reads whichever snapshot is current.
type swappableSnapshot struct {
	current atomic.Pointer[internalcache.Snapshot]
}

func (s *swappableSnapshot) NodeInfos() framework.NodeInfoLister {
	return s.current.Load().NodeInfos()
}

func (s *swappableSnapshot) StorageInfos() framework.StorageInfoLister {
	return s.current.Load().StorageInfos()
}

// LoadProfile reads a KubeSchedulerConfiguration file exactly as kube-scheduler does and
// builds the named profile's framework. Plugins register their informers with factory: start
// it (and wait for sync) after this returns.
func LoadProfile(ctx context.Context, configFile, profileName string, client kubernetes.Interface, factory informers.SharedInformerFactory) (*Profile, error) {
	logger := klog.FromContext(ctx)
	cfg, err := options.LoadConfigFromFile(logger, configFile)
	if err != nil {
		return nil, fmt.Errorf("loading scheduler configuration %s: %w", configFile, err)
	}
	if err := validation.ValidateKubeSchedulerConfiguration(cfg); err != nil {
		return nil, fmt.Errorf("scheduler configuration %s: %w", configFile, err)
	}
	var profile *config.KubeSchedulerProfile
	var names []string
	for i := range cfg.Profiles {
		names = append(names, cfg.Profiles[i].SchedulerName)
		if cfg.Profiles[i].SchedulerName == profileName {
			profile = &cfg.Profiles[i]
		}
	}
	if profile == nil {
		return nil, fmt.Errorf("scheduler configuration %s: no profile with schedulerName %q (profiles: %v)", configFile, profileName, names)
	}
	return buildProfile(ctx, profile, client, factory)
}

func buildProfile(ctx context.Context, profile *config.KubeSchedulerProfile, client kubernetes.Interface, factory informers.SharedInformerFactory) (*Profile, error) {
	// The framework records metrics through the scheduler's metrics; register them once.
	schedulermetrics.Register()
	simulated := *profile
	simulated.Plugins = profile.Plugins.DeepCopy()
	// Pods holding ResourceClaims are never rebalanced (see protections), so the simulation
	// needs no DRA manager: DynamicResources is left out.
	simulated.Plugins.MultiPoint.Disabled = append(simulated.Plugins.MultiPoint.Disabled, config.Plugin{Name: names.DynamicResources})
	registry := frameworkplugins.NewInTreeRegistry()
	if err := registry.Merge(plugins.OutOfTree()); err != nil {
		return nil, err
	}
	snapshots := &swappableSnapshot{}
	snapshots.current.Store(internalcache.NewEmptySnapshot())
	fwk, err := frameworkruntime.NewFramework(ctx, registry, &simulated,
		frameworkruntime.WithClientSet(client),
		frameworkruntime.WithInformerFactory(factory),
		frameworkruntime.WithSnapshotSharedLister(snapshots),
		frameworkruntime.WithWaitingPods(frameworkruntime.NewWaitingPodsMap()),
		frameworkruntime.WithLogger(klog.FromContext(ctx)),
	)
	if err != nil {
		return nil, fmt.Errorf("building profile %q: %w", profile.SchedulerName, err)
	}
	model, ok := spotscore.ModelFor(fwk)
	if !ok {
		return nil, fmt.Errorf("profile %q does not enable %s: the rebalancer decides with its tiers", profile.SchedulerName, spotscore.Name)
	}
	p := &Profile{Framework: fwk, Model: model, SchedulerName: profile.SchedulerName, snapshots: snapshots}
	if isPlaceholder, ok := preempt.PlaceholderMatcherFor(fwk); ok && hasPostFilter(fwk, preempt.Name) {
		p.IsPlaceholder = isPlaceholder
	}
	return p, nil
}

func hasPostFilter(fwk framework.Framework, name string) bool {
	for _, p := range fwk.ListPlugins().PostFilter.Enabled {
		if p.Name == name {
			return true
		}
	}
	return false
}
