package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/spot-scheduler/spot-scheduler/pkg/explain"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
	"github.com/spot-scheduler/spot-scheduler/test/framework"
)

// Every boolean annotation and label of docs/operations.md's table, with good and bad values,
// on a real control plane: booleans in any letter case are understood; any other value gives
// the pod a Warning event naming the key, the value and the allowed values, and the product
// takes the cautious reading; explain shows the reading.

// waitInvalidValueEvent waits for a Warning InvalidValue event on the pod whose name starts
// with podPrefix that names key, value and the allowed values, and returns its message.
func waitInvalidValueEvent(env *framework.Env, podPrefix, key, value string) string {
	env.T.Helper()
	var msg string
	env.WaitFor(fmt.Sprintf("InvalidValue event on %s* naming %s=%q", podPrefix, key, value), 60*time.Second, func(ctx context.Context) (bool, error) {
		for _, e := range env.Events(ns, "reason="+wellknown.InvalidValueReason) {
			if !strings.HasPrefix(e.InvolvedObject.Name, podPrefix) {
				continue
			}
			if e.Type != v1.EventTypeWarning || !strings.Contains(e.Message, key+"="+fmt.Sprintf("%q", value)) || !strings.Contains(e.Message, wellknown.AllowedBoolValues) {
				return false, fmt.Errorf("event on %s: %s %q does not name %s=%q and the allowed values", e.InvolvedObject.Name, e.Type, e.Message, key, value)
			}
			msg = e.Message
			return true, nil
		}
		return false, nil
	})
	return msg
}

// noInvalidValueEvent fails when a pod whose name starts with podPrefix got an InvalidValue event.
func noInvalidValueEvent(env *framework.Env, podPrefix string) {
	env.T.Helper()
	for _, e := range env.Events(ns, "reason="+wellknown.InvalidValueReason) {
		if strings.HasPrefix(e.InvolvedObject.Name, podPrefix) {
			env.T.Errorf("InvalidValue event on %s for a boolean value: %q", e.InvolvedObject.Name, e.Message)
		}
	}
}

func explainReadings(env *framework.Env, pod string) []explain.Reading {
	env.T.Helper()
	var report explain.PodReport
	if err := json.Unmarshal([]byte(runExplain(env, "pod", ns+"/"+pod, "-o", "json")), &report); err != nil {
		env.T.Fatal(err)
	}
	return report.Readings
}

// TestAnnotationValuesPlacement: avoid-spot "TRUE" and "yes" (unreadable: avoid) put the pod
// on on-demand, "False" on spot; only "yes" gets the Warning; explain shows each reading.
func TestAnnotationValuesPlacement(t *testing.T) {
	env := startWithScheduler(t, false)
	env.CreateNodes(framework.Node("spot-1", "8", framework.SpotLabels), framework.Node("ondemand-1", "8", framework.OnDemandLabels))
	want := map[string]struct {
		value, node string
		reading     bool
	}{
		"avoid-upper": {"TRUE", "ondemand-1", true},
		"avoid-false": {"False", "spot-1", false},
		"avoid-yes":   {"yes", "ondemand-1", true},
	}
	for name, w := range want {
		p := framework.Pod(ns, name, "100m", nil)
		p.Annotations = map[string]string{wellknown.AvoidSpotAnnotation: w.value}
		if got := createPod(env, p); got != w.node {
			t.Errorf("%s (avoid-spot=%q) bound to %s, want %s", name, w.value, got, w.node)
		}
	}
	msg := waitInvalidValueEvent(env, "avoid-yes", wellknown.AvoidSpotAnnotation, "yes")
	if !strings.Contains(msg, `read as "true"`) {
		t.Errorf("event %q does not say the value is read as true", msg)
	}
	noInvalidValueEvent(env, "avoid-upper")
	noInvalidValueEvent(env, "avoid-false")
	for name, w := range want {
		r := explainReadings(env, name)
		if len(r) != 1 || r[0].Key != wellknown.AvoidSpotAnnotation || r[0].Value != w.value || r[0].Reading != w.reading || (r[0].Invalid != "") != (w.value == "yes") {
			t.Errorf("explain %s readings %+v, want %s=%q read as %v", name, r, wellknown.AvoidSpotAnnotation, w.value, w.reading)
		}
	}
	table := runExplain(env, "pod", ns+"/avoid-yes")
	if !strings.Contains(table, `annotation spot-scheduler.io/avoid-spot="yes" read as true (not a boolean`) {
		t.Errorf("explain table does not show the reading:\n%s", table)
	}
}

