package deletioncost

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// TestDesiredKeepsPolicyAtEveryReplicaCount: a workload with a capacity policy, placed as the
// policy says (and with random extra replicas anywhere), scaled in by the ReplicaSet's rule
// (lowest deletion cost first): every replica count it can be scaled to keeps the policy, and
// at-risk pods go first.
func TestDesiredKeepsPolicyAtEveryReplicaCount(t *testing.T) {
	m := defaultModel(t)
	nodes := map[string]*v1.Node{
		"od":     node("od", onDemandLabel),
		"a":      spotNode("a", "pool-a"),
		"b":      spotNode("b", "pool-b"),
		"c":      spotNode("c", "pool-c"),
		"a-risk": spotNode("a-risk", "pool-a", riskTaint),
	}
	nodeOf := func(name string) (*v1.Node, bool) { n, ok := nodes[name]; return n, ok }
	annotations := withAnnotations(policy.OnDemandBaseAnnotation, "2", policy.SpotShareAnnotation, "75", policy.MaxPerPoolAnnotation, "50%")
	p := policy.Policy{OnDemandBase: 2, SpotShare: 75, PoolPercent: 50}
	rng := rand.New(rand.NewSource(7))
	names := []string{"od", "a", "b", "c", "a-risk"}
	for iter := 0; iter < 300; iter++ {
		// Start from the policy's own placement of 10 (4 on-demand, 3 + 3 spot), plus up to
		// 6 random replicas.
		layout := []string{"od", "od", "od", "od", "a", "a", "a", "b", "b", "b"}
		for range rng.Intn(7) {
			layout = append(layout, names[rng.Intn(len(names))])
		}
		var pods []*v1.Pod
		for i, n := range layout {
			pods = append(pods, pod(fmt.Sprintf("p%02d", i), n, rng.Intn(100), annotations))
		}
		desired := Desired(m, wellknown.SchedulerName, pods, nodeOf)
		sort.SliceStable(pods, func(i, j int) bool { return desired[pods[i].UID].Cost > desired[pods[j].UID].Cost })
		// pods is now the keep order: the ReplicaSet scaled to k keeps the first k.
		healthy := 0
		for i, pd := range pods {
			if !desired[pd.UID].Class.AtRisk {
				if healthy != i {
					t.Fatalf("layout %v: a healthy pod is deleted before an at-risk one", layout)
				}
				healthy++
			}
		}
		var kept policy.Counts
		for k := 1; k <= healthy; k++ {
			c := desired[pods[k-1].UID].Class
			kept.Add(m.Reclaimable(c.Tier), c.Pool, 1)
			if k <= 10 { // the first 10 can always be the policy's own placement
				if v := p.Violation(kept); !v.Holds() {
					t.Fatalf("layout %v: scaled in to %d replicas, %s violates the policy: %+v", layout, k, policy.FormatCounts(kept), v)
				}
			}
		}
	}
}

// TestDesiredWithoutPolicyUnchanged: no annotation and no default: the costs are the tier
// and crowding costs.
func TestDesiredWithoutPolicyUnchanged(t *testing.T) {
	m := defaultModel(t)
	nodes := map[string]*v1.Node{"od": node("od", onDemandLabel), "a": spotNode("a", "pool-a")}
	nodeOf := func(name string) (*v1.Node, bool) { n, ok := nodes[name]; return n, ok }
	pods := []*v1.Pod{pod("x", "od", 1), pod("y", "a", 2)}
	d := Desired(m, wellknown.SchedulerName, pods, nodeOf)
	if d["uid-x"].Cost != 5999 || d["uid-y"].Cost != 6999 {
		t.Errorf("costs %v", d)
	}
}
