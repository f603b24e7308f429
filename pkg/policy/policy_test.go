package policy

import (
	"errors"
	"math"
	"math/rand"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
)

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      Policy
		n      int
		want   Split
		reason string
	}{
		{name: "none", p: None, n: 10, want: Split{0, 10}},
		{name: "zero replicas", p: Policy{OnDemandBase: 2, SpotShare: 75}, n: 0, want: Split{0, 0}},
		{name: "below base", p: Policy{OnDemandBase: 2, SpotShare: 75}, n: 1, want: Split{1, 0}},
		{name: "at base", p: Policy{OnDemandBase: 2, SpotShare: 75}, n: 2, want: Split{2, 0}},
		{name: "one above base rounds to on-demand", p: Policy{OnDemandBase: 2, SpotShare: 75}, n: 3, want: Split{3, 0}},
		{name: "two above base", p: Policy{OnDemandBase: 2, SpotShare: 75}, n: 4, want: Split{3, 1}},
		{name: "issue example 10, base 2, 75%", p: Policy{OnDemandBase: 2, SpotShare: 75}, n: 10, want: Split{4, 6}},
		{name: "rounding favours on-demand (8 x 70% = 5.6)", p: Policy{OnDemandBase: 2, SpotShare: 70}, n: 10, want: Split{5, 5}},
		{name: "share 0: all on-demand", p: Policy{SpotShare: 0}, n: 7, want: Split{7, 0}},
		{name: "base only", p: Policy{OnDemandBase: 3, SpotShare: 100}, n: 10, want: Split{3, 7}},
		{name: "base above replicas", p: Policy{OnDemandBase: 20, SpotShare: 100}, n: 10, want: Split{10, 0}},
		{name: "share 50 odd", p: Policy{SpotShare: 50}, n: 5, want: Split{3, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Target(tc.n); got != tc.want {
				t.Errorf("Target(%d) of %v = %+v, want %+v", tc.n, tc.p, got, tc.want)
			}
		})
	}
}

func TestPoolCap(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		n    int
		want int
	}{
		{name: "no cap", p: None, n: 10, want: math.MaxInt},
		{name: "count", p: Policy{SpotShare: 100, PoolCount: 3}, n: 10, want: 3},
		{name: "percent of reclaimable target, rounded up", p: Policy{OnDemandBase: 2, SpotShare: 75, PoolPercent: 50}, n: 10, want: 3},
		{name: "percent rounds up", p: Policy{SpotShare: 100, PoolPercent: 34}, n: 10, want: 4},
		{name: "percent at least one", p: Policy{OnDemandBase: 2, SpotShare: 75, PoolPercent: 10}, n: 4, want: 1},
		{name: "percent with no reclaimable replica", p: Policy{SpotShare: 0, PoolPercent: 50}, n: 4, want: 1},
		{name: "100 percent", p: Policy{SpotShare: 100, PoolPercent: 100}, n: 9, want: 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.PoolCap(tc.n); got != tc.want {
				t.Errorf("PoolCap(%d) of %v = %d, want %d", tc.n, tc.p, got, tc.want)
			}
		})
	}
}

func counts(nonReclaimable int, pools map[string]int) Counts {
	c := Counts{NonReclaimable: nonReclaimable}
	for p, k := range pools {
		c.Add(true, p, k)
	}
	return c
}

