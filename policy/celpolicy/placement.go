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
// and once per request.
const (
	varTemplate     = "template"     // the object holding the pod's metadata and spec, {} when none
	varHasTemplate  = "hasTemplate"  // the object has a pod template
	varSpec         = "spec"         // the pod spec, {} when absent
	varNodeSelector = "nodeSelector" // the pod spec's nodeSelector, {} when absent
	varTerms        = "terms"        // required node affinity terms, [] when absent
	varOnLabel      = "onLabel"      // per term, its expressions on the label
	varTooMany      = "tooMany"      // beyond policy.MaxNodeSelectorTerms or policy.MaxDatacenterValues
	varCandidates   = "candidates"   // per term, the values every In expression on the label allows
	varPins         = "pins"         // per term, [dc] when it pins the label to dc, else []
	varHasNS        = "hasNodeSelector"
	varSelects      = "selects" // without nodeSelector: every term pins the same datacenter
	varDC           = "dc"      // the selected datacenter, '' when none
	varObjLabels    = "objectLabels"
	varTmplLabels   = "templateLabels"
)

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
	return []admissionregistrationv1.Variable{
		{Name: varHasTemplate, Expression: "(" + templateExpr("object", kinds) + ").hasValue()"},
		{Name: varTemplate, Expression: "(" + templateExpr("object", kinds) + ").orValue({})"},
		{Name: varSpec, Expression: v(varTemplate) + ".?spec.orValue({})"},
		{Name: varNodeSelector, Expression: v(varSpec) + ".?nodeSelector.orValue({})"},
		{Name: varTerms, Expression: v(varSpec) + ".?affinity.?nodeAffinity.?requiredDuringSchedulingIgnoredDuringExecution.?nodeSelectorTerms.orValue([])"},
		{Name: varOnLabel, Expression: v(varTerms) + ".map(t, t.?matchExpressions.orValue([]).filter(e, e.?key.orValue('') == " + l + "))"},
		{Name: varTooMany, Expression: "size(" + v(varTerms) + ") > " + strconv.Itoa(policy.MaxNodeSelectorTerms) +
			" || " + v(varOnLabel) + ".exists(es, es.map(e, e.?values.orValue([])).flatten().size() > " + strconv.Itoa(policy.MaxDatacenterValues) + ")"},
		{Name: varCandidates, Expression: v(varOnLabel) + ".map(es, es.filter(e, e.?operator.orValue('') == 'In').map(e, e.?values.orValue([])))" +
			".map(vs, size(vs) == 0 ? [] : vs[0].filter(x, vs.all(w, x in w)))"},
		{Name: varPins, Expression: v(varCandidates) + ".transformList(i, c, size(c) > 0 && c.all(x, x == c[0]) && " +
			allowsExpr(v(varOnLabel)+"[i]", "c[0]") + " ? [c[0]] : [])"},
		{Name: varHasNS, Expression: l + " in " + v(varNodeSelector)},
		{Name: varSelects, Expression: "!" + v(varTooMany) + " && size(" + v(varTerms) + ") > 0 && " +
			v(varPins) + ".all(p, size(p) > 0) && " + v(varPins) + ".all(p, p[0] == " + v(varPins) + "[0][0])"},
		{Name: varDC, Expression: v(varHasNS) + " ? " + v(varNodeSelector) + "[" + l + "] : " + v(varSelects) + " ? " + v(varPins) + "[0][0] : ''"},
		{Name: varObjLabels, Expression: "object.metadata.?labels.orValue({})"},
		{Name: varTmplLabels, Expression: v(varTemplate) + ".?metadata.?labels.orValue({})"},
	}
}

// notDeleted and notMirror are the match conditions of every compiled
// policy: objects being deleted are not judged, mirror pods are left to
// the webhook (they are never denied, only warned about, and carry
// spec.nodeName, which the webhook judges).
var (
	notDeleted = admissionregistrationv1.MatchCondition{Name: "not-being-deleted", Expression: "!has(object.metadata.deletionTimestamp)"}
	notMirror  = admissionregistrationv1.MatchCondition{Name: "not-a-mirror-pod", Expression: "request.kind.kind != 'Pod' || request.kind.group != '' || !(" +
		quote(policy.AnnotationMirrorPod) + " in object.metadata.?annotations.orValue({}))"}
	// podRelabelled is a match condition of the validating policies: an
	// update of a pod (its status above all, written many times in a
	// pod's life) that leaves its labels alone cannot change a verdict, as
	// a pod's placement is immutable and only its labels decide whether
	// and how a rule judges it. Skipping it here spares the API server the
	// policy's variables on every status write.
	podRelabelled = admissionregistrationv1.MatchCondition{Name: "pod-update-changes-labels", Expression: "request.operation != 'UPDATE' || " +
		"request.kind.kind != 'Pod' || request.kind.group != '' || oldObject == null || " +
		"object.metadata.?labels.orValue({}) != oldObject.metadata.?labels.orValue({})"}
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
