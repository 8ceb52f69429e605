// Package ha runs dc-webhook the way a cluster runs it: several replicas
// behind the dc-system/dc-webhook Service, registered from the manifests
// with Service references, the API server reaching each replica at its
// endpoint address. The API server refuses loopback endpoints, so every
// replica lives in a network namespace of its own (test/netns), and a
// Fleet plays the parts a cluster would: the kubelet's readiness probe and
// the EndpointSlice controller (a replica is listed ready while its
// /readyz answers OK), and the secret volume that delivers certificates.
//
// The fault suite (test/e2e/webhookha) and the load benchmark
// (test/bench/load) share it, together with the load generator in load.go.
package ha

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/netns"
	"github.com/kubectl-dc/kubectl-dc/webhook"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

// Names of the deployed webhook (manifests/base).
const (
	Namespace   = "dc-system"
	Service     = "dc-webhook"
	account     = "dc-webhook"
	sliceName   = "dc-webhook-replicas"
	managedBy   = "e2e.kubectl-dc.io"
	webhookPort = 9443
	healthPort  = 8081
	metricsPort = 8080
)

// ServerName is the name the API server checks the serving certificate
// against when it calls the Service.
var ServerName = Service + "." + Namespace + ".svc"

// Options say how to run the fleet.
type Options struct {
	// Cluster must have been started with ServeOn listing RootIPs(Prefix,
	// FirstIndex, Replicas), so that the replicas reach its API servers.
	Cluster *cluster.Cluster
	// Binary is the built dc-webhook.
	Binary string
	// ManifestsDir is the repository's manifests/ directory.
	ManifestsDir string
	// Replicas is how many replicas run; 0 means 3, as deployed.
	Replicas int
	// Prefix names the network namespaces (<Prefix><i>, at most 12 bytes)
	// and FirstIndex picks their /30s (see netns.Create): suites that may
	// run at the same time choose different ones.
	Prefix     string
	FirstIndex int
	// ShutdownDelay is passed to --shutdown-delay.
	ShutdownDelay time.Duration
	// ProbeInterval is how often readiness is probed; 0 means 250 ms.
	ProbeInterval time.Duration
	// Dir holds certificates, kubeconfigs and logs; "" means a new
	// temporary directory, removed by Stop.
	Dir string
	// SerialisePlacements applies manifests/base/webhook-placements.yaml
	// (the placement Lease and the Role that lets the webhook read and
	// update it) and runs the replicas with --placement-lease.
	SerialisePlacements bool
}

// PlacementLease is the Lease of manifests/base/webhook-placements.yaml.
const PlacementLease = "dc-webhook-placements"

// RootIPs returns the addresses the replicas dial the API servers at: the
// root sides of their veth pairs.
func RootIPs(firstIndex, replicas int) []net.IP {
	var out []net.IP
	for i := 0; i < replicas; i++ {
		root, _ := netns.Addresses(firstIndex + i)
		out = append(out, root)
	}
	return out
}

// Fleet is a set of running replicas behind the Service.
type Fleet struct {
	Replicas []*Replica
	opts     Options
	cs       kubernetes.Interface
	ownsDir  bool

	mu     sync.Mutex
	ca     []byte // PEM bundle the webhook configurations trust
	probes bool   // whether the prober updates the EndpointSlice
	ready  []bool // readiness last written to the EndpointSlice

	stopProber context.CancelFunc
	proberDone chan struct{}
}

