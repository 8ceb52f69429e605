package cel

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/e2e/pinnedrows"
	"github.com/kubectl-dc/kubectl-dc/webhook"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

// TestPinnedRows runs the pinned rows of the webhook suite (pinnedrows)
// with dc-webhook's pinned path disabled (--pinned-enforcement=cel, in
// dc-system as deployed, behind the manifests' configurations scoped by
// the webhook itself) and the compiled admission policies of the
// MacStadium example and e2e-actions policies enforcing. The rows that
// hold with the webhook enforcing only are listed, each with its reason.
func TestPinnedRows(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := c.RESTConfig()
	cs := c.Client()
	manifests := filepath.Join("..", "..", "..", "manifests")
	if err := webhooktest.InstallExample(ctx, cfg, manifests); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(cfg, client.Options{Scheme: policy.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	actions := pinnedrows.Actions()
	if err := cl.Create(ctx, actions); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cl.Delete(context.Background(), actions)
		_ = cl.Delete(context.Background(), &v1alpha1.PlacementPolicy{ObjectMeta: metav1.ObjectMeta{Name: "macstadium"}})
	})
	const home, lease = "dc-system", "dc-webhook-admission-policies"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: home}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.CoordinationV1().Leases(home).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lease}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	bin, err := cluster.BuildBinary("./cmd/dc-webhook")
	if err != nil {
		t.Fatal(err)
	}
	local, err := webhooktest.Start(ctx, webhooktest.Options{
		Binary: bin, Kubeconfig: c.Kubeconfig(), REST: cfg, ManifestsDir: manifests,
		Args: []string{"--webhook-configuration", "dc-webhook" + webhook.LocalSuffix, "--pinned-enforcement=cel",
			"--namespace", home, "--admission-policies-lease", lease},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = local.Stop()
		_ = local.Uninstall(context.Background())
		sel := metav1.ListOptions{LabelSelector: celpolicy.LabelManagedBy + "=" + celpolicy.ManagedBy}
		ar := cs.AdmissionregistrationV1()
		_ = ar.ValidatingAdmissionPolicyBindings().DeleteCollection(context.Background(), metav1.DeleteOptions{}, sel)
		_ = ar.ValidatingAdmissionPolicies().DeleteCollection(context.Background(), metav1.DeleteOptions{}, sel)
		_ = ar.MutatingAdmissionPolicyBindings().DeleteCollection(context.Background(), metav1.DeleteOptions{}, sel)
		_ = ar.MutatingAdmissionPolicies().DeleteCollection(context.Background(), metav1.DeleteOptions{}, sel)
	})
	if err := local.Install(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := waitScoped(ctx, c); err != nil {
		t.Fatalf("the webhook never scoped its configurations: %v\n%s", err, local.LogTail())
	}
	// Every compiled policy in effect: the Deny rule refuses, the Warn
	// rule warns, the mutating policy injects.
	ns := cluster.Namespace(t, c)
	start := time.Now()
	eventually(ctx, t, "the compiled Deny rule refusing a worker", cfg, testutil.Deployment(ns, "probe").Labels("app", "worker").Obj(), refusedByCEL(pinnedrows.DenyRule))
	eventually(ctx, t, "the compiled Warn rule warning", cfg, testutil.Deployment(ns, "probe").Labels("app", pinnedrows.WarnApp).Obj(),
		func(a answer) bool { return admitted(a) && a.warned[pinnedrows.WarnRule] })
	eventually(ctx, t, "the compiled mutating policy injecting", cfg, testutil.Deployment(ns, "probe").Labels("app", "worker").ObjectLabels(pinnedrows.DCLabel, "pod-2").Obj(),
		func(a answer) bool { return admitted(a) && a.selector[testutil.Zone] == "pod-2" })
	t.Logf("the compiled policies were in effect %s after the webhook was installed", time.Since(start).Round(10*time.Millisecond))

	e := &pinnedrows.Env{Cluster: c, Mode: pinnedrows.CEL, LogTail: local.LogTail}
	for _, r := range pinnedrows.Rows() {
		t.Run(r.Name, func(t *testing.T) {
			t.Logf("way: %s", r.Way)
			t.Logf("outcome: %s", r.Outcome)
			r.Run(t, e)
		})
	}
	for _, l := range pinnedrows.WebhookOnly {
		t.Run(strings.TrimPrefix(l.Name, "Test"), func(t *testing.T) {
			t.Skipf("holds with the webhook enforcing only (test/e2e/webhook): %s", l.Reason)
		})
	}
}