func TestNext(t *testing.T) {
	p := Policy{OnDemandBase: 2, SpotShare: 75, PoolPercent: 50}
	for _, tc := range []struct {
		name     string
		p        Policy
		c        Counts
		wantNR   bool
		wantFull []string
	}{
		{name: "first replica is base", p: p, c: counts(0, nil), wantNR: true},
		{name: "second replica is base", p: p, c: counts(1, nil), wantNR: true},
		{name: "third: share rounds to on-demand", p: p, c: counts(2, nil), wantNR: true},
		{name: "fourth may be spot", p: p, c: counts(3, nil), wantNR: false},
		{name: "base pod missing while spot is full of replicas", p: p, c: counts(1, map[string]int{"a": 3, "b": 2}), wantNR: true, wantFull: []string{"a", "b"}},
		{name: "seventh goes on-demand", p: p, c: counts(3, map[string]int{"a": 2, "b": 1}), wantNR: true, wantFull: []string{"a"}},
		{name: "tenth: pool a at cap 3", p: p, c: counts(4, map[string]int{"a": 3, "b": 2}), wantNR: false, wantFull: []string{"a"}},
		{name: "count cap", p: Policy{SpotShare: 100, PoolCount: 2}, c: counts(0, map[string]int{"a": 2, "b": 1, "c": 3}), wantNR: false, wantFull: []string{"a", "c"}},
		{name: "no policy", p: None, c: counts(0, map[string]int{"a": 50}), wantNR: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.p.Next(tc.c)
			if d.NonReclaimable != tc.wantNR {
				t.Errorf("NonReclaimable = %v, want %v", d.NonReclaimable, tc.wantNR)
			}
			if len(d.FullPools) != len(tc.wantFull) {
				t.Errorf("FullPools = %v, want %v", d.FullPools, tc.wantFull)
			}
			for _, pool := range tc.wantFull {
				if !d.FullPools[pool] {
					t.Errorf("pool %s not full in %v", pool, d.FullPools)
				}
			}
		})
	}
}

// TestNextFillsTheTarget places replicas one by one where Next says, with room everywhere:
// after every replica the placement keeps the policy (what the scheduler does for a
// Deployment scaled up pod by pod).
func TestNextFillsTheTarget(t *testing.T) {
	for _, p := range []Policy{
		{OnDemandBase: 2, SpotShare: 75}, {OnDemandBase: 2, SpotShare: 75, PoolPercent: 50},
		{SpotShare: 30, PoolCount: 1}, {OnDemandBase: 5, SpotShare: 100, PoolPercent: 34}, None,
	} {
		var c Counts
		pools := []string{"a", "b", "c"}
		for n := 1; n <= 40; n++ {
			d := p.Next(c)
			placed := false
			if !d.NonReclaimable {
				// least crowded pool not full, as SpotScore's spread does
				best := ""
				for _, pool := range pools {
					if !d.FullPools[pool] && (best == "" || c.ReclaimablePerPool[pool] < c.ReclaimablePerPool[best]) {
						best = pool
					}
				}
				if best != "" {
					c.Add(true, best, 1)
					placed = true
				}
			}
			if !placed {
				c.Add(false, "", 1)
			}
			if v := p.Violation(c); !v.Holds() {
				t.Fatalf("%v: after %d replicas placed as Next says, %s violates: %+v", p, n, FormatCounts(c), v)
			}
			if want := p.Target(n); c.NonReclaimable != want.NonReclaimable && p.PoolCount == 0 && p.PoolPercent == 0 {
				t.Fatalf("%v: %d replicas: %s, want exactly %+v", p, n, FormatCounts(c), want)
			}
		}
	}
}

func TestViolation(t *testing.T) {
	p := Policy{OnDemandBase: 2, SpotShare: 75, PoolPercent: 50}
	for _, tc := range []struct {
		name string
		c    Counts
		want Violation
	}{
		{name: "as the policy says", c: counts(4, map[string]int{"a": 3, "b": 3}), want: Violation{}},
		{name: "all on spot", c: counts(0, map[string]int{"a": 5, "b": 5}), want: Violation{Shortfall: 4, PoolExcess: 4}},
		{name: "one pool over cap", c: counts(4, map[string]int{"a": 6}), want: Violation{PoolExcess: 3}},
		{name: "more on-demand is only a cost", c: counts(10, nil), want: Violation{}},
		{name: "empty", c: Counts{}, want: Violation{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Violation(tc.c); got != tc.want {
				t.Errorf("Violation(%s) = %+v, want %+v", FormatCounts(tc.c), got, tc.want)
			}
		})
	}
}

func pod(annotations map[string]string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: annotations}}
}

