package policy

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits on what the engine reads of a pod spec, so that evaluation stays
// bounded and linear in the size of the object whatever it holds. Specs
// beyond them are refused by the rules that select them, naming the field.
const (
	// MaxNodeSelectorTerms is the most required node affinity terms a pod
	// spec may carry.
	MaxNodeSelectorTerms = 32
	// MaxDatacenterValues is the most values the expressions of one node
	// selector term may list on the datacenter label; a handful of
	// datacenters never needs more.
	MaxDatacenterValues = 32
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
	// selTooManyTerms: more than MaxNodeSelectorTerms terms.
	selTooManyTerms
	// selTooManyValues: term badTerm lists more than MaxDatacenterValues
	// values on label.
	selTooManyValues
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

// checkLimits returns the selection problem of a spec beyond the limits,
// selOK when it is within them.
func checkLimits(terms []corev1.NodeSelectorTerm, label string) selection {
	if len(terms) > MaxNodeSelectorTerms {
		return selection{problem: selTooManyTerms}
	}
	for i := range terms {
		n := 0
		for j := range terms[i].MatchExpressions {
			if e := &terms[i].MatchExpressions[j]; e.Key == label {
				n += len(e.Values)
			}
		}
		if n > MaxDatacenterValues {
			return selection{problem: selTooManyValues, badTerm: i}
		}
	}
	return selection{}
}

// limitError is the field error of a selection beyond the limits, nil when
// s is within them.
func limitError(s *selection, tp *field.Path, label string) *field.Error {
	switch s.problem {
	case selTooManyTerms:
		return &field.Error{Type: field.ErrorTypeTooMany, Field: termsPath(tp).String(), BadValue: field.OmitValueType{},
			Detail: "more than " + strconv.Itoa(MaxNodeSelectorTerms) + " required node affinity terms: dc-webhook judges at most that many; select the datacenter with nodeSelector[" + label + "] or fewer terms"}
	case selTooManyValues:
		return &field.Error{Type: field.ErrorTypeTooMany, Field: termsPath(tp).Index(s.badTerm).Child("matchExpressions").String(), BadValue: field.OmitValueType{},
			Detail: "the expressions of this term list more than " + strconv.Itoa(MaxDatacenterValues) + " values on " + label + ", more than any set of datacenters needs: list the datacenters the pods may run in, or set nodeSelector[" + label + "]"}
	}
	return nil
}

func selectionOf(spec *corev1.PodSpec, label string) selection {
	nsDC, hasNS := spec.NodeSelector[label]
	terms := requiredTerms(spec)
	if s := checkLimits(terms, label); s.problem != selOK {
		return s
	}
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

// intersect returns the values of a also in b, in a's order, in time
// linear in len(a)+len(b).
func intersect(a, b []string) []string {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	in := make(map[string]struct{}, len(b))
	for _, x := range b {
		in[x] = struct{}{}
	}
	var out []string
	for _, x := range a {
		if _, ok := in[x]; ok {
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
