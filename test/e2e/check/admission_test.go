package check

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/webhook"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

const (
	// templateApp is what the suite's rule selects, in pod templates only.
	templateApp = "e2e-template-worker"
	fromLabel   = "placement.kubectl-dc.io/datacenter"
)

// suitePolicy is a Deny rule over templateApp with datacenterFromLabel.
func suitePolicy() *v1alpha1.PlacementPolicy {
	p := testutil.Policy("e2e-check").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(testutil.PinnedRule("template-workers").MatchLabels("app", templateApp).FromLabel(fromLabel)).Obj()
	p.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PlacementPolicy"}
	return p
}

// writeYAML writes objs as a YAML stream into dir/name and returns the
// path.
func writeYAML(t *testing.T, dir, name string, objs ...runtime.Object) string {
	t.Helper()
	var b strings.Builder
	for i, o := range objs {
		data, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(data)
	}
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startWebhook installs the CRD and the suite's policy, runs dc-webhook as
// a local process registered through the manifests' configurations, and
// waits until it denies by the policy. Everything is removed when t ends,
// so that the other tests of the package see neither.
func startWebhook(ctx context.Context, t *testing.T, c *cluster.Cluster, ns string) {
	t.Helper()
	// Ready when a Deployment the policy denies is denied by a dry run.
	probe := testutil.Deployment(ns, "probe").Labels("app", templateApp).Obj().(*appsv1.Deployment)
	startWebhookWith(ctx, t, c, []*v1alpha1.PlacementPolicy{suitePolicy()}, func(ctx context.Context) (bool, error) {
		_, err := c.Client().AppsV1().Deployments(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "e2e-check/template-workers"), nil
	})
}

// startWebhookWith installs the CRD and policies, runs dc-webhook as a
// local process registered through the manifests' configurations, and
// waits until ready says the API server calls it with the policies in
// force. Everything is removed when t ends.
func startWebhookWith(ctx context.Context, t *testing.T, c *cluster.Cluster, policies []*v1alpha1.PlacementPolicy, ready func(context.Context) (bool, error)) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	installCRD(ctx, t, dyn)
	for _, pol := range policies {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pol)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		if _, err := dyn.Resource(policyResource).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create policy %s: %v", pol.Name, err)
		}
		name := pol.Name
		t.Cleanup(func() {
			_ = dyn.Resource(policyResource).Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}

	root, err := cluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := cluster.BuildBinary("./cmd/dc-webhook")
	if err != nil {
		t.Fatal(err)
	}
	local, err := webhooktest.Start(ctx, webhooktest.Options{
		Binary: bin, Kubeconfig: c.Kubeconfig(), REST: c.RESTConfig(), ManifestsDir: filepath.Join(root, "manifests"),
		Args: []string{"--webhook-configuration", "dc-webhook" + webhook.LocalSuffix},
	})
	if err != nil {
		t.Fatalf("start dc-webhook: %v", err)
	}
	t.Cleanup(func() {
		_ = local.Uninstall(context.Background())
		_ = local.Stop()
	})
	if err := local.Install(ctx, ready); err != nil {
		t.Fatalf("dc-webhook never answered with the policies in force: %v\n%s", err, local.LogTail())
	}
}

