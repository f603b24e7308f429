package v1alpha1

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Bounds of the capacity policy's values (args and pod annotations alike).
const (
	MaxOnDemandBase = 100000
	MaxPoolCount    = 100000
)

// Allowed values of each capacity policy field, as error messages and events state them.
const (
	AllowedOnDemandBase = "an integer from 0 to 100000"
	AllowedSpotShare    = `an integer percent from 0 to 100, e.g. "75" or "75%"`
	AllowedMaxPerPool   = `a count from 1 to 100000 (e.g. "3") or a percent of the reclaimable replicas from "1%" to "100%"`
)

// ParseOnDemandBase parses an on-demand base: a decimal integer from 0 to MaxOnDemandBase.
func ParseOnDemandBase(s string) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || n < 0 || n > MaxOnDemandBase {
		return 0, fmt.Errorf("%q is not %s", s, AllowedOnDemandBase)
	}
	return int32(n), nil
}

// ParseSpotShare parses a spot share: a percent from 0 to 100, with or without "%".
func ParseSpotShare(s string) (int32, error) {
	v, _ := strings.CutSuffix(strings.TrimSpace(s), "%")
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 || n > 100 {
		return 0, fmt.Errorf("%q is not %s", s, AllowedSpotShare)
	}
	return int32(n), nil
}

// ParseMaxPerPool parses a pool cap: "K" (a count, 1..MaxPoolCount) or "Q%" (1..100). Exactly
// one of count and percent is non-zero on success.
func ParseMaxPerPool(s string) (count, percent int32, err error) {
	v := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, perr := strconv.ParseInt(p, 10, 32)
		if perr != nil || n < 1 || n > 100 {
			return 0, 0, fmt.Errorf("%q is not %s", s, AllowedMaxPerPool)
		}
		return 0, int32(n), nil
	}
	n, perr := strconv.ParseInt(v, 10, 32)
	if perr != nil || n < 1 || n > MaxPoolCount {
		return 0, 0, fmt.Errorf("%q is not %s", s, AllowedMaxPerPool)
	}
	return int32(n), 0, nil
}

// MaxPerPoolOf returns the count or percent of an args pool cap.
func MaxPerPoolOf(v intstr.IntOrString) (count, percent int32, err error) {
	if v.Type == intstr.Int {
		if v.IntVal < 1 || v.IntVal > MaxPoolCount {
			return 0, 0, fmt.Errorf("%d is not %s", v.IntVal, AllowedMaxPerPool)
		}
		return v.IntVal, 0, nil
	}
	if !strings.HasSuffix(strings.TrimSpace(v.StrVal), "%") {
		return 0, 0, fmt.Errorf("%q is not %s (a count is written as a number, not a string)", v.StrVal, AllowedMaxPerPool)
	}
	return ParseMaxPerPool(v.StrVal)
}

// ValidateCapacityPolicy checks a capacity policy of the args.
func ValidateCapacityPolicy(p *CapacityPolicy, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if p == nil {
		return nil
	}
	if b := p.OnDemandBase; b != nil && (*b < 0 || *b > MaxOnDemandBase) {
		errs = append(errs, field.Invalid(path.Child("onDemandBase"), *b, "must be "+AllowedOnDemandBase))
	}
	if s := p.SpotSharePercent; s != nil && (*s < 0 || *s > 100) {
		errs = append(errs, field.Invalid(path.Child("spotSharePercent"), *s, "must be an integer percent from 0 to 100"))
	}
	if m := p.MaxPerPool; m != nil {
		if _, _, err := MaxPerPoolOf(*m); err != nil {
			errs = append(errs, field.Invalid(path.Child("maxPerPool"), m.String(), "must be "+AllowedMaxPerPool))
		}
	}
	return errs
}
