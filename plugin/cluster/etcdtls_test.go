package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// selfSignedClient returns a client certificate and a pool that trusts it.
func selfSignedClient(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "healthcheck"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestTLSProblemSaysWhatIsMissing(t *testing.T) {
	clientCert, clientPool := selfSignedClient(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	trusted := x509.NewCertPool()
	trusted.AddCert(srv.Certificate())

	ctx := context.Background()
	cases := []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"no CA", nil, "--etcd-cacert"},
		{"CA but no client certificate", &tls.Config{RootCAs: trusted, MinVersion: tls.VersionTLS12}, "--etcd-cert and --etcd-key"},
		{"CA and client certificate", &tls.Config{RootCAs: trusted, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tlsProblem(ctx, srv.URL, tc.cfg, 2*time.Second)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("tlsProblem = %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("tlsProblem = %v, want it to mention %s", err, tc.want)
			}
		})
	}
	if err := tlsProblem(ctx, "http://"+srv.Listener.Addr().String(), nil, time.Second); err != nil {
		t.Errorf("plain http endpoint: %v, want no TLS verdict", err)
	}
	if err := tlsProblem(ctx, "https://127.0.0.1:1", nil, time.Second); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable endpoint: %v, want the dial's error", err)
	}
}

// TestProbeSilentMember: a member that accepts connections and never
// answers is dialled once, by the TLS check, not again by the etcd client
// (which would wait out a second deadline).
func TestProbeSilentMember(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer func() { _ = conn.Close() }()
		}
	}()
	s := probeEndpoint(context.Background(), "https://"+l.Addr().String(), nil, 300*time.Millisecond, true)
	if s.Err == nil {
		t.Fatal("a silent member answered")
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections to the silent member, want 1", n)
	}
}
