package cluster

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// PolicyGVR is the PlacementPolicy resource.
var PolicyGVR = v1alpha1.GroupVersion.WithResource(v1alpha1.Resource)

// Policies are the live PlacementPolicies as one reader sees them.
type Policies struct {
	// Items are the policies that decode and compile, sorted by name.
	Items []v1alpha1.PlacementPolicy
	// Warnings name each policy that was left out and why: a policy that
	// cannot be decoded or compiled is never dropped silently.
	Warnings []string
	// Installed is false when the cluster has no PlacementPolicy API.
	Installed bool
	// Forbidden is the API server's refusal when RBAC does not let the
	// caller list them, else nil.
	Forbidden error
}

// ReadPolicies lists the PlacementPolicies with pages of PageSize; see
// Lister.ReadPolicies.
func ReadPolicies(ctx context.Context, dyn dynamic.Interface) (Policies, error) {
	return Lister{}.ReadPolicies(ctx, dyn)
}

// ReadPolicies lists the PlacementPolicies through dyn with one paginated
// LIST of l's page size and decodes each. A cluster without the CRD, or a
// caller who may not list policies, gets no policies and no error
// (Installed, Forbidden say which); any other failure is an error.
func (l Lister) ReadPolicies(ctx context.Context, dyn dynamic.Interface) (Policies, error) {
	out := Policies{Installed: true}
	var raw []*unstructured.Unstructured
	_, err := l.List(ctx, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return dyn.Resource(PolicyGVR).List(ctx, o)
	}, func(obj runtime.Object) {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			raw = append(raw, u)
		}
	})
	switch {
	case apierrors.IsNotFound(err):
		out.Installed = false
		return out, nil
	case apierrors.IsForbidden(err):
		out.Forbidden = err
		out.Warnings = append(out.Warnings, "cannot list PlacementPolicies (forbidden): the datacenter label and policy results are guessed without them; grant list on placementpolicies.placement.kubectl-dc.io (docs/rbac.md)")
		return out, nil
	case err != nil:
		return out, fmt.Errorf("listing PlacementPolicies: %w", err)
	}
	out.Items, out.Warnings = DecodePolicies(raw)
	return out, nil
}

// DecodePolicies decodes and validates listed policies, sorted by name.
// Each one that fails is left out with a warning that names it.
func DecodePolicies(raw []*unstructured.Unstructured) ([]v1alpha1.PlacementPolicy, []string) {
	var items []v1alpha1.PlacementPolicy
	var warnings []string
	for _, u := range raw {
		var p v1alpha1.PlacementPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
			warnings = append(warnings, fmt.Sprintf("PlacementPolicy %s cannot be decoded and is ignored: %v", u.GetName(), err))
			continue
		}
		if errs := policy.ValidatePolicy(&p); len(errs) > 0 {
			warnings = append(warnings, fmt.Sprintf("PlacementPolicy %s is invalid and is ignored: %v", p.Name, errs.ToAggregate()))
			continue
		}
		items = append(items, p)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return items, warnings
}
