package policy

import (
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// PDBBudget is what a PodDisruptionBudget allows over a set of pods,
// computed the way the disruption controller computes the PDB's status, so
// that kubectl dc drain and the what-if of kubectl dc status give one
// answer.
type PDBBudget struct {
	// Namespace and Name name the PDB.
	Namespace, Name string
	// SelectsNothing is true when the PDB has no selector or one that does
	// not parse: it covers no pod (in policy/v1 a null selector matches no
	// pod, an empty one every pod of the namespace).
	SelectsNothing bool
	// SelectorError says why the selector does not parse; "" when it does.
	SelectorError string
	// SpecError says why minAvailable or maxUnavailable cannot be used (a
	// percentage that does not parse, say); "" when they can. The
	// disruption controller then allows no disruption, and so does the
	// budget: DesiredHealthy is CurrentHealthy.
	SpecError string
	// Matched is the number of pods in the PDB's namespace its selector
	// matches, in any state.
	Matched int
	// Live is the number of matched pods that have not finished and are
	// not being deleted.
	Live int
	// Expected is the number of pods the PDB expects: for an integer
	// minAvailable the matched pods; for a percentage minAvailable or any
	// maxUnavailable the scale of the pods' controllers, read from
	// status.expectedPods when the status is current (observedGeneration is
	// the PDB's generation) and not 0, else estimated as Live. It is 0 when
	// the PDB sets neither minAvailable nor maxUnavailable: the disruption
	// controller then allows no disruption at all.
	Expected int
	// ExpectedFromStatus is true when Expected is status.expectedPods.
	ExpectedFromStatus bool
	// DesiredHealthy is the number of healthy pods the PDB requires; 0 when
	// it sets neither minAvailable nor maxUnavailable (which still allows no
	// disruption: see Expected).
	DesiredHealthy int
	// CurrentHealthy is the number of matched pods that are Ready, not
	// being deleted, and not already evicted (listed in
	// status.disruptedPods).
	CurrentHealthy int
	// DisruptionsAllowed is how many healthy pods may be evicted now:
	// CurrentHealthy - DesiredHealthy, and 0 when that is negative or the
	// PDB expects no pod.
	DisruptionsAllowed int

	selector labels.Selector
	healthy  []*corev1.Pod
	// scaled is true when Expected is the controllers' scale rather than
	// the matched pods.
	scaled bool
}

// PDBBudgetOf returns the budget of pdb over pods, which may come from any
// namespace: only those in the PDB's namespace that its selector matches
// count. Healthy means Ready and not being deleted, as for the disruption
// controller.
func PDBBudgetOf(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod) PDBBudget {
	b := PDBBudget{Namespace: pdb.Namespace, Name: pdb.Name, selector: labels.Nothing()}
	switch sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); {
	case err != nil:
		b.SelectsNothing, b.SelectorError = true, err.Error()
	case pdb.Spec.Selector == nil:
		b.SelectsNothing = true
	default:
		b.selector = sel
	}
	for _, p := range pods {
		if !b.Covers(p) {
			continue
		}
		b.Matched++
		if !PodTerminal(p) {
			b.Live++
		}
		if _, evicted := pdb.Status.DisruptedPods[p.Name]; p.DeletionTimestamp == nil && !evicted && PodReady(p) {
			b.healthy = append(b.healthy, p)
		}
	}
	b.CurrentHealthy = len(b.healthy)

	// The expected count and the desired healthy count of the disruption
	// controller's getExpectedPodCount; maxUnavailable takes precedence.
	var err error
	switch {
	case pdb.Spec.MaxUnavailable != nil || pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type != intstr.Int:
		b.scaled = true
		if pdb.Status.ObservedGeneration == pdb.Generation && pdb.Status.ExpectedPods > 0 {
			b.Expected, b.ExpectedFromStatus = int(pdb.Status.ExpectedPods), true
		} else {
			b.Expected = b.Live
		}
		if pdb.Spec.MaxUnavailable != nil {
			var down int
			down, err = intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, b.Expected, true)
			b.DesiredHealthy = max(b.Expected-down, 0)
		} else {
			b.DesiredHealthy, err = intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, b.Expected, true)
		}
	case pdb.Spec.MinAvailable != nil:
		b.Expected, b.DesiredHealthy = b.Matched, pdb.Spec.MinAvailable.IntValue()
	}
	if err != nil {
		b.SpecError = err.Error()
		b.DesiredHealthy = b.CurrentHealthy
	}
	if b.Expected > 0 {
		b.DisruptionsAllowed = max(b.CurrentHealthy-b.DesiredHealthy, 0)
	}
	return b
}

// Covers reports whether the PDB counts pod: it is in the PDB's namespace
// and the selector matches it.
func (b PDBBudget) Covers(pod *corev1.Pod) bool {
	return pod != nil && pod.Namespace == b.Namespace && b.selector != nil && b.selector.Matches(labels.Set(pod.Labels))
}

// HealthyLeft returns how many of the PDB's healthy pods remain when the
// pods gone selects are gone.
func (b PDBBudget) HealthyLeft(gone func(*corev1.Pod) bool) int {
	left := 0
	for _, p := range b.healthy {
		if !gone(p) {
			left++
		}
	}
	return left
}

// ViolatedBy reports whether losing the pods gone selects breaks the
// budget: at least one of its healthy pods is gone and fewer than
// DesiredHealthy are left. A budget that is already broken is not broken
// by losing pods that were not healthy.
func (b PDBBudget) ViolatedBy(gone func(*corev1.Pod) bool) bool {
	left := b.HealthyLeft(gone)
	return left < b.CurrentHealthy && left < b.DesiredHealthy
}

// AllowedAtFullHealth returns how many of the PDB's pods may be disrupted
// once every pod that can be healthy is: Expected (Live for an integer
// minAvailable) minus DesiredHealthy, and 0 when the PDB has a SpecError or
// expects no pod (it sets neither minAvailable nor maxUnavailable, say).
// 0 means no eviction of its pods ever passes, whatever the drain waits
// for.
func (b PDBBudget) AllowedAtFullHealth() int {
	if b.SpecError != "" || b.Expected == 0 {
		return 0
	}
	full := b.Expected
	if !b.scaled {
		full = b.Live
	}
	return max(full-b.DesiredHealthy, 0)
}
