package celpolicy

import (
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// The variables every compiled policy declares for its datacenter label:
// how the pod template of the request's object selects a datacenter, as
// policy.SelectedDatacenter reads it. The variables are evaluated lazily
// and at most once per evaluation, but the API server declares every one
// of them anew for each evaluation of a request (the match conditions, the
// validations, the messages; the patch), read or not: only what is read
// more than once, or is costly, is a variable; the rest is written inline
// (the placement expressions below).
const (
	varTemplate     = "template"     // the optional object holding the pod's metadata and spec
	varNodeSelector = "nodeSelector" // the pod spec's nodeSelector, {} when absent
	varTerms        = "terms"        // required node affinity terms, [] when absent
	varOnLabel      = "onLabel"      // per term, its expressions on the label
	varTooMany      = "tooMany"      // beyond policy.MaxNodeSelectorTerms or policy.MaxDatacenterValues
	varPins         = "pins"         // per term, [dc] when it pins the label to dc, else []
	varSelects      = "selects"      // without nodeSelector: every term pins the same datacenter
	varDC           = "dc"           // the selected datacenter, '' when none
)

// Placement expressions written inline.
var (
	// hasTemplate: the object has a pod template.
	hasTemplate = v(varTemplate) + ".hasValue()"
	// tmpl: the pod template, {} when none. (An optional variable is
	// dynamically typed: .? selects on it, not on its value.)
	tmpl = v(varTemplate) + ".orValue({})"
	// specOpt: the optional pod spec.
	specOpt = tmpl + ".?spec"
	// objLabels and tmplLabels: the labels of the object and of its pod
	// template, {} when absent.
	objLabels  = "object.metadata.?labels.orValue({})"
	tmplLabels = tmpl + ".?metadata.?labels.orValue({})"
)

// hasNodeSelector is the CEL condition that the pod template's
// nodeSelector has the label l (a CEL string literal).
func hasNodeSelector(l string) string { return l + " in " + v(varNodeSelector) }

// v names a variable in an expression.
func v(name string) string { return "variables." + name }

// allowsExpr is the CEL condition that every expression of the list es
// (expressions on the datacenter label) admits the value dc, as the
// engine's termAllows: In must list it, NotIn must not, DoesNotExist
// excludes every value; Exists, Gt and Lt do not exclude it.
func allowsExpr(es, dc string) string {
	op := "e.?operator.orValue('')"
	vals := "e.?values.orValue([])"
	return es + ".all(e, " + op + " == 'In' ? (" + dc + " in " + vals + ") : " +
		op + " == 'NotIn' ? !(" + dc + " in " + vals + ") : " + op + " != 'DoesNotExist')"
}

// placementVariables returns the variables that say how the pod template
// of the request's object selects a datacenter on label, for objects of
// kinds.
func placementVariables(label string, kinds []policy.Kind) []admissionregistrationv1.Variable {
	l := quote(label)
	// candidates: per term, the values every In expression on the label
	// allows.
	candidates := v(varOnLabel) + ".map(es, es.filter(e, e.?operator.orValue('') == 'In').map(e, e.?values.orValue([])))" +
		".map(vs, size(vs) == 0 ? [] : vs[0].filter(x, vs.all(w, x in w)))"
	return []admissionregistrationv1.Variable{
		{Name: varTemplate, Expression: templateExpr("object", kinds)},
		{Name: varNodeSelector, Expression: specOpt + ".?nodeSelector.orValue({})"},
		{Name: varTerms, Expression: specOpt + ".?affinity.?nodeAffinity.?requiredDuringSchedulingIgnoredDuringExecution.?nodeSelectorTerms.orValue([])"},
		{Name: varOnLabel, Expression: v(varTerms) + ".map(t, t.?matchExpressions.orValue([]).filter(e, e.?key.orValue('') == " + l + "))"},
		{Name: varTooMany, Expression: "size(" + v(varTerms) + ") > " + strconv.Itoa(policy.MaxNodeSelectorTerms) +
			" || " + v(varOnLabel) + ".exists(es, es.map(e, e.?values.orValue([])).flatten().size() > " + strconv.Itoa(policy.MaxDatacenterValues) + ")"},
		{Name: varPins, Expression: candidates + ".transformList(i, c, size(c) > 0 && c.all(x, x == c[0]) && " +
			allowsExpr(v(varOnLabel)+"[i]", "c[0]") + " ? [c[0]] : [])"},
		{Name: varSelects, Expression: "!" + v(varTooMany) + " && size(" + v(varTerms) + ") > 0 && " +
			v(varPins) + ".all(p, size(p) > 0) && " + v(varPins) + ".all(p, p[0] == " + v(varPins) + "[0][0])"},
		{Name: varDC, Expression: hasNodeSelector(l) + " ? " + v(varNodeSelector) + "[" + l + "] : " + v(varSelects) + " ? " + v(varPins) + "[0][0] : ''"},
	}
}

// notDeleted and notMirror are conditions every compiled policy matches
// on: objects being deleted are not judged, mirror pods are left to the
// webhook (they are never denied, only warned about, and carry
// spec.nodeName, which the webhook judges).
var (
	notDeleted = "!has(object.metadata.deletionTimestamp)"
	notMirror  = "request.kind.kind != 'Pod' || request.kind.group != '' || !(" +
		quote(policy.AnnotationMirrorPod) + " in object.metadata.?annotations.orValue({}))"
	// podRelabelled is a condition the validating policies match on: an
	// update of a pod (its status above all, written many times in a
	// pod's life) that leaves its labels alone cannot change a verdict, as
	// a pod's placement is immutable and only its labels decide whether
	// and how a rule judges it. Skipping it spares the API server the
	// validation on every status write.
	podRelabelled = "request.operation != 'UPDATE' || " +
		"request.kind.kind != 'Pod' || request.kind.group != '' || oldObject == null || " +
		"object.metadata.?labels.orValue({}) != oldObject.metadata.?labels.orValue({})"
)

// resourceRules returns the rules of the compiled policies for kinds: every
// operation in ops, and for pods also pods/status when UPDATE is among ops
// (a pod relabelled through its status is judged).
func resourceRules(kinds []policy.Kind, ops []admissionregistrationv1.OperationType, podOps []admissionregistrationv1.OperationType) []admissionregistrationv1.NamedRuleWithOperations {
	namespaced := admissionregistrationv1.NamespacedScope
	var out []admissionregistrationv1.NamedRuleWithOperations
	for _, k := range kinds {
		resources := []string{k.Resource}
		o := ops
		if k.Group == "" && k.Kind == "Pod" {
			o = podOps
			for _, op := range podOps {
				if op == admissionregistrationv1.Update {
					resources = append(resources, k.Resource+"/status")
				}
			}
		}
		out = append(out, admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: o,
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{k.Group}, APIVersions: []string{k.Version}, Resources: resources, Scope: &namespaced},
		}})
	}
	return out
}

// joinOr is the list for messages, none when empty.
func joinOr(list []string, none string) string {
	if len(list) == 0 {
		return none
	}
	return strings.Join(list, ", ")
}

// escapePointer escapes a map key for a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
