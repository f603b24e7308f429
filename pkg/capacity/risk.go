package capacity

import (
	"time"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
)

// Reclaims counts each pool's reclaims within the reclaim history's window, by pool key
// (Class.Pool). nil means none. A Reclaims handed out is never modified.
type Reclaims map[string]int

// ReclaimSource gives the reclaim counts of the moment (the reclaim history's ConfigMap, read
// through an informer). Safe for concurrent use.
type ReclaimSource interface {
	Reclaims() Reclaims
}

// compileReclaimHistory reads the args' reclaim history (validated: the window parses).
func (m *Model) compileReclaimHistory(h *v1alpha1.ReclaimHistory) error {
	m.reclaimWindow, _ = v1alpha1.ParseReclaimWindow(v1alpha1.DefaultReclaimWindow)
	if h == nil {
		return nil
	}
	m.reclaimNamespace, m.reclaimName = h.Namespace, h.Name
	if h.Weight != nil {
		m.reclaimWeight = *h.Weight
	}
	if h.Window != "" {
		w, err := v1alpha1.ParseReclaimWindow(h.Window)
		if err != nil {
			return err
		}
		m.reclaimWindow = w
	}
	return nil
}

// ReclaimHistoryConfigMap is the namespace and name of the reclaim history's ConfigMap.
func (m *Model) ReclaimHistoryConfigMap() (namespace, name string) {
	return m.reclaimNamespace, m.reclaimName
}

// ReclaimWindow is how long a reclaim counts.
func (m *Model) ReclaimWindow() time.Duration { return m.reclaimWindow }

// ReclaimWeight is the percent each reclaim in the window adds to the weight of each of a
// workload's replicas in the pool; 0: pools of a tier are not ranked by risk.
func (m *Model) ReclaimWeight() int32 { return m.reclaimWeight }

// RanksByRisk reports whether reclaims change the ranking of pools: a weight, and reclaims.
func (m *Model) RanksByRisk(r Reclaims) bool { return m.reclaimWeight > 0 && len(r) > 0 }

// PoolLoad is how loaded a pool holding replicas of a workload looks when the pools of a tier
// are ranked (lowest first; the spread of SpotScore, the rebalancer's targets and scale-in
// read the same number): each replica counts 1 + weight% x reclaims, and a pool gets less than
// half a replica more the more it was reclaimed. So:
//
//   - without reclaims it is the replica count: the spread as it always was;
//   - a pool holding no replica of the workload (load below 1/2) still ranks before every pool
//     holding one (load at least 1): the workload is spread over every pool of the tier before
//     the risk decides anything, and the pool caps of a capacity policy hold as before;
//   - among the pools holding none, the one reclaimed least comes first; above that, a pool
//     reclaimed r times gets about 1/(1 + weight% x r) as many replicas as a clean one.
func (m *Model) PoolLoad(replicas, reclaims int) float64 {
	if m.reclaimWeight <= 0 || reclaims <= 0 {
		return float64(replicas)
	}
	r := float64(reclaims)
	return float64(replicas)*(1+float64(m.reclaimWeight)/100*r) + r/(2*(r+1))
}
