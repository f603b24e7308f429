// Package simulator runs one scheduler profile's plugins for a pod on a snapshot of the
// cluster, as kube-scheduler would in a scheduling cycle, without binding anything. It is the
// one simulation every component shares: the rebalancer plans its moves with it, and explain
// shows its verdicts. A Simulator is the profile rebuilt from the scheduler's own
// KubeSchedulerConfiguration (kube-scheduler's loader, the same plugins and args), so a
// simulation can never disagree with the scheduler about tiers, filters or scores.
package simulator

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/validation"
	internalcache "k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkplugins "k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/dynamicresources"
	plfeature "k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/names"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedulermetrics "k8s.io/kubernetes/pkg/scheduler/metrics"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/plugins"
	"github.com/spot-scheduler/spot-scheduler/pkg/preempt"
	"github.com/spot-scheduler/spot-scheduler/pkg/profilestate"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
)

// Simulator is a scheduler profile rebuilt for simulation. Its plugins read whichever
// snapshot the current Session holds, so one Simulator serves one Session at a time: Begin
// waits for the previous Session to End.
type Simulator struct {
	// Model is the capacity model of the profile's SpotScore args (the very instance its
	// SpotScore plugin scores with).
	Model *capacity.Model
	// Ranker ranks with Model: the band order the profile's SpotScore ranks with.
	Ranker        *ranking.Ranker
	SchedulerName string
	// IsPlaceholder is the profile's PlaceholderPreemption rule; nil when the profile does not
	// preempt placeholders (then their room is not free).
	IsPlaceholder func(*v1.Pod) bool

	framework framework.Framework
	lister    swappableLister
	inUse     sync.Mutex
	// shared is the profile's shared state (the reclaim history SpotScore ranks with).
	shared *profilestate.Registry
}

// LoadConfig reads a KubeSchedulerConfiguration file with kube-scheduler's own loader
// (defaults, conversion, plugin args) and validates it as kube-scheduler does.
func LoadConfig(logger klog.Logger, path string) (*config.KubeSchedulerConfiguration, error) {
	cfg, err := options.LoadConfigFromFile(logger, path)
	if err != nil {
		return nil, fmt.Errorf("loading scheduler configuration %s: %w", path, err)
	}
	if err := validation.ValidateKubeSchedulerConfiguration(cfg); err != nil {
		return nil, fmt.Errorf("scheduler configuration %s: %w", path, err)
	}
	return cfg, nil
}

// Profile returns the profile of cfg whose schedulerName is name.
func Profile(cfg *config.KubeSchedulerConfiguration, name string) (*config.KubeSchedulerProfile, error) {
	var all []string
	for i := range cfg.Profiles {
		if cfg.Profiles[i].SchedulerName == name {
			return &cfg.Profiles[i], nil
		}
		all = append(all, cfg.Profiles[i].SchedulerName)
	}
	return nil, fmt.Errorf("profile %q: no profile has this schedulerName (profiles: %v)", name, all)
}

// Load is LoadConfig, Profile and New in one call.
func Load(ctx context.Context, path, profileName string, client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...Option) (*Simulator, error) {
	cfg, err := LoadConfig(klog.FromContext(ctx), path)
	if err != nil {
		return nil, err
	}
	profile, err := Profile(cfg, profileName)
	if err != nil {
		return nil, fmt.Errorf("scheduler configuration %s: %w", path, err)
	}
	return New(ctx, profile, client, factory, opts...)
}

// Option is an optional input of New.
type Option func(*buildOptions)

type buildOptions struct {
	kubeConfig *rest.Config
}

// WithKubeConfig gives the profile's plugins the kubeconfig kube-scheduler gives them: the
// plugins of sigs.k8s.io/scheduler-plugins that read their own CRDs (Coscheduling,
// CapacityScheduling, NodeResourceTopologyMatch, ...) build a client from it, and cannot be
// built without it.
func WithKubeConfig(c *rest.Config) Option {
	return func(o *buildOptions) { o.kubeConfig = c }
}

