package celpolicy

import (
	"fmt"
	"strconv"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// The variables of a rule's ValidatingAdmissionPolicy beyond
// placementVariables.
const (
	varMatched        = "matched"        // the rule's selector matches the object or its template
	varOldTemplate    = "oldTemplate"    // the pod template of oldObject, {} when none
	varOldHasTemplate = "oldHasTemplate" // oldObject has a pod template
	varJudged         = "judged"         // a CREATE, or an UPDATE that changes what the rule judges
	varProblem        = "problem"        // what is wrong, '' when nothing is
	varPath           = "path"           // the field path of the pod spec, for messages
)

// Problems, as the variable problem names them.
const (
	problemTerms      = "terms"
	problemValues     = "values"
	problemNone       = "none"
	problemPermissive = "permissive"
	problemDisagree   = "disagree"
	problemConflict   = "conflict"
	problemUnknown    = "unknown"
	problemWant       = "want"
)

// ruleCompiler compiles one pinned rule.
type ruleCompiler struct {
	policy string
	rule   *v1alpha1.PinnedRule
	label  string
	known  []string
	kinds  []policy.Kind
	opts   *Options
}

func (c *ruleCompiler) name() string { return c.policy + "/" + c.rule.Name }

// validating returns the rule's ValidatingAdmissionPolicy and binding.
func (c *ruleCompiler) validating() (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding, error) {
	matchObj, ok1 := SelectorExpr(&c.rule.Selector, v(varObjLabels))
	matchTmpl, ok2 := SelectorExpr(&c.rule.Selector, v(varTmplLabels))
	oldObjLabels := "oldObject.metadata.?labels.orValue({})"
	oldTmplLabels := v(varOldTemplate) + ".?metadata.?labels.orValue({})"
	matchOldObj, ok3 := SelectorExpr(&c.rule.Selector, "("+oldObjLabels+")")
	matchOldTmpl, ok4 := SelectorExpr(&c.rule.Selector, "("+oldTmplLabels+")")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, nil, fmt.Errorf("placementpolicy %q: pinned rule %s: the selector has an operator that is not In, NotIn, Exists or DoesNotExist", c.policy, c.rule.Name)
	}
	pod, _ := policy.JudgedKindFor(schema.GroupKind{Kind: "Pod"})
	l := quote(c.label)
	known := quoteList(c.known)

	// An UPDATE is judged when the old object was not matched, when the
	// datacenterFromLabel value changes, or (for all but pods, whose
	// placement is immutable) when the pod template's placement changes.
	judged := "request.operation != 'UPDATE' || oldObject == null || !(" + matchOldObj + " || " + matchOldTmpl + ")"
	if f := c.rule.DatacenterFromLabel; f != "" {
		fq := quote(f)
		judged += " || (" + fq + " in " + v(varObjLabels) + ") != (" + fq + " in " + oldObjLabels + ")" +
			" || (" + fq + " in " + v(varObjLabels) + " && " + v(varObjLabels) + "[" + fq + "] != " + oldObjLabels + "[" + fq + "])"
	}
	spec, oldSpec := v(varSpec), v(varOldTemplate)+".?spec.orValue({})"
	learner := func(t string) string {
		return "(" + quote(policy.AnnotationLearner) + " in " + t + ".?metadata.?annotations.orValue({}) ? " +
			t + ".?metadata.?annotations.orValue({})[" + quote(policy.AnnotationLearner) + "] : '')"
	}
	placementChanged := v(varHasTemplate) + " != " + v(varOldHasTemplate) + " || (" + v(varHasTemplate) + " && (" +
		v(varTmplLabels) + " != " + oldTmplLabels +
		" || " + learner(v(varTemplate)) + " != " + learner(v(varOldTemplate)) +
		" || " + spec + ".?nodeName.orValue('') != " + oldSpec + ".?nodeName.orValue('')" +
		" || " + v(varNodeSelector) + " != " + oldSpec + ".?nodeSelector.orValue({})" +
		" || " + spec + ".?affinity != " + oldSpec + ".?affinity" +
		" || " + spec + ".?topologySpreadConstraints.orValue([]) != " + oldSpec + ".?topologySpreadConstraints.orValue([])))"
	judged += " || (!" + kindIs(pod) + " && (" + placementChanged + "))"

	want := "''"
	if f := c.rule.DatacenterFromLabel; f != "" {
		fq := quote(f)
		want = "(" + fq + " in " + v(varObjLabels) + " && " + v(varObjLabels) + "[" + fq + "] != " + v(varDC) + ")"
	}
	wantMismatch := "false"
	if want != "''" {
		wantMismatch = want
	}
	rest := "!(" + v(varDC) + " in " + known + ") ? '" + problemUnknown + "' : " + wantMismatch + " ? '" + problemWant + "' : ''"
	problem := "!" + v(varHasTemplate) + " || !" + v(varMatched) + " || !" + v(varJudged) + " ? '' : " +
		"size(" + v(varTerms) + ") > " + strconv.Itoa(policy.MaxNodeSelectorTerms) + " ? '" + problemTerms + "' : " +
		v(varTooMany) + " ? '" + problemValues + "' : " +
		v(varHasNS) + " ? (" + v(varOnLabel) + ".exists(es, size(es) > 0 && !" + allowsExpr("es", v(varNodeSelector)+"["+l+"]") + ") ? '" + problemConflict + "' : " + rest + ") : " +
		"size(" + v(varTerms) + ") == 0 ? '" + problemNone + "' : " +
		v(varPins) + ".exists(p, size(p) == 0) ? '" + problemPermissive + "' : " +
		"!" + v(varSelects) + " ? '" + problemDisagree + "' : " + rest

	vars := placementVariables(c.label, c.kinds)
	vars = append(vars,
		admissionregistrationv1.Variable{Name: varMatched, Expression: matchObj + " || " + matchTmpl},
		admissionregistrationv1.Variable{Name: varOldHasTemplate, Expression: "(" + templateExpr("oldObject", c.kinds) + ").hasValue()"},
		admissionregistrationv1.Variable{Name: varOldTemplate, Expression: "(" + templateExpr("oldObject", c.kinds) + ").orValue({})"},
		admissionregistrationv1.Variable{Name: varJudged, Expression: judged},
		admissionregistrationv1.Variable{Name: varProblem, Expression: problem},
		admissionregistrationv1.Variable{Name: varPath, Expression: specPathExpr(c.kinds)},
	)

	fail := admissionregistrationv1.Fail
	action := c.rule.EffectiveAction()
	if action != v1alpha1.ActionDeny {
		// A Warn or Audit rule never refuses, not even when its expression
		// cannot be evaluated.
		fail = admissionregistrationv1.Ignore
	}
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	name := ValidatingName(c.policy, c.rule.Name)
	vap := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: managedMeta(name),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy:    &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: resourceRules(c.kinds, ops, ops), MatchPolicy: ptr(admissionregistrationv1.Equivalent)},
			MatchConditions:  []admissionregistrationv1.MatchCondition{notDeleted, notMirror, podRelabelled},
			Variables:        vars,
			Validations: []admissionregistrationv1.Validation{{
				Expression:        v(varProblem) + " == ''",
				Message:           "PlacementPolicy rule " + c.name() + ": pods must select exactly one known datacenter by nodeSelector[" + c.label + "] or required node affinity; known datacenters: " + joinOr(c.known, "none"),
				MessageExpression: c.messageExpr(),
				Reason:            ptr(metav1.StatusReasonInvalid),
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: managedMeta(name),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{validationAction(action)},
			MatchResources:    &admissionregistrationv1.MatchResources{NamespaceSelector: c.opts.namespaceSelector(c.rule.NamespaceSelector)},
		},
	}
	return vap, binding, nil
}

