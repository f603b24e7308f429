package day

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spot-scheduler/spot-scheduler/bench/strategy"
	"github.com/spot-scheduler/spot-scheduler/bench/trace"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
)

// Rates (reclaims per spot pool per day) and discounts (spot below on-demand) of the report.
var (
	Rates     = []float64{0.1, 1, stressRate}
	Discounts = []float64{0.6, 0.7, 0.9}
)

// SaveRun writes a run as runs/<date>-<strategy>-r<n>.json under dir (runs accumulate).
func SaveRun(dir string, r *Run) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o755); err != nil {
		return "", err
	}
	name := filepath.Join(dir, "runs", fmt.Sprintf("%s-%s-%s-r%d-c%d.json", r.Date.Format("20060102T150405"), r.Shape, r.Strategy, r.Repetition, r.Chain))
	data, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return "", err
	}
	return name, os.WriteFile(name, data, 0o644)
}

// LoadRuns reads every saved run of a shape.
func LoadRuns(dir, shape string) ([]*Run, error) {
	files, err := filepath.Glob(filepath.Join(dir, "runs", "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var runs []*Run
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r Run
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if r.Shape == shape {
			runs = append(runs, &r)
		}
	}
	return runs, nil
}

// Report is everything the runs say.
type Report struct {
	Shape     *Shape
	Runs      []*Run
	Estimates map[float64]map[float64]map[string]*Estimate // rate → discount → strategy
	Notes     []string
}

// Summarize composes the days of every rate and discount.
func Summarize(s *Shape, runs []*Run) *Report {
	all, notes := measuresOf(runs)
	names := strategiesIn(all)
	rep := &Report{Shape: s, Runs: runs, Estimates: map[float64]map[float64]map[string]*Estimate{}, Notes: notes}
	for _, rate := range Rates {
		rep.Estimates[rate] = map[float64]map[string]*Estimate{}
		for _, d := range Discounts {
			rep.Estimates[rate][d] = estimate(s, all, names, rate, d, 20261207)
		}
	}
	return rep
}

func strategiesIn(all map[string]measures) []string {
	var names []string
	for _, s := range AllStrategies {
		if _, ok := all[s]; ok {
			names = append(names, s)
		}
	}
	return names
}

// SummaryLines are the lines a script reads: one per rate and discount and strategy other
// than the peer.
func (rep *Report) SummaryLines() []string {
	var lines []string
	for _, rate := range Rates {
		for _, d := range Discounts {
			est := rep.Estimates[rate][d]
			for _, name := range AllStrategies {
				e, ok := est[name]
				if !ok || name == Peer || est[Peer] == nil {
					continue
				}
				lines = append(lines, fmt.Sprintf("day rate=%g discount=%.0f %s/%s=%.2f lo=%.2f hi=%.2f evictions=%.2f deficit=%.2f reps=%d",
					rate, d*100, name, Peer, e.Ratio, e.RatioLo, e.RatioHi, e.EvictionRatio, e.DeficitRatio, min(e.Reps, est[Peer].Reps)))
			}
			// The lowest $/day ratio any placement reaches on the same days.
			if peer := est[Peer]; peer != nil {
				lines = append(lines, fmt.Sprintf("day rate=%g discount=%.0f optimum/%s=%.2f", rate, d*100, Peer, peer.Optimum/peer.Dollars))
			}
		}
	}
	return append(lines, rep.allSpotLines()...)
}

// allSpotLines: for every workload with a capacity policy, the fewest replicas Running during
// an all-spot reclaim under each strategy that ran one (the lowest over its repetitions), with
// the policy's on-demand base:
//
//	all-spot workload=api base=2 desired=16 karpenter=5 spot-scheduler-policy=4
func (rep *Report) allSpotLines() []string {
	all, _ := measuresOf(rep.Runs)
	var lines []string
	for _, w := range rep.Shape.Workloads {
		if !w.Policy {
			continue
		}
		var parts []string
		desired := 0
		for _, name := range AllStrategies {
			fewest := -1
			for _, r := range all[name].reps {
				if ep := r[ReclaimAll]; ep != nil {
					if n, ok := ep.Fewest[w.Name]; ok && (fewest < 0 || n < fewest) {
						fewest, desired = n, ep.Desired[w.Name]
					}
				}
			}
			if fewest >= 0 {
				parts = append(parts, fmt.Sprintf("%s=%d", name, fewest))
			}
		}
		if len(parts) > 0 {
			lines = append(lines, fmt.Sprintf("all-spot workload=%s base=%s desired=%d %s", w.Name, rep.Shape.Policy[policy.OnDemandBaseAnnotation], desired, strings.Join(parts, " ")))
		}
	}
	return lines
}

// Markdown writes the results page.
func (rep *Report) Markdown(w io.Writer, header string) {
	fmt.Fprintln(w, header)
	fmt.Fprintln(w)
	all, _ := measuresOf(rep.Runs)
	var dates []string
	wall := map[string]float64{}
	for _, r := range rep.Runs {
		wall[r.Strategy] += r.Wall
		if d := r.Date.Format("2006-01-02"); !slices.Contains(dates, d) {
			dates = append(dates, d)
		}
	}
	fmt.Fprintf(w, "Runs of %s: ", strings.Join(dates, ", "))
	var parts []string
	for _, s := range AllStrategies {
		if n := len(all[s].reps); n > 0 {
			parts = append(parts, fmt.Sprintf("%s × %d (%.0f cluster-minutes each)", s, n, wall[s]/float64(n)/60))
		}
	}
	fmt.Fprintln(w, strings.Join(parts, ", ")+".")
	fmt.Fprintln(w)
	for _, rate := range Rates {
		est := rep.Estimates[rate][0.7]
		fmt.Fprintf(w, "### %g reclaims per spot pool per day, spot 70 %% below on-demand\n\n", rate)
		fmt.Fprintln(w, "| strategy | $/day | × optimum | × karpenter (95 % interval) | $/served pod-h | evictions/day no reclaim caused | per needed move | drains/day | replica-deficit s/day (replicas short or Pending) | moved twice/day | headroom node-s/day |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, name := range AllStrategies {
			e, ok := est[name]
			if !ok {
				continue
			}
			perMove := "-"
			if e.Needed > 0 {
				perMove = fmt.Sprintf("%.2f", e.Evictions/e.Needed)
			}
			paired := "-"
			if _, ok := est[Peer]; ok && name != Peer {
				paired = fmt.Sprintf("%.3f (%.3f-%.3f)", e.Ratio, e.RatioLo, e.RatioHi)
			}
			fmt.Fprintf(w, "| %s | %.2f | %.3f | %s | %.4f | %.1f | %s | %.1f | %.0f | %.1f | %.0f |\n",
				name, e.Dollars, e.Dollars/e.Optimum, paired, e.PerServedPodHour, e.Evictions, perMove, e.Drains,
				e.Deficit, e.MovedTwice, e.HeadroomNodeSeconds)
		}
		for _, name := range AllStrategies {
			if e, ok := est[name]; ok {
				fmt.Fprintf(w, "\nOptimum (whole nodes holding whole pods, the same days): $%.2f/day", e.Optimum)
				if peer, ok := est[Peer]; ok {
					fmt.Fprintf(w, ", %.3f × %s's: the lowest ratio to %s any placement reaches", e.Optimum/peer.Dollars, Peer, Peer)
				}
				fmt.Fprintln(w, ".")
				break
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "### Episodes (mean over repetitions)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Node-s beyond start: the node-seconds an episode billed beyond keeping its starting nodes for its duration, by tier (spot / on-demand / burst); dollars at 70 % off.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| strategy | episode | settled in s | nodes start → end | node-s beyond start | $ beyond start | evictions (no reclaim) | drains | needed moves | moved twice | replica-deficit s | fewest Running / desired (workload) | p95 pending s | mean s to bind / to Ready |")
	fmt.Fprintln(w, "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
	for _, name := range AllStrategies {
		m, ok := all[name]
		if !ok {
			continue
		}
		for _, kind := range append(slices.Clone(Library), Stress...) {
			var eps []*Episode
			for _, r := range m.reps {
				if ep := r[kind]; ep != nil {
					eps = append(eps, ep)
				}
			}
			if len(eps) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.3f | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, kind,
				meanOf(eps, func(e *Episode) float64 { return e.Duration }, "%.0f"),
				nodesSummary(eps[0]), beyond(eps), beyondDollars(rep.Shape, eps),
				meanOf(eps, func(e *Episode) float64 { return float64(e.Evictions) }, "%.1f"),
				meanOf(eps, func(e *Episode) float64 { return float64(e.DrainEvictions) }, "%.1f"),
				meanOf(eps, func(e *Episode) float64 { return float64(e.NeededMoves) }, "%.1f"),
				meanOf(eps, func(e *Episode) float64 { return float64(e.MovedTwice) }, "%.1f"),
				meanOf(eps, func(e *Episode) float64 { return e.TotalDeficit() }, "%.0f"),
				fewest(eps), meanOf(eps, func(e *Episode) float64 { return e.PendingP95 }, "%.0f"), waitsSummary(eps))
		}
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range rep.Notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

// waitsSummary: the mean seconds from creation to binding and from binding to Ready of the
// pods an episode created; runs recorded before these were measured show "-".
func waitsSummary(eps []*Episode) string {
	var bind, ready, n float64
	for _, e := range eps {
		if e.ToBind == 0 && e.ToReady == 0 {
			continue
		}
		bind, ready, n = bind+e.ToBind, ready+e.ToReady, n+1
	}
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f / %.1f", bind/n, ready/n)
}

func meanOf(eps []*Episode, f func(*Episode) float64, format string) string {
	var xs []float64
	for _, e := range eps {
		xs = append(xs, f(e))
	}
	out := fmt.Sprintf(format, mean(xs))
	if len(xs) > 1 {
		lo, hi := slices.Min(xs), slices.Max(xs)
		out += fmt.Sprintf(" ("+format+"-"+format+")", lo, hi)
	}
	return out
}

func nodesSummary(e *Episode) string {
	f := func(m map[string]int) string {
		return fmt.Sprintf("%d/%d/%d", m[Spot], m[OnDemand], m[Burst])
	}
	s := f(e.StartNodes) + " → " + f(e.EndNodes)
	if !e.Settled {
		s += " (not settled)"
	}
	return s
}

func beyondOne(e *Episode) map[string]float64 {
	out := map[string]float64{}
	for _, t := range Tiers {
		out[t] = e.NodeSeconds[t] - float64(e.StartNodes[t])*e.Duration
	}
	return out
}

func beyond(eps []*Episode) string {
	sum := map[string]float64{}
	for _, e := range eps {
		for t, v := range beyondOne(e) {
			sum[t] += v / float64(len(eps))
		}
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f", sum[Spot], sum[OnDemand], sum[Burst])
}

func beyondDollars(s *Shape, eps []*Episode) float64 {
	total := 0.0
	for _, e := range eps {
		total += dollars(s, beyondOne(e), 0.7) / float64(len(eps))
	}
	return total
}

// fewest is the lowest Running/desired of any workload in the episode (its name).
func fewest(eps []*Episode) string {
	worst, name := 2.0, ""
	for _, e := range eps {
		// By name, so that a tie goes to the same workload in every report.
		for _, w := range slices.Sorted(maps.Keys(e.Fewest)) {
			n := e.Fewest[w]
			if d := e.Desired[w]; d > 0 && float64(n)/float64(d) < worst {
				worst, name = float64(n)/float64(d), fmt.Sprintf("%d/%d (%s)", n, d, w)
			}
		}
	}
	return name
}

// WriteReports writes summary.txt, results.md, day-dollars.png and an episode's timeline.
func (rep *Report) WriteReports(dir, header string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	summary := strings.Join(rep.SummaryLines(), "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(summary), 0o644); err != nil {
		return err
	}
	md, err := os.Create(filepath.Join(dir, "results.md"))
	if err != nil {
		return err
	}
	rep.Markdown(md, header)
	if err := md.Close(); err != nil {
		return err
	}
	var bars []strategy.Bar
	est := rep.Estimates[1][0.7]
	for _, name := range AllStrategies {
		if e, ok := est[name]; ok {
			bars = append(bars, strategy.Bar{Label: name, Value: e.Dollars, Lo: e.Dollars / e.Ratio * e.RatioLo, Hi: e.Dollars / e.Ratio * e.RatioHi})
		}
	}
	if e, ok := est[Peer]; ok {
		bars = append(bars, strategy.Bar{Label: "optimum", Value: e.Optimum, Lo: e.Optimum, Hi: e.Optimum})
	}
	if err := writePNG(filepath.Join(dir, "day-dollars.png"), func(w io.Writer) error {
		return strategy.IntervalChart(w, "dollars per day - 1 reclaim per spot pool per day - spot 70 pct off (interval: paired with karpenter)", "$", bars)
	}); err != nil {
		return err
	}
	return writePNG(filepath.Join(dir, "reclaim-zone.png"), func(w io.Writer) error { return rep.timeline(w, ReclaimZone) })
}

func writePNG(path string, draw func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := draw(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// timeline charts one episode's pods per tier for each strategy's latest run (the strategy
// benchmark's chart: an episode as a trace of one event at 0).
func (rep *Report) timeline(w io.Writer, kind string) error {
	latest := map[string]*Episode{}
	for _, r := range rep.Runs {
		for i := range r.Episodes {
			if r.Episodes[i].Kind == kind {
				latest[r.Strategy] = &r.Episodes[i]
			}
		}
	}
	tr := &trace.Trace{Name: kind, Prices: map[string]float64{Spot: 1, OnDemand: 2, Burst: 3}, Events: []trace.Event{{At: 10}}}
	var runs []*strategy.Run
	for _, name := range AllStrategies {
		ep, ok := latest[name]
		if !ok {
			continue
		}
		run := &strategy.Run{Strategy: name}
		for _, p := range ep.Timeline {
			run.Samples = append(run.Samples, strategy.Sample{T: p.T + 10, PodsPerTier: p.PodsPerTier, Pending: p.Pending})
			tr.Duration = max(tr.Duration, p.T+10)
		}
		runs = append(runs, run)
	}
	if len(runs) == 0 {
		return nil
	}
	return strategy.Chart(w, tr, runs)
}

// Header describes the run environment.
func Header(s *Shape, karpenter string, took time.Duration) string {
	return fmt.Sprintf("Real-day benchmark, shape `%s`, Karpenter %s (kwok provider), %s. This invocation took %s.", s.Name, karpenter, time.Now().UTC().Format("2006-01-02"), took.Round(time.Second))
}
