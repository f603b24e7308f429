package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/chart"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// The release the chart tests install: the names below are what the chart renders for it.
const (
	chartRelease         = "spot-scheduler"
	chartNamespace       = "spot-system"
	chartSchedSA         = "spot-scheduler-scheduler"
	chartRebalancerSA    = "spot-scheduler-rebalancer"
	chartSchedLease      = "spot-scheduler"
	chartRebalancerLease = "spot-scheduler-rebalancer"
	chartReclaimHistory  = "spot-scheduler-reclaim-history"
)

func chartSAUser(sa string) string { return "system:serviceaccount:" + chartNamespace + ":" + sa }

// chartCreateRestrictedNamespace creates a namespace enforcing the restricted Pod Security level.
func chartCreateRestrictedNamespace(env *framework.Env, name string) {
	env.T.Helper()
	n := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
		"pod-security.kubernetes.io/audit":   "restricted",
	}}}
	if _, err := env.Client.CoreV1().Namespaces().Create(env.Ctx, n, metav1.CreateOptions{}); err != nil {
		env.T.Fatal(err)
	}
}

// warningRecorder keeps the API server's warnings (Pod Security "would violate" among them).
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.warnings
	w.warnings = nil
	return out
}

// chartApplier server-side applies rendered objects as the cluster admin, as `helm install`
// or `kubectl apply --server-side` would.
type chartApplier struct {
	env      *framework.Env
	dyn      dynamic.Interface
	mapper   meta.RESTMapper
	warnings *warningRecorder
}

func newChartApplier(env *framework.Env) *chartApplier {
	env.T.Helper()
	cfg := rest.CopyConfig(env.Config)
	w := &warningRecorder{}
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		env.T.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		env.T.Fatal(err)
	}
	return &chartApplier{env: env, dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), warnings: w}
}

// apply applies every object whose kind is in kinds (all when kinds is empty). Objects of a
// kind the cluster does not serve (a CRD that is not installed, e.g. ServiceMonitor) are
// skipped and returned.
func (a *chartApplier) apply(objs []*unstructured.Unstructured, kinds ...string) (skipped []string) {
	a.env.T.Helper()
	for _, o := range objs {
		if len(kinds) > 0 && !chartContains(kinds, o.GetKind()) {
			continue
		}
		gvk := o.GroupVersionKind()
		m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			skipped = append(skipped, o.GetKind()+"/"+o.GetName())
			continue
		}
		if err != nil {
			a.env.T.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if o.GetNamespace() == "" {
				a.env.T.Fatalf("%s %s: namespaced object rendered without a namespace", o.GetKind(), o.GetName())
			}
			ri = a.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		data, err := json.Marshal(o)
		if err != nil {
			a.env.T.Fatal(err)
		}
		if _, err := ri.Patch(a.env.Ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "helm", Force: ptr.To(true)}); err != nil {
			a.env.T.Fatalf("server-side apply of %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return skipped
}

var chartRBACKinds = []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

func chartContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// chartImpersonating returns the admin's rest.Config and client acting as the user.
func chartImpersonating(env *framework.Env, user string) (*rest.Config, kubernetes.Interface) {
	env.T.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		env.T.Fatal(err)
	}
	return cfg, client
}

// chartKubeconfigAs writes a kubeconfig of the admin that impersonates user (the `as` field),
// for the binaries: every request they make is authorized as that user alone.
func chartKubeconfigAs(env *framework.Env, user string) string {
	env.T.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		env.T.Fatal(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
	}
	path := filepath.Join(env.Dir, strings.NewReplacer(":", "_").Replace(user)+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		env.T.Fatal(err)
	}
	return path
}

// chartContainerArgs returns the args the chart renders for a component's container, with
// the flags named in replace given new values (paths and ports of this machine) and extra
// flags appended.
func chartContainerArgs(t *testing.T, r *chart.Rendered, deployment string, replace map[string]string, extra ...string) []string {
	t.Helper()
	var d appsv1.Deployment
	chart.Into(t, r.Get(t, "Deployment", deployment), &d)
	var out []string
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		name, _, _ := strings.Cut(a, "=")
		if v, ok := replace[name]; ok {
			a = name + "=" + v
			delete(replace, name)
		}
		out = append(out, a)
	}
	if len(replace) > 0 {
		t.Fatalf("the chart renders no %v flag for %s: %v", replace, deployment, out)
	}
	return append(out, extra...)
}