// New builds the profile's framework for simulation with kube-scheduler's own
// frameworkruntime.NewFramework: the plugins it enables at each extension point (multiPoint
// expansion, "*" in a disabled list) are kube-scheduler's decision, never restated here. Plugins
// register their informers with factory: start it (and wait for its caches) before the first
// Session.
func New(ctx context.Context, profile *config.KubeSchedulerProfile, client kubernetes.Interface, factory informers.SharedInformerFactory, opts ...Option) (*Simulator, error) {
	var o buildOptions
	for _, opt := range opts {
		opt(&o)
	}
	// The framework records metrics through the scheduler's metrics; register them once.
	schedulermetrics.Register()
	registry, shared, err := simulationRegistry(o.kubeConfig != nil)
	if err != nil {
		return nil, err
	}
	s := &Simulator{SchedulerName: profile.SchedulerName, shared: shared}
	s.lister.current.Store(internalcache.NewEmptySnapshot())
	frameworkOpts := []frameworkruntime.Option{
		frameworkruntime.WithClientSet(client),
		frameworkruntime.WithInformerFactory(factory),
		frameworkruntime.WithSnapshotSharedLister(&s.lister),
		frameworkruntime.WithWaitingPods(frameworkruntime.NewWaitingPodsMap()),
		frameworkruntime.WithLogger(klog.FromContext(ctx)),
	}
	if o.kubeConfig != nil {
		frameworkOpts = append(frameworkOpts, frameworkruntime.WithKubeConfig(o.kubeConfig))
	}
	f, err := frameworkruntime.NewFramework(ctx, registry, profile, frameworkOpts...)
	if err != nil {
		return nil, fmt.Errorf("building profile %q: %w", profile.SchedulerName, err)
	}
	s.framework = f
	if !hasPlugin(f.ListPlugins().Score, spotscore.Name) {
		return nil, fmt.Errorf("profile %q does not enable %s at score (plugins.multiPoint or plugins.score): simulations rank nodes with its tiers", profile.SchedulerName, spotscore.Name)
	}
	state := shared.Get(f)
	s.Model = state.Model
	s.Ranker = ranking.New(state.Model)
	if state.IsPlaceholder != nil && hasPlugin(f.ListPlugins().PostFilter, preempt.Name) {
		s.IsPlaceholder = state.IsPlaceholder
	}
	return s, nil
}

// simulationRegistry is the scheduler's registry (in-tree plugins and plugins.NewRegistry's)
// with two changes made through the registry, kube-scheduler's own extension point, so that
// which plugins run where stays kube-scheduler's decision:
//   - DynamicResources is built as with the DynamicResourceAllocation feature off (upstream's
//     own mode, in which it lets every pod pass): a simulation has no DRA manager, and needs
//     none, since the rebalancer never moves a pod holding ResourceClaims (its protections).
//   - A factory that panics (a plugin built without something it assumes, such as the
//     kubeconfig of WithKubeConfig) returns an error naming the plugin instead of taking the
//     process down.
func simulationRegistry(haveKubeConfig bool) (frameworkruntime.Registry, *profilestate.Registry, error) {
	registry := frameworkplugins.NewInTreeRegistry()
	outOfTree, shared := plugins.NewRegistry()
	if err := registry.Merge(outOfTree); err != nil {
		return nil, nil, err
	}
	withoutDRA := plfeature.NewSchedulerFeaturesFromGates(utilfeature.DefaultFeatureGate)
	withoutDRA.EnableDynamicResourceAllocation = false
	registry[names.DynamicResources] = frameworkruntime.FactoryAdapter(withoutDRA, dynamicresources.New)
	for name, factory := range registry {
		registry[name] = recovering(name, factory, haveKubeConfig)
	}
	return registry, shared, nil
}

// recovering turns a panic of a plugin factory into an error naming the plugin.
func recovering(name string, factory frameworkruntime.PluginFactory, haveKubeConfig bool) frameworkruntime.PluginFactory {
	return func(ctx context.Context, args runtime.Object, h framework.Handle) (p framework.Plugin, err error) {
		defer func() {
			if r := recover(); r != nil {
				hint := ""
				if !haveKubeConfig {
					hint = " (the simulation has no kubeconfig, which plugins that read the API server themselves need)"
				}
				p, err = nil, fmt.Errorf("plugin %s cannot be built for simulation%s: it panicked: %v", name, hint, r)
			}
		}()
		return factory(ctx, args, h)
	}
}

// SetReclaims gives the profile's SpotScore the reclaim history to rank the pools of a tier
// with, as the scheduler's reads it (the rebalancer's reader, explain's one read).
func (s *Simulator) SetReclaims(src capacity.ReclaimSource) {
	s.shared.SetReclaims(s.framework, src)
}

