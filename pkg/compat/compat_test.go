package compat

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/discovery"
	fakediscovery "k8s.io/client-go/discovery/fake"
	kubetesting "k8s.io/client-go/testing"
	"k8s.io/component-base/featuregate"
	"k8s.io/kubernetes/pkg/features"
)

// server is a fake discovery endpoint serving the essential APIs plus extra, minus omit.
func server(gitVersion, major, minor string, extra []schema.GroupVersionResource, omit ...schema.GroupVersionResource) *fakediscovery.FakeDiscovery {
	byGV := map[string]*metav1.APIResourceList{}
	var order []string
	for _, r := range append(append([]schema.GroupVersionResource{}, essential...), extra...) {
		skip := false
		for _, o := range omit {
			skip = skip || o == r
		}
		if skip {
			continue
		}
		gv := r.GroupVersion().String()
		if byGV[gv] == nil {
			byGV[gv] = &metav1.APIResourceList{GroupVersion: gv}
			order = append(order, gv)
		}
		byGV[gv].APIResources = append(byGV[gv].APIResources, metav1.APIResource{Name: r.Resource})
	}
	fake := &fakediscovery.FakeDiscovery{Fake: &kubetesting.Fake{}, FakedServerVersion: &version.Info{GitVersion: gitVersion, Major: major, Minor: minor}}
	for _, gv := range order {
		fake.Resources = append(fake.Resources, byGV[gv])
	}
	return fake
}

var draV1 = optional[0].resources

func gate(t *testing.T) featuregate.MutableFeatureGate {
	t.Helper()
	g := utilfeature.DefaultMutableFeatureGate.DeepCopy()
	if !g.Enabled(features.DynamicResourceAllocation) {
		t.Fatal("DynamicResourceAllocation is off by default: this scheduler framework is not 1.34's")
	}
	return g
}

// TestAdaptTurnsOffDRAWhenResourceV1IsNotServed: a 1.32 or 1.33 server serves no
// resource.k8s.io/v1; Adapt turns DynamicResourceAllocation off and says so.
func TestAdaptTurnsOffDRAWhenResourceV1IsNotServed(t *testing.T) {
	beta := []schema.GroupVersionResource{{Group: "resource.k8s.io", Version: "v1beta1", Resource: "resourceclaims"}}
	for _, tc := range []struct {
		name  string
		srv   discovery.DiscoveryInterface
		wantV string
	}{
		{"1.32 without DRA", server("v1.32.13", "1", "32", nil), "v1.32.13"},
		{"1.33 with the beta API only", server("v1.33.13", "1", "33", beta), "v1.33.13"},
		{"1.35 with a resource missing", server("v1.35.4", "1", "35", draV1[:2]), "v1.35.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			g := gate(t)
			off, err := adapt(context.Background(), tc.srv, funcr.New(func(prefix, args string) { log.WriteString(args + "\n") }, funcr.Options{}), g)
			if err != nil {
				t.Fatal(err)
			}
			if g.Enabled(features.DynamicResourceAllocation) || len(off) != 1 || off[0] != features.DynamicResourceAllocation {
				t.Fatalf("turned off %v; DynamicResourceAllocation still on: %v", off, g.Enabled(features.DynamicResourceAllocation))
			}
			for _, want := range []string{"feature turned off", `"feature"="DynamicResourceAllocation"`, tc.wantV, "resource.k8s.io/v1 "} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, log.String())
				}
			}
		})
	}
}

// TestAdaptLeavesServedFeaturesOn: a server serving resource.k8s.io/v1 keeps DRA on, whatever
// its decorated version string says.
func TestAdaptLeavesServedFeaturesOn(t *testing.T) {
	for _, srv := range []*fakediscovery.FakeDiscovery{
		server("v1.34.10", "1", "34", draV1),
		server("v1.37.2", "1", "37", draV1),
		server("v1.38.0-beta.0", "1", "38", draV1),
		server("v1.35.3-eks-4b4d3a1", "1", "35+", draV1),
		server("v1.36.1-gke.1200", "", "", draV1),
	} {
		g := gate(t)
		off, err := adapt(context.Background(), srv, funcr.New(func(string, string) {}, funcr.Options{}), g)
		if err != nil {
			t.Fatalf("%s: %v", srv.FakedServerVersion.GitVersion, err)
		}
		if len(off) != 0 || !g.Enabled(features.DynamicResourceAllocation) {
			t.Errorf("%s: turned off %v", srv.FakedServerVersion.GitVersion, off)
		}
	}
}

// TestAdaptRefusesUnsupportedServers: outside 1.32..1.38, or without an essential API, Adapt
// fails with a message naming the server's version and the supported range.
func TestAdaptRefusesUnsupportedServers(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  *fakediscovery.FakeDiscovery
		want []string
	}{
		{"too old", server("v1.31.9", "1", "31", nil), []string{"v1.31.9", "1.32 to 1.38", "outside"}},
		{"too new", server("v1.39.0", "1", "39", draV1), []string{"v1.39.0", "1.32 to 1.38"}},
		{"unreadable", server("banana", "", "", nil), []string{`"banana"`, "1.32 to 1.38"}},
		{"no CSIStorageCapacity", server("v1.33.1", "1", "33", nil, schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "csistoragecapacities"}),
			[]string{"v1.33.1", "storage.k8s.io/v1 csistoragecapacities", "1.32 to 1.38"}},
		{"no evictions", server("v1.36.0", "1", "36", draV1, schema.GroupVersionResource{Version: "v1", Resource: "pods/eviction"}),
			[]string{"v1.36.0", "v1 pods/eviction"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gate(t)
			_, err := adapt(context.Background(), tc.srv, funcr.New(func(string, string) {}, funcr.Options{}), g)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !g.Enabled(features.DynamicResourceAllocation) {
				t.Error("a refused server changed the feature gate")
			}
		})
	}
}

// unreachable is a discovery endpoint whose version request fails, or blocks until release.
type unreachable struct {
	*fakediscovery.FakeDiscovery
	release chan struct{}
}

func (u unreachable) ServerVersion() (*version.Info, error) {
	if u.release != nil {
		<-u.release
	}
	return nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
}

// TestAdaptReportsUnreachableServer: a server that cannot be asked is an error naming the step,
// and a server that does not answer is given up when the context ends.
func TestAdaptReportsUnreachableServer(t *testing.T) {
	srv := unreachable{FakeDiscovery: server("v1.34.10", "1", "34", draV1)}
	_, err := adapt(context.Background(), srv, funcr.New(func(string, string) {}, funcr.Options{}), gate(t))
	if err == nil || !strings.Contains(err.Error(), "asking the Kubernetes API server for its version") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error %v", err)
	}
	srv.release = make(chan struct{})
	defer close(srv.release)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := adapt(ctx, srv, funcr.New(func(string, string) {}, funcr.Options{}), gate(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}
