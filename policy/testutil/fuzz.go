package testutil

import (
	corev1 "k8s.io/api/core/v1"
)

// FuzzValues, FuzzKeys and FuzzOperators are what FuzzPinnedObject draws
// node selector values, keys and operators from.
var (
	FuzzValues    = []string{"pod-1", "pod-2", "pod-3", "pod2", "", "7", "ssd"}
	FuzzKeys      = []string{Zone, Zone, "disk", "kubernetes.io/hostname"}
	FuzzOperators = []corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn,
		corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt}
)

// FuzzFromLabel is the datacenterFromLabel key FuzzPinnedObject may set.
const FuzzFromLabel = "placement.kubectl-dc.io/datacenter"

// FuzzBytes hands out fuzz input one small choice at a time; an exhausted
// input yields zeros.
type FuzzBytes []byte

// Next takes the next choice among n (0 to n-1).
func (f *FuzzBytes) Next(n int) int {
	if len(*f) == 0 {
		return 0
	}
	b := (*f)[0]
	*f = (*f)[1:]
	return int(b) % n
}

// FuzzPinnedObject builds, in namespace travis, one of the nine judged
// kinds named worker with a pod template chosen by data: the input of
// policy's FuzzEvaluatePinned, so that its committed seed corpus
// (policy/testdata/fuzz/FuzzEvaluatePinned) can be replayed elsewhere.
// matched says whether it carries app=worker.
func FuzzPinnedObject(data []byte) (b *ObjectBuilder, matched bool) {
	f := FuzzBytes(data)
	b = Kinds("travis", "worker")[f.Next(9)]
	matched = f.Next(4) != 0
	if matched {
		b.Labels("app", "worker")
	} else {
		b.Labels("app", "web")
	}
	if f.Next(3) == 0 {
		b.ObjectLabels(FuzzFromLabel, FuzzValues[f.Next(len(FuzzValues))])
	}
	for i, n := 0, f.Next(3); i < n; i++ {
		b.NodeSelector(FuzzKeys[f.Next(len(FuzzKeys))], FuzzValues[f.Next(len(FuzzValues))])
	}
	if f.Next(2) == 1 {
		b.NodeName([]string{"pod-1-1", "pod-2-1", "pod-3-1", "ghost"}[f.Next(4)])
	}
	for i, nt := 0, f.Next(4); i < nt; i++ {
		var reqs []corev1.NodeSelectorRequirement
		for j, ne := 0, f.Next(4); j < ne; j++ {
			var vals []string
			for k, nv := 0, f.Next(4); k < nv; k++ {
				vals = append(vals, FuzzValues[f.Next(len(FuzzValues))])
			}
			reqs = append(reqs, Expr(FuzzKeys[f.Next(len(FuzzKeys))], FuzzOperators[f.Next(len(FuzzOperators))], vals...))
		}
		b.RequiredAffinity(Term(reqs...))
	}
	return b, matched
}