// Reclaims returns the reclaim counts the simulation ranks with (nil: none).
func (s *Simulator) Reclaims() capacity.Reclaims {
	if src := s.shared.Get(s.framework).Reclaims; src != nil {
		return src.Reclaims()
	}
	return nil
}

// hasPlugin tells whether the framework runs the named plugin at an extension point (as
// listed by the framework itself, after its multiPoint expansion).
func hasPlugin(set config.PluginSet, name string) bool {
	for _, p := range set.Enabled {
		if p.Name == name {
			return true
		}
	}
	return false
}

// swappableLister lets the framework, built once, read a new snapshot per Session: plugins
// keep the lister they got at construction, and it reads whichever snapshot is current.
type swappableLister struct {
	current atomic.Pointer[internalcache.Snapshot]
}

func (l *swappableLister) NodeInfos() framework.NodeInfoLister {
	return l.current.Load().NodeInfos()
}

func (l *swappableLister) StorageInfos() framework.StorageInfoLister {
	return l.current.Load().StorageInfos()
}

// Snapshot is cluster state to simulate on.
type Snapshot struct {
	snapshot *internalcache.Snapshot
	// withoutPlaceholders: the snapshot counts placeholder room as free, so the tier gate,
	// which looks for room held by placeholders, stands aside.
	withoutPlaceholders bool
}

// NewSnapshot builds a snapshot the way the scheduler's cache does: every node, and the pods
// bound to one of them that are not finished. A pod bound to a node that no longer exists
// (after a reclaim, until the pod garbage collector removes it) is left out, as the scheduler
// leaves out a node it has no Node object for; so no plugin ever sees a NodeInfo without a
// node. Placeholders are left out too when the profile preempts them and
// placeholdersAreFree is set: their room is free for any pod that can preempt.
func (s *Simulator) NewSnapshot(nodes []*v1.Node, pods []*v1.Pod, placeholdersAreFree bool) *Snapshot {
	exists := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if n != nil {
			exists[n.Name] = true
		}
	}
	var kept []*v1.Pod
	for _, p := range pods {
		if p == nil || !exists[p.Spec.NodeName] || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		if placeholdersAreFree && s.IsPlaceholder != nil && s.IsPlaceholder(p) {
			continue
		}
		kept = append(kept, p)
	}
	var existing []*v1.Node
	for _, n := range nodes {
		if n != nil {
			existing = append(existing, n)
		}
	}
	return &Snapshot{snapshot: internalcache.NewSnapshot(kept, existing), withoutPlaceholders: placeholdersAreFree}
}

// Get returns the snapshot's NodeInfo of a node; a Session's changes (RemovePod, AddPod) are
// made on it.
func (sn *Snapshot) Get(node string) (fwk.NodeInfo, error) {
	return sn.snapshot.Get(node)
}

// Session is the exclusive use of a Simulator over one snapshot. End it when done.
type Session struct {
	sim      *Simulator
	snapshot *Snapshot
	ended    bool
}

// Begin starts a session on snapshot, waiting for any other session to end: the plugins of
// the one framework read one snapshot at a time.
func (s *Simulator) Begin(snapshot *Snapshot) *Session {
	s.inUse.Lock()
	s.lister.current.Store(snapshot.snapshot)
	return &Session{sim: s, snapshot: snapshot}
}

// End releases the simulator. Calling it twice is harmless.
func (ss *Session) End() {
	if ss.ended {
		return
	}
	ss.ended = true
	ss.sim.lister.current.Store(internalcache.NewEmptySnapshot())
	ss.sim.inUse.Unlock()
}

// Unbound returns a copy of pod as the scheduler sees it when it is pending again: no node
// (the NodeName filter would otherwise pin it where it is).
func Unbound(pod *v1.Pod) *v1.Pod {
	pending := pod.DeepCopy()
	pending.Spec.NodeName = ""
	return pending
}