// Replica is one dc-webhook process in its own network namespace.
type Replica struct {
	Index      int
	Host       *netns.Host
	Dir        string
	CertDir    string
	LogFile    string
	kubeconfig string
	binary     string
	args       []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start creates the hosts, certificates, Service and EndpointSlice, starts
// the replicas, waits until all are ready and listed, and installs the
// webhook configurations of the manifests with their Service references.
func Start(ctx context.Context, o Options) (*Fleet, error) {
	if err := netns.Supported(); err != nil {
		return nil, err
	}
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = 250 * time.Millisecond
	}
	f := &Fleet{opts: o, cs: o.Cluster.Client(), probes: true, ready: make([]bool, o.Replicas)}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "dc-webhook-ha-")
		if err != nil {
			return nil, err
		}
		f.opts.Dir, f.ownsDir = dir, true
	}
	ok := false
	defer func() {
		if !ok {
			_ = f.Stop(context.WithoutCancel(ctx))
		}
	}()
	files := []string{filepath.Join(o.ManifestsDir, "base", "namespace.yaml"), filepath.Join(o.ManifestsDir, "base", "rbac.yaml")}
	if o.SerialisePlacements {
		files = append(files, filepath.Join(o.ManifestsDir, "base", "webhook-placements.yaml"))
	}
	if err := webhooktest.ApplyFiles(ctx, o.Cluster.RESTConfig(), files...); err != nil {
		return nil, err
	}
	ca, err := webhook.WriteLocalCerts(filepath.Join(f.opts.Dir, "ca-0"), 24*time.Hour, ServerName, ServerName+".cluster.local")
	if err != nil {
		return nil, err
	}
	f.ca = ca
	apiservers := o.Cluster.APIServerList()
	for i := 0; i < o.Replicas; i++ {
		r, err := f.newReplica(i, apiservers[i%len(apiservers)])
		if err != nil {
			return nil, err
		}
		f.Replicas = append(f.Replicas, r)
		if err := copyCerts(filepath.Join(f.opts.Dir, "ca-0"), r.CertDir); err != nil {
			return nil, err
		}
		if err := r.Start(); err != nil {
			return nil, err
		}
	}
	if err := f.createService(ctx); err != nil {
		return nil, err
	}
	proberCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.stopProber, f.proberDone = cancel, make(chan struct{})
	go f.probe(proberCtx)
	if err := f.WaitListed(ctx, o.Replicas); err != nil {
		return nil, err
	}
	if err := f.Install(ctx); err != nil {
		return nil, err
	}
	ok = true
	return f, nil
}

func (f *Fleet) newReplica(i int, api cluster.APIServer) (*Replica, error) {
	host, err := netns.Create(f.opts.Prefix+strconv.Itoa(i+1), f.opts.FirstIndex+i)
	if err != nil {
		return nil, err
	}
	r := &Replica{Index: i, Host: host, Dir: filepath.Join(f.opts.Dir, "replica-"+strconv.Itoa(i+1)), binary: f.opts.Binary}
	r.CertDir = filepath.Join(r.Dir, "certs")
	r.LogFile = filepath.Join(r.Dir, "dc-webhook.log")
	if err := os.MkdirAll(r.CertDir, 0o755); err != nil {
		return r, err
	}
	// The admin kubeconfig, pointed at an API server through this host's
	// veth and impersonating the webhook's ServiceAccount, so that only
	// the manifests' RBAC applies.
	cfg, err := clientcmd.LoadFromFile(f.opts.Cluster.Kubeconfig())
	if err != nil {
		return r, err
	}
	u, err := url.Parse(api.URL)
	if err != nil {
		return r, err
	}
	server := "https://" + net.JoinHostPort(host.RootIP.String(), u.Port())
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = "system:serviceaccount:" + Namespace + ":" + account
		a.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + Namespace, "system:authenticated"}
	}
	r.kubeconfig = filepath.Join(r.Dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, r.kubeconfig); err != nil {
		return r, err
	}
	ip := host.IP.String()
	r.args = []string{
		"--kubeconfig", r.kubeconfig,
		"--cert-dir", r.CertDir,
		"--port", strconv.Itoa(webhookPort),
		"--health-addr", net.JoinHostPort(ip, strconv.Itoa(healthPort)),
		"--metrics-addr", net.JoinHostPort(ip, strconv.Itoa(metricsPort)),
		"--self-managed-certs=false",
		"--shutdown-delay", f.opts.ShutdownDelay.String(),
	}
	if f.opts.SerialisePlacements {
		r.args = append(r.args, "--placement-lease", PlacementLease)
	}
	return r, nil
}

