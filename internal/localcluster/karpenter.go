package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KarpenterDirEnv names the environment variable holding the directory hack/build-karpenter.sh
// prints (the karpenter binary, its CRDs and instance types).
const KarpenterDirEnv = "SPOT_SCHEDULER_KARPENTER_DIR"

// Labels and taints Karpenter puts on the nodes it creates. The product's default capacity
// model classifies them with no configuration: the capacity type is a tier selector, the
// NodePool a pool label key (pkg/apis/config/v1alpha1 defaults).
const (
	KarpenterCapacityTypeLabel = "karpenter.sh/capacity-type"
	KarpenterNodePoolLabel     = "karpenter.sh/nodepool"
	KarpenterDisruptedTaint    = "karpenter.sh/disrupted"
	KarpenterDoNotDisrupt      = "karpenter.sh/do-not-disrupt"
	// KarpenterPriceLabel carries the hourly price of the offering a kwok node was launched on.
	KarpenterPriceLabel = "eks-node-viewer/instance-price"
	// KWOKNodeClassName is the KWOKNodeClass every NodePool started here refers to.
	KWOKNodeClassName = "default"
)

// Karpenter's API groups (only what this package reads and writes, through a dynamic client:
// Karpenter's own Go module pins other Kubernetes libraries than the product).
var (
	NodePoolGVR       = schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodepools"}
	NodeClaimGVR      = schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodeclaims"}
	KWOKNodeClassGVR  = schema.GroupVersionResource{Group: "karpenter.kwok.sh", Version: "v1alpha1", Resource: "kwoknodeclasses"}
	CapacityBufferGVR = schema.GroupVersionResource{Group: "autoscaling.x-k8s.io", Version: "v1beta1", Resource: "capacitybuffers"}
)

// Capacity types of Karpenter offerings.
const (
	CapacityTypeSpot     = "spot"
	CapacityTypeOnDemand = "on-demand"
)

// Consolidation policies of a NodePool.
const (
	ConsolidateWhenEmpty                = "WhenEmpty"
	ConsolidateWhenEmptyOrUnderutilized = "WhenEmptyOrUnderutilized"
	// ConsolidateBalanced (Karpenter v1.15+) consolidates a non-empty node only when the saving
	// outweighs the disruption.
	ConsolidateBalanced = "Balanced"
)

// KarpenterOptions say how to run Karpenter (its kwok cloud provider: nodes are API objects
// that the cluster's kwok makes Ready) against the local API server.
type KarpenterOptions struct {
	// Dir holds karpenter, crds/ and instance_types.json (hack/build-karpenter.sh). Empty
	// means $SPOT_SCHEDULER_KARPENTER_DIR, else the script's output.
	Dir string
	// NodePools to create (each refers to the KWOKNodeClass "default"). Nil means
	// DefaultNodePools(); an empty non-nil list creates none (the caller creates its own).
	NodePools []NodePool
	// InstanceTypes Karpenter may launch. Nil means DefaultInstanceTypes().
	InstanceTypes []InstanceType
	// FeatureGates are added to Karpenter's defaults, e.g. "CapacityBuffer=true".
	FeatureGates []string
	// ExtraArgs are passed to the karpenter binary as they are.
	ExtraArgs []string
	// NodeRegistrationDelay is how long after a launch the kwok provider creates the Node
	// object (the KWOKNodeClass's nodeRegistrationDelay: a machine booting and joining).
	NodeRegistrationDelay time.Duration
}

// NodePool is the part of a Karpenter NodePool the product's stories vary.
type NodePool struct {
	Name string
	// CapacityType is "spot" or "on-demand" (the NodePool's karpenter.sh/capacity-type requirement).
	CapacityType string
	// Weight orders NodePools for new nodes: the highest weight that fits is tried first.
	Weight int32
	// CPULimit caps the CPUs of all the NodePool's nodes ("" = no limit). A limit at or below
	// what the NodePool already runs stops Karpenter launching more there.
	CPULimit string
	// ConsolidationPolicy is "WhenEmpty" or "WhenEmptyOrUnderutilized" (default).
	ConsolidationPolicy string
	// ConsolidateAfter is how long a node must see no pod arrive or leave before Karpenter
	// may consolidate it. Nil means Never (no consolidation at all).
	ConsolidateAfter *time.Duration
	// InstanceTypes restricts the NodePool to these instance type names (nil: any).
	InstanceTypes []string
	// Zones restricts the NodePool to these zones (nil: any).
	Zones []string
	// DisruptionBudget is the NodePool's disruption budget in nodes ("10%" is Karpenter's
	// default; "" means "100%": the tests bound the time, not the rate).
	DisruptionBudget string
	// Labels and Taints are put on every node of the NodePool (e.g. a virtual-node pool's
	// type=virtual-kubelet label and virtual-kubelet.io/provider taint).
	Labels map[string]string
	Taints []v1.Taint
}

