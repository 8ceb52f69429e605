package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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
