package policy_test

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// travis is three control planes, one per datacenter (10.0.<dc>.1), an
// API server on each at :6443, and a worker in pod-1 (10.0.1.50) where
// HAProxy may run.
func travis() ([]*corev1.Node, []policy.APIServer) {
	nodes := []*corev1.Node{
		testutil.Node("cp-1").InDC("pod-1").ControlPlane().InternalIP("10.0.1.1").Obj(),
		testutil.Node("cp-2").InDC("pod-2").ControlPlane().InternalIP("10.0.2.1").Obj(),
		testutil.Node("cp-3").InDC("pod-3").ControlPlane().InternalIP("10.0.3.1").Obj(),
		testutil.Node("lb-1").InDC("pod-1").InternalIP("10.0.1.50").ExternalIP("203.0.113.7").Obj(),
	}
	return nodes, []policy.APIServer{server("10.0.1.1:6443", "cp-1", "pod-1"), server("10.0.2.1:6443", "cp-2", "pod-2"), server("10.0.3.1:6443", "cp-3", "pod-3")}
}

func server(addr, node, dc string) policy.APIServer {
	return policy.APIServer{Address: addr, Node: node, Datacenter: dc}
}

func TestSplitEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
	}{
		{"https://10.0.1.50:6443", "10.0.1.50", 6443},
		{"https://api.example.com", "api.example.com", 0},
		{"10.0.1.50:8443", "10.0.1.50", 8443},
		{"api.example.com", "api.example.com", 0},
		{"https://[fd00::1]:6443", "fd00::1", 6443},
		{"[fd00::1]", "fd00::1", 0},
		{"", "", 0},
	} {
		if h, p := policy.SplitEndpoint(tc.in); h != tc.host || p != tc.port {
			t.Errorf("SplitEndpoint(%q) = %q, %d, want %q, %d", tc.in, h, p, tc.host, tc.port)
		}
	}
}

func TestClassifyEndpoint(t *testing.T) {
	nodes, servers := travis()
	type target struct{ address, kind, node, dc string }
	for _, tc := range []struct {
		name     string
		in       policy.EndpointInput
		kind, dc string
		servers  int
		targets  []target
	}{
		{
			name: "an API server's own address",
			in:   policy.EndpointInput{Address: "https://10.0.2.1:6443"},
			kind: policy.EndpointAPIServer, dc: "pod-2", servers: 1,
			targets: []target{{"10.0.2.1:6443", policy.EndpointAPIServer, "cp-2", "pod-2"}},
		},
		{
			name: "an API server without a port matches its host",
			in:   policy.EndpointInput{Address: "10.0.3.1"},
			kind: policy.EndpointAPIServer, dc: "pod-3", servers: 1,
			targets: []target{{"10.0.3.1", policy.EndpointAPIServer, "cp-3", "pod-3"}},
		},
		{
			name: "HAProxy on a worker's address (Travis)",
			in:   policy.EndpointInput{Address: "https://10.0.1.50:6443"},
			kind: policy.EndpointLoadBalancer, dc: "pod-1", servers: 3,
			targets: []target{{"10.0.1.50:6443", policy.EndpointLoadBalancer, "lb-1", "pod-1"}},
		},
		{
			name: "a node's external address",
			in:   policy.EndpointInput{Address: "203.0.113.7:6443"},
			kind: policy.EndpointLoadBalancer, dc: "pod-1", servers: 3,
			targets: []target{{"203.0.113.7:6443", policy.EndpointLoadBalancer, "lb-1", "pod-1"}},
		},
		{
			name: "HAProxy beside an API server on another port",
			in:   policy.EndpointInput{Address: "10.0.2.1:8443"},
			kind: policy.EndpointLoadBalancer, dc: "pod-2", servers: 3,
			targets: []target{{"10.0.2.1:8443", policy.EndpointLoadBalancer, "cp-2", "pod-2"}},
		},
		{
			name: "an address no node has: a load balancer somewhere",
			in:   policy.EndpointInput{Address: "https://192.168.7.7:6443"},
			kind: policy.EndpointLoadBalancer, dc: "", servers: 3,
			targets: []target{{"192.168.7.7:6443", policy.EndpointLoadBalancer, "", ""}},
		},
		{
			name: "the operator says where it runs",
			in:   policy.EndpointInput{Address: "https://192.168.7.7:6443", Datacenter: "pod-3"},
			kind: policy.EndpointLoadBalancer, dc: "pod-3", servers: 3,
			targets: []target{{"192.168.7.7:6443", policy.EndpointLoadBalancer, "", "pod-3"}},
		},
		{
			name: "known backends",
			in:   policy.EndpointInput{Address: "https://192.168.7.7:6443", Backends: []string{"10.0.1.1", "10.0.2.1:6443"}},
			kind: policy.EndpointLoadBalancer, servers: 2,
			targets: []target{{"192.168.7.7:6443", policy.EndpointLoadBalancer, "", ""}},
		},
		{
			// An API server's own address and a load balancer: no one kind.
			name: "a name resolving to one address per datacenter",
			in:   policy.EndpointInput{Address: "https://api.example.com:6443", Resolved: []string{"10.0.1.50", "10.0.2.1", "10.0.2.1"}},
			kind: policy.EndpointUnknown, dc: "", servers: 3,
			targets: []target{{"10.0.1.50:6443", policy.EndpointLoadBalancer, "lb-1", "pod-1"}, {"10.0.2.1:6443", policy.EndpointAPIServer, "cp-2", "pod-2"}},
		},
		{
			name: "an unresolved name",
			in:   policy.EndpointInput{Address: "https://api.example.com:6443"},
			kind: policy.EndpointLoadBalancer, servers: 3,
			targets: []target{{"api.example.com:6443", policy.EndpointLoadBalancer, "", ""}},
		},
		{
			name:    "no address",
			in:      policy.EndpointInput{},
			kind:    policy.EndpointUnknown,
			targets: []target{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Nodes, in.Label = nodes, testutil.Zone
			if in.APIServers == nil {
				in.APIServers = servers
			}
			ep := policy.ClassifyEndpoint(in)
			if ep.Address != tc.in.Address || ep.Kind != tc.kind || ep.Datacenter != tc.dc || len(ep.Servers) != tc.servers {
				t.Errorf("endpoint = %s %s in %q with %d servers, want %s in %q with %d", ep.Address, ep.Kind, ep.Datacenter, len(ep.Servers), tc.kind, tc.dc, tc.servers)
			}
			got := []target{}
			for _, x := range ep.Targets {
				got = append(got, target{x.Address, x.Kind, x.Node, x.Datacenter})
			}
			if !reflect.DeepEqual(got, tc.targets) {
				t.Errorf("targets = %v, want %v", got, tc.targets)
			}
		})
	}
}