// InstanceType is one machine shape with a spot and an on-demand offering in every zone.
type InstanceType struct {
	Name          string
	CPU           int
	MemoryGi      int
	OnDemandPrice float64
	SpotPrice     float64
	Zones         []string
}

// DefaultInstanceTypes are three shapes in one zone; spot costs 30% of on-demand (a typical
// spot discount). Karpenter's kwok provider reserves 100m CPU and 10Mi per node, so a 4-CPU
// node holds three 1-CPU pods.
func DefaultInstanceTypes() []InstanceType {
	zones := []string{"zone-a"}
	return []InstanceType{
		{Name: "c-2x", CPU: 2, MemoryGi: 8, OnDemandPrice: 0.10, SpotPrice: 0.03, Zones: zones},
		{Name: "c-4x", CPU: 4, MemoryGi: 16, OnDemandPrice: 0.20, SpotPrice: 0.06, Zones: zones},
		{Name: "c-8x", CPU: 8, MemoryGi: 32, OnDemandPrice: 0.40, SpotPrice: 0.12, Zones: zones},
	}
}

// DefaultNodePools are a spot NodePool tried first (weight 100) and an on-demand one
// (weight 10), both consolidating empty or underutilized nodes after 10 s.
func DefaultNodePools() []NodePool {
	after := 10 * time.Second
	return []NodePool{
		{Name: "spot", CapacityType: CapacityTypeSpot, Weight: 100, ConsolidateAfter: &after},
		{Name: "on-demand", CapacityType: CapacityTypeOnDemand, Weight: 10, ConsolidateAfter: &after},
	}
}

// Karpenter is a running Karpenter.
type Karpenter struct {
	Process *Process
	// MetricsURL is Karpenter's Prometheus endpoint (plain HTTP on loopback).
	MetricsURL string
	Dynamic    dynamic.Interface
	Dir        string

	client kubernetes.Interface
}

// ResolveKarpenterDir finds Karpenter's build: dir if given, else $SPOT_SCHEDULER_KARPENTER_DIR,
// else the output of hack/build-karpenter.sh found above the working directory (which builds it
// on first use, ~8 minutes on 2 cores, and reuses its cache afterwards).
func ResolveKarpenterDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(KarpenterDirEnv)
	}
	if dir == "" {
		script, err := findUp("hack/build-karpenter.sh")
		if err != nil {
			return "", fmt.Errorf("no %s set and %w", KarpenterDirEnv, err)
		}
		cmd := exec.Command("bash", script)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("building Karpenter with %s: %w", script, err)
		}
		dir = strings.TrimSpace(string(out))
	}
	for _, f := range []string{"karpenter", "crds/karpenter.sh_nodepools.yaml", "crds/karpenter.kwok.sh_kwoknodeclasses.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return "", fmt.Errorf("Karpenter build incomplete in %s (run hack/build-karpenter.sh): %w", dir, err)
		}
	}
	return dir, nil
}

