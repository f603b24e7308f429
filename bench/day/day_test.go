package day

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func testRunner(strategy string) *runner {
	return &runner{shape: Default(), strategy: strategy, start: time.Now(), out: map[string]time.Time{}, interrupted: map[string]bool{}}
}

// TestMeasureAccounting: node-seconds with the one-minute minimum, the nodes at the start
// and at the end, deficits, the fewest Running, pending percentiles and the eviction causes
// come out of the recorder's data as computed by hand.
func TestMeasureAccounting(t *testing.T) {
	r := testRunner(SpotScheduler)
	rec := newRecorder(r)
	rec.claims = map[string]*claimLife{
		"old-spot":   {Pool: "spot-a", Tier: Spot, Start: 0, End: -1},           // whole episode: 100 s
		"gone-spot":  {Pool: "spot-a", Tier: Spot, Start: 0, End: 130},          // 30 s inside
		"short-od":   {Pool: "on-demand", Tier: OnDemand, Start: 110, End: 120}, // 10 s alive, billed 60 (110-170)
		"late-od":    {Pool: "on-demand", Tier: OnDemand, Start: 180, End: -1},  // billed to the end: 20 s
		"refused":    {Pool: "spot-b", Tier: Spot, Start: 150, End: 151, Refused: true},
		"before-end": {Pool: "burst", Tier: Burst, Start: 10, End: 90}, // gone before the episode
	}
	desired := map[string]int{"web": 4}
	for ts := 90.0; ts <= 210; ts += 10 {
		running := 4
		if ts >= 130 && ts < 160 {
			running = 2
		}
		rec.samples = append(rec.samples, sample{T: ts, Desired: desired, Running: map[string]int{"web": running},
			PodsPerTier: map[string]int{Spot: running}, Pending: 4 - running, PlaceholderMilliCPU: 3900})
	}
	rec.pods = map[string]*podLife{
		"a": {Workload: "web", Created: 130, Bound: 150, Ready: 160},
		"b": {Workload: "web", Created: 130, Bound: 134, Ready: 140},
		"c": {Workload: "web", Created: 50, Bound: 51, Ready: 60},  // before the episode
		"d": {Workload: "web", Created: 190, Bound: -1, Ready: -1}, // not bound at the end
	}
	rec.evictions = []eviction{
		{T: 125, Workload: "web", Drain: true, PodCreated: 10},
		{T: 170, Workload: "web", PodCreated: 130},               // a replacement moved again
		{T: 175, Workload: "web", PodCreated: 20},                // a first move
		{T: 176, Workload: "", Placeholder: true, PodCreated: 0}, // a placeholder
		{T: 250, Workload: "web", PodCreated: 20},                // after the episode
	}
	ep := rec.measure(Step{Kind: ReclaimPool}, 100, 200, true)
	wantNS := map[string]float64{Spot: 100 + 30, OnDemand: 60 + 20}
	for _, tier := range Tiers {
		if math.Abs(ep.NodeSeconds[tier]-wantNS[tier]) > 1e-9 {
			t.Errorf("NodeSeconds[%s] = %v, want %v (all %v)", tier, ep.NodeSeconds[tier], wantNS[tier], ep.NodeSeconds)
		}
	}
	if ep.StartNodes[Spot] != 2 || ep.StartNodes[OnDemand] != 0 || ep.EndNodes[Spot] != 1 || ep.EndNodes[OnDemand] != 1 {
		t.Errorf("start %v end %v, want spot 2 -> spot 1 + on-demand 1", ep.StartNodes, ep.EndNodes)
	}
	// Two replicas short for 30 s (samples at 130, 140, 150, 10 s each).
	if ep.Deficit["web"] != 60 || ep.Fewest["web"] != 2 || ep.Desired["web"] != 4 {
		t.Errorf("deficit %v fewest %v desired %v, want 60, 2, 4", ep.Deficit, ep.Fewest, ep.Desired)
	}
	if ep.ServedPodSeconds+ep.Deficit["web"] != 4*100 {
		t.Errorf("served %v + deficit %v != 4 replicas x 100 s", ep.ServedPodSeconds, ep.Deficit["web"])
	}
	if ep.PendingP95 != 30 {
		t.Errorf("p95 pending %v, want 30 (waits 30, 10 and 10)", ep.PendingP95)
	}
	if ep.ToBind != 12 || ep.ToReady != 8 {
		t.Errorf("to bind %v, to Ready %v, want 12 ((20+4)/2) and 8 ((10+6)/2)", ep.ToBind, ep.ToReady)
	}
	if ep.Evictions != 2 || ep.DrainEvictions != 1 || ep.PlaceholderEvictions != 1 || ep.MovedTwice != 1 {
		t.Errorf("evictions %d drains %d placeholders %d moved twice %d, want 2 1 1 1", ep.Evictions, ep.DrainEvictions, ep.PlaceholderEvictions, ep.MovedTwice)
	}
	if math.Abs(ep.HeadroomNodeSeconds-100) > 1e-9 {
		t.Errorf("headroom node-seconds %v, want 100 (one node's CPU held for 100 s)", ep.HeadroomNodeSeconds)
	}
}

