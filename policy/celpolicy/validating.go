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
	varOldTemplate = "oldTemplate" // the optional pod template of oldObject
	varProblem     = "problem"     // what is wrong, '' when nothing is
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

// policyName is the name of the rule's ValidatingAdmissionPolicy.
func (c *ruleCompiler) policyName() string { return ValidatingName(c.policy, c.rule.Name) }

// validating returns the rule's ValidatingAdmissionPolicy and its two
// bindings (validatingBindings).
func (c *ruleCompiler) validating() (*admissionregistrationv1.ValidatingAdmissionPolicy, []admissionregistrationv1.ValidatingAdmissionPolicyBinding, error) {
	matchObj, ok1 := SelectorExpr(&c.rule.Selector, "("+objLabels+")")
	matchTmpl, ok2 := SelectorExpr(&c.rule.Selector, "("+tmplLabels+")")
	oldObjLabels := "oldObject.metadata.?labels.orValue({})"
	oldTmpl := v(varOldTemplate) + ".orValue({})"
	oldTmplLabels := oldTmpl + ".?metadata.?labels.orValue({})"
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
		judged += " || (" + fq + " in " + objLabels + ") != (" + fq + " in " + oldObjLabels + ")" +
			" || (" + fq + " in " + objLabels + " && " + objLabels + "[" + fq + "] != " + oldObjLabels + "[" + fq + "])"
	}
	oldSpec := oldTmpl + ".?spec"
	learner := func(t string) string {
		return "(" + quote(policy.AnnotationLearner) + " in " + t + ".?metadata.?annotations.orValue({}) ? " +
			t + ".?metadata.?annotations.orValue({})[" + quote(policy.AnnotationLearner) + "] : '')"
	}
	placementChanged := hasTemplate + " != " + v(varOldTemplate) + ".hasValue() || (" + hasTemplate + " && (" +
		tmplLabels + " != " + oldTmplLabels +
		" || " + learner(tmpl) + " != " + learner(oldTmpl) +
		" || " + specOpt + ".?nodeName.orValue('') != " + oldSpec + ".?nodeName.orValue('')" +
		" || " + v(varNodeSelector) + " != " + oldSpec + ".?nodeSelector.orValue({})" +
		" || " + specOpt + ".?affinity != " + oldSpec + ".?affinity" +
		" || " + specOpt + ".?topologySpreadConstraints.orValue([]) != " + oldSpec + ".?topologySpreadConstraints.orValue([])))"
	judged += " || (!" + kindIs(pod) + " && (" + placementChanged + "))"

	want := "''"
	if f := c.rule.DatacenterFromLabel; f != "" {
		fq := quote(f)
		want = "(" + fq + " in " + objLabels + " && " + objLabels + "[" + fq + "] != " + v(varDC) + ")"
	}
	wantMismatch := "false"
	if want != "''" {
		wantMismatch = want
	}
	rest := "!(" + v(varDC) + " in " + known + ") ? '" + problemUnknown + "' : " + wantMismatch + " ? '" + problemWant + "' : ''"
	problem := "!" + hasTemplate + " || !(" + matchObj + " || " + matchTmpl + ") || !(" + judged + ") ? '' : " +
		"size(" + v(varTerms) + ") > " + strconv.Itoa(policy.MaxNodeSelectorTerms) + " ? '" + problemTerms + "' : " +
		v(varTooMany) + " ? '" + problemValues + "' : " +
		hasNodeSelector(l) + " ? (" + v(varOnLabel) + ".exists(es, size(es) > 0 && !" + allowsExpr("es", v(varNodeSelector)+"["+l+"]") + ") ? '" + problemConflict + "' : " + rest + ") : " +
		"size(" + v(varTerms) + ") == 0 ? '" + problemNone + "' : " +
		v(varPins) + ".exists(p, size(p) == 0) ? '" + problemPermissive + "' : " +
		"!" + v(varSelects) + " ? '" + problemDisagree + "' : " + rest

	// The API server evaluates every match condition of a request, so
	// they are one condition whose cheapest, most often false terms come
	// first: a pod status write that leaves the labels alone, an object
	// being deleted, a mirror pod; then pods the rule admits whatever the
	// variables say: those its selector does not match (a pod is its own
	// template) and those pinned to a known datacenter by nodeSelector
	// (podPinnedExpr), the pods of a running cluster. A request that does
	// not match is admitted without the variables being declared for the
	// validation and its message. CEL's && is false when any term is,
	// even if another is an error, as separate conditions are.
	judgedRequest := admissionregistrationv1.MatchCondition{Name: "judged-by-the-rule", Expression: "(" + podRelabelled + ") && (" + notDeleted + ") && (" + notMirror + ") && (" +
		"request.kind.kind != 'Pod' || request.kind.group != '' || (" + matchObj + " && !" + c.podPinnedExpr(known) + "))"}

	vars := placementVariables(c.label, c.kinds)
	vars = append(vars,
		admissionregistrationv1.Variable{Name: varOldTemplate, Expression: templateExpr("oldObject", c.kinds)},
		admissionregistrationv1.Variable{Name: varProblem, Expression: problem},
	)

	fail := admissionregistrationv1.Fail
	action := c.rule.EffectiveAction()
	if action != v1alpha1.ActionDeny {
		// A Warn or Audit rule never refuses, not even when its expression
		// cannot be evaluated.
		fail = admissionregistrationv1.Ignore
	}
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	name := c.policyName()
	vap := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: managedMeta(name),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy:    &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: resourceRules(c.kinds, ops, ops), MatchPolicy: ptr(admissionregistrationv1.Equivalent)},
			MatchConditions:  []admissionregistrationv1.MatchCondition{judgedRequest},
			Variables:        vars,
			Validations: []admissionregistrationv1.Validation{{
				Expression: v(varProblem) + " == ''",
				Message:    "PlacementPolicy rule " + c.name() + ": pods must select exactly one known datacenter by nodeSelector[" + c.label + "] or required node affinity; known datacenters: " + joinOr(c.known, "none"),
				// The API server evaluates the messageExpression of every
				// request, failing or not: it is '' at once when nothing is
				// wrong.
				MessageExpression: v(varProblem) + " == '' ? '' : " + c.messageExpr(),
				Reason:            ptr(metav1.StatusReasonInvalid),
			}},
		},
	}
	return vap, c.validatingBindings(name, action, ops), nil
}

