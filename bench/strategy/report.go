package strategy

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spot-scheduler/spot-scheduler/bench/trace"
)

func fmtRatio(v float64) string { return fmt.Sprintf("%.2f", v) }

func fmtPerMove(m Metrics) string {
	switch {
	case m.Strategy == Optimum:
		return "-"
	case math.IsNaN(m.EvictionsPerMove) && m.Evictions == 0:
		return "0"
	case math.IsNaN(m.EvictionsPerMove):
		return "inf"
	}
	return fmt.Sprintf("%.2f", m.EvictionsPerMove)
}

func fmtFailback(m Metrics) string {
	if m.FailbackSeconds < 0 {
		return "never"
	}
	return fmt.Sprintf("%.0f", m.FailbackSeconds)
}

func tierSeconds(tr *trace.Trace, m Metrics) string {
	var parts []string
	for _, tier := range tr.TiersByPrice() {
		parts = append(parts, fmt.Sprintf("%.0f", m.PodSecondsPerTier[tier]))
	}
	return strings.Join(parts, " / ")
}

func fmtSeconds(v float64) string {
	if v < 0 {
		return "never"
	}
	return fmt.Sprintf("%.0f", v)
}

// workloadNames lists the trace's workloads in trace order.
func workloadNames(tr *trace.Trace) []string {
	out := make([]string, 0, len(tr.Workloads))
	for _, w := range tr.Workloads {
		out = append(out, w.Name)
	}
	return out
}

// fmtSafety is a window's fewest Running replicas per workload, in trace order ("3/2/1").
func fmtSafety(tr *trace.Trace, m Metrics, i int) string {
	if m.Strategy == Optimum || i >= len(m.Safety) {
		return "-"
	}
	var parts []string
	for _, w := range workloadNames(tr) {
		parts = append(parts, strconv.Itoa(m.Safety[i].MinRunning[w]))
	}
	return strings.Join(parts, " / ")
}

// Markdown writes the results table, then the safety table, then (runs with Karpenter) the
// table of Karpenter's nodes.
func Markdown(w io.Writer, tr *trace.Trace, ms []Metrics) {
	fmt.Fprintf(w, "| strategy | node cost $ | × optimum | pod cost $ | × optimum | pending pod-s | evictions | needed moves | evictions / move | failback s | spot back s | misplaced at end | pod-s %s |\n",
		strings.Join(tr.TiersByPrice(), " / "))
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, m := range ms {
		fmt.Fprintf(w, "| %s | %.4f | %s | %.4f | %s | %.0f | %d | %d | %s | %s | %s | %d | %s |\n",
			m.Strategy, m.NodeCost, fmtRatio(m.NodeCostRatio), m.PodCost, fmtRatio(m.PodRatio),
			m.PendingPodSeconds, m.Evictions, m.NeededMoves, fmtPerMove(m), fmtFailback(m), fmtSeconds(m.SpotBackSeconds), m.MisplacedAtEnd, tierSeconds(tr, m))
	}
	windows := tr.ReclaimWindows()
	if len(windows) > 0 {
		names := strings.Join(workloadNames(tr), " / ")
		fmt.Fprintf(w, "\nSafety: the fewest replicas of each workload (%s; desired %s) Running during each reclaim, next to the cost.\n\n", names, desiredOf(tr, windows[0]))
		fmt.Fprint(w, "| strategy | pod cost × optimum |")
		for _, win := range windows {
			fmt.Fprintf(w, " %s |", win.Name())
		}
		fmt.Fprintln(w)
		fmt.Fprint(w, "| --- | ---: |")
		for range windows {
			fmt.Fprint(w, " ---: |")
		}
		fmt.Fprintln(w)
		for _, m := range ms {
			fmt.Fprintf(w, "| %s | %s |", m.Strategy, fmtRatio(m.PodRatio))
			for i := range windows {
				fmt.Fprintf(w, " %s |", fmtSafety(tr, m, i))
			}
			fmt.Fprintln(w)
		}
	}
	var autoscaled []Metrics
	for _, m := range ms {
		if m.Autoscaled {
			autoscaled = append(autoscaled, m)
		}
	}
	if len(autoscaled) == 0 {
		return
	}
	fmt.Fprintf(w, "\nKarpenter's nodes: node cost from Karpenter's node-seconds × each node's offering price (pending pods at the highest price), against the optimum.\n\n")
	fmt.Fprintf(w, "| strategy | node cost $ (node-seconds) | × optimum | node-s %s | evictions (moves) | drain evictions (reclaims) | spot back s | launches refused past a limit |\n", strings.Join(tr.TiersByPrice(), " / "))
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, m := range autoscaled {
		var parts []string
		for _, tier := range tr.TiersByPrice() {
			parts = append(parts, fmt.Sprintf("%.0f", m.NodeSecondsPerTier[tier]))
		}
		fmt.Fprintf(w, "| %s | %.4f | %s | %s | %d | %d | %s | %d |\n", m.Strategy, m.AutoscaledNodeCost, fmtRatio(m.AutoscaledRatio),
			strings.Join(parts, " / "), m.Evictions, m.DrainEvictions, fmtSeconds(m.SpotBackSeconds), m.RefusedLaunches)
	}
}

