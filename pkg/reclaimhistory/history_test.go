package reclaimhistory

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func reclaim(node string, at time.Time) Reclaim {
	return Reclaim{Node: node, UID: types.UID("uid-" + node), At: metav1.NewTime(at), Tier: "spot", Signal: SignalRunningPods}
}

func TestHistoryAddDedupsAndOrders(t *testing.T) {
	var h History
	if !h.Add("a", reclaim("n2", t0.Add(time.Hour))) || !h.Add("a", reclaim("n1", t0)) {
		t.Fatal("new reclaims not added")
	}
	if h.Add("a", reclaim("n1", t0.Add(5*time.Minute))) || h.Add("b", reclaim("n2", t0)) {
		t.Error("a node already recorded (same UID) was added again")
	}
	if rs := h.Pools["a"]; len(rs) != 2 || rs[0].Node != "n1" || rs[1].Node != "n2" {
		t.Errorf("pool a: %+v, want n1 then n2", rs)
	}
	if h.Len() != 2 {
		t.Errorf("Len %d", h.Len())
	}
}

func TestHistoryCountsAndWindow(t *testing.T) {
	var h History
	h.Add("a", reclaim("n1", t0))
	h.Add("a", reclaim("n2", t0.Add(24*time.Hour)))
	h.Add("b", reclaim("n3", t0.Add(48*time.Hour)))
	week := 7 * 24 * time.Hour
	counts, next := h.Counts(t0.Add(72*time.Hour), week)
	if counts["a"] != 2 || counts["b"] != 1 || len(counts) != 2 || !next.Equal(t0.Add(week)) {
		t.Errorf("counts %v, next %v", counts, next)
	}
	counts, next = h.Counts(t0.Add(week+time.Hour), week)
	if counts["a"] != 1 || counts["b"] != 1 || !next.Equal(t0.Add(24*time.Hour+week)) {
		t.Errorf("after n1 aged out: counts %v, next %v", counts, next)
	}
	counts, next = h.Counts(t0.Add(week+49*time.Hour), week)
	if counts != nil || !next.IsZero() {
		t.Errorf("after all aged out: counts %v, next %v", counts, next)
	}
	h.Prune(t0.Add(week+30*time.Hour), week)
	if len(h.Pools["a"]) != 0 || len(h.Pools["b"]) != 1 || h.Len() != 1 {
		t.Errorf("pruned %+v", h.Pools)
	}
}

func TestHistoryBounds(t *testing.T) {
	var h History
	for i := 0; i < MaxReclaims+50; i++ {
		h.Add(fmt.Sprintf("pool-%d", i%(MaxPools+20)), reclaim(fmt.Sprintf("n%d", i), t0.Add(time.Duration(i)*time.Minute)))
	}
	h.Prune(t0.Add(24*time.Hour), 7*24*time.Hour)
	if h.Len() > MaxReclaims || len(h.Pools) > MaxPools {
		t.Fatalf("%d reclaims in %d pools, want at most %d in %d", h.Len(), len(h.Pools), MaxReclaims, MaxPools)
	}
	// The newest reclaim is kept; the oldest ones went first.
	newest := fmt.Sprintf("n%d", MaxReclaims+49)
	found := false
	for _, rs := range h.Pools {
		for _, r := range rs {
			found = found || r.Node == newest
			if r.Node == "n0" {
				t.Error("the oldest reclaim was kept")
			}
		}
	}
	if !found {
		t.Error("the newest reclaim was dropped")
	}
	data, err := h.Encode()
	if err != nil || len(data) > 300_000 {
		t.Errorf("encoded history of %d bytes (%v), want well under the 1 MiB an object holds", len(data), err)
	}
}

func TestDecode(t *testing.T) {
	var h History
	h.Add("karpenter.sh/nodepool=a,topology.kubernetes.io/zone=z", reclaim("n1", t0))
	data, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&v1.ConfigMap{Data: map[string]string{DataKey: data}})
	if err != nil || got.Len() != 1 || got.Pools["karpenter.sh/nodepool=a,topology.kubernetes.io/zone=z"][0].At.Time.Unix() != t0.Unix() {
		t.Errorf("decoded %+v, %v", got, err)
	}
	for _, cm := range []*v1.ConfigMap{nil, {}, {Data: map[string]string{"other": "x"}}} {
		if h, err := Decode(cm); err != nil || h.Len() != 0 || h.Pools == nil {
			t.Errorf("%v: %+v, %v; want an empty history", cm, h, err)
		}
	}
	if h, err := Decode(&v1.ConfigMap{Data: map[string]string{DataKey: "{not json"}}); err == nil || h.Len() != 0 || h.Pools == nil {
		t.Errorf("malformed: %+v, %v; want an empty history and an error", h, err)
	}
}