func TestForPod(t *testing.T) {
	def := Policy{OnDemandBase: 1, SpotShare: 80}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		def         Policy
		want        Policy
		wantInvalid string
	}{
		{name: "no annotation, no default", def: None, want: None},
		{name: "no annotation: the default", def: def, want: def},
		{name: "all three", annotations: map[string]string{OnDemandBaseAnnotation: "2", SpotShareAnnotation: "75", MaxPerPoolAnnotation: "50%"}, def: None,
			want: Policy{OnDemandBase: 2, SpotShare: 75, PoolPercent: 50}},
		{name: "percent sign on the share, count cap", annotations: map[string]string{SpotShareAnnotation: "75%", MaxPerPoolAnnotation: "3"}, def: None,
			want: Policy{SpotShare: 75, PoolCount: 3}},
		{name: "annotation overrides one field of the default", annotations: map[string]string{OnDemandBaseAnnotation: "0"}, def: def,
			want: Policy{OnDemandBase: 0, SpotShare: 80}},
		{name: "negative base", annotations: map[string]string{OnDemandBaseAnnotation: "-1"}, def: def, want: None, wantInvalid: OnDemandBaseAnnotation},
		{name: "word base", annotations: map[string]string{OnDemandBaseAnnotation: "two"}, def: None, want: None, wantInvalid: OnDemandBaseAnnotation},
		{name: "share over 100", annotations: map[string]string{SpotShareAnnotation: "150"}, def: None, want: None, wantInvalid: SpotShareAnnotation},
		{name: "share fraction", annotations: map[string]string{SpotShareAnnotation: "0.75"}, def: None, want: None, wantInvalid: SpotShareAnnotation},
		{name: "cap zero", annotations: map[string]string{MaxPerPoolAnnotation: "0"}, def: None, want: None, wantInvalid: MaxPerPoolAnnotation},
		{name: "cap percent over 100", annotations: map[string]string{MaxPerPoolAnnotation: "101%"}, def: None, want: None, wantInvalid: MaxPerPoolAnnotation},
		{name: "cap empty", annotations: map[string]string{MaxPerPoolAnnotation: ""}, def: None, want: None, wantInvalid: MaxPerPoolAnnotation},
		{name: "huge base", annotations: map[string]string{OnDemandBaseAnnotation: "99999999999999999999"}, def: None, want: None, wantInvalid: OnDemandBaseAnnotation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ForPod(pod(tc.annotations), tc.def)
			if got != tc.want {
				t.Errorf("policy %+v, want %+v", got, tc.want)
			}
			var invalid *InvalidError
			switch {
			case tc.wantInvalid == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.wantInvalid != "" && !errors.As(err, &invalid):
				t.Errorf("error %v, want an InvalidError", err)
			case tc.wantInvalid != "":
				if invalid.Annotation != tc.wantInvalid || !strings.Contains(err.Error(), tc.wantInvalid) || !strings.Contains(err.Error(), "allowed values are") {
					t.Errorf("error %q does not name %s and the allowed values", err, tc.wantInvalid)
				}
			}
		})
	}
}

func TestFromArgs(t *testing.T) {
	p, err := FromArgs(&v1alpha1.CapacityPolicy{OnDemandBase: ptr.To[int32](2), SpotSharePercent: ptr.To[int32](75), MaxPerPool: ptr.To(intstr.FromString("50%"))})
	if err != nil || p != (Policy{OnDemandBase: 2, SpotShare: 75, PoolPercent: 50}) {
		t.Errorf("FromArgs = %+v, %v", p, err)
	}
	p, err = FromArgs(&v1alpha1.CapacityPolicy{MaxPerPool: ptr.To(intstr.FromInt32(2))})
	if err != nil || p != (Policy{SpotShare: 100, PoolCount: 2}) {
		t.Errorf("FromArgs = %+v, %v", p, err)
	}
	if p, err := FromArgs(nil); err != nil || p.Active() {
		t.Errorf("FromArgs(nil) = %+v, %v", p, err)
	}
}