// chartWaitLease waits until the Lease is held, failing early when the process exits.
func chartWaitLease(env *framework.Env, p *localcluster.Process, namespace, name string) {
	env.T.Helper()
	env.WaitFor(fmt.Sprintf("%s holds Lease %s/%s", p.Name, namespace, name), 60*time.Second, func(ctx context.Context) (bool, error) {
		if p.Exited() {
			log, _ := os.ReadFile(p.Log)
			return false, fmt.Errorf("%s exited: %v\n%s", p.Name, p.Wait(0), chartTail(string(log), 3000))
		}
		lease, err := env.Client.CoordinationV1().Leases(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "", err
	})
}

func chartTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// chartScrape GETs url with client and returns the status and body.
func chartScrape(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// chartExported returns the metric families with at least one sample in a Prometheus text
// exposition (histogram and summary series counted under their family name).
func chartExported(exposition string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		out[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(name, suffix) {
				out[strings.TrimSuffix(name, suffix)] = true
			}
		}
	}
	return out
}

var forbiddenLine = regexp.MustCompile(`(?i).*(forbidden|cannot (get|list|watch|create|update|patch|delete) resource).*`)

// chartNoForbidden fails when a component's log shows a request the API server refused for
// lack of permission: the chart's RBAC must cover everything the component does.
func chartNoForbidden(t *testing.T, p *localcluster.Process) {
	t.Helper()
	data, err := os.ReadFile(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	if lines := forbiddenLine.FindAllString(string(data), 5); len(lines) > 0 {
		t.Errorf("%s was refused requests as its ServiceAccount:\n%s", p.Name, strings.Join(lines, "\n"))
	}
}

// chartWaitAuthorized waits until the API server's RBAC authorizer has seen the chart's
// bindings (it reads them through an informer), so the components never start before their
// permissions are in force.
func chartWaitAuthorized(env *framework.Env, user string, checks ...authorizationv1.ResourceAttributes) {
	env.T.Helper()
	for _, c := range checks {
		c := c
		env.WaitFor(fmt.Sprintf("%s allowed to %s %s", user, c.Verb, c.Resource), 10*time.Second, func(ctx context.Context) (bool, error) {
			review, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + chartNamespace, "system:authenticated"}, ResourceAttributes: &c},
			}, metav1.CreateOptions{})
			return err == nil && review.Status.Allowed, err
		})
	}
}

