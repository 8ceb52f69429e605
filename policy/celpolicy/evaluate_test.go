package celpolicy_test

import (
	"context"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy/celtest"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// TestMutatingBindingSelectsCarriers: with one datacenterFromLabel key on
// a datacenter label, the API server is told to skip, by labels alone,
// every object that does not carry it; with two keys no selector can say
// "either", and the binding selects every object.
func TestMutatingBindingSelectsCarriers(t *testing.T) {
	set, err := celpolicy.Compile(celtest.Policies(), celpolicy.Options{Nodes: celtest.Nodes()})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range set.MutatingBindings {
		sel := b.Spec.MatchResources.ObjectSelector
		if sel == nil || len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Operator != metav1.LabelSelectorOpExists {
			t.Fatalf("%s selects objects %v, want those with the datacenterFromLabel key", b.Name, sel)
		}
	}

	two := testutil.Policy("two").Datacenters("pod-1", "pod-2").Pinned(
		testutil.PinnedRule("a").MatchLabels("app", "a").FromLabel(celtest.FromDC),
		testutil.PinnedRule("b").MatchLabels("app", "b").FromLabel(celtest.FromSite),
	).Value()
	set, err = celpolicy.Compile([]v1alpha1.PlacementPolicy{two}, celpolicy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.MutatingBindings) != 1 || set.MutatingBindings[0].Spec.MatchResources.ObjectSelector != nil {
		t.Fatalf("two datacenterFromLabel keys on one label: bindings %+v, want one selecting every object", set.MutatingBindings)
	}
	e, err := celpolicy.NewEvaluator(set)
	if err != nil {
		t.Fatal(err)
	}
	ns := testutil.Namespace("plain")
	for _, key := range []string{celtest.FromDC, celtest.FromSite} {
		app := map[string]string{celtest.FromDC: "a", celtest.FromSite: "b"}[key]
		pod := testutil.Pod("plain", "p").Labels("app", app, key, "pod-2").Pod()
		out, _, err := e.Admit(context.Background(), admission.Create, pod, nil, ns)
		if err != nil {
			t.Fatal(err)
		}
		if got := celtest.NodeSelectorOf(out)[testutil.Zone]; got != "pod-2" {
			t.Errorf("a pod labelled %s=pod-2 got nodeSelector %q, want pod-2 injected", key, got)
		}
	}
}

// TestEvaluatorBindingSelectors: the Evaluator applies a binding's
// selectors as the API server does: the namespace's labels, and the
// object's or, on an update, the old object's labels.
func TestEvaluatorBindingSelectors(t *testing.T) {
	fail := admissionregistrationv1.Fail
	rules := []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}}
	set := &celpolicy.Set{
		Validating: []admissionregistrationv1.ValidatingAdmissionPolicy{{
			ObjectMeta: metav1.ObjectMeta{Name: "refuse-all"},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				FailurePolicy:    &fail,
				MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: rules},
				Validations:      []admissionregistrationv1.Validation{{Expression: "false", Message: "refused"}},
			},
		}},
		ValidatingBindings: []admissionregistrationv1.ValidatingAdmissionPolicyBinding{{
			ObjectMeta: metav1.ObjectMeta{Name: "refuse-all"},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        "refuse-all",
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
				MatchResources: &admissionregistrationv1.MatchResources{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
					ObjectSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
				},
			},
		}},
	}
	e, err := celpolicy.NewEvaluator(set)
	if err != nil {
		t.Fatal(err)
	}
	prod, dev := testutil.Namespace("prod", "env", "prod"), testutil.Namespace("dev", "env", "dev")
	x := testutil.Pod("prod", "p").Labels("app", "x").Pod()
	y := testutil.Pod("prod", "p").Labels("app", "y").Pod()
	for _, tc := range []struct {
		name    string
		op      admission.Operation
		obj     runtime.Object
		old     runtime.Object
		ns      *corev1.Namespace
		refused bool
	}{
		{"selected object in a selected namespace", admission.Create, x, nil, prod, true},
		{"selected object elsewhere", admission.Create, x, nil, dev, false},
		{"other object", admission.Create, y, nil, prod, false},
		{"relabelled away: the old object is selected", admission.Update, y, x, prod, true},
		{"relabelled into the selector", admission.Update, x, y, prod, true},
	} {
		vs, err := e.Validate(context.Background(), tc.op, tc.obj, tc.old, tc.ns)
		if err != nil {
			t.Fatal(err)
		}
		if (len(vs) > 0) != tc.refused {
			t.Errorf("%s: verdicts %v, want refused %v", tc.name, vs, tc.refused)
		}
	}
}
