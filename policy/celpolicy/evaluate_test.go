package celpolicy_test

import (
	"context"
	"fmt"
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

// TestMutatingPolicySelectsCarriers: with one datacenterFromLabel key on
// a datacenter label, the API server is told to skip, by labels alone,
// every object that does not carry it, in the policy's own matchConstraints
// (read before the binding's namespaceSelector); with two keys no selector
// can say "either", and the policy selects every object.
func TestMutatingPolicySelectsCarriers(t *testing.T) {
	set, err := celpolicy.Compile(celtest.Policies(), celpolicy.Options{Nodes: celtest.Nodes()})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range set.Mutating {
		sel := p.Spec.MatchConstraints.ObjectSelector
		if sel == nil || len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Operator != metav1.LabelSelectorOpExists {
			t.Fatalf("%s selects objects %v, want those with the datacenterFromLabel key", p.Name, sel)
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
	if len(set.Mutating) != 1 || set.Mutating[0].Spec.MatchConstraints.ObjectSelector != nil {
		t.Fatalf("two datacenterFromLabel keys on one label: policies %+v, want one selecting every object", set.Mutating)
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

// TestEvaluatorBindingSelectors: the Evaluator applies the selectors of a
// policy's matchConstraints and of each of its bindings as the API server
// does: the resources, the namespace's labels, and the object's or, on an
// update, the old object's labels; a policy is evaluated once per binding
// that selects the request.
func TestEvaluatorBindingSelectors(t *testing.T) {
	fail := admissionregistrationv1.Fail
	rule := func(group string, resources ...string) admissionregistrationv1.NamedRuleWithOperations {
		return admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources},
		}}
	}
	pods, deployments := rule("", "pods"), rule("apps", "deployments")
	set := &celpolicy.Set{
		Validating: []admissionregistrationv1.ValidatingAdmissionPolicy{{
			ObjectMeta: metav1.ObjectMeta{Name: "refuse-all"},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				FailurePolicy: &fail,
				MatchConstraints: &admissionregistrationv1.MatchResources{
					ResourceRules:  []admissionregistrationv1.NamedRuleWithOperations{pods, deployments},
					ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"skipped"}}}},
				},
				Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "refused"}},
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
					ResourceRules:     []admissionregistrationv1.NamedRuleWithOperations{pods},
				},
			},
		}, {
			ObjectMeta: metav1.ObjectMeta{Name: "refuse-all.deployments"},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        "refuse-all",
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn},
				MatchResources:    &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{deployments}},
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
	skipped := testutil.Pod("prod", "p").Labels("app", "x", "tier", "skipped").Pod()
	d := testutil.Deployment("dev", "d").Labels("app", "y").Deployment()
	for _, tc := range []struct {
		name    string
		op      admission.Operation
		obj     runtime.Object
		old     runtime.Object
		ns      *corev1.Namespace
		actions string // the verdicts' actions, "" when admitted
	}{
		{"selected object in a selected namespace", admission.Create, x, nil, prod, "[Deny]"},
		{"selected object elsewhere", admission.Create, x, nil, dev, ""},
		{"other object", admission.Create, y, nil, prod, ""},
		{"relabelled away: the old object is selected", admission.Update, y, x, prod, "[Deny]"},
		{"relabelled into the selector", admission.Update, x, y, prod, "[Deny]"},
		{"the policy's objectSelector skips it", admission.Create, skipped, nil, prod, ""},
		{"a deployment: the other binding alone", admission.Create, d, nil, dev, "[Warn]"},
	} {
		vs, err := e.Validate(context.Background(), tc.op, tc.obj, tc.old, tc.ns)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, v := range vs {
			actions = append(actions, string(v.Action))
		}
		if got := fmt.Sprint(actions); (len(vs) == 0 && tc.actions != "") || (len(vs) > 0 && got != tc.actions) {
			t.Errorf("%s: verdicts %v, want actions %q", tc.name, vs, tc.actions)
		}
	}
}
