package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// repoRoot is the repository, two levels above this package.
const repoRoot = "../.."

// docFiles are the documents users read: the README, docs/ and every package README, and
// the chart's values (its comments document the chart).
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out[path] = string(b)
	}
	add(filepath.Join(repoRoot, "README.md"))
	add(filepath.Join(repoRoot, "manifests/charts/spot-scheduler/values.yaml"))
	for _, pattern := range []string{"docs/*.md", "pkg/*/README.md", "cmd/*/README.md"} {
		matches, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			add(m)
		}
	}
	return out
}

// productSource walks the product's Go files (not tests, not the harness): pkg/ and cmd/.
func productSource(t *testing.T, visit func(path string, f *ast.File)) {
	t.Helper()
	fset := token.NewFileSet()
	for _, dir := range []string{"pkg", "cmd"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			visit(path, f)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// codeMetrics finds every metric the product defines: composite literals of metric options
// whose Namespace is "spot_scheduler", named Namespace_Subsystem_Name.
func codeMetrics(t *testing.T) map[string]string {
	out := map[string]string{}
	productSource(t, func(path string, f *ast.File) {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			fields := map[string]string{}
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, ok1 := kv.Key.(*ast.Ident)
				val, ok2 := kv.Value.(*ast.BasicLit)
				if ok1 && ok2 && val.Kind == token.STRING {
					fields[key.Name], _ = strconv.Unquote(val.Value)
				}
			}
			if fields["Namespace"] != "spot_scheduler" || fields["Name"] == "" {
				return true
			}
			name := fields["Namespace"]
			if fields["Subsystem"] != "" {
				name += "_" + fields["Subsystem"]
			}
			out[name+"_"+fields["Name"]] = path
			return true
		})
	})
	return out
}

// codeKeys finds every spot-scheduler.io/ label or annotation key the product spells.
func codeKeys(t *testing.T) map[string]string {
	out := map[string]string{}
	key := regexp.MustCompile(`^spot-scheduler\.io/[a-z0-9-]+$`)
	productSource(t, func(path string, f *ast.File) {
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && key.MatchString(s) {
					out[s] = path
				}
			}
			return true
		})
	})
	return out
}

// TestDocsMatchCode: the docs cannot drift silently. Every metric and every spot-scheduler.io/
// key the docs name exists in the product, and every one the product defines is documented;
// every flag of the rebalancer's own (not the standard serving, leader-election and logging
// flags of component-base) is documented.
func TestDocsMatchCode(t *testing.T) {
	docs := docFiles(t)
	allDocs := strings.Builder{}
	for _, text := range docs {
		allDocs.WriteString(text)
		allDocs.WriteString("\n")
	}
	documented := allDocs.String()

	metrics := codeMetrics(t)
	if len(metrics) < 10 {
		t.Fatalf("found %d metrics in the source, want the product's (the parser missed them?)", len(metrics))
	}
	metricRef := regexp.MustCompile(`spot_scheduler_[a-z0-9_]*[a-z0-9]`)
	check := func(kind string, names map[string]string, ref *regexp.Regexp, canonical func(string) string) {
		for path, text := range docs {
			for _, m := range ref.FindAllString(text, -1) {
				if _, ok := names[canonical(m)]; !ok {
					t.Errorf("%s names %s %s, which the product does not define", path, kind, m)
				}
			}
		}
		var missing []string
		for name, path := range names {
			if !strings.Contains(documented, name) {
				missing = append(missing, name+" ("+path+")")
			}
		}
		sort.Strings(missing)
		for _, m := range missing {
			t.Errorf("%s %s is not documented (README.md, docs/, a package README or the chart's values)", kind, m)
		}
	}
	check("metric", metrics, metricRef, func(m string) string {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(m, suffix); ok {
				if _, known := metrics[base]; known {
					return base
				}
			}
		}
		return m
	})
	keys := codeKeys(t)
	check("label or annotation", keys, regexp.MustCompile(`spot-scheduler\.io/[a-z0-9-]*[a-z0-9]`), func(k string) string { return k })

	fss := newOptions().flags()
	flags := 0
	for _, set := range []string{"misc", "rebalancer", "deletion cost"} {
		fss.FlagSet(set).VisitAll(func(f *pflag.Flag) {
			flags++
			if !strings.Contains(documented, "--"+f.Name) {
				t.Errorf("flag --%s (spot-rebalancer, %s) is not documented", f.Name, set)
			}
		})
	}
	if flags < 10 {
		t.Fatalf("found %d flags, want the rebalancer's own", flags)
	}
	t.Logf("%d metrics, %d keys, %d flags checked against %d documents", len(metrics), len(keys), flags, len(docs))
}
