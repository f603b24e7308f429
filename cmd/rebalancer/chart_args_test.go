package main

import (
	"io"
	"slices"
	"testing"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/spot-scheduler/spot-scheduler/test/chart"
)

// TestChartArgsParse: every flag the chart passes to spot-rebalancer (with the default values
// and with every option set) is one of the binary's, with a value it accepts, so that chart
// values and flags cannot drift apart without a cluster noticing first. The chart's Lease
// differs from the binary's default on purpose (docs/operations.md): it is passed, and it is
// the release's.
func TestChartArgsParse(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Helm CLI built from Go modules (hack/helm.sh)")
	}
	for _, tc := range []struct {
		name, deployment, lease string
		args                    []string
		// pack: rebalancer.failback.packWithinTier, off by default; on, the rebalancer's
		// ClusterRole lets it patch nodes (the packing taint), and only then.
		pack bool
	}{
		{"defaults", "spot-spot-scheduler-rebalancer", "spot-spot-scheduler-rebalancer", nil, false},
		{"all options", "spot-rebalancer", "spot-rebalancer-all", []string{"-f", chart.AllOptionsValues}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := chart.Render(t, "spot", "spot-system", tc.args...)
			var d appsv1.Deployment
			chart.Into(t, r.Get(t, "Deployment", tc.deployment), &d)
			args := d.Spec.Template.Spec.Containers[0].Args

			o := newOptions()
			fss := o.flags()
			fs := pflag.NewFlagSet("spot-rebalancer", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			for _, name := range fss.Order {
				fs.AddFlagSet(fss.FlagSets[name])
			}
			if err := fs.Parse(args); err != nil {
				t.Fatalf("spot-rebalancer refuses the chart's args %v: %v", args, err)
			}
			fs.Visit(func(f *pflag.Flag) {
				if f.Deprecated != "" {
					t.Errorf("the chart passes the deprecated flag --%s", f.Name)
				}
			})
			if err := o.validate(); err != nil {
				t.Errorf("the chart's args %v are invalid: %v", args, err)
			}
			if o.rebalance.opts.PackWithinTier != tc.pack {
				t.Errorf("the chart's --pack-within-tier is %v, want %v", o.rebalance.opts.PackWithinTier, tc.pack)
			}
			var role rbacv1.ClusterRole
			chart.Into(t, r.Get(t, "ClusterRole", tc.deployment), &role)
			patchesNodes := slices.ContainsFunc(role.Rules, func(rule rbacv1.PolicyRule) bool {
				return slices.Contains(rule.Resources, "nodes") && slices.Contains(rule.Verbs, "patch")
			})
			if patchesNodes != tc.pack {
				t.Errorf("the rebalancer's ClusterRole lets it patch nodes: %v, want %v (only to pack)", patchesNodes, tc.pack)
			}
			if le := o.leaderElection; le.ResourceNamespace != "spot-system" || le.ResourceName != tc.lease {
				t.Errorf("the chart's rebalancer Lease is %s/%s, want the release's spot-system/%s", le.ResourceNamespace, le.ResourceName, tc.lease)
			}
		})
	}
}
