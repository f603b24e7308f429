// Package compat fits the scheduler framework spot-scheduler is built on (kube-scheduler 1.34) to
// the API server it talks to, from what that server serves (discovery), not from its version
// string.
//
// Why: kube-scheduler 1.34 turns on features whose informers list APIs older servers do not
// serve. With DynamicResourceAllocation (GA and on in 1.34), scheduler.New starts informers for
// resource.k8s.io/v1 ResourceClaims, ResourceSlices and DeviceClasses; a 1.32 or 1.33 API server
// serves no resource.k8s.io/v1, the informers never sync, and the scheduler waits for them
// forever, binding nothing, its log full of "failed to list *v1.ResourceClaim". Adapt turns such
// a feature off (with a log line saying so) when the server does not serve what it needs, and
// refuses, naming the server's version and the supported range, a server outside that range or
// one lacking an API every component needs.
package compat

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/version"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/discovery"
	"k8s.io/component-base/featuregate"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/features"
)

// The API server minors spot-scheduler is tested against (make test-compat, docs/compatibility.md).
const (
	MinMinor = 32
	MaxMinor = 38
)

// discoveryTimeout bounds the start-up question to the API server: a server that does not
// answer within it is reported rather than waited for.
const discoveryTimeout = 30 * time.Second

// SupportedRange names the supported server minors for messages.
var SupportedRange = fmt.Sprintf("1.%d to 1.%d", MinMinor, MaxMinor)

