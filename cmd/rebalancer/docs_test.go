package main

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/component-base/cli/globalflag"
	"k8s.io/component-base/logs"
	"k8s.io/component-base/version/verflag"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/spot-scheduler/spot-scheduler/cmd/scheduler/app"
	"github.com/spot-scheduler/spot-scheduler/internal/docscheck"
)

// repoRoot is the repository, two levels above this package.
const repoRoot = "../.."

// The test lives here, beside spot-rebalancer's flags, because a main package cannot be
// imported; the scheduler's command is importable (cmd/scheduler/app).

// productDirs hold the product's code: what users run and read about.
var productDirs = []string{"pkg", "cmd"}

// harnessDirs hold the demo's and the benchmarks' commands, whose flags docs/benchmarks.md and
// docs/testing.md name; they need not be documented, but a doc naming one must name a real one.
var harnessDirs = []string{"cmd/demo", "bench/cmd"}

// externalFlags are flags of other tools the docs show in commands, with the tool.
var externalFlags = map[string]string{
	"set":                             "helm install --set",
	"server-side":                     "kubectl apply --server-side",
	"type":                            "kubectl patch --type",
	"expander":                        "cluster-autoscaler --expander=priority",
	"disable-leader-election":         "Karpenter, run out of cluster by the tests",
	"manage-all-nodes":                "kwok, run by the tests",
	"expendable-pods-priority-cutoff": "cluster-autoscaler (the failback buffer's priority floor)",
}

// rebalancerOwnSections are spot-rebalancer's flag sections the product defines; every flag of
// them must be documented.
var rebalancerOwnSections = []string{"misc", "rebalancer", "deletion cost"}

// rebalancerStandardSections are component-base's sections, the flags kube-scheduler has
// under the same names (docs/design.md says so where it lists the binary's flags); they
// need not be documented one by one. A section in neither list fails the test.
var rebalancerStandardSections = []string{"leader election", "secure serving", "authentication", "authorization", "logging"}

// TestDocsMatchCode: the docs cannot drift silently. Every metric, flag and spot-scheduler.io/
// key that README.md, docs/, a package README or the chart's values name exists in the code,
// and every one the product defines is documented: metrics and keys all, flags those of the
// product's own (spot-rebalancer's own sections, the explain and report commands, anything
// spot-scheduler adds to kube-scheduler's flags).
func TestDocsMatchCode(t *testing.T) {
	docs, err := docscheck.Docs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 8 {
		t.Fatalf("found %d documents, want README.md, docs/ and the package READMEs", len(docs))
	}

	t.Run("metrics", func(t *testing.T) {
		metrics, errs := docscheck.Metrics(repoRoot, productDirs...)
		for _, err := range errs {
			t.Error(err)
		}
		if len(metrics) < 20 {
			t.Fatalf("found %d metrics in the source, want the product's (the parser missed them?)", len(metrics))
		}
		kind := docscheck.Kind{Name: "metric", Mentions: docscheck.MetricMentions, Canonical: docscheck.HistogramCanonical(metrics)}
		reportFindings(t, docscheck.Undefined(docs, kind, metrics, nil), docscheck.Undocumented(docs, kind, metrics))
	})

	t.Run("labels and annotations", func(t *testing.T) {
		keys, err := docscheck.Keys(repoRoot, productDirs...)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) < 8 {
			t.Fatalf("found %d spot-scheduler.io keys in the source, want the product's", len(keys))
		}
		kind := docscheck.Kind{Name: "label, annotation or API group", Mentions: docscheck.KeyMentions}
		reportFindings(t, docscheck.Undefined(docs, kind, keys, nil), docscheck.Undocumented(docs, kind, keys))
	})

	t.Run("flags", func(t *testing.T) {
		defined, required := productFlags(t)
		harness, errs := docscheck.GoFlags(repoRoot, harnessDirs...)
		for _, err := range errs {
			t.Error(err)
		}
		external := map[string]string{}
		for name, tool := range externalFlags {
			if _, ok := defined[name]; ok {
				t.Errorf("--%s is listed as another tool's (%s) but the product defines it: drop it from externalFlags", name, tool)
			}
			external[name] = tool
		}
		for name, where := range harness {
			external[name] = where
		}
		kind := docscheck.Kind{Name: "flag", Mentions: docscheck.FlagMentions}
		mentioned := docscheck.Mentioned(docs, kind)
		for name, tool := range externalFlags {
			if !mentioned[name] {
				t.Errorf("--%s (%s) is listed in externalFlags but no document names it any more: drop it", name, tool)
			}
		}
		reportFindings(t, docscheck.Undefined(docs, kind, defined, external), docscheck.Undocumented(docs, kind, required))
		t.Logf("%d flags defined, %d of the product's own, %d of the harness, in %d documents", len(defined), len(required), len(harness), len(docs))
	})

	// The binary's default Lease differs from the chart's on purpose (docs/operations.md says
	// why; test/chart checks the chart passes its own); the default the docs state is the
	// binary's.
	t.Run("rebalancer Lease default", func(t *testing.T) {
		le := newOptions().leaderElection
		lease := "`" + le.ResourceNamespace + "/" + le.ResourceName + "`"
		for _, d := range docs {
			if d.Path == "docs/operations.md" {
				if !strings.Contains(d.Text, "by default "+lease) {
					t.Errorf("docs/operations.md does not state the rebalancer's default Lease, %s", lease)
				}
				return
			}
		}
		t.Error("docs/operations.md not found")
	})
}