// NodeVerdict is what the profile makes of one node for one pod.
type NodeVerdict struct {
	Node       string `json:"node"`
	Tier       string `json:"tier"`
	AtRisk     bool   `json:"atRisk"`
	RiskReason string `json:"riskReason,omitempty"`
	Pool       string `json:"pool"`
	Feasible   bool   `json:"feasible"`
	// FailedPlugin and Reason say which filter rejected the node, and why.
	FailedPlugin string `json:"failedPlugin,omitempty"`
	Reason       string `json:"reason,omitempty"`
	// Score is the weighted total over the profile's score plugins; SpotScore its part.
	Score     int64 `json:"score"`
	SpotScore int64 `json:"spotScore"`
	// PoolReclaims are the reclaims of the node's pool in the reclaim history's window;
	// ReclaimEffect the SpotScore points they took from the node (0 when they changed nothing).
	PoolReclaims  int   `json:"poolReclaims"`
	ReclaimEffect int64 `json:"reclaimEffect"`
}

// Evaluation is every node's verdict for a pod, and where the scheduler would put it.
type Evaluation struct {
	Nodes []NodeVerdict `json:"nodes"`
	// Chosen is the feasible node the scheduler would pick (see selectHost); "" if none fits.
	Chosen string `json:"chosen,omitempty"`
}

// Evaluate runs the profile's PreFilter, Filter, PreScore and Score plugins for pod (as given:
// pass Unbound(pod) for a bound pod, and a snapshot without it) over every node, in name
// order, recording each node's verdict.
func (ss *Session) Evaluate(ctx context.Context, pod *v1.Pod) (*Evaluation, error) {
	all, err := ss.snapshot.snapshot.NodeInfos().List()
	if err != nil {
		return nil, err
	}
	nodes := append([]fwk.NodeInfo(nil), all...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Node().Name < nodes[j].Node().Name })
	eval := &Evaluation{Nodes: make([]NodeVerdict, len(nodes))}
	byName := make(map[string]*NodeVerdict, len(nodes))
	classes := make(map[string]capacity.Class, len(nodes))
	reclaims := ss.sim.Reclaims()
	for i, ni := range nodes {
		c := ss.sim.Model.Classify(ni.Node())
		classes[ni.Node().Name] = c
		eval.Nodes[i] = NodeVerdict{Node: ni.Node().Name, Tier: c.TierName, AtRisk: c.AtRisk, RiskReason: c.RiskReason, Pool: c.Pool, PoolReclaims: reclaims[c.Pool]}
		byName[ni.Node().Name] = &eval.Nodes[i]
	}
	state, preResult, status := ss.preFilter(ctx, pod)
	if !status.IsSuccess() {
		if !status.IsRejected() {
			return nil, status.AsError()
		}
		for i := range eval.Nodes {
			eval.Nodes[i].FailedPlugin, eval.Nodes[i].Reason = status.Plugin(), status.Message()
		}
		return eval, nil
	}
	var feasible []fwk.NodeInfo
	for _, ni := range nodes {
		v := byName[ni.Node().Name]
		if !preResult.AllNodes() && !preResult.NodeNames.Has(v.Node) {
			v.FailedPlugin, v.Reason = "PreFilter", "excluded by a PreFilter result"
			continue
		}
		if st := ss.sim.framework.RunFilterPlugins(ctx, state, pod, ni); !st.IsSuccess() {
			v.FailedPlugin, v.Reason = st.Plugin(), st.Message()
			continue
		}
		v.Feasible = true
		feasible = append(feasible, ni)
	}
	scores, err := ss.score(ctx, state, pod, feasible)
	if err != nil || len(scores) == 0 {
		return eval, err
	}
	for _, s := range scores {
		v := byName[s.Name]
		v.Score = s.TotalScore
		for _, ps := range s.Scores {
			if ps.Name == spotscore.Name {
				v.SpotScore = ps.Score
			}
		}
		if _, points, ok := spotscore.ReclaimEffect(state, classes[s.Name]); ok {
			v.ReclaimEffect = points
		}
	}
	eval.Chosen = selectHost(scores)
	return eval, nil
}

