package rebalance

import (
	"context"
	"sort"

	v1 "k8s.io/api/core/v1"
	fwk "k8s.io/kube-scheduler/framework"
	internalcache "k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/spotscore"
)

// NodeEvaluation is what the profile makes of one node for one pod.
type NodeEvaluation struct {
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
}

// PodEvaluation is every node's verdict for a pod, and where the scheduler would put it now.
type PodEvaluation struct {
	Nodes []NodeEvaluation `json:"nodes"`
	// Chosen is the feasible node with the highest score (ties by name); "" if none fits.
	Chosen string `json:"chosen,omitempty"`
}

// Evaluate runs the profile's PreFilter, Filter, PreScore and Score plugins for pod over every
// node of a snapshot, as the scheduler would if the pod were pending now (the pod itself is
// taken off its node).
func (p *Profile) Evaluate(ctx context.Context, nodes []*v1.Node, pods []*v1.Pod, pod *v1.Pod) (*PodEvaluation, error) {
	var others []*v1.Pod
	for _, o := range pods {
		if o.UID != pod.UID && o.Spec.NodeName != "" && o.Status.Phase != v1.PodSucceeded && o.Status.Phase != v1.PodFailed {
			others = append(others, o)
		}
	}
	snapshot := internalcache.NewSnapshot(others, nodes)
	p.snapshots.current.Store(snapshot)
	pending := pod.DeepCopy()
	pending.Spec.NodeName = ""

	eval := &PodEvaluation{}
	byName := map[string]*NodeEvaluation{}
	sorted := append([]*v1.Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, n := range sorted {
		c := p.Model.Classify(n)
		eval.Nodes = append(eval.Nodes, NodeEvaluation{Node: n.Name, Tier: c.TierName, AtRisk: c.AtRisk, RiskReason: c.RiskReason, Pool: c.Pool})
	}
	for i := range eval.Nodes {
		byName[eval.Nodes[i].Node] = &eval.Nodes[i]
	}
	state := framework.NewCycleState()
	preResult, status, _ := p.Framework.RunPreFilterPlugins(ctx, state, pending)
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
	for _, n := range sorted {
		ev := byName[n.Name]
		if !preResult.AllNodes() && !preResult.NodeNames.Has(n.Name) {
			ev.FailedPlugin, ev.Reason = "PreFilter", "excluded by a PreFilter result"
			continue
		}
		ni, err := snapshot.Get(n.Name)
		if err != nil {
			return nil, err
		}
		if st := p.Framework.RunFilterPlugins(ctx, state, pending, ni); !st.IsSuccess() {
			ev.FailedPlugin, ev.Reason = st.Plugin(), st.Message()
			continue
		}
		ev.Feasible = true
		feasible = append(feasible, ni)
	}
	if len(feasible) == 0 {
		return eval, nil
	}
	if st := p.Framework.RunPreScorePlugins(ctx, state, pending, feasible); !st.IsSuccess() && !st.IsSkip() {
		return nil, st.AsError()
	}
	scores, st := p.Framework.RunScorePlugins(ctx, state, pending, feasible)
	if !st.IsSuccess() {
		return nil, st.AsError()
	}
	var best *NodeEvaluation
	for _, s := range scores {
		ev := byName[s.Name]
		ev.Score = s.TotalScore
		for _, ps := range s.Scores {
			if ps.Name == spotscore.Name {
				ev.SpotScore = ps.Score
			}
		}
		if best == nil || ev.Score > best.Score || (ev.Score == best.Score && ev.Node < best.Node) {
			best = ev
		}
	}
	eval.Chosen = best.Node
	return eval, nil
}
