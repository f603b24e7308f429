package spotscore

import (
	"context"

	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/utils/clock"

	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
	"github.com/spot-scheduler/spot-scheduler/pkg/reclaimhistory"
)

// Ranking by risk within a tier (the reclaim history, pkg/reclaimhistory). Everything
// SpotScore does with the history lives in this file; spotscore.go calls it from three places:
//
//   - PreFilter calls readReclaims: the counts of the moment, once per cycle (an atomic load in
//     the scheduler), and only when the model weighs reclaims and spreading is on;
//   - PreScore calls maxLoad over the feasible nodes' pools, next to the most crowded pool;
//   - spreadBonusFor calls riskSpreadBonus instead of spreadBonus when any pool has reclaims.
//
// The spread bonus is then taken of each pool's load (capacity.Model.PoolLoad: the workload's
// replicas there, each weighing more the more the pool was reclaimed, plus less than half a
// replica for the reclaims) instead of its replica count: within the spread's share of the
// band, so tier order and the bands' gap are untouched, and every pool holding no replica of the
// workload still ranks before any pool holding one. Without reclaims nothing changes: the
// bonus is the spread bonus to the point.

// readReclaims returns the reclaim counts the cycle ranks with: nil when the model does not
// weigh reclaims, spreading is off (the ranking uses the spread's share of a band) or no
// history is known.
func (pl *SpotScore) readReclaims() capacity.Reclaims {
	if pl.model.ReclaimWeight() <= 0 || pl.spreadRange <= 0 {
		return nil
	}
	if src := pl.shared.Get(pl.handle).Reclaims; src != nil {
		return src.Reclaims()
	}
	return nil
}

// maxLoad is the highest pool load among the classes (PreScore, when ranking by risk).
func (pl *SpotScore) maxLoad(s *preScoreState, classes []capacity.Class) float64 {
	highest := 0.0
	for _, c := range classes {
		highest = max(highest, pl.model.PoolLoad(s.podsPerPool[c.Pool], s.reclaims[c.Pool]))
	}
	return highest
}

// riskSpreadBonus is the spread bonus of the pool taken of its load: spreadRange for the least
// loaded pools, 0 for the most loaded one.
func (pl *SpotScore) riskSpreadBonus(s *preScoreState, pool string) int64 {
	if s.maxLoad == 0 {
		return pl.spreadRange
	}
	load := pl.model.PoolLoad(s.podsPerPool[pool], s.reclaims[pool])
	return int64(float64(pl.spreadRange) * (s.maxLoad - load) / s.maxLoad)
}

// startReclaimHistory reads the reclaim history's ConfigMap for the scheduler (an informer on
// that one object), unless the model does not weigh reclaims. It does not wait for the read:
// until then (or without the ConfigMap) pools rank by the spread alone.
func (pl *SpotScore) startReclaimHistory(ctx context.Context) {
	if pl.model.ReclaimWeight() <= 0 || pl.spreadRange <= 0 || pl.handle == nil || pl.handle.ClientSet() == nil {
		return
	}
	namespace, name := pl.model.ReclaimHistoryConfigMap()
	reader := reclaimhistory.NewReader(pl.handle.ClientSet(), namespace, name, pl.model.ReclaimWindow(), clock.RealClock{})
	reader.Start(ctx)
	pl.shared.SetReclaims(pl.handle, reader)
	klog.FromContext(ctx).V(2).Info("Reading the reclaim history", "configMap", namespace+"/"+name, "window", pl.model.ReclaimWindow(), "weight", pl.model.ReclaimWeight())
}

// ReclaimEffect tells explain what the reclaim history did to a node's SpotScore in this cycle
// (after PreScore): the reclaims counted for its pool, and the points the history took from
// (positive) or gave to (negative) its spread bonus. ok is false before PreScore.
func ReclaimEffect(state fwk.CycleState, c capacity.Class) (reclaims int, points int64, ok bool) {
	s, err := readState[*preScoreState](state, preScoreStateKey)
	if err != nil {
		return 0, 0, false
	}
	reclaims = s.reclaims[c.Pool]
	if !s.rankByRisk || (s.order.FullPool(c.Pool) && s.pl.model.Reclaimable(c.Tier)) {
		return reclaims, 0, true
	}
	return reclaims, s.pl.spreadBonus(s, c.Pool) - s.pl.riskSpreadBonus(s, c.Pool), true
}
