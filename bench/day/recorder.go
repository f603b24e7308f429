package day

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/spot-scheduler/spot-scheduler/bench/strategy"
	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// sample is the cluster at one moment (seconds since the run started).
type sample struct {
	T float64
	// PodsPerTier: workload pods Running on a live node, by the node's tier.
	PodsPerTier map[string]int
	// Pending: desired workload replicas not Running.
	Pending int
	// Running and Desired per workload.
	Running, Desired map[string]int
	// PlaceholderMilliCPU: CPU that placeholder pods hold on nodes.
	PlaceholderMilliCPU int64
}

// claimLife is one NodeClaim (one machine) from its launch to its end.
type claimLife struct {
	Pool, Tier string
	Start, End float64 // End < 0: still there
	Refused    bool
}

// podLife is one workload pod: when it was created, bound to a node and first Running and
// Ready (from its conditions).
type podLife struct {
	Workload string
	Created  float64
	Bound    float64 // < 0: not yet
	Ready    float64 // < 0: not yet
}

// eviction is one pod evicted through the Eviction API.
type eviction struct {
	T           float64
	Workload    string
	Placeholder bool
	// Drain: the pod's node had been given an interruption notice (the reclaim's eviction).
	Drain bool
	// PodCreated: when the evicted pod was created.
	PodCreated float64
}

// recorder samples the cluster every second and keeps what the measures need.
type recorder struct {
	r *runner

	mu        sync.Mutex
	samples   []sample
	claims    map[string]*claimLife
	pods      map[string]*podLife
	evictions []eviction
	desired   map[string]int
	refused   int
	// signature of the last sample, the time it changed, and whether the cluster was busy.
	signature string
	changedAt float64
	busy      bool
	err       error
}

func newRecorder(r *runner) *recorder {
	return &recorder{r: r, claims: map[string]*claimLife{}, pods: map[string]*podLife{}, desired: map[string]int{}}
}

func (rec *recorder) now() float64 { return time.Since(rec.r.start).Seconds() }

func (rec *recorder) at(t time.Time) float64 { return t.Sub(rec.r.start).Seconds() }

func (rec *recorder) setDesired(s *Shape, peak bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, w := range s.Workloads {
		rec.desired[w.Name] = w.Replicas
		if peak {
			rec.desired[w.Name] = w.Peak
		}
	}
}

func (rec *recorder) noteRefused(claim string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.refused++
	if c, ok := rec.claims[claim]; ok {
		c.Refused = true
	} else {
		rec.claims[claim] = &claimLife{Start: rec.now(), End: -1, Refused: true}
	}
}

// wasRefused tells whether the cloud refused the claim's launch.
func (rec *recorder) wasRefused(claim string) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	c, ok := rec.claims[claim]
	return ok && c.Refused
}

func (rec *recorder) failed() error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.err
}

func (rec *recorder) lastChange() (float64, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.changedAt, rec.busy
}

