package rbac

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/webhook"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

// admissionPolicyResources are the compiled admission policies' kinds.
var admissionPolicyResources = []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings", "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"}

// celNeeds is what dc-webhook needs beyond webhookNeeds when some pinned
// rules are compiled (--pinned-enforcement=cel or both, or a policy's
// spec.pinnedEnforcement): the leader writes the compiled admission
// policies (AdmissionPolicies in webhook/admissionpolicies.go: it lists
// its own by label, creates, updates and deletes; never gets or watches)
// and elects itself through one Lease it reads and renews by name. The
// in-process audit of both mode (PinnedAuditor) compiles from the caches
// and needs nothing more.
func celNeeds() []grant {
	o := webhook.NewOptions()
	var out []grant
	for _, r := range admissionPolicyResources {
		out = append(out, grant{"admissionregistration.k8s.io", r, "", "", []string{"list", "create", "update", "delete"},
			"AdmissionPolicies.Reconcile: lists what it wrote (labelled app.kubernetes.io/managed-by=dc-webhook), writes what it compiles, deletes what is no longer compiled"})
	}
	return append(out, grant{"coordination.k8s.io", "leases", o.Namespace, o.AdmissionPoliciesLease, []string{"get", "update"},
		"AdmissionPolicies.Start: leader election through the Lease the overlay ships"})
}

// TestCELOverlayServiceAccountCanDoExactlyItsNeeds applies the base RBAC
// and manifests/overlays/cel/admission-policies.yaml to the real API
// server and asks it, as the ServiceAccount's token would be judged,
// about every verb on every resource webhookNeeds and celNeeds touch, at
// the names and namespaces they need and at others: allowed exactly where
// a need says so. The base's escalations stay denied, but for the writes
// of admission policies the overlay grants.
func TestCELOverlayServiceAccountCanDoExactlyItsNeeds(t *testing.T) {
	c := cluster.Require(t)
	ctx := context.Background()
	root := repoRoot(t)
	base := filepath.Join(root, "manifests", "base")
	if err := webhooktest.ApplyFiles(ctx, c.RESTConfig(), filepath.Join(base, "namespace.yaml"), filepath.Join(base, "rbac.yaml"),
		filepath.Join(root, "manifests", "overlays", "cel", "admission-policies.yaml")); err != nil {
		t.Fatal(err)
	}
	sa := readManifestRBAC(t).serviceAccount
	s := serviceAccount(sa.Namespace, sa.Name)
	cs := c.Client()
	cel := celNeeds()
	// The other tests judge the base RBAC alone: take the overlay's away,
	// and wait until the authorizer has seen it go.
	t.Cleanup(func() {
		ctx := context.Background()
		const name = "dc-webhook-admission-policies"
		_ = cs.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
		_ = cs.RbacV1().RoleBindings(sa.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
		_ = cs.RbacV1().Roles(sa.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
		_ = cs.CoordinationV1().Leases(sa.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
		probe := key{cel[0].group, cel[0].resource, "", "", "create"}
		_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			ok, _ := allowed(ctx, t, cs, s, probe)
			return !ok, nil
		})
	})
	needs := append(webhookNeeds(), cel...)
	waitAllowed(t, cs, s, []key{
		{cel[0].group, cel[0].resource, "", "", "create"},
		{"coordination.k8s.io", "leases", cel[len(cel)-1].namespace, cel[len(cel)-1].name, "update"},
	})
	model := grants(needs)
	probed := allowedExactly(ctx, t, cs, s, needs, "the webhook needs with the cel overlay")
	for _, k := range webhookEscalations() {
		if model(k) {
			// Creating admission policies is what the overlay is for.
			continue
		}
		if got, reason := allowed(ctx, t, cs, s, k); got {
			t.Errorf("%s may %s (%s): a stolen webhook token must not", s.user, k, reason)
		}
	}
	t.Logf("%d SubjectAccessReviews as %s", probed, s.user)
}
