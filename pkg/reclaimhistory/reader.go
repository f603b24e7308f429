package reclaimhistory

import (
	"context"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
)

// Reader keeps the history's ConfigMap in memory through an informer on that one object (a
// field selector on its name: RBAC may then grant get, list and watch on it by resourceNames)
// and hands out the counts of the moment. It is a capacity.ReclaimSource.
type Reader struct {
	namespace, name string
	window          time.Duration
	clock           clock.PassiveClock
	factory         informers.SharedInformerFactory
	synced          cache.InformerSynced
	// state is replaced, never modified: Reclaims is on the scheduler's hot path (once per
	// scheduling cycle) and costs an atomic load and a time comparison.
	state atomic.Pointer[readerState]
	// onChange, when set, is called after the ConfigMap changed (the cost metrics refresh).
	onChange func()
}

type readerState struct {
	history History
	counts  capacity.Reclaims
	// validUntil is when the first counted reclaim ages out (zero: never).
	validUntil time.Time
}

var _ capacity.ReclaimSource = &Reader{}

// NewReader reads the ConfigMap namespace/name with client; Start it.
func NewReader(client kubernetes.Interface, namespace, name string, window time.Duration, clk clock.PassiveClock) *Reader {
	r := &Reader{namespace: namespace, name: name, window: window, clock: clk}
	r.factory = informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector(metav1.ObjectNameField, name).String()
		}))
	informer := r.factory.Core().V1().ConfigMaps().Informer()
	r.synced = informer.HasSynced
	r.set(History{Pools: map[string][]Reclaim{}})
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.update,
		UpdateFunc: func(_, obj any) { r.update(obj) },
		DeleteFunc: func(any) { r.set(History{Pools: map[string][]Reclaim{}}) },
	})
	return r
}

// OnChange sets a function called after each change of the history (before Start).
func (r *Reader) OnChange(fn func()) { r.onChange = fn }

// Start starts the informer; it stops with ctx.
func (r *Reader) Start(ctx context.Context) { r.factory.Start(ctx.Done()) }

// HasSynced reports whether the ConfigMap has been read once.
func (r *Reader) HasSynced() bool { return r.synced() }

func (r *Reader) update(obj any) {
	cm, ok := obj.(*v1.ConfigMap)
	if !ok || cm.Name != r.name {
		return
	}
	h, err := Decode(cm)
	if err != nil {
		// Edited by hand, or by something else: no ranking by risk rather than a wrong one.
		klog.Background().Error(err, "Reclaim history unreadable; reading it as empty until it is written again")
	}
	klog.Background().V(2).Info("Reclaim history read", "configMap", klog.KObj(cm), "pools", len(h.Pools), "reclaims", h.Len())
	r.set(h)
}

func (r *Reader) set(h History) {
	counts, next := h.Counts(r.clock.Now(), r.window)
	r.state.Store(&readerState{history: h, counts: counts, validUntil: next})
	if r.onChange != nil {
		r.onChange()
	}
}

// Reclaims returns each pool's reclaims within the window now. The map is never modified.
func (r *Reader) Reclaims() capacity.Reclaims {
	s := r.state.Load()
	if s.validUntil.IsZero() || r.clock.Now().Before(s.validUntil) {
		return s.counts
	}
	// A reclaim aged out since the ConfigMap last changed: count again (a race recomputes
	// twice, harmlessly).
	counts, next := s.history.Counts(r.clock.Now(), r.window)
	r.state.CompareAndSwap(s, &readerState{history: s.history, counts: counts, validUntil: next})
	return counts
}

// History returns the history as last read (do not modify it).
func (r *Reader) History() History { return r.state.Load().history }

// Load reads the history once (explain and the report). A missing ConfigMap is an empty
// history; so is one the caller may not read, with the error saying so.
func Load(ctx context.Context, client kubernetes.Interface, namespace, name string) (History, error) {
	cm, err := client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return History{Pools: map[string][]Reclaim{}}, nil
	}
	if err != nil {
		return History{Pools: map[string][]Reclaim{}}, err
	}
	return Decode(cm)
}
