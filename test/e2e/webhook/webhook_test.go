package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

// wantInvalid asserts that err is the webhook's field-level denial.
func wantInvalid(t *testing.T, err error, field, rule string) {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted; want a denial on %s by %s", field, rule)
	}
	status, ok := err.(apierrors.APIStatus)
	if !ok || !apierrors.IsInvalid(err) {
		t.Fatalf("error %v is not an Invalid status", err)
	}
	st := status.Status()
	if !strings.Contains(st.Message, `admission webhook "`) || !strings.Contains(st.Message, rule) {
		t.Errorf("message %q does not come from the webhook rule %s", st.Message, rule)
	}
	var fields []string
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			fields = append(fields, c.Field)
		}
	}
	if !contains(fields, field) {
		t.Errorf("causes %v lack field %s", fields, field)
	}
}

func TestDenyWarnAudit(t *testing.T) {
	c := env(t)
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	warnings := &recorder{}
	cs := clientWithWarnings(c, warnings)

	_, err := cs.AppsV1().Deployments(ns).Create(ctx, tu.Deployment(ns, "worker").Labels("app", "worker").Deployment(), metav1.CreateOptions{})
	wantInvalid(t, err, "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]", denyRule)

	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, tu.Deployment(ns, "warned").Labels("app", warnApp).Deployment(), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Warn rule denied: %v", err)
	}
	if got := warnings.get(); !contains(got, warnRule+": spec.template.spec.nodeSelector[topology.kubernetes.io/zone]") {
		t.Errorf("warnings = %q, want one from %s", got, warnRule)
	}

	before := len(warnings.get())
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, tu.Deployment(ns, "audited").Labels("app", auditApp).Deployment(), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Audit rule denied: %v", err)
	}
	if got := warnings.get()[before:]; len(got) != 0 {
		t.Errorf("Audit rule warned: %q", got)
	}
	metrics, err := local.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`dc_webhook_decisions_total{action="Audit",kind="Deployment",operation="CREATE",rule="` + auditRule + `"}`,
		`dc_webhook_decisions_total{action="Warn",kind="Deployment",operation="CREATE",rule="` + warnRule + `"}`,
		`dc_webhook_decisions_total{action="Deny",kind="Deployment",operation="CREATE",rule="` + denyRule + `"}`,
		`dc_webhook_request_duration_seconds_bucket{kind="Deployment",webhook="validate",le="0.001"}`,
		`dc_webhook_request_duration_seconds_count{kind="Deployment",webhook="validate"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s; dc_webhook lines:\n%s", want, grepLines(metrics, "dc_webhook_"))
		}
	}
}

func TestMutationInjectsSelector(t *testing.T) {
	c := env(t)
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	cs := c.Client()
	d := tu.Deployment(ns, "worker").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2").Deployment()
	got, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if sel := got.Spec.Template.Spec.NodeSelector["topology.kubernetes.io/zone"]; sel != "pod-2" {
		t.Fatalf("nodeSelector = %v, want zone pod-2 injected", got.Spec.Template.Spec.NodeSelector)
	}
	metrics, err := local.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`dc_webhook_mutations_total{kind="Deployment"}`, `dc_webhook_request_duration_seconds_count{kind="Deployment",webhook="mutate"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s; dc_webhook lines:\n%s", want, grepLines(metrics, "dc_webhook_"))
		}
	}
	// Its pods land in pod-2.
	eventually(t, "worker pod scheduled in pod-2", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=worker"})
		if err != nil || len(pods.Items) == 0 || pods.Items[0].Spec.NodeName == "" {
			return false, nil
		}
		if !strings.HasPrefix(pods.Items[0].Spec.NodeName, "pod-2-") {
			t.Fatalf("pod placed on %s, want a pod-2 node", pods.Items[0].Spec.NodeName)
		}
		return true, nil
	})
	// A label-only update re-runs the mutation, which adds nothing.
	upd, err := cs.AppsV1().Deployments(ns).Patch(ctx, got.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if len(upd.Spec.Template.Spec.NodeSelector) != 1 {
		t.Errorf("nodeSelector after update = %v", upd.Spec.Template.Spec.NodeSelector)
	}
}

