package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	kubetesting "k8s.io/client-go/testing"
	k8sversion "k8s.io/component-base/version"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/spot-scheduler/spot-scheduler/pkg/version"
)

// TestVersionOnStdout: --version prints the product's version and the Kubernetes version it is
// built on, on stdout, and nothing else.
func TestVersionOnStdout(t *testing.T) {
	cmd := NewCommand()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"--version"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(stdout.String())
	want := "spot-scheduler " + version.Version + " (built on Kubernetes " + k8sversion.Get().GitVersion + ")"
	if got != want {
		t.Fatalf("--version printed %q on stdout, want %q (stderr %q)", got, want, stderr.String())
	}
}

// TestKubeconfigFlagWithConfig: with --config, --kubeconfig replaces the file's
// clientConnection.kubeconfig (kube-scheduler alone ignores it); everything else in the file is
// kept; without --kubeconfig the file is used as it is.
func TestKubeconfigFlagWithConfig(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "scheduler-config.yaml")
	shipped, err := os.ReadFile("../../../manifests/scheduler-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, append(shipped, []byte("clientConnection:\n  kubeconfig: /from/the/file\n  qps: 77\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		args           []string
		wantKubeconfig string
	}{
		{"flag overrides the file", []string{"--config", config, "--kubeconfig", "/home/me/.kube/config"}, "/home/me/.kube/config"},
		{"file alone", []string{"--config", config}, "/from/the/file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The command's own options are reachable only through its flags: parse into fresh ones.
			parsed := parseOptions(t, tc.args)
			cleanup, err := kubeconfigWithConfig(parsed.flags, parsed.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer cleanup()
			cfg, err := options.LoadConfigFromFile(klog.Background(), parsed.opts.ConfigFile)
			if err != nil {
				t.Fatalf("the effective configuration does not load: %v", err)
			}
			if cfg.ClientConnection.Kubeconfig != tc.wantKubeconfig || cfg.ClientConnection.QPS != 77 {
				t.Errorf("clientConnection = %+v, want kubeconfig %s and the file's qps 77", cfg.ClientConnection, tc.wantKubeconfig)
			}
			if len(cfg.Profiles) != 1 || cfg.Profiles[0].SchedulerName != "spot-scheduler" || len(cfg.Profiles[0].PluginConfig) == 0 {
				t.Errorf("profiles changed: %+v", cfg.Profiles)
			}
			if len(tc.args) == 2 && parsed.opts.ConfigFile != config {
				t.Errorf("without --kubeconfig the file %s was replaced by %s", config, parsed.opts.ConfigFile)
			}
			effective := parsed.opts.ConfigFile
			cleanup()
			if effective != config {
				if _, err := os.Stat(effective); !os.IsNotExist(err) {
					t.Errorf("the copy %s outlives cleanup: %v", effective, err)
				}
			}
		})
	}
}

// TestKubeconfigFlagWithBadConfig: a broken --config is reported under its own name, before
// kubeconfigWithConfig would replace it with a copy.
func TestKubeconfigFlagWithBadConfig(t *testing.T) {
	config := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(config, []byte("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed := parseOptions(t, []string{"--config", config, "--kubeconfig", "/x"})
	_, err := loadConfigFile(context.Background(), parsed.opts)
	if err == nil || !strings.Contains(err.Error(), config) {
		t.Fatalf("error %v, want one naming %s", err, config)
	}
}

// TestReportUnsyncedInformers: an informer whose list keeps failing is named in an error log
// line, repeatedly, until it syncs; then the reports stop.
func TestReportUnsyncedInformers(t *testing.T) {
	client := fake.NewSimpleClientset()
	var mu sync.Mutex
	failing := true
	client.PrependReactor("list", "resourceclaims", func(kubetesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return true, nil, errors.New("the server could not find the requested resource")
		}
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	factory.Core().V1().Pods().Informer()
	factory.Resource().V1().ResourceClaims().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var logMu sync.Mutex
	var log bytes.Buffer
	logger := funcr.New(func(prefix, args string) {
		logMu.Lock()
		defer logMu.Unlock()
		log.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{})
	ctx = klog.NewContext(ctx, logger)
	if unsynced, started := unsyncedInformers(factory, nil); started || len(unsynced) != 0 {
		t.Fatalf("before start: %v %v", unsynced, started)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		reportUnsyncedInformers(ctx, factory, nil, 50*time.Millisecond, 50*time.Millisecond)
		close(done)
	}()
	reports := func() int {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Count(log.String(), "informers have not synced")
	}
	deadline := time.Now().Add(10 * time.Second)
	for reports() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	logMu.Lock()
	text := log.String()
	logMu.Unlock()
	if reports() < 2 || !strings.Contains(text, "k8s.io/api/resource/v1.ResourceClaim") || strings.Contains(text, "v1.Pod\"") {
		t.Fatalf("want repeated reports naming only k8s.io/api/resource/v1.ResourceClaim, got:\n%s", text)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("reports go on after every informer synced")
	}
}

type parsedOptions struct {
	opts  *options.Options
	flags *pflag.FlagSet
}

// parseOptions parses args into fresh kube-scheduler options, as NewCommand's flags do.
func parseOptions(t *testing.T, args []string) parsedOptions {
	t.Helper()
	opts := options.NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	for _, f := range opts.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return parsedOptions{opts: opts, flags: fs}
}
