// Package plugins lists every plugin the spot-scheduler binary carries beyond the in-tree
// ones: its own (SpotScore) and those of sigs.k8s.io/scheduler-plugins, so users can enable
// them (e.g. Coscheduling) in the same profile. The scheduler command and anything that builds
// the same framework (the rebalancer) take the list from here.
package plugins

import (
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"sigs.k8s.io/scheduler-plugins/pkg/capacityscheduling"
	"sigs.k8s.io/scheduler-plugins/pkg/coscheduling"
	"sigs.k8s.io/scheduler-plugins/pkg/networkaware/networkoverhead"
	"sigs.k8s.io/scheduler-plugins/pkg/networkaware/topologicalsort"
	"sigs.k8s.io/scheduler-plugins/pkg/noderesources"
	"sigs.k8s.io/scheduler-plugins/pkg/noderesourcetopology"
	"sigs.k8s.io/scheduler-plugins/pkg/podstate"
	"sigs.k8s.io/scheduler-plugins/pkg/preemptiontoleration"
	"sigs.k8s.io/scheduler-plugins/pkg/qos"
	"sigs.k8s.io/scheduler-plugins/pkg/sysched"
	"sigs.k8s.io/scheduler-plugins/pkg/trimaran/loadvariationriskbalancing"
	"sigs.k8s.io/scheduler-plugins/pkg/trimaran/lowriskovercommitment"
	"sigs.k8s.io/scheduler-plugins/pkg/trimaran/peaks"
	"sigs.k8s.io/scheduler-plugins/pkg/trimaran/targetloadpacking"

	// Registers scheduler-plugins' typed args in the kube-scheduler configuration scheme.
	_ "sigs.k8s.io/scheduler-plugins/apis/config/scheme"

	"github.com/spot-scheduler/spot-scheduler/pkg/preempt"
	"github.com/spot-scheduler/spot-scheduler/pkg/profilestate"
	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
)

// OutOfTree returns the registry of out-of-tree plugins, keyed by plugin name.
func OutOfTree() frameworkruntime.Registry {
	registry, _ := NewRegistry()
	return registry
}

// NewRegistry returns the registry of out-of-tree plugins and the one owner of what the
// plugins of each profile built from it share (SpotScore's capacity model, the placeholder
// rule).
func NewRegistry() (frameworkruntime.Registry, *profilestate.Registry) {
	shared := profilestate.New()
	return frameworkruntime.Registry{
		spotscore.Name: spotscore.NewFactory(shared),
		preempt.Name:   preempt.NewFactory(shared),

		capacityscheduling.Name:         capacityscheduling.New,
		coscheduling.Name:               coscheduling.New,
		loadvariationriskbalancing.Name: loadvariationriskbalancing.New,
		networkoverhead.Name:            networkoverhead.New,
		topologicalsort.Name:            topologicalsort.New,
		noderesources.AllocatableName:   noderesources.NewAllocatable,
		noderesourcetopology.Name:       noderesourcetopology.New,
		preemptiontoleration.Name:       preemptiontoleration.New,
		targetloadpacking.Name:          targetloadpacking.New,
		lowriskovercommitment.Name:      lowriskovercommitment.New,
		sysched.Name:                    sysched.New,
		peaks.Name:                      peaks.New,
		podstate.Name:                   podstate.New,
		qos.Name:                        qos.New,
	}, shared
}
