// Package preempt is the PlaceholderPreemption PostFilter plugin: when a pod fits nowhere, it
// preempts only placeholder (headroom) pods, on the node chosen deterministically by capacity
// tier (at-risk nodes last), fewest victims, least victim requests, then name. It is the upstream preemption
// Evaluator with spot-scheduler's choices plugged into its Interface, and upstream
// DefaultPreemption's victim search restricted to placeholders through its IsEligiblePod and
// MoreImportantPod hooks.
package preempt

import (
	"context"
	"fmt"
	"math"
	"sort"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/defaultpreemption"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	"k8s.io/kubernetes/pkg/scheduler/framework/preemption"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/profilestate"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// Name is the name of the plugin used in the plugin registry and configurations.
const Name = "PlaceholderPreemption"

// PlaceholderPreemption is a PostFilter plugin preempting only placeholder pods.
type PlaceholderPreemption struct {
	handle framework.Handle
	// shared holds the profile's capacity model (SpotScore's), read at run time.
	shared *profilestate.Registry
	// victimSearch is upstream DefaultPreemption with its hooks set to placeholders only; its
	// SelectVictimsOnNode and PodEligibleToPreemptOthers do the per-node work.
	victimSearch *defaultpreemption.DefaultPreemption

	placeholderSelector      labels.Selector
	placeholderPriorityBelow int32
	// placeholders is the profile's placeholder-room index, built from IsPlaceholder and
	// shared with SpotScore through the profile's registry: which nodes host a placeholder.
	placeholders *ranking.PlaceholderIndex
}

var _ framework.PostFilterPlugin = &PlaceholderPreemption{}
var _ preemption.Interface = preemptorView{}

// NewFactory returns PlaceholderPreemption's factory. The plugin records its placeholder rule
// in shared and reads the profile's capacity model (SpotScore's) from it.
func NewFactory(shared *profilestate.Registry) frameworkruntime.PluginFactory {
	return func(ctx context.Context, obj runtime.Object, h framework.Handle) (framework.Plugin, error) {
		return newPlugin(ctx, obj, h, shared)
	}
}

// newPlugin validates the args and builds the plugin.
func newPlugin(ctx context.Context, obj runtime.Object, h framework.Handle, shared *profilestate.Registry) (framework.Plugin, error) {
	args, err := v1alpha1.DecodePlaceholderPreemptionArgs(obj, field.NewPath("pluginConfig").Key(Name).Child("args"))
	if err != nil {
		return nil, err
	}
	selector, err := metav1.LabelSelectorAsSelector(args.PlaceholderSelector)
	if err != nil {
		return nil, fmt.Errorf("pluginConfig[%s].args.placeholderSelector: %w", Name, err)
	}
	fts := feature.NewSchedulerFeaturesFromGates(utilfeature.DefaultFeatureGate)
	// Every node is a candidate: 100% and no absolute cap below the node count.
	search, err := defaultpreemption.New(ctx, &config.DefaultPreemptionArgs{MinCandidateNodesPercentage: 100, MinCandidateNodesAbsolute: 100}, h, fts)
	if err != nil {
		return nil, err
	}
	pl := &PlaceholderPreemption{
		handle:                   h,
		shared:                   shared,
		victimSearch:             search,
		placeholderSelector:      selector,
		placeholderPriorityBelow: *args.PlaceholderPriorityBelow,
	}
	search.IsEligiblePod = func(_ fwk.NodeInfo, victim fwk.PodInfo, _ *v1.Pod) bool {
		return pl.IsPlaceholder(victim.GetPod())
	}
	search.MoreImportantPod = moreImportantPlaceholder
	pl.placeholders = shared.SetPlaceholderRule(h, pl.IsPlaceholder)
	return pl, nil
}

// model is the profile's capacity model; nil when the profile does not enable SpotScore.
func (pl *PlaceholderPreemption) model() *capacity.Model {
	return pl.shared.Get(pl.handle).Model
}

// preemptorView is the upstream Evaluator's Interface for one preemptor: the node order
// depends on the pod (its avoid-spot preference), and the Evaluator hands OrderedScoreFuncs
// the context but not the pod.
type preemptorView struct {
	*PlaceholderPreemption
	preemptor *v1.Pod
	// state is the preemptor's cycle state: its SpotScore part ranks nodes for the pod
	// (capacity policy included).
	state fwk.CycleState
}

// OrderedScoreFuncs ranks candidate nodes for the view's preemptor (see orderedScoreFuncs).
func (v preemptorView) OrderedScoreFuncs(ctx context.Context, nodesToVictims map[string]*extenderv1.Victims) []func(node string) int64 {
	return v.orderedScoreFuncs(ctx, v.preemptor, v.state, nodesToVictims)
}

// evaluatorFor builds upstream's Evaluator for one preemptor. Synchronous preemption: the
// victims are gone (or the attempt failed) before the cycle ends, so the outcome never depends
// on goroutine timing. Victims are counted as the Evaluator removes them (it sets
// DisruptionTarget, deletes the pod and records a Preempted event related to the preemptor).
func (pl *PlaceholderPreemption) evaluatorFor(preemptor *v1.Pod, state fwk.CycleState) *preemption.Evaluator {
	ev := preemption.NewEvaluator(Name, pl.handle, preemptorView{pl, preemptor, state}, false)
	preemptPod := ev.PreemptPod
	ev.PreemptPod = func(ctx context.Context, c preemption.Candidate, preemptor, victim *v1.Pod, pluginName string) error {
		err := preemptPod(ctx, c, preemptor, victim, pluginName)
		if err == nil {
			victims.Inc()
		}
		return err
	}
	return ev
}

// Name returns name of the plugin.
func (pl *PlaceholderPreemption) Name() string { return Name }

// IsPlaceholder reports whether a pod is a placeholder: its labels match the placeholder
// selector (the placeholder label read as a boolean, wellknown.PlaceholderLabels), or its
// priority is below the threshold.
func (pl *PlaceholderPreemption) IsPlaceholder(pod *v1.Pod) bool {
	if corev1helpers.PodPriority(pod) < pl.placeholderPriorityBelow {
		return true
	}
	podLabels, _ := wellknown.PlaceholderLabels(pod.Labels)
	return pl.placeholderSelector.Matches(labels.Set(podLabels))
}

// PostFilter preempts placeholders to make room for pod. It returns Unschedulable, so that a
// later PostFilter plugin (DefaultPreemption) may try, when placeholders alone cannot help.
func (pl *PlaceholderPreemption) PostFilter(ctx context.Context, state fwk.CycleState, pod *v1.Pod, m framework.NodeToStatusReader) (*framework.PostFilterResult, *fwk.Status) {
	// No placeholder anywhere: nothing to preempt, and no dry run over every node (each a
	// run of the filters) before the next PostFilter gets its turn.
	nodes, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return nil, fwk.AsStatus(err)
	}
	if !pl.anyHostsPlaceholders(state, nodes) {
		attempts.WithLabelValues("no_candidate").Inc()
		return nil, fwk.NewStatus(fwk.Unschedulable, "placeholder preemption: no node hosts a placeholder")
	}
	result, status := pl.evaluatorFor(pod, state).Preempt(ctx, state, pod, m)
	outcome := "preempted"
	switch {
	case status.IsSuccess():
	case status.Code() == fwk.Error:
		outcome = "error"
	default:
		outcome = "no_candidate"
	}
	attempts.WithLabelValues(outcome).Inc()
	if msg := status.Message(); msg != "" {
		return result, fwk.NewStatus(status.Code(), "placeholder preemption: "+msg)
	}
	return result, status
}