// Start starts the replica's process (again, after Kill).
func (r *Replica) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	logf, err := os.OpenFile(r.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// ip netns exec enters the namespace and execs the binary: the
	// process is dc-webhook itself, so signals and /proc speak of it.
	cmd := r.Host.Command(r.binary, r.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("starting replica %d: %w", r.Index+1, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	r.cmd, r.done = cmd, done
	return nil
}

// Signal sends sig to the replica; SIGKILL is a crash, SIGTERM what the
// kubelet sends when a pod is deleted, SIGSTOP a hung process.
func (r *Replica) Signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return fmt.Errorf("replica %d is not running", r.Index+1)
	}
	return syscall.Kill(r.cmd.Process.Pid, sig)
}

// Wait waits for the replica's process to exit.
func (r *Replica) Wait(ctx context.Context) error {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("replica %d did not exit: %w", r.Index+1, ctx.Err())
	}
}

// Running reports whether the process is alive.
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Pid is the process id of the running replica (0 when it is not).
func (r *Replica) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Ready reports whether /readyz answers OK.
func (r *Replica) Ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(r.Host.IP.String(), strconv.Itoa(healthPort))+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// LogTail returns the end of the replica's log.
func (r *Replica) LogTail() string {
	data, _ := os.ReadFile(r.LogFile)
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	return string(data)
}

// probeClient never reuses connections, as a kubelet probe does not.
var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// createService creates the Service of the manifests without its selector
// (no pods back it here) and the EndpointSlice the prober maintains.
func (f *Fleet) createService(ctx context.Context) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: Service, Namespace: Namespace},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "webhook", Port: 443, TargetPort: intstr.FromInt32(webhookPort)},
			{Name: "metrics", Port: metricsPort, TargetPort: intstr.FromInt32(metricsPort)},
		}},
	}
	if _, err := f.cs.CoreV1().Services(Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Service %s/%s: %w", Namespace, Service, err)
	}
	_ = f.cs.DiscoveryV1().EndpointSlices(Namespace).Delete(ctx, sliceName, metav1.DeleteOptions{})
	if _, err := f.cs.DiscoveryV1().EndpointSlices(Namespace).Create(ctx, f.slice(), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating EndpointSlice %s/%s: %w", Namespace, sliceName, err)
	}
	return nil
}

// slice is the EndpointSlice for the readiness in f.ready.
func (f *Fleet) slice() *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: sliceName, Namespace: Namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: Service,
			discoveryv1.LabelManagedBy:   managedBy,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("webhook"), Port: ptr.To[int32](webhookPort), Protocol: ptr.To(corev1.ProtocolTCP)},
			{Name: ptr.To("metrics"), Port: ptr.To[int32](metricsPort), Protocol: ptr.To(corev1.ProtocolTCP)},
		},
	}
	for i, r := range f.Replicas {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{r.Host.IP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(f.ready[i]), Serving: ptr.To(f.ready[i]), Terminating: ptr.To(false)},
		})
	}
	return s
}

