package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/webhook"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

// TestSelfManagedCertsWithManifestRBAC runs a second webhook as the
// deployed one runs: as its ServiceAccount, with exactly the RBAC of
// manifests/, and --self-managed-certs. It must fill its Secret with a CA and
// a serving certificate for its Service, inject the CA into its own webhook
// configurations, and, once the certificate reaches --cert-dir (a kubelet's
// job in a cluster, the test's here), become ready: the least-privilege RBAC
// is enough for every cache and for the rotator.
func TestSelfManagedCertsWithManifestRBAC(t *testing.T) {
	c := env(t)
	ctx := context.Background()
	cs := c.Client()
	base := filepath.Join(root, "manifests", "base")
	if err := webhooktest.ApplyFiles(ctx, c.RESTConfig(), filepath.Join(base, "namespace.yaml"), filepath.Join(base, "rbac.yaml"), filepath.Join(base, "secret.yaml")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Secrets("dc-system").Delete(context.Background(), "dc-webhook-certs", metav1.DeleteOptions{})
	})

	// Webhook configurations named as deployed, but matching nothing: the
	// Service behind them does not exist here.
	v, m := webhooktest.CreateNeverCalled(ctx, t, cs, "dc-system", "dc-webhook")

	bin, err := cluster.BuildBinary("./cmd/dc-webhook")
	if err != nil {
		t.Fatal(err)
	}
	rotating, err := webhooktest.Start(ctx, webhooktest.Options{
		Binary: bin, Kubeconfig: serviceAccountKubeconfig(t, c), REST: c.RESTConfig(),
		ManifestsDir: filepath.Join(root, "manifests"), SelfManagedCerts: true, Dir: t.TempDir(),
		Args: []string{"--namespace", "dc-system"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rotating.Stop() })

	var secret *corev1.Secret
	eventually(t, "the rotator fills dc-webhook-certs and injects its CA", func(ctx context.Context) (bool, error) {
		s, err := cs.CoreV1().Secrets("dc-system").Get(ctx, "dc-webhook-certs", metav1.GetOptions{})
		if err != nil || len(s.Data["ca.crt"]) == 0 || len(s.Data["tls.crt"]) == 0 || len(s.Data["tls.key"]) == 0 {
			return false, nil
		}
		gv, err1 := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, v.Name, metav1.GetOptions{})
		gm, err2 := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, m.Name, metav1.GetOptions{})
		if err1 != nil || err2 != nil {
			return false, nil
		}
		secret = s
		return bytes.Equal(gv.Webhooks[0].ClientConfig.CABundle, s.Data["ca.crt"]) && bytes.Equal(gm.Webhooks[0].ClientConfig.CABundle, s.Data["ca.crt"]), nil
	})
	block, _ := pem.Decode(secret.Data["tls.crt"])
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cert.DNSNames, "dc-webhook.dc-system.svc") {
		t.Errorf("serving certificate names %v, want dc-webhook.dc-system.svc", cert.DNSNames)
	}
	if left := time.Until(cert.NotAfter); left < 300*24*time.Hour {
		t.Errorf("serving certificate expires in %s, want about a year", left)
	}

	// What the kubelet does with the Secret volume.
	if err := os.MkdirAll(rotating.CertDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rotating.CertDir, "tls.key"), secret.Data["tls.key"], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rotating.CertDir, "tls.crt"), secret.Data["tls.crt"], 0o600); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := rotating.WaitReady(rctx); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(secret.Data["ca.crt"])
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(rotating.Port), &tls.Config{RootCAs: pool, ServerName: "dc-webhook.dc-system.svc", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS with the injected CA: %v", err)
	}
	_ = conn.Close()

	// --cert-dir is watched: new files are served without a restart.
	newCA, err := webhook.WriteLocalCerts(rotating.CertDir, time.Hour, "dc-webhook.dc-system.svc")
	if err != nil {
		t.Fatal(err)
	}
	newPool := x509.NewCertPool()
	newPool.AppendCertsFromPEM(newCA)
	eventually(t, "the webhook serves the replaced certificate", func(context.Context) (bool, error) {
		conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(rotating.Port), &tls.Config{RootCAs: newPool, ServerName: "dc-webhook.dc-system.svc", MinVersion: tls.VersionTLS12})
		if err != nil {
			return false, nil
		}
		_ = conn.Close()
		return true, nil
	})
}

// serviceAccountKubeconfig writes the admin kubeconfig impersonating the
// webhook's ServiceAccount, so that only the manifests' RBAC applies.
func serviceAccountKubeconfig(t *testing.T, c *cluster.Cluster) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = "system:serviceaccount:dc-system:dc-webhook"
		a.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:dc-system", "system:authenticated"}
	}
	path := filepath.Join(t.TempDir(), "dc-webhook-sa.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
