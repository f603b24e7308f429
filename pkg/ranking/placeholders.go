package ranking

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/pernode"
)

// Requests are the requests of a pod that the node-local resource check compares, as
// NodeResourcesFit computes them.
type Requests struct {
	MilliCPU, Memory, EphemeralStorage int64
}

// RequestsOf returns the pod's requests; extended reports a request of any other resource,
// which the node-local check does not model.
func RequestsOf(pod *v1.Pod) (r Requests, extended bool) {
	for name, q := range resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}) {
		switch name {
		case v1.ResourceCPU:
			r.MilliCPU = q.MilliValue()
		case v1.ResourceMemory:
			r.Memory = q.Value()
		case v1.ResourceEphemeralStorage:
			r.EphemeralStorage = q.Value()
		default:
			if !q.IsZero() {
				extended = true
			}
		}
	}
	return r, extended
}

// PlaceholderRoom is the room one placeholder holds: a pod of higher priority that may take
// placeholder room (MayTakePlaceholderRoom) gets its requests once it is preempted.
type PlaceholderRoom struct {
	Priority int32
	Requests Requests
}

// PlaceholderIndex is the one place a profile's plugins learn where placeholders hold room:
// the tier search counts their room as free, the tier gate and placeholder preemption look only
// at nodes hosting some. What a node hosts is computed once per node generation (pernode), so a
// cycle costs a lookup per node and a scan of the nodes that changed, whichever plugin asks.
// A nil index is a profile without a placeholder rule: no placeholders anywhere. Safe for
// concurrent use.
type PlaceholderIndex struct {
	isPlaceholder func(*v1.Pod) bool
	rooms         *pernode.Cache[[]PlaceholderRoom]

	mu sync.Mutex
	// tracker keeps hosting, the number of nodes of the last list HostingNodes saw that host
	// a placeholder, up to date with the nodes that changed since.
	tracker *pernode.Tracker[[]PlaceholderRoom]
	hosting int
}

// NewPlaceholderIndex returns the index of the placeholders by the profile's rule (placeholder
// preemption's); nil without a rule.
func NewPlaceholderIndex(isPlaceholder func(*v1.Pod) bool) *PlaceholderIndex {
	if isPlaceholder == nil {
		return nil
	}
	x := &PlaceholderIndex{isPlaceholder: isPlaceholder}
	x.rooms = pernode.New(x.roomsOn)
	x.tracker = pernode.NewTracker(x.rooms)
	return x
}

// roomsOn lists the room of the node's placeholders that are not being deleted.
func (x *PlaceholderIndex) roomsOn(ni fwk.NodeInfo) []PlaceholderRoom {
	var out []PlaceholderRoom
	for _, p := range ni.GetPods() {
		pod := p.GetPod()
		if x.isPlaceholder(pod) && pod.DeletionTimestamp == nil {
			r, _ := RequestsOf(pod)
			out = append(out, PlaceholderRoom{Priority: corev1helpers.PodPriority(pod), Requests: r})
		}
	}
	return out
}

// Rooms returns the room the node's placeholders hold. The result must not be modified.
func (x *PlaceholderIndex) Rooms(ni fwk.NodeInfo) []PlaceholderRoom {
	if x == nil {
		return nil
	}
	return x.rooms.Get(ni)
}

// Hosts reports whether a placeholder not being deleted runs on the node.
func (x *PlaceholderIndex) Hosts(ni fwk.NodeInfo) bool {
	return len(x.Rooms(ni)) > 0
}

// HostingNodes returns how many nodes of the list host a placeholder not being deleted. Each
// call brings the count from the last call's list up to date with what changed (see
// pernode.Tracker), so callers should hand in the scheduler's node list.
func (x *PlaceholderIndex) HostingNodes(nodes []fwk.NodeInfo) int {
	if x == nil {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.tracker.Sync(nodes, func(_ int, rooms []PlaceholderRoom) {
		if len(rooms) > 0 {
			x.hosting--
		}
	}, func(_ int, rooms []PlaceholderRoom) {
		if len(rooms) > 0 {
			x.hosting++
		}
	})
	return x.hosting
}
