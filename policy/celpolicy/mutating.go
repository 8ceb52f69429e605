package celpolicy

import (
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// injection is one pinned rule that injects nodeSelector[label] from its
// datacenterFromLabel.
type injection struct {
	rule *v1alpha1.PinnedRule
}

// The variables of a MutatingAdmissionPolicy beyond placementVariables.
const (
	varNSLabels = "namespaceLabels"
	varWant     = "want"    // the datacenter to inject, '' for none
	varPointer  = "pointer" // the JSON pointer of the pod spec
)

// mutating returns the MutatingAdmissionPolicy and binding that inject
// nodeSelector[label] as Engine.Mutate does: into a pod template that
// selects no datacenter on label (neither by nodeSelector nor by affinity),
// the value of the datacenterFromLabel label of the first rule of rules
// (in the engine's order) that matches the object, in its namespace, and
// whose label the object carries with a value.
func mutating(label string, rules []injection, kinds []policy.Kind, opts *Options) (*admissionregistrationv1.MutatingAdmissionPolicy, *admissionregistrationv1.MutatingAdmissionPolicyBinding, error) {
	want := "''"
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i].rule
		matchObj, ok1 := SelectorExpr(&r.Selector, "("+objLabels+")")
		matchTmpl, ok2 := SelectorExpr(&r.Selector, "("+tmplLabels+")")
		matchNS, ok3 := "true", true
		if r.NamespaceSelector != nil {
			matchNS, ok3 = SelectorExpr(r.NamespaceSelector, v(varNSLabels))
		}
		if !ok1 || !ok2 || !ok3 {
			return nil, nil, fmt.Errorf("pinned rule %s: a selector has an operator that is not In, NotIn, Exists or DoesNotExist", r.Name)
		}
		f := quote(r.DatacenterFromLabel)
		cond := "(" + f + " in " + objLabels + " && " + objLabels + "[" + f + "] != '' && (" + matchObj + " || " + matchTmpl + ") && " + matchNS + ")"
		want = cond + " ? " + objLabels + "[" + f + "] : " + want
	}
	vars := placementVariables(label, kinds)
	vars = append(vars,
		admissionregistrationv1.Variable{Name: varNSLabels, Expression: "namespaceObject == null ? {} : namespaceObject.metadata.?labels.orValue({})"},
		admissionregistrationv1.Variable{Name: varWant, Expression: want},
		admissionregistrationv1.Variable{Name: varPointer, Expression: specPointerExpr(kinds)},
	)
	patch := "!" + hasTemplate + " || !" + specOpt + ".hasValue() || " + v(varWant) + " == '' || " + hasNodeSelector(quote(label)) + " || " + v(varSelects) + " ? [] : " +
		specOpt + ".?nodeSelector.hasValue() ? " +
		"[JSONPatch{op: 'add', path: " + v(varPointer) + " + " + quote("/nodeSelector/"+escapePointer(label)) + ", value: " + v(varWant) + "}] : " +
		"[JSONPatch{op: 'add', path: " + v(varPointer) + " + '/nodeSelector', value: {" + quote(label) + ": " + v(varWant) + "}}]"

	// A template whose placement is unchanged by an UPDATE was admitted
	// before: the mutation leaves it alone, as the webhook does.
	changed := admissionregistrationv1.MatchCondition{Name: "update-changes-templates-or-labels", Expression: "request.operation != 'UPDATE' || " +
		"object.metadata.?labels.orValue({}) != oldObject.metadata.?labels.orValue({}) || " +
		"(" + templateExpr("object", kinds) + ") != (" + templateExpr("oldObject", kinds) + ")"}

	// Cheap conditions first: the API server runs the patch (encoding and
	// decoding the whole object) for every request that matches, so only
	// objects that carry a datacenterFromLabel value and whose template
	// has no nodeSelector on the label match.
	keys := map[string]bool{}
	var fromKeys []string
	for _, r := range rules {
		if !keys[r.rule.DatacenterFromLabel] {
			keys[r.rule.DatacenterFromLabel] = true
			fromKeys = append(fromKeys, r.rule.DatacenterFromLabel)
		}
	}
	carries := admissionregistrationv1.MatchCondition{Name: "carries-a-datacenter-from-label", Expression: quoteList(fromKeys) +
		".exists(k, k in object.metadata.?labels.orValue({}) && object.metadata.labels[k] != '')"}
	noSelector := admissionregistrationv1.MatchCondition{Name: "no-node-selector-on-the-label", Expression: "!(" + quote(label) + " in (" +
		templateExpr("object", kinds) + ").orValue({}).?spec.?nodeSelector.orValue({}))"}

	create := []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	fail := admissionregistrationv1.Fail
	name := MutatingName(label)
	// With one datacenterFromLabel key, the policy itself selects the
	// objects that carry it: the API server skips every other request
	// (most pods, every pod binding and event) by its labels, before it
	// reads the binding's namespaceSelector or builds any CEL input.
	var carriers *metav1.LabelSelector
	if len(fromKeys) == 1 {
		carriers = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: fromKeys[0], Operator: metav1.LabelSelectorOpExists}}}
	}
	m := &admissionregistrationv1.MutatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "MutatingAdmissionPolicy"},
		ObjectMeta: managedMeta(name),
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			// A pod's nodeSelector cannot change after creation.
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: resourceRules(kinds, ops, create), ObjectSelector: carriers, MatchPolicy: ptr(admissionregistrationv1.Equivalent)},
			MatchConditions: []admissionregistrationv1.MatchCondition{carries, noSelector,
				{Name: "not-being-deleted", Expression: notDeleted}, {Name: "not-a-mirror-pod", Expression: notMirror}, changed},
			Variables:          vars,
			Mutations:          []admissionregistrationv1.Mutation{{PatchType: admissionregistrationv1.PatchTypeJSONPatch, JSONPatch: &admissionregistrationv1.JSONPatch{Expression: patch}}},
			ReinvocationPolicy: admissionregistrationv1.IfNeededReinvocationPolicy,
		},
	}
	binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "MutatingAdmissionPolicyBinding"},
		ObjectMeta: managedMeta(name),
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName:     name,
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: opts.namespaceSelector(nil)},
		},
	}
	return m, binding, nil
}
