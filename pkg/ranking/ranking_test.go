package ranking

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
)

func modelOf(t *testing.T, tiers []v1alpha1.Tier, defaultTier string) *capacity.Model {
	t.Helper()
	var cfg v1alpha1.CapacityModel
	v1alpha1.SetDefaultsCapacityModel(&cfg)
	if tiers != nil {
		cfg.Tiers, cfg.DefaultTier = tiers, defaultTier
	}
	m, err := capacity.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRankAndBand(t *testing.T) {
	r := New(modelOf(t, nil, "")) // reserved, spot, on-demand, burst
	tests := []struct {
		avoid bool
		want  []int // rank of reserved, spot, on-demand, burst
	}{
		{false, []int{0, 1, 2, 3}},
		{true, []int{0, 2, 1, 3}},
	}
	for _, tc := range tests {
		for tier, want := range tc.want {
			if got := r.TierRank(tier, tc.avoid); got != want {
				t.Errorf("TierRank(%s, avoid=%v) = %d, want %d", r.Model().TierName(tier), tc.avoid, got, want)
			}
		}
	}
	if got := r.For(false, policy.Decision{}).Band(capacity.Class{Tier: 0, AtRisk: true}); got != 4 {
		t.Errorf("at-risk reserved band = %d, want 4 (below every healthy tier)", got)
	}
	if r.NumBands() != 8 {
		t.Errorf("NumBands = %d, want 8", r.NumBands())
	}
}

func TestRankAvoidingReclaimable(t *testing.T) {
	tiers := func(reclaimable ...bool) []v1alpha1.Tier {
		ts := make([]v1alpha1.Tier, len(reclaimable))
		for i, rc := range reclaimable {
			ts[i] = v1alpha1.Tier{Name: string(rune('a' + i)), Reclaimable: rc}
		}
		return ts
	}
	tests := []struct {
		name  string
		tiers []v1alpha1.Tier
		want  []int
	}{
		{"spot first", tiers(true, false, false), []int{1, 0, 2}},
		{"two spot tiers move together", tiers(true, true, false, false), []int{1, 2, 0, 3}},
		{"spot last stays last", tiers(false, true), []int{0, 1}},
		{"all spot", tiers(true, true), []int{0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New(modelOf(t, tc.tiers, "a"))
			for i := range tc.want {
				if got := r.TierRank(i, true); got != tc.want[i] {
					t.Fatalf("rank of tier %d = %d, want %d (all %v)", i, got, tc.want[i], tc.want)
				}
			}
		})
	}
}

// TestPolicyBand: the capacity policy's decision moves a full pool of a reclaimable tier
// below every healthy node, and wanting the next replica off spot ranks spot like avoid-spot.
func TestPolicyBand(t *testing.T) {
	r := New(modelOf(t, nil, "")) // reserved 0, spot 1, on-demand 2, burst 3
	spotA := capacity.Class{Tier: 1, Pool: "a"}
	spotB := capacity.Class{Tier: 1, Pool: "b"}
	onDemandA := capacity.Class{Tier: 2, Pool: "a"}
	tests := []struct {
		name  string
		avoid bool
		d     policy.Decision
		class capacity.Class
		band  int
	}{
		{"spot, no policy", false, policy.Decision{}, spotA, 1},
		{"spot, pool full", false, policy.Decision{FullPools: map[string]bool{"a": true}}, spotA, 5},
		{"spot, another pool full", false, policy.Decision{FullPools: map[string]bool{"a": true}}, spotB, 1},
		{"on-demand in a full pool: not reclaimable", false, policy.Decision{FullPools: map[string]bool{"a": true}}, onDemandA, 2},
		{"policy wants on-demand", false, policy.Decision{NonReclaimable: true}, spotA, 2},
		{"annotation", true, policy.Decision{}, onDemandA, 1},
		{"at risk", false, policy.Decision{}, capacity.Class{Tier: 2, AtRisk: true}, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := r.For(tc.avoid, tc.d)
			if got := o.Band(tc.class); got != tc.band {
				t.Errorf("Band = %d, want %d", got, tc.band)
			}
			healthy := tc.class
			healthy.AtRisk = false
			if got, want := o.HealthyBand(tc.class), o.Band(healthy); got != want {
				t.Errorf("HealthyBand = %d, want the healthy node's band %d", got, want)
			}
		})
	}
}

func TestGroupByBand(t *testing.T) {
	got := GroupByBand([]string{"od-1", "spot-1", "risk", "od-2", "spot-2"}, 4, func(s string) int {
		return map[string]int{"spot-1": 0, "spot-2": 0, "od-1": 1, "od-2": 1, "risk": 3}[s]
	})
	want := [][]string{{"spot-1", "spot-2"}, {"od-1", "od-2"}, {}, {"risk"}}
	if len(got) != len(want) {
		t.Fatalf("%d groups, want %d", len(got), len(want))
	}
	for b := range want {
		if len(got[b]) != len(want[b]) {
			t.Fatalf("band %d = %v, want %v", b, got[b], want[b])
		}
		for i := range want[b] {
			if got[b][i] != want[b][i] {
				t.Fatalf("band %d = %v, want %v (input order within a band)", b, got[b], want[b])
			}
		}
	}
}

func TestMode(t *testing.T) {
	state := framework.NewCycleState()
	if m := ModeOf(state); m != 0 {
		t.Fatalf("fresh cycle mode %v, want 0 (everything on)", m)
	}
	SetMode(state, NoTierSearch)
	clone := state.Clone()
	SetMode(clone, NoTierGate)
	if m := ModeOf(state); !m.Has(NoTierSearch) || m.Has(NoTierGate) {
		t.Errorf("original mode %v, want only NoTierSearch (a clone's change stays in the clone)", m)
	}
	if m := ModeOf(clone); !m.Has(NoTierSearch | NoTierGate) {
		t.Errorf("clone mode %v, want NoTierSearch|NoTierGate", m)
	}
}

func TestMayTakePlaceholderRoom(t *testing.T) {
	never, lower := v1.PreemptNever, v1.PreemptLowerPriority
	isPlaceholder := func(p *v1.Pod) bool { return p.Labels["placeholder"] == "true" }
	pod := func(labels map[string]string, policy *v1.PreemptionPolicy) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: v1.PodSpec{PreemptionPolicy: policy}}
	}
	tests := []struct {
		name          string
		pod           *v1.Pod
		isPlaceholder func(*v1.Pod) bool
		want          bool
	}{
		{"a workload pod", pod(nil, nil), isPlaceholder, true},
		{"preempts lower priority", pod(nil, &lower), isPlaceholder, true},
		{"preemptionPolicy Never", pod(nil, &never), isPlaceholder, false},
		{"a placeholder", pod(map[string]string{"placeholder": "true"}, nil), isPlaceholder, false},
		{"a profile that preempts no placeholder", pod(nil, nil), nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MayTakePlaceholderRoom(tc.pod, tc.isPlaceholder); got != tc.want {
				t.Errorf("MayTakePlaceholderRoom = %v, want %v", got, tc.want)
			}
		})
	}
}
