package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The PKI follows kubeadm's /etc/kubernetes/pki layout, rooted at
// <cluster dir>/pki: the cluster CA (ca.crt) and the API server's serving
// certificate, the service-account key pair, and under etcd/ a CA of its own
// that signs the members' server and peer certificates, the health-check
// client and, one level up, apiserver-etcd-client. Every control-plane node
// of the local cluster shares this one directory.
const (
	// EtcdCACert, EtcdHealthcheckCert and EtcdHealthcheckKey are paths
	// relative to the pki directory, as kubeadm names them.
	EtcdCACert          = "etcd/ca.crt"
	EtcdHealthcheckCert = "etcd/healthcheck-client.crt"
	EtcdHealthcheckKey  = "etcd/healthcheck-client.key"
)

// issuer signs certificates with one CA.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	next int64
}

// newCA makes a self-signed CA and writes it as name.crt and name.key.
func newCA(dir, name, commonName string) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writeKeyPair(dir, name, der, key); err != nil {
		return nil, err
	}
	return &issuer{cert: cert, key: key, next: 2}, nil
}

// issue signs a leaf certificate and writes it as name.crt and name.key.
func (ca *issuer) issue(dir, name, commonName string, usage []x509.ExtKeyUsage, dns []string, ips []net.IP) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.next),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	ca.next++
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return err
	}
	return writeKeyPair(dir, name, der, key)
}

func writeKeyPair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// writePKI writes the cluster's certificates into dir. The API server's
// serving certificate (serving.crt) also names the extra addresses in
// serveOn; etcd's server and peer certificates name loopback, where
// stacked members listen, and etcdIPs, the addresses of external etcd
// hosts.
func writePKI(dir string, serveOn, etcdIPs []net.IP) error {
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}

	ca, err := newCA(dir, "ca", "kubectl-dc local control plane CA")
	if err != nil {
		return err
	}
	apiIPs := append(append(append([]net.IP{}, loopback...), net.ParseIP("10.96.0.1")), serveOn...)
	if err := ca.issue(dir, "serving", "kube-apiserver", both,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", EndpointName}, apiIPs); err != nil {
		return err
	}

	etcdDir := filepath.Join(dir, "etcd")
	if err := os.MkdirAll(etcdDir, 0o755); err != nil {
		return err
	}
	etcdCA, err := newCA(etcdDir, "ca", "etcd-ca")
	if err != nil {
		return err
	}
	leaves := []struct {
		dir, name, cn string
		usage         []x509.ExtKeyUsage
		dns           []string
		ips           []net.IP
	}{
		{etcdDir, "server", "kube-etcd", both, []string{"localhost"}, append(append([]net.IP{}, loopback...), etcdIPs...)},
		{etcdDir, "peer", "kube-etcd-peer", both, []string{"localhost"}, append(append([]net.IP{}, loopback...), etcdIPs...)},
		{etcdDir, "healthcheck-client", "kube-etcd-healthcheck-client", client, nil, nil},
		{dir, "apiserver-etcd-client", "kube-apiserver-etcd-client", client, nil, nil},
	}
	for _, l := range leaves {
		if err := etcdCA.issue(l.dir, l.name, l.cn, l.usage, l.dns, l.ips); err != nil {
			return err
		}
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}), 0o600)
}

// EtcdClientTLS returns a client TLS configuration for the members, with
// kubeadm's health-check client certificate: what an operator on a
// control-plane node would use.
func (c *Cluster) EtcdClientTLS() (*tls.Config, error) {
	pki := filepath.Join(c.Dir, "pki")
	pair, err := tls.LoadX509KeyPair(filepath.Join(pki, EtcdHealthcheckCert), filepath.Join(pki, EtcdHealthcheckKey))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(pki, EtcdCACert))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// EtcdClientFiles returns the paths of the etcd CA and of the health-check
// client's certificate and key, for --etcd-cacert, --etcd-cert, --etcd-key.
func (c *Cluster) EtcdClientFiles() (caFile, certFile, keyFile string) {
	pki := filepath.Join(c.Dir, "pki")
	return filepath.Join(pki, EtcdCACert), filepath.Join(pki, EtcdHealthcheckCert), filepath.Join(pki, EtcdHealthcheckKey)
}
