package rebalance

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
)

// evictionLog remembers the controller's evictions until their workloads recover (every
// desired replica Ready again), for the disruption budgets and the in-flight limit, and which
// workloads the last plan held back, so that their replacements turning Ready start the next
// wave at once rather than at the next periodic pass.
type evictionLog struct {
	mu sync.Mutex
	// byWorkload: workload key -> pod UID -> the evicted pod.
	byWorkload map[string]map[types.UID]*v1.Pod
	// waiting: workloads the last plan held back by their budget; waitingAll: by the
	// in-flight limit (any recovery frees room).
	waiting    map[string]bool
	waitingAll bool
}

func newEvictionLog() *evictionLog {
	return &evictionLog{byWorkload: map[string]map[types.UID]*v1.Pod{}, waiting: map[string]bool{}}
}

func (l *evictionLog) add(pod *v1.Pod) {
	w, _ := capacity.WorkloadKey(pod)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byWorkload[w] == nil {
		l.byWorkload[w] = map[types.UID]*v1.Pod{}
	}
	l.byWorkload[w][pod.UID] = pod
}

// remove forgets an eviction the API server refused.
func (l *evictionLog) remove(pod *v1.Pod) {
	w, _ := capacity.WorkloadKey(pod)
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byWorkload[w], pod.UID)
	if len(l.byWorkload[w]) == 0 {
		delete(l.byWorkload, w)
	}
}

// snapshot copies the evictions in flight, by workload.
func (l *evictionLog) snapshot() map[string][]*v1.Pod {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]*v1.Pod, len(l.byWorkload))
	for w, pods := range l.byWorkload {
		for _, p := range pods {
			out[w] = append(out[w], p)
		}
	}
	return out
}

// waitFor records which workloads the plan held back by their budget or the in-flight limit.
func (l *evictionLog) waitFor(plan *Plan) {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.waiting)
	l.waitingAll = false
	for _, s := range plan.Skips {
		switch s.Reason {
		case SkipBudget:
			if w, ok := capacity.WorkloadKey(s.Pod); ok {
				l.waiting[w] = true
			}
		case SkipInFlight:
			l.waitingAll = true
		}
	}
}

// waitingFor: pod turning Ready may let the last plan's held-back moves proceed.
func (l *evictionLog) waitingFor(pod *v1.Pod) bool {
	w, _ := capacity.WorkloadKey(pod)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waitingAll || l.waiting[w]
}

// disruptions counts, for a plan over pods, the controller's evictions the pods do not show
// yet and those in flight, and forgets the evictions of workloads that have recovered.
func (c *Controller) disruptions(pods []*v1.Pod) *Disruptions {
	d := &Disruptions{Replicas: c.replicas, Unseen: map[string]int{}}
	l := c.evicted
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.byWorkload) == 0 {
		return d
	}
	active := make(map[types.UID]bool, len(pods))
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed {
			active[p.UID] = true
		}
	}
	counts := countWorkloads(pods)
	for w, evicted := range l.byWorkload {
		var sample *v1.Pod
		for uid, p := range evicted {
			if active[uid] {
				d.Unseen[w]++
			}
			sample = p
		}
		desired := counts[w].active
		if n, ok := c.replicas(sample); ok {
			desired = n
		}
		unavailable := max(desired-counts[w].ready, 0) + d.Unseen[w]
		if unavailable == 0 {
			delete(l.byWorkload, w) // recovered: every desired replica Ready
			continue
		}
		d.InFlight += min(len(evicted), unavailable)
	}
	evictionsInFlight.Set(float64(d.InFlight))
	return d
}

// replicas is the desired size of the workload owning pod: its ReplicaSet's or StatefulSet's
// spec.replicas, from the informers.
func (c *Controller) replicas(pod *v1.Pod) (int, bool) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return 0, false
	}
	var replicas *int32
	switch ref.Kind {
	case "ReplicaSet":
		rs, err := c.replicaSets.ReplicaSets(pod.Namespace).Get(ref.Name)
		if err != nil || rs.UID != ref.UID {
			return 0, false
		}
		replicas = rs.Spec.Replicas
	case "StatefulSet":
		ss, err := c.statefulSets.StatefulSets(pod.Namespace).Get(ref.Name)
		if err != nil || ss.UID != ref.UID {
			return 0, false
		}
		replicas = ss.Spec.Replicas
	default:
		return 0, false
	}
	if replicas == nil {
		return 1, true // the API default
	}
	return int(*replicas), true
}
