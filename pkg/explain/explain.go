// Package explain is the `explain` command: against a live cluster, for a pod, every node's
// tier, risk, pool, feasibility (with the filter that failed) and score, and where the
// scheduler would put it; for a namespace or the whole cluster, pods per tier and the
// rebalancer's dry-run plan. It builds the same profile the cluster's scheduler runs, from the
// same KubeSchedulerConfiguration (a file, or the ConfigMap the Helm chart installs).
package explain

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/compat"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/rebalance"
	"github.com/spot-scheduler/spot-scheduler/pkg/reclaimhistory"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

type options struct {
	kubeconfig      string
	schedulerConfig string
	configMap       string
	profile         string
	output          string
	minPodAge       time.Duration
	out             io.Writer
	errOut          io.Writer
}

// NewCommand returns the explain command (also run as the kubectl plugin `kubectl spot explain`).
func NewCommand() *cobra.Command {
	o := &options{out: os.Stdout, errOut: os.Stderr}
	cmd := &cobra.Command{
		Use:   "explain (pod NAMESPACE/NAME | namespace NAME | cluster)",
		Short: "Show each node's tier, risk, pool, feasibility and score for a pod, and what the rebalancer would do now",
		Long: "explain evaluates a pod, a namespace or the whole cluster with the scheduler's own profile " +
			"(built from --scheduler-config or --config-map) against the live cluster. It changes nothing.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), args)
		},
		SilenceUsage: true,
	}
	o.addCommonFlags(cmd)
	cmd.Flags().DurationVar(&o.minPodAge, "min-pod-age", rebalance.DefaultOptions().MinPodAge, "The rebalancer's minimum pod age, for the dry-run plan.")
	return cmd
}

// addCommonFlags adds the flags every kubectl spot command takes: where the cluster and the
// scheduler's configuration are, the profile, the output format.
func (o *options) addCommonFlags(cmd *cobra.Command) {
	// Keep cobra's own help: a parent (kube-scheduler's command) may print its flag sections.
	plain := &cobra.Command{}
	cmd.SetHelpFunc(plain.HelpFunc())
	cmd.SetUsageFunc(plain.UsageFunc())
	fs := cmd.Flags()
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path of a kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
	fs.StringVar(&o.schedulerConfig, "scheduler-config", "", "Path of the scheduler's KubeSchedulerConfiguration.")
	fs.StringVar(&o.configMap, "config-map", "", "NAMESPACE/NAME[:KEY] of a ConfigMap holding the scheduler's configuration (key default config.yaml), instead of --scheduler-config.")
	fs.StringVar(&o.profile, "profile", wellknown.SchedulerName, "Profile (schedulerName) to evaluate with.")
	fs.StringVarP(&o.output, "output", "o", "table", "Output format: table or json.")
}

// validateCommon checks the common flags.
func (o *options) validateCommon() error {
	if o.output != "table" && o.output != "json" {
		return fmt.Errorf("--output %q: supported values: table, json", o.output)
	}
	if (o.schedulerConfig == "") == (o.configMap == "") {
		return fmt.Errorf("give exactly one of --scheduler-config or --config-map")
	}
	return nil
}

func (o *options) run(ctx context.Context, args []string) error {
	if err := o.validateCommon(); err != nil {
		return err
	}
	kind := args[0]
	target := ""
	if len(args) == 2 {
		target = args[1]
	}
	switch {
	case kind == "pod" && strings.Count(target, "/") == 1:
	case kind == "namespace" && target != "":
	case kind == "cluster" && target == "":
	default:
		return fmt.Errorf("usage: explain pod NAMESPACE/NAME | explain namespace NAME | explain cluster")
	}
	client, restConfig, configFile, cleanup, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer cleanup()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory := informers.NewSharedInformerFactory(client, 0)
	profile, err := simulator.Load(ctx, configFile, o.profile, client, factory, simulator.WithKubeConfig(restConfig))
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	profile.SetReclaims(reclaimhistory.Fixed(o.readReclaims(ctx, client, profile.Model)))
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	nodePtrs := make([]*v1.Node, len(nodes.Items))
	for i := range nodes.Items {
		nodePtrs[i] = &nodes.Items[i]
	}
	podPtrs := make([]*v1.Pod, len(pods.Items))
	for i := range pods.Items {
		podPtrs[i] = &pods.Items[i]
	}
	opts := rebalance.DefaultOptions()
	opts.MinPodAge = o.minPodAge
	if kind == "pod" {
		ns, name, _ := strings.Cut(target, "/")
		return o.explainPod(ctx, profile, nodePtrs, podPtrs, ns, name, opts)
	}
	return o.explainScope(ctx, profile, nodePtrs, podPtrs, target, opts)
}

