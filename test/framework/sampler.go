package framework

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PodReady: the pod's Ready condition is True.
func PodReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// ReadySampler samples, every interval until stopped, the Ready pods (not terminating) of
// workloads in a namespace, by their "app" label, and the namespace's PDBs: the fewest Ready
// seen per workload, and every sample of a PDB with fewer healthy pods than it requires.
type ReadySampler struct {
	mu       sync.Mutex
	fewest   map[string]int
	breaches []string
	samples  int
	cancel   context.CancelFunc
	done     chan struct{}
}

// StartReadySampler starts sampling the apps in namespace every interval.
func StartReadySampler(client kubernetes.Interface, namespace string, apps []string, interval time.Duration) *ReadySampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &ReadySampler{fewest: map[string]int{}, cancel: cancel, done: make(chan struct{})}
	for _, a := range apps {
		s.fewest[a] = 1 << 30
	}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			s.sample(ctx, client, namespace)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *ReadySampler) sample(ctx context.Context, client kubernetes.Interface, namespace string) {
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	pdbs, err := client.PolicyV1().PodDisruptionBudgets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	ready := map[string]int{}
	for i := range pods.Items {
		if p := &pods.Items[i]; p.DeletionTimestamp == nil && PodReady(p) {
			ready[p.Labels["app"]]++
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	for a := range s.fewest {
		s.fewest[a] = min(s.fewest[a], ready[a])
	}
	for _, p := range pdbs.Items {
		if p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy < p.Status.DesiredHealthy {
			s.breaches = append(s.breaches, fmt.Sprintf("%s: %d healthy < %d desired", p.Name, p.Status.CurrentHealthy, p.Status.DesiredHealthy))
		}
	}
}

// Stop ends the sampling and returns the fewest Ready pods seen per app, the PDB breaches seen
// and the number of samples.
func (s *ReadySampler) Stop() (fewest map[string]int, breaches []string, samples int) {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fewest, s.breaches, s.samples
}
