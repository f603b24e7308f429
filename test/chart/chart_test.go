package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Helm CLI built from Go modules (hack/helm.sh)")
	}
}

// optional kinds/names that only appear when their option is on.
var optionalObjects = []string{"PriorityClass/%s-placeholder", "ServiceMonitor", "Deployment/%s-placeholder", "PodTemplate", "CapacityBuffer", "ConfigMap/cluster-autoscaler-priority-expander", "ConfigMap/%s-dashboard"}

func has(r *Rendered, kind, name string) bool {
	for _, o := range r.Objects {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return true
		}
	}
	return false
}

// checkPodSecurity asserts the restricted Pod Security profile on a pod spec, at the pod and
// container level.
func checkPodSecurity(t *testing.T, what string, spec *v1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != v1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", what, psc)
	}
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		t.Errorf("%s: runs as root", what)
	}
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s/%s: no securityContext", what, c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: allowPrivilegeEscalation not false", what, c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: root filesystem not read-only", what, c.Name)
		case sc.Capabilities == nil || !cmp.Equal(sc.Capabilities.Drop, []v1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s/%s: capabilities %+v, want drop [ALL] and nothing added", what, c.Name, sc.Capabilities)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("%s/%s: privileged", what, c.Name)
		}
	}
}

func probe(t *testing.T, what string, p *v1.Probe, path string, scheme v1.URIScheme, port string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: no HTTP probe, want %s %s", what, scheme, path)
		return
	}
	g := p.HTTPGet
	if g.Path != path || g.Scheme != scheme || g.Port != intstr.FromString(port) {
		t.Errorf("%s: probe %s %s port %s, want %s %s port %s", what, g.Scheme, g.Path, g.Port.String(), scheme, path, port)
	}
}

// checkRBAC asserts least privilege on every rendered role: no wildcards, no escalation
// verbs, no secrets, no node writes, Leases by name except create, and bindings only to the
// chart's own roles (never cluster-admin or system:*).
func checkRBAC(t *testing.T, r *Rendered) {
	t.Helper()
	packing := false
	for _, u := range r.OfKind("Deployment") {
		var d appsv1.Deployment
		Into(t, u, &d)
		for _, c := range d.Spec.Template.Spec.Containers {
			packing = packing || contains(c.Args, "--pack-within-tier=true")
		}
	}
	roles := map[string]bool{}
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, u := range r.OfKind(kind) {
			roles[kind+"/"+u.GetName()] = true
			var role rbacv1.ClusterRole
			Into(t, u, &role)
			for _, rule := range role.Rules {
				for _, list := range [][]string{rule.Verbs, rule.Resources, rule.APIGroups, rule.NonResourceURLs} {
					for _, s := range list {
						if strings.Contains(s, "*") {
							t.Errorf("%s %s: wildcard in rule %+v", kind, u.GetName(), rule)
						}
					}
				}
				for _, verb := range rule.Verbs {
					if verb == "escalate" || verb == "bind" || verb == "impersonate" {
						t.Errorf("%s %s: verb %s", kind, u.GetName(), verb)
					}
				}
				for _, res := range rule.Resources {
					if res == "secrets" {
						t.Errorf("%s %s grants secrets: %+v", kind, u.GetName(), rule)
					}
					// Nodes are read only, but for the packing taint: patch, by the rebalancer,
					// when it packs (rebalancer.failback.packWithinTier).
					packingRule := packing && kind == "ClusterRole" && strings.HasSuffix(u.GetName(), "-rebalancer") && cmp.Equal(rule.Verbs, []string{"patch"})
					if res == "nodes" && !cmp.Equal(rule.Verbs, []string{"get", "list", "watch"}) && !packingRule {
						t.Errorf("%s %s writes nodes: %+v", kind, u.GetName(), rule)
					}
					if res == "leases" && len(rule.ResourceNames) == 0 && !cmp.Equal(rule.Verbs, []string{"create"}) {
						t.Errorf("%s %s: Lease verbs %v not scoped by resourceNames", kind, u.GetName(), rule.Verbs)
					}
					// The rebalancer creates and deletes pods (its failback buffer's) in its own
					// namespace only.
					if res == "pods" && kind == "ClusterRole" && strings.HasSuffix(u.GetName(), "-rebalancer") && (contains(rule.Verbs, "create") || contains(rule.Verbs, "delete")) {
						t.Errorf("ClusterRole %s creates or deletes pods cluster-wide: %+v", u.GetName(), rule)
					}
					if res == "configmaps" && len(rule.ResourceNames) == 0 {
						t.Errorf("%s %s: configmaps not scoped by name", kind, u.GetName())
					}
				}
			}
		}
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, u := range r.OfKind(kind) {
			var b rbacv1.RoleBinding
			Into(t, u, &b)
			if !roles[b.RoleRef.Kind+"/"+b.RoleRef.Name] {
				t.Errorf("%s %s binds %s %s, which the chart does not define", kind, u.GetName(), b.RoleRef.Kind, b.RoleRef.Name)
			}
			for _, s := range b.Subjects {
				if s.Kind != "ServiceAccount" || s.Namespace != r.Namespace {
					t.Errorf("%s %s: subject %+v is not a ServiceAccount of the release", kind, u.GetName(), s)
				}
			}
		}
	}
}

