package rebalance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// The failback buffer's demand: which pods would move back to a better tier if room existed
// there, and what room each needs. The planner (planner.go) moves a pod only into room that
// exists; the demand asks the same questions about room that does not exist yet, so that the
// buffer's Pending placeholders make the autoscaler create it.

// bufferShape is the room one pod that would move back needs: its requests on a node of a
// better tier that its own node selection and tolerations accept. Every placeholder of the
// buffer has one shape; pods of one workload share theirs.
type bufferShape struct {
	// key is a hash of the rest, the value of wellknown.FailbackBufferShapeLabel.
	key          string
	requests     v1.ResourceList
	nodeSelector map[string]string
	// terms: required node affinity, the pod's own terms crossed with the better tiers' terms
	// (those of the cluster's provider: Karpenter tries only the first term, and drops it
	// for the next only when no NodePool can satisfy it).
	terms       []v1.NodeSelectorTerm
	tolerations []v1.Toleration
	// tiers are the better tiers the room may be on, for events and logs.
	tiers []string
}

// bufferDemand is what the buffer should hold.
type bufferDemand struct {
	shapes map[string]*bufferShape
	// want counts placeholders per shape key, MaxPods at most in all.
	want map[string]int
	// total is the room wanted before the MaxPods bound.
	total int
	// podShape maps every pod counted (not the in-flight replacements) to its shape key.
	podShape map[types.UID]string
}

// maxBufferTerms bounds a placeholder's node selector terms (the pod's terms times the better
// tiers' selectors).
const maxBufferTerms = 64

// demandInput is the cluster state a demand is computed from.
type demandInput struct {
	nodes []*v1.Node
	pods  []*v1.Pod
	now   time.Time
	// evicted are the controller's evictions still in flight, by workload (evictionLog).
	evicted map[string][]*v1.Pod
	// unplaceable pods had room of their shape on a better tier and the planner found them
	// none: the buffer stops counting them (observePlan).
	unplaceable map[types.UID]bool
	// replicas gives a workload's desired size (nil: its active pods).
	replicas func(*v1.Pod) (int, bool)
	// keysSeen are the label keys seen on nodes so far (the nodes' keys are added): a tier's
	// rules whose keys some node has carried are this cluster's provider's. Remembered, so
	// that the shapes do not change when the last spot node goes or the first comes back.
	keysSeen sets.Set[string]
}

// failbackDemand counts the pods of the profile that would move back to a better reclaimable
// tier (spot) if room existed there: bound to a healthy node, not placeholders, passing every
// protection of the planner except their age and phase (pods that just failed over are young
// and may still be starting: they will move when the room is up), with a disruption budget
// that is not zero, whose capacity policy ranks a better tier above their own, and that some
// better tier's nodes can take (a tier defined by label selectors, compatible with the pod's
// own node selection). Before them come the replacements of the controller's in-flight
// evictions that are not placed yet: they are taking the room the buffer holds, and counting
// them keeps the buffer from shrinking before they do (and growing again after). maxPods
// bounds the count; total says how many there are.
func failbackDemand(pl *planner, in demandInput, opts Options, maxPods int) *bufferDemand {
	d := &bufferDemand{shapes: map[string]*bufferShape{}, want: map[string]int{}, podShape: map[types.UID]string{}}
	model := pl.sim.Model
	keysOnNodes := in.keysSeen
	if keysOnNodes == nil {
		keysOnNodes = sets.New[string]()
	}
	pl.classes = make(map[string]capacity.Class, len(in.nodes))
	for _, n := range in.nodes {
		pl.classes[n.Name] = model.Classify(n)
		for k := range n.Labels {
			keysOnNodes.Insert(k)
		}
	}
	var candidates []*v1.Pod
	for _, pod := range in.pods {
		if _, onNode := pl.classes[pod.Spec.NodeName]; !onNode || pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
			continue
		}
		if pl.sim.IsPlaceholder != nil && pl.sim.IsPlaceholder(pod) {
			continue
		}
		candidates = append(candidates, pod)
	}
	pl.initPolicies(candidates)
	// Worst tier first, then by name: the bound keeps the room of the pods that cost most.
	sort.SliceStable(candidates, func(i, j int) bool {
		a, b := pl.classes[candidates[i].Spec.NodeName].Tier, pl.classes[candidates[j].Spec.NodeName].Tier
		if a != b {
			return a > b
		}
		return candidates[i].Namespace+"/"+candidates[i].Name < candidates[j].Namespace+"/"+candidates[j].Name
	})
	add := func(s *bufferShape) {
		d.total++
		if _, ok := d.shapes[s.key]; !ok {
			d.shapes[s.key] = s
		}
		if d.total <= maxPods {
			d.want[s.key]++
		}
	}
	for _, s := range pl.inFlightShapes(in, keysOnNodes) {
		add(s)
	}
	for _, pod := range candidates {
		if pod.Spec.SchedulerName != pl.sim.SchedulerName || in.unplaceable[pod.UID] {
			continue
		}
		class := pl.classes[pod.Spec.NodeName]
		if class.AtRisk || !mayMoveLater(pod, in.now, opts) {
			continue
		}
		if s := pl.shapeFor(pod, class, keysOnNodes); s != nil {
			d.podShape[pod.UID] = s.key
			add(s)
		}
	}
	return d
}

