package celtest

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
)

// Install creates the admission policies and bindings of set, as
// dc-webhook --pinned-enforcement=cel does, for suites that run them
// without it.
func Install(ctx context.Context, cs kubernetes.Interface, set *celpolicy.Set) error {
	ar := cs.AdmissionregistrationV1()
	for i := range set.Validating {
		if _, err := ar.ValidatingAdmissionPolicies().Create(ctx, &set.Validating[i], metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating ValidatingAdmissionPolicy %s: %w", set.Validating[i].Name, err)
		}
	}
	for i := range set.ValidatingBindings {
		if _, err := ar.ValidatingAdmissionPolicyBindings().Create(ctx, &set.ValidatingBindings[i], metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating ValidatingAdmissionPolicyBinding %s: %w", set.ValidatingBindings[i].Name, err)
		}
	}
	for i := range set.Mutating {
		if _, err := ar.MutatingAdmissionPolicies().Create(ctx, &set.Mutating[i], metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating MutatingAdmissionPolicy %s: %w", set.Mutating[i].Name, err)
		}
	}
	for i := range set.MutatingBindings {
		if _, err := ar.MutatingAdmissionPolicyBindings().Create(ctx, &set.MutatingBindings[i], metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating MutatingAdmissionPolicyBinding %s: %w", set.MutatingBindings[i].Name, err)
		}
	}
	return nil
}

// Uninstall deletes every admission policy and binding dc-webhook manages
// (labelled celpolicy.LabelManagedBy), bindings first; errors are left to
// the next Install to report.
func Uninstall(ctx context.Context, cs kubernetes.Interface) {
	sel := metav1.ListOptions{LabelSelector: celpolicy.LabelManagedBy + "=" + celpolicy.ManagedBy}
	ar := cs.AdmissionregistrationV1()
	_ = ar.ValidatingAdmissionPolicyBindings().DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
	_ = ar.ValidatingAdmissionPolicies().DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
	_ = ar.MutatingAdmissionPolicyBindings().DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
	_ = ar.MutatingAdmissionPolicies().DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
}
