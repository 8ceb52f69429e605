package cel

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/webhook"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

// fromKey is a datacenterFromLabel key other than the example policy's.
const fromKey = "example.com/dc-of"

// TestPinnedEnforcedInsideTheAPIServer runs dc-webhook with
// --pinned-enforcement=cel behind the manifests' webhook configurations:
// it compiles the live policy, follows an edit of it and a new
// datacenter's first Node, injects a non-default datacenterFromLabel key;
// and with the webhook down, a pod without a datacenter is still refused
// (by the API server, not by a failed webhook call) while an unrelated one
// is admitted.
func TestPinnedEnforcedInsideTheAPIServer(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := c.RESTConfig()
	cs := c.Client()
	manifests := filepath.Join("..", "..", "..", "manifests")
	if err := webhooktest.ApplyFiles(ctx, cfg, filepath.Join(manifests, "crd", "placement.kubectl-dc.io_placementpolicies.yaml")); err != nil {
		t.Fatal(err)
	}
	home := cluster.Namespace(t, c)
	lease := "dc-webhook-admission-policies"
	if _, err := cs.CoordinationV1().Leases(home).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lease}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := cluster.Namespace(t, c)
	cl, err := client.New(cfg, client.Options{Scheme: policy.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	installWidgets(ctx, t, dyn)
	pol := testutil.Policy("cel-e2e").Label(c.Label()).Pinned(
		testutil.PinnedRule("edge").MatchLabels("app", "cel-edge"),
		testutil.PinnedRule("sites").MatchLabels("app", "cel-site").FromLabel(fromKey),
	).Edit(func(p *v1alpha1.PlacementPolicy) {
		p.Spec.WorkloadKinds = []v1alpha1.WorkloadKind{{Group: widgets.Group, Kind: "Widget", TemplatePath: "spec.template"}}
	}).Obj()
	if err := cl.Create(ctx, pol); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Delete(context.Background(), pol) })

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
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = local.Stop()
		}
		_ = local.Uninstall(context.Background())
		deleteCompiled(cs)
	})
	installScoped(ctx, t, c, cl, local, pol.Name)

	pod := func(sel string, pairs ...string) *corev1.Pod {
		b := testutil.Pod(ns, "probe").Labels(pairs...)
		if sel != "" {
			b.NodeSelector(c.Label(), sel)
		}
		return b.Pod()
	}
	dc := c.Topology().Datacenters[0].Name
	eventually(ctx, t, "the compiled policy refuses a cel-edge pod without a datacenter", cfg, pod("", "app", "cel-edge"), refusedByCEL("cel-e2e/edge"))
	eventually(ctx, t, "the compiled policy admits a cel-edge pod in "+dc, cfg, pod(dc, "app", "cel-edge"), admitted)

	// A non-default datacenterFromLabel key is injected on the policy's
	// datacenter label by the compiled MutatingAdmissionPolicy.
	site := testutil.Deployment(ns, "site").Labels("app", "cel-site").ObjectLabels(fromKey, dc).Obj()
	eventually(ctx, t, "the mutating policy injects "+fromKey, cfg, site, func(a answer) bool { return a.other == nil && !a.denied && a.selector[c.Label()] == dc })

	// A kind the policy declares, which no compiled policy knows, is
	// judged and injected by the webhook: the mutating webhooks are sent
	// it for the key of a policy in cel mode.
	widget := widgetOf(t, testutil.Deployment(ns, "site").Labels("app", "cel-site").ObjectLabels(fromKey, dc))
	eventuallyWidget(ctx, t, "the webhook injects "+fromKey+" into a Widget", dyn, widget, func(out *unstructured.Unstructured, err error) bool {
		sel, _, _ := unstructured.NestedStringMap(out.Object, "spec", "template", "spec", "nodeSelector")
		return err == nil && sel[c.Label()] == dc
	})
	unpinned := widgetOf(t, testutil.Deployment(ns, "site").Labels("app", "cel-site"))
	eventuallyWidget(ctx, t, "the webhook refuses a Widget without a datacenter", dyn, unpinned, func(_ *unstructured.Unstructured, err error) bool {
		return err != nil && strings.Contains(err.Error(), "denied the request") && strings.Contains(err.Error(), "nodeSelector")
	})

	// The policies follow an edit.
	start := time.Now()
	edited := pol.DeepCopy()
	if err := cl.Get(ctx, client.ObjectKeyFromObject(pol), edited); err != nil {
		t.Fatal(err)
	}
	edited.Spec.Pinned[0].Selector.MatchLabels = map[string]string{"app": "cel-edge2"}
	if err := cl.Update(ctx, edited); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the edited rule refuses a cel-edge2 pod", cfg, pod("", "app", "cel-edge2"), refusedByCEL("cel-e2e/edge"))
	t.Logf("the compiled policies followed the policy edit in %s", time.Since(start).Round(10*time.Millisecond))

	// And a new datacenter's first Node.
	start = time.Now()
	node := testutil.Node("cel-pod-77-1").Label(c.Label(), "pod-77").Obj()
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
	eventually(ctx, t, "a pod in the new datacenter pod-77 is admitted", cfg, pod("pod-77", "app", "cel-edge2"), admitted)
	t.Logf("the compiled policies knew the new datacenter %s after its first Node", time.Since(start).Round(10*time.Millisecond))

	// Every replica down.
	if err := local.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if a := dryRunCreate(ctx, cfg, pod("", "app", "cel-edge2")); !refusedByCEL("cel-e2e/edge")(a) {
		t.Errorf("webhook down: a cel-edge2 pod without a datacenter: denied=%v %s %v, want refused by the compiled policy", a.denied, a.message, a.other)
	}
	if a := dryRunCreate(ctx, cfg, pod("", "app", "web")); !admitted(a) {
		t.Errorf("webhook down: an unrelated pod: denied=%v %s %v, want admitted", a.denied, a.message, a.other)
	}
	if a := dryRunCreate(ctx, cfg, site); a.other != nil || a.denied || a.selector[c.Label()] != dc {
		t.Errorf("webhook down: a cel-site Deployment labelled %s=%s: %+v, want admitted with the nodeSelector injected", fromKey, dc, a)
	}
}