// TestKeepOrderEveryPrefix: for random workloads, every prefix of the keep order (the
// replicas left after scaling in to k) is as close to the policy as any k healthy replicas
// can be (checked against every subset), and at-risk replicas come last.
func TestKeepOrderEveryPrefix(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	policies := []Policy{
		{OnDemandBase: 2, SpotShare: 75}, {OnDemandBase: 2, SpotShare: 75, PoolPercent: 50},
		{OnDemandBase: 1, SpotShare: 50, PoolCount: 2}, {SpotShare: 100, PoolCount: 1}, {OnDemandBase: 3, SpotShare: 100}, None,
	}
	for iter := 0; iter < 3000; iter++ {
		p := policies[iter%len(policies)]
		n := 1 + rng.Intn(10)
		replicas := make([]Replica, n)
		for i := range replicas {
			replicas[i] = Replica{
				Reclaimable: rng.Intn(3) > 0,
				Pool:        []string{"a", "b", "c"}[rng.Intn(3)],
				AtRisk:      rng.Intn(8) == 0,
				Preference:  int32(rng.Intn(4)),
				Name:        string(rune('a' + i)),
			}
		}
		order := p.KeepOrder(replicas)
		if len(order) != n {
			t.Fatalf("order %v has %d replicas, want %d", order, len(order), n)
		}
		seen := map[int]bool{}
		healthy := 0
		for pos, i := range order {
			if seen[i] {
				t.Fatalf("replica %d twice in %v", i, order)
			}
			seen[i] = true
			if replicas[i].AtRisk {
				continue
			}
			healthy++
			if healthy != pos+1 {
				t.Fatalf("healthy replica after an at-risk one in %v (%+v)", order, replicas)
			}
		}
		healthyIdx := append([]int(nil), order[:healthy]...)
		var kept Counts
		for k := 1; k <= healthy; k++ {
			r := replicas[healthyIdx[k-1]]
			kept.Add(r.Reclaimable, r.Pool, 1)
			got := p.Violation(kept)
			best := bestViolation(p, replicas, healthyIdx, k)
			if got.Shortfall > best.Shortfall || (got.Shortfall == best.Shortfall && got.Total() > best.Total()) {
				t.Fatalf("policy %v, replicas %+v, order %v: prefix %d violates %+v, but some %d replicas violate only %+v",
					p, replicas, order, k, got, k, best)
			}
		}
	}
}

// bestViolation is the least violation (shortfall first) among every k-subset of idx.
func bestViolation(p Policy, replicas []Replica, idx []int, k int) Violation {
	best := Violation{Shortfall: math.MaxInt, PoolExcess: math.MaxInt}
	for mask := 0; mask < 1<<len(idx); mask++ {
		if popcount(mask) != k {
			continue
		}
		var c Counts
		for b, i := range idx {
			if mask&(1<<b) != 0 {
				c.Add(replicas[i].Reclaimable, replicas[i].Pool, 1)
			}
		}
		v := p.Violation(c)
		if v.Shortfall < best.Shortfall || (v.Shortfall == best.Shortfall && v.Total() < best.Total()) {
			best = v
		}
	}
	return best
}

func popcount(x int) int {
	n := 0
	for ; x > 0; x &= x - 1 {
		n++
	}
	return n
}

// TestKeepOrderPreference: without a policy, the keep order is the preference order.
func TestKeepOrderPreference(t *testing.T) {
	replicas := []Replica{
		{Reclaimable: false, Preference: 5000, Name: "od"},
		{Reclaimable: true, Pool: "a", Preference: 6000, Name: "spot"},
		{Reclaimable: true, Pool: "a", AtRisk: true, Preference: 2000, Name: "risky"},
	}
	order := None.KeepOrder(replicas)
	if want := []int{1, 0, 2}; !equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	// base 1: the on-demand replica is kept first.
	order = Policy{OnDemandBase: 1, SpotShare: 100}.KeepOrder(replicas)
	if want := []int{0, 1, 2}; !equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