// validationAction maps a rule's action to the binding's.
func validationAction(a v1alpha1.Action) admissionregistrationv1.ValidationAction {
	switch a {
	case v1alpha1.ActionWarn:
		return admissionregistrationv1.Warn
	case v1alpha1.ActionAudit:
		return admissionregistrationv1.Audit
	}
	return admissionregistrationv1.Deny
}

// messageExpr returns the CEL expression of the message of a violation:
// the rule, the field and what to do, as the engine says it, with the
// known datacenters where the engine gives a did-you-mean hint.
func (c *ruleCompiler) messageExpr() string {
	l := c.label
	known := joinOr(c.known, "a datacenter")
	p := v(varPath)
	terms := p + " + '.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms'"
	where := "(" + v(varHasNS) + " ? " + p + " + " + quote(".nodeSelector["+l+"]") + " : " + terms + ")"
	none := quote("set nodeSelector[" + l + "] to one of: " + known)
	if f := c.rule.DatacenterFromLabel; f != "" {
		fq := quote(f)
		none = "(" + fq + " in " + v(varObjLabels) + " && " + v(varObjLabels) + "[" + fq + "] != '' ? " +
			quote("set nodeSelector["+l+"] to ") + " + " + v(varObjLabels) + "[" + fq + "] + " + quote(" (from label "+f+" of the object)") + " : " + none + ")"
	}
	msg := v(varProblem) + " == '" + problemTerms + "' ? " + terms + " + " + quote(": more than "+strconv.Itoa(policy.MaxNodeSelectorTerms)+" required node affinity terms; select the datacenter with nodeSelector["+l+"] or fewer terms") + " : " +
		v(varProblem) + " == '" + problemValues + "' ? " + terms + " + " + quote(": a term lists more than "+strconv.Itoa(policy.MaxDatacenterValues)+" values on "+l+"; list the datacenters the pods may run in, or set nodeSelector["+l+"]") + " : " +
		v(varProblem) + " == '" + problemNone + "' ? " + p + " + " + quote(".nodeSelector["+l+"]: Required value: pods must select exactly one datacenter: ") + " + " + none + " : " +
		v(varProblem) + " == '" + problemPermissive + "' ? " + terms + " + " + quote(": required node affinity terms are ORed and a term does not pin "+l+" to one datacenter, so pods may run in any datacenter: add {key: "+l+", operator: In, values: [<datacenter>]} to every term, or set nodeSelector["+l+"]") + " : " +
		v(varProblem) + " == '" + problemDisagree + "' ? " + terms + " + " + quote(": required node affinity terms are ORed and pin "+l+" to different datacenters, so pods may run in either; pin every term to the same datacenter") + " : " +
		v(varProblem) + " == '" + problemConflict + "' ? " + terms + " + " + quote(": nodeSelector["+l+"] pins ") + " + " + v(varDC) + " + " + quote(" but a required node affinity term excludes it, so pods can never be scheduled: make them agree") + " : " +
		v(varProblem) + " == '" + problemUnknown + "' ? " + where + " + ': Invalid value: ' + " + v(varDC) + " + " + quote(": not a known datacenter; known datacenters: "+joinOr(c.known, "none (no Node has the label "+l+")")) + " : " +
		where + " + ': Invalid value: ' + " + v(varDC) + " + " + quote(": the object's label "+c.rule.DatacenterFromLabel+" says another datacenter: make them agree")
	return quote("PlacementPolicy rule "+c.name()+": ") + " + (" + msg + ")"
}

func ptr[T any](x T) *T { return &x }
