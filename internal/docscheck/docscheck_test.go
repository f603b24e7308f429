package docscheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMentions(t *testing.T) {
	for _, tc := range []struct {
		name string
		find func(string) []Mention
		text string
		want []Mention
	}{
		{"metric with labels", MetricMentions, "`spot_scheduler_rebalance_skips_total{reason}` and spot_scheduler_pods.",
			[]Mention{{Name: "spot_scheduler_rebalance_skips_total"}, {Name: "spot_scheduler_pods"}}},
		{"no metric in another namespace", MetricMentions, "scheduler_pending_pods, kube_spot_scheduler", nil},
		{"flags in prose, code and assignments", FlagMentions, "`--dry-run` (plan), spot-rebalancer --min-pod-age=2m BENCH_ARGS=--autoscaler=scripted",
			[]Mention{{Name: "dry-run"}, {Name: "min-pod-age"}, {Name: "autoscaler"}}},
		{"flag prefix", FlagMentions, "the `--leader-elect-*` flags and --tls-*", []Mention{{Name: "leader-elect", Prefix: true}, {Name: "tls", Prefix: true}}},
		{"no flags in rules, comments, words", FlagMentions, "|---|---|\n<!-- note -->\nfoo--bar, -short, --, --fooBar, --foo_bar", nil},
		{"adjacent flags", FlagMentions, "--a --b=1 --c", []Mention{{Name: "a"}, {Name: "b"}, {Name: "c"}}},
		{"keys", KeyMentions, "annotate spot-scheduler.io/avoid-spot=true; apiVersion: spot-scheduler.io/v1alpha1.",
			[]Mention{{Name: "spot-scheduler.io/avoid-spot"}, {Name: "spot-scheduler.io/v1alpha1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.find(tc.text)); diff != "" {
				t.Errorf("(-want +got): %s", diff)
			}
		})
	}
}

// TestUndefinedAndUndocumented shows the check failing when it should: a bogus mention is
// named as undefined, a defined name no document mentions as undocumented.
func TestUndefinedAndUndocumented(t *testing.T) {
	metrics := map[string]string{"spot_scheduler_plan_duration_seconds": "a.go:1", "spot_scheduler_pods": "a.go:2"}
	metric := Kind{Name: "metric", Mentions: MetricMentions, Canonical: HistogramCanonical(metrics)}
	flag := Kind{Name: "flag", Mentions: FlagMentions}
	for _, tc := range []struct {
		name             string
		kind             Kind
		docs             []Doc
		defined          map[string]string
		external         map[string]string
		wantUndefined    []string
		wantUndocumented []string
	}{
		{
			name:    "histogram series are the histogram",
			kind:    metric,
			docs:    []Doc{{Path: "ops.md", Text: "spot_scheduler_plan_duration_seconds_bucket, spot_scheduler_pods"}},
			defined: metrics,
		},
		{
			name:             "a bogus metric and an undocumented one",
			kind:             metric,
			docs:             []Doc{{Path: "README.md", Text: "alert on spot_scheduler_pods_evicted_total and spot_scheduler_plan_duration_seconds"}},
			defined:          metrics,
			wantUndefined:    []string{"README.md: metric spot_scheduler_pods_evicted_total"},
			wantUndocumented: []string{"metric spot_scheduler_pods (a.go:2)"},
		},
		{
			name:     "flags: other tools' flags are external, a prefix needs a match",
			kind:     flag,
			docs:     []Doc{{Path: "install.md", Text: "helm install --set x=1; spot-rebalancer --dry-run, the --leader-elect-* flags, the --bogus-* flags"}},
			defined:  map[string]string{"dry-run": "rebalancer", "leader-elect-lease-duration": "rebalancer"},
			external: map[string]string{"set": "helm"},
			wantUndefined: []string{
				"install.md: flag bogus*",
			},
			wantUndocumented: []string{"flag leader-elect-lease-duration (rebalancer)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.wantUndefined, Undefined(tc.docs, tc.kind, tc.defined, tc.external)); diff != "" {
				t.Errorf("Undefined (-want +got): %s", diff)
			}
			if diff := cmp.Diff(tc.wantUndocumented, Undocumented(tc.docs, tc.kind, tc.defined)); diff != "" {
				t.Errorf("Undocumented (-want +got): %s", diff)
			}
		})
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for path, text := range files {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestMetricsFromSource(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"pkg/a/metrics.go": `package a

import m "k8s.io/component-base/metrics"

var name = "computed"

var (
	ok = m.NewCounterVec(&m.CounterOpts{Namespace: "spot_scheduler", Subsystem: "rebalance", Name: "passes_total"}, nil)
	noSubsystem = m.NewGauge(&m.GaugeOpts{Namespace: "spot_scheduler", Name: "pods"})
	computed = m.NewGauge(&m.GaugeOpts{Namespace: "spot_scheduler", Name: name})
	foreign = m.NewGauge(&m.GaugeOpts{Namespace: "scheduler", Name: "x"})
)
`,
		"pkg/a/metrics_test.go": `package a

import "k8s.io/component-base/metrics"

var _ = metrics.GaugeOpts{Namespace: "spot_scheduler", Name: "test_only"}
`,
		"pkg/b/other.go": `package b

type CounterOpts struct{ Namespace, Name string }

var _ = CounterOpts{Namespace: "x", Name: "not a metric"}
`,
	})
	got, errs := Metrics(root, "pkg")
	want := map[string]string{"spot_scheduler_rebalance_passes_total": "pkg/a/metrics.go:8", "spot_scheduler_pods": "pkg/a/metrics.go:9"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got): %s", diff)
	}
	var msgs []string
	for _, err := range errs {
		msgs = append(msgs, err.Error())
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{"pkg/a/metrics.go:10: metric Name is not a string literal", `pkg/a/metrics.go:11: metric "x" is not in the spot_scheduler namespace`} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors %q lack %q", joined, want)
		}
	}
}

func TestKeysAndGoFlagsFromSource(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"pkg/w/w.go": `package w

const (
	Avoid = "spot-scheduler.io/avoid-spot"
	Prefix = "spot-scheduler.io/"
	Other = "example.com/avoid-spot"
)
`,
		"cmd/tool/main.go": `package main

import "flag"

var (
	a = flag.String("trace", "default", "")
	b time.Duration
)

func main() {
	flag.DurationVar(&b, "interval", 0, "")
	fs := flag.NewFlagSet("x", flag.ExitOnError)
	fs.Bool("not-global", false, "")
	flag.Parse()
}
`,
	})
	keys, err := Keys(root, "pkg")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"spot-scheduler.io/avoid-spot": "pkg/w/w.go:4"}, keys); diff != "" {
		t.Errorf("keys (-want +got): %s", diff)
	}
	flags, errs := GoFlags(root, "cmd")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if diff := cmp.Diff(map[string]string{"trace": "cmd/tool/main.go:6", "interval": "cmd/tool/main.go:11"}, flags); diff != "" {
		t.Errorf("flags (-want +got): %s", diff)
	}
}
