package policy

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// SelectedDatacenter returns the one datacenter spec pins its pods to on
// label. ok is true iff exactly one datacenter is selected: by
// nodeSelector[label], or by required node affinity in which every term
// (terms are ORed) pins label to the same single value; when both are set
// they must agree. An affinity term pins label when its matchExpressions
// on label allow exactly one value (In with one value, or Ins whose
// intersection is one value, not excluded by NotIn or DoesNotExist).
func SelectedDatacenter(spec *corev1.PodSpec, label string) (dc string, ok bool) {
	s := selectionOf(spec, label)
	return s.dc, s.problem == selOK
}

type selProblem int

const (
	selOK selProblem = iota
	// selNone: neither nodeSelector nor required affinity names label.
	selNone
	// selPermissive: affinity term badTerm does not pin label.
	selPermissive
	// selTermsDisagree: term badTerm pins otherDC, unlike term 0 (dc).
	selTermsDisagree
	// selConflict: nodeSelector says dc, affinity term badTerm says otherDC.
	selConflict
)

// selection is how a pod spec selects a datacenter, and what is wrong.
type selection struct {
	problem selProblem
	dc      string
	// fromNodeSelector is true when dc comes from nodeSelector.
	fromNodeSelector bool
	// term and expr locate where the affinity pins dc (first term), or the
	// offending term (badTerm) when there is a problem.
	term, expr int
	badTerm    int
	otherDC    string
}

func requiredTerms(spec *corev1.PodSpec) []corev1.NodeSelectorTerm {
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	return spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
}

func selectionOf(spec *corev1.PodSpec, label string) selection {
	nsDC, hasNS := spec.NodeSelector[label]
	terms := requiredTerms(spec)
	if hasNS {
		s := selection{dc: nsDC, fromNodeSelector: true}
		for i := range terms {
			if v, _, pins := termPins(&terms[i], label); pins && v != nsDC {
				return selection{problem: selConflict, dc: nsDC, fromNodeSelector: true, badTerm: i, otherDC: v}
			} else if !pins && termMentions(&terms[i], label) && !termAllows(&terms[i], label, nsDC) {
				return selection{problem: selConflict, dc: nsDC, fromNodeSelector: true, badTerm: i}
			}
		}
		return s
	}
	if len(terms) == 0 {
		return selection{problem: selNone}
	}
	var s selection
	for i := range terms {
		v, expr, pins := termPins(&terms[i], label)
		if !pins {
			return selection{problem: selPermissive, badTerm: i, dc: s.dc}
		}
		if i == 0 {
			s = selection{dc: v, term: 0, expr: expr}
			continue
		}
		if v != s.dc {
			return selection{problem: selTermsDisagree, dc: s.dc, badTerm: i, otherDC: v}
		}
	}
	return s
}

// termPins reports whether term allows exactly one value of label, which
// value, and the index of the first In expression naming it.
func termPins(t *corev1.NodeSelectorTerm, label string) (dc string, expr int, ok bool) {
	var cand []string
	first := -1
	for i := range t.MatchExpressions {
		e := &t.MatchExpressions[i]
		if e.Key != label || e.Operator != corev1.NodeSelectorOpIn {
			continue
		}
		if first < 0 {
			first = i
			cand = e.Values
			continue
		}
		cand = intersect(cand, e.Values)
	}
	if first < 0 {
		return "", 0, false
	}
	// Deduplicate: In [a, a] pins a.
	var v string
	n := 0
	for _, c := range cand {
		if n == 0 || c != v {
			if n > 0 {
				return "", 0, false
			}
			v, n = c, 1
		}
	}
	if n != 1 || !termAllows(t, label, v) {
		return "", 0, false
	}
	return v, first, true
}

// termAllows reports whether the expressions of term on label admit value.
func termAllows(t *corev1.NodeSelectorTerm, label, value string) bool {
	for i := range t.MatchExpressions {
		e := &t.MatchExpressions[i]
		if e.Key != label {
			continue
		}
		switch e.Operator {
		case corev1.NodeSelectorOpIn:
			if !contains(e.Values, value) {
				return false
			}
		case corev1.NodeSelectorOpNotIn:
			if contains(e.Values, value) {
				return false
			}
		case corev1.NodeSelectorOpDoesNotExist:
			return false
		case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
			// Numeric comparisons on a datacenter name only narrow further;
			// they cannot widen the selection.
		}
	}
	return true
}

func termMentions(t *corev1.NodeSelectorTerm, label string) bool {
	for i := range t.MatchExpressions {
		if t.MatchExpressions[i].Key == label {
			return true
		}
	}
	return false
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// selectionPath returns the field path where s names its datacenter.
func (s *selection) path(tp *field.Path, label string) *field.Path {
	if s.fromNodeSelector {
		return tp.Child("nodeSelector").Key(label)
	}
	return termsPath(tp).Index(s.term).Child("matchExpressions").Index(s.expr).Child("values")
}

func termsPath(tp *field.Path) *field.Path {
	return tp.Child("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
}
