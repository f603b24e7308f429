package v1alpha1

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// decodeStrict fills into from the args the kube-scheduler hands an out-of-tree plugin
// (runtime.Unknown, JSON or YAML) and rejects unknown fields, so a misspelt field fails
// start-up instead of being ignored. nil args leave into untouched (all defaults).
func decodeStrict(obj runtime.Object, into any) error {
	switch o := obj.(type) {
	case nil:
		return nil
	case *runtime.Unknown:
		if len(o.Raw) == 0 {
			return nil
		}
		// YAML is a superset of JSON: convert (rejecting duplicate keys), then decode strictly
		// so that unknown fields are reported with their full path.
		data, err := yaml.YAMLToJSONStrict(o.Raw)
		if err != nil {
			return err
		}
		strictErrs, err := kjson.UnmarshalStrict(data, into)
		if err != nil {
			return err
		}
		return errors.Join(strictErrs...)
	default:
		return fmt.Errorf("want args as runtime.Unknown, got %T", obj)
	}
}

// decodeArgs is the one path every plugin's args take: strict decoding, defaults, validation.
func decodeArgs[T any](obj runtime.Object, path *field.Path, setDefaults func(*T), validate func(*T, *field.Path) field.ErrorList) (*T, error) {
	args := new(T)
	if err := decodeStrict(obj, args); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	setDefaults(args)
	if errs := validate(args, path); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return args, nil
}

// DecodeSpotScoreArgs returns defaulted, validated SpotScore args from the plugin's
// pluginConfig args (nil means all defaults). path is the field path used in errors.
func DecodeSpotScoreArgs(obj runtime.Object, path *field.Path) (*SpotScoreArgs, error) {
	return decodeArgs(obj, path, SetDefaultsSpotScoreArgs, ValidateSpotScoreArgs)
}

// DecodePlaceholderPreemptionArgs returns defaulted, validated PlaceholderPreemption args.
func DecodePlaceholderPreemptionArgs(obj runtime.Object, path *field.Path) (*PlaceholderPreemptionArgs, error) {
	return decodeArgs(obj, path, SetDefaultsPlaceholderPreemptionArgs, ValidatePlaceholderPreemptionArgs)
}