// validatingBindings returns the two bindings of the rule's policy name:
// one for every judged kind but pods, and one for pods (and pods/status)
// whose objectSelector is the rule's selector. A pod is its own template,
// so a pod whose labels (old or new) the rule does not select cannot be
// refused; the API server skips it by its labels alone, before it builds
// any CEL input, and so skips the status writes of every pod no rule
// selects, the bulk of a cluster's pod updates.
func (c *ruleCompiler) validatingBindings(name string, action v1alpha1.Action, ops []admissionregistrationv1.OperationType) []admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	var pods, others []policy.Kind
	for _, k := range c.kinds {
		if k.Group == "" && k.Kind == "Pod" {
			pods = append(pods, k)
		} else {
			others = append(others, k)
		}
	}
	bind := func(name string, kinds []policy.Kind, objects *metav1.LabelSelector) admissionregistrationv1.ValidatingAdmissionPolicyBinding {
		return admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicyBinding"},
			ObjectMeta: managedMeta(name),
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        c.policyName(),
				ValidationActions: []admissionregistrationv1.ValidationAction{validationAction(action)},
				MatchResources: &admissionregistrationv1.MatchResources{
					NamespaceSelector: c.opts.namespaceSelector(c.rule.NamespaceSelector),
					ObjectSelector:    objects,
					ResourceRules:     resourceRules(kinds, ops, ops),
					MatchPolicy:       ptr(admissionregistrationv1.Equivalent),
				},
			},
		}
	}
	return []admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		bind(name, others, nil),
		bind(PodBindingName(name), pods, c.rule.Selector.DeepCopy()),
	}
}

// podPinnedExpr returns the CEL condition that a pod, the request's
// object, is one the rule admits whatever else is true: its nodeSelector
// pins the label to one of known, it has no required node affinity terms,
// and the rule's datacenterFromLabel, when the pod carries it, names the
// same datacenter. It reads the object directly, without the policy's
// variables, so that admitting such a pod costs a few field reads.
func (c *ruleCompiler) podPinnedExpr(known string) string {
	l := quote(c.label)
	sel := "object.spec.nodeSelector[" + l + "]"
	expr := "(" + l + " in object.?spec.?nodeSelector.orValue({}) && " + sel + " in " + known + " && " +
		"size(object.spec.?affinity.?nodeAffinity.?requiredDuringSchedulingIgnoredDuringExecution.?nodeSelectorTerms.orValue([])) == 0"
	if f := c.rule.DatacenterFromLabel; f != "" {
		fq := quote(f)
		expr += " && !(" + fq + " in " + objLabels + " && object.metadata.labels[" + fq + "] != " + sel + ")"
	}
	return expr + ")"
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
	p := "(" + specPathExpr(c.kinds) + ")"
	terms := p + " + '.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms'"
	where := "(" + hasNodeSelector(quote(l)) + " ? " + p + " + " + quote(".nodeSelector["+l+"]") + " : " + terms + ")"
	none := quote("set nodeSelector[" + l + "] to one of: " + known)
	if f := c.rule.DatacenterFromLabel; f != "" {
		fq := quote(f)
		none = "(" + fq + " in " + objLabels + " && " + objLabels + "[" + fq + "] != '' ? " +
			quote("set nodeSelector["+l+"] to ") + " + " + objLabels + "[" + fq + "] + " + quote(" (from label "+f+" of the object)") + " : " + none + ")"
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
