package rebalance

import (
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	schedulingapi "k8s.io/kubernetes/pkg/apis/scheduling"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// Skip reasons: a bounded set, used as metric label values and in the plan.
const (
	SkipNotRunning      = "not_running"
	SkipTerminating     = "terminating"
	SkipBarePod         = "bare_pod"
	SkipDaemonSet       = "daemonset"
	SkipMirrorPod       = "mirror_pod"
	SkipSystemCritical  = "system_critical"
	SkipLocalStorage    = "local_storage"
	SkipResourceClaims  = "resource_claims"
	SkipOptedOut        = "opted_out"
	SkipDoNotDisrupt    = "do_not_disrupt"
	SkipNotSafeToEvict  = "not_safe_to_evict"
	SkipTooYoung        = "too_young"
	SkipNoBetterRoom    = "no_better_room"
	SkipCapPass         = "cap_pass"
	SkipCapNode         = "cap_node"
	SkipCapWorkload     = "cap_workload"
	SkipPDB             = "pdb"
	SkipChanged         = "changed_before_eviction"
	SkipEvictionFailure = "eviction_error"
)

// Annotations other tools use to protect pods, honoured as they are.
const (
	karpenterDoNotDisrupt = "karpenter.sh/do-not-disrupt"
	autoscalerSafeToEvict = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	mirrorPodAnnotation   = "kubernetes.io/config.mirror"
)

// Options tune the rebalancer; defaults in DefaultOptions.
type Options struct {
	// MinPodAge: younger pods are left alone (they may still be starting, or just moved).
	MinPodAge time.Duration
	// AllowLocalStorage lets pods with emptyDir (on disk) or hostPath volumes move; their data
	// is lost on eviction.
	AllowLocalStorage bool
	// Caps on evictions.
	MaxEvictionsPerPass     int
	MaxEvictionsPerNode     int
	MaxEvictionsPerWorkload int
}

// DefaultOptions are the rebalancer's defaults.
func DefaultOptions() Options {
	return Options{
		MinPodAge:               2 * time.Minute,
		MaxEvictionsPerPass:     50,
		MaxEvictionsPerNode:     50,
		MaxEvictionsPerWorkload: 10,
	}
}

// protection returns why the pod must not be moved, or "" when it may be.
func protection(pod *v1.Pod, now time.Time, opts Options) string {
	switch {
	case pod.DeletionTimestamp != nil:
		return SkipTerminating
	case pod.Status.Phase != v1.PodRunning:
		return SkipNotRunning
	}
	if _, ok := pod.Annotations[mirrorPodAnnotation]; ok {
		return SkipMirrorPod
	}
	owner := metav1.GetControllerOfNoCopy(pod)
	switch {
	case owner == nil:
		// Nothing would recreate it: an evicted bare pod is lost.
		return SkipBarePod
	case owner.Kind == "DaemonSet":
		return SkipDaemonSet
	case owner.Kind == "Node":
		return SkipMirrorPod
	}
	if corev1helpers.PodPriority(pod) >= schedulingapi.SystemCriticalPriority || pod.Spec.PriorityClassName == schedulingapi.SystemClusterCritical || pod.Spec.PriorityClassName == schedulingapi.SystemNodeCritical {
		return SkipSystemCritical
	}
	switch {
	case pod.Annotations[wellknown.RebalanceAnnotation] == "false":
		return SkipOptedOut
	case pod.Annotations[karpenterDoNotDisrupt] == "true":
		return SkipDoNotDisrupt
	case pod.Annotations[autoscalerSafeToEvict] == "false":
		return SkipNotSafeToEvict
	}
	if len(pod.Spec.ResourceClaims) > 0 {
		return SkipResourceClaims
	}
	if !opts.AllowLocalStorage && hasLocalStorage(pod) {
		return SkipLocalStorage
	}
	if started := capacity.StartTime(pod); now.Sub(started) < opts.MinPodAge {
		return SkipTooYoung
	}
	return ""
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