// GetOffsetAndNumCandidates makes every node a candidate, from the first: no random offset.
func (pl *PlaceholderPreemption) GetOffsetAndNumCandidates(nodes int32) (int32, int32) {
	return 0, nodes
}

// CandidatesToVictimsMap maps candidate node names to their victims.
func (pl *PlaceholderPreemption) CandidatesToVictimsMap(candidates []preemption.Candidate) map[string]*extenderv1.Victims {
	return pl.victimSearch.CandidatesToVictimsMap(candidates)
}

// PodEligibleToPreemptOthers: placeholders never preempt; otherwise upstream's rules
// (preemptionPolicy Never, victims still terminating on the nominated node).
func (pl *PlaceholderPreemption) PodEligibleToPreemptOthers(ctx context.Context, pod *v1.Pod, nominatedNodeStatus *fwk.Status) (bool, string) {
	if pl.IsPlaceholder(pod) {
		return false, "not eligible: the pod is a placeholder"
	}
	return pl.victimSearch.PodEligibleToPreemptOthers(ctx, pod, nominatedNodeStatus)
}

// SelectVictimsOnNode finds the fewest placeholders on the node whose removal lets pod fit,
// taking the least important first (see moreImportantPlaceholder).
func (pl *PlaceholderPreemption) SelectVictimsOnNode(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo, pdbs []*policyv1.PodDisruptionBudget) ([]*v1.Pod, int, *fwk.Status) {
	// A node without placeholders has no victim to offer: no need to run the filters on it.
	if nodeInfo.Node() == nil || !pl.placeholders.Hosts(nodeInfo) {
		return nil, 0, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "no placeholder on the node")
	}
	return pl.victimSearch.SelectVictimsOnNode(ctx, state, pod, nodeInfo, pdbs)
}

