// Package v1alpha1 holds the versioned arguments of spot-scheduler's plugins, as they appear in
// a KubeSchedulerConfiguration's pluginConfig, with their defaults, validation and strict
// decoding. It does not import k8s.io/kubernetes: the capacity model, the rebalancer and the
// deletion-cost controller read the same types without pulling in the scheduler framework.
//
// The kube-scheduler hands out-of-tree plugin args over as runtime.Unknown; Decode* turns them
// into these types strictly (unknown fields are errors), applies defaults and validates, so a
// bad configuration fails the scheduler's start-up with the path of the offending field.
package v1alpha1

// APIVersion is the optional apiVersion of spot-scheduler plugin args. Args may omit
// apiVersion and kind; when present they must match.
const APIVersion = "spot-scheduler.io/v1alpha1"