// TestTemplateLabelsOfflineAndAtAdmission: a ReplicationController whose
// pod template carries the selected label while its own metadata does not
// is denied offline and at admission (its every pod would be); a
// Deployment that carries only the datacenter label is admitted by both,
// after the same mutation.
func TestTemplateLabelsOfflineAndAtAdmission(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := kubectlDC(t)
	ns := cluster.Namespace(t, c)
	startWebhook(ctx, t, c, ns)

	dir := t.TempDir()
	policyFile := writeYAML(t, dir, "policy.yaml", suitePolicy())
	rc := testutil.ReplicationController(ns, "legacy").ObjectLabels("tier", "backend").TemplateLabels("app", templateApp).Obj().(*corev1.ReplicationController)
	rc.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"}
	rcFile := writeYAML(t, dir, "rc.yaml", rc)

	t.Run("denied offline", func(t *testing.T) {
		rep, code := runCheck(t, bin, c.Kubeconfig(), "check", "-f", rcFile, "--policy", policyFile, "-o", "json")
		if code != 1 || len(rep.Results) != 1 || rep.Results[0].Object.Kind != "ReplicationController" || rep.Results[0].Action != "Deny" ||
			rep.Results[0].Field != "spec.template.spec.nodeSelector["+c.Label()+"]" {
			t.Errorf("exit code = %d, results %s; want 1 Deny on the template's nodeSelector", code, dump(rep.Results))
		}
	})
	t.Run("denied at admission", func(t *testing.T) {
		_, err := c.Client().CoreV1().ReplicationControllers(ns).Create(ctx, rc, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "e2e-check/template-workers") {
			t.Errorf("create = %v, want a denial by e2e-check/template-workers", err)
		}
	})

	// Only the datacenter label: the mutation injects the nodeSelector.
	d := testutil.Deployment(ns, "labelled").ObjectLabels(fromLabel, "pod-2").TemplateLabels("app", templateApp).Obj().(*appsv1.Deployment)
	d.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	dFile := writeYAML(t, dir, "labelled.yaml", d)
	t.Run("datacenter label only: admitted offline after the mutation", func(t *testing.T) {
		out, code := runCheckRaw(t, bin, c.Kubeconfig(), "check", "-f", dFile, "--policy", policyFile, "-o", "json")
		var rep struct {
			Results   []result `json:"results"`
			Mutations []struct {
				Field, Value string
			} `json:"mutations"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if code != 0 || len(rep.Results) != 0 || len(rep.Mutations) != 1 || rep.Mutations[0].Value != "pod-2" {
			t.Errorf("exit code = %d\n%s", code, out)
		}
	})
	t.Run("datacenter label only: admitted at admission with the same nodeSelector", func(t *testing.T) {
		got, err := c.Client().AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatalf("create = %v, want admitted", err)
		}
		if v := got.Spec.Template.Spec.NodeSelector[c.Label()]; v != "pod-2" {
			t.Errorf("nodeSelector[%s] = %q after admission, want pod-2 (injected)", c.Label(), v)
		}
	})
}

// TestSharedIdentityOneWrong: two files (one tree per datacenter) hold the
// same Deployment identity, one wrong: exit 1, with one Deny that names
// the wrong file and line.
func TestSharedIdentityOneWrong(t *testing.T) {
	c := cluster.Require(t)
	bin := kubectlDC(t)
	dir := t.TempDir()
	policyFile := writeYAML(t, dir, "policy.yaml", suitePolicy())
	good := testutil.Deployment("team-a", "worker").Labels("app", templateApp).InDC("pod-1").Obj().(*appsv1.Deployment)
	good.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	bad := good.DeepCopy()
	bad.Spec.Template.Spec.NodeSelector = map[string]string{c.Label(): "pod-9"}
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "team-a"}}
	writeYAML(t, dir, "overlays/pod-1/worker.yaml", good)
	wrong := writeYAML(t, dir, "overlays/pod-2/worker.yaml", cm, bad)

	rep, code := runCheck(t, bin, c.Kubeconfig(), "check", "-f", filepath.Join(dir, "overlays"), "-R", "--policy", policyFile, "-o", "json")
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1:\n%s", len(rep.Results), dump(rep.Results))
	}
	r := rep.Results[0]
	// The ConfigMap is document 1 (its YAML ends before the separator).
	if r.Action != "Deny" || r.Source.File != wrong || r.Source.Document != 2 || r.Source.Line < 2 || !strings.Contains(r.Message, `unknown datacenter "pod-9"`) {
		t.Errorf("result %s; want one Deny from %s document 2", dump(rep.Results), wrong)
	}
	data, err := os.ReadFile(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(string(data), "\n"); r.Source.Line > len(lines) || lines[r.Source.Line-1] != "apiVersion: apps/v1" {
		t.Errorf("line %d of %s is not the Deployment's first line:\n%s", r.Source.Line, wrong, data)
	}
	if rep.Summary.Objects != 2 {
		t.Errorf("%d objects checked, want 2 (each document)", rep.Summary.Objects)
	}

	// The table names it too.
	out, _ := runCheckRaw(t, bin, c.Kubeconfig(), "check", "-f", filepath.Join(dir, "overlays"), "-R", "--policy", policyFile)
	if want := fmt.Sprintf("Deployment/team-a/worker   %s#2:%d", wrong, r.Source.Line); !strings.Contains(out, want) {
		t.Errorf("table lacks %q:\n%s", want, out)
	}
}
