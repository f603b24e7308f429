package deletioncost

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/spot-scheduler/spot-scheduler/pkg/policy"
	"github.com/spot-scheduler/spot-scheduler/pkg/wellknown"
)

const (
	dndKey     = wellknown.KarpenterDoNotDisruptAnnotation
	dndMarkKey = wellknown.ManagedDoNotDisruptAnnotation
)

func TestDecideProtection(t *testing.T) {
	cases := []struct {
		name        string
		annotations map[string]string
		want        bool
		wantAct     action
	}{
		{"wanted, absent: set", nil, true, actionSet},
		{"wanted, ours: nothing", map[string]string{dndKey: "true", dndMarkKey: "true"}, true, actionNone},
		{"wanted, the user's: untouched", map[string]string{dndKey: "true"}, true, actionNone},
		{"wanted, the user changed ours: untouched", map[string]string{dndKey: "false", dndMarkKey: "true"}, true, actionNone},
		{"wanted, our mark without the annotation: set again", map[string]string{dndMarkKey: "true"}, true, actionSet},
		{"not wanted, ours: removed", map[string]string{dndKey: "true", dndMarkKey: "true"}, false, actionRemove},
		{"not wanted, our mark only: removed", map[string]string{dndMarkKey: "true"}, false, actionRemove},
		{"not wanted, the user's: untouched", map[string]string{dndKey: "true"}, false, actionNone},
		{"not wanted, nothing: nothing", map[string]string{"other": "x"}, false, actionNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideProtection(tc.annotations, tc.want); got != tc.wantAct {
				t.Errorf("decideProtection = %v, want %v", got, tc.wantAct)
			}
		})
	}
}

// protection reads each pod's do-not-disrupt from the API: "ours", "user:<value>" or "-".
func (h *harness) protection() map[string]string {
	h.t.Helper()
	return h.perPod(func(p *v1.Pod) string {
		value, has := p.Annotations[dndKey]
		_, marked := p.Annotations[dndMarkKey]
		switch {
		case has && marked && value == "true":
			return "ours"
		case has:
			return "user:" + value
		case marked:
			return "mark only"
		}
		return "-"
	})
}

func (h *harness) eventuallyProtected(desc string, want map[string]string) {
	h.t.Helper()
	h.eventuallyRead(desc, (*harness).protection, want)
}

// TestControllerProtectsPolicyReplicas: with an on-demand base of 2, the two on-demand
// replicas kept longest (one per node first: each on-demand node is its own pool) carry
// karpenter.sh/do-not-disrupt (Karpenter's consolidation would otherwise move them to spot,
// as it does not know the policy); a third on-demand replica and the spot ones do not. When
// a protected replica goes, the next on-demand one takes its place; a do-not-disrupt the user set is never touched; when the policy is gone, the
// controller's own are removed. Off by default (ProtectPolicyReplicas false): nothing is written.
func TestControllerProtectsPolicyReplicas(t *testing.T) {
	base := withAnnotations(policy.OnDemandBaseAnnotation, "2")
	objs := func() []runtime.Object {
		return []runtime.Object{
			node("od-1", onDemandLabel), node("od-2", onDemandLabel), spotNode("spot-1", "a"),
			pod("web-0", "od-1", 0, base), pod("web-1", "od-1", 1, base), pod("web-2", "od-2", 2, base),
			pod("web-3", "spot-1", 3, base), pod("web-4", "spot-1", 4, base),
			pod("user", "spot-1", 5, withAnnotations(policy.OnDemandBaseAnnotation, "2", dndKey, "true")),
		}
	}
	t.Run("off", func(t *testing.T) {
		h := newHarnessOptions(t, Options{}, objs()...)
		h.drain()
		for name, got := range h.protection() {
			if want := map[string]string{"user": "user:true"}[name]; got != want && !(want == "" && got == "-") {
				t.Errorf("%s: %s with the protection off", name, got)
			}
		}
	})
	h := newHarnessOptions(t, Options{ProtectPolicyReplicas: true}, objs()...)
	h.eventuallyProtected("the base held by the two on-demand replicas kept longest", map[string]string{
		"web-0": "ours", "web-1": "-", "web-2": "ours", "web-3": "-", "web-4": "-", "user": "user:true"})
	h.waitCached()
	if err := h.client.CoreV1().Pods(testNS).Delete(h.ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventuallyProtected("web-1 takes the deleted replica's place in the base", map[string]string{
		"web-1": "ours", "web-2": "ours", "web-3": "-", "web-4": "-", "user": "user:true"})
	h.waitCached()
	for _, name := range []string{"web-1", "web-2", "web-3", "web-4", "user"} {
		p, err := h.client.CoreV1().Pods(testNS).Get(h.ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		delete(p.Annotations, policy.OnDemandBaseAnnotation)
		if _, err := h.client.CoreV1().Pods(testNS).Update(h.ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h.eventuallyProtected("no policy: the controller's protections removed, the user's kept", map[string]string{
		"web-1": "-", "web-2": "-", "web-3": "-", "web-4": "-", "user": "user:true"})
}