// Validate reports the first bad option, naming the field and the allowed values.
func (o KarpenterOptions) Validate() error {
	names := map[string]bool{}
	for i, p := range o.NodePools {
		field := fmt.Sprintf("Karpenter.NodePools[%d]", i)
		if p.Name == "" {
			return fmt.Errorf("%s.Name: must not be empty", field)
		}
		if names[p.Name] {
			return fmt.Errorf("%s.Name: %q is used twice", field, p.Name)
		}
		names[p.Name] = true
		if p.CapacityType != CapacityTypeSpot && p.CapacityType != CapacityTypeOnDemand {
			return fmt.Errorf("%s.CapacityType: %q is not one of %q, %q", field, p.CapacityType, CapacityTypeSpot, CapacityTypeOnDemand)
		}
		switch p.ConsolidationPolicy {
		case "", ConsolidateWhenEmpty, ConsolidateWhenEmptyOrUnderutilized, ConsolidateBalanced:
		default:
			return fmt.Errorf("%s.ConsolidationPolicy: %q is not one of %q, %q, %q", field, p.ConsolidationPolicy, ConsolidateWhenEmpty, ConsolidateWhenEmptyOrUnderutilized, ConsolidateBalanced)
		}
		if p.Weight < 0 || p.Weight > 100 {
			return fmt.Errorf("%s.Weight: %d is outside 0..100", field, p.Weight)
		}
		if p.DisruptionBudget != "" && !validBudget(p.DisruptionBudget) {
			return fmt.Errorf("%s.DisruptionBudget: %q is not a node count or a percentage (e.g. \"10%%\")", field, p.DisruptionBudget)
		}
		if p.ConsolidateAfter != nil && *p.ConsolidateAfter < 0 {
			return fmt.Errorf("%s.ConsolidateAfter: %s is negative", field, *p.ConsolidateAfter)
		}
	}
	if o.NodeRegistrationDelay < 0 {
		return fmt.Errorf("Karpenter.NodeRegistrationDelay: %s is negative", o.NodeRegistrationDelay)
	}
	for i, it := range o.InstanceTypes {
		field := fmt.Sprintf("Karpenter.InstanceTypes[%d]", i)
		if it.Name == "" || it.CPU <= 0 || it.MemoryGi <= 0 {
			return fmt.Errorf("%s: Name, CPU and MemoryGi must be set (got %+v)", field, it)
		}
		if it.OnDemandPrice <= 0 || it.SpotPrice <= 0 {
			return fmt.Errorf("%s: OnDemandPrice and SpotPrice must be positive (got %+v)", field, it)
		}
		if len(it.Zones) == 0 {
			return fmt.Errorf("%s.Zones: must name at least one zone", field)
		}
	}
	return nil
}

// StartKarpenter installs Karpenter's CRDs, a KWOKNodeClass, the NodePools and an instance
// types file, then runs Karpenter out of cluster against this API server (no leader
// election) and waits until it serves and every NodePool is Ready.
func (c *Cluster) StartKarpenter(ctx context.Context, opts KarpenterOptions) (*Karpenter, error) {
	if opts.NodePools == nil {
		opts.NodePools = DefaultNodePools()
	}
	if opts.InstanceTypes == nil {
		opts.InstanceTypes = DefaultInstanceTypes()
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dir, err := ResolveKarpenterDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	if _, err := envtest.InstallCRDs(c.Config, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(dir, "crds")},
		ErrorIfPathMissing: true,
		MaxTime:            30 * time.Second,
	}); err != nil {
		return nil, fmt.Errorf("installing Karpenter's CRDs from %s: %w", dir, err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	k := &Karpenter{Dynamic: dyn, Dir: dir, client: c.Client}
	nodeClass := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "karpenter.kwok.sh/v1alpha1",
		"kind":       "KWOKNodeClass",
		"metadata":   map[string]any{"name": KWOKNodeClassName},
	}}
	if opts.NodeRegistrationDelay > 0 {
		nodeClass.Object["spec"] = map[string]any{"nodeRegistrationDelay": opts.NodeRegistrationDelay.String()}
	}
	if _, err := dyn.Resource(KWOKNodeClassGVR).Create(ctx, nodeClass, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating the KWOKNodeClass: %w", err)
	}
	for _, p := range opts.NodePools {
		if err := k.CreateNodePool(ctx, p); err != nil {
			return nil, err
		}
	}
	typesFile := filepath.Join(c.Dir, "karpenter-instance-types.json")
	if err := writeInstanceTypes(typesFile, opts.InstanceTypes); err != nil {
		return nil, err
	}
	metricsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	healthPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	gates := append([]string{"NodeRepair=false", "ReservedCapacity=true", "SpotToSpotConsolidation=false", "NodeOverlay=false", "StaticCapacity=false", "CapacityBuffer=false"}, opts.FeatureGates...)
	args := append([]string{
		"--disable-leader-election",
		"--metrics-port=" + strconv.Itoa(metricsPort),
		"--health-probe-port=" + strconv.Itoa(healthPort),
		"--instance-types-file-path=" + typesFile,
		"--feature-gates=" + strings.Join(gates, ","),
		"--log-level=debug",
	}, opts.ExtraArgs...)
	bin := filepath.Join(dir, "karpenter")
	// controller-runtime finds the kubeconfig through $KUBECONFIG (Karpenter has no flag for it).
	p, err := c.startProcessEnv(ctx, "karpenter", bin, []string{"KUBECONFIG=" + c.Kubeconfig}, args...)
	if err != nil {
		return nil, err
	}
	k.Process = p
	k.MetricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort)
	httpClient := &http.Client{Timeout: 2 * time.Second}
	if err := WaitForAPI(ctx, 90*time.Second, func(ctx context.Context) (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("karpenter exited: %v (log %s)", p.Wait(0), p.Log)
		}
		resp, err := httpClient.Get(readyz)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		return nil, fmt.Errorf("waiting for Karpenter to serve %s: %w (log %s)", readyz, err, p.Log)
	}
	for _, np := range opts.NodePools {
		if err := k.WaitNodePoolReady(ctx, np.Name, 60*time.Second); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// startProcessEnv is StartProcess with extra environment variables.
func (c *Cluster) startProcessEnv(ctx context.Context, name, bin string, env []string, args ...string) (*Process, error) {
	p, err := c.startProcess(ctx, name, bin, func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), env...) }, args...)
	return p, err
}