// TestAnnotationValuesPlaceholder: a pod labelled placeholder "True" is a placeholder (a real
// pod preempts it); one labelled "yes" is not (never preempted; Warning event), so the real pod
// that needs its room stays Pending. Both run at a low positive priority (batch), so only the
// label can make them placeholders (a negative priority would, whatever the label).
func TestAnnotationValuesPlaceholder(t *testing.T) {
	env := startPlaceholderOnlyScheduler(t)
	env.CreateNodes(framework.Node("spot-1", "2", framework.SpotLabels))
	holder := framework.Pod(ns, "hold-upper", "1500m", map[string]string{wellknown.PlaceholderLabel: "True"})
	holder.Spec.PriorityClassName = batchClass
	createPod(env, holder)
	first := framework.Pod(ns, "real-1", "1", nil)
	first.Spec.PriorityClassName = criticalClass
	if got := createPod(env, first); got != "spot-1" {
		t.Fatalf("real-1 bound to %s", got)
	}
	env.WaitFor("the placeholder labelled True preempted", 30*time.Second, func(context.Context) (bool, error) {
		return !podExists(env, "hold-upper"), nil
	})
	noInvalidValueEvent(env, "hold-upper")
	deletePod(env, "real-1")

	unreadable := framework.Pod(ns, "hold-yes", "1500m", map[string]string{wellknown.PlaceholderLabel: "yes"})
	unreadable.Spec.PriorityClassName = batchClass
	createPod(env, unreadable)
	msg := waitInvalidValueEvent(env, "hold-yes", wellknown.PlaceholderLabel, "yes")
	if !strings.Contains(msg, "not a placeholder") {
		t.Errorf("event %q does not say the pod is not a placeholder", msg)
	}
	createUnschedulable(env, "real-2", "1", criticalClass)
	if !podExists(env, "hold-yes") {
		t.Fatal("a pod whose placeholder label is not a boolean was preempted")
	}
	r := explainReadings(env, "hold-yes")
	if len(r) != 1 || r[0].Key != wellknown.PlaceholderLabel || r[0].Reading || r[0].Invalid == "" {
		t.Errorf("explain readings %+v, want the placeholder label read as false and named invalid", r)
	}
}

// TestAnnotationValuesRebalancer: with spot room free, the rebalancer moves the pods whose
// opt-outs say "move" in any letter case, and leaves every pod whose opt-out says "stay" or is
// unreadable, giving the unreadable ones a Warning event; explain shows the verdicts.
func TestAnnotationValuesRebalancer(t *testing.T) {
	env := startWithScheduler(t, true)
	env.CreateNodes(framework.Node("ondemand-1", "16", framework.OnDemandLabels))
	workloads := []struct {
		app, key, value string
		moves           bool
	}{
		{"rb-upper-true", wellknown.RebalanceAnnotation, "TRUE", true},
		{"rb-false", wellknown.RebalanceAnnotation, "False", false},
		{"rb-no", wellknown.RebalanceAnnotation, "no", false},
		{"dnd-false", wellknown.KarpenterDoNotDisruptAnnotation, "False", true},
		{"dnd-yes", wellknown.KarpenterDoNotDisruptAnnotation, "yes", false},
		{"ste-true", wellknown.AutoscalerSafeToEvictAnnotation, "True", true},
		{"ste-zero", wellknown.AutoscalerSafeToEvictAnnotation, "0", false},
	}
	for _, w := range workloads {
		d := framework.Deployment(ns, w.app, 1, "500m")
		d.Spec.Template.Annotations = map[string]string{w.key: w.value}
		createDeployment(env, d)
	}
	for _, w := range workloads {
		waitRunningOn(env, w.app, 1, "ondemand-1")
	}
	env.CreateNodes(framework.Node("spot-1", "16", framework.SpotLabels))
	startRebalancer(env, "--rebalance-interval=500ms")
	for _, w := range workloads {
		if w.moves {
			waitRunningOn(env, w.app, 1, "spot-1")
		} else {
			waitInvalidValueOrNothing(env, w.app, w.key, w.value)
		}
	}
	// The pods that stay: still on on-demand, never evicted, and explain says why.
	moved := rebalancedEvents(env)
	for _, w := range workloads {
		if w.moves {
			continue
		}
		waitRunningOn(env, w.app, 1, "ondemand-1")
		for pod := range moved {
			if strings.HasPrefix(pod, w.app+"-") {
				t.Errorf("%s (%s=%q) was evicted: %s", pod, w.key, w.value, moved[pod])
			}
		}
		pod := podsOf(env, "app="+w.app)[0]
		var report explain.PodReport
		if err := json.Unmarshal([]byte(runExplain(env, "pod", ns+"/"+pod.Name, "-o", "json")), &report); err != nil {
			t.Fatal(err)
		}
		if report.Rebalance.Action != "stay" {
			t.Errorf("explain %s: rebalance verdict %+v, want stay", pod.Name, report.Rebalance)
		}
		if len(report.Readings) != 1 || report.Readings[0].Key != w.key || report.Readings[0].Value != w.value {
			t.Errorf("explain %s readings %+v, want %s=%q", pod.Name, report.Readings, w.key, w.value)
		}
	}
	for _, w := range workloads {
		if _, ok := wellknown.ParseBool(w.value); ok {
			noInvalidValueEvent(env, w.app+"-")
		}
	}
}