// probe is the kubelet and the EndpointSlice controller in one: every
// interval it probes each replica's /readyz and writes the result to the
// EndpointSlice when it changed.
func (f *Fleet) probe(ctx context.Context) {
	defer close(f.proberDone)
	t := time.NewTicker(f.opts.ProbeInterval)
	defer t.Stop()
	for {
		f.mu.Lock()
		enabled := f.probes
		f.mu.Unlock()
		if enabled {
			now := make([]bool, len(f.Replicas))
			var wg sync.WaitGroup
			for i, r := range f.Replicas {
				wg.Add(1)
				go func() { defer wg.Done(); now[i] = r.Ready(ctx) }()
			}
			wg.Wait()
			f.mu.Lock()
			changed := false
			for i := range now {
				if now[i] != f.ready[i] {
					changed = true
				}
			}
			if changed && f.probes {
				f.ready = now
				_ = f.writeSlice(ctx)
			}
			f.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// writeSlice updates the EndpointSlice from f.ready; f.mu is held.
func (f *Fleet) writeSlice(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		cur, err := f.cs.DiscoveryV1().EndpointSlices(Namespace).Get(ctx, sliceName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		want := f.slice()
		want.ResourceVersion = cur.ResourceVersion
		_, err = f.cs.DiscoveryV1().EndpointSlices(Namespace).Update(ctx, want, metav1.UpdateOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("updating EndpointSlice %s/%s: %w", Namespace, sliceName, err)
	}
	return nil
}

// PauseProbes stops (true) or resumes (false) the prober: a paused prober
// leaves the EndpointSlice as it is, like a kubelet that has not yet run
// its next probe.
func (f *Fleet) PauseProbes(pause bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probes = !pause
}

// WaitListed waits until the EndpointSlice the API server reads lists
// exactly n ready replicas.
func (f *Fleet) WaitListed(ctx context.Context, n int) error {
	var last int
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		s, err := f.cs.DiscoveryV1().EndpointSlices(Namespace).Get(ctx, sliceName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = 0
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				last++
			}
		}
		return last == n, nil
	})
	if err != nil {
		var logs []string
		for _, r := range f.Replicas {
			logs = append(logs, fmt.Sprintf("replica %d (running %v):\n%s", r.Index+1, r.Running(), r.LogTail()))
		}
		return fmt.Errorf("waiting for %d ready endpoints (have %d): %w\n%s", n, last, err, strings.Join(logs, "\n"))
	}
	return nil
}

// Install creates or replaces the webhook configurations of the
// manifests, Service references kept, trusting the fleet's CA.
func (f *Fleet) Install(ctx context.Context) error {
	f.mu.Lock()
	ca := f.ca
	f.mu.Unlock()
	v, m, err := webhook.Configurations(f.opts.ManifestsDir, ca)
	if err != nil {
		return err
	}
	adm := f.cs.AdmissionregistrationV1()
	if cur, err := adm.ValidatingWebhookConfigurations().Get(ctx, v.Name, metav1.GetOptions{}); err == nil {
		v.ResourceVersion = cur.ResourceVersion
		_, err = adm.ValidatingWebhookConfigurations().Update(ctx, v, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating ValidatingWebhookConfiguration %s: %w", v.Name, err)
		}
	} else if _, err := adm.ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating ValidatingWebhookConfiguration %s: %w", v.Name, err)
	}
	if cur, err := adm.MutatingWebhookConfigurations().Get(ctx, m.Name, metav1.GetOptions{}); err == nil {
		m.ResourceVersion = cur.ResourceVersion
		_, err = adm.MutatingWebhookConfigurations().Update(ctx, m, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating MutatingWebhookConfiguration %s: %w", m.Name, err)
		}
	} else if _, err := adm.MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating MutatingWebhookConfiguration %s: %w", m.Name, err)
	}
	return nil
}

