// Package webhooktest runs dc-webhook as a local process against a real API
// server and registers it from the repository's manifests, rendered with
// webhook.LocalConfigurations: the setup of the webhook e2e suite, the
// pod-create benchmark and the demo.
package webhooktest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/test/ports"
	"github.com/kubectl-dc/kubectl-dc/webhook"
)

// Options say how to run the local webhook.
type Options struct {
	// Binary is the built dc-webhook.
	Binary string
	// Kubeconfig is the admin kubeconfig the webhook uses.
	Kubeconfig string
	// REST is the admin configuration the installer uses.
	REST *rest.Config
	// ManifestsDir is the repository's manifests/ directory.
	ManifestsDir string
	// Dir receives the certificates and the webhook's log; "" means a new
	// temporary directory.
	Dir string
	// Args are extra flags for dc-webhook.
	Args []string
	// SelfManagedCerts runs the certificate rotator instead of writing a
	// local CA: Start then returns without waiting for readiness, since the
	// serving certificate only reaches CertDir when someone copies it out of
	// the Secret (a kubelet, in a cluster).
	SelfManagedCerts bool
}

// Local is a dc-webhook process.
type Local struct {
	Dir         string
	CertDir     string
	Port        int
	HealthAddr  string
	MetricsAddr string
	CABundle    []byte
	LogFile     string

	opts    Options
	ownsDir bool
	cmd     *exec.Cmd
	done    chan struct{}
}

// Start writes a CA and serving certificate for 127.0.0.1, starts the
// webhook and waits for its readiness (caches synced, engine built). It does
// not register the webhook: call Install.
func Start(ctx context.Context, o Options) (*Local, error) {
	dir := o.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "dc-webhook-"); err != nil {
			return nil, err
		}
	}
	certDir := filepath.Join(dir, "certs")
	var ca []byte
	if !o.SelfManagedCerts {
		var err error
		if ca, err = webhook.WriteLocalCerts(certDir, 24*time.Hour, "127.0.0.1", "localhost"); err != nil {
			return nil, err
		}
	}
	l := &Local{Dir: dir, CertDir: certDir, CABundle: ca, opts: o, ownsDir: o.Dir == "", done: make(chan struct{}), LogFile: filepath.Join(dir, "dc-webhook.log")}
	l.Port = ports.Free()
	health, metrics := ports.Free(), ports.Free()
	if l.Port == 0 || health == 0 || metrics == 0 {
		return nil, errors.New("no free loopback port for dc-webhook")
	}
	l.HealthAddr = "127.0.0.1:" + strconv.Itoa(health)
	l.MetricsAddr = "127.0.0.1:" + strconv.Itoa(metrics)
	logf, err := os.Create(l.LogFile)
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--kubeconfig", o.Kubeconfig,
		"--cert-dir", certDir,
		"--port", strconv.Itoa(l.Port),
		"--health-addr", l.HealthAddr,
		"--metrics-addr", l.MetricsAddr,
		"--self-managed-certs=" + strconv.FormatBool(o.SelfManagedCerts),
		// One process, no Service to leave first: stop at once.
		"--shutdown-delay=0s",
	}, o.Args...)
	l.cmd = exec.Command(o.Binary, args...)
	l.cmd.Stdout, l.cmd.Stderr = logf, logf
	// The webhook dies with the test process, even a killed one: left
	// running it would answer for a cluster that is gone.
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := l.cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting %s: %w", o.Binary, err)
	}
	go func() {
		_ = l.cmd.Wait()
		_ = logf.Close()
		close(l.done)
	}()
	if o.SelfManagedCerts {
		return l, nil
	}
	if err := l.WaitReady(ctx); err != nil {
		_ = l.Stop()
		return nil, err
	}
	return l, nil
}

// WaitReady waits until /readyz answers OK.
func (l *Local) WaitReady(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-l.done:
			return false, errors.New("dc-webhook exited")
		default:
		}
		resp, err := http.Get("http://" + l.HealthAddr + "/readyz")
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("dc-webhook not ready: %w\n%s", err, l.LogTail())
	}
	return nil
}

// URL is the base URL the API server reaches the webhook at.
func (l *Local) URL() string { return "https://127.0.0.1:" + strconv.Itoa(l.Port) }

// LogTail returns the end of the webhook's log.
func (l *Local) LogTail() string {
	data, _ := os.ReadFile(l.LogFile)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// Stop ends the process (and its group) and removes its directory unless
// the caller chose it or KEEP_CLUSTER is set.
func (l *Local) Stop() error {
	if l.ownsDir && os.Getenv("KEEP_CLUSTER") == "" {
		defer func() { _ = os.RemoveAll(l.Dir) }()
	}
	if l.cmd == nil || l.cmd.Process == nil {
		return nil
	}
	_ = syscall.Kill(-l.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL)
		<-l.done
	}
	return nil
}

