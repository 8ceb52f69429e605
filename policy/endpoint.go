package policy

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Kinds of control-plane endpoint: what the address every kubelet and
// operator dials turns out to be.
const (
	// EndpointAPIServer is an API server's own address: the endpoint lives
	// and dies with that server.
	EndpointAPIServer = "apiserver"
	// EndpointLoadBalancer is an address that is no API server: something
	// (HAProxy, an ELB, a VIP) forwards to the API servers behind it.
	EndpointLoadBalancer = "loadbalancer"
	// EndpointUnknown is an address that cannot be told apart: no API
	// server is known to compare it with, or there is no address.
	EndpointUnknown = "unknown"
)

// APIServer is one API server as the endpoint classification sees it.
type APIServer struct {
	// Address is host or host:port; a missing port matches any.
	Address string `json:"address"`
	// Node runs the server, "" when unknown.
	Node string `json:"node,omitempty"`
	// Datacenter holds the server, "" when unknown.
	Datacenter string `json:"datacenter,omitempty"`
}

// EndpointInput is what ClassifyEndpoint judges.
type EndpointInput struct {
	// Address is the endpoint as the cluster is configured with it: a URL,
	// host:port or a bare host.
	Address string
	// Resolved are the addresses the endpoint's host name resolves to; empty
	// when the host is an IP or did not resolve (the host stands for itself).
	// Each is dialled on its own, so a name that resolves to one address per
	// datacenter survives the loss of any one of them.
	Resolved []string
	// APIServers are every API server known.
	APIServers []APIServer
	// Backends are the addresses of the API servers a load balancer forwards
	// to; nil means all of APIServers.
	Backends []string
	// Nodes and Label place an address that is a node's in the node's
	// datacenter.
	Nodes []*corev1.Node
	Label string
	// Datacenter is where the operator says a load balancer runs, "" when
	// not said; it wins over a node's datacenter.
	Datacenter string
}

// Endpoint is the control-plane endpoint classified.
type Endpoint struct {
	// Address is the endpoint as configured.
	Address string `json:"address"`
	// Kind is apiserver or loadbalancer when every target is, else unknown.
	Kind string `json:"kind"`
	// Datacenter holds every target, "" when unknown or when the targets are
	// in several datacenters (see Targets).
	Datacenter string `json:"datacenter,omitempty"`
	// Servers are the API servers reachable through the endpoint.
	Servers []APIServer `json:"servers"`
	// Targets are the addresses dialled, one per resolved address.
	Targets []EndpointTarget `json:"targets"`
}

// EndpointTarget is one address of the endpoint.
type EndpointTarget struct {
	// Address is the IP (or unresolved host) with the endpoint's port.
	Address string `json:"address"`
	Kind    string `json:"kind"`
	// Node is the node whose address this is, "" when none or several.
	Node string `json:"node,omitempty"`
	// Datacenter holds the target, "" when unknown.
	Datacenter string `json:"datacenter,omitempty"`
	// Servers are the API servers behind it: the one it is, or those a load
	// balancer forwards to.
	Servers []APIServer `json:"servers"`
}

// SplitEndpoint returns the host and port of a URL, host:port or bare host;
// port 0 means none was given. IPv6 brackets are removed.
func SplitEndpoint(addr string) (string, int) {
	addr = strings.TrimSpace(addr)
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil {
			addr = u.Host
		}
	}
	if h, p, err := net.SplitHostPort(addr); err == nil {
		port, _ := strconv.Atoi(p)
		return h, port
	}
	return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), 0
}

// ClassifyEndpoint says what the control-plane endpoint is: for each
// address it resolves to, an API server's own address (placed by the
// server), a load balancer in front of the API servers (placed by the
// operator's datacenter, else by the node whose address it is), or unknown
// when no API server is known to tell one from the other.
func ClassifyEndpoint(in EndpointInput) Endpoint {
	ep := Endpoint{Address: in.Address, Kind: EndpointUnknown, Servers: []APIServer{}, Targets: []EndpointTarget{}}
	host, port := SplitEndpoint(in.Address)
	if host == "" {
		return ep
	}
	hosts := in.Resolved
	if len(hosts) == 0 {
		hosts = []string{host}
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if seen[h] {
			continue
		}
		seen[h] = true
		ep.Targets = append(ep.Targets, classifyTarget(in, h, port))
	}
	kinds, dcs, servers := map[string]bool{}, map[string]bool{}, map[string]APIServer{}
	for _, t := range ep.Targets {
		kinds[t.Kind] = true
		dcs[t.Datacenter] = true
		for _, s := range t.Servers {
			servers[s.Address] = s
		}
	}
	if len(kinds) == 1 {
		ep.Kind = ep.Targets[0].Kind
	}
	if len(dcs) == 1 {
		ep.Datacenter = ep.Targets[0].Datacenter
	}
	for _, a := range sortedKeys(servers) {
		ep.Servers = append(ep.Servers, servers[a])
	}
	return ep
}

