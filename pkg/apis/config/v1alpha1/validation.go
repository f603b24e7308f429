package v1alpha1

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MaxTiers bounds the tier list: the scheduler splits its 0-100 score into two bands per tier
// (healthy and at risk), and each band needs room for the spread bonus.
const MaxTiers = 10

// atRiskPrefixSuffix marks a TaintMatch key that matches every taint under a prefix.
const atRiskPrefixSuffix = "/*"

var supportedSelectorOperators = []string{
	string(metav1.LabelSelectorOpIn), string(metav1.LabelSelectorOpNotIn),
	string(metav1.LabelSelectorOpExists), string(metav1.LabelSelectorOpDoesNotExist),
}

// ValidateCapacityModel checks a defaulted capacity model and returns every problem with the
// path of its field.
func ValidateCapacityModel(m *CapacityModel, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	tiersPath := path.Child("tiers")
	switch {
	case len(m.Tiers) == 0:
		errs = append(errs, field.Required(tiersPath, "at least one tier is needed, e.g. spot and on-demand"))
	case len(m.Tiers) > MaxTiers:
		errs = append(errs, field.TooMany(tiersPath, len(m.Tiers), MaxTiers))
	}
	names := sets.New[string]()
	for i := range m.Tiers {
		t := &m.Tiers[i]
		p := tiersPath.Index(i)
		for _, msg := range validation.IsDNS1123Label(t.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), t.Name, msg))
		}
		if names.Has(t.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), t.Name))
		}
		names.Insert(t.Name)
		if t.Name != m.DefaultTier && len(t.NodeSelectors) == 0 && len(t.TaintKeys) == 0 {
			errs = append(errs, field.Required(p.Child("nodeSelectors"),
				fmt.Sprintf("tier %q matches no node: give nodeSelectors or taintKeys, or make it the defaultTier", t.Name)))
		}
		for j := range t.NodeSelectors {
			errs = append(errs, validateSelector(&t.NodeSelectors[j], p.Child("nodeSelectors").Index(j))...)
		}
		for j, key := range t.TaintKeys {
			for _, msg := range validation.IsQualifiedName(key) {
				errs = append(errs, field.Invalid(p.Child("taintKeys").Index(j), key, msg))
			}
		}
	}
	if m.DefaultTier == "" {
		errs = append(errs, field.Required(path.Child("defaultTier"), "the tier of nodes no tier matches"))
	} else if len(m.Tiers) > 0 && !names.Has(m.DefaultTier) {
		errs = append(errs, field.NotSupported(path.Child("defaultTier"), m.DefaultTier, sets.List(names)))
	}
	for i, t := range m.AtRiskTaints {
		errs = append(errs, validateTaintMatch(t, path.Child("atRiskTaints").Index(i).Child("key"))...)
	}
	errs = append(errs, validateLabelKeys(m.PoolLabelKeys, path.Child("poolLabelKeys"))...)
	errs = append(errs, validateLabelKeys(m.PoolTopologyKeys, path.Child("poolTopologyKeys"))...)
	errs = append(errs, ValidateCapacityPolicy(m.DefaultCapacityPolicy, path.Child("defaultCapacityPolicy"))...)
	errs = append(errs, ValidatePrices(m.Prices, names, path.Child("prices"))...)
	errs = append(errs, ValidateReclaimHistory(m.ReclaimHistory, path.Child("reclaimHistory"))...)
	return errs
}

func validateSelector(s *metav1.LabelSelector, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
		errs = append(errs, field.Required(path, "an empty selector would match every node: give matchLabels or matchExpressions"))
	}
	// Unknown operators are reported below with the list of allowed ones.
	opts := metav1validation.LabelSelectorValidationOptions{AllowUnknownOperatorInRequirement: true}
	errs = append(errs, metav1validation.ValidateLabelSelector(s, opts, path)...)
	for i, r := range s.MatchExpressions {
		if !sets.New(supportedSelectorOperators...).Has(string(r.Operator)) {
			errs = append(errs, field.NotSupported(path.Child("matchExpressions").Index(i).Child("operator"), r.Operator, supportedSelectorOperators))
		}
	}
	return errs
}

func validateTaintMatch(t TaintMatch, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if prefix, ok := strings.CutSuffix(t.Key, atRiskPrefixSuffix); ok {
		for _, msg := range validation.IsDNS1123Subdomain(prefix) {
			errs = append(errs, field.Invalid(path, t.Key, "prefix before /*: "+msg))
		}
		return errs
	}
	for _, msg := range validation.IsQualifiedName(t.Key) {
		errs = append(errs, field.Invalid(path, t.Key, msg+` (or a prefix ending in "/*")`))
	}
	return errs
}

func validateLabelKeys(keys []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, k := range keys {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(path.Index(i), k, msg))
		}
		if seen.Has(k) {
			errs = append(errs, field.Duplicate(path.Index(i), k))
		}
		seen.Insert(k)
	}
	return errs
}

// ValidateSpotScoreArgs checks defaulted SpotScore args.
func ValidateSpotScoreArgs(args *SpotScoreArgs, path *field.Path) field.ErrorList {
	errs := validateTypeMeta(args.TypeMeta, "SpotScoreArgs", path)
	errs = append(errs, ValidateCapacityModel(&args.CapacityModel, path)...)
	if w := args.SpreadWeight; w != nil && (*w < 0 || *w > 99) {
		errs = append(errs, field.Invalid(path.Child("spreadWeight"), *w, "must be between 0 and 99 (percent of a tier's score band)"))
	}
	return errs
}

func validateTypeMeta(tm metav1.TypeMeta, kind string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if tm.APIVersion != "" && tm.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(path.Child("apiVersion"), tm.APIVersion, []string{APIVersion}))
	}
	if tm.Kind != "" && tm.Kind != kind {
		errs = append(errs, field.NotSupported(path.Child("kind"), tm.Kind, []string{kind}))
	}
	return errs
}

// HighestUserDefinablePriority is the highest priority a PriorityClass outside the system range may have.
const HighestUserDefinablePriority int32 = 1_000_000_000

// ValidatePlaceholderPreemptionArgs checks defaulted PlaceholderPreemption args.
func ValidatePlaceholderPreemptionArgs(args *PlaceholderPreemptionArgs, path *field.Path) field.ErrorList {
	errs := validateTypeMeta(args.TypeMeta, "PlaceholderPreemptionArgs", path)
	if args.PlaceholderSelector != nil {
		errs = append(errs, validateSelector(args.PlaceholderSelector, path.Child("placeholderSelector"))...)
	}
	if p := args.PlaceholderPriorityBelow; p != nil && *p > HighestUserDefinablePriority {
		errs = append(errs, field.Invalid(path.Child("placeholderPriorityBelow"), *p,
			fmt.Sprintf("must be at most %d: real workloads' priorities would count as placeholders", HighestUserDefinablePriority)))
	}
	return errs
}