// connect builds the client from the kubeconfig, checks the server's version (pkg/compat) and
// returns the scheduler's configuration file (cleanup removes a copy fetched from a
// ConfigMap).
func (o *options) connect(ctx context.Context) (kubernetes.Interface, *rest.Config, string, func(), error) {
	restConfig, err := o.clientConfig().ClientConfig()
	if err != nil {
		return nil, nil, "", nil, fmt.Errorf("kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, nil, "", nil, err
	}
	if err := compat.Adapt(ctx, client.Discovery(), klog.FromContext(ctx)); err != nil {
		return nil, nil, "", nil, err
	}
	configFile, cleanup, err := o.configFile(ctx, client)
	if err != nil {
		return nil, nil, "", nil, err
	}
	return client, restConfig, configFile, cleanup, nil
}

// clientConfig is the kubeconfig's, as kubectl loads it.
func (o *options) clientConfig() clientcmd.ClientConfig {
	loading := clientcmd.NewDefaultClientConfigLoadingRules()
	loading.ExplicitPath = o.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loading, nil)
}

// readReclaims reads the reclaim history once and counts each pool's reclaims in its window.
// A history the caller may not read is reported on stderr and counted as empty.
func (o *options) readReclaims(ctx context.Context, client kubernetes.Interface, model *capacity.Model) capacity.Reclaims {
	namespace, name := model.ReclaimHistoryConfigMap()
	h, err := reclaimhistory.Load(ctx, client, namespace, name)
	if err != nil {
		fmt.Fprintf(o.errOut, "Reclaim history %s/%s not read (%v): pools rank without it.\n", namespace, name, err)
	}
	counts, _ := h.Counts(time.Now(), model.ReclaimWindow())
	return counts
}

// configFile returns the configuration file, fetching it from the ConfigMap when asked.
func (o *options) configFile(ctx context.Context, client kubernetes.Interface) (string, func(), error) {
	if o.schedulerConfig != "" {
		return o.schedulerConfig, func() {}, nil
	}
	ref, key, found := strings.Cut(o.configMap, ":")
	if !found {
		key = "config.yaml"
	}
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return "", nil, fmt.Errorf("--config-map %q: want NAMESPACE/NAME[:KEY]", o.configMap)
	}
	cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("--config-map %s: %w", o.configMap, err)
	}
	data, ok := cm.Data[key]
	if !ok {
		return "", nil, fmt.Errorf("--config-map %s: no key %q", o.configMap, key)
	}
	dir, err := os.MkdirTemp("", "spot-explain-")
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		return "", nil, err
	}
	return path, func() { _ = os.RemoveAll(dir) }, nil
}

// PodReport is the JSON form of a pod's explanation.
type PodReport struct {
	Pod        string                `json:"pod"`
	Node       string                `json:"node,omitempty"`
	Tier       string                `json:"tier,omitempty"`
	Evaluation *simulator.Evaluation `json:"evaluation"`
	Rebalance  RebalanceVerdict      `json:"rebalance"`
	// Readings are the boolean annotations and labels the product reads that the pod carries,
	// with how each was read.
	Readings []Reading `json:"readings,omitempty"`
}

// Reading is how the product reads one of a pod's boolean annotations or labels.
type Reading struct {
	Kind  string `json:"kind"` // annotation or label
	Key   string `json:"key"`
	Value string `json:"value"`
	// Reading is the value the product acts on.
	Reading bool `json:"reading"`
	// Invalid is set when the value is not a boolean: what it names and what the product does.
	Invalid string `json:"invalid,omitempty"`
}