// TestChartComponentsRunAsServiceAccounts installs the chart's ServiceAccounts and RBAC, then
// runs the real spot-scheduler and spot-rebalancer binaries with the chart's own rendered
// configuration and flags, each with credentials impersonating its chart ServiceAccount (so
// the API server authorizes every request against the chart's RBAC only). They do their whole
// job: leader election on their own Leases in the release namespace, scheduling, placeholder
// preemption, deletion-cost annotations, failover, the failback buffer (its pods in the release
// namespace), failback evictions with events, and
// serving /metrics through delegated authentication and authorization. Neither log shows a
// refused request, and every metric the chart's Grafana dashboard queries is exported.
func TestChartComponentsRunAsServiceAccounts(t *testing.T) {
	env := framework.Start(t, localcluster.Options{ControllerManager: true})
	r := chartApplyRBAC(t, env)
	for _, sa := range []string{chartSchedSA, chartRebalancerSA} {
		chartWaitAuthorized(env, chartSAUser(sa),
			authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Namespace: "kube-system", Name: "extension-apiserver-authentication"},
			authorizationv1.ResourceAttributes{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"},
			authorizationv1.ResourceAttributes{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"})
	}

	// The scheduler, as its ServiceAccount, with the chart's configuration and flags.
	schedKubeconfig := chartKubeconfigAs(env, chartSAUser(chartSchedSA))
	config := r.WriteSchedulerConfig(t, env.Dir, schedKubeconfig)
	schedPort := framework.FreePort(t)
	schedArgs := chartContainerArgs(t, r, chartRelease+"-scheduler",
		map[string]string{"--config": config, "--secure-port": fmt.Sprint(schedPort)},
		"--bind-address=127.0.0.1",
		// In a pod these default to the in-cluster ServiceAccount; here, the same identity.
		"--authentication-kubeconfig="+schedKubeconfig, "--authorization-kubeconfig="+schedKubeconfig)
	sched, err := env.StartProcess(env.Ctx, "spot-scheduler", framework.SchedulerBinary(t), schedArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Stop(10 * time.Second) })
	chartWaitLease(env, sched, chartNamespace, chartSchedLease)

	// The controllers, as theirs. Test timings replace the production ones (pods may move at
	// once, passes soon after room appears); everything else is the chart's.
	ctrlKubeconfig := chartKubeconfigAs(env, chartSAUser(chartRebalancerSA))
	ctrlPort := framework.FreePort(t)
	ctrlArgs := chartContainerArgs(t, r, chartRelease+"-rebalancer",
		map[string]string{"--scheduler-config": config, "--secure-port": fmt.Sprint(ctrlPort)},
		"--bind-address=127.0.0.1",
		// Delegated authn/authz default to --kubeconfig's identity, as they default to the
		// in-cluster ServiceAccount in a pod.
		"--kubeconfig="+ctrlKubeconfig, "--min-pod-age=0s", "--rebalance-debounce=1s", "--rebalance-validation-delay=500ms", "--rebalance-interval=1h")
	ctrl, err := env.StartProcess(env.Ctx, "spot-rebalancer", framework.RebalancerBinary(t), ctrlArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctrl.Stop(10 * time.Second) })
	chartWaitLease(env, ctrl, chartNamespace, chartRebalancerLease)
	if _, err := env.Client.CoordinationV1().Leases("kube-system").Get(env.Ctx, "kube-scheduler", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("kube-system/kube-scheduler Lease: %v, want none (the default scheduler's)", err)
	}

	// Schedule and preempt: a placeholder fills the spot room a real pod then needs (no other
	// node has room, so the scheduler preempts).
	createPriorityClasses(env)
	env.CreateNodes(framework.Node("spot-1", "2", framework.SpotLabels), framework.Node("spot-2", "2", framework.SpotLabels))
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, placeholderDeployment("headroom", 1, framework.SpotLabels), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAllBound(env, "headroom", 1)
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, "web", 4, "1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.WaitFor("4 web pods on spot, a placeholder preempted", 60*time.Second, func(context.Context) (bool, error) {
		byNode, unbound := env.ScheduledPods(ns, "app=web")
		return unbound == 0 && byNode["spot-1"]+byNode["spot-2"] == 4 && len(preemptedEvents(env)) == 1, nil
	})
	// The headroom is not needed any more; the rest of the story is failover and failback.
	if err := env.Client.AppsV1().Deployments(ns).Delete(env.Ctx, "headroom", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// Annotate: the deletion-cost controller writes its cost on every web pod.
	chartWaitAnnotated := func(desc string) {
		env.WaitFor(desc, 60*time.Second, func(context.Context) (bool, error) {
			pods := podsOf(env, "app=web")
			n := 0
			for _, p := range pods {
				if p.DeletionTimestamp == nil && p.Spec.NodeName != "" && p.Annotations[wellknown.ManagedDeletionCostAnnotation] != "" &&
					p.Annotations[wellknown.ManagedDeletionCostAnnotation] == p.Annotations[wellknown.PodDeletionCostAnnotation] {
					n++
				}
			}
			return n == 4, nil
		})
	}
	chartWaitAnnotated("deletion costs on the 4 web pods")

	// Failover: spot-1 is reclaimed; its pods land on on-demand.
	env.CreateNodes(framework.Node("ondemand-1", "4", framework.OnDemandLabels))
	env.DeleteNodes("spot-1")
	env.WaitFor("web back to 4 pods, 2 on on-demand", 60*time.Second, func(context.Context) (bool, error) {
		byNode, unbound := env.ScheduledPods(ns, "app=web")
		return unbound == 0 && byNode["spot-2"] == 2 && byNode["ondemand-1"] == 2, nil
	})
	// Failback: spot returns; the rebalancer evicts the on-demand pods, which land on spot.
	env.CreateNodes(framework.Node("spot-3", "2", framework.SpotLabels))
	env.WaitFor("web back on spot", 90*time.Second, func(context.Context) (bool, error) {
		byNode, unbound := env.ScheduledPods(ns, "app=web")
		return unbound == 0 && byNode["spot-2"] == 2 && byNode["spot-3"] == 2, nil
	})
	chartWaitAnnotated("deletion costs on the moved pods")
	// The failback buffer, as the chart's ServiceAccount in the release namespace: it asked
	// for spot after the failover and is gone once failback is done.
	env.WaitFor("the failback buffer created, then gone", 30*time.Second, func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(chartNamespace).List(ctx, metav1.ListOptions{LabelSelector: wellknown.FailbackBufferLabel + "=true"})
		if err != nil {
			return false, err
		}
		created := 0
		for _, e := range env.Events(chartNamespace, "") {
			if e.Reason == "FailbackBufferCreated" {
				created++
			}
		}
		return created > 0 && len(pods.Items) == 0, nil
	})
	env.WaitFor("Rebalanced events", 30*time.Second, func(ctx context.Context) (bool, error) {
		evs, err := env.Client.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		n := 0
		for _, e := range evs.Items {
			if e.Reason == "Rebalanced" {
				n++
			}
		}
		return n == 2, nil
	})

	// Secure serving of both components: health open, /metrics only for an authorized identity
	// (the admin's client certificate, checked through each one's delegated authn/authz done
	// as its chart ServiceAccount).
	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	scrapeSecure := func(component string, port int) string {
		base := fmt.Sprintf("https://127.0.0.1:%d", port)
		for _, path := range []string{"/livez", "/readyz"} {
			if code, body := chartScrape(t, anon, base+path); code != http.StatusOK {
				t.Errorf("%s: GET %s without credentials: %d %s, want 200", component, path, code, body)
			}
		}
		if code, _ := chartScrape(t, anon, base+"/metrics"); code != http.StatusUnauthorized && code != http.StatusForbidden {
			t.Errorf("%s: GET /metrics without credentials: %d, want 401 or 403", component, code)
		}
		adminHTTP := adminHTTPS(env, base)
		var metrics string
		env.WaitFor(component+" /metrics as the admin", 30*time.Second, func(context.Context) (bool, error) {
			code, body := chartScrape(t, adminHTTP, base+"/metrics")
			metrics = body
			return code == http.StatusOK, nil
		})
		return metrics
	}
	schedMetrics := scrapeSecure("scheduler", schedPort)
	ctrlMetrics := scrapeSecure("rebalancer", ctrlPort)

	exported := chartExported(schedMetrics)
	for m := range chartExported(ctrlMetrics) {
		exported[m] = true
	}
	for _, m := range chart.ShippedDashboard(t).Metrics() {
		if !exported[m] {
			t.Errorf("the dashboard queries %s, which neither component exports", m)
		}
	}
	// The headroom placeholder, and the failback buffer's placeholders the moving pods
	// preempted (as many as were bound on spot-3 before the pods moved: none to 2).
	preempted := len(preemptedEvents(env)) + len(env.Events(chartNamespace, "reason=Preempted"))
	if preempted < 1 || preempted > 3 {
		t.Errorf("%d Preempted events, want the headroom placeholder and at most the 2 buffer placeholders", preempted)
	}
	for _, want := range []string{fmt.Sprintf(`spot_scheduler_placeholder_preemption_attempts_total{outcome="preempted"} %d`, preempted),
		fmt.Sprintf(`spot_scheduler_placeholder_preemption_victims_total %d`, preempted)} {
		if !strings.Contains(schedMetrics, want) {
			t.Errorf("scheduler /metrics lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^spot_scheduler_rebalance_evictions_total\{from_tier="on-demand",to_tier="spot"\} 2$`).MatchString(ctrlMetrics) {
		t.Errorf("controller /metrics does not count 2 failback evictions from on-demand to spot")
	}
	chartNoForbidden(t, sched)
	chartNoForbidden(t, ctrl)
}

type chartAccess struct {
	verb, group, resource, subresource, namespace, name string
	allowed                                             bool
}

func (a chartAccess) String() string {
	r := a.resource
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.group != "" {
		r += "." + a.group
	}
	return fmt.Sprintf("%s %s %s/%s", a.verb, r, a.namespace, a.name)
}

// chartCheckAccess asks the API server, as the impersonated user, whether each access is allowed.
func chartCheckAccess(t *testing.T, env *framework.Env, client kubernetes.Interface, who string, checks []chartAccess) {
	t.Helper()
	for _, c := range checks {
		review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(env.Ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: c.verb, Group: c.group, Resource: c.resource, Subresource: c.subresource, Namespace: c.namespace, Name: c.name,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%s: SelfSubjectAccessReview %s: %v", who, c, err)
		}
		if review.Status.Allowed != c.allowed {
			t.Errorf("%s may %s: %v, want %v", who, c, review.Status.Allowed, c.allowed)
		}
	}
}

func chartWantForbidden(t *testing.T, what string, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: %v, want Forbidden", what, err)
	}
}

