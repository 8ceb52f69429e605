package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// alertWait is how long tlsProblem waits, after a TLS 1.3 handshake in
// which it offered no client certificate, for the server to refuse it: in
// TLS 1.3 that refusal arrives after the client's handshake has completed.
const alertWait = 200 * time.Millisecond

// tlsProblem tells, for an https endpoint, why a client with cfg cannot
// talk to it at all: the server's certificate is not trusted, the server
// wants a client certificate that cfg does not carry, or nothing answers
// (the dial's error: the etcd client is then not tried, so a member that
// is down costs one deadline, not two). It returns nil when TLS works or
// the endpoint is not https. Without it the etcd client retries a refused
// handshake until its deadline and reports only that the deadline passed.
func tlsProblem(ctx context.Context, endpoint string, cfg *tls.Config, timeout time.Duration) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" {
		return nil
	}
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dialer.DialContext(dctx, "tcp", u.Host)
	if err != nil {
		var unknown x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		var hostname x509.HostnameError
		switch {
		case errors.As(err, &unknown):
			return errors.New("its serving certificate is not signed by a CA this machine trusts: give --etcd-cacert (kubeadm: /etc/kubernetes/pki/etcd/ca.crt on a control-plane node)")
		case errors.As(err, &hostname):
			return fmt.Errorf("its serving certificate does not name %s: dial an address it names", u.Hostname())
		case errors.As(err, &invalid):
			return fmt.Errorf("its serving certificate is not valid: %w", invalid)
		case isClientCertRefusal(err):
			return errClientCertRequired
		}
		return err
	}
	defer func() { _ = conn.Close() }()
	tc := conn.(*tls.Conn)
	if len(cfg.Certificates) > 0 || cfg.GetClientCertificate != nil || tc.ConnectionState().Version < tls.VersionTLS13 {
		return nil
	}
	_ = tc.SetReadDeadline(time.Now().Add(alertWait))
	if _, err := tc.Read(make([]byte, 1)); err != nil && isClientCertRefusal(err) {
		return errClientCertRequired
	}
	return nil
}

var errClientCertRequired = errors.New("it requires a client certificate: give --etcd-cert and --etcd-key (kubeadm: /etc/kubernetes/pki/etcd/healthcheck-client.crt and .key on a control-plane node), or let status run etcdctl in the etcd pod (--etcd-exec, the default)")

// isClientCertRefusal reports whether err is the server's alert that a
// client certificate is missing or not accepted.
func isClientCertRefusal(err error) bool {
	s := err.Error()
	return strings.Contains(s, "certificate required") || strings.Contains(s, "bad certificate") || strings.Contains(s, "unknown certificate authority")
}