// mayMoveLater tells whether the planner will move the pod once it is old enough and running:
// no protection other than its age or phase, and a disruption budget that is not zero.
func mayMoveLater(pod *v1.Pod, now time.Time, opts Options) bool {
	running := *pod
	running.Status.Phase = v1.PodRunning
	opts.MinPodAge = 0
	if reason, _ := protection(&running, now, opts); reason != "" {
		return false
	}
	share := opts.DisruptionBudget
	if v, ok := pod.Annotations[wellknown.DisruptionBudgetAnnotation]; ok {
		parsed, err := wellknown.ParseDisruptionBudget(v)
		if err != nil {
			return false // read as 0, as the planner does
		}
		share = parsed
	}
	// A budget that is not zero lets at least one pod of any workload move.
	return wellknown.DisruptionBudget(share, 1) > 0
}

// shapeFor is the room the pod needs on a better tier, nil when no such tier is better for it
// (its tier order and capacity policy) or none that node affinity can express accepts it:
// a better reclaimable tier (failback), or for a pod on spot that wants off it (its capacity
// policy, the avoid-spot annotation) a better non-reclaimable one.
func (pl *planner) shapeFor(pod *v1.Pod, here capacity.Class, keysOnNodes sets.Set[string]) *bufferShape {
	model := pl.sim.Model
	avoid := capacity.AvoidsSpot(pod)
	order := pl.sim.Ranker.ForPod(pod)
	if wp := pl.policyOf(pod); wp != nil {
		order = pl.orderFor(pod, pl.decisionWithout(wp, pod.Spec.NodeName))
	}
	var tierTerms []v1.NodeSelectorTerm
	var tiers []string
	for t := range model.NumTiers() {
		// Strictly better by the ranking of the pod's replacement (a new node is in a pool of
		// its own: no pool is full).
		better := capacity.Class{Tier: t, TierName: model.TierName(t)}
		if order.HealthyBand(better) >= order.HealthyBand(here) {
			continue
		}
		switch {
		case model.Reclaimable(t):
			// Failback: better by the pod's tier order too (a move within a tier, a policy's
			// re-spread across pools, needs no new capacity).
			if pl.sim.Ranker.TierRank(t, avoid) >= pl.sim.Ranker.TierRank(here.Tier, avoid) {
				continue
			}
		case !order.AvoidsSpot() || !model.Reclaimable(here.Tier):
			// Non-reclaimable room only for a pod on spot that wants off it: a capacity
			// policy's base or share, or the avoid-spot annotation, whose pods land on spot
			// when no on-demand node has room and would stay there, as nothing else asks the
			// autoscaler for on-demand. Others would ask for reserved room for ever (reserved
			// capacity is bought, not launched).
			continue
		}
		if terms := model.PinningTerms(t); terms != nil {
			tierTerms = append(tierTerms, terms...)
			tiers = append(tiers, model.TierName(t))
		}
	}
	if len(tierTerms) == 0 {
		return nil
	}
	// The rules of the provider this cluster runs on: the terms whose label keys its nodes
	// carry (have carried), when there are any. The default model knows every provider's spot
	// labels; a Karpenter cluster asks for karpenter.sh/capacity-type=spot only, and a pod
	// pinned to Karpenter's on-demand is not counted on the strength of an AKS label no node
	// here will ever have.
	if known := slices.DeleteFunc(slices.Clone(tierTerms), func(t v1.NodeSelectorTerm) bool { return !termKnown(t, keysOnNodes) }); len(known) > 0 {
		tierTerms = known
	}
	for i := range tierTerms {
		tierTerms[i] = withoutForeignNegations(tierTerms[i], keysOnNodes)
	}
	terms := mergeTerms(podRequiredTerms(pod), tierTerms, pod.Spec.NodeSelector)
	if len(terms) == 0 {
		return nil // the pod's own node selection excludes every better tier
	}
	s := &bufferShape{
		requests:     podResourceRequests(pod),
		nodeSelector: pod.Spec.NodeSelector,
		tolerations:  pod.Spec.Tolerations,
		tiers:        tiers,
	}
	s.terms = terms
	s.key = shapeKey(s, terms)
	return s
}