// NodePoolObject renders a NodePool as Karpenter's API object.
func NodePoolObject(p NodePool) *unstructured.Unstructured {
	requirements := []any{map[string]any{
		"key": KarpenterCapacityTypeLabel, "operator": "In", "values": []any{p.CapacityType},
	}}
	for _, req := range []struct {
		key    string
		values []string
	}{{v1.LabelInstanceTypeStable, p.InstanceTypes}, {v1.LabelTopologyZone, p.Zones}} {
		if key, values := req.key, req.values; len(values) > 0 {
			in := make([]any, len(values))
			for i, v := range values {
				in[i] = v
			}
			requirements = append(requirements, map[string]any{"key": key, "operator": "In", "values": in})
		}
	}
	budget := p.DisruptionBudget
	if budget == "" {
		budget = "100%"
	}
	policy := p.ConsolidationPolicy
	if policy == "" {
		policy = ConsolidateWhenEmptyOrUnderutilized
	}
	consolidateAfter := "Never"
	if p.ConsolidateAfter != nil {
		consolidateAfter = p.ConsolidateAfter.String()
	}
	spec := map[string]any{
		"weight": int64(p.Weight),
		"disruption": map[string]any{
			"consolidationPolicy": policy,
			"consolidateAfter":    consolidateAfter,
			"budgets":             []any{map[string]any{"nodes": budget}},
		},
		"template": map[string]any{
			"spec": map[string]any{
				"nodeClassRef": map[string]any{"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": KWOKNodeClassName},
				"requirements": requirements,
				"expireAfter":  "Never",
			},
		},
	}
	if p.CPULimit != "" {
		spec["limits"] = map[string]any{"cpu": p.CPULimit}
	}
	if len(p.Labels) > 0 {
		labels := map[string]any{}
		for k, v := range p.Labels {
			labels[k] = v
		}
		spec["template"].(map[string]any)["metadata"] = map[string]any{"labels": labels}
	}
	if len(p.Taints) > 0 {
		taints := make([]any, 0, len(p.Taints))
		for _, t := range p.Taints {
			taints = append(taints, map[string]any{"key": t.Key, "value": t.Value, "effect": string(t.Effect)})
		}
		spec["template"].(map[string]any)["spec"].(map[string]any)["taints"] = taints
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "karpenter.sh/v1",
		"kind":       "NodePool",
		"metadata":   map[string]any{"name": p.Name},
		"spec":       spec,
	}}
}

// CreateNodePool creates a NodePool.
func (k *Karpenter) CreateNodePool(ctx context.Context, p NodePool) error {
	if _, err := k.Dynamic.Resource(NodePoolGVR).Create(ctx, NodePoolObject(p), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating NodePool %s: %w", p.Name, err)
	}
	return nil
}

