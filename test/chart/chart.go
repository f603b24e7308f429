// Package chart renders the Helm chart (manifests/charts/spot-scheduler) for tests, with the
// Helm CLI built from Go modules by hack/helm.sh (never a downloaded binary), and gives access
// to the rendered objects.
package chart

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	// Path is the chart's directory in the repository.
	Path = "manifests/charts/spot-scheduler"
	// AllOptionsValues is the values file setting every option.
	AllOptionsValues = Path + "/ci/all-options-values.yaml"
	// ConfigKey is the key of the KubeSchedulerConfiguration in the chart's ConfigMap.
	ConfigKey = "scheduler-config.yaml"
)

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// RepoRoot returns the repository's root directory (the main module's).
func RepoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// Helm returns the path of the Helm CLI, built by hack/helm.sh on first use (a few minutes
// cold; reused from the cache afterwards).
func Helm(t testing.TB) string {
	t.Helper()
	helmOnce.Do(func() {
		cmd := exec.Command("bash", filepath.Join(RepoRoot(t), "hack/helm.sh"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			helmErr = fmt.Errorf("hack/helm.sh: %v\n%s", err, stderr.String())
			return
		}
		helmPath = strings.TrimSpace(string(out))
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	return helmPath
}

// Template runs `helm template release <chart> --namespace namespace args...` and returns its
// standard output, or an error carrying its standard error.
func Template(t testing.TB, release, namespace string, args ...string) (string, error) {
	t.Helper()
	root := RepoRoot(t)
	full := append([]string{"template", release, filepath.Join(root, Path), "--namespace", namespace}, args...)
	cmd := exec.Command(Helm(t), full...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("helm %s: %v\n%s", strings.Join(full, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Rendered is the chart rendered for one release.
type Rendered struct {
	Release, Namespace string
	Raw                string
	Objects            []*unstructured.Unstructured
}

// Render renders the chart (values files are relative to the repository root) and parses every
// object; it fails the test on any error.
func Render(t testing.TB, release, namespace string, args ...string) *Rendered {
	t.Helper()
	raw, err := Template(t, release, namespace, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Parse(raw)
	if err != nil {
		t.Fatalf("parsing the rendered chart: %v", err)
	}
	return &Rendered{Release: release, Namespace: namespace, Raw: raw, Objects: objs}
}

// Parse splits a multi-document YAML stream into objects, skipping empty documents.
func Parse(stream string) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%v in\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("document without apiVersion, kind or name:\n%s", doc)
		}
		out = append(out, u)
	}
}

// OfKind returns the objects of a kind.
func (r *Rendered) OfKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.Objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// Get returns the object of kind and name, failing the test when there is none.
func (r *Rendered) Get(t testing.TB, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range r.Objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	var have []string
	for _, o := range r.Objects {
		have = append(have, o.GetKind()+"/"+o.GetName())
	}
	t.Fatalf("no %s %q rendered; have %v", kind, name, have)
	return nil
}

// Into converts an object to a typed one (e.g. *appsv1.Deployment).
func Into(t testing.TB, u *unstructured.Unstructured, into any) {
	t.Helper()
	data, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// SchedulerConfig returns the KubeSchedulerConfiguration the chart renders (the ConfigMap key
// ConfigKey).
func (r *Rendered) SchedulerConfig(t testing.TB) []byte {
	t.Helper()
	for _, cm := range r.OfKind("ConfigMap") {
		if v, ok, _ := unstructured.NestedString(cm.Object, "data", ConfigKey); ok {
			return []byte(v)
		}
	}
	t.Fatalf("no ConfigMap with %s rendered", ConfigKey)
	return nil
}

// WriteSchedulerConfig writes the rendered KubeSchedulerConfiguration to a file in dir, with
// clientConnection.kubeconfig set when kubeconfig is not empty (with --config, kube-scheduler
// takes the kubeconfig from the file only), and returns its path.
func (r *Rendered) WriteSchedulerConfig(t testing.TB, dir, kubeconfig string) string {
	t.Helper()
	data := r.SchedulerConfig(t)
	if kubeconfig != "" {
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["clientConnection"]; ok {
			t.Fatal("the rendered configuration sets clientConnection; the chart must leave it to the pod")
		}
		m["clientConnection"] = map[string]any{"kubeconfig": kubeconfig}
		var err error
		if data, err = yaml.Marshal(m); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, r.Release+"-scheduler-config.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Dashboard is the Grafana dashboard the chart ships (files/dashboard.json), as far as the
// tests read it.
type Dashboard struct {
	Title  string `json:"title"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// metricName matches the metric names in a PromQL expression (ours and the scheduler's).
var metricName = regexp.MustCompile(`\b(?:spot_scheduler|scheduler)_[a-z0-9_]+\b`)

// Metrics returns every metric name the dashboard's queries read, sorted.
func (d *Dashboard) Metrics() []string {
	seen := map[string]bool{}
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			for _, m := range metricName.FindAllString(target.Expr, -1) {
				seen[m] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// ParseDashboard decodes dashboard JSON.
func ParseDashboard(t testing.TB, data []byte) *Dashboard {
	t.Helper()
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("dashboard without panels")
	}
	return &d
}

// ShippedDashboard reads the chart's dashboard file.
func ShippedDashboard(t testing.TB) *Dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(RepoRoot(t), Path, "files/dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	return ParseDashboard(t, data)
}