// BestNode returns the node the scheduler would give pod if only the nodes of groups were
// there, trying one group at a time, in order: the first group with a feasible node is
// scored, the later ones are not looked at. A group is a set of node names of one band
// (SpotScore makes a feasible node of a better band win over every node of a worse one, so
// this is the scheduler's choice, found without filtering the worse bands). "" when no node
// of any group fits.
func (ss *Session) BestNode(ctx context.Context, pod *v1.Pod, groups [][]string) (string, error) {
	candidates := 0
	for _, g := range groups {
		candidates += len(g)
	}
	if candidates == 0 {
		return "", nil
	}
	state, preResult, status := ss.preFilter(ctx, pod)
	if !status.IsSuccess() {
		if status.IsRejected() {
			return "", nil
		}
		return "", status.AsError()
	}
	f := ss.sim.framework
	for _, group := range groups {
		fits := make([]fwk.NodeInfo, len(group))
		errs := make([]error, len(group))
		f.Parallelizer().Until(ctx, len(group), func(i int) {
			if !preResult.AllNodes() && !preResult.NodeNames.Has(group[i]) {
				return
			}
			ni, err := ss.snapshot.snapshot.Get(group[i])
			if err != nil {
				errs[i] = err
				return
			}
			if f.RunFilterPlugins(ctx, state, pod, ni).IsSuccess() {
				fits[i] = ni
			}
		}, "simulation")
		var feasible []fwk.NodeInfo
		for i, ni := range fits {
			if errs[i] != nil {
				return "", errs[i]
			}
			if ni != nil {
				feasible = append(feasible, ni)
			}
		}
		switch len(feasible) {
		case 0:
			continue
		case 1:
			return feasible[0].Node().Name, nil
		}
		scores, err := ss.score(ctx, state, pod, feasible)
		if err != nil {
			return "", err
		}
		return selectHost(scores), nil
	}
	return "", nil
}

// preFilter starts a cycle for pod: a fresh CycleState and the PreFilter plugins.
func (ss *Session) preFilter(ctx context.Context, pod *v1.Pod) (fwk.CycleState, *framework.PreFilterResult, *fwk.Status) {
	state := framework.NewCycleState()
	// Evaluate reports every node's verdict and BestNode searches band by band itself: the
	// scheduler's tier search (which only saves the scheduler work) stands aside.
	mode := ranking.NoTierSearch
	if ss.snapshot.withoutPlaceholders {
		// The rebalancer's snapshots hold no placeholders (their room counts as free): the
		// gate could find nothing but would still scan every pod.
		mode |= ranking.NoTierGate
	}
	ranking.SetMode(state, mode)
	result, status, _ := ss.sim.framework.RunPreFilterPlugins(ctx, state, pod)
	return state, result, status
}

// score runs PreScore and Score over the feasible nodes.
func (ss *Session) score(ctx context.Context, state fwk.CycleState, pod *v1.Pod, feasible []fwk.NodeInfo) ([]framework.NodePluginScores, error) {
	if len(feasible) == 0 {
		return nil, nil
	}
	f := ss.sim.framework
	if status := f.RunPreScorePlugins(ctx, state, pod, feasible); !status.IsSuccess() && !status.IsSkip() {
		return nil, status.AsError()
	}
	scores, status := f.RunScorePlugins(ctx, state, pod, feasible)
	if !status.IsSuccess() {
		return nil, status.AsError()
	}
	return scores, nil
}

// selectHost picks the highest total score. The scheduler breaks ties at random; a
// simulation must be repeatable (the rebalancer plans twice and acts on what both plans
// share), so ties go to the first name.
func selectHost(scores []framework.NodePluginScores) string {
	if len(scores) == 0 {
		return ""
	}
	best := scores[0]
	for _, s := range scores[1:] {
		if s.TotalScore > best.TotalScore || (s.TotalScore == best.TotalScore && s.Name < best.Name) {
			best = s
		}
	}
	return best.Name
}

// LoadModel reads only the capacity model of a profile's SpotScore args (for a component that
// classifies nodes without simulating, such as the demo's report); the file is read with
// kube-scheduler's loader like every other.
func LoadModel(logger klog.Logger, path, profileName string) (*capacity.Model, error) {
	cfg, err := LoadConfig(logger, path)
	if err != nil {
		return nil, err
	}
	model, err := ModelOf(cfg, profileName)
	if err != nil {
		return nil, fmt.Errorf("scheduler configuration %s: %w", path, err)
	}
	return model, nil
}