// start watches evictions and samples every second until ctx ends.
func (rec *recorder) start(ctx context.Context) error {
	if err := rec.watchEvictions(ctx); err != nil {
		return err
	}
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		failures := 0
		for {
			if err := rec.sample(ctx); err != nil && ctx.Err() == nil {
				// A busy API server may time out a list now and then; a minute of failures is
				// a broken run.
				if failures++; failures >= 60 {
					rec.mu.Lock()
					rec.err = fmt.Errorf("sampling the cluster: %w", err)
					rec.mu.Unlock()
					return
				}
			} else {
				failures = 0
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return nil
}

// watchEvictions records the pods evicted through the Eviction API, each with its cause.
func (rec *recorder) watchEvictions(ctx context.Context) error {
	return strategy.WatchEvictions(ctx, rec.r.client, namespace, func(p *v1.Pod, at time.Time) {
		rec.r.mu.Lock()
		drain := rec.r.interrupted[p.Spec.NodeName]
		rec.r.mu.Unlock()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.evictions = append(rec.evictions, eviction{T: rec.at(at), Workload: p.Labels[workloadLabel],
			Placeholder: p.Labels[placeholderLabel] == "true", Drain: drain, PodCreated: rec.at(p.CreationTimestamp.Time)})
	})
}

// sample reads nodes, NodeClaims and pods from the runner's watches (caches.go).
func (rec *recorder) sample(_ context.Context) error {
	c := rec.r.caches
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	claims, err := c.nodeClaims()
	if err != nil {
		return err
	}
	pods, err := c.workloadPods()
	if err != nil {
		return err
	}
	t := rec.now()
	shape := rec.r.shape
	tierOf := map[string]string{}
	for _, n := range nodes {
		tierOf[n.Name] = shape.TierOf(n.Labels[localcluster.KarpenterNodePoolLabel])
	}
	var sig []string
	busy := false
	rec.mu.Lock()
	defer rec.mu.Unlock()
	present := map[string]bool{}
	for _, c := range claims {
		present[c.GetName()] = true
		pool := c.GetLabels()[localcluster.KarpenterNodePoolLabel]
		if _, ok := rec.claims[c.GetName()]; !ok {
			rec.claims[c.GetName()] = &claimLife{Pool: pool, Tier: shape.TierOf(pool), Start: rec.at(c.GetCreationTimestamp().Time), End: -1}
		}
		life := rec.claims[c.GetName()]
		if life.Pool == "" {
			life.Pool, life.Tier = pool, shape.TierOf(pool)
		}
		ready := claimReady(c)
		// A launch the cloud refused was never a machine: it changes nothing an episode
		// measures, so it neither keeps an episode busy nor counts as a change (Karpenter
		// retries a full pool every few minutes for ever, which would keep every episode
		// from settling). Whether the cloud runs a launch is known within launchGrace.
		if life.Refused || (!ready && t-life.Start < launchGrace) {
			continue
		}
		if !ready || c.GetDeletionTimestamp() != nil {
			busy = true
		}
		sig = append(sig, fmt.Sprintf("c/%s/%v/%v", c.GetName(), ready, c.GetDeletionTimestamp() != nil))
	}
	for name, life := range rec.claims {
		if life.End < 0 && !present[name] {
			life.End = t // gone: a machine launched again gets a new name
		}
	}
	s := sample{T: t, PodsPerTier: map[string]int{}, Running: map[string]int{}, Desired: map[string]int{}}
	for w, n := range rec.desired {
		s.Desired[w] = n
	}
	for _, p := range pods {
		terminating := p.DeletionTimestamp != nil
		tier, live := tierOf[p.Spec.NodeName]
		running := !terminating && live && p.Status.Phase == v1.PodRunning && podReady(p)
		if terminating {
			busy = true
		}
		if p.Labels[placeholderLabel] == "true" || p.Labels[wellknown.FailbackBufferLabel] == "true" {
			if live && !terminating {
				s.PlaceholderMilliCPU += p.Spec.Containers[0].Resources.Requests.Cpu().MilliValue()
			}
			sig = append(sig, "p/"+p.Name+"/"+p.Spec.NodeName)
			continue
		}
		w := p.Labels[workloadLabel]
		if w == "" {
			continue
		}
		life, ok := rec.pods[string(p.UID)]
		if !ok {
			life = &podLife{Workload: w, Created: rec.at(p.CreationTimestamp.Time), Bound: -1, Ready: -1}
			rec.pods[string(p.UID)] = life
		}
		if life.Bound < 0 && p.Spec.NodeName != "" {
			life.Bound = t
			if at, ok := trueSince(p, v1.PodScheduled); ok {
				life.Bound = rec.at(at)
			}
		}
		if running {
			if life.Ready < 0 {
				life.Ready = t
				if at, ok := trueSince(p, v1.PodReady); ok {
					life.Ready = min(t, rec.at(at))
				}
			}
			s.Running[w]++
			s.PodsPerTier[tier]++
		}
		sig = append(sig, fmt.Sprintf("w/%s/%s/%v", p.Name, p.Spec.NodeName, running))
	}
	for w, n := range s.Desired {
		s.Pending += max(0, n-s.Running[w])
	}
	if s.Pending > 0 {
		busy = true
	}
	sort.Strings(sig)
	signature := strings.Join(sig, ",")
	if signature != rec.signature || busy {
		rec.signature, rec.changedAt = signature, t
	}
	rec.busy = busy
	rec.samples = append(rec.samples, s)
	return nil
}

// launchGrace: the cloud refuses a launch (refuseLaunchesPastCapacity) within this long of
// the NodeClaim's creation; no machine is Ready that fast.
const launchGrace = 5.0

func claimReady(c *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(c.Object, "status", "conditions")
	for _, x := range conds {
		if m, ok := x.(map[string]any); ok && m["type"] == "Ready" {
			return m["status"] == "True"
		}
	}
	return false
}

// trueSince is when the pod's condition turned True: PodScheduled when the API server bound
// it, Ready when its containers started (more precise than the sample that first saw it).
func trueSince(p *v1.Pod, condition v1.PodConditionType) (time.Time, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == condition && c.Status == v1.ConditionTrue {
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}