func admitted(a answer) bool { return a.other == nil && !a.denied }

// The declared kind of TestPinnedEnforcedInsideTheAPIServer.
var widgets = schema.GroupVersionResource{Group: "cel.e2e.kubectl-dc.io", Version: "v1", Resource: "widgets"}

// installWidgets creates the Widget CRD (any spec kept as sent) for the
// test and waits until it serves.
func installWidgets(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	cluster.InstallCRD(ctx, t, dyn, widgets, "Widget")
}

// widgetOf is a Widget with the labels and the pod template of the
// Deployment d builds.
func widgetOf(t *testing.T, d *testutil.ObjectBuilder) *unstructured.Unstructured {
	t.Helper()
	dep := d.Deployment()
	tmpl, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&dep.Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"replicas": int64(1), "template": tmpl}}}
	u.SetAPIVersion(widgets.GroupVersion().String())
	u.SetKind("Widget")
	u.SetNamespace(dep.Namespace)
	u.SetName(dep.Name)
	u.SetLabels(dep.Labels)
	return u
}

// eventuallyWidget dry-runs the creation of w until ok holds for the
// answer, or fails t.
func eventuallyWidget(ctx context.Context, t *testing.T, what string, dyn dynamic.Interface, w *unstructured.Unstructured, ok func(*unstructured.Unstructured, error) bool) {
	t.Helper()
	out := &unstructured.Unstructured{Object: map[string]any{}}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		o, err := dyn.Resource(widgets).Namespace(w.GetNamespace()).Create(ctx, w, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if ctx.Err() != nil {
			return false, nil // the answer before is the last one
		}
		if o == nil {
			o = &unstructured.Unstructured{Object: map[string]any{}}
		}
		out, last = o, err
		return ok(out, last), nil
	})
	if err != nil {
		t.Fatalf("%s: never (last answer: %v %v)", what, out.Object["spec"], last)
	}
}

func refusedByCEL(rule string) func(answer) bool {
	return func(a answer) bool {
		return a.denied && strings.Contains(a.message, "PlacementPolicy rule "+rule+":")
	}
}

// eventually dry-runs obj until ok holds for the answer, or fails t.
func eventually(ctx context.Context, t *testing.T, what string, cfg *rest.Config, obj runtime.Object, ok func(answer) bool) {
	t.Helper()
	var last answer
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = dryRunCreate(ctx, cfg, obj)
		return ok(last), nil
	})
	if err != nil {
		t.Fatalf("%s: never (last answer: denied=%v %s %v)", what, last.denied, last.message, last.other)
	}
}

// waitScoped waits until the local webhook has scoped its validating
// configuration's workload webhooks to the rules, pinned ones left to the
// compiled policies but for pods on a named node.
// installScoped registers local's webhook configurations, touches policy
// so that the webhook scopes them at once (not at its next resync), and
// waits until they are scoped.
func installScoped(ctx context.Context, t *testing.T, c *cluster.Cluster, cl client.Client, local *webhooktest.Local, policy string) {
	t.Helper()
	if err := local.Install(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rescope(ctx, t, cl, policy)
	if err := waitScoped(ctx, c); err != nil {
		t.Fatalf("the webhook never scoped its configurations: %v\n%s", err, local.LogTail())
	}
}

func waitScoped(ctx context.Context, c *cluster.Cluster) error {
	return webhooktest.WaitCondition(ctx, c.Client(), "dc-webhook"+webhook.LocalSuffix, "selected-by-a-rule", func(expr string) bool { return strings.Contains(expr, "nodeName") })
}

// rescope touches the policy named name, so that the local webhook
// rebuilds its engine and scopes its configurations at once: a replica
// scopes them on every rebuild and every 15 s, and Install may have
// replaced them after its first rebuild.
func rescope(ctx context.Context, t *testing.T, cl client.Client, name string) {
	t.Helper()
	touch := []byte(`{"metadata":{"annotations":{"e2e.kubectl-dc.io/touched":"` + time.Now().Format(time.RFC3339Nano) + `"}}}`)
	if err := cl.Patch(ctx, &v1alpha1.PlacementPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}, client.RawPatch(types.MergePatchType, touch)); err != nil {
		t.Fatalf("touching PlacementPolicy %s: %v", name, err)
	}
}

// deleteCompiled deletes every admission policy and binding dc-webhook
// compiled (labelled as managed by it), as a test's cleanup.
func deleteCompiled(cs kubernetes.Interface) {
	sel := metav1.ListOptions{LabelSelector: celpolicy.LabelManagedBy + "=" + celpolicy.ManagedBy}
	ar := cs.AdmissionregistrationV1()
	_ = ar.ValidatingAdmissionPolicyBindings().DeleteCollection(context.Background(), metav1.DeleteOptions{}, sel)
	_ = ar.ValidatingAdmissionPolicies().DeleteCollection(context.Background(), metav1.DeleteOptions{}, sel)
	_ = ar.MutatingAdmissionPolicyBindings().DeleteCollection(context.Background(), metav1.DeleteOptions{}, sel)
	_ = ar.MutatingAdmissionPolicies().DeleteCollection(context.Background(), metav1.DeleteOptions{}, sel)
}