// checkSelects asserts that a label selector selects a pod template.
func checkSelects(t *testing.T, what string, selector map[string]string, tmpl v1.PodTemplateSpec) {
	t.Helper()
	if len(selector) == 0 || !labels.SelectorFromSet(selector).Matches(labels.Set(tmpl.Labels)) {
		t.Errorf("%s: selector %v does not select the pods (labels %v)", what, selector, tmpl.Labels)
	}
}

func configOf(t *testing.T, r *Rendered) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(r.SchedulerConfig(t), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestChartRendersDefaults: the default install is HA (2 replicas per component, leader
// election on Leases of the release namespace, PDBs), runs under restricted Pod Security with
// probes on the secure endpoints, binds only its own least-privilege roles, and renders no
// optional object. Names are scoped to the release.
func TestChartRendersDefaults(t *testing.T) {
	skipShort(t)
	for _, tc := range []struct{ release, namespace, fullname string }{
		{"spot-scheduler", "spot-scheduler", "spot-scheduler"},
		{"team-a", "team-a-system", "team-a-spot-scheduler"},
	} {
		t.Run(tc.release, func(t *testing.T) {
			r := Render(t, tc.release, tc.namespace)
			fn := tc.fullname

			kinds := map[string]int{}
			for _, o := range r.Objects {
				kinds[o.GetKind()]++
				if !strings.HasPrefix(o.GetName(), fn+"-") && o.GetName() != fn {
					t.Errorf("%s %s: name not scoped to the release (%s)", o.GetKind(), o.GetName(), fn)
				}
				if ns := o.GetNamespace(); ns != "" && ns != tc.namespace && !(ns == "kube-system" && strings.HasSuffix(o.GetName(), "auth-reader")) {
					t.Errorf("%s %s in namespace %s, want the release's %s", o.GetKind(), o.GetName(), ns, tc.namespace)
				}
				if o.GetLabels()["app.kubernetes.io/instance"] != tc.release {
					t.Errorf("%s %s: no instance label", o.GetKind(), o.GetName())
				}
			}
			// ConfigMaps: the scheduler's configuration and the reclaim history; Roles: each
			// component's Lease and reclaim history, the authentication reader and the failback
			// buffer's pods; the failback buffer's PriorityClass.
			want := map[string]int{"ConfigMap": 2, "ServiceAccount": 2, "ClusterRole": 3, "ClusterRoleBinding": 2, "Role": 6, "RoleBinding": 7,
				"Deployment": 2, "PodDisruptionBudget": 2, "Service": 2, "PriorityClass": 1}
			if diff := cmp.Diff(want, kinds); diff != "" {
				t.Errorf("rendered kinds (-want +got): %s", diff)
			}
			for _, o := range optionalObjects {
				kind, name, _ := strings.Cut(o, "/")
				if strings.Contains(name, "%s") {
					name = strings.ReplaceAll(name, "%s", fn)
				}
				if has(r, kind, name) {
					t.Errorf("optional %s %s rendered with default values", kind, name)
				}
			}

			// The scheduler's configuration: its own Lease in the release namespace.
			le := configOf(t, r)["leaderElection"].(map[string]any)
			if le["leaderElect"] != true || le["resourceNamespace"] != tc.namespace || le["resourceName"] != fn || le["resourceLock"] != "leases" {
				t.Errorf("scheduler leaderElection %v, want Lease %s/%s", le, tc.namespace, fn)
			}

			for _, component := range []string{"scheduler", "rebalancer"} {
				var d appsv1.Deployment
				Into(t, r.Get(t, "Deployment", fn+"-"+component), &d)
				spec := d.Spec.Template.Spec
				if *d.Spec.Replicas != 2 {
					t.Errorf("%s replicas %d, want 2", component, *d.Spec.Replicas)
				}
				if spec.ServiceAccountName != fn+"-"+component {
					t.Errorf("%s serviceAccountName %q", component, spec.ServiceAccountName)
				}
				checkPodSecurity(t, component, &spec)
				c := spec.Containers[0]
				if c.Image != "ghcr.io/spot-scheduler/spot-scheduler:0.1.0" || c.ImagePullPolicy != v1.PullIfNotPresent {
					t.Errorf("%s image %s (%s)", component, c.Image, c.ImagePullPolicy)
				}
				var pdb policyv1.PodDisruptionBudget
				Into(t, r.Get(t, "PodDisruptionBudget", fn+"-"+component), &pdb)
				if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
					t.Errorf("%s PDB minAvailable %v, want 1", component, pdb.Spec.MinAvailable)
				}
				checkSelects(t, component+" PDB", pdb.Spec.Selector.MatchLabels, d.Spec.Template)
				var svc v1.Service
				Into(t, r.Get(t, "Service", fn+"-"+component+"-metrics"), &svc)
				checkSelects(t, component+" metrics Service", svc.Spec.Selector, d.Spec.Template)
				if tp := svc.Spec.Ports[0].TargetPort.StrVal; tp != c.Ports[0].Name {
					t.Errorf("%s Service targets port %q, the container's is %q", component, tp, c.Ports[0].Name)
				}

				switch component {
				case "scheduler":
					if c.Command[0] != "/usr/local/bin/spot-scheduler" || !contains(c.Args, "--config=/etc/spot-scheduler/scheduler-config.yaml") || !contains(c.Args, "--secure-port=10259") {
						t.Errorf("scheduler command %v args %v", c.Command, c.Args)
					}
					probe(t, "scheduler liveness", c.LivenessProbe, "/livez", v1.URISchemeHTTPS, "https")
					probe(t, "scheduler readiness", c.ReadinessProbe, "/readyz", v1.URISchemeHTTPS, "https")
					probe(t, "scheduler startup", c.StartupProbe, "/livez", v1.URISchemeHTTPS, "https")
				case "rebalancer":
					wantArgs := []string{
						"--scheduler-config=/etc/spot-scheduler/scheduler-config.yaml", "--profile=spot-scheduler",
						"--leader-elect=true", "--leader-elect-resource-namespace=" + tc.namespace, "--leader-elect-resource-name=" + fn + "-rebalancer",
					}
					for _, a := range wantArgs {
						if !contains(c.Args, a) {
							t.Errorf("rebalancer args %v lack %s", c.Args, a)
						}
					}
					if !contains(c.Args, "--secure-port=10260") || c.Ports[0].Name != "https" || c.Ports[0].ContainerPort != 10260 {
						t.Errorf("rebalancer args %v ports %v, want HTTPS on 10260", c.Args, c.Ports)
					}
					for _, a := range c.Args {
						if strings.HasPrefix(a, "--bind-address") {
							t.Errorf("rebalancer arg %s: the chart serves on every interface", a)
						}
					}
					probe(t, "rebalancer liveness", c.LivenessProbe, "/livez", v1.URISchemeHTTPS, "https")
					probe(t, "rebalancer readiness", c.ReadinessProbe, "/readyz", v1.URISchemeHTTPS, "https")
					// The failback buffer: on, in the release namespace, with the chart's class.
					for _, a := range []string{"--failback-buffer=true", "--failback-buffer-max-pods=100", "--failback-buffer-namespace=" + tc.namespace,
						"--failback-buffer-priority-class=" + fn + "-failback-buffer", "--failback-buffer-image=registry.k8s.io/pause:3.10"} {
						if !contains(c.Args, a) {
							t.Errorf("rebalancer args %v lack %s", c.Args, a)
						}
					}
				}
			}
			checkRBAC(t, r)
			// The failback buffer's PriorityClass: negative, never preempting; its pods: created
			// and deleted by the rebalancer in the release namespace only.
			var pc schedulingv1.PriorityClass
			Into(t, r.Get(t, "PriorityClass", fn+"-failback-buffer"), &pc)
			if pc.Value != -10 || pc.PreemptionPolicy == nil || *pc.PreemptionPolicy != v1.PreemptNever || pc.GlobalDefault {
				t.Errorf("failback buffer PriorityClass %+v, want value -10, preemptionPolicy Never, not the global default", pc)
			}
			var bufferRole rbacv1.Role
			Into(t, r.Get(t, "Role", fn+"-rebalancer-failback-buffer"), &bufferRole)
			if bufferRole.Namespace != tc.namespace || len(bufferRole.Rules) != 1 || !cmp.Equal(bufferRole.Rules[0].Resources, []string{"pods"}) ||
				!cmp.Equal(bufferRole.Rules[0].Verbs, []string{"create", "delete", "get", "list"}) {
				t.Errorf("failback buffer Role %+v, want pods create, delete, get, list in %s", bufferRole, tc.namespace)
			}
			// Leases by name: each component's Role names its own Lease only.
			for component, lease := range map[string]string{"scheduler": fn, "rebalancer": fn + "-rebalancer"} {
				var role rbacv1.Role
				Into(t, r.Get(t, "Role", fn+"-"+component+"-lease"), &role)
				for _, rule := range role.Rules {
					if len(rule.ResourceNames) > 0 && !cmp.Equal(rule.ResourceNames, []string{lease}) {
						t.Errorf("%s Lease rule %+v, want resourceNames [%s]", component, rule, lease)
					}
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// leafPaths lists the paths of a values tree: every scalar, and every empty map or list.
func leafPaths(prefix string, v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			out[prefix] = true
		}
		for k, c := range x {
			leafPaths(strings.TrimPrefix(prefix+"."+k, "."), c, out)
		}
	default:
		out[prefix] = true
	}
}

func readValues(t *testing.T, rel string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(RepoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestChartRendersAllOptions: ci/all-options-values.yaml sets every option of values.yaml, and
// each optional object renders as configured.
func TestChartRendersAllOptions(t *testing.T) {
	skipShort(t)
	defaults, all := map[string]bool{}, map[string]bool{}
	leafPaths("", readValues(t, Path+"/values.yaml"), defaults)
	leafPaths("", readValues(t, AllOptionsValues), all)
	var missing []string
	for p := range defaults {
		covered := all[p]
		for q := range all { // an empty map or list in the defaults is covered by any content
			covered = covered || strings.HasPrefix(q, p+".")
		}
		if !covered {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("options of values.yaml not set in %s: %v", AllOptionsValues, missing)
	}

	const ns = "spot-system"
	r := Render(t, "spot", ns, "-f", AllOptionsValues)
	checkRBAC(t, r)

	var pc schedulingv1.PriorityClass
	Into(t, r.Get(t, "PriorityClass", "spot-headroom"), &pc)
	if pc.Value != -20 || pc.PreemptionPolicy == nil || *pc.PreemptionPolicy != v1.PreemptNever || pc.GlobalDefault {
		t.Errorf("placeholder PriorityClass %+v", pc)
	}
	var ph appsv1.Deployment
	Into(t, r.Get(t, "Deployment", "spot-placeholder"), &ph)
	spec := ph.Spec.Template.Spec
	if *ph.Spec.Replicas != 3 || spec.SchedulerName != "spot-scheduler-all" || spec.PriorityClassName != "spot-headroom" ||
		ph.Spec.Template.Labels["spot-scheduler.io/placeholder"] != "true" || spec.NodeSelector["karpenter.sh/capacity-type"] != "spot" ||
		spec.Containers[0].Resources.Requests.Cpu().String() != "500m" || len(spec.Tolerations) != 1 {
		t.Errorf("placeholder Deployment %+v", ph.Spec)
	}
	checkPodSecurity(t, "placeholder", &spec)

	for _, component := range []string{"scheduler", "rebalancer"} {
		var d appsv1.Deployment
		Into(t, r.Get(t, "Deployment", "spot-"+component), &d)
		s := d.Spec.Template.Spec
		c := s.Containers[0]
		if *d.Spec.Replicas != 3 || s.PriorityClassName != "system-cluster-critical" || s.ServiceAccountName != map[string]string{"scheduler": "spot-sched-sa", "rebalancer": "spot-rebalancer-sa"}[component] ||
			c.Image != "registry.example.com/platform/spot-scheduler:v0.1.0-test" || c.ImagePullPolicy != v1.PullAlways ||
			len(s.ImagePullSecrets) != 1 || s.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil ||
			len(s.TopologySpreadConstraints) != 1 || len(s.Tolerations) != 1 || d.Spec.Template.Labels["tier"] != "control" ||
			d.Spec.Template.Annotations["example.com/owner"] != "platform" || d.Labels["team"] != "platform" {
			t.Errorf("%s Deployment does not carry the values: %+v", component, d.Spec.Template)
		}
		checkPodSecurity(t, component, &s)
	}

	var sm struct {
		Metadata struct {
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Selector  struct{ MatchLabels map[string]string }   `json:"selector"`
			Endpoints []struct{ Port, Scheme, Interval string } `json:"endpoints"`
		} `json:"spec"`
	}
	Into(t, r.Get(t, "ServiceMonitor", "spot"), &sm)
	if sm.Metadata.Namespace != "monitoring" || sm.Metadata.Labels["release"] != "kube-prometheus-stack" || len(sm.Spec.Endpoints) != 1 ||
		sm.Spec.Endpoints[0].Port != "https-metrics" || sm.Spec.Endpoints[0].Scheme != "https" || sm.Spec.Endpoints[0].Interval != "15s" {
		t.Errorf("ServiceMonitor %+v", sm)
	}
	for _, svc := range r.OfKind("Service") {
		if !labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(svc.GetLabels())) {
			t.Errorf("the ServiceMonitor does not select Service %s", svc.GetName())
		}
	}

	var expander v1.ConfigMap
	Into(t, r.Get(t, "ConfigMap", "cluster-autoscaler-priority-expander"), &expander)
	var priorities map[int][]string
	if err := yaml.UnmarshalStrict([]byte(expander.Data["priorities"]), &priorities); err != nil {
		t.Fatalf("priorities: %v\n%s", err, expander.Data["priorities"])
	}
	if diff := cmp.Diff(map[int][]string{100: {".*-spot-.*", "^spot-.*"}, 1: {".*"}}, priorities); diff != "" || expander.Namespace != "kube-system" {
		t.Errorf("priority expander in %s (-want +got): %s", expander.Namespace, diff)
	}

	var dash v1.ConfigMap
	Into(t, r.Get(t, "ConfigMap", "spot-dashboard"), &dash)
	if dash.Labels["grafana_dashboard"] != "1" || dash.Namespace != "monitoring" || dash.Annotations["grafana_folder"] != "Scheduling" {
		t.Errorf("dashboard ConfigMap metadata %+v", dash.ObjectMeta)
	}
	d := ParseDashboard(t, []byte(dash.Data["spot-scheduler.json"]))
	if !strings.Contains(dash.Data["spot-scheduler.json"], `"query": "spot-scheduler-all"`) {
		t.Error("the dashboard's profile variable is not the release's schedulerName")
	}
	var titles []string
	for _, p := range d.Panels {
		titles = append(titles, p.Title)
	}
	for _, want := range []string{"Pods per capacity tier", "Failback moves (rebalancer evictions)", "Failover: pods scheduled by spot-scheduler", "Placeholder preemptions", "Deletion-cost writes"} {
		if !contains(titles, want) {
			t.Errorf("dashboard lacks panel %q: %v", want, titles)
		}
	}
}

// TestChartSchemaRejectsBadValues: values.schema.json stops values that cannot work before
// anything reaches the cluster, naming the field.
func TestChartSchemaRejectsBadValues(t *testing.T) {
	skipShort(t)
	for _, tc := range []struct{ set, want string }{
		{"scheduler.spotScore.spreadWeight=100", "/scheduler/spotScore/spreadWeight"},
		{"scheduler.spotScroe.weight=1", "additional properties 'spotScroe' not allowed"},
		{"scheduler.spotScore.tiers[0].name=spot,scheduler.spotScore.tiers[0].nodeSelectors[0].matchExpressions[0].key=a,scheduler.spotScore.tiers[0].nodeSelectors[0].matchExpressions[0].operator=Like",
			"/scheduler/spotScore/tiers/0/nodeSelectors/0/matchExpressions/0/operator"},
		{"placeholders.priorityClass.value=10", "/placeholders/priorityClass/value"},
		{"placeholders.kind=Buffer", "/placeholders/kind"},
		{"image.pullPolicy=Sometimes", "/image/pullPolicy"},
		{"rebalancer.failback.interval=soon", "/rebalancer/failback/interval"},
		{"rebalancer.failback.buffer.maxPods=0", "/rebalancer/failback/buffer/maxPods"},
		{"rebalancer.failback.buffer.priorityClass.value=-100", "/rebalancer/failback/buffer/priorityClass/value"},
		{"schedulerName=Spot_Scheduler", "/schedulerName"},
		{"scheduler.extraArgs[0]=verbose", "/scheduler/extraArgs/0"},
		{"rebalancer.deletionCost.workers=0", "/rebalancer/deletionCost/workers"},
		{"scheduler.securePort=80", "/scheduler/securePort"},
		{"scheduler.extraPlugins.scroe.enabled[0].name=X", "additional properties 'scroe' not allowed"},
		{"scheduler.spotScore.defaultCapacityPolicy.spotSharePercent=120", "/scheduler/spotScore/defaultCapacityPolicy"},
		{"scheduler.spotScore.defaultCapacityPolicy.maxPerPool=150%", "/scheduler/spotScore/defaultCapacityPolicy"},
		{"scheduler.spotScore.defaultCapacityPolicy.onDemandBse=2", "/scheduler/spotScore/defaultCapacityPolicy"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			_, err := Template(t, "spot-scheduler", "spot-scheduler", "--set", tc.set)
			if err == nil || !strings.Contains(err.Error(), "values don't meet the specifications of the schema") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("helm template --set %s: error %v, want a schema error naming %q", tc.set, err, tc.want)
			}
		})
	}
	// And the same values pass when valid: the schema is not just refusing everything.
	if _, err := Template(t, "spot-scheduler", "spot-scheduler", "--set", "scheduler.spotScore.spreadWeight=99,placeholders.priorityClass.value=-1,rebalancer.failback.interval=90s",
		"--set", "scheduler.spotScore.defaultCapacityPolicy.onDemandBase=2,scheduler.spotScore.defaultCapacityPolicy.spotSharePercent=75",
		"--set-string", "scheduler.spotScore.defaultCapacityPolicy.maxPerPool=50%"); err != nil {
		t.Fatal(err)
	}
}

// TestRenderedManifestsUpToDate: manifests/rendered is what the chart renders today
// (regenerate with `make manifests`), and is every object of the default install plus the
// namespace labelled for restricted Pod Security.
func TestRenderedManifestsUpToDate(t *testing.T) {
	skipShort(t)
	root := RepoRoot(t)
	out := t.TempDir()
	cmd := exec.Command("bash", "hack/render-manifests.sh", out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/render-manifests.sh: %v\n%s", err, b)
	}
	fresh, err := os.ReadFile(filepath.Join(out, "spot-scheduler.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(root, "manifests/rendered/spot-scheduler.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(fresh) != string(committed) {
		t.Fatalf("manifests/rendered/spot-scheduler.yaml is stale: run `make manifests`\n%s", cmp.Diff(string(committed), string(fresh)))
	}
	objs, err := Parse(string(committed))
	if err != nil {
		t.Fatal(err)
	}
	chartObjs := Render(t, "spot-scheduler", "spot-scheduler").Objects
	if len(objs) != len(chartObjs)+1 || objs[0].GetKind() != "Namespace" {
		t.Fatalf("rendered manifests hold %d objects, want the namespace and the chart's %d", len(objs), len(chartObjs))
	}
	if l := objs[0].GetLabels()["pod-security.kubernetes.io/enforce"]; l != "restricted" {
		t.Errorf("namespace enforce label %q, want restricted", l)
	}
}

// TestChartRendersCapacityBuffer: placeholders.kind=CapacityBuffer declares the spot headroom
// as a Karpenter CapacityBuffer referring to a PodTemplate of the placeholders' shape, instead
// of the placeholder Deployment and its PriorityClass (no pod runs in a buffer's room).
func TestChartRendersCapacityBuffer(t *testing.T) {
	skipShort(t)
	r := Render(t, "spot", "spot-system", "--set", "placeholders.enabled=true,placeholders.kind=CapacityBuffer,placeholders.replicas=4,placeholders.resources.requests.cpu=2")
	if has(r, "Deployment", "spot-spot-scheduler-placeholder") || has(r, "PriorityClass", "spot-spot-scheduler-placeholder") {
		t.Error("placeholder Deployment or PriorityClass rendered with kind CapacityBuffer")
	}
	var tmpl v1.PodTemplate
	Into(t, r.Get(t, "PodTemplate", "spot-spot-scheduler-placeholder"), &tmpl)
	spec := tmpl.Template.Spec
	if tmpl.Namespace != "spot-system" || spec.NodeSelector["karpenter.sh/capacity-type"] != "spot" || spec.PriorityClassName != "" ||
		spec.Containers[0].Resources.Requests.Cpu().String() != "2" || tmpl.Template.Labels["spot-scheduler.io/placeholder"] != "true" {
		t.Errorf("PodTemplate %+v", tmpl)
	}
	checkPodSecurity(t, "buffer template", &spec)
	buffer := r.Get(t, "CapacityBuffer", "spot-spot-scheduler-placeholder")
	var cb struct {
		APIVersion string `json:"apiVersion"`
		Metadata   struct {
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Spec struct {
			PodTemplateRef struct{ Name string } `json:"podTemplateRef"`
			Replicas       int                   `json:"replicas"`
		} `json:"spec"`
	}
	Into(t, buffer, &cb)
	if cb.APIVersion != "autoscaling.x-k8s.io/v1beta1" || cb.Metadata.Namespace != "spot-system" || cb.Spec.PodTemplateRef.Name != tmpl.Name || cb.Spec.Replicas != 4 {
		t.Errorf("CapacityBuffer %+v, want v1beta1 in spot-system referring to PodTemplate %s with 4 replicas", cb, tmpl.Name)
	}
}
