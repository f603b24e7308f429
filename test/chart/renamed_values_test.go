package chart

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// TestChartRenamedValues: a value renamed so that each thing has one name keeps working under
// its former name (an upgrade with old values files renders the same objects), and the two
// names set to different values fail, naming both, rather than one silently winning.
//
// serviceAccount.schedulerName read as spec.schedulerName (the top-level schedulerName); the
// ServiceAccount names are now <component>.serviceAccountName, as the pod field they set.
func TestChartRenamedValues(t *testing.T) {
	skipShort(t)
	const fn = "spot-scheduler"
	for _, tc := range []struct {
		name        string
		set         string
		want        map[string]string // component: ServiceAccount of its Deployment
		wantFailure string
	}{
		{name: "defaults", want: map[string]string{"scheduler": fn + "-scheduler", "rebalancer": fn + "-rebalancer"}},
		{name: "new names", set: "scheduler.serviceAccountName=sched-sa,rebalancer.serviceAccountName=reb-sa",
			want: map[string]string{"scheduler": "sched-sa", "rebalancer": "reb-sa"}},
		{name: "deprecated names", set: "serviceAccount.schedulerName=sched-sa,serviceAccount.rebalancerName=reb-sa",
			want: map[string]string{"scheduler": "sched-sa", "rebalancer": "reb-sa"}},
		{name: "both names agreeing", set: "serviceAccount.schedulerName=sched-sa,scheduler.serviceAccountName=sched-sa",
			want: map[string]string{"scheduler": "sched-sa", "rebalancer": fn + "-rebalancer"}},
		{name: "both names disagreeing", set: "serviceAccount.rebalancerName=old-sa,rebalancer.serviceAccountName=new-sa",
			wantFailure: `serviceAccount.rebalancerName (deprecated) is "old-sa" but rebalancer.serviceAccountName is "new-sa"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.set != "" {
				args = []string{"--set", tc.set}
			}
			if tc.wantFailure != "" {
				_, err := Template(t, fn, fn, args...)
				if err == nil || !strings.Contains(err.Error(), tc.wantFailure) {
					t.Fatalf("helm template --set %s: error %v, want one saying %q", tc.set, err, tc.wantFailure)
				}
				return
			}
			r := Render(t, fn, fn, args...)
			for component, sa := range tc.want {
				var d appsv1.Deployment
				Into(t, r.Get(t, "Deployment", fn+"-"+component), &d)
				if got := d.Spec.Template.Spec.ServiceAccountName; got != sa {
					t.Errorf("%s runs as %q, want %q", component, got, sa)
				}
				// The ServiceAccount created and the one the RBAC binds are the same.
				r.Get(t, "ServiceAccount", sa)
				var bound bool
				for _, b := range r.OfKind("ClusterRoleBinding") {
					var crb rbacv1.ClusterRoleBinding
					Into(t, b, &crb)
					for _, s := range crb.Subjects {
						bound = bound || s.Kind == "ServiceAccount" && s.Name == sa
					}
				}
				if !bound {
					t.Errorf("no ClusterRoleBinding binds ServiceAccount %s", sa)
				}
			}
		})
	}
}