func TestUpdateRemovingSelectorDenied(t *testing.T) {
	c := env(t)
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	cs := c.Client()
	d, err := cs.AppsV1().Deployments(ns).Create(ctx, tu.Deployment(ns, "worker").Labels("app", "worker").InDC("pod-1").Deployment(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	// A patch, not an Update: the deployment controller keeps writing status.
	remove := []byte(`[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]`)
	_, err = cs.AppsV1().Deployments(ns).Patch(ctx, d.Name, types.JSONPatchType, remove, metav1.PatchOptions{})
	wantInvalid(t, err, "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]", denyRule)
}

func TestPodNodeNameInWrongDatacenter(t *testing.T) {
	c := env(t)
	ns := cluster.Namespace(t, c)
	pod := tu.Pod(ns, "worker-0").Labels("app", "worker").InDC("pod-1").NodeName(c.Nodes("pod-2")[len(c.Nodes("pod-2"))-1]).Pod()
	_, err := c.Client().CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	wantInvalid(t, err, "spec.nodeName", denyRule)
}

func TestOtherTemplateKinds(t *testing.T) {
	c := env(t)
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	cs := c.Client()
	cron := tu.CronJob(ns, "worker").Labels("app", "worker").Obj().(*batchv1.CronJob)
	_, err := cs.BatchV1().CronJobs(ns).Create(ctx, cron, metav1.CreateOptions{})
	wantInvalid(t, err, "spec.jobTemplate.spec.template.spec.nodeSelector[topology.kubernetes.io/zone]", denyRule)

	rs := tu.ReplicaSet(ns, "worker").Labels("app", "worker").Obj().(*appsv1.ReplicaSet)
	_, err = cs.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{})
	wantInvalid(t, err, "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]", denyRule)

	rc := tu.ReplicationController(ns, "worker").Labels("app", "worker").Obj().(*corev1.ReplicationController)
	_, err = cs.CoreV1().ReplicationControllers(ns).Create(ctx, rc, metav1.CreateOptions{})
	wantInvalid(t, err, "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]", denyRule)

	// The same kinds with a datacenter are admitted.
	ok := tu.CronJob(ns, "worker-ok").Labels("app", "worker").InDC("pod-3").Obj().(*batchv1.CronJob)
	if _, err := cs.BatchV1().CronJobs(ns).Create(ctx, ok, metav1.CreateOptions{}); err != nil {
		t.Errorf("CronJob in pod-3 denied: %v", err)
	}
}

// TestBindingDenied creates a fourth etcd member in kube-system and lets the
// real scheduler place it: every datacenter already holds one of the three
// voters, so every binding breaks the spread rule, the webhook denies it and
// the pod stays Pending with a FailedScheduling event that says why.
func TestBindingDenied(t *testing.T) {
	c := env(t)
	ctx := context.Background()
	cs := c.Client()
	pod := tu.Pod("kube-system", "etcd-e2e-extra").Labels("component", "etcd", "tier", "control-plane").Pod()
	if _, err := cs.CoreV1().Pods("kube-system").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		_ = cs.CoreV1().Pods("kube-system").Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	var why string
	eventually(t, "a FailedScheduling event naming the spread rule", func(ctx context.Context) (bool, error) {
		evs, err := cs.CoreV1().Events("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
		if err != nil {
			return false, nil
		}
		for _, e := range evs.Items {
			if e.Reason == "FailedScheduling" && strings.Contains(e.Message, etcdRule) {
				why = e.Message
				return true, nil
			}
		}
		return false, nil
	})
	if !strings.Contains(why, "target.name") {
		t.Errorf("event %q does not name the field", why)
	}
	got, err := cs.CoreV1().Pods("kube-system").Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "" || got.Status.Phase != corev1.PodPending {
		t.Errorf("pod on %q in phase %s, want Pending and unbound", got.Spec.NodeName, got.Status.Phase)
	}
}

func TestLabelGuard(t *testing.T) {
	c := env(t)
	ctx := context.Background()
	admin := c.Client()
	name := "e2e-guard-node"
	// A node of its own, unschedulable and never Ready, so that moving it
	// changes nothing for the rest of the suite.
	node := tu.Node(name).InDC("pod-3").Cordoned().NotReady().Obj()
	if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("admin creating a labelled node: %v", err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })

	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:node:" + name, Groups: []string{"system:nodes", "system:authenticated"}}
	kubelet := kubernetes.NewForConfigOrDie(cfg)
	move := []byte(`{"metadata":{"labels":{"topology.kubernetes.io/zone":"pod-1"}}}`)
	_, err := kubelet.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, move, metav1.PatchOptions{})
	wantInvalid(t, err, "metadata.labels[topology.kubernetes.io/zone]", "label-guard")
	if err != nil && !strings.Contains(err.Error(), "system:node:"+name) {
		t.Errorf("denial %q does not name the requester", err)
	}

	// The kubelet may still change its other labels.
	if _, err := kubelet.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"disk":"ssd"}}}`), metav1.PatchOptions{}); err != nil {
		t.Errorf("kubelet changing another label denied: %v", err)
	}
	// The administrator may move the node.
	got, err := admin.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, move, metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("admin moving the node denied: %v", err)
	}
	if got.Labels["topology.kubernetes.io/zone"] != "pod-1" {
		t.Errorf("zone = %q after the admin's patch", got.Labels["topology.kubernetes.io/zone"])
	}
}

func kubectl(t *testing.T, c *cluster.Cluster, stdin []byte, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	cmd := exec.Command(path, append([]string{"--kubeconfig", c.Kubeconfig()}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestKubectlServerDryRun(t *testing.T) {
	c := env(t)
	ns := cluster.Namespace(t, c)
	bad, err := yaml.Marshal(tu.Deployment(ns, "worker").Labels("app", "worker").Deployment())
	if err != nil {
		t.Fatal(err)
	}
	out, err := kubectl(t, c, bad, "apply", "--dry-run=server", "-f", "-")
	if err == nil {
		t.Fatalf("kubectl apply --dry-run=server admitted a worker without a datacenter:\n%s", out)
	}
	for _, want := range []string{denyRule, "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]", "pod-1, pod-2, pod-3"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl output lacks %q:\n%s", want, out)
		}
	}
	// The dry run left nothing behind.
	if _, err := c.Client().AppsV1().Deployments(ns).Get(context.Background(), "worker", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("dry run created the deployment: %v", err)
	}
}

func TestKubectlApplyManifestsDryRun(t *testing.T) {
	c := env(t)
	ctx := context.Background()
	// A real install creates the namespace on its first apply; a server-side
	// dry run cannot create it for the objects inside it.
	_, err := c.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dc-system"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	out, err := kubectl(t, c, nil, "apply", "--dry-run=server", "-k", filepath.Join(root, "manifests"))
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server -k manifests/: %v\n%s", err, out)
	}
	for _, want := range []string{"customresourcedefinition.apiextensions.k8s.io/placementpolicies.placement.kubectl-dc.io", "deployment.apps/dc-webhook", "validatingwebhookconfiguration.admissionregistration.k8s.io/dc-webhook",
		"lease.coordination.k8s.io/dc-webhook-placements", "role.rbac.authorization.k8s.io/dc-webhook-placements", "(server dry run)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestTLS(t *testing.T) {
	env(t)
	if local.TLSVersionAccepted(tls.VersionTLS11) {
		t.Error("TLS 1.1 handshake accepted")
	}
	if !local.TLSVersionAccepted(tls.VersionTLS12) {
		t.Error("TLS 1.2 handshake refused")
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(local.URL(), "https://"), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}) //nolint:gosec // protocol probe
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p == "h2" {
		t.Error("HTTP/2 negotiated; it must be off")
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMirrorPodWarnedNotDenied creates the mirror of a static etcd pod on a
// node of pod-1, which already holds a voter: the spread rule would deny a
// regular pod, but rejecting a mirror only hides the static pod, so the
// webhook admits it with a warning.
func TestMirrorPodWarnedNotDenied(t *testing.T) {
	c := env(t)
	ctx := context.Background()
	warnings := &recorder{}
	cs := clientWithWarnings(c, warnings)
	workers := c.Nodes("pod-1")
	pod := tu.Pod("kube-system", "etcd-e2e-mirror").Labels("component", "etcd", "tier", "control-plane").NodeName(workers[len(workers)-1]).Mirror().Pod()
	if _, err := cs.CoreV1().Pods("kube-system").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("mirror pod denied: %v", err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		_ = c.Client().CoreV1().Pods("kube-system").Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	got := warnings.get()
	if !contains(got, etcdRule) || !contains(got, "mirror of a static pod") {
		t.Errorf("warnings = %q, want the spread rule's violation noted as a mirror pod", got)
	}
}
