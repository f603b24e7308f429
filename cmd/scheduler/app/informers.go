package app

import (
	"context"
	"reflect"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"
)

const (
	// kube-scheduler lists every resource its informers watch before it competes for its Lease
	// and schedules; on a healthy cluster that takes seconds.
	unsyncedReportAfter = 15 * time.Second
	unsyncedReportEvery = 30 * time.Second
	// syncProbe is how long each look at the informers waits for them.
	syncProbe = 200 * time.Millisecond
)

// reportUnsyncedInformers logs, after a while and then periodically until every informer has
// synced, which ones have not. kube-scheduler waits for all of them before it competes for its
// Lease or schedules anything; its /readyz fails meanwhile ("sched-handler-sync: handlers are not
// fully synchronized") but names no informer, and its log shows only the reflectors' list errors.
// This line names what it waits for (typically a resource the server does not serve or RBAC
// does not allow), so the wait is never silent.
func reportUnsyncedInformers(ctx context.Context, factory informers.SharedInformerFactory, dynamic dynamicinformer.DynamicSharedInformerFactory, after, every time.Duration) {
	logger := klog.FromContext(ctx)
	start := time.Now()
	timer := time.NewTimer(after)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		unsynced, started := unsyncedInformers(factory, dynamic)
		if started && len(unsynced) == 0 {
			return
		}
		if !started {
			// With delayCacheUntilActive the informers start once this replica leads.
			timer.Reset(every)
			continue
		}
		logger.Error(nil, "The scheduler's informers have not synced: it does not compete for its Lease nor schedule until they do; check the log for \"failed to list\" errors (an API the server does not serve, or RBAC that does not allow list and watch)",
			"waitingFor", unsynced, "since", time.Since(start).Round(time.Second))
		timer.Reset(every)
	}
}

// unsyncedInformers returns the started informers that have not synced, and whether any has
// started at all.
func unsyncedInformers(factory informers.SharedInformerFactory, dynamic dynamicinformer.DynamicSharedInformerFactory) ([]string, bool) {
	probe := func() chan struct{} {
		stop := make(chan struct{})
		time.AfterFunc(syncProbe, func() { close(stop) })
		return stop
	}
	var unsynced []string
	typed := factory.WaitForCacheSync(probe())
	for t, ok := range typed {
		if !ok {
			unsynced = append(unsynced, typeName(t))
		}
	}
	var dyn map[schema.GroupVersionResource]bool
	if dynamic != nil {
		dyn = dynamic.WaitForCacheSync(probe())
		for gvr, ok := range dyn {
			if !ok {
				unsynced = append(unsynced, gvr.String())
			}
		}
	}
	sort.Strings(unsynced)
	return unsynced, len(typed)+len(dyn) > 0
}

// typeName names an informer's object type with its API package, e.g.
// k8s.io/api/resource/v1.ResourceClaim.
func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}