// TestMeasureCoversEveryEpisodeSecond: samples that do not fall on the episode's start and end
// (a second apart, or more under load) still count every second of it once: the first sample
// stands for the state from the start, the last until the end.
func TestMeasureCoversEveryEpisodeSecond(t *testing.T) {
	rec := newRecorder(testRunner(SpotScheduler))
	desired := map[string]int{"web": 6}
	for ts := 91.7; ts <= 215; ts += 2.3 {
		running := 6
		if ts < 120 {
			running = 3 // a scale-up's new replicas not yet Running
		}
		rec.samples = append(rec.samples, sample{T: ts, Desired: desired, Running: map[string]int{"web": running},
			PodsPerTier: map[string]int{Spot: running}})
	}
	ep := rec.measure(Step{Kind: ScaleUp}, 100, 200, true)
	if got := ep.ServedPodSeconds + ep.Deficit["web"]; math.Abs(got-6*100) > 1e-9 {
		t.Errorf("served %v + deficit %v = %v, want 6 replicas x 100 s", ep.ServedPodSeconds, ep.Deficit["web"], got)
	}
	// Short 3 from the start (100) to the first sample Running 6 (91.7 + 13 x 2.3 = 121.6).
	if want := 3 * (121.6 - 100); math.Abs(ep.Deficit["web"]-want) > 1e-6 {
		t.Errorf("deficit %v, want %v", ep.Deficit["web"], want)
	}
}

// TestNeededMovesOnReturn: a return counts the pods running off spot that the optimum would
// run on spot; the capacity policy's on-demand base is not a needed move.
func TestNeededMovesOnReturn(t *testing.T) {
	for _, tc := range []struct {
		strategy string
		want     int
	}{{SpotScheduler, 10}, {SpotSchedulerPolicy, 10 - policyBase(Default())}} {
		r := testRunner(tc.strategy)
		rec := newRecorder(r)
		rec.samples = []sample{{T: 0, Desired: map[string]int{"web": 32}, Running: map[string]int{"web": 32}, PodsPerTier: map[string]int{Spot: 22, OnDemand: 8, Burst: 2}}}
		ep := rec.measure(Step{Kind: ReturnPool, Return: []string{"spot-c"}}, 0, 10, true)
		if ep.NeededMoves != tc.want {
			t.Errorf("%s: needed moves %d, want %d", tc.strategy, ep.NeededMoves, tc.want)
		}
	}
}

func TestOptimumNodes(t *testing.T) {
	s := Default()
	// 134.5 CPU off-peak and 190 at the peak, in pods of 0.5-2 CPU: 38 and 53 nodes of 3.9
	// CPU with the pods whole (TestWholePodNodes), not the 35 and 49 that split pods would fill.
	if n := optimumNodes(s, false, nil); n[Spot] != 38 || n[OnDemand] != 0 {
		t.Errorf("off-peak optimum %v, want 38 spot nodes only", n)
	}
	// Spot's pools hold 39 nodes: the peak's other 14 on on-demand.
	if n := optimumNodes(s, true, nil); n[Spot] != 39 || n[OnDemand] != 14 {
		t.Errorf("peak optimum %v, want 39 spot and 14 on-demand", n)
	}
	all := map[string]bool{"spot-a": true, "spot-b": true, "spot-c": true}
	if n := optimumNodes(s, true, all); n[Spot] != 0 || n[OnDemand] != 53 {
		t.Errorf("peak optimum without spot %v, want 53 on-demand", n)
	}
	// One zone out: spot-c's 13 nodes, the rest on-demand.
	if n := optimumNodes(s, false, map[string]bool{"spot-a": true, "spot-b": true}); n[Spot] != 13 || n[OnDemand] != 25 {
		t.Errorf("zone-1 out: %v, want 13 spot and 25 on-demand", n)
	}
}

