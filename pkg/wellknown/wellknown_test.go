package wellknown

import (
	"errors"
	"strings"
	"testing"
)

func TestParseBool(t *testing.T) {
	tests := []struct {
		in        string
		value, ok bool
	}{
		{"true", true, true}, {"True", true, true}, {"TRUE", true, true}, {" true ", true, true},
		{"false", false, true}, {"False", false, true}, {"FALSE", false, true}, {"\tfalse", false, true},
		{"yes", false, false}, {"no", false, false}, {"1", false, false}, {"0", false, false},
		{"", false, false}, {"t", false, false}, {"truee", false, false}, {"on", false, false},
	}
	for _, tc := range tests {
		value, ok := ParseBool(tc.in)
		if value != tc.value || ok != tc.ok {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, %v", tc.in, value, ok, tc.value, tc.ok)
		}
	}
}

// TestBoolRead: absent gives the default, a boolean in any letter case its value, anything
// else the cautious reading and an error naming the key, the value, the allowed values and
// what the product does.
func TestBoolRead(t *testing.T) {
	for _, b := range PodBools {
		t.Run(b.Key, func(t *testing.T) {
			if v, err := b.Read(nil); v != b.Default || err != nil {
				t.Errorf("absent: %v, %v; want the default %v", v, err, b.Default)
			}
			for in, want := range map[string]bool{"TRUE": true, "False": false} {
				if v, err := b.Read(map[string]string{b.Key: in}); v != want || err != nil {
					t.Errorf("%q: %v, %v; want %v", in, v, err, want)
				}
			}
			v, err := b.Read(map[string]string{b.Key: "yes"})
			if v != b.Cautious {
				t.Errorf(`"yes" read as %v, want the cautious %v`, v, b.Cautious)
			}
			var invalid *InvalidValueError
			if !errors.As(err, &invalid) {
				t.Fatalf(`"yes": error %v, want an *InvalidValueError`, err)
			}
			for _, want := range []string{b.Kind + " " + b.Key + `="yes" is invalid`, AllowedBoolValues, b.Meaning} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestCautiousReadings(t *testing.T) {
	// An unreadable opt-out keeps movers away; an unreadable avoid-spot avoids spot; an
	// unreadable placeholder label makes no placeholder (never preempted as one).
	for b, want := range map[*Bool]bool{&AvoidSpot: true, &Rebalance: false, &DoNotDisrupt: true, &SafeToEvict: false, &Placeholder: false} {
		if b.Cautious != want {
			t.Errorf("%s: cautious reading %v, want %v", b.Key, b.Cautious, want)
		}
	}
}

func TestPlaceholderLabels(t *testing.T) {
	tests := []struct {
		in      map[string]string
		want    string // the placeholder label's value after reading; "-" when absent
		invalid bool
	}{
		{map[string]string{"app": "x"}, "-", false},
		{map[string]string{PlaceholderLabel: "true"}, "true", false},
		{map[string]string{PlaceholderLabel: "True"}, "true", false},
		{map[string]string{PlaceholderLabel: "FALSE"}, "false", false},
		{map[string]string{PlaceholderLabel: "yes", "app": "x"}, "-", true},
	}
	for _, tc := range tests {
		got, err := PlaceholderLabels(tc.in)
		v, ok := got[PlaceholderLabel]
		if !ok {
			v = "-"
		}
		if v != tc.want || (err != nil) != tc.invalid {
			t.Errorf("PlaceholderLabels(%v) = %v, %v; want the label %q, invalid %v", tc.in, got, err, tc.want, tc.invalid)
		}
		if tc.in["app"] != got["app"] {
			t.Errorf("PlaceholderLabels(%v) lost other labels: %v", tc.in, got)
		}
	}
	in := map[string]string{PlaceholderLabel: "True"}
	_, _ = PlaceholderLabels(in)
	if in[PlaceholderLabel] != "True" {
		t.Errorf("the pod's own labels were modified: %v", in)
	}
}

func TestDisruptionBudget(t *testing.T) {
	for _, tc := range []struct {
		value   string
		desired int
		want    int
		bad     bool
	}{
		{"25%", 300, 75, false},
		{"25%", 6, 1, false},   // 1.5 rounds down
		{"25%", 3, 1, false},   // 0.75: at least one
		{" 50% ", 5, 2, false}, // spaces ignored
		{"100%", 7, 7, false},
		{"0%", 300, 0, false}, // no moves
		{"0", 300, 0, false},
		{"3", 300, 3, false},
		{"3", 2, 3, false}, // a count is a count
		{"101%", 10, 0, true},
		{"-1", 10, 0, true},
		{"-5%", 10, 0, true},
		{"a lot", 10, 0, true},
		{"", 10, 0, true},
		{"2.5", 10, 0, true},
	} {
		b, err := ParseDisruptionBudget(tc.value)
		if (err != nil) != tc.bad {
			t.Errorf("ParseDisruptionBudget(%q) error %v, want error %v", tc.value, err, tc.bad)
			continue
		}
		if err == nil {
			if got := DisruptionBudget(b, tc.desired); got != tc.want {
				t.Errorf("DisruptionBudget(%q, %d) = %d, want %d", tc.value, tc.desired, got, tc.want)
			}
		}
	}
}