func TestClassifyEndpointWithoutAPIServers(t *testing.T) {
	nodes, _ := travis()
	ep := policy.ClassifyEndpoint(policy.EndpointInput{Address: "https://10.0.1.50:6443", Nodes: nodes, Label: testutil.Zone})
	if ep.Kind != policy.EndpointUnknown || ep.Datacenter != "pod-1" {
		t.Errorf("endpoint = %+v, want unknown kind in pod-1: no API server to tell it from", ep)
	}
}

func TestEndpointReachable(t *testing.T) {
	nodes, servers := travis()
	classify := func(addr string, resolved ...string) policy.Endpoint {
		return policy.ClassifyEndpoint(policy.EndpointInput{Address: addr, Resolved: resolved, APIServers: servers, Nodes: nodes, Label: testutil.Zone})
	}
	lbIn := func(dc string, backends ...string) policy.Endpoint {
		return policy.ClassifyEndpoint(policy.EndpointInput{Address: "https://192.168.7.7:6443", APIServers: servers, Backends: backends, Nodes: nodes, Label: testutil.Zone, Datacenter: dc})
	}
	for _, tc := range []struct {
		name   string
		ep     policy.Endpoint
		lost   []string
		want   string // yes, no or unknown
		reason string
	}{
		{"nothing lost", classify("https://10.0.1.50:6443"), nil, "yes", ""},
		{"HAProxy in pod-1, lose pod-1, although etcd keeps quorum", classify("https://10.0.1.50:6443"), []string{"pod-1"}, "no", "the load balancer runs in pod-1"},
		{"HAProxy in pod-1, lose pod-2", classify("https://10.0.1.50:6443"), []string{"pod-2"}, "yes", ""},
		{"HAProxy in pod-1, every server behind it lost", classify("https://10.0.1.50:6443"), []string{"pod-2", "pod-3"}, "yes", ""},
		{"load balancer in pod-3 over pod-1 and pod-2 only", lbIn("pod-3", "10.0.1.1", "10.0.2.1"), []string{"pod-1", "pod-2"}, "no", "every API server behind the load balancer is in pod-1, pod-2"},
		{"an API server's own address, lose its datacenter", classify("https://10.0.2.1:6443"), []string{"pod-2"}, "no", "the endpoint is the API server on cp-2 in pod-2"},
		{"one per datacenter behind DNS, lose pod-1", classify("https://api.example.com:6443", "10.0.1.1", "10.0.2.1", "10.0.3.1"), []string{"pod-1"}, "yes", ""},
		{"one per datacenter behind DNS, lose pod-1 and pod-2", classify("https://api.example.com:6443", "10.0.1.1", "10.0.2.1", "10.0.3.1"), []string{"pod-1", "pod-2"}, "yes", ""},
		{"two in pod-1 behind DNS, lose pod-1", classify("https://api.example.com:6443", "10.0.1.1", "10.0.1.50"), []string{"pod-1"}, "no",
			"every address of the endpoint is lost: the endpoint is the API server on cp-1 in pod-1; the load balancer runs in pod-1"},
		{"a load balancer in no known datacenter", lbIn(""), []string{"pod-1"}, "unknown", "the load balancer 192.168.7.7:6443 runs in no known datacenter"},
		{"a load balancer in no known datacenter, every server lost", lbIn(""), []string{"pod-1", "pod-2", "pod-3"}, "no", "every API server behind the load balancer is in pod-1, pod-2, pod-3"},
		{"the operator's datacenter, lost", lbIn("pod-3"), []string{"pod-3"}, "no", "the load balancer runs in pod-3"},
		{"no endpoint", policy.ClassifyEndpoint(policy.EndpointInput{}), []string{"pod-1"}, "unknown", "the control-plane endpoint is unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := policy.EndpointReachable(tc.ep, tc.lost)
			got := "unknown"
			if r.Reachable != nil {
				got = map[bool]string{true: "yes", false: "no"}[*r.Reachable]
			}
			if got != tc.want || r.Reason != tc.reason {
				t.Errorf("reachable = %s (%q), want %s (%q)", got, r.Reason, tc.want, tc.reason)
			}
		})
	}
}
