package testutil

import (
	"math/rand/v2"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Placement is one way a pod template selects a datacenter, or fails to,
// as the pinned rules read it: the shapes of the differential suite and of
// table tests over every affinity form.
type Placement int

const (
	// PlaceNothing selects no datacenter.
	PlaceNothing Placement = iota
	// PlaceNodeSelector sets nodeSelector[label] = dc.
	PlaceNodeSelector
	// PlaceOneTerm is one required node affinity term, label In [dc].
	PlaceOneTerm
	// PlaceTermsAgree is three ORed terms that each pin label to dc, next
	// to requirements on other keys.
	PlaceTermsAgree
	// PlaceTermsDisagree is a term pinning dc ORed with one pinning other.
	PlaceTermsDisagree
	// PlacePermissiveTerm is a term pinning dc ORed with one that does not
	// name label: pods may run anywhere.
	PlacePermissiveTerm
	// PlaceExcludingTerm is one term with label NotIn [other]: it excludes
	// a datacenter but pins none.
	PlaceExcludingTerm
	// PlaceConflict sets nodeSelector[label] = dc and a term pinning other.
	PlaceConflict
	// PlaceSelectorAndTerm sets nodeSelector[label] = dc and a term that
	// agrees.
	PlaceSelectorAndTerm
	// PlaceTermsIntersect is one term of two In expressions on label whose
	// only common value is dc.
	PlaceTermsIntersect
	// PlaceTwoValues is one term, label In [dc, other]: two datacenters.
	PlaceTwoValues
	// PlaceOtherKeyOnly is a nodeSelector and a term on other keys only.
	PlaceOtherKeyOnly
)

var placementNames = []string{
	"nothing", "nodeSelector", "one term", "terms agree", "terms disagree", "permissive term",
	"excluding term", "nodeSelector and term disagree", "nodeSelector and term agree",
	"intersecting expressions", "two values", "other keys only",
}

// Placements returns every Placement, in declaration order.
func Placements() []Placement {
	out := make([]Placement, len(placementNames))
	for i := range out {
		out[i] = Placement(i)
	}
	return out
}

// String names the placement, for test output.
func (p Placement) String() string {
	if p >= 0 && int(p) < len(placementNames) {
		return placementNames[p]
	}
	return "placement " + strconv.Itoa(int(p))
}

// Place gives the pod template placement p on label, with dc the
// datacenter it means and other a second one for the shapes that name two.
func (b *ObjectBuilder) Place(p Placement, label, dc, other string) *ObjectBuilder {
	linux := Expr("kubernetes.io/os", corev1.NodeSelectorOpIn, "linux")
	switch p {
	case PlaceNodeSelector:
		b.NodeSelector(label, dc)
	case PlaceOneTerm:
		b.RequiredAffinity(Term(In(label, dc)))
	case PlaceTermsAgree:
		b.RequiredAffinity(Term(In(label, dc)), Term(linux, In(label, dc)), Term(In(label, dc), Expr("disk", corev1.NodeSelectorOpExists)))
	case PlaceTermsDisagree:
		b.RequiredAffinity(Term(In(label, dc)), Term(In(label, other)))
	case PlacePermissiveTerm:
		b.RequiredAffinity(Term(In(label, dc)), Term(linux))
	case PlaceExcludingTerm:
		b.RequiredAffinity(Term(Expr(label, corev1.NodeSelectorOpNotIn, other)))
	case PlaceConflict:
		b.NodeSelector(label, dc).RequiredAffinity(Term(In(label, other)))
	case PlaceSelectorAndTerm:
		b.NodeSelector(label, dc).RequiredAffinity(Term(linux, In(label, dc)))
	case PlaceTermsIntersect:
		b.RequiredAffinity(Term(In(label, dc, other), In(label, dc)))
	case PlaceTwoValues:
		b.RequiredAffinity(Term(In(label, dc, other)))
	case PlaceOtherKeyOnly:
		b.NodeSelector("disk", "ssd").RequiredAffinity(Term(linux))
	}
	return b
}

// FuzzPlacement gives the pod template a random nodeSelector and random
// required node affinity drawn from r, as FuzzEvaluatePinned does from its
// input, over the keys label, "disk" and "kubernetes.io/hostname" and the
// given values; unlike the fuzz target's, every spec it makes passes the
// API server's validation (In and NotIn with values, Gt and Lt with one
// integer, Exists and DoesNotExist without), so that it can be created.
func (b *ObjectBuilder) FuzzPlacement(r *rand.Rand, label string, values []string) *ObjectBuilder {
	keys := []string{label, label, "disk", "kubernetes.io/hostname"}
	ops := []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn,
		corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt}
	value := func() string { return values[r.IntN(len(values))] }
	for i, n := 0, r.IntN(3); i < n; i++ {
		b.NodeSelector(keys[r.IntN(len(keys))], value())
	}
	var terms []corev1.NodeSelectorTerm
	for i, nt := 0, r.IntN(4); i < nt; i++ {
		var reqs []corev1.NodeSelectorRequirement
		for j, ne := 0, 1+r.IntN(3); j < ne; j++ {
			op := ops[r.IntN(len(ops))]
			var vals []string
			switch op {
			case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
				for k, nv := 0, 1+r.IntN(3); k < nv; k++ {
					vals = append(vals, value())
				}
			case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
				vals = []string{strconv.Itoa(r.IntN(10))}
			}
			reqs = append(reqs, Expr(keys[r.IntN(len(keys))], op, vals...))
		}
		terms = append(terms, Term(reqs...))
	}
	if len(terms) > 0 {
		b.RequiredAffinity(terms...)
	}
	return b
}