// essential are the APIs the scheduler's informers (kube-scheduler's own and its default
// plugins': volume binding and limits, preemption, topology spread), its leader election and
// events, the rebalancer (evictions, PDBs) and the deletion-cost controller always use. Without
// one of them a component would wait forever for an informer, so Adapt refuses such a server.
var essential = []schema.GroupVersionResource{
	{Version: "v1", Resource: "pods"},
	{Version: "v1", Resource: "pods/binding"},
	{Version: "v1", Resource: "pods/eviction"},
	{Version: "v1", Resource: "nodes"},
	{Version: "v1", Resource: "namespaces"},
	{Version: "v1", Resource: "persistentvolumes"},
	{Version: "v1", Resource: "persistentvolumeclaims"},
	{Group: "apps", Version: "v1", Resource: "replicasets"},
	{Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"},
	{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"},
	{Group: "storage.k8s.io", Version: "v1", Resource: "csinodes"},
	{Group: "storage.k8s.io", Version: "v1", Resource: "csidrivers"},
	{Group: "storage.k8s.io", Version: "v1", Resource: "csistoragecapacities"},
	{Group: "storage.k8s.io", Version: "v1", Resource: "volumeattachments"},
	{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"},
	{Group: "events.k8s.io", Version: "v1", Resource: "events"},
	{Group: "scheduling.k8s.io", Version: "v1", Resource: "priorityclasses"},
}

// optionalFeature is a feature gate of the scheduler framework whose informers need APIs an
// older server may not serve. When the gate is on and the server lacks one of them, Adapt turns
// the gate off.
type optionalFeature struct {
	gate      featuregate.Feature
	resources []schema.GroupVersionResource
	// without says what the components cannot do with the feature off.
	without string
}

// optional lists every such feature of kube-scheduler 1.34 (found in pkg/scheduler: scheduler.New
// and its event handlers). VolumeAttributesClass is not among them: the scheduler only reads the
// PVC and PV fields, it starts no informer for VolumeAttributesClasses.
var optional = []optionalFeature{
	{
		gate: features.DynamicResourceAllocation,
		resources: []schema.GroupVersionResource{
			{Group: "resource.k8s.io", Version: "v1", Resource: "resourceclaims"},
			{Group: "resource.k8s.io", Version: "v1", Resource: "resourceslices"},
			{Group: "resource.k8s.io", Version: "v1", Resource: "deviceclasses"},
		},
		without: "pods that request devices through ResourceClaims are not supported",
	},
	{
		// Alpha in 1.34 (off unless --feature-gates turns it on).
		gate:      features.DRADeviceTaints,
		resources: []schema.GroupVersionResource{{Group: "resource.k8s.io", Version: "v1alpha3", Resource: "devicetaintrules"}},
		without:   "DeviceTaintRules are ignored",
	},
}

// Adapt asks the API server behind client which version it runs and which APIs it serves, and
// fits this process's scheduler framework to it: a feature whose APIs the server does not serve
// is turned off in the process-wide feature gate, with a log line saying so. It returns an error
// naming the server's version and the supported range when the server is outside that range or
// does not serve an API the components always need. Call it once, before building a scheduler
// framework (kube-scheduler's Setup, the rebalancer's and explain's profile). It waits for the
// server for 30 seconds at most.
func Adapt(ctx context.Context, client discovery.DiscoveryInterface, logger klog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	_, err := adapt(ctx, client, logger, utilfeature.DefaultMutableFeatureGate)
	return err
}

// adapt is Adapt on a given feature gate; it returns the features it turned off.
func adapt(ctx context.Context, client discovery.DiscoveryInterface, logger klog.Logger, gate featuregate.MutableFeatureGate) ([]featuregate.Feature, error) {
	info, served, err := discover(ctx, client)
	if err != nil {
		return nil, err
	}
	minor, err := serverMinor(info)
	if err != nil {
		return nil, err
	}
	if minor < MinMinor || minor > MaxMinor {
		return nil, fmt.Errorf("the Kubernetes API server runs %s, outside the versions spot-scheduler supports (%s, see docs/compatibility.md)", info.GitVersion, SupportedRange)
	}
	if missing := notServed(served, essential); len(missing) > 0 {
		return nil, fmt.Errorf("the Kubernetes API server (%s) does not serve %s, which spot-scheduler needs (supported: %s with these APIs enabled)", info.GitVersion, strings.Join(missing, ", "), SupportedRange)
	}
	var off []featuregate.Feature
	for _, f := range optional {
		if !gate.Enabled(f.gate) {
			continue
		}
		missing := notServed(served, f.resources)
		if len(missing) == 0 {
			continue
		}
		if err := gate.SetFromMap(map[string]bool{string(f.gate): false}); err != nil {
			return nil, fmt.Errorf("turning off feature %s, whose APIs the API server (%s) does not serve (%s): %w", f.gate, info.GitVersion, strings.Join(missing, ", "), err)
		}
		off = append(off, f.gate)
		logger.Info("The API server does not serve what a feature needs: feature turned off",
			"feature", f.gate, "serverVersion", info.GitVersion, "notServed", missing, "consequence", f.without)
	}
	logger.V(2).Info("API server compatible", "serverVersion", info.GitVersion, "supported", SupportedRange, "featuresTurnedOff", off)
	return off, nil
}

// discover returns the server's version and the resources it serves. Groups the server failed
// to describe (an aggregated API whose backend is down) are left out: if one of them is needed,
// the check that needs it names it.
func discover(ctx context.Context, client discovery.DiscoveryInterface) (*version.Info, sets.Set[schema.GroupVersionResource], error) {
	type result struct {
		info   *version.Info
		lists  []*metav1.APIResourceList
		err    error
		failed string
	}
	done := make(chan result, 1)
	go func() {
		var r result
		if r.info, r.err = client.ServerVersion(); r.err != nil {
			r.err = fmt.Errorf("asking the Kubernetes API server for its version: %w", r.err)
			done <- r
			return
		}
		_, r.lists, r.err = client.ServerGroupsAndResources()
		var partial *discovery.ErrGroupDiscoveryFailed
		if errors.As(r.err, &partial) {
			var groups []string
			for gv := range partial.Groups {
				groups = append(groups, gv.String())
			}
			sort.Strings(groups)
			r.failed, r.err = strings.Join(groups, ", "), nil
		}
		if r.err != nil {
			r.err = fmt.Errorf("asking the Kubernetes API server (%s) which APIs it serves: %w", r.info.GitVersion, r.err)
		}
		done <- r
	}()
	var r result
	select {
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("asking the Kubernetes API server for its version and APIs: %w", ctx.Err())
	case r = <-done:
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	if r.failed != "" {
		klog.FromContext(ctx).Info("The API server could not describe some API groups; they count as not served", "groups", r.failed)
	}
	served := sets.New[schema.GroupVersionResource]()
	for _, list := range r.lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, res := range list.APIResources {
			served.Insert(gv.WithResource(res.Name))
		}
	}
	return r.info, served, nil
}

// serverMinor reads the minor version. Providers decorate it ("32+" on EKS and GKE), so the
// digits are taken from Minor, else from GitVersion (v1.32.5-eks-...).
func serverMinor(info *version.Info) (int, error) {
	digits := func(s string) string {
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		return s[:end]
	}
	major, minor := digits(info.Major), digits(info.Minor)
	if major == "" || minor == "" {
		parts := strings.SplitN(strings.TrimPrefix(info.GitVersion, "v"), ".", 3)
		if len(parts) >= 2 {
			major, minor = digits(parts[0]), digits(parts[1])
		}
	}
	m, err := strconv.Atoi(minor)
	if err != nil || major != "1" {
		return 0, fmt.Errorf("the Kubernetes API server reports version %q (major %q, minor %q), which spot-scheduler cannot read (supported: %s)", info.GitVersion, info.Major, info.Minor, SupportedRange)
	}
	return m, nil
}

func notServed(served sets.Set[schema.GroupVersionResource], want []schema.GroupVersionResource) []string {
	var missing []string
	for _, r := range want {
		if !served.Has(r) {
			missing = append(missing, describe(r))
		}
	}
	return missing
}

func describe(r schema.GroupVersionResource) string {
	if r.Group == "" {
		return r.Version + " " + r.Resource
	}
	return r.Group + "/" + r.Version + " " + r.Resource
}
