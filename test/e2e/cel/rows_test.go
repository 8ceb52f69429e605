package cel

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
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
	start := func(mode string) *webhooktest.Local {
		t.Helper()
		local, err := webhooktest.Start(ctx, webhooktest.Options{
			Binary: bin, Kubeconfig: c.Kubeconfig(), REST: cfg, ManifestsDir: manifests,
			Args: []string{"--webhook-configuration", "dc-webhook" + webhook.LocalSuffix, "--pinned-enforcement=" + mode,
				"--namespace", home, "--admission-policies-lease", lease, "--shutdown-delay=0"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return local
	}
	local := start("cel")
	t.Cleanup(func() {
		_ = local.Stop()
		_ = local.Uninstall(context.Background())
		deleteCompiled(cs)
	})
	installScoped(ctx, t, c, cl, local, actions.Name)
	// Every compiled policy in effect: the Deny rule refuses, the Warn
	// rule warns, the mutating policy injects.
	ns := cluster.Namespace(t, c)
	begin := time.Now()
	eventually(ctx, t, "the compiled Deny rule refusing a worker", cfg, testutil.Deployment(ns, "probe").Labels("app", "worker").Obj(), refusedByCEL(pinnedrows.DenyRule))
	eventually(ctx, t, "the compiled Warn rule warning", cfg, testutil.Deployment(ns, "probe").Labels("app", pinnedrows.WarnApp).Obj(),
		func(a answer) bool { return admitted(a) && a.warned[pinnedrows.WarnRule] })
	eventually(ctx, t, "the compiled mutating policy injecting", cfg, testutil.Deployment(ns, "probe").Labels("app", "worker").ObjectLabels(pinnedrows.DCLabel, "pod-2").Obj(),
		func(a answer) bool { return admitted(a) && a.selector[testutil.Zone] == "pod-2" })
	t.Logf("the compiled policies were in effect %s after the webhook was installed", time.Since(begin).Round(10*time.Millisecond))

	e := &pinnedrows.Env{Cluster: c, Mode: pinnedrows.CEL, LogTail: local.LogTail}
	for _, r := range pinnedrows.Rows() {
		t.Run(r.Name, func(t *testing.T) {
			t.Logf("way: %s", r.Way)
			t.Logf("outcome: %s", r.Outcome)
			r.Run(t, e)
		})
	}

	// Both mode: the same compiled policies enforce; the webhook audits.
	t.Run("both-mode-audits", func(t *testing.T) {
		_ = local.Stop()
		local = start("both")
		installScoped(ctx, t, c, cl, local, actions.Name)
		ns := cluster.Namespace(t, c)
		// Until the both-mode webhook has scoped the mutating webhook to
		// the rules' objects, it is not sent them.
		audits := func() float64 { return metric(t, local, "dc_webhook_pinned_audits_total") }
		eventually(ctx, t, "the webhook auditing a worker in pod-1", cfg, testutil.Deployment(ns, "probe").Labels("app", "worker").InDC("pod-1").Obj(),
			func(a answer) bool { return admitted(a) && audits() > 0 })
		before := audits()
		objs := []struct {
			obj  client.Object
			want func(answer) bool
		}{
			{testutil.Deployment(ns, "worker").Labels("app", "worker").Obj().(client.Object), refusedByCEL(pinnedrows.DenyRule)},
			{testutil.Deployment(ns, "labelled").Labels("app", "worker").ObjectLabels(pinnedrows.DCLabel, "pod-2").Obj().(client.Object),
				func(a answer) bool { return admitted(a) && a.selector[testutil.Zone] == "pod-2" }},
			{testutil.StatefulSet(ns, "unknown").Labels("app", "worker").InDC("pod-9").Obj().(client.Object), refusedByCEL(pinnedrows.DenyRule)},
			{testutil.Pod(ns, "warned").Labels("app", pinnedrows.WarnApp).Obj().(client.Object), func(a answer) bool { return admitted(a) && a.warned[pinnedrows.WarnRule] }},
			{testutil.Job(ns, "audited").Labels("app", pinnedrows.AuditApp).Obj().(client.Object), admitted},
		}
		for _, o := range objs {
			if a := dryRunCreate(ctx, cfg, o.obj); !o.want(a) {
				t.Errorf("%s %s: denied=%v %s %v selector %v warned %v", o.obj.GetObjectKind().GroupVersionKind().Kind, o.obj.GetName(), a.denied, a.message, a.other, a.selector, a.warned)
			}
		}
		if got := audits() - before; got != float64(len(objs)) {
			t.Errorf("%v requests audited, want %d (every one, the refused included)", got, len(objs))
		}
		// Pods relabelled into the rule through pods/status, which the
		// compiled policies judge: the mutating webhook is sent them for
		// the audit, the refused one included (dry runs of a merge patch,
		// so that no resourceVersion conflicts with the kubelet's status).
		before = audits()
		for _, r := range []struct {
			pod     *corev1.Pod
			refused bool
		}{
			{testutil.Pod(ns, "relabelled-in-pod-1").Labels("app", "decoy").InDC("pod-1").Pod(), false},
			{testutil.Pod(ns, "relabelled-nowhere").Labels("app", "decoy").Pod(), true},
		} {
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, r.pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			_, err := cs.CoreV1().Pods(ns).Patch(ctx, r.pod.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"worker"}}}`),
				metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}, "status")
			if refused := err != nil && strings.Contains(err.Error(), "PlacementPolicy rule "+pinnedrows.DenyRule+":"); refused != r.refused || (err != nil && !refused) {
				t.Errorf("pod %s relabelled app=worker through pods/status: %v, want refused by the compiled policy: %v", r.pod.Name, err, r.refused)
			}
		}
		if got := audits() - before; got != 2 {
			t.Errorf("%v pod relabels through pods/status audited, want 2", got)
		}
		if d := metric(t, local, "dc_webhook_pinned_verdict_differences_total"); d != 0 {
			t.Errorf("%v verdict differences between the engine and the compiled policies\n%s", d, local.LogTail())
		}
		t.Logf("%v requests audited, 0 differences", audits())
	})

	// The flag is the default; a policy's spec.pinnedEnforcement chooses
	// for its own rules.
	t.Run("policy-field-chooses", func(t *testing.T) {
		_ = local.Stop()
		local = start("webhook")
		if err := local.Install(ctx, nil); err != nil {
			t.Fatal(err)
		}
		bad := testutil.Policy("e2e-field-bad").Datacenters("pod-1").Pinned(testutil.PinnedRule("r").MatchLabels("app", "field-bad")).
			Edit(func(p *v1alpha1.PlacementPolicy) { p.Spec.PinnedEnforcement = "sometimes" }).Obj()
		if err := cl.Create(ctx, bad); !apierrors.IsInvalid(err) {
			t.Errorf("spec.pinnedEnforcement sometimes: %v, want Invalid", err)
		}
		field := testutil.Policy("e2e-field").Datacenters("pod-1", "pod-2", "pod-3").Pinned(testutil.PinnedRule("r").MatchLabels("app", "field-cel")).
			Edit(func(p *v1alpha1.PlacementPolicy) { p.Spec.PinnedEnforcement = v1alpha1.PinnedEnforcementCEL }).Obj()
		if err := cl.Create(ctx, field); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Delete(context.Background(), field) })
		ns := cluster.Namespace(t, c)
		eventually(ctx, t, "the policy asking for cel compiled under --pinned-enforcement=webhook", cfg, testutil.Pod(ns, "probe").Labels("app", "field-cel").Obj(), refusedByCEL("e2e-field/r"))
		// The others follow the flag: the webhook judges them again, and
		// their compiled policies are deleted.
		eventually(ctx, t, "macstadium judged by the webhook again", cfg, testutil.Deployment(ns, "probe").Labels("app", "worker").Obj(),
			func(a answer) bool {
				return a.other != nil && strings.Contains(a.other.Error(), `admission webhook "`) && strings.Contains(a.other.Error(), pinnedrows.DenyRule)
			})
		var names []string
		_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			vaps, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{LabelSelector: celpolicy.LabelManagedBy + "=" + celpolicy.ManagedBy})
			if err != nil {
				return false, nil
			}
			names = nil
			for _, v := range vaps.Items {
				names = append(names, v.Name)
			}
			return len(names) == 1 && names[0] == celpolicy.ValidatingName("e2e-field", "r"), nil
		})
		if len(names) != 1 || names[0] != celpolicy.ValidatingName("e2e-field", "r") {
			t.Errorf("compiled policies %v, want only %s", names, celpolicy.ValidatingName("e2e-field", "r"))
		}
	})

	for _, l := range pinnedrows.WebhookOnly {
		t.Run(strings.TrimPrefix(l.Name, "Test"), func(t *testing.T) {
			t.Skipf("holds with the webhook enforcing only (test/e2e/webhook): %s", l.Reason)
		})
	}
}

// metric sums the series of name in the webhook's metrics (0 for none).
func metric(t *testing.T, local *webhooktest.Local, name string) float64 {
	t.Helper()
	text, err := local.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}