// inFlightShapes are the shapes of the controller's evictions whose replacements are not
// placed yet, per workload: the evicted pods gone from the active pods, at most as many as
// the workload has replacements Pending or not yet created.
func (pl *planner) inFlightShapes(in demandInput, keysOnNodes sets.Set[string]) []*bufferShape {
	if len(in.evicted) == 0 {
		return nil
	}
	active := map[types.UID]bool{}
	pending := map[string]int{}
	for _, p := range in.pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		active[p.UID] = true
		if w, ok := capacity.WorkloadKey(p); ok && p.Spec.NodeName == "" {
			pending[w]++
		}
	}
	counts := countWorkloads(in.pods)
	var out []*bufferShape
	workloads := make([]string, 0, len(in.evicted))
	for w := range in.evicted {
		workloads = append(workloads, w)
	}
	slices.Sort(workloads)
	for _, w := range workloads {
		var gone []*v1.Pod
		for _, p := range in.evicted[w] {
			if !active[p.UID] {
				gone = append(gone, p)
			}
		}
		if len(gone) == 0 {
			continue
		}
		notCreated := 0
		if in.replicas != nil {
			if desired, ok := in.replicas(gone[0]); ok {
				notCreated = max(desired-counts[w].active, 0)
			}
		}
		sort.Slice(gone, func(i, j int) bool { return gone[i].Name < gone[j].Name })
		for _, p := range gone[:min(len(gone), pending[w]+notCreated)] {
			here, ok := pl.classes[p.Spec.NodeName]
			if !ok {
				continue // its node is gone: the replacement's room is not the buffer's to count
			}
			if s := pl.shapeFor(p, here, keysOnNodes); s != nil {
				out = append(out, s)
			}
		}
	}
	return out
}

// podRequiredTerms are the pod's required node affinity terms; one empty term when it has none.
func podRequiredTerms(pod *v1.Pod) []v1.NodeSelectorTerm {
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		if terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms; len(terms) > 0 {
			return terms
		}
	}
	return []v1.NodeSelectorTerm{{}}
}

// mergeTerms returns every pod term ANDed with every tier term (node affinity terms are ORed),
// leaving out those no node's labels can satisfy together with the pod's node selector, at
// most maxBufferTerms.
func mergeTerms(podTerms, tierTerms []v1.NodeSelectorTerm, nodeSelector map[string]string) []v1.NodeSelectorTerm {
	var out []v1.NodeSelectorTerm
	for _, p := range podTerms {
		for _, t := range tierTerms {
			if len(out) == maxBufferTerms {
				return out
			}
			var m v1.NodeSelectorTerm
			m.MatchExpressions = append(append(m.MatchExpressions, p.MatchExpressions...), t.MatchExpressions...)
			m.MatchFields = append(m.MatchFields, p.MatchFields...)
			if satisfiable(nodeSelector, m.MatchExpressions) {
				out = append(out, *m.DeepCopy())
			}
		}
	}
	return out
}

