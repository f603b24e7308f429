// Package docscheck finds the names users read in the docs (metrics, flags, label and
// annotation keys) and the names the code defines, so that a test can hold the two to each
// other (cmd/rebalancer's TestDocsMatchCode). It only reads files: no cluster, no network.
package docscheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Doc is one document users read.
type Doc struct {
	// Path is relative to the repository root.
	Path string
	Text string
}

// DocPatterns are the documents users read, relative to the repository root: the README,
// docs/, every package or command README, and the chart's README and values (the values'
// comments document the chart).
var DocPatterns = []string{
	"README.md",
	"docs/*.md",
	"pkg/*/README.md",
	"cmd/*/README.md",
	"manifests/charts/*/README.md",
	"manifests/charts/*/values.yaml",
}

// Docs reads every document of DocPatterns under root.
func Docs(root string) ([]Doc, error) {
	var docs []Doc
	for _, pattern := range DocPatterns {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				return nil, err
			}
			rel, err := filepath.Rel(root, m)
			if err != nil {
				return nil, err
			}
			docs = append(docs, Doc{Path: filepath.ToSlash(rel), Text: string(b)})
		}
	}
	return docs, nil
}

var (
	// A metric of the product: every one is in the spot_scheduler namespace (Metrics refuses
	// any other). Label sets in braces after it are not part of the name.
	metricMention = regexp.MustCompile(`spot_scheduler_[a-z0-9_]*[a-z0-9]`)
	// A long flag: two dashes not preceded by a word character or a dash (so "a--b" and
	// table rules are no flags), a lower-case name; a trailing "*" makes it a prefix
	// ("--leader-elect-*": some flag starts so).
	flagMention = regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(-?\*)?`)
	// A label, annotation or API group key of the product's own domain.
	keyMention = regexp.MustCompile(`spot-scheduler\.io/[a-z0-9][a-z0-9.-]*[a-z0-9]`)
)

// Mention is a name found in a document; Prefix marks a wildcard mention ("--foo-*").
type Mention struct {
	Name   string
	Prefix bool
}

// MetricMentions returns the spot_scheduler_* names text mentions.
func MetricMentions(text string) []Mention {
	var out []Mention
	for _, m := range metricMention.FindAllString(text, -1) {
		out = append(out, Mention{Name: m})
	}
	return out
}

// FlagMentions returns the long flags text mentions, without their dashes.
func FlagMentions(text string) []Mention {
	var out []Mention
	for _, m := range flagMention.FindAllStringSubmatchIndex(text, -1) {
		// A name running on in characters no flag has ("--fooBar", "--foo_bar") is not one.
		if end := m[1]; end < len(text) && (text[end] == '_' || 'A' <= text[end] && text[end] <= 'Z') {
			continue
		}
		out = append(out, Mention{Name: text[m[2]:m[3]], Prefix: m[4] >= 0})
	}
	return out
}

// KeyMentions returns the spot-scheduler.io/ keys text mentions.
func KeyMentions(text string) []Mention {
	var out []Mention
	for _, m := range keyMention.FindAllString(text, -1) {
		out = append(out, Mention{Name: m})
	}
	return out
}

// Kind is one kind of name checked: how documents mention it and what the code defines.
type Kind struct {
	// Name is what the messages call it ("metric", "flag", ...).
	Name     string
	Mentions func(text string) []Mention
	// Canonical maps a mention to the defined name it refers to (e.g. a histogram's
	// _bucket series to the histogram); nil means the mention is the name.
	Canonical func(name string) string
}

// Undefined returns, for each document, the names it mentions that are not in defined (nor
// in external, the names of other tools the docs may use), as "path: name" lines, sorted. A
// prefix mention is defined when some defined or external name starts with it.
func Undefined(docs []Doc, kind Kind, defined, external map[string]string) []string {
	var out []string
	for _, d := range docs {
		seen := map[string]bool{}
		for _, m := range kind.Mentions(d.Text) {
			name := m.Name
			if kind.Canonical != nil && !m.Prefix {
				name = kind.Canonical(name)
			}
			if seen[name] || known(name, m.Prefix, defined) || known(name, m.Prefix, external) {
				continue
			}
			seen[name] = true
			what := name
			if m.Prefix {
				what += "*"
			}
			out = append(out, fmt.Sprintf("%s: %s %s", d.Path, kind.Name, what))
		}
	}
	sort.Strings(out)
	return out
}

func known(name string, prefix bool, names map[string]string) bool {
	if !prefix {
		_, ok := names[name]
		return ok
	}
	for n := range names {
		if strings.HasPrefix(n, name) {
			return true
		}
	}
	return false
}

// Undocumented returns the names of required (name: where it is defined) that no document
// mentions exactly, as "name (where)" lines, sorted.
func Undocumented(docs []Doc, kind Kind, required map[string]string) []string {
	mentioned := Mentioned(docs, kind)
	var out []string
	for name, where := range required {
		if !mentioned[name] {
			out = append(out, fmt.Sprintf("%s %s (%s)", kind.Name, name, where))
		}
	}
	sort.Strings(out)
	return out
}

// Mentioned is the set of names (canonical, prefix mentions left out) the documents mention.
func Mentioned(docs []Doc, kind Kind) map[string]bool {
	out := map[string]bool{}
	for _, d := range docs {
		for _, m := range kind.Mentions(d.Text) {
			if m.Prefix {
				continue
			}
			name := m.Name
			if kind.Canonical != nil {
				name = kind.Canonical(name)
			}
			out[name] = true
		}
	}
	return out
}

// HistogramCanonical maps the series of a histogram or summary (name_bucket, _sum, _count)
// to its name when that name is one of metrics.
func HistogramCanonical(metrics map[string]string) func(string) string {
	return func(m string) string {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(m, suffix); ok {
				if _, known := metrics[base]; known {
					return base
				}
			}
		}
		return m
	}
}

// goFile is one parsed Go file.
type goFile struct {
	path string
	fset *token.FileSet
	file *ast.File
}

// goFiles parses the non-test Go files under root/dirs.
func goFiles(root string, dirs ...string) ([]goFile, error) {
	var out []goFile
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
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
			rel, _ := filepath.Rel(root, path)
			out = append(out, goFile{path: filepath.ToSlash(rel), fset: fset, file: f})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// importName returns the name file f uses for the package at path, or "" if it does not
// import it.
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == path {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return path[strings.LastIndex(path, "/")+1:]
		}
	}
	return ""
}

// metricPackages are the packages whose *Opts types define a metric's name.
var metricPackages = []string{"k8s.io/component-base/metrics", "github.com/prometheus/client_golang/prometheus"}

// metricOpts are the option types of those packages that carry Namespace, Subsystem and Name.
var metricOpts = map[string]bool{"CounterOpts": true, "GaugeOpts": true, "HistogramOpts": true, "SummaryOpts": true, "TimingHistogramOpts": true, "Opts": true}

// Metrics returns every metric the Go sources under root/dirs define (name: file:line), read
// from the composite literals of metric options (metrics.CounterOpts{Namespace, Subsystem,
// Name, ...} and the like) as the registry would name them, Namespace_Subsystem_Name.
//
// Why the sources and not the registries: a registry holds only what the packages a binary
// imports registered, and gathers a vector metric only once it has a series, so a metric
// nobody observed yet (most of them in a test process) is missing from a Gather; the
// definitions are what the docs describe. To stay honest, every metric literal must spell its
// name with string literals in the spot_scheduler namespace: one that does not is an error
// naming it, never a silent skip.
func Metrics(root string, dirs ...string) (map[string]string, []error) {
	files, err := goFiles(root, dirs...)
	if err != nil {
		return nil, []error{err}
	}
	out := map[string]string{}
	var errs []error
	for _, gf := range files {
		var pkgs []string
		for _, p := range metricPackages {
			if name := importName(gf.file, p); name != "" {
				pkgs = append(pkgs, name)
			}
		}
		if len(pkgs) == 0 {
			continue
		}
		ast.Inspect(gf.file, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok || !metricOpts[sel.Sel.Name] {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || !slices.Contains(pkgs, x.Name) {
				return true
			}
			where := fmt.Sprintf("%s:%d", gf.path, gf.fset.Position(lit.Pos()).Line)
			fields := map[string]string{}
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, ok := kv.Key.(*ast.Ident)
				if !ok || (key.Name != "Namespace" && key.Name != "Subsystem" && key.Name != "Name") {
					continue
				}
				val, ok := kv.Value.(*ast.BasicLit)
				if !ok || val.Kind != token.STRING {
					errs = append(errs, fmt.Errorf("%s: metric %s is not a string literal; spell it out so that the docs check can read it", where, key.Name))
					continue
				}
				fields[key.Name], _ = strconv.Unquote(val.Value)
			}
			if fields["Namespace"] != "spot_scheduler" || fields["Name"] == "" {
				errs = append(errs, fmt.Errorf("%s: metric %q is not in the spot_scheduler namespace (Namespace %q)", where, fields["Name"], fields["Namespace"]))
				return true
			}
			name := fields["Namespace"]
			if fields["Subsystem"] != "" {
				name += "_" + fields["Subsystem"]
			}
			out[name+"_"+fields["Name"]] = where
			return true
		})
	}
	return out, errs
}

// productKey is a label or annotation key (or the API group) of the product's domain, spelled
// whole in a string literal.
var productKey = regexp.MustCompile(`^spot-scheduler\.io/[a-z0-9][a-z0-9.-]*[a-z0-9]$`)

// Keys returns every spot-scheduler.io/ key the Go sources under root/dirs spell (key:
// file:line): the labels and annotations the product reads and writes (pkg/wellknown,
// pkg/policy) wherever they are spelled, and the API group of its plugin args.
func Keys(root string, dirs ...string) (map[string]string, error) {
	files, err := goFiles(root, dirs...)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, gf := range files {
		ast.Inspect(gf.file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && productKey.MatchString(s) {
					out[s] = fmt.Sprintf("%s:%d", gf.path, gf.fset.Position(lit.Pos()).Line)
				}
			}
			return true
		})
	}
	return out, nil
}

// flagDefiners are the functions and methods of the standard flag package and pflag that
// define a flag, by the position of its name among their arguments.
var flagDefiners = map[string]int{}

func init() {
	for _, t := range []string{"Bool", "Duration", "Float64", "Float32", "Int", "Int64", "Uint", "Uint64", "String", "StringSlice", "Func", "TextVar"} {
		flagDefiners[t] = 0
		flagDefiners[t+"Var"] = 1
	}
	flagDefiners["Var"] = 1
	flagDefiners["Func"] = 0
	flagDefiners["TextVar"] = 1
}

// GoFlags returns the flags the main packages under root/dirs define with the flag package
// (flag.String("name", ...), flag.DurationVar(&v, "name", ...)): the harness commands (demo,
// benchmarks), which a test cannot import to ask their FlagSet. Names must be string
// literals; one that is not is an error.
func GoFlags(root string, dirs ...string) (map[string]string, []error) {
	files, err := goFiles(root, dirs...)
	if err != nil {
		return nil, []error{err}
	}
	out := map[string]string{}
	var errs []error
	for _, gf := range files {
		flagPkg := importName(gf.file, "flag")
		if flagPkg == "" {
			continue
		}
		ast.Inspect(gf.file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			pos, definer := flagDefiners[sel.Sel.Name]
			if !ok || x.Name != flagPkg || !definer || len(call.Args) <= pos {
				return true
			}
			where := fmt.Sprintf("%s:%d", gf.path, gf.fset.Position(call.Pos()).Line)
			lit, ok := call.Args[pos].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				errs = append(errs, fmt.Errorf("%s: flag name is not a string literal", where))
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			out[name] = where
			return true
		})
	}
	return out, errs
}
