package testutil

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// PDBBuilder builds a PodDisruptionBudget; it starts at generation 1 with
// no selector, no budget and an empty status (never synced).
type PDBBuilder struct{ p *policyv1.PodDisruptionBudget }

// PDB starts a PodDisruptionBudget with no selector (it selects no pod).
func PDB(namespace, name string) *PDBBuilder {
	return &PDBBuilder{p: &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Generation: 1},
	}}
}

// MatchLabels sets a selector of matchLabels from key/value pairs; no pairs
// make the empty selector, which selects every pod of the namespace.
func (b *PDBBuilder) MatchLabels(pairs ...string) *PDBBuilder {
	s := &metav1.LabelSelector{}
	if len(pairs) > 0 {
		s.MatchLabels = kv(pairs)
	}
	b.p.Spec.Selector = s
	return b
}

// Selector replaces the selector; nil selects no pod.
func (b *PDBBuilder) Selector(s *metav1.LabelSelector) *PDBBuilder {
	b.p.Spec.Selector = s
	return b
}

// MinAvailable sets spec.minAvailable: "2" is an integer, "50%" a
// percentage.
func (b *PDBBuilder) MinAvailable(v string) *PDBBuilder {
	x := intstr.Parse(v)
	b.p.Spec.MinAvailable = &x
	return b
}

// MaxUnavailable sets spec.maxUnavailable: "1" is an integer, "10%" a
// percentage.
func (b *PDBBuilder) MaxUnavailable(v string) *PDBBuilder {
	x := intstr.Parse(v)
	b.p.Spec.MaxUnavailable = &x
	return b
}

// Synced sets the status the disruption controller writes for the current
// generation, with expectedPods expected.
func (b *PDBBuilder) Synced(expected int32) *PDBBuilder {
	b.p.Status.ObservedGeneration = b.p.Generation
	b.p.Status.ExpectedPods = expected
	return b
}

// Stale sets a status written for an older generation, with expectedPods
// expected: the spec changed since the controller last synced.
func (b *PDBBuilder) Stale(expected int32) *PDBBuilder {
	b.p.Generation++
	b.p.Status.ObservedGeneration = b.p.Generation - 1
	b.p.Status.ExpectedPods = expected
	return b
}

// Disrupted lists pods in status.disruptedPods, as the eviction API does
// before the pods are deleted.
func (b *PDBBuilder) Disrupted(pods ...string) *PDBBuilder {
	if b.p.Status.DisruptedPods == nil {
		b.p.Status.DisruptedPods = map[string]metav1.Time{}
	}
	for _, p := range pods {
		b.p.Status.DisruptedPods[p] = metav1.Now()
	}
	return b
}

// Obj returns the PodDisruptionBudget.
func (b *PDBBuilder) Obj() *policyv1.PodDisruptionBudget { return b.p }

// ReadyPods builds n Ready pods named "<prefix>-<i>" (from 1) in namespace
// with labels from key/value pairs.
func ReadyPods(namespace, prefix string, n int, pairs ...string) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, Pod(namespace, fmt.Sprintf("%s-%d", prefix, i)).Labels(pairs...).Ready(true).Pod())
	}
	return out
}