// Uninstall deletes the webhook configurations.
func (f *Fleet) Uninstall(ctx context.Context) error {
	adm := f.cs.AdmissionregistrationV1()
	err1 := adm.ValidatingWebhookConfigurations().Delete(ctx, Service, metav1.DeleteOptions{})
	err2 := adm.MutatingWebhookConfigurations().Delete(ctx, Service, metav1.DeleteOptions{})
	for _, err := range []error{err1, err2} {
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// Configurations returns the installed webhook configurations.
func (f *Fleet) Configurations(ctx context.Context) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration, error) {
	adm := f.cs.AdmissionregistrationV1()
	v, err := adm.ValidatingWebhookConfigurations().Get(ctx, Service, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	m, err := adm.MutatingWebhookConfigurations().Get(ctx, Service, metav1.GetOptions{})
	return v, m, err
}

// RotateCerts replaces the CA and every replica's serving certificate the
// way a careful rotation does it: first the configurations trust the old
// and the new CA, then each replica gets its new certificate (written
// atomically, as a secret volume update is), and once every replica serves
// it, the old CA is dropped.
func (f *Fleet) RotateCerts(ctx context.Context, generation int) error {
	dir := filepath.Join(f.opts.Dir, "ca-"+strconv.Itoa(generation))
	newCA, err := webhook.WriteLocalCerts(dir, 24*time.Hour, ServerName, ServerName+".cluster.local")
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.ca = append(append([]byte{}, f.ca...), newCA...)
	f.mu.Unlock()
	if err := f.Install(ctx); err != nil {
		return err
	}
	if err := f.waitTrusted(ctx, newCA); err != nil {
		return err
	}
	for _, r := range f.Replicas {
		if err := copyCerts(dir, r.CertDir); err != nil {
			return err
		}
	}
	for _, r := range f.Replicas {
		if err := r.waitServing(ctx, newCA); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.ca = newCA
	f.mu.Unlock()
	return f.Install(ctx)
}

// waitTrusted waits until the configurations the API server serves carry
// ca in every webhook's caBundle.
func (f *Fleet) waitTrusted(ctx context.Context, ca []byte) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		v, m, err := f.Configurations(ctx)
		if err != nil {
			return false, nil
		}
		for _, w := range v.Webhooks {
			if !strings.Contains(string(w.ClientConfig.CABundle), string(ca)) {
				return false, nil
			}
		}
		for _, w := range m.Webhooks {
			if !strings.Contains(string(w.ClientConfig.CABundle), string(ca)) {
				return false, nil
			}
		}
		return true, nil
	})
}

// waitServing waits until the replica's TLS handshake presents a
// certificate signed by ca.
func (r *Replica) waitServing(ctx context.Context, ca []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return errors.New("no certificate in the new CA")
	}
	addr := net.JoinHostPort(r.Host.IP.String(), strconv.Itoa(webhookPort))
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		d := &tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: ServerName, MinVersion: tls.VersionTLS12}}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, nil
		}
		_ = conn.Close()
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("replica %d never served the new certificate: %w", r.Index+1, err)
	}
	return nil
}

// copyCerts puts tls.crt and tls.key of src into dst by renaming new files
// over the old, so that the webhook never reads a half-written pair.
func copyCerts(src, dst string) error {
	for _, name := range []string{"tls.key", "tls.crt"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		tmp := filepath.Join(dst, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dst, name)); err != nil {
			return err
		}
	}
	return nil
}

// CA returns the PEM bundle the configurations trust.
func (f *Fleet) CA() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte{}, f.ca...)
}

// Stop stops the prober and the replicas, deletes the configurations,
// Service and hosts, and removes the directory it made. Only failures to
// remove a host are errors.
func (f *Fleet) Stop(ctx context.Context) error {
	if f.stopProber != nil {
		f.stopProber()
		<-f.proberDone
	}
	// The API objects go with the cluster when it stopped first; the
	// hosts and processes are what must never be left behind.
	_ = f.Uninstall(ctx)
	var errs []error
	for _, r := range f.Replicas {
		if r.Running() {
			_ = r.Signal(syscall.SIGKILL)
			_ = r.Wait(ctx)
		}
		if err := r.Host.Delete(); err != nil {
			errs = append(errs, err)
		}
	}
	_ = f.cs.DiscoveryV1().EndpointSlices(Namespace).Delete(ctx, sliceName, metav1.DeleteOptions{})
	_ = f.cs.CoreV1().Services(Namespace).Delete(ctx, Service, metav1.DeleteOptions{})
	if f.ownsDir && os.Getenv("KEEP_CLUSTER") == "" {
		_ = os.RemoveAll(f.opts.Dir)
	}
	return errors.Join(errs...)
}