// WaitNodePoolReady waits until Karpenter reports the NodePool Ready.
func (k *Karpenter) WaitNodePoolReady(ctx context.Context, name string, timeout time.Duration) error {
	err := WaitForAPI(ctx, timeout, func(ctx context.Context) (bool, error) {
		if k.Process != nil && k.Process.Exited() {
			return false, fmt.Errorf("karpenter exited: %v (log %s)", k.Process.Wait(0), k.Process.Log)
		}
		np, err := k.Dynamic.Resource(NodePoolGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conditions, _, _ := unstructured.NestedSlice(np.Object, "status", "conditions")
		for _, c := range conditions {
			m, _ := c.(map[string]any)
			if m["type"] == "Ready" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("NodePool %s not Ready: %w", name, err)
	}
	return nil
}

// SetNodePoolCPULimit sets (or, with "", removes) a NodePool's CPU limit. A limit at or below
// what the NodePool runs stops Karpenter launching more there: it turns to the next NodePool
// by weight, as it does when a cloud has no capacity of a kind left.
func (k *Karpenter) SetNodePoolCPULimit(ctx context.Context, name, cpu string) error {
	patch := []byte(`{"spec":{"limits":null}}`)
	if cpu != "" {
		patch = []byte(fmt.Sprintf(`{"spec":{"limits":{"cpu":%q}}}`, cpu))
	}
	if _, err := k.Dynamic.Resource(NodePoolGVR).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("setting the CPU limit of NodePool %s to %q: %w", name, cpu, err)
	}
	return nil
}

// NodeClaims lists Karpenter's NodeClaims.
func (k *Karpenter) NodeClaims(ctx context.Context) ([]unstructured.Unstructured, error) {
	list, err := k.Dynamic.Resource(NodeClaimGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// Interrupt deletes the NodeClaim behind a node, as Karpenter's interruption handling does on
// a spot interruption notice: Karpenter taints the node karpenter.sh/disrupted, evicts its
// pods (honouring PDBs and karpenter.sh/do-not-disrupt) and removes the node.
func (k *Karpenter) Interrupt(ctx context.Context, nodeName string) error {
	node, err := k.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	claims, err := k.NodeClaims(ctx)
	if err != nil {
		return err
	}
	for _, nc := range claims {
		providerID, _, _ := unstructured.NestedString(nc.Object, "status", "providerID")
		if providerID != "" && providerID == node.Spec.ProviderID {
			if err := k.Dynamic.Resource(NodeClaimGVR).Delete(ctx, nc.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("deleting NodeClaim %s of node %s: %w", nc.GetName(), nodeName, err)
			}
			return nil
		}
	}
	return fmt.Errorf("no NodeClaim has the provider ID %q of node %s", node.Spec.ProviderID, nodeName)
}

// instanceTypeJSON is the shape of Karpenter's kwok instance types file
// (sigs.k8s.io/karpenter/kwok/cloudprovider InstanceTypeOptions).
type instanceTypeJSON struct {
	Name             string            `json:"name"`
	Offerings        []offeringJSON    `json:"offerings"`
	Architecture     string            `json:"architecture"`
	OperatingSystems []string          `json:"operatingSystems"`
	Resources        map[string]string `json:"resources"`
}

type offeringJSON struct {
	Price        float64                      `json:"Price"`
	Available    bool                         `json:"Available"`
	Requirements []v1.NodeSelectorRequirement `json:"Requirements"`
}

func writeInstanceTypes(path string, types []InstanceType) error {
	out := make([]instanceTypeJSON, 0, len(types))
	for _, t := range types {
		it := instanceTypeJSON{
			Name:             t.Name,
			Architecture:     "amd64",
			OperatingSystems: []string{"linux"},
			Resources: map[string]string{
				"cpu":    strconv.Itoa(t.CPU),
				"memory": fmt.Sprintf("%dGi", t.MemoryGi),
				"pods":   "110",
			},
		}
		for _, zone := range t.Zones {
			for _, o := range []struct {
				capacityType string
				price        float64
			}{{CapacityTypeSpot, t.SpotPrice}, {CapacityTypeOnDemand, t.OnDemandPrice}} {
				it.Offerings = append(it.Offerings, offeringJSON{
					Price:     o.price,
					Available: true,
					Requirements: []v1.NodeSelectorRequirement{
						{Key: KarpenterCapacityTypeLabel, Operator: v1.NodeSelectorOpIn, Values: []string{o.capacityType}},
						{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: []string{zone}},
					},
				})
			}
		}
		out = append(out, it)
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// LiveNodeNames returns the names of the nodes matching labelSelector that are not being
// deleted, sorted.
func LiveNodeNames(ctx context.Context, client kubernetes.Interface, labelSelector string) ([]string, error) {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: labelSelector})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes.Items {
		if n.DeletionTimestamp == nil {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// validBudget: a Karpenter disruption budget in nodes, a count or a percentage.
func validBudget(s string) bool {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	return err == nil && n >= 0 && (!strings.HasSuffix(s, "%") || n <= 100)
}