// Install creates (or replaces) the validating and mutating webhook
// configurations of the manifests, pointed at this process, and waits until
// the API server calls the webhook: a server-side dry-run of a Deployment
// the base policy set denies must be denied. probe may be nil to skip the
// wait.
func (l *Local) Install(ctx context.Context, probe func(context.Context) (bool, error)) error {
	v, m, err := webhook.LocalConfigurations(l.opts.ManifestsDir, l.URL(), l.CABundle)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(l.opts.REST)
	if err != nil {
		return err
	}
	_ = l.Uninstall(ctx)
	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating ValidatingWebhookConfiguration: %w", err)
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating MutatingWebhookConfiguration: %w", err)
	}
	if probe == nil {
		return nil
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, probe)
}

// Uninstall deletes the webhook configurations.
func (l *Local) Uninstall(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(l.opts.REST)
	if err != nil {
		return err
	}
	name := "dc-webhook" + webhook.LocalSuffix
	err1 := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, name, metav1.DeleteOptions{})
	err2 := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, name, metav1.DeleteOptions{})
	for _, err := range []error{err1, err2} {
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// Metrics returns the webhook's Prometheus exposition.
func (l *Local) Metrics() (string, error) {
	resp, err := http.Get("http://" + l.MetricsAddr + "/metrics")
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	return string(data), err
}

// TLSVersionAccepted reports whether the webhook completes a handshake at
// exactly version v.
func (l *Local) TLSVersionAccepted(v uint16) bool {
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(l.Port), &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v}) //nolint:gosec // a handshake probe
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// InstallExample applies the PlacementPolicy CRD and the MacStadium example
// policy of manifestsDir (the repository's manifests/) with the admin
// configuration: what every webhook suite and benchmark starts from.
func InstallExample(ctx context.Context, cfg *rest.Config, manifestsDir string) error {
	return ApplyFiles(ctx, cfg,
		filepath.Join(manifestsDir, "crd", "placement.kubectl-dc.io_placementpolicies.yaml"),
		filepath.Join(manifestsDir, "examples", "macstadium-policy.yaml"))
}

// ApplyFiles creates or updates the objects of YAML files (single documents
// or `---` streams) with the admin configuration: the CRD, policies. It
// retries while the API server does not yet serve a just-created CRD.
func ApplyFiles(ctx context.Context, cfg *rest.Config, files ...string) error {
	c, err := client.New(cfg, client.Options{Scheme: policy.Scheme})
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for _, doc := range splitYAML(data) {
			obj, err := decode(doc)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if obj == nil {
				continue
			}
			var lastErr error
			err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
				cur := obj.DeepCopyObject().(client.Object)
				err := c.Create(ctx, cur)
				if apierrors.IsAlreadyExists(err) {
					existing := obj.DeepCopyObject().(client.Object)
					if err := c.Get(ctx, client.ObjectKeyFromObject(obj), existing); err != nil {
						return false, nil
					}
					cur.SetResourceVersion(existing.GetResourceVersion())
					err = c.Update(ctx, cur)
				}
				if err != nil {
					lastErr = err
					return false, nil
				}
				return true, nil
			})
			if err != nil {
				return fmt.Errorf("applying %s from %s: %w (last error: %w)", obj.GetName(), f, err, lastErr)
			}
		}
	}
	return nil
}

func decode(doc []byte) (client.Object, error) {
	if len(doc) == 0 {
		return nil, nil
	}
	// CRDs are not in policy.Scheme: go through unstructured JSON.
	var probe map[string]any
	if err := yaml.Unmarshal(doc, &probe); err != nil || probe == nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	obj, _, err := policy.Codecs.UniversalDeserializer().Decode(j, nil, nil)
	if err != nil {
		if runtime.IsNotRegisteredError(err) {
			u := &unstructuredObject{}
			if err := u.UnmarshalJSON(j); err != nil {
				return nil, err
			}
			return u, nil
		}
		return nil, err
	}
	co, ok := obj.(client.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not an object", obj)
	}
	return co, nil
}

func splitYAML(data []byte) [][]byte {
	var out [][]byte
	var cur []byte
	for _, line := range splitLines(data) {
		if string(trimRight(line)) == "---" {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(out, cur)
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, b[start:i+1])
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

func trimRight(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// WaitCondition waits until the match condition cond of some webhook of
// the ValidatingWebhookConfiguration name satisfies ok: a replica has
// scoped it to the live policies.
func WaitCondition(ctx context.Context, cs kubernetes.Interface, name, cond string, ok func(expr string) bool) error {
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		v, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, w := range v.Webhooks {
			for _, m := range w.MatchConditions {
				if m.Name == cond && ok(m.Expression) {
					return true, nil
				}
			}
		}
		return false, nil
	})
}