// satisfiable reports whether some node's labels can match the node selector and every
// expression at once: no key required to hold values from disjoint sets, only excluded
// values, or to be both present and absent. Gt and Lt are taken as satisfiable.
func satisfiable(nodeSelector map[string]string, exprs []v1.NodeSelectorRequirement) bool {
	type constraint struct {
		in             sets.Set[string] // nil: any value
		notIn          sets.Set[string]
		exists, absent bool
	}
	byKey := map[string]*constraint{}
	get := func(k string) *constraint {
		if byKey[k] == nil {
			byKey[k] = &constraint{notIn: sets.New[string]()}
		}
		return byKey[k]
	}
	restrict := func(c *constraint, values ...string) {
		if c.in == nil {
			c.in = sets.New(values...)
		} else {
			c.in = c.in.Intersection(sets.New(values...))
		}
	}
	for k, v := range nodeSelector {
		restrict(get(k), v)
	}
	for _, e := range exprs {
		c := get(e.Key)
		switch e.Operator {
		case v1.NodeSelectorOpIn:
			restrict(c, e.Values...)
		case v1.NodeSelectorOpNotIn:
			c.notIn.Insert(e.Values...)
		case v1.NodeSelectorOpExists:
			c.exists = true
		case v1.NodeSelectorOpDoesNotExist:
			c.absent = true
		}
	}
	for _, c := range byKey {
		if c.absent && (c.exists || c.in != nil) {
			return false
		}
		if c.in != nil && c.in.Difference(c.notIn).Len() == 0 {
			return false
		}
	}
	return true
}

// termKnown: some node has carried every label key the term requires.
// withoutForeignNegations drops from a term the NotIn and DoesNotExist requirements on labels
// no node carries (on-demand's term says "none of the other tiers' labels", every provider's),
// unless nothing would be left: they hold for every node here, and an autoscaler need not
// know other providers' labels.
func withoutForeignNegations(t v1.NodeSelectorTerm, keysOnNodes sets.Set[string]) v1.NodeSelectorTerm {
	if len(keysOnNodes) == 0 {
		return t
	}
	kept := slices.DeleteFunc(slices.Clone(t.MatchExpressions), func(e v1.NodeSelectorRequirement) bool {
		return (e.Operator == v1.NodeSelectorOpNotIn || e.Operator == v1.NodeSelectorOpDoesNotExist) && !keysOnNodes.Has(e.Key)
	})
	if len(kept) == 0 {
		return t
	}
	t.MatchExpressions = kept
	return t
}

func termKnown(t v1.NodeSelectorTerm, keysOnNodes sets.Set[string]) bool {
	for _, e := range t.MatchExpressions {
		if e.Operator != v1.NodeSelectorOpDoesNotExist && e.Operator != v1.NodeSelectorOpNotIn && !keysOnNodes.Has(e.Key) {
			return false
		}
	}
	return true
}

// podResourceRequests is what the pod asks of a node: its containers', init containers' and
// overhead's requests, as the scheduler counts them.
func podResourceRequests(pod *v1.Pod) v1.ResourceList {
	out := v1.ResourceList{}
	for name, q := range resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}) {
		if !q.IsZero() {
			out[name] = q.DeepCopy()
		}
	}
	return out
}

// shapeKey hashes what makes two placeholders interchangeable; terms are taken in a canonical
// order.
func shapeKey(s *bufferShape, terms []v1.NodeSelectorTerm) string {
	canon := make([]string, 0, len(terms))
	for _, t := range terms {
		b, _ := json.Marshal(t)
		canon = append(canon, string(b))
	}
	slices.Sort(canon)
	requests := make([]string, 0, len(s.requests))
	for name, q := range s.requests {
		requests = append(requests, string(name)+"="+q.String())
	}
	slices.Sort(requests)
	b, _ := json.Marshal(struct {
		Requests     []string
		NodeSelector map[string]string
		Terms        []string
		Tolerations  []v1.Toleration
	}{requests, s.nodeSelector, canon, s.tolerations})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// describeRequests writes requests as "cpu=1, memory=1Gi", sorted, for events.
func describeRequests(r v1.ResourceList) string {
	parts := make([]string, 0, len(r))
	for name, q := range r {
		parts = append(parts, string(name)+"="+q.String())
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// limitsFor are the limits a placeholder needs besides its requests: extended resources and
// hugepages must have limits equal to their requests.
func limitsFor(requests v1.ResourceList) v1.ResourceList {
	out := v1.ResourceList{}
	for name, q := range requests {
		switch name {
		case v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage:
		default:
			out[name] = q.DeepCopy()
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
