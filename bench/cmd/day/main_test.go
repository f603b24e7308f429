package main

import (
	"strings"
	"testing"
)

func TestParseChains(t *testing.T) {
	for _, tc := range []struct {
		flag    string
		want    map[string]int
		wantErr string
	}{
		{flag: "2,karpenter=4", want: map[string]int{"karpenter": 4, "spot-scheduler": 2, "aks-recipe": 2}},
		{flag: "3", want: map[string]int{"karpenter": 3, "spot-scheduler": 3}},
		{flag: "spot-scheduler=2", want: map[string]int{"karpenter": 1, "spot-scheduler": 2}},
		{flag: "0", wantErr: "at least 1"},
		{flag: "karpenter=x", wantErr: "strategy=count"},
		{flag: "nope=2", wantErr: "nope"},
	} {
		got, err := parseChains(tc.flag)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--chains") {
				t.Errorf("%q: error %v, want one naming --chains and %q", tc.flag, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.flag, err)
		}
		for strategy, n := range tc.want {
			if got(strategy) != n {
				t.Errorf("%q: %s gets %d chains, want %d", tc.flag, strategy, got(strategy), n)
			}
		}
	}
}
