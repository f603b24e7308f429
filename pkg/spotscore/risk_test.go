package spotscore

import (
	"fmt"
	"sort"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	st "k8s.io/kubernetes/pkg/scheduler/testing"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
)

// riskyPool is pool b's key (the pool label alone: the test nodes have no instance type or zone).
const riskyPool = poolLabel + "=b"

func riskNodes() []*v1.Node {
	return []*v1.Node{spotNode("a-1", "a").Obj(), spotNode("a-2", "a").Obj(), spotNode("b-1", "b").Obj(), spotNode("b-2", "b").Obj(), onDemandNode("od").Obj()}
}

// place schedules replicas of one workload one after another, each on its best-scored node
// (ties to the first name, as the simulation does), each seeing the ones placed before it,
// and returns the replicas per pool.
func place(t *testing.T, args runtime.Object, replicas int, annotations map[string]string, reclaims capacity.Reclaims) map[string]int {
	t.Helper()
	nodes := riskNodes()
	poolOf := map[string]string{}
	for _, n := range nodes {
		poolOf[n.Name] = n.Labels[poolLabel]
		if poolOf[n.Name] == "" {
			poolOf[n.Name] = "on-demand"
		}
	}
	replica := func(name string) *st.PodWrapper {
		p := st.MakePod().Namespace("ns").Name(name).UID(name).OwnerReference("web-abc", rsKind)
		for k, v := range annotations {
			p = p.Annotation(k, v)
		}
		return p
	}
	var existing []*v1.Pod
	perPool := map[string]int{}
	for i := range replicas {
		scores, _ := scoreAllWith(t, args, replica(fmt.Sprintf("r%d", i)).Obj(), nodes, existing, reclaims)
		names := make([]string, 0, len(scores))
		for n := range scores {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			if scores[names[i]] != scores[names[j]] {
				return scores[names[i]] > scores[names[j]]
			}
			return names[i] < names[j]
		})
		existing = append(existing, replica(fmt.Sprintf("r%d", i)).Node(names[0]).Obj())
		perPool[poolOf[names[0]]]++
	}
	return perPool
}

// TestRiskRanksPoolsWithinATier: a pool reclaimed 3 times in the window gets fewer of a new
// workload's replicas than a clean pool of the same tier, never none while it has room (the
// spread first), and never beyond a capacity policy's pool cap in the clean one.
func TestRiskRanksPoolsWithinATier(t *testing.T) {
	risky := capacity.Reclaims{riskyPool: 3}
	tests := []struct {
		name        string
		args        runtime.Object
		replicas    int
		annotations map[string]string
		reclaims    capacity.Reclaims
		want        map[string]int
	}{
		{"no history: the spread alone", nil, 6, nil, nil, map[string]int{"a": 3, "b": 3}},
		// Each replica in b weighs 1 + 50% x 3 = 2.5.
		{"pool b reclaimed 3 times", nil, 6, nil, risky, map[string]int{"a": 4, "b": 2}},
		{"two replicas: one per pool all the same", nil, 2, nil, risky, map[string]int{"a": 1, "b": 1}},
		{"weight 300: b weighs 10 times", rawArgs(`{"reclaimHistory": {"weight": 300}}`), 6, nil, risky, map[string]int{"a": 5, "b": 1}},
		{"weight 0: no ranking by risk", rawArgs(`{"reclaimHistory": {"weight": 0}}`), 6, nil, risky, map[string]int{"a": 3, "b": 3}},
		{"spreadWeight 0: neither spread nor risk", rawArgs(`{"spreadWeight": 0}`), 2, nil, risky, map[string]int{"a": 2}},
		{"history of other pools only", nil, 6, nil, capacity.Reclaims{poolLabel + "=z": 5}, map[string]int{"a": 3, "b": 3}},
		{"the pool cap holds in the safer pool", nil, 6, map[string]string{policy.MaxPerPoolAnnotation: "3"}, capacity.Reclaims{riskyPool: 20}, map[string]int{"a": 3, "b": 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := place(t, tc.args, tc.replicas, tc.annotations, tc.reclaims)
			for pool, n := range tc.want {
				if got[pool] != n {
					t.Errorf("replicas per pool %v, want %v", got, tc.want)
					break
				}
			}
			if got["on-demand"] != 0 {
				t.Errorf("replicas per pool %v: none should go to on-demand while spot has room", got)
			}
		})
	}
}

func TestRiskKeepsTierOrderAndExplains(t *testing.T) {
	nodes := append(riskNodes(), atRisk(spotNode("a-3", "a")).Obj())
	pod := st.MakePod().Namespace("ns").Name("p").UID("p").OwnerReference("web-abc", rsKind).Obj()
	scores, state := scoreAllWith(t, nil, pod, nodes, nil, capacity.Reclaims{riskyPool: 1000})
	// However often reclaimed, a healthy spot pool outranks on-demand and at-risk nodes.
	if !(scores["a-1"] > scores["b-1"] && scores["b-1"] > scores["od"] && scores["od"] > scores["a-3"]) {
		t.Fatalf("scores %v: want a > b > on-demand > at-risk spot", scores)
	}
	plain := scoreAll(t, nil, pod, nodes, nil)
	model := testModel(t)
	for _, n := range nodes {
		c := model.Classify(n)
		reclaims, points, ok := ReclaimEffect(state, c)
		if !ok {
			t.Fatal("ReclaimEffect after PreScore: not ok")
		}
		if want := map[bool]int{true: 1000, false: 0}[c.Pool == riskyPool]; reclaims != want {
			t.Errorf("%s: %d reclaims, want %d", n.Name, reclaims, want)
		}
		if plain[n.Name]-scores[n.Name] != points {
			t.Errorf("%s: the history took %d points (score %d without it, %d with), ReclaimEffect says %d", n.Name, plain[n.Name]-scores[n.Name], plain[n.Name], scores[n.Name], points)
		}
	}
}

func testModel(t *testing.T) *capacity.Model {
	t.Helper()
	p, err := New(t.Context(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*SpotScore).model
}
