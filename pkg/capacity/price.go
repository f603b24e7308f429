package capacity

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

// Where a node's price comes from.
const (
	// PriceFromLabel: the node's price label (prices.nodeLabel).
	PriceFromLabel = "label"
	// PriceFromTable: the price table of the args.
	PriceFromTable = "table"
	// PriceUnknown: neither.
	PriceUnknown = "unknown"
)

// gib is a GiB in bytes: the table prices memory per GiB.
const gib = 1 << 30

// Price is what a node costs per hour, and what one vCPU and one GiB of it cost: PerHour =
// vCPUs x PerVCPUHour + GiB x PerGiBHour, over the node's capacity. A pod costs what it
// requests at those rates (Of), so the pods of a full node add up to what the node costs.
type Price struct {
	// Source is PriceFromLabel, PriceFromTable or PriceUnknown (the rest is then zero).
	Source      string
	PerHour     float64
	PerVCPUHour float64
	PerGiBHour  float64
}

// Known reports whether the price is known.
func (p Price) Known() bool { return p.Source != PriceUnknown && p.Source != "" }

// Of is the price per hour of cpu cores and memGiB GiB at the node's rates.
func (p Price) Of(cpu, memGiB float64) float64 { return cpu*p.PerVCPUHour + memGiB*p.PerGiBHour }

// priceEntry is a compiled row of the price table.
type priceEntry struct {
	tier                    int
	instanceType, zone      string
	perVCPUHour, perGiBHour float64
}

// specificity: an entry naming an instance type and a zone beats one naming either, which
// beats one naming the tier only.
func (e priceEntry) specificity() int {
	n := 0
	if e.instanceType != "" {
		n++
	}
	if e.zone != "" {
		n++
	}
	return n
}

func (e priceEntry) matches(tier int, instanceType, zone string) bool {
	return e.tier == tier && (e.instanceType == "" || e.instanceType == instanceType) && (e.zone == "" || e.zone == zone)
}

// compilePrices turns the args' prices into the model's (validated args: every tier exists).
func (m *Model) compilePrices(p *v1alpha1.Prices) {
	if p == nil {
		return
	}
	if p.NodeLabel != nil {
		m.priceLabel = *p.NodeLabel
	}
	for _, e := range p.Table {
		for t := range m.tiers {
			if m.tiers[t].name == e.Tier {
				m.priceTable = append(m.priceTable, priceEntry{tier: t, instanceType: e.InstanceType, zone: e.Zone, perVCPUHour: e.PerVCPUHour, perGiBHour: e.PerGiBHour})
			}
		}
	}
}

// PriceLabel is the node label read for a node's price ("" reads none).
func (m *Model) PriceLabel() string { return m.priceLabel }

// ReferenceTier is the tier every saving is measured against: the default tier, the capacity
// a node is when nothing marks it otherwise (on-demand by default).
func (m *Model) ReferenceTier() int { return m.defaultTier }

// Price returns what the node costs per hour: from its price label, else from the table, else
// unknown. A label value that is not a price is named by the *wellknown.InvalidValueError
// returned with the table's price (or unknown): the caller reports it.
func (m *Model) Price(node *v1.Node) (Price, error) {
	cpu, memGiB := capacityOf(node)
	var labelErr error
	if m.priceLabel != "" {
		if v, ok := node.Labels[m.priceLabel]; ok {
			perHour, err := wellknown.ParsePrice(m.priceLabel, v)
			if err == nil {
				return m.ratesFor(node, perHour, cpu, memGiB), nil
			}
			labelErr = err
		}
	}
	return m.tablePrice(m.tierOf(node), node, cpu, memGiB), labelErr
}

// ReferencePrice returns what the node would cost on the reference tier (ReferenceTier: the
// same instance type and zone, on-demand by default): the node's own price when it is of that
// tier, else the table's, else unknown.
func (m *Model) ReferencePrice(node *v1.Node) (Price, error) {
	if m.tierOf(node) == m.defaultTier {
		return m.Price(node)
	}
	cpu, memGiB := capacityOf(node)
	return m.tablePrice(m.defaultTier, node, cpu, memGiB), nil
}

// tablePrice prices a node of the given tier from the most specific matching table entry.
func (m *Model) tablePrice(tier int, node *v1.Node, cpu, memGiB float64) Price {
	e, ok := m.entryFor(tier, node)
	if !ok {
		return Price{Source: PriceUnknown}
	}
	p := Price{Source: PriceFromTable, PerVCPUHour: e.perVCPUHour, PerGiBHour: e.perGiBHour}
	p.PerHour = p.Of(cpu, memGiB)
	return p
}

func (m *Model) entryFor(tier int, node *v1.Node) (priceEntry, bool) {
	instanceType, zone := node.Labels[v1.LabelInstanceTypeStable], node.Labels[v1.LabelTopologyZone]
	best, found := priceEntry{}, false
	for _, e := range m.priceTable {
		if e.matches(tier, instanceType, zone) && (!found || e.specificity() > best.specificity()) {
			best, found = e, true
		}
	}
	return best, found
}

// ratesFor splits a label's price per hour into rates per vCPU and per GiB: in the
// proportions of the node's table entry when it has one (so a pod's share follows the same
// split as a table-priced node's), else half for the CPUs and half for the memory.
func (m *Model) ratesFor(node *v1.Node, perHour, cpu, memGiB float64) Price {
	p := Price{Source: PriceFromLabel, PerHour: perHour}
	cpuPart := perHour / 2
	if e, ok := m.entryFor(m.tierOf(node), node); ok {
		if total := cpu*e.perVCPUHour + memGiB*e.perGiBHour; total > 0 {
			cpuPart = perHour * cpu * e.perVCPUHour / total
		}
	}
	switch {
	case cpu > 0 && memGiB > 0:
		p.PerVCPUHour, p.PerGiBHour = cpuPart/cpu, (perHour-cpuPart)/memGiB
	case cpu > 0:
		p.PerVCPUHour = perHour / cpu
	case memGiB > 0:
		p.PerGiBHour = perHour / memGiB
	}
	return p
}

// capacityOf is the node's CPU capacity in cores and memory capacity in GiB: what a provider
// bills for.
func capacityOf(node *v1.Node) (cpu, memGiB float64) {
	return Cores(node.Status.Capacity.Cpu()), GiB(node.Status.Capacity.Memory())
}

// Cores is a CPU quantity in cores.
func Cores(q *resource.Quantity) float64 { return float64(q.MilliValue()) / 1000 }

// GiB is a memory quantity in GiB.
func GiB(q *resource.Quantity) float64 { return float64(q.Value()) / gib }