// TestWholePodNodes: the bound is never above what a placement needs (brute force on small
// sets, First Fit Decreasing on large ones) nor below the room the pods fill, and on the
// benchmark's shapes it is exact: First Fit Decreasing meets it.
func TestWholePodNodes(t *testing.T) {
	for _, s := range []*Shape{Default(), Smoke()} {
		for _, peak := range []bool{false, true} {
			sizes := podSizes(s, peak)
			lb, ffd := wholePodNodes(sizes, s.nodeMilliCPU()), firstFitDecreasing(sizes, s.nodeMilliCPU())
			if lb != ffd {
				t.Errorf("shape %s peak=%v: bound %d, First Fit Decreasing %d: the optimum is not exact", s.Name, peak, lb, ffd)
			}
		}
	}
	if got := wholePodNodes(podSizes(Default(), true), Default().nodeMilliCPU()); got != 53 {
		t.Errorf("peak: %d nodes, want 53 (20 pods of 750 m let 20 nodes hold 3750 m, the others hold at most 3500 m)", got)
	}
	for _, tc := range []struct {
		sizes map[int64]int
		want  int
	}{
		{map[int64]int{2000: 3}, 3},          // no two share a node
		{map[int64]int{1000: 7}, 3},          // 3 a node
		{map[int64]int{500: 8}, 2},           // 3.5 CPU a node
		{map[int64]int{500: 7, 750: 1}, 2},   // 4.25 CPU in two
		{map[int64]int{1500: 2, 750: 1}, 1},  // 3.75 CPU in one
		{map[int64]int{}, 0},                 // nothing to hold
		{map[int64]int{1000: 0, 2000: 1}, 1}, // a size with no pod counts for nothing
	} {
		if got := wholePodNodes(tc.sizes, 3900); got != tc.want {
			t.Errorf("%v: %d nodes, want %d", tc.sizes, got, tc.want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	choices := []int64{250, 500, 750, 1000, 1500, 2000, 2500, 3000}
	for i := 0; i < 300; i++ {
		sizes := map[int64]int{}
		var pods []int64
		for range 1 + rng.IntN(9) {
			size := choices[rng.IntN(len(choices))]
			sizes[size]++
			pods = append(pods, size)
		}
		lb, exact := wholePodNodes(sizes, 3900), fewestNodes(pods, 3900)
		total := int64(0)
		for _, p := range pods {
			total += p
		}
		if lb > exact || int64(lb)*3900 < total {
			t.Fatalf("%v: bound %d, fewest %d, CPU %d m", sizes, lb, exact, total)
		}
		if ffd := firstFitDecreasing(sizes, 3900); ffd < exact {
			t.Fatalf("%v: First Fit Decreasing %d below the fewest %d", sizes, ffd, exact)
		}
	}
}

// firstFitDecreasing is the nodes First Fit Decreasing uses for pods of these sizes: an
// upper bound on the fewest, to show where wholePodNodes is exact.
func firstFitDecreasing(sizes map[int64]int, capacity int64) int {
	var order []int64
	for size := range sizes {
		order = append(order, size)
	}
	slices.Sort(order)
	slices.Reverse(order)
	var free []int64
	for _, size := range order {
		for range sizes[size] {
			i := slices.IndexFunc(free, func(f int64) bool { return f >= size })
			if i < 0 {
				free = append(free, capacity)
				i = len(free) - 1
			}
			free[i] -= size
		}
	}
	return len(free)
}

// fewestNodes is the exact fewest nodes for a few pods, by trying every placement.
func fewestNodes(pods []int64, capacity int64) int {
	best := len(pods)
	var place func(i int, free []int64)
	place = func(i int, free []int64) {
		if len(free) >= best {
			return
		}
		if i == len(pods) {
			best = len(free)
			return
		}
		for j := range free {
			if free[j] >= pods[i] {
				free[j] -= pods[i]
				place(i+1, free)
				free[j] += pods[i]
			}
		}
		place(i+1, append(free, capacity-pods[i]))
	}
	place(0, nil)
	return best
}

// episodeConst is an episode that changes nothing: nodes constant for its duration.
func episodeConst(kind string, nodes map[string]int, d float64, evictions int) *Episode {
	ns := map[string]float64{}
	for t, n := range nodes {
		ns[t] = float64(n) * d
	}
	return &Episode{Kind: kind, Duration: d, NodeSeconds: ns, StartNodes: nodes, EndNodes: nodes, Evictions: evictions,
		Deficit: map[string]float64{"web": 10}}
}

// TestComposeDayCountsEverySecond: with episodes that keep the same nodes, a day costs those
// nodes for 86 400 s whatever the reclaims, every episode's events are counted once, and the
// optimum is never above the strategy (whose nodes could hold the peak on on-demand alone).
func TestComposeDayCountsEverySecond(t *testing.T) {
	s := Default()
	nodes := map[string]int{Spot: 39, OnDemand: 49}
	m := measures{reps: []map[string]*Episode{{}}}
	for _, k := range append(append([]string{}, Library...), Stress...) {
		m.reps[0][k] = episodeConst(k, nodes, 300, 1)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		evs := schedule(s, 3, true, rng)
		d, ok := composeDay(s, m, evs, []int{0}, rng.Float64())
		if !ok {
			t.Fatal("composeDay: an episode is missing")
		}
		for tier, n := range nodes {
			if math.Abs(d.NodeSeconds[tier]-float64(n)*day) > 1e-6 {
				t.Fatalf("day %d: %s node-seconds %v, want %v", i, tier, d.NodeSeconds[tier], float64(n)*day)
			}
		}
		want := 2.0 // the scale episodes
		for _, e := range evs {
			want++ // the reclaim, and its return if it comes before midnight
			if e.At+max(e.Outage, 300) < day {
				want++
			}
		}
		if d.Evictions != want {
			t.Fatalf("day %d: %v evictions, want %v (2 scale episodes + a reclaim and a return per event)", i, d.Evictions, want)
		}
		if opt := dollars(s, optimumDay(s, evs), 0.7); opt > d.Dollars(s, 0.7) {
			t.Fatalf("day %d: optimum $%.2f above the strategy's $%.2f", i, opt, d.Dollars(s, 0.7))
		}
	}
}

// TestComposeDayChargesOutages: an outage is charged at the reclaim's settled state for its
// length, and what the return leaves stays for the rest of the day.
func TestComposeDayChargesOutages(t *testing.T) {
	s := Default()
	base := map[string]int{Spot: 40}
	m := measures{reps: []map[string]*Episode{{}}}
	for _, k := range Library {
		m.reps[0][k] = episodeConst(k, base, 100, 0)
	}
	out := map[string]int{Spot: 30, OnDemand: 10}
	m.reps[0][ReclaimPool] = &Episode{Kind: ReclaimPool, Duration: 100, NodeSeconds: map[string]float64{Spot: 3500, OnDemand: 500},
		StartNodes: base, EndNodes: out}
	after := map[string]int{Spot: 40, OnDemand: 1}
	m.reps[0][ReturnPool] = &Episode{Kind: ReturnPool, Duration: 200, NodeSeconds: map[string]float64{Spot: 7000, OnDemand: 1200},
		StartNodes: out, EndNodes: after}
	evs := []event{{At: 3600, Outage: 1000, Kind: ReclaimPool}}
	d, _ := composeDay(s, m, evs, []int{0}, 0)
	// Before: 3600 s at 40 spot; reclaim 100 s measured; outage 900 s at 30/10; return 200 s
	// measured; then 40/1 to midnight (scale episodes keep 40 spot but reset on-demand).
	// Scale-up at 8 h and scale-down at 20 h replace the state with theirs (40 spot).
	wantOD := 500 + 10*900.0 + 1200 + 1*(peakFrom-(3600+1000+200))
	if math.Abs(d.NodeSeconds[OnDemand]-wantOD) > 1e-6 {
		t.Errorf("on-demand node-seconds %v, want %v", d.NodeSeconds[OnDemand], wantOD)
	}
	wantSpot := 40*3600.0 + 3500 + 30*900 + 7000 + 40*(day-4800)
	if math.Abs(d.NodeSeconds[Spot]-wantSpot) > 1e-6 {
		t.Errorf("spot node-seconds %v, want %v", d.NodeSeconds[Spot], wantSpot)
	}
}

// TestScheduleRate: reclaims per spot pool per day come out at the rate asked, zones with
// several pools reclaimed together.
func TestScheduleRate(t *testing.T) {
	s := Default()
	rng := rand.New(rand.NewPCG(3, 4))
	const days = 4000
	perKind := map[string]int{}
	outage := 0.0
	for i := 0; i < days; i++ {
		for _, e := range schedule(s, 1, false, rng) {
			perKind[e.Kind]++
			outage += e.Outage
		}
	}
	// zone-2 has one pool (reclaim-pool), zone-1 two (reclaim-zone): one event each per day.
	for _, k := range []string{ReclaimPool, ReclaimZone} {
		if got := float64(perKind[k]) / days; math.Abs(got-1) > 0.06 {
			t.Errorf("%s: %.3f per day, want 1", k, got)
		}
	}
	if mean := outage / float64(perKind[ReclaimPool]+perKind[ReclaimZone]); math.Abs(mean-outageMean) > 0.06*outageMean {
		t.Errorf("mean outage %.0f s, want %.0f", mean, outageMean)
	}
}

func TestStepFor(t *testing.T) {
	s := Default()
	for kind, want := range map[string][]string{ReclaimPool: {"spot-c"}, ReclaimZone: {"spot-a", "spot-b"}, ReclaimAll: {"spot-a", "spot-b", "spot-c"}} {
		st, err := StepFor(s, kind)
		if err != nil || len(st.Reclaim) != len(want) {
			t.Fatalf("%s: %+v %v, want %v", kind, st, err, want)
		}
		for i := range want {
			if st.Reclaim[i] != want[i] {
				t.Errorf("%s: reclaims %v, want %v", kind, st.Reclaim, want)
			}
		}
		if ret, _ := StepFor(s, ReturnOf(kind)); len(ret.Return) != len(want) {
			t.Errorf("%s: its return gives back %v", kind, ret.Return)
		}
	}
	if _, err := StepFor(s, "reclaim-everything"); err == nil {
		t.Error("an unknown episode was accepted")
	}
}

func TestShapeValidate(t *testing.T) {
	for _, s := range []*Shape{Default(), Smoke()} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	bad := Default()
	bad.Pools[0].Tier = "reserved"
	if err := bad.Validate(); err == nil {
		t.Error("a pool of an unknown tier was accepted")
	}
	bad = Default()
	bad.Workloads[0].MilliCPU = 4000
	if err := bad.Validate(); err == nil {
		t.Error("a pod larger than a node was accepted")
	}
}

func TestCheckAccounting(t *testing.T) {
	ep := func(at, d float64, start, end int, ns float64) Episode {
		return Episode{Kind: ScaleUp, At: at, Duration: d, NodeSeconds: map[string]float64{Spot: ns},
			StartNodes: map[string]int{Spot: start}, EndNodes: map[string]int{Spot: end},
			Desired: map[string]int{"web": 2}, ServedPodSeconds: 2 * d}
	}
	run := &Run{Strategy: Karpenter, Episodes: []Episode{ep(100, 50, 2, 3, 125), ep(300, 40, 3, 3, 120)},
		Billed: map[string]float64{Spot: 125 + 3*150 + 120}}
	if err := run.CheckAccounting(); err != nil {
		t.Errorf("a consistent run: %v", err)
	}
	run.Billed[Spot] += 60 // a machine billed in a settled stretch that no episode saw
	if err := run.CheckAccounting(); err == nil {
		t.Error("a minute of a machine missing from the episodes went unnoticed")
	}
	run.Billed[Spot] -= 60
	run.Episodes[1].ServedPodSeconds -= 20
	if err := run.CheckAccounting(); err == nil {
		t.Error("20 replica-seconds neither served nor short went unnoticed")
	}
}

func TestChains(t *testing.T) {
	// Without costs: pairs dealt in turn.
	got := Chains(append(append([]string{}, Library...), Stress...), 2, nil)
	want := [][]string{
		{ScaleUp, ScaleDown, ReclaimPoolShort, ReturnPoolShort, ReclaimAll, ReturnAll},
		{ReclaimPool, ReturnPool, ReclaimZone, ReturnZone},
	}
	checkChains(t, got, want)
	if one := Chains(Library, 1, nil); len(one) != 1 || len(one[0]) != len(Library) {
		t.Errorf("one chain: %v", one)
	}
	// With the costs measured (Karpenter's, 2026-12-07): dealt in turn, the zone pair (the
	// costliest) and the pool pair share a chain of 2776 s against 1980 s; balanced, the
	// longest chain is the zone and scale pairs', 2442 s.
	s := Default()
	quiet := s.Quiet.Seconds()
	measured := map[string]float64{ScaleUp: 89, ScaleDown: 793, ReclaimPool: 200, ReturnPool: 1016,
		ReclaimPoolShort: 158, ReturnPoolShort: 940, ReclaimZone: 360, ReturnZone: 1200}
	var runs []*Run
	for _, strategy := range []string{Karpenter, SpotScheduler} {
		r := &Run{Strategy: strategy}
		for _, kind := range Library {
			d := measured[kind]
			if strategy == SpotScheduler {
				d /= 2
			}
			r.Episodes = append(r.Episodes, Episode{Kind: kind, Duration: d})
		}
		runs = append(runs, r)
	}
	cost := EpisodeCosts(s, runs)
	if got := cost(ReturnZone); got != 1200+quiet {
		t.Errorf("return-zone costs %v, want the slowest strategy's %v", got, 1200+quiet)
	}
	if got := cost(ReclaimAll); got <= quiet {
		t.Errorf("an episode never measured costs %v, want the mean of those measured", got)
	}
	checkChains(t, Chains(Library, 2, cost), [][]string{
		{ScaleUp, ScaleDown, ReclaimZone, ReturnZone},
		{ReclaimPool, ReturnPool, ReclaimPoolShort, ReturnPoolShort},
	})
	if got := EpisodeCosts(s, nil)(ReturnZone); got != 1 {
		t.Errorf("with no runs an episode costs %v, want 1 (pairs dealt in turn)", got)
	}
}

func checkChains(t *testing.T, got, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("chains %v, want %v", got, want)
	}
	for i := range want {
		if strings.Join(got[i], ",") != strings.Join(want[i], ",") {
			t.Errorf("chain %d: %v, want %v", i, got[i], want[i])
		}
	}
}

// TestStressRunFillsInRepetitions: a run of the stress episodes alone (--episodes) completes
// the earliest repetitions instead of counting as one.
func TestStressRunFillsInRepetitions(t *testing.T) {
	library := func(inv string, rep int) *Run {
		r := &Run{Strategy: Peer, Invocation: inv, Repetition: rep}
		for _, kind := range Library {
			r.Episodes = append(r.Episodes, Episode{Kind: kind})
		}
		return r
	}
	stress := &Run{Strategy: Peer, Invocation: "c", Repetition: 1, Episodes: []Episode{{Kind: ReclaimAll}, {Kind: ReturnAll}}}
	m, notes := measuresOf([]*Run{library("a", 1), library("b", 1), stress})
	if got := len(m[Peer].reps); got != 2 {
		t.Fatalf("%d repetitions, want 2 (the stress run is not one)", got)
	}
	if m[Peer].reps[0][ReclaimAll] == nil || m[Peer].reps[0][ReturnAll] == nil || m[Peer].reps[1][ReclaimAll] != nil {
		t.Errorf("stress episodes not in the first repetition alone: %v", m[Peer].reps)
	}
	if len(notes) != 0 {
		t.Errorf("notes %v, want none", notes)
	}
	if _, notes := measuresOf([]*Run{stress}); len(notes) == 0 {
		t.Error("a stress run alone: want a note that its repetition lacks the library")
	}
}

// TestAllSpotLines: the summary names, for each workload with a policy, the fewest Running in
// an all-spot reclaim under each strategy that ran one, beside the policy's base.
func TestAllSpotLines(t *testing.T) {
	s := Default()
	run := func(strategy string, fewest int) *Run {
		return &Run{Strategy: strategy, Invocation: strategy, Repetition: 1, Episodes: []Episode{{Kind: ReclaimAll,
			Fewest: map[string]int{"api": fewest, "web": 0}, Desired: map[string]int{"api": 16, "web": 32}}}}
	}
	rep := &Report{Shape: s, Runs: []*Run{run(Karpenter, 5), run(SpotSchedulerPolicy, 4)}}
	lines := rep.allSpotLines()
	want := "all-spot workload=api base=2 desired=16 karpenter=5 spot-scheduler-policy=4"
	if !slices.Contains(lines, want) {
		t.Errorf("lines %q, want one %q", lines, want)
	}
	for _, l := range lines {
		if strings.Contains(l, "workload=web") {
			t.Errorf("line for web, which has no policy: %q", l)
		}
	}
}
