package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spot-scheduler/spot-scheduler/internal/localcluster"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// orphans lists the pods still bound to a node that no longer exists.
func orphans(env *framework.Env, node string) []v1.Pod {
	env.T.Helper()
	pods, err := env.Client.CoreV1().Pods(ns).List(env.Ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		env.T.Fatal(err)
	}
	return pods.Items
}

// TestReclaimOrphansWindow: a spot node is reclaimed as a cloud does it (the Node is deleted,
// its pods stay bound to it until the pod garbage collector removes them). During that window
// the scheduler keeps scheduling, the rebalancer keeps passing and moves pods to spot room
// that appears, explain answers for an orphaned pod and for the cluster, and /livez stays
// healthy; after it, every pod is on spot.
func TestReclaimOrphansWindow(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(framework.Node("spot-1", "4", framework.SpotLabels), framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	rb := startRebalancer(env, "--rebalance-interval=2s")
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, "web", 4, "1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunningOn(env, "web", 4, "spot-1")
	// spot-1 is full: api lands on on-demand.
	if _, err := env.Client.AppsV1().Deployments(ns).Create(env.Ctx, framework.Deployment(ns, "api", 2, "1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunningOn(env, "api", 2, "ondemand-1")

	if err := localcluster.Reclaim(env.Ctx, env.Client, "spot-1"); err != nil {
		t.Fatal(err)
	}
	reclaimed := time.Now()
	inWindow := func(what string) {
		t.Helper()
		if len(orphans(env, "spot-1")) == 0 {
			t.Fatalf("%s: the pod garbage collector already removed the orphans (%s after the reclaim); the window closed too early to test", what, time.Since(reclaimed).Round(time.Millisecond))
		}
	}
	inWindow("right after the reclaim")

	// The scheduler keeps scheduling.
	if _, err := env.Client.CoreV1().Pods(ns).Create(env.Ctx, framework.Pod(ns, "fresh", "1", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := env.WaitPodBound(ns, "fresh", 30*time.Second); got != "ondemand-1" {
		t.Fatalf("fresh pod bound to %s, want ondemand-1 (the only node left)", got)
	}
	inWindow("after the scheduler bound a pod")

	// Spot room returns: the rebalancer, passing over the orphans, moves api to it.
	env.CreateNodes(framework.Node("spot-2", "8", framework.SpotLabels))
	waitRunningOn(env, "api", 2, "spot-2")
	inWindow("after the rebalancer moved api to spot-2")

	// explain answers, for an orphaned pod and for the whole cluster.
	orphan := orphans(env, "spot-1")[0]
	if out := runExplain(env, "pod", ns+"/"+orphan.Name); !strings.Contains(out, "spot-2") {
		t.Errorf("explain pod %s: no verdict for spot-2:\n%s", orphan.Name, out)
	}
	if out := runExplain(env, "cluster"); !strings.Contains(out, "Rebalancer plan now") {
		t.Errorf("explain cluster:\n%s", out)
	}
	inWindow("after explain")
	resp, err := rb.admin.Get(rb.base + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rebalancer /livez: %s during the window", resp.Status)
	}

	// The pod garbage collector closes the window; web comes back, on spot.
	env.WaitFor("orphans of spot-1 removed", localcluster.OrphanLifetime, func(ctx context.Context) (bool, error) {
		return len(orphans(env, "spot-1")) == 0, nil
	})
	t.Logf("orphans of spot-1 lived %s", time.Since(reclaimed).Round(time.Second))
	waitRunningOn(env, "web", 4, "spot-2", "ondemand-1")
	// web's replacements that found spot-2 full went to on-demand; the rebalancer brings back
	// what spot-2 can take (8 CPUs: api 2, web 4, fresh stays where it is: not a Deployment's).
	waitRunningOn(env, "web", 4, "spot-2")
	waitRunningOn(env, "api", 2, "spot-2")
	if rb.proc.Exited() {
		t.Fatalf("the rebalancer exited: %v (log %s)", rb.proc.Wait(0), rb.log)
	}
	if _, err := env.Client.CoreV1().Nodes().Get(env.Ctx, "spot-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("spot-1 still there: %v", err)
	}
}
