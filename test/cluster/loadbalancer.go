package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kubectl-dc/kubectl-dc/test/ports"
)

// LoadBalancer is an HAProxy in front of every API server, running "in" a
// datacenter: it listens on the address of the datacenter's first
// control-plane node, so that it is found there, and dies with it.
type LoadBalancer struct {
	Datacenter string `json:"datacenter"`
	// Address is host:port.
	Address string `json:"address"`
}

// lbProc names the process of datacenter dc's load balancer.
func lbProc(dc string) string { return "haproxy-" + dc }

// lbIP is the address datacenter dc's load balancer listens on: its first
// control-plane node's, else its first node's.
func (t Topology) lbIP(dc string) string {
	first := ""
	for _, n := range t.nodes() {
		if n.Datacenter != dc {
			continue
		}
		if n.ControlPlane {
			return n.IP
		}
		if first == "" {
			first = n.IP
		}
	}
	return first
}

// lbIPs are the addresses of the topology's load balancers, for the API
// server's serving certificate.
func (t Topology) lbIPs() []net.IP {
	var out []net.IP
	for _, dc := range t.LoadBalancers {
		out = append(out, net.ParseIP(t.lbIP(dc)))
	}
	return out
}

// startLoadBalancers starts one HAProxy per datacenter of the topology's
// LoadBalancers, in TCP mode with a health check of each API server's
// /readyz, as a kubeadm HA guide sets one up, and waits until each passes
// requests through. They share one port, each on its own datacenter's
// address, so that one host name resolving to all of them (EndpointName)
// is an endpoint with one address per datacenter.
func (c *Cluster) startLoadBalancers(ctx context.Context) error {
	if len(c.Topo.LoadBalancers) == 0 {
		return nil
	}
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return fmt.Errorf("the topology runs HAProxy as its control-plane endpoint, but haproxy is not installed: `make test` installs it (apt-get install haproxy)")
	}
	var backends []string
	for _, a := range c.APIServers {
		backends = append(backends, fmt.Sprintf("    server %s %s", a.Node, urlHost(a.URL)))
	}
	port := ports.Free()
	if port == 0 {
		return fmt.Errorf("no free loopback port")
	}
	var names []string
	for _, dc := range c.Topo.LoadBalancers {
		lb := LoadBalancer{Datacenter: dc, Address: net.JoinHostPort(c.Topo.lbIP(dc), fmt.Sprint(port))}
		cfg := fmt.Sprintf(`global
    maxconn 4000
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
frontend kube-apiserver
    bind %s
    default_backend kube-apiservers
backend kube-apiservers
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 1 check check-ssl verify none
%s
`, lb.Address, strings.Join(backends, "\n"))
		path := filepath.Join(c.Dir, lbProc(dc)+".cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			return err
		}
		c.LoadBalancers = append(c.LoadBalancers, lb)
		c.Procs[lbProc(dc)] = &process{Name: lbProc(dc), Bin: bin, Args: []string{"-db", "-f", path}}
		names = append(names, lbProc(dc))
	}
	if err := c.startAll(ctx, names); err != nil {
		return err
	}
	hc, err := c.httpClient()
	if err != nil {
		return err
	}
	for _, lb := range c.LoadBalancers {
		if err := waitHTTP(ctx, "https://"+lb.Address+"/readyz", hc, c.Procs[lbProc(lb.Datacenter)]); err != nil {
			return fmt.Errorf("haproxy in %s: %w", lb.Datacenter, err)
		}
	}
	return nil
}

// EndpointName is the host name NameControlPlaneEndpoint points the
// cluster at. Every API server's serving certificate carries it.
const EndpointName = "control-plane.kubectl-dc.test"

// NameControlPlaneEndpoint does what an operator does to remove the single
// load balancer from the path: a host name resolving to every running load
// balancer, one per datacenter (a DNS round robin), becomes the endpoint
// kubeadm-config, cluster-info and the kube-proxy kubeconfig name. Nothing
// serves DNS here, so the name resolves only in commands run with
// HostsFile as their /etc/hosts, as RunKubectlDC runs kubectl-dc; the
// admin kubeconfig keeps the first load balancer's address.
// RestoreControlPlaneEndpoint undoes it.
func (c *Cluster) NameControlPlaneEndpoint(ctx context.Context) error {
	c.mu.Lock()
	lbs := append([]LoadBalancer(nil), c.LoadBalancers...)
	c.mu.Unlock()
	if len(lbs) == 0 {
		return fmt.Errorf("the topology runs no load balancer to name")
	}
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		return err
	}
	var port string
	for _, lb := range lbs {
		host, p, err := net.SplitHostPort(lb.Address)
		if err != nil {
			return err
		}
		port = p
		hosts = fmt.Appendf(hosts, "%s %s\n", host, EndpointName)
	}
	path := filepath.Join(c.Dir, "hosts")
	if err := os.WriteFile(path, hosts, 0o644); err != nil {
		return err
	}
	c.mu.Lock()
	c.HostsFile, c.EndpointAddress = path, net.JoinHostPort(EndpointName, port)
	c.mu.Unlock()
	if err := c.writeKubeadmConfigMaps(ctx); err != nil {
		return err
	}
	return c.saveState()
}

// RestoreControlPlaneEndpoint points the kubeadm ConfigMaps back at the
// first load balancer and forgets the host name.
func (c *Cluster) RestoreControlPlaneEndpoint(ctx context.Context) error {
	c.mu.Lock()
	c.HostsFile, c.EndpointAddress = "", ""
	c.mu.Unlock()
	if err := c.writeKubeadmConfigMaps(ctx); err != nil {
		return err
	}
	return c.saveState()
}

// Command returns the command that runs bin with args so that it
// resolves host names through HostsFile, the control-plane endpoint's name
// among them: in a private mount namespace whose /etc/hosts is that file.
// Without HostsFile it is bin itself.
func (c *Cluster) Command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	c.mu.Lock()
	hosts := c.HostsFile
	c.mu.Unlock()
	if hosts == "" {
		return exec.CommandContext(ctx, bin, args...)
	}
	return exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, hosts, bin}, args...)...)
}
