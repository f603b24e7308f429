package v1alpha1

import (
	"fmt"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Bounds of the prices and of the reclaim history, as errors state them.
const (
	// MaxUnitPrice bounds perVCPUHour and perGiBHour: far above any list price, so that a
	// price per month or per year written by mistake is refused.
	MaxUnitPrice = 1000
	// MinReclaimWindow and MaxReclaimWindow bound the window: the history keeps a bounded
	// number of reclaims (reclaimhistory.MaxReclaims), which a longer window would not hold.
	MinReclaimWindow = time.Minute
	MaxReclaimWindow = 90 * 24 * time.Hour
	// MaxReclaimWeight bounds the weight: at 1000 % a pool reclaimed once counts each
	// replica eleven times over.
	MaxReclaimWeight = 1000
)

// Allowed values, as error messages state them.
const (
	AllowedUnitPrice     = "a number from 0 to 1000 (dollars for one vCPU or one GiB for an hour)"
	AllowedReclaimWindow = `a duration from 1m to 2160h (90 days), e.g. "168h"`
	AllowedReclaimWeight = "an integer percent from 0 to 1000"
)

// ParseReclaimWindow parses a reclaim window: a Go duration within the bounds.
func ParseReclaimWindow(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < MinReclaimWindow || d > MaxReclaimWindow {
		return 0, fmt.Errorf("%q is not %s", s, AllowedReclaimWindow)
	}
	return d, nil
}

// priceKey is what makes a price entry unique.
type priceKey struct{ tier, instanceType, zone string }

// ValidatePrices checks defaulted prices against the tier names.
func ValidatePrices(p *Prices, tiers sets.Set[string], path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if p == nil {
		return nil
	}
	if p.NodeLabel != nil && *p.NodeLabel != "" {
		for _, msg := range validation.IsQualifiedName(*p.NodeLabel) {
			errs = append(errs, field.Invalid(path.Child("nodeLabel"), *p.NodeLabel, msg+` (or "" to read no label)`))
		}
	}
	seen := map[priceKey]bool{}
	for i, e := range p.Table {
		ep := path.Child("table").Index(i)
		if !tiers.Has(e.Tier) {
			errs = append(errs, field.NotSupported(ep.Child("tier"), e.Tier, sets.List(tiers)))
		}
		for _, v := range []struct{ name, value string }{{"instanceType", e.InstanceType}, {"zone", e.Zone}} {
			for _, msg := range validation.IsValidLabelValue(v.value) {
				errs = append(errs, field.Invalid(ep.Child(v.name), v.value, msg))
			}
		}
		for _, v := range []struct {
			name  string
			value float64
		}{{"perVCPUHour", e.PerVCPUHour}, {"perGiBHour", e.PerGiBHour}} {
			if math.IsNaN(v.value) || v.value < 0 || v.value > MaxUnitPrice {
				errs = append(errs, field.Invalid(ep.Child(v.name), v.value, "must be "+AllowedUnitPrice))
			}
		}
		k := priceKey{e.Tier, e.InstanceType, e.Zone}
		if seen[k] {
			errs = append(errs, field.Duplicate(ep, fmt.Sprintf("tier %q, instanceType %q, zone %q", e.Tier, e.InstanceType, e.Zone)))
		}
		seen[k] = true
	}
	return errs
}

// ValidateReclaimHistory checks a defaulted reclaim history.
func ValidateReclaimHistory(h *ReclaimHistory, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if h == nil {
		return nil
	}
	for _, msg := range validation.IsDNS1123Label(h.Namespace) {
		errs = append(errs, field.Invalid(path.Child("namespace"), h.Namespace, msg))
	}
	for _, msg := range validation.IsDNS1123Subdomain(h.Name) {
		errs = append(errs, field.Invalid(path.Child("name"), h.Name, msg))
	}
	if _, err := ParseReclaimWindow(h.Window); err != nil {
		errs = append(errs, field.Invalid(path.Child("window"), h.Window, "must be "+AllowedReclaimWindow))
	}
	if w := h.Weight; w != nil && (*w < 0 || *w > MaxReclaimWeight) {
		errs = append(errs, field.Invalid(path.Child("weight"), *w, "must be "+AllowedReclaimWeight))
	}
	return errs
}