// moreImportantPlaceholder orders victims: the victim taken first has the lowest priority,
// then is the youngest, then comes first by namespace/name. Total, so the choice never
// depends on list order.
func moreImportantPlaceholder(a, b *v1.Pod) bool {
	if pa, pb := corev1helpers.PodPriority(a), corev1helpers.PodPriority(b); pa != pb {
		return pa > pb
	}
	if ta, tb := capacity.StartTime(a), capacity.StartTime(b); !ta.Equal(tb) {
		return ta.Before(tb) // older is more important: the youngest goes first
	}
	return a.Namespace+"/"+a.Name > b.Namespace+"/"+b.Name
}

// orderedScoreFuncs ranks candidate nodes: best band for the preemptor (its tier order, with
// at-risk nodes after every healthy node, as SpotScore ranks them: headroom on a node about to
// be reclaimed is no place to land), fewest PDB violations, fewest victims, least victim CPU
// then memory requests, then node name. The last key is total, so the same cluster state always
// gives the same node.
func (pl *PlaceholderPreemption) orderedScoreFuncs(ctx context.Context, preemptor *v1.Pod, state fwk.CycleState, nodesToVictims map[string]*extenderv1.Victims) []func(node string) int64 {
	logger := klog.FromContext(ctx)
	model := pl.model()
	if model == nil {
		logger.Error(nil, "Profile has no SpotScore plugin; ranking preemption candidates without capacity tiers", "plugin", Name)
	}
	var order ranking.Order
	if model != nil {
		order = ranking.New(model).ForPod(preemptor)
		if state != nil {
			if o, ok := spotscore.OrderFor(state); ok {
				order = o
			}
		}
	}
	classes := make(map[string]capacity.Class, len(nodesToVictims))
	names := make([]string, 0, len(nodesToVictims))
	for name := range nodesToVictims {
		names = append(names, name)
		if model == nil {
			continue
		}
		if ni, err := pl.handle.SnapshotSharedLister().NodeInfos().Get(name); err == nil && ni.Node() != nil {
			classes[name] = model.Classify(ni.Node())
		}
	}
	sort.Strings(names)
	nameRank := make(map[string]int64, len(names))
	for i, n := range names {
		nameRank[n] = int64(i)
	}
	return []func(string) int64{
		func(n string) int64 { // best band: tier for this pod, at-risk nodes after every healthy one
			if model == nil {
				return 0
			}
			return -int64(order.Band(classes[n]))
		},
		func(n string) int64 { return -nodesToVictims[n].NumPDBViolations },
		func(n string) int64 { return -int64(len(nodesToVictims[n].Pods)) },
		func(n string) int64 { return -requests(nodesToVictims[n].Pods, v1.ResourceCPU) },
		func(n string) int64 { return -requests(nodesToVictims[n].Pods, v1.ResourceMemory) },
		func(n string) int64 { return math.MaxInt32 - nameRank[n] }, // alphabetical
	}
}

// requests sums the victims' requests of one resource (CPU in millicores, memory in bytes).
func requests(pods []*v1.Pod, name v1.ResourceName) int64 {
	var sum int64
	for _, p := range pods {
		q := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})[name]
		if name == v1.ResourceCPU {
			sum += q.MilliValue()
		} else {
			sum += q.Value()
		}
	}
	return sum
}
