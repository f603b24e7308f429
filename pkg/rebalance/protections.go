package rebalance

import (
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	schedulingapi "k8s.io/kubernetes/pkg/apis/scheduling"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// Skip reasons: a bounded set, used as metric label values and in the plan.
const (
	SkipNotRunning     = "not_running"
	SkipTerminating    = "terminating"
	SkipBarePod        = "bare_pod"
	SkipDaemonSet      = "daemonset"
	SkipMirrorPod      = "mirror_pod"
	SkipSystemCritical = "system_critical"
	SkipLocalStorage   = "local_storage"
	SkipResourceClaims = "resource_claims"
	SkipOptedOut       = "opted_out"
	SkipDoNotDisrupt   = "do_not_disrupt"
	SkipNotSafeToEvict = "not_safe_to_evict"
	SkipTooYoung       = "too_young"
	SkipNoBetterRoom   = "no_better_room"
	// SkipBudget: the workload has its disruption budget's worth of pods unavailable.
	SkipBudget = "disruption_budget"
	// SkipInFlight: MaxEvictionsInFlight evictions await Ready replacements cluster-wide.
	SkipInFlight        = "evictions_in_flight"
	SkipPDB             = "pdb"
	SkipChanged         = "changed_before_eviction"
	SkipEvictionFailure = "eviction_error"
)

const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// Options tune the rebalancer; defaults in DefaultOptions.
type Options struct {
	// MinPodAge: younger pods are left alone (they may still be starting, or just moved).
	MinPodAge time.Duration
	// AllowLocalStorage lets pods with emptyDir (on disk) or hostPath volumes move; their data
	// is lost on eviction.
	AllowLocalStorage bool
	// DisruptionBudget is the share of a workload's desired replicas that may be unavailable
	// while the rebalancer moves it (wellknown.DisruptionBudgetAnnotation overrides it per
	// workload; budget.go).
	DisruptionBudget intstr.IntOrString
	// MaxEvictionsInFlight bounds the evictions awaiting Ready replacements cluster-wide.
	MaxEvictionsInFlight int
	// PackWithinTier: when nothing else moves, empty one node per pass onto the other nodes
	// of its band, so that the autoscaler can remove it (pack.go).
	PackWithinTier bool
	// packBackoff, set by the controller, tells the nodes not to pack again yet (their
	// packing taint was removed while they still held pods).
	packBackoff func(node string) bool
}

// DefaultDisruptionBudget: a quarter of a workload, as a Deployment's default maxUnavailable.
var DefaultDisruptionBudget = intstr.FromString("25%")

// DefaultMaxEvictionsInFlight is sized for a large cluster: the API server and the scheduler
// take a thousand replacements at once in their stride.
const DefaultMaxEvictionsInFlight = 1000

// DefaultOptions are the rebalancer's defaults.
func DefaultOptions() Options {
	return Options{
		MinPodAge:            2 * time.Minute,
		DisruptionBudget:     DefaultDisruptionBudget,
		MaxEvictionsInFlight: DefaultMaxEvictionsInFlight,
	}
}

// protection returns why the pod must not be moved ("" when it may be), and the error naming
// an opt-out annotation whose value is not a boolean (read as "do not move").
func protection(pod *v1.Pod, now time.Time, opts Options) (string, error) {
	switch {
	case pod.DeletionTimestamp != nil:
		return SkipTerminating, nil
	case pod.Status.Phase != v1.PodRunning:
		return SkipNotRunning, nil
	}
	if _, ok := pod.Annotations[mirrorPodAnnotation]; ok {
		return SkipMirrorPod, nil
	}
	owner := metav1.GetControllerOfNoCopy(pod)
	switch {
	case owner == nil:
		// Nothing would recreate it: an evicted bare pod is lost.
		return SkipBarePod, nil
	case owner.Kind == "DaemonSet":
		return SkipDaemonSet, nil
	case owner.Kind == "Node":
		return SkipMirrorPod, nil
	}
	if corev1helpers.PodPriority(pod) >= schedulingapi.SystemCriticalPriority || pod.Spec.PriorityClassName == schedulingapi.SystemClusterCritical || pod.Spec.PriorityClassName == schedulingapi.SystemNodeCritical {
		return SkipSystemCritical, nil
	}
	if reason, err := OptOut(pod); reason != "" {
		return reason, err
	}
	if len(pod.Spec.ResourceClaims) > 0 {
		return SkipResourceClaims, nil
	}
	if !opts.AllowLocalStorage && hasLocalStorage(pod) {
		return SkipLocalStorage, nil
	}
	if started := capacity.StartTime(pod); now.Sub(started) < opts.MinPodAge {
		return SkipTooYoung, nil
	}
	return "", nil
}

// isProtected reports whether protection keeps the pod where it is.
func isProtected(pod *v1.Pod, now time.Time, opts Options) bool {
	reason, _ := protection(pod, now, opts)
	return reason != ""
}

// OptOut reads the annotations by which a pod's owner keeps movers away (the rebalancer's own,
// Karpenter's do-not-disrupt, cluster-autoscaler's safe-to-evict) and returns the skip reason
// of the first that does, or "". Each is a boolean in any letter case; a value that is not a
// boolean is read as the opt-out (an unreadable opt-out means "do not move"), and the error
// names it. Explain shows the same reading.
func OptOut(pod *v1.Pod) (string, error) {
	if move, err := wellknown.Rebalance.Read(pod.Annotations); !move {
		return SkipOptedOut, err
	}
	if keep, err := wellknown.DoNotDisrupt.Read(pod.Annotations); keep {
		return SkipDoNotDisrupt, err
	}
	if safe, err := wellknown.SafeToEvict.Read(pod.Annotations); !safe {
		return SkipNotSafeToEvict, err
	}
	return "", nil
}

// hasLocalStorage: emptyDir on the node's disk or hostPath, whose data an eviction loses.
func hasLocalStorage(pod *v1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil || (v.EmptyDir != nil && v.EmptyDir.Medium != v1.StorageMediumMemory) {
			return true
		}
	}
	return false
}