func desiredOf(tr *trace.Trace, win trace.Window) string {
	replicas := tr.StateAfter(win.First).Replicas
	var parts []string
	for _, w := range workloadNames(tr) {
		parts = append(parts, strconv.Itoa(replicas[w]))
	}
	return strings.Join(parts, " / ")
}

// SummaryCSV writes one row per strategy.
func SummaryCSV(w io.Writer, tr *trace.Trace, ms []Metrics) error {
	cw := csv.NewWriter(w)
	header := []string{"strategy", "node_cost", "node_cost_ratio", "pod_cost", "pod_cost_ratio", "optimum_cost",
		"pending_pod_seconds", "evictions", "needed_moves", "evictions_per_move", "failback_seconds", "misplaced_at_end"}
	for _, tier := range tr.TiersByPrice() {
		header = append(header, "pod_seconds_"+tier)
	}
	header = append(header, "spot_back_seconds", "autoscaler_node_cost", "autoscaler_node_cost_ratio", "drain_evictions", "refused_launches")
	for _, tier := range tr.TiersByPrice() {
		header = append(header, "node_seconds_"+tier)
	}
	windows := tr.ReclaimWindows()
	for i := range windows {
		for _, w := range workloadNames(tr) {
			header = append(header, fmt.Sprintf("min_running_window%d_%s", i+1, w))
		}
	}
	_ = cw.Write(header)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	for _, m := range ms {
		row := []string{m.Strategy, f(m.NodeCost), f(m.NodeCostRatio), f(m.PodCost), f(m.PodRatio), f(m.OptimumCost),
			f(m.PendingPodSeconds), strconv.Itoa(m.Evictions), strconv.Itoa(m.NeededMoves), f(m.EvictionsPerMove),
			f(m.FailbackSeconds), strconv.Itoa(m.MisplacedAtEnd)}
		for _, tier := range tr.TiersByPrice() {
			row = append(row, f(m.PodSecondsPerTier[tier]))
		}
		row = append(row, f(m.SpotBackSeconds), f(m.AutoscaledNodeCost), f(m.AutoscaledRatio), strconv.Itoa(m.DrainEvictions), strconv.Itoa(m.RefusedLaunches))
		for _, tier := range tr.TiersByPrice() {
			row = append(row, f(m.NodeSecondsPerTier[tier]))
		}
		for i := range windows {
			for _, w := range workloadNames(tr) {
				v := ""
				if m.Strategy != Optimum && i < len(m.Safety) {
					v = strconv.Itoa(m.Safety[i].MinRunning[w])
				}
				row = append(row, v)
			}
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// TimeseriesCSV writes every sample of every run: pods per tier over time.
func TimeseriesCSV(w io.Writer, tr *trace.Trace, runs []*Run) error {
	cw := csv.NewWriter(w)
	header := []string{"strategy", "t", "events"}
	header = append(header, tr.TiersByPrice()...)
	header = append(header, "pending", "evictions")
	for _, w := range workloadNames(tr) {
		header = append(header, "running_"+w)
	}
	header = append(header, "node_price_per_hour")
	_ = cw.Write(header)
	for _, run := range runs {
		for _, s := range run.Samples {
			row := []string{run.Strategy, strconv.FormatFloat(s.T, 'f', 2, 64), strconv.Itoa(s.Events)}
			for _, tier := range tr.TiersByPrice() {
				row = append(row, strconv.Itoa(s.PodsPerTier[tier]))
			}
			row = append(row, strconv.Itoa(s.Pending), strconv.Itoa(s.Evictions))
			for _, w := range workloadNames(tr) {
				row = append(row, strconv.Itoa(s.Running[w]))
			}
			row = append(row, strconv.FormatFloat(s.NodePricePerHour, 'f', 4, 64))
			_ = cw.Write(row)
		}
	}
	cw.Flush()
	return cw.Error()
}

// Results computes every run's metrics, with the optimum first.
func Results(tr *trace.Trace, runs []*Run, step float64) ([]*Run, []Metrics) {
	all := append([]*Run{OptimumRun(tr, step)}, runs...)
	ms := make([]Metrics, 0, len(all))
	for _, run := range all {
		ms = append(ms, Compute(tr, run))
	}
	return all, ms
}

// WriteReports writes results.md (the table), summary.csv, timeseries.csv and
// pods-per-tier.png into dir.
func WriteReports(dir string, tr *trace.Trace, runs []*Run, ms []Metrics, header string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md strings.Builder
	md.WriteString(header)
	Markdown(&md, tr, ms)
	files := map[string]func(io.Writer) error{
		"results.md":        func(w io.Writer) error { _, err := io.WriteString(w, md.String()); return err },
		"summary.csv":       func(w io.Writer) error { return SummaryCSV(w, tr, ms) },
		"timeseries.csv":    func(w io.Writer) error { return TimeseriesCSV(w, tr, runs) },
		"pods-per-tier.png": func(w io.Writer) error { return Chart(w, tr, runs) },
	}
	for name, write := range files {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
