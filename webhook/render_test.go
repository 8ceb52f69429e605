package webhook

import (
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// TestLocalConfigurations checks the rendered configurations and, through
// them, the deployed manifests: what must hold so that the webhook can never
// lock out recovery.
func TestLocalConfigurations(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nZZZ\n-----END CERTIFICATE-----\n")
	v, m, err := LocalConfigurations("../manifests", "https://127.0.0.1:19443/", ca)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "dc-webhook-local" || m.Name != "dc-webhook-local" {
		t.Errorf("names = %q, %q, want dc-webhook-local", v.Name, m.Name)
	}
	seen := sets.New[string]()
	for _, w := range v.Webhooks {
		seen.Insert(w.Name)
		if w.ClientConfig.Service != nil || w.ClientConfig.URL == nil || *w.ClientConfig.URL != "https://127.0.0.1:19443/validate" {
			t.Errorf("%s: clientConfig = %+v, want url https://127.0.0.1:19443/validate", w.Name, w.ClientConfig)
		}
		if string(w.ClientConfig.CABundle) != string(ca) {
			t.Errorf("%s: caBundle not set", w.Name)
		}
		if w.TimeoutSeconds == nil || *w.TimeoutSeconds > 2 {
			t.Errorf("%s: timeoutSeconds = %v, want at most 2", w.Name, w.TimeoutSeconds)
		}
		checkCommon(t, w.Name, w.SideEffects, w.FailurePolicy, w.NamespaceSelector, w.Rules)
	}
	for _, want := range []string{"workloads.placement.kubectl-dc.io", "kube-system.placement.kubectl-dc.io", "bindings.placement.kubectl-dc.io", "nodes.placement.kubectl-dc.io", "policies.placement.kubectl-dc.io"} {
		if !seen.Has(want) {
			t.Errorf("validating webhook %s missing", want)
		}
	}
	// Mutation fails closed where validation does (a skipped mutation
	// would be a misleading denial there) and open in kube-system.
	wantPolicy := map[string]admissionregistrationv1.FailurePolicyType{
		"workloads.placement.kubectl-dc.io":   admissionregistrationv1.Fail,
		"kube-system.placement.kubectl-dc.io": admissionregistrationv1.Ignore,
	}
	if len(m.Webhooks) != len(wantPolicy) {
		t.Fatalf("mutating webhooks = %d, want %d", len(m.Webhooks), len(wantPolicy))
	}
	for _, w := range m.Webhooks {
		want, ok := wantPolicy[w.Name]
		if !ok {
			t.Errorf("unexpected mutating webhook %s", w.Name)
			continue
		}
		if *w.ClientConfig.URL != "https://127.0.0.1:19443/mutate" {
			t.Errorf("%s: url = %s", w.Name, *w.ClientConfig.URL)
		}
		if w.TimeoutSeconds == nil || *w.TimeoutSeconds != 1 {
			t.Errorf("%s: timeoutSeconds = %v, want 1", w.Name, w.TimeoutSeconds)
		}
		if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
			t.Errorf("%s: reinvocationPolicy = %v, want IfNeeded", w.Name, w.ReinvocationPolicy)
		}
		if *w.FailurePolicy != want {
			t.Errorf("%s: failurePolicy = %s, want %s", w.Name, *w.FailurePolicy, want)
		}
		sel := w.NamespaceSelector.String()
		if want == admissionregistrationv1.Fail && !strings.Contains(sel, "kube-system") {
			t.Errorf("%s: a Fail mutation must not reach kube-system: %s", w.Name, sel)
		}
		checkCommon(t, w.Name, w.SideEffects, w.FailurePolicy, w.NamespaceSelector, w.Rules)
	}
}

func checkCommon(t *testing.T, name string, se *admissionregistrationv1.SideEffectClass, fp *admissionregistrationv1.FailurePolicyType,
	nsSel interface{ String() string }, rules []admissionregistrationv1.RuleWithOperations) {
	t.Helper()
	// Dry runs get the same answer, and change nothing: the webhooks that
	// judge member placements record them (--placement-lease), but never
	// for a dry run.
	if se == nil || (*se != admissionregistrationv1.SideEffectClassNone && *se != admissionregistrationv1.SideEffectClassNoneOnDryRun) {
		t.Errorf("%s: sideEffects = %v, want None or NoneOnDryRun", name, se)
	}
	if fp == nil {
		t.Errorf("%s: failurePolicy unset", name)
	}
	sel := nsSel.String()
	for _, r := range rules {
		for _, g := range r.APIGroups {
			if g == "coordination.k8s.io" || g == "*" {
				t.Errorf("%s: matches API group %q (leases must never be matched)", name, g)
			}
		}
		for _, res := range r.Resources {
			if strings.Contains(res, "*") {
				t.Errorf("%s: wildcard resource %q", name, res)
			}
		}
		if r.Scope != nil && *r.Scope == admissionregistrationv1.NamespacedScope &&
			!strings.Contains(sel, "dc-system") && !strings.Contains(sel, "[kube-system]") {
			t.Errorf("%s: namespaced rules do not exclude dc-system: %s", name, sel)
		}
	}
}