// waitInvalidValueOrNothing waits, for a workload whose opt-out value is unreadable, for its
// Warning event; for a readable "stay" value there is nothing to wait for.
func waitInvalidValueOrNothing(env *framework.Env, app, key, value string) {
	env.T.Helper()
	if _, ok := wellknown.ParseBool(value); ok {
		return
	}
	msg := waitInvalidValueEvent(env, app+"-", key, value)
	if !strings.Contains(msg, "does not move") {
		env.T.Errorf("event %q does not say the pod is not moved", msg)
	}
}

// TestAnnotationValuesNodeLabels: the capacity model's node labels and taints. A tier label
// with a value no tier expects ("SPOT" where Karpenter writes "spot") puts the node in the
// default tier (on-demand), which explain shows; an at-risk taint marks the node at risk
// whatever its value and effect; a pool label takes any value as the pool's name.
func TestAnnotationValuesNodeLabels(t *testing.T) {
	env := startWithScheduler(t, false)
	odd := framework.Node("odd-1", "8", map[string]string{"karpenter.sh/capacity-type": "SPOT"})
	risky := framework.Node("spot-2", "8", framework.Labels(framework.SpotLabels, map[string]string{"karpenter.sh/nodepool": "Any.Name_1"}),
		v1.Taint{Key: "karpenter.sh/disrupted", Value: "whatever", Effect: v1.TaintEffectPreferNoSchedule})
	env.CreateNodes(framework.Node("spot-1", "1", framework.SpotLabels), odd, risky)
	if got := createPod(env, framework.Pod(ns, "first", "1", nil)); got != "spot-1" {
		t.Fatalf("first bound to %s, want the healthy spot node", got)
	}
	if got := createPod(env, framework.Pod(ns, "second", "1", nil)); got != "odd-1" {
		t.Fatalf("second bound to %s, want odd-1 (on-demand by the default tier) before the at-risk spot node", got)
	}
	var report explain.PodReport
	if err := json.Unmarshal([]byte(runExplain(env, "pod", ns+"/second", "-o", "json")), &report); err != nil {
		t.Fatal(err)
	}
	for _, n := range report.Evaluation.Nodes {
		switch n.Node {
		case "odd-1":
			if n.Tier != "on-demand" || n.AtRisk {
				t.Errorf("explain odd-1: tier %s at risk %v, want on-demand (the default tier), healthy", n.Tier, n.AtRisk)
			}
		case "spot-2":
			if n.Tier != "spot" || !n.AtRisk || n.RiskReason != "karpenter.sh/disrupted" || !strings.Contains(n.Pool, "Any.Name_1") {
				t.Errorf("explain spot-2: %+v, want spot, at risk by karpenter.sh/disrupted, pool named by its label", n)
			}
		}
	}
}
