package celpolicy

import (
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// quote returns s as a CEL string literal. CEL string literals take Go's
// double-quoted escapes.
func quote(s string) string { return strconv.Quote(s) }

// quoteList returns values as a CEL list literal of strings.
func quoteList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// SelectorExpr returns the CEL expression that is true when the label
// selector s matches the labels in the CEL map m (an identifier or a
// parenthesised expression). It matches as labels.Selector does: an empty
// selector matches every set of labels; NotIn and DoesNotExist match when
// the key is absent. ok is false for a selector the API would refuse (an
// unknown operator), whose meaning the caller must not guess.
func SelectorExpr(s *metav1.LabelSelector, m string) (expr string, ok bool) {
	if s == nil {
		return "true", true
	}
	var reqs []string
	keys := make([]string, 0, len(s.MatchLabels))
	for k := range s.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		reqs = append(reqs, "("+quote(k)+" in "+m+" && "+m+"["+quote(k)+"] == "+quote(s.MatchLabels[k])+")")
	}
	for _, x := range s.MatchExpressions {
		k := quote(x.Key)
		switch x.Operator {
		case metav1.LabelSelectorOpIn:
			reqs = append(reqs, "("+k+" in "+m+" && "+m+"["+k+"] in "+quoteList(x.Values)+")")
		case metav1.LabelSelectorOpNotIn:
			reqs = append(reqs, "(!("+k+" in "+m+") || !("+m+"["+k+"] in "+quoteList(x.Values)+"))")
		case metav1.LabelSelectorOpExists:
			reqs = append(reqs, "("+k+" in "+m+")")
		case metav1.LabelSelectorOpDoesNotExist:
			reqs = append(reqs, "!("+k+" in "+m+")")
		default:
			return "", false
		}
	}
	if len(reqs) == 0 {
		return "true", true
	}
	return "(" + strings.Join(reqs, " && ") + ")", true
}

// optionalPath returns the CEL expression of the optional value at path
// under root: root.?a.?b for a.b, optional.of(root) for an empty path.
func optionalPath(root string, path []string) string {
	if len(path) == 0 {
		return "optional.of(" + root + ")"
	}
	return root + ".?" + strings.Join(path, ".?")
}

// templateParent returns the path of the object that holds a pod spec
// (its metadata and spec) from the path of the pod spec, which ends in
// spec: [] for a Pod's spec, [spec template] for spec.template.spec.
func templateParent(p *field.Path) ([]string, bool) {
	parts := strings.Split(p.String(), ".")
	if parts[len(parts)-1] != "spec" {
		return nil, false
	}
	return parts[:len(parts)-1], true
}

// kindIs is the CEL condition that the request is about kind k.
func kindIs(k policy.Kind) string {
	return "(request.kind.group == " + quote(k.Group) + " && request.kind.kind == " + quote(k.Kind) + ")"
}

// templateExpr returns the CEL expression of the optional pod template
// (the object holding metadata and spec of the pods) of root, an object of
// one of kinds: the kinds' template paths, chosen by the request's kind;
// optional.none() for any other kind and for a null root (the oldObject of
// a CREATE).
func templateExpr(root string, kinds []policy.Kind) string {
	var b strings.Builder
	b.WriteString(root + " == null ? optional.none() : ")
	for _, k := range kinds {
		// Every judged kind has one pod spec, whose path ends in spec; a
		// kind that breaks this is left out, and the unit tests fail.
		if len(k.TemplatePaths) != 1 {
			continue
		}
		parent, ok := templateParent(k.TemplatePaths[0])
		if !ok {
			continue
		}
		b.WriteString(kindIs(k) + " ? " + optionalPath(root, parent) + " : ")
	}
	b.WriteString("optional.none()")
	return b.String()
}

// specPathExpr returns the CEL expression of the field path of the pod
// spec of the request's object, as the engine names it
// ("spec.template.spec"), for messages; "" for any other kind.
func specPathExpr(kinds []policy.Kind) string {
	return specExpr(kinds, func(path string) string { return path })
}

// specPointerExpr is specPathExpr as a JSON pointer ("/spec/template/spec").
func specPointerExpr(kinds []policy.Kind) string {
	return specExpr(kinds, func(path string) string { return "/" + strings.ReplaceAll(path, ".", "/") })
}

// specExpr chooses, by the request's kind, the pod spec's path of each
// kind with one template path, written by format; "" for any other kind.
func specExpr(kinds []policy.Kind, format func(path string) string) string {
	var b strings.Builder
	for _, k := range kinds {
		if len(k.TemplatePaths) != 1 {
			continue
		}
		b.WriteString(kindIs(k) + " ? " + quote(format(k.TemplatePaths[0].String())) + " : ")
	}
	b.WriteString("''")
	return b.String()
}
