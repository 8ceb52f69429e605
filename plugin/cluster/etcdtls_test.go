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
	"net/http"
	"net/http/httptest"
	"strings"
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
	if err := tlsProblem(ctx, "https://127.0.0.1:1", nil, time.Second); err != nil {
		t.Errorf("unreachable endpoint: %v, want none (the etcd client says it)", err)
	}
}
