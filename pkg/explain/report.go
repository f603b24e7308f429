package explain

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/spot-scheduler/spot-scheduler/pkg/report"
	"github.com/spot-scheduler/spot-scheduler/pkg/simulator"
)

type reportOptions struct {
	options
	namespace     string
	allNamespaces bool
}

// NewReportCommand returns the report command (also run as the kubectl plugin `kubectl spot
// report`): what the pods of the profile cost, what they save against the reference tier,
// and what each pool has cost in reclaims (pkg/report).
func NewReportCommand() *cobra.Command {
	o := &reportOptions{options: options{out: os.Stdout, errOut: os.Stderr}}
	cmd := &cobra.Command{
		Use:   "report [--namespace NAME | --all-namespaces]",
		Short: "Show what the pods of spot-scheduler's profile cost per hour, what they save against on-demand, and each pool's reclaims",
		Long: "report prices every pod of the profile at its node's price (the node's price label, else the price table of the " +
			"SpotScore args, from --scheduler-config or --config-map), per workload and in total, next to what the same pods " +
			"would cost on the reference tier (on-demand by default), with the capacity policy's status and the pods on " +
			"at-risk nodes; and, for every pool, its nodes, their price and the reclaims the rebalancer recorded. It changes nothing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context())
		},
		SilenceUsage: true,
	}
	o.addCommonFlags(cmd)
	cmd.Flags().StringVarP(&o.namespace, "namespace", "n", "", "Report the workloads of this namespace (default: the kubeconfig context's namespace).")
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "Report the workloads of every namespace.")
	return cmd
}

func (o *reportOptions) run(ctx context.Context) error {
	if err := o.validateCommon(); err != nil {
		return err
	}
	if o.allNamespaces && o.namespace != "" {
		return fmt.Errorf("give at most one of --namespace and --all-namespaces")
	}
	client, _, configFile, cleanup, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	model, err := simulator.LoadModel(klog.FromContext(ctx), configFile, o.profile)
	if err != nil {
		return err
	}
	namespace := o.namespace
	if !o.allNamespaces && namespace == "" {
		if namespace, _, err = o.clientConfig().Namespace(); err != nil {
			return fmt.Errorf("kubeconfig: %w", err)
		}
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	// A Deployment is one workload over its ReplicaSets; without the right to list them, the
	// report names the ReplicaSets.
	owners := map[string]string{}
	if rss, err := client.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(o.errOut, "ReplicaSets not listed (%v): workloads are named by their ReplicaSets.\n", err)
	} else {
		for _, rs := range rss.Items {
			if ref := metav1.GetControllerOfNoCopy(&rs); ref != nil {
				owners[rs.Namespace+"/"+rs.Name] = ref.Kind + "/" + ref.Name
			}
		}
	}
	r := report.Build(report.Input{
		Model: model, SchedulerName: o.profile, Namespace: namespace,
		Nodes: pointers(nodes.Items), Pods: pointers(pods.Items), Owners: owners,
		Reclaims: o.readReclaims(ctx, client, model),
	})
	if o.output == "json" {
		return report.PrintJSON(o.out, r)
	}
	return report.PrintTable(o.out, r, o.profile, model.ReclaimWindow())
}

// pointers returns pointers to the items of a list.
func pointers[T v1.Node | v1.Pod](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
