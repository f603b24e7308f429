package framework

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
)

type builtBin struct {
	once sync.Once
	path string
	err  error
}

var builtBins sync.Map // main package -> *builtBin

// GoBinary returns a binary of this repository under test: $env when that variable is set,
// else the main package pkg (e.g. "./cmd/rebalancer") built from this checkout once per test
// process.
func GoBinary(t testing.TB, pkg, env string) string {
	t.Helper()
	if env != "" {
		if b := os.Getenv(env); b != "" {
			return b
		}
	}
	v, _ := builtBins.LoadOrStore(pkg, &builtBin{})
	b := v.(*builtBin)
	b.once.Do(func() {
		root, err := localcluster.RepoRoot()
		if err != nil {
			b.err = err
			return
		}
		dir, err := os.MkdirTemp("", "spot-scheduler-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, path.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}
