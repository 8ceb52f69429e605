package cluster

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// PDBVerdict is what the loss of some pods does to one
// PodDisruptionBudget, as status's what-if and drain's plan both report it.
type PDBVerdict struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Expected, DesiredHealthy, CurrentHealthy and DisruptionsAllowed are
	// the disruption controller's numbers (policy.PDBBudgetOf).
	Expected           int `json:"expected"`
	DesiredHealthy     int `json:"desiredHealthy"`
	CurrentHealthy     int `json:"currentHealthy"`
	DisruptionsAllowed int `json:"disruptionsAllowed"`
	// Gone is how many of its pods the loss takes; HealthyLeft how many
	// healthy pods remain.
	Gone        int `json:"gone"`
	HealthyLeft int `json:"healthyLeft"`
	// Violated is true when fewer than DesiredHealthy remain.
	Violated bool `json:"violated"`
}

// PDBVerdicts judges every PDB that covers at least one pod gone says is
// gone, sorted by namespace and name.
func PDBVerdicts(pdbs []*policyv1.PodDisruptionBudget, pods []*corev1.Pod, gone func(*corev1.Pod) bool) []PDBVerdict {
	out := []PDBVerdict{}
	for _, pdb := range pdbs {
		b := policy.PDBBudgetOf(pdb, pods)
		n := 0
		for _, p := range pods {
			if b.Covers(p) && !policy.PodTerminal(p) && gone(p) {
				n++
			}
		}
		if n == 0 {
			continue
		}
		out = append(out, PDBVerdict{
			Namespace: pdb.Namespace, Name: pdb.Name,
			Expected: b.Expected, DesiredHealthy: b.DesiredHealthy, CurrentHealthy: b.CurrentHealthy,
			DisruptionsAllowed: b.DisruptionsAllowed, Gone: n,
			HealthyLeft: b.HealthyLeft(gone), Violated: b.ViolatedBy(gone),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}