// ModelOf compiles the capacity model of the named profile's SpotScore args (its defaults when
// the profile has none). Errors name the profile and the field at fault, so that a component
// can refuse bad args at start-up, before it contacts any server.
func ModelOf(cfg *config.KubeSchedulerConfiguration, profileName string) (*capacity.Model, error) {
	for i := range cfg.Profiles {
		profile := &cfg.Profiles[i]
		if profile.SchedulerName != profileName {
			continue
		}
		scores, err := scoresWithSpotScore(profile)
		if err != nil {
			return nil, fmt.Errorf("profile %q: %w", profileName, err)
		}
		if !scores {
			return nil, fmt.Errorf("profile %q does not enable %s (plugins.multiPoint or plugins.score): it would not rank by capacity tier", profileName, spotscore.Name)
		}
		var args runtime.Object // none: SpotScore's defaults
		argsPath := field.NewPath("profiles").Index(i).Child("pluginConfig").Key(spotscore.Name).Child("args")
		for j, pc := range profile.PluginConfig {
			if pc.Name == spotscore.Name {
				args = pc.Args
				argsPath = field.NewPath("profiles").Index(i).Child("pluginConfig").Index(j).Child("args")
			}
		}
		decoded, err := v1alpha1.DecodeSpotScoreArgs(args, argsPath)
		if err != nil {
			return nil, fmt.Errorf("profile %q: %w", profileName, err)
		}
		model, err := capacity.New(decoded.CapacityModel)
		if err != nil {
			return nil, fmt.Errorf("profile %q: %s: %w", profileName, argsPath, err)
		}
		return model, nil
	}
	_, err := Profile(cfg, profileName)
	return nil, err
}

// scoresWithSpotScore tells whether the profile scores with SpotScore, as kube-scheduler
// decides it: a framework is built (kube-scheduler's own multiPoint expansion, "*" in a
// disabled list and per-extension-point lists applied as it applies them) from the profile's
// plugin lists narrowed to SpotScore and the "*" entries, plus the queue sort and bind plugins
// every framework needs, and its Score plugins are listed. Only those three plugins are built
// (no other plugin's factory runs, none needs a server), with a client that is never used.
// The narrowing holds because only entries naming SpotScore or "*" decide where kube-scheduler
// enables SpotScore; TestModelOfAgreesWithNew checks it against New, which builds the whole
// profile, on a table of profiles, so that a Kubernetes bump breaking it fails there.
func scoresWithSpotScore(profile *config.KubeSchedulerProfile) (bool, error) {
	narrow := func(set config.PluginSet) config.PluginSet {
		var out config.PluginSet
		for _, p := range set.Enabled {
			if p.Name == spotscore.Name {
				out.Enabled = append(out.Enabled, p)
			}
		}
		for _, p := range set.Disabled {
			if p.Name == spotscore.Name || p.Name == "*" {
				out.Disabled = append(out.Disabled, p)
			}
		}
		return out
	}
	in := profile.Plugins
	if in == nil {
		return false, nil
	}
	// The framework records metrics through the scheduler's metrics; register them once.
	schedulermetrics.Register()
	checked := config.KubeSchedulerProfile{SchedulerName: profile.SchedulerName, Plugins: &config.Plugins{
		PreEnqueue: narrow(in.PreEnqueue), QueueSort: narrow(in.QueueSort), PreFilter: narrow(in.PreFilter),
		Filter: narrow(in.Filter), PostFilter: narrow(in.PostFilter), PreScore: narrow(in.PreScore),
		Score: narrow(in.Score), Reserve: narrow(in.Reserve), Permit: narrow(in.Permit),
		PreBind: narrow(in.PreBind), Bind: narrow(in.Bind), PostBind: narrow(in.PostBind),
		MultiPoint: narrow(in.MultiPoint),
	}}
	checked.Plugins.QueueSort.Enabled = append(checked.Plugins.QueueSort.Enabled, config.Plugin{Name: names.PrioritySort})
	checked.Plugins.Bind.Enabled = append(checked.Plugins.Bind.Enabled, config.Plugin{Name: names.DefaultBinder})
	registry, _, err := simulationRegistry(false)
	if err != nil {
		return false, err
	}
	client, err := kubernetes.NewForConfig(&rest.Config{Host: "https://offline.invalid"})
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := frameworkruntime.NewFramework(ctx, registry, &checked,
		frameworkruntime.WithClientSet(client),
		frameworkruntime.WithInformerFactory(informers.NewSharedInformerFactory(client, 0)),
		frameworkruntime.WithSnapshotSharedLister(internalcache.NewEmptySnapshot()),
		frameworkruntime.WithWaitingPods(frameworkruntime.NewWaitingPodsMap()),
		frameworkruntime.WithLogger(klog.Background()),
	)
	if err != nil {
		return false, err
	}
	return hasPlugin(f.ListPlugins().Score, spotscore.Name), nil
}
