package deletioncost

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/ranking"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

func defaultModel(t testing.TB) *capacity.Model {
	t.Helper()
	args, err := v1alpha1.DecodeSpotScoreArgs(nil, field.NewPath("args"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := capacity.New(args.CapacityModel)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCost(t *testing.T) {
	m := defaultModel(t)
	r := ranking.New(m)
	tier := func(name string) int {
		for i, n := range m.TierNames() {
			if n == name {
				return i
			}
		}
		t.Fatalf("no tier %q", name)
		return -1
	}
	class := func(name string, atRisk bool) capacity.Class {
		return capacity.Class{Tier: tier(name), TierName: name, AtRisk: atRisk}
	}
	cases := []struct {
		name      string
		class     capacity.Class
		avoidSpot bool
		crowding  int
		want      int32
	}{
		{"reserved", class("reserved", false), false, 1, 7999},
		{"spot", class("spot", false), false, 1, 6999},
		{"spot, second pod of its pool", class("spot", false), false, 2, 6998},
		{"spot, tenth pod of its pool", class("spot", false), false, 10, 6990},
		{"on-demand", class("on-demand", false), false, 1, 5999},
		{"burst", class("burst", false), false, 1, 4999},
		{"at-risk reserved", class("reserved", true), false, 1, 3999},
		{"at-risk spot", class("spot", true), false, 1, 2999},
		{"at-risk on-demand", class("on-demand", true), false, 1, 1999},
		{"at-risk burst", class("burst", true), false, 1, 999},
		{"at-risk burst, crowded pool clamps to the band", class("burst", true), false, 5000, 0},
		{"crowding below 1 counts as 1", class("spot", false), false, 0, 6999},
		{"avoid-spot pod on spot ranks below on-demand", class("spot", false), true, 1, 4999 + 1000},
		{"avoid-spot pod on on-demand", class("on-demand", false), true, 1, 6999},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Cost(r.For(tc.avoidSpot, policy.Decision{}).Band(tc.class), r.NumBands(), tc.crowding); got != tc.want {
				t.Errorf("Cost = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestCostBandsNeverOverlap: every pod of a better band costs more than every pod of a worse
// band, whatever the crowding; within a band, more crowding costs less.
func TestCostBandsNeverOverlap(t *testing.T) {
	for _, numBands := range []int{2, 8, 20} {
		for b := 0; b+1 < numBands; b++ {
			worstOfBetter := Cost(b, numBands, BandWidth*3)
			bestOfWorse := Cost(b+1, numBands, 1)
			if worstOfBetter <= bestOfWorse {
				t.Errorf("bands %d/%d: band %d's lowest %d <= band %d's highest %d", b, numBands, b, worstOfBetter, b+1, bestOfWorse)
			}
			for c := 1; c < BandWidth; c++ {
				if Cost(b, numBands, c) <= Cost(b, numBands, c+1) {
					t.Fatalf("band %d: crowding %d does not cost more than %d", b, c, c+1)
				}
			}
		}
		if got := Cost(numBands-1, numBands, BandWidth); got != 0 {
			t.Errorf("lowest cost with %d bands = %d, want 0", numBands, got)
		}
	}
	// Out-of-range input is clamped, never a panic.
	_ = Cost(-3, 0, -1)
	_ = Cost(100, 4, 1<<30)
}

func TestDecide(t *testing.T) {
	const (
		cost = wellknown.PodDeletionCostAnnotation
		mark = wellknown.ManagedDeletionCostAnnotation
	)
	desired := int32(6999)
	cases := []struct {
		name        string
		annotations map[string]string
		inScope     bool
		wantAct     action
		wantValue   string
		wantSkip    string
	}{
		{"free pod in scope gets the cost", nil, true, actionSet, "6999", ""},
		{"our value, stale, is updated", map[string]string{cost: "5999", mark: "5999"}, true, actionSet, "6999", ""},
		{"our value, current: nothing", map[string]string{cost: "6999", mark: "6999"}, true, actionNone, "6999", ""},
		{"our record without a cost: the cost is set", map[string]string{mark: "5999"}, true, actionSet, "6999", ""},
		{"user value without our record: untouched", map[string]string{cost: "42"}, true, actionNone, "", SkipUserOwned},
		{"user changed our value: untouched", map[string]string{cost: "7", mark: "6999"}, true, actionNone, "", SkipUserOwned},
		{"user value equal to the desired one: untouched", map[string]string{cost: "6999"}, true, actionNone, "", SkipUserOwned},
		{"out of scope, ours: removed", map[string]string{cost: "6999", mark: "6999"}, false, actionRemove, "", ""},
		{"out of scope, our record only: removed", map[string]string{mark: "6999"}, false, actionRemove, "", ""},
		{"out of scope, user value: untouched", map[string]string{cost: "42"}, false, actionNone, "", SkipUserOwned},
		{"out of scope, nothing: nothing", map[string]string{"other": "x"}, false, actionNone, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d *int32
			if tc.inScope {
				d = &desired
			}
			act, value, skip := decide(tc.annotations, d)
			if act != tc.wantAct || value != tc.wantValue || skip != tc.wantSkip {
				t.Errorf("decide = (%v, %q, %q), want (%v, %q, %q)", act, value, skip, tc.wantAct, tc.wantValue, tc.wantSkip)
			}
		})
	}
}
