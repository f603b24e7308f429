package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// PrintJSON writes the report as indented JSON.
func PrintJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// PrintTable writes the report as tables: workloads with the total, then pools, then tiers.
// window is the reclaim history's.
func PrintTable(out io.Writer, r Report, schedulerName string, window time.Duration) error {
	fmt.Fprintf(out, "Pods of profile %s in %s: what they cost per hour now, and on %s (the same requests at its prices); a month is %d hours.\n\n",
		schedulerName, r.Scope, r.ReferenceTier, HoursPerMonth)
	unpriced := r.Total.Unpriced > 0
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	header := "WORKLOAD\tPODS\tPER TIER\tAT RISK\t$/HOUR NOW\t$/HOUR ON " + strings.ToUpper(r.ReferenceTier) + "\tSAVING\t$/MONTH SAVED"
	if unpriced {
		header += "\tUNPRICED"
	}
	fmt.Fprintln(w, header+"\tCAPACITY POLICY")
	line := func(name string, c Costs, policy string) {
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s", name, c.Pods, perTier(c.PodsPerTier), c.PodsAtRisk,
			dollars(c.PerHour), dollars(c.OnDemandPerHour), percent(c), monthly(c.SavingPerMonth))
		if unpriced {
			fmt.Fprintf(w, "\t%d", c.Unpriced)
		}
		if policy == "" {
			fmt.Fprintln(w) // no empty last cell: no trailing blanks
			return
		}
		fmt.Fprintf(w, "\t%s\n", policy)
	}
	for _, wl := range r.Workloads {
		policy := "-"
		if wl.Policy != "none" {
			policy = wl.PolicyStatus + " (" + wl.Policy + ")"
		}
		line(wl.Namespace+"/"+wl.Name, wl.Costs, policy)
	}
	line("TOTAL", r.Total, "")
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(out, "\nPools (the whole cluster): nodes now, what they cost, reclaims recorded in the last %s.\n\n", window)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POOL\tTIER\tNODES\t$/HOUR\tRECLAIMS")
	for _, p := range r.Pools {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\n", p.Pool, p.Tier, p.Nodes, nodeDollars(p.PerHour, p.Nodes, p.UnpricedNodes), p.Reclaims)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIER\tNODES\t$/HOUR")
	for _, t := range r.Tiers {
		fmt.Fprintf(w, "%s\t%d\t%s\n", t.Tier, t.Nodes, nodeDollars(t.PerHour, t.Nodes, t.UnpricedNodes))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(out, "\nWarning: %s", warning)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(out)
	}
	return nil
}

func perTier(m map[string]int) string {
	tiers := make([]string, 0, len(m))
	for t := range m {
		tiers = append(tiers, t)
	}
	sort.Strings(tiers)
	parts := make([]string, 0, len(tiers))
	for _, t := range tiers {
		parts = append(parts, fmt.Sprintf("%s %d", t, m[t]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func dollars(v float64) string { return fmt.Sprintf("$%.4f", v) }

func monthly(v float64) string { return fmt.Sprintf("$%.2f", v) }

func percent(c Costs) string {
	if c.OnDemandPerHour == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", c.SavingPercent)
}

// nodeDollars is what priced nodes cost, naming the unpriced ones.
func nodeDollars(v float64, nodes, unpriced int) string {
	switch {
	case nodes == 0:
		return "-"
	case unpriced == nodes:
		return "unknown"
	case unpriced > 0:
		return fmt.Sprintf("%s (%d unpriced)", dollars(v), unpriced)
	}
	return dollars(v)
}
