package demo

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/reclaimhistory"
	"github.com/spot-scheduler/spot-scheduler/pkg/report"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// MemoryPrices per GiB-hour complete Prices (per vCPU-hour) into the price table the demo
// gives the SpotScore args (an m5.xlarge-like on-demand node, 4 vCPU and 16 GiB, costs
// 4 x 0.040 + 16 x 0.002 = $0.192 an hour; spot about 70 % off).
var MemoryPrices = map[string]float64{"reserved": 0.00125, "spot": 0.0006, "on-demand": 0.002, "burst": 0.0044}

// priceTable is the demo's price table: one entry per tier.
func priceTable() []v1alpha1.PriceEntry {
	var table []v1alpha1.PriceEntry
	for _, tier := range []string{"reserved", "spot", "on-demand", "burst"} {
		table = append(table, v1alpha1.PriceEntry{Tier: tier, PerVCPUHour: Prices[tier], PerGiBHour: MemoryPrices[tier]})
	}
	return table
}

// withPrices returns the KubeSchedulerConfiguration with the demo's price table in the
// SpotScore args of the spot-scheduler profile, as a user would write it.
func withPrices(config []byte) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return nil, err
	}
	profiles, _ := doc["profiles"].([]any)
	for _, p := range profiles {
		profile, _ := p.(map[string]any)
		if profile["schedulerName"] != wellknown.SchedulerName {
			continue
		}
		pluginConfig, _ := profile["pluginConfig"].([]any)
		for _, pc := range pluginConfig {
			entry, _ := pc.(map[string]any)
			if entry["name"] != "SpotScore" {
				continue
			}
			args, _ := entry["args"].(map[string]any)
			if args == nil {
				args = map[string]any{}
				entry["args"] = args
			}
			args["prices"] = v1alpha1.Prices{Table: priceTable()}
			return yaml.Marshal(doc)
		}
	}
	return nil, fmt.Errorf("no SpotScore pluginConfig in profile %s", wellknown.SchedulerName)
}

// printReport runs `kubectl spot report` (the scheduler binary's report command) against the
// demo's cluster, and keeps the report's numbers in the summary.
func (r *run) printReport(ctx context.Context, s *Summary) error {
	r.say("7. what it saved: kubectl spot report --all-namespaces")
	cmd := exec.CommandContext(ctx, r.opts.SchedulerBinary, "report", "--all-namespaces", "--scheduler-config", r.config, "--kubeconfig", r.cluster.Kubeconfig)
	// Its log (the configuration loader's) goes to stderr: shown only if it fails.
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = r.opts.Out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl spot report: %w\n%s", err, stderr.String())
	}
	nodes, err := r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	pods, err := r.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	namespace, name := r.model.ReclaimHistoryConfigMap()
	history, err := reclaimhistory.Load(ctx, r.client, namespace, name)
	if err != nil {
		return err
	}
	in := report.Input{Model: r.model, SchedulerName: wellknown.SchedulerName}
	for i := range nodes.Items {
		in.Nodes = append(in.Nodes, &nodes.Items[i])
	}
	for i := range pods.Items {
		in.Pods = append(in.Pods, &pods.Items[i])
	}
	in.Reclaims, _ = history.Counts(time.Now(), r.model.ReclaimWindow())
	rep := report.Build(in)
	s.Report = &rep
	return nil
}
