package wellknown

import (
	"errors"
	"testing"
)

func TestParsePrice(t *testing.T) {
	for v, want := range map[string]float64{"0.0416": 0.0416, " 1 ": 1, "0": 0, "1e-2": 0.01, "3.": 3} {
		if got, err := ParsePrice("k", v); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "-0.1", "$1", "1,5", "NaN", "Inf", "+Inf", "0x1p-3", "1e400", "cheap"} {
		_, err := ParsePrice("example.com/price", v)
		var invalid *InvalidValueError
		if !errors.As(err, &invalid) || invalid.Key != "example.com/price" || invalid.Value != v || invalid.Allowed != AllowedPriceValues || invalid.Kind != "label" {
			t.Errorf("%q: error %v, want an InvalidValueError naming the label, the value and the allowed values", v, err)
		}
	}
}
