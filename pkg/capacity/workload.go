package capacity

import (
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadKey names the workload a pod belongs to, so its replicas can be counted per pool:
// the controlling owner (kind, namespace, name and UID), or else the pod's namespace and full
// label set. ok is false for a pod with neither (it belongs to no workload and is not spread).
func WorkloadKey(pod *v1.Pod) (key string, ok bool) {
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		return "owner/" + ref.Kind + "/" + pod.Namespace + "/" + ref.Name + "/" + string(ref.UID), true
	}
	if len(pod.Labels) == 0 {
		return "", false
	}
	keys := make([]string, 0, len(pod.Labels))
	for k := range pod.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("labels/")
	b.WriteString(pod.Namespace)
	for _, k := range keys {
		b.WriteString("/")
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(pod.Labels[k])
	}
	return b.String(), true
}