// TestChartServiceAccountBoundaries: with the chart's RBAC applied, each ServiceAccount may do
// what its component needs and nothing of the rest: access reviews as each, and real calls.
// The controller evicts pods, patches pods, creates and deletes pods in its own namespace (the
// failback buffer's), gets/creates/updates its own Lease and records events; neither may read secrets, delete or patch nodes, or touch the other's Lease or the
// default scheduler's.
func TestChartServiceAccountBoundaries(t *testing.T) {
	env := framework.Start(t, localcluster.Options{NoKwok: true})
	chartApplyRBAC(t, env)

	_, sched := chartImpersonating(env, chartSAUser(chartSchedSA))
	_, ctrl := chartImpersonating(env, chartSAUser(chartRebalancerSA))
	both := []chartAccess{
		{"get", "", "secrets", "", ns, "x", false}, {"list", "", "secrets", "", "", "", false},
		{"get", "", "secrets", "", "kube-system", "x", false}, {"list", "", "secrets", "", chartNamespace, "", false},
		{"delete", "", "nodes", "", "", "n", false}, {"patch", "", "nodes", "", "", "n", false}, {"update", "", "nodes", "", "", "n", false},
		{"create", "", "pods", "", ns, "", false}, {"update", "apps", "deployments", "", ns, "d", false},
		{"update", "coordination.k8s.io", "leases", "", "kube-system", "kube-scheduler", false},
		{"get", "", "configmaps", "", ns, "x", false},
		{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", "", false},
		{"impersonate", "", "serviceaccounts", "", chartNamespace, chartRebalancerSA, false},
		{"list", "", "nodes", "", "", "", true}, {"watch", "", "pods", "", "", "", true},
		{"create", "", "events", "", ns, "", true}, {"create", "events.k8s.io", "events", "", ns, "", true}, {"patch", "events.k8s.io", "events", "", ns, "e", true},
	}
	chartCheckAccess(t, env, sched, "the scheduler", append([]chartAccess{
		{"create", "", "pods", "binding", ns, "p", true}, {"delete", "", "pods", "", ns, "p", true}, {"patch", "", "pods", "status", ns, "p", true},
		{"get", "coordination.k8s.io", "leases", "", chartNamespace, chartSchedLease, true},
		{"update", "coordination.k8s.io", "leases", "", chartNamespace, chartSchedLease, true},
		{"create", "coordination.k8s.io", "leases", "", chartNamespace, "", true},
		{"update", "coordination.k8s.io", "leases", "", chartNamespace, chartRebalancerLease, false},
		{"create", "coordination.k8s.io", "leases", "", "kube-system", "", false},
		{"get", "", "configmaps", "", "kube-system", "extension-apiserver-authentication", true},
		{"get", "", "configmaps", "", "kube-system", "kube-root-ca.crt", false},
		{"patch", "", "pods", "", ns, "p", false}, {"create", "", "pods", "eviction", ns, "p", false},
		{"create", "authentication.k8s.io", "tokenreviews", "", "", "", true},
		{"create", "authorization.k8s.io", "subjectaccessreviews", "", "", "", true},
		{"watch", "", "configmaps", "", chartNamespace, chartReclaimHistory, true},
		{"update", "", "configmaps", "", chartNamespace, chartReclaimHistory, false},
	}, both...))
	chartCheckAccess(t, env, ctrl, "the controller", append([]chartAccess{
		{"create", "", "pods", "eviction", ns, "p", true}, {"patch", "", "pods", "", ns, "p", true},
		{"get", "coordination.k8s.io", "leases", "", chartNamespace, chartRebalancerLease, true},
		{"update", "coordination.k8s.io", "leases", "", chartNamespace, chartRebalancerLease, true},
		{"create", "coordination.k8s.io", "leases", "", chartNamespace, "", true},
		{"update", "coordination.k8s.io", "leases", "", chartNamespace, chartSchedLease, false},
		{"delete", "", "pods", "", ns, "p", false}, {"create", "", "pods", "binding", ns, "p", false},
		{"update", "", "pods", "status", ns, "p", false},
		// The failback buffer's pods, in the release namespace only.
		{"create", "", "pods", "", chartNamespace, "", true}, {"delete", "", "pods", "", chartNamespace, "p", true},
		{"create", "", "pods", "", "kube-system", "", false}, {"delete", "", "pods", "", "kube-system", "p", false},
		{"update", "", "configmaps", "", chartNamespace, chartReclaimHistory, true},
		{"watch", "", "configmaps", "", chartNamespace, chartReclaimHistory, true},
		{"update", "", "configmaps", "", chartNamespace, chartRelease + "-config", false},
		{"create", "", "configmaps", "", chartNamespace, "", false},
	}, both...))

	// Real calls as the controller.
	for _, name := range []string{"victim", "other"} {
		p := framework.Pod(ns, name, "100m", map[string]string{"app": "x"})
		if _, err := env.Client.CoreV1().Pods(ns).Create(env.Ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ctrl.PolicyV1().Evictions(ns).Evict(env.Ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "victim"}}); err != nil {
		t.Errorf("controller evicting a pod: %v", err)
	}
	patch := []byte(`{"metadata":{"annotations":{"controller.kubernetes.io/pod-deletion-cost":"-5","spot-scheduler.io/managed-deletion-cost":"-5"}}}`)
	if _, err := ctrl.CoreV1().Pods(ns).Patch(env.Ctx, "other", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Errorf("controller annotating a pod: %v", err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: chartNamespace, Name: chartRebalancerLease}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("test")}}
	if _, err := ctrl.CoordinationV1().Leases(chartNamespace).Create(env.Ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Errorf("controller creating its Lease: %v", err)
	} else if got, err := ctrl.CoordinationV1().Leases(chartNamespace).Get(env.Ctx, chartRebalancerLease, metav1.GetOptions{}); err != nil {
		t.Errorf("controller getting its Lease: %v", err)
	} else {
		got.Spec.HolderIdentity = ptr.To("test-2")
		if _, err := ctrl.CoordinationV1().Leases(chartNamespace).Update(env.Ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Errorf("controller renewing its Lease: %v", err)
		}
	}
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other.rebalanced"}, EventTime: metav1.NowMicro(),
		Regarding: v1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "other"}, Reason: "Rebalanced", Action: "Evict", Type: v1.EventTypeNormal,
		ReportingController: "spot-scheduler.io/rebalancer", ReportingInstance: "test",
	}
	if _, err := ctrl.EventsV1().Events(ns).Create(env.Ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Errorf("controller recording an event: %v", err)
	}

	// Refused calls, as either.
	node := framework.Node("n", "2", nil)
	if _, err := env.Client.CoreV1().Nodes().Create(env.Ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secret := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, StringData: map[string]string{"password": "x"}}
	if _, err := env.Client.CoreV1().Secrets(ns).Create(env.Ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defaultLease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-scheduler"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("default")}}
	if _, err := env.Client.CoordinationV1().Leases("kube-system").Create(env.Ctx, defaultLease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for who, c := range map[string]kubernetes.Interface{"scheduler": sched, "rebalancer": ctrl} {
		_, err := c.CoreV1().Secrets(ns).Get(env.Ctx, "db", metav1.GetOptions{})
		chartWantForbidden(t, who+" reading a secret", err)
		_, err = c.CoreV1().Secrets("").List(env.Ctx, metav1.ListOptions{})
		chartWantForbidden(t, who+" listing secrets", err)
		chartWantForbidden(t, who+" deleting a node", c.CoreV1().Nodes().Delete(env.Ctx, "n", metav1.DeleteOptions{}))
		_, err = c.CoordinationV1().Leases("kube-system").Get(env.Ctx, "kube-scheduler", metav1.GetOptions{})
		chartWantForbidden(t, who+" reading the default scheduler's Lease", err)
	}
	chartWantForbidden(t, "controller deleting a pod", ctrl.CoreV1().Pods(ns).Delete(env.Ctx, "other", metav1.DeleteOptions{}))
	_, err := sched.CoreV1().Pods(ns).Patch(env.Ctx, "other", types.MergePatchType, patch, metav1.PatchOptions{})
	chartWantForbidden(t, "scheduler annotating a pod", err)
	if _, err := env.Client.CoreV1().Nodes().Get(env.Ctx, "n", metav1.GetOptions{}); err != nil {
		t.Errorf("the node is gone: %v", err)
	}
}

// TestChartRestrictedPodSecurity: every object the chart renders, with default values and with
// every option on, server-side applies into namespaces that enforce the restricted Pod
// Security level, without a single warning; the Deployments' ReplicaSets create every pod (Pod
// Security admits them) and each pod template passes a dry-run create. The ServiceMonitor is
// skipped: its CRD (Prometheus Operator) is not installed in the test cluster.
func TestChartRestrictedPodSecurity(t *testing.T) {
	env := framework.Start(t, localcluster.Options{ControllerManager: true})
	applier := newChartApplier(env)
	for _, tc := range []struct {
		release, namespace string
		args               []string
	}{
		{chartRelease, "spot-defaults", nil},
		{"spot", "spot-all", []string{"-f", chart.AllOptionsValues}},
	} {
		chartCreateRestrictedNamespace(env, tc.namespace)
		if tc.args != nil {
			chartCreateRestrictedNamespace(env, "monitoring")
		}
		r := chart.Render(t, tc.release, tc.namespace, tc.args...)
		skipped := applier.apply(r.Objects)
		if tc.args != nil && (len(skipped) != 1 || skipped[0] != "ServiceMonitor/spot") {
			t.Errorf("%s: skipped %v, want only the ServiceMonitor (no CRD here)", tc.release, skipped)
		}
		if tc.args == nil && len(skipped) != 0 {
			t.Errorf("%s: skipped %v", tc.release, skipped)
		}
		t.Logf("%s: applied %d objects into %s (skipped, CRD absent: %v)", tc.release, len(r.Objects)-len(skipped), tc.namespace, skipped)
		if w := applier.warnings.take(); len(w) > 0 {
			t.Errorf("%s: API server warnings: %v", tc.release, w)
		}

		deployments := r.OfKind("Deployment")
		if len(deployments) < 2 {
			t.Fatalf("%s: %d Deployments rendered", tc.release, len(deployments))
		}
		for _, u := range deployments {
			var d appsv1.Deployment
			chart.Into(t, u, &d)
			pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, GenerateName: d.Name + "-dry-run-", Labels: d.Spec.Template.Labels}, Spec: d.Spec.Template.Spec}
			if _, err := env.Client.CoreV1().Pods(d.Namespace).Create(env.Ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				t.Errorf("%s: a pod of Deployment %s is refused: %v", tc.release, d.Name, err)
			}
			selector := labels.SelectorFromSet(d.Spec.Selector.MatchLabels).String()
			want := int(*d.Spec.Replicas)
			env.WaitFor(fmt.Sprintf("%d pods of %s created", want, d.Name), 60*time.Second, func(ctx context.Context) (bool, error) {
				pods, err := env.Client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
				if err != nil {
					return false, err
				}
				if len(pods.Items) == want {
					return true, nil
				}
				rss, err := env.Client.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
				if err != nil {
					return false, err
				}
				for _, rs := range rss.Items {
					for _, c := range rs.Status.Conditions {
						if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == v1.ConditionTrue {
							return false, fmt.Errorf("ReplicaSet %s cannot create pods: %s", rs.Name, c.Message)
						}
					}
				}
				return false, nil
			})
		}
	}
	var names []string
	pcs, err := env.Client.SchedulingV1().PriorityClasses().List(env.Ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name"})
	if err != nil {
		t.Fatal(err)
	}
	for _, pc := range pcs.Items {
		names = append(names, pc.Name)
	}
	sort.Strings(names)
	// The all-options release's placeholders and failback buffer, the defaults' failback buffer.
	if want := []string{"spot-failback-buffer", "spot-headroom", chartRelease + "-failback-buffer"}; !slices.Equal(names, want) {
		t.Errorf("chart PriorityClasses %v, want %v", names, want)
	}
}

// chartApplyRBAC renders the chart, applies its ServiceAccounts and RBAC in the (restricted)
// release namespace, and waits until the authorizer grants both ServiceAccounts what they
// need first; it returns the rendered chart.
func chartApplyRBAC(t *testing.T, env *framework.Env) *chart.Rendered {
	chartCreateRestrictedNamespace(env, chartNamespace)
	env.CreateNamespace(ns)
	r := chart.Render(t, chartRelease, chartNamespace)
	// With the ConfigMaps: the reclaim history's exists before the rebalancer writes it (its
	// RBAC scopes every access by name, create included); and the PriorityClasses: the
	// rebalancer's failback buffer needs its own.
	newChartApplier(env).apply(r.Objects, append(chartRBACKinds, "ConfigMap", "PriorityClass")...)
	for _, sa := range []struct{ name, lease string }{{chartSchedSA, chartSchedLease}, {chartRebalancerSA, chartRebalancerLease}} {
		chartWaitAuthorized(env, chartSAUser(sa.name),
			authorizationv1.ResourceAttributes{Verb: "list", Resource: "nodes"},
			authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: chartNamespace, Name: sa.lease})
	}
	return r
}