// classifyTarget classifies one address of the endpoint.
func classifyTarget(in EndpointInput, host string, port int) EndpointTarget {
	t := EndpointTarget{Address: host, Kind: EndpointUnknown, Servers: []APIServer{}}
	if port != 0 {
		t.Address = net.JoinHostPort(host, strconv.Itoa(port))
	}
	// The API servers this address is: same host, and the same port when
	// both are known.
	var sameHost []APIServer
	for _, s := range in.APIServers {
		sh, sp := SplitEndpoint(s.Address)
		if sh != host {
			continue
		}
		sameHost = append(sameHost, s)
		if port == 0 || sp == 0 || sp == port {
			t.Servers = append(t.Servers, s)
		}
	}
	if len(t.Servers) > 0 {
		t.Kind = EndpointAPIServer
		t.Node, t.Datacenter = common(t.Servers, func(s APIServer) string { return s.Node }), common(t.Servers, func(s APIServer) string { return s.Datacenter })
		return t
	}
	// A node whose address this is runs what answers there: a load
	// balancer when it is no API server (HAProxy on a control-plane node
	// listens on another port than the server beside it).
	var onNodes []string
	dcs := map[string]bool{}
	for _, n := range in.Nodes {
		if nodeHasAddress(n, host) {
			onNodes = append(onNodes, n.Name)
			dcs[DatacenterOf(n, in.Label)] = true
		}
	}
	if len(onNodes) == 1 {
		t.Node = onNodes[0]
	}
	if len(dcs) == 1 {
		for dc := range dcs {
			t.Datacenter = dc
		}
	} else if len(onNodes) == 0 && len(sameHost) > 0 {
		t.Node, t.Datacenter = common(sameHost, func(s APIServer) string { return s.Node }), common(sameHost, func(s APIServer) string { return s.Datacenter })
	}
	if in.Datacenter != "" {
		t.Datacenter = in.Datacenter
	}
	if len(in.APIServers) == 0 {
		return t
	}
	t.Kind = EndpointLoadBalancer
	t.Servers = backends(in)
	return t
}

// backends are the API servers a load balancer forwards to: those named
// in Backends, else all of them.
func backends(in EndpointInput) []APIServer {
	if in.Backends == nil {
		return append([]APIServer{}, in.APIServers...)
	}
	out := []APIServer{}
	for _, s := range in.APIServers {
		sh, sp := SplitEndpoint(s.Address)
		for _, b := range in.Backends {
			bh, bp := SplitEndpoint(b)
			if bh == sh && (bp == 0 || sp == 0 || bp == sp) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// common returns the value f gives every server, "" when they differ.
func common(servers []APIServer, f func(APIServer) string) string {
	v := f(servers[0])
	for _, s := range servers[1:] {
		if f(s) != v {
			return ""
		}
	}
	return v
}

// nodeHasAddress reports whether addr is one of the node's addresses
// (internal or external IP, host name).
func nodeHasAddress(n *corev1.Node, addr string) bool {
	for _, a := range n.Status.Addresses {
		if a.Address == addr {
			return true
		}
	}
	return false
}

// Reachability is whether the API can still be reached through the
// control-plane endpoint.
type Reachability struct {
	// Reachable is nil when it cannot be known: an address in no known
	// datacenter is the only one left.
	Reachable *bool
	// Reason says why it is not, or not known, reachable; "" when it is.
	Reason string
}

// EndpointReachable says whether kubelets and operators still reach the API
// through ep when the datacenters lost are gone. An address in a lost
// datacenter is gone, even while etcd keeps quorum elsewhere; a load
// balancer whose every API server is lost forwards to nothing. The API is
// reachable while any address survives (one per datacenter behind a DNS
// name, say).
func EndpointReachable(ep Endpoint, lost []string) Reachability {
	if len(ep.Targets) == 0 {
		return Reachability{Reason: "the control-plane endpoint is unknown"}
	}
	var gone, unknown []string
	for _, t := range ep.Targets {
		switch reason, ok := targetGone(t, lost); {
		case reason != "":
			gone = append(gone, reason)
		case !ok:
			unknown = append(unknown, unknownReason(t))
		default:
			yes := true
			return Reachability{Reachable: &yes}
		}
	}
	if len(unknown) > 0 {
		return Reachability{Reason: strings.Join(unknown, "; ")}
	}
	no := false
	if len(gone) == 1 {
		return Reachability{Reachable: &no, Reason: gone[0]}
	}
	return Reachability{Reachable: &no, Reason: "every address of the endpoint is lost: " + strings.Join(gone, "; ")}
}

// targetGone returns why t is gone with the lost datacenters, "" when it
// is not; ok is false when that cannot be known.
func targetGone(t EndpointTarget, lost []string) (reason string, ok bool) {
	if t.Datacenter != "" && contains(lost, t.Datacenter) {
		switch t.Kind {
		case EndpointLoadBalancer:
			return "the load balancer runs in " + t.Datacenter, true
		case EndpointAPIServer:
			where := t.Datacenter
			if t.Node != "" {
				where = t.Node + " in " + t.Datacenter
			}
			return "the endpoint is the API server on " + where, true
		}
		return "the endpoint " + t.Address + " is in " + t.Datacenter, true
	}
	if len(t.Servers) > 0 {
		dcs := map[string]bool{}
		for _, s := range t.Servers {
			if s.Datacenter == "" || !contains(lost, s.Datacenter) {
				return "", t.Datacenter != ""
			}
			dcs[s.Datacenter] = true
		}
		return "every API server behind the load balancer is in " + strings.Join(sortedKeys(dcs), ", "), true
	}
	return "", t.Datacenter != ""
}

func unknownReason(t EndpointTarget) string {
	if t.Kind == EndpointLoadBalancer {
		return "the load balancer " + t.Address + " runs in no known datacenter"
	}
	return "the endpoint " + t.Address + " is in no known datacenter"
}