// reportFindings fails naming every undefined and every undocumented name.
func reportFindings(t *testing.T, undefined, undocumented []string) {
	t.Helper()
	for _, u := range undefined {
		t.Errorf("%s: named in the docs, but the code defines no such name", u)
	}
	for _, u := range undocumented {
		t.Errorf("%s: defined, but no document names it (README.md, docs/, a package README or the chart's values)", u)
	}
}

// productFlags returns every flag of both binaries and the kubectl plugin (defined: name to
// where) and the ones that must be documented (required).
func productFlags(t *testing.T) (defined, required map[string]string) {
	defined, required = map[string]string{}, map[string]string{}
	add := func(fs *pflag.FlagSet, where string, mustDocument func(*pflag.Flag) bool) {
		fs.VisitAll(func(f *pflag.Flag) {
			if _, ok := defined[f.Name]; !ok {
				defined[f.Name] = where
			}
			if mustDocument(f) {
				required[f.Name] = where
			}
		})
	}
	always := func(*pflag.Flag) bool { return true }

	// spot-rebalancer.
	fss := newOptions().flags()
	for _, section := range fss.Order {
		switch {
		case slices.Contains(rebalancerOwnSections, section):
			add(fss.FlagSets[section], "spot-rebalancer, "+section, always)
		case slices.Contains(rebalancerStandardSections, section):
			add(fss.FlagSets[section], "spot-rebalancer, "+section, func(*pflag.Flag) bool { return false })
		default:
			t.Errorf("spot-rebalancer flag section %q is neither the product's own nor component-base's standard one: add it to one list", section)
		}
	}

	// spot-scheduler: kube-scheduler's flags need no documentation of their own (kube-scheduler
	// documents them); anything the command adds does, and so do its subcommands'.
	upstream := kubeSchedulerFlags()
	scheduler := app.NewCommand()
	add(scheduler.Flags(), "spot-scheduler", func(f *pflag.Flag) bool { return !upstream[f.Name] })
	for _, root := range []*cobra.Command{scheduler, app.NewKubectlPlugin()} {
		for _, sub := range root.Commands() {
			add(sub.Flags(), root.Use+" "+sub.Name(), always)
		}
	}
	if n := len(required); n < 25 {
		t.Fatalf("found %d flags of the product's own, want spot-rebalancer's and explain's and report's (%v)", n, sortedKeys(required))
	}
	return defined, required
}

// kubeSchedulerFlags are the flags kube-scheduler's own command has: its options' sections,
// --version, and the global flags (help, logging).
func kubeSchedulerFlags() map[string]bool {
	nfs := schedoptions.NewOptions().Flags
	verflag.AddFlags(nfs.FlagSet("global"))
	globalflag.AddGlobalFlags(nfs.FlagSet("global"), "kube-scheduler", logs.SkipLoggingConfigurationFlags())
	out := map[string]bool{}
	for _, fs := range nfs.FlagSets {
		fs.VisitAll(func(f *pflag.Flag) { out[f.Name] = true })
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
