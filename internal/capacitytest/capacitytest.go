// Package capacitytest builds capacity models for tests of the packages the capacity model
// feeds (internal/testobj cannot serve them: it imports the scheduler, and so most of them).
package capacitytest

import (
	"testing"

	"github.com/spot-scheduler/spot-scheduler/pkg/apis/config/v1alpha1"
	"github.com/spot-scheduler/spot-scheduler/pkg/capacity"
)

// DefaultModel is the capacity model of the defaults (SpotScore's args with nothing set).
func DefaultModel(t testing.TB) *capacity.Model {
	t.Helper()
	return Model(t, v1alpha1.CapacityModel{})
}

// Model is the capacity model of cfg, its unset fields defaulted.
func Model(t testing.TB, cfg v1alpha1.CapacityModel) *capacity.Model {
	t.Helper()
	v1alpha1.SetDefaultsCapacityModel(&cfg)
	m, err := capacity.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