// readings reads every boolean annotation and label of the pod's that the product takes, the
// way the scheduler and the rebalancer read them (wellknown.PodBools).
func readings(pod *v1.Pod) []Reading {
	var out []Reading
	for _, b := range wellknown.PodBools {
		m := b.Of(pod.Labels, pod.Annotations)
		v, ok := m[b.Key]
		if !ok {
			continue
		}
		r := Reading{Kind: b.Kind, Key: b.Key, Value: v}
		var err error
		if r.Reading, err = b.Read(m); err != nil {
			r.Invalid = err.Error()
		}
		out = append(out, r)
	}
	return out
}

// RebalanceVerdict says what the rebalancer would do with a pod now.
type RebalanceVerdict struct {
	Action string `json:"action"` // move, stay, not-considered
	ToNode string `json:"toNode,omitempty"`
	ToTier string `json:"toTier,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (o *options) explainPod(ctx context.Context, profile *simulator.Simulator, nodes []*v1.Node, pods []*v1.Pod, ns, name string, opts rebalance.Options) error {
	var pod *v1.Pod
	for _, p := range pods {
		if p.Namespace == ns && p.Name == name {
			pod = p
		}
	}
	if pod == nil {
		return fmt.Errorf("pod %s/%s not found", ns, name)
	}
	eval, err := evaluate(ctx, profile, nodes, pods, pod)
	if err != nil {
		return err
	}
	plan, err := rebalance.PlanMoves(ctx, profile, nodes, pods, time.Now(), opts, nil)
	if err != nil {
		return err
	}
	report := PodReport{Pod: ns + "/" + name, Node: pod.Spec.NodeName, Evaluation: eval, Rebalance: verdict(plan, pod), Readings: readings(pod)}
	for _, n := range eval.Nodes {
		if n.Node == pod.Spec.NodeName {
			report.Tier = n.Tier
		}
	}
	if o.output == "json" {
		return writeJSON(o.out, report)
	}
	where := "not bound"
	if pod.Spec.NodeName != "" {
		where = fmt.Sprintf("on node %s (%s)", pod.Spec.NodeName, report.Tier)
	}
	fmt.Fprintf(o.out, "Pod %s/%s (schedulerName %s), %s\n\n", ns, name, pod.Spec.SchedulerName, where)
	for _, r := range report.Readings {
		fmt.Fprintf(o.out, "%s %s=%q read as %v", r.Kind, r.Key, r.Value, r.Reading)
		if r.Invalid != "" {
			fmt.Fprintf(o.out, " (not a boolean: allowed values are %s)", wellknown.AllowedBoolValues)
		}
		fmt.Fprintln(o.out)
	}
	if len(report.Readings) > 0 {
		fmt.Fprintln(o.out)
	}
	w := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tTIER\tAT RISK\tPOOL\tRECLAIMS\tFEASIBLE\tSCORE\tSPOTSCORE\tREJECTED BY")
	for _, n := range eval.Nodes {
		risk := "-"
		if n.AtRisk {
			risk = n.RiskReason
		}
		rejected := "-"
		if !n.Feasible {
			rejected = n.FailedPlugin + ": " + n.Reason
		}
		score, spot := "-", "-"
		if n.Feasible {
			score, spot = fmt.Sprint(n.Score), fmt.Sprint(n.SpotScore)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", n.Node, n.Tier, risk, n.Pool, reclaimsColumn(n), n.Feasible, score, spot, rejected)
	}
	_ = w.Flush()
	fmt.Fprintf(o.out, "RECLAIMS: the pool's reclaims in the last %s (reclaim history %s); in brackets, the SpotScore points they cost the node (weight %d %%).\n",
		profile.Model.ReclaimWindow(), historyName(profile.Model), profile.Model.ReclaimWeight())
	fmt.Fprintln(o.out)
	if eval.Chosen == "" {
		fmt.Fprintln(o.out, "The scheduler would find no node for it now (preemption aside).")
	} else {
		fmt.Fprintf(o.out, "The scheduler would put it on %s.\n", eval.Chosen)
	}
	switch v := report.Rebalance; v.Action {
	case "move":
		fmt.Fprintf(o.out, "Rebalancer (dry run): would evict it to move it to %s (%s).\n", v.ToNode, v.ToTier)
	case "stay":
		fmt.Fprintf(o.out, "Rebalancer (dry run): stays (%s).\n", v.Reason)
	default:
		fmt.Fprintln(o.out, "Rebalancer (dry run): not a candidate (already on the best tier it can use, or not scheduled by this profile).")
	}
	return nil
}

// reclaimsColumn is a node's pool reclaims and, when they changed its score, the points they
// took ("3 (-4)").
func reclaimsColumn(n simulator.NodeVerdict) string {
	if n.ReclaimEffect != 0 {
		return fmt.Sprintf("%d (%+d)", n.PoolReclaims, -n.ReclaimEffect)
	}
	return fmt.Sprint(n.PoolReclaims)
}

func historyName(m *capacity.Model) string {
	namespace, name := m.ReclaimHistoryConfigMap()
	return "ConfigMap " + namespace + "/" + name
}

// evaluate is the scheduler's view of pod if it were pending now: every other pod stays where
// it is, the pod itself leaves its node.
func evaluate(ctx context.Context, sim *simulator.Simulator, nodes []*v1.Node, pods []*v1.Pod, pod *v1.Pod) (*simulator.Evaluation, error) {
	others := make([]*v1.Pod, 0, len(pods))
	for _, p := range pods {
		if p.UID != pod.UID {
			others = append(others, p)
		}
	}
	session := sim.Begin(sim.NewSnapshot(nodes, others, false))
	defer session.End()
	return session.Evaluate(ctx, simulator.Unbound(pod))
}

func verdict(plan *rebalance.Plan, pod *v1.Pod) RebalanceVerdict {
	for _, m := range plan.Moves {
		if m.Pod.UID == pod.UID {
			return RebalanceVerdict{Action: "move", ToNode: m.To, ToTier: m.ToTier}
		}
	}
	for _, s := range plan.Skips {
		if s.Pod.UID == pod.UID {
			return RebalanceVerdict{Action: "stay", Reason: s.Reason}
		}
	}
	return RebalanceVerdict{Action: "not-considered"}
}

// ScopeReport is the JSON form of a namespace's or the cluster's explanation.
type ScopeReport struct {
	Scope       string         `json:"scope"`
	PodsPerTier map[string]int `json:"podsPerTier"`
	Moves       []MoveReport   `json:"moves"`
	Stays       []StayReport   `json:"stays"`
	Emptied     []string       `json:"emptiedNodes,omitempty"`
	// Policies: the workloads with a capacity policy.
	Policies []PolicyReport `json:"policies,omitempty"`
}

// MoveReport is one planned move.
type MoveReport struct {
	Pod      string `json:"pod"`
	From     string `json:"from"`
	FromTier string `json:"fromTier"`
	To       string `json:"to"`
	ToTier   string `json:"toTier"`
}

// PolicyReport is a workload's capacity policy, where its replicas are, and whether that
// keeps the policy.
type PolicyReport struct {
	Workload           string         `json:"workload"`
	Policy             string         `json:"policy"`
	NonReclaimable     int            `json:"nonReclaimable"`
	ReclaimablePerPool map[string]int `json:"reclaimablePerPool,omitempty"`
	// WantNonReclaimable is the policy's floor for the current replica count; MaxPerPool its
	// pool cap (0 when none).
	WantNonReclaimable int  `json:"wantNonReclaimable"`
	MaxPerPool         int  `json:"maxPerPool"`
	Holds              bool `json:"holds"`
	BelowOnDemandBase  int  `json:"belowOnDemandBase"`
	OverPoolCap        int  `json:"overPoolCap"`
}

// StayReport is a pod on a worse tier the rebalancer leaves, with the reason.
type StayReport struct {
	Pod    string `json:"pod"`
	Node   string `json:"node"`
	Reason string `json:"reason"`
}

func (o *options) explainScope(ctx context.Context, profile *simulator.Simulator, nodes []*v1.Node, pods []*v1.Pod, namespace string, opts rebalance.Options) error {
	plan, err := rebalance.PlanMoves(ctx, profile, nodes, pods, time.Now(), opts, nil)
	if err != nil {
		return err
	}
	in := func(p *v1.Pod) bool { return namespace == "" || p.Namespace == namespace }
	report := ScopeReport{Scope: "cluster", PodsPerTier: map[string]int{}}
	if namespace != "" {
		report.Scope = "namespace " + namespace
	}
	tierOf := map[string]string{}
	for _, n := range nodes {
		c := profile.Model.Classify(n)
		tierOf[n.Name] = c.TierName
		if c.AtRisk {
			tierOf[n.Name] += " (at risk)"
		}
	}
	for _, p := range pods {
		if in(p) && p.Spec.SchedulerName == profile.SchedulerName && p.Spec.NodeName != "" && p.Status.Phase == v1.PodRunning {
			report.PodsPerTier[tierOf[p.Spec.NodeName]]++
		}
	}
	scoped := &rebalance.Plan{EmptiedNodes: plan.EmptiedNodes}
	for _, m := range plan.Moves {
		if in(m.Pod) {
			scoped.Moves = append(scoped.Moves, m)
			report.Moves = append(report.Moves, MoveReport{Pod: m.Pod.Namespace + "/" + m.Pod.Name, From: m.From, FromTier: m.FromTier, To: m.To, ToTier: m.ToTier})
		}
	}
	for _, s := range plan.Skips {
		if in(s.Pod) {
			scoped.Skips = append(scoped.Skips, s)
			report.Stays = append(report.Stays, StayReport{Pod: s.Pod.Namespace + "/" + s.Pod.Name, Node: s.Node, Reason: s.Reason})
		}
	}
	report.Emptied = plan.EmptiedNodes
	for _, st := range rebalance.PolicyStatuses(profile, nodes, pods) {
		if namespace == "" || st.Namespace == namespace {
			target := st.Policy.Target(st.Counts.Total())
			report.Policies = append(report.Policies, PolicyReport{
				Workload: st.Namespace + "/" + st.Name, Policy: st.Policy.String(),
				NonReclaimable: st.Counts.NonReclaimable, ReclaimablePerPool: st.Counts.ReclaimablePerPool,
				WantNonReclaimable: target.NonReclaimable, MaxPerPool: poolCap(st.Policy, st.Counts.Total()),
				Holds: st.Violation.Holds(), BelowOnDemandBase: st.Violation.Shortfall, OverPoolCap: st.Violation.PoolExcess,
			})
		}
	}
	if o.output == "json" {
		return writeJSON(o.out, report)
	}
	fmt.Fprintf(o.out, "Pods of profile %s in %s, per tier:\n", profile.SchedulerName, report.Scope)
	w := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIER\tPODS")
	var tiers []string
	for t := range report.PodsPerTier {
		tiers = append(tiers, t)
	}
	sort.Strings(tiers)
	for _, t := range tiers {
		fmt.Fprintf(w, "%s\t%d\n", t, report.PodsPerTier[t])
	}
	_ = w.Flush()
	if len(report.Policies) > 0 {
		fmt.Fprintln(o.out, "\nCapacity policies:")
		w := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "WORKLOAD\tPOLICY\tREPLICAS\tHOLDS")
		for _, p := range report.Policies {
			counts := policy.FormatCounts(policy.Counts{NonReclaimable: p.NonReclaimable, ReclaimablePerPool: p.ReclaimablePerPool})
			holds := "yes"
			if !p.Holds {
				holds = fmt.Sprintf("no: %d below the on-demand floor of %d, %d over the pool cap", p.BelowOnDemandBase, p.WantNonReclaimable, p.OverPoolCap)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Workload, p.Policy, counts, holds)
		}
		_ = w.Flush()
	}
	fmt.Fprintf(o.out, "\nRebalancer plan now (dry run): %d move(s)\n", len(report.Moves))
	rebalance.PrintPlan(o.out, scoped)
	return nil
}

func poolCap(p policy.Policy, n int) int {
	if c := p.PoolCap(n); c != math.MaxInt {
		return c
	}
	return 0
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
