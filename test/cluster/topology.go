package cluster

import "fmt"

// DefaultLabel is the datacenter label nodes carry unless a Topology says
// otherwise.
const DefaultLabel = "topology.kubernetes.io/zone"

// Datacenter is one site of the cluster.
type Datacenter struct {
	Name string
	// Workers is the number of worker nodes, named "<dc>-worker-<i>".
	Workers int
	// ControlPlanes is the number of control-plane nodes, named
	// "<dc>-cp-<i>". Each runs one etcd member named after it, unless the
	// topology's etcd is external (some datacenter has EtcdHosts).
	ControlPlanes int
	// EtcdHosts is the number of external etcd members, on hosts that are
	// no Node: named "<dc>-etcd-<i>", listening on 127.1.<dc>.<200+i>
	// (a loopback address of the datacenter that no node has), with no
	// mirror pod. When any datacenter has one, etcd runs only there and the
	// control-plane nodes run API servers alone, as kubeadm's "external
	// etcd" or DC/OS's etcd tasks.
	EtcdHosts int
	// APIServers is how many of the control-plane nodes, first ones first,
	// also run a kube-apiserver. 0 means none; at least one datacenter of a
	// topology must have one.
	APIServers int
}

// Topology describes the datacenters of a cluster.
type Topology struct {
	// Label is the node label that names a node's datacenter; "" means
	// DefaultLabel.
	Label       string
	Datacenters []Datacenter
	// LoadBalancers lists the datacenters that run an HAProxy in front of
	// every API server. The first is the control-plane endpoint every
	// kubeconfig and kubeadm ConfigMap names. Empty means none: they name
	// the first API server, as a kubeadm cluster without a load balancer.
	LoadBalancers []string
	// Kine stores the cluster's state in kine over PostgreSQL instead of
	// etcd: each datacenter's first control-plane node runs a PostgreSQL
	// server (the first datacenter's the primary, the others streaming
	// replicas), every API server node a kine writing to the primary.
	// There is no etcd member.
	Kine bool
}

// MacStadium is the example topology: two MacStadium pods with the workers
// and a witness pod-3, one control-plane node (an etcd voter and an API
// server) in each, so three voters placed 1/1/1.
func MacStadium() Topology {
	return Topology{Datacenters: []Datacenter{
		{Name: "pod-1", Workers: 3, ControlPlanes: 1, APIServers: 1},
		{Name: "pod-2", Workers: 3, ControlPlanes: 1, APIServers: 1},
		{Name: "pod-3", Workers: 1, ControlPlanes: 1, APIServers: 1},
	}}
}

// Travis is MacStadium with the control-plane endpoint Travis CI had: one
// HAProxy, in pod-1, in front of the three API servers.
func Travis() Topology {
	t := MacStadium()
	t.LoadBalancers = []string{"pod-1"}
	return t
}

// LoadBalancerPerDatacenter is MacStadium with an HAProxy in every
// datacenter in front of the three API servers. Until
// NameControlPlaneEndpoint names all of them, the endpoint is pod-1's, as
// in Travis.
func LoadBalancerPerDatacenter() Topology {
	t := MacStadium()
	t.LoadBalancers = []string{"pod-1", "pod-2", "pod-3"}
	return t
}

// MacStadium5 is MacStadium with five voters placed 2/2/1.
func MacStadium5() Topology {
	t := MacStadium()
	t.Datacenters[0].ControlPlanes = 2
	t.Datacenters[1].ControlPlanes = 2
	return t
}

// ExternalEtcd is MacStadium with etcd on three hosts that are no Node,
// one per datacenter, and the API servers still on the control-plane
// nodes (as mirror pods, their --etcd-servers naming the members).
func ExternalEtcd() Topology {
	t := MacStadium()
	for i := range t.Datacenters {
		t.Datacenters[i].EtcdHosts = 1
	}
	return t
}

// External reports whether etcd runs on hosts of its own (EtcdHosts).
func (t Topology) External() bool {
	for _, dc := range t.Datacenters {
		if dc.EtcdHosts > 0 {
			return true
		}
	}
	return false
}

// label returns the datacenter label, defaulted.
func (t Topology) label() string {
	if t.Label == "" {
		return DefaultLabel
	}
	return t.Label
}

func (t Topology) validate() error {
	if len(t.Datacenters) == 0 {
		return fmt.Errorf("topology has no datacenters: add at least one with a control-plane node")
	}
	members, apiservers := 0, 0
	seen := map[string]bool{}
	for _, dc := range t.Datacenters {
		if dc.Name == "" || seen[dc.Name] {
			return fmt.Errorf("topology: datacenter name %q is empty or repeated", dc.Name)
		}
		seen[dc.Name] = true
		if dc.APIServers > dc.ControlPlanes {
			return fmt.Errorf("topology: datacenter %s has %d API servers but only %d control-plane nodes to run them", dc.Name, dc.APIServers, dc.ControlPlanes)
		}
		if dc.EtcdHosts < 0 || dc.EtcdHosts > 50 {
			return fmt.Errorf("topology: datacenter %s has %d etcd hosts: use 0 to 50", dc.Name, dc.EtcdHosts)
		}
		if t.Kine {
			members += dc.APIServers
		} else if t.External() {
			members += dc.EtcdHosts
		} else {
			members += dc.ControlPlanes
		}
		apiservers += dc.APIServers
	}
	if t.Kine && t.External() {
		return fmt.Errorf("topology: kine and external etcd hosts exclude each other")
	}
	for _, lb := range t.LoadBalancers {
		if !seen[lb] {
			return fmt.Errorf("topology: load balancer in unknown datacenter %q", lb)
		}
	}
	if members == 0 || apiservers == 0 {
		return fmt.Errorf("topology needs at least one control-plane node with an API server (has %d members, %d API servers)", members, apiservers)
	}
	return nil
}

// etcdHost is an external etcd member's host: no Node, an address of its
// datacenter's loopback range.
type etcdHost struct {
	Name       string
	Datacenter string
	IP         string
}

// etcdHosts lists the external etcd hosts, per datacenter.
func (t Topology) etcdHosts() []etcdHost {
	var out []etcdHost
	for d, dc := range t.Datacenters {
		for i := 1; i <= dc.EtcdHosts; i++ {
			out = append(out, etcdHost{Name: fmt.Sprintf("%s-etcd-%d", dc.Name, i), Datacenter: dc.Name, IP: fmt.Sprintf("127.1.%d.%d", d+1, 200+i)})
		}
	}
	return out
}

// node is one node of the topology, as created in the cluster.
type node struct {
	Name         string
	Datacenter   string
	ControlPlane bool
	APIServer    bool
	IP           string
}

// nodes lists every node: per datacenter, control planes first. Node IPs
// are loopback addresses (127.1.<dc>.<n>) so that nothing that dials a node
// ever leaves the machine.
func (t Topology) nodes() []node {
	var out []node
	for d, dc := range t.Datacenters {
		n := 0
		for i := 1; i <= dc.ControlPlanes; i++ {
			n++
			out = append(out, node{
				Name: fmt.Sprintf("%s-cp-%d", dc.Name, i), Datacenter: dc.Name,
				ControlPlane: true, APIServer: i <= dc.APIServers,
				IP: fmt.Sprintf("127.1.%d.%d", d+1, n),
			})
		}
		for i := 1; i <= dc.Workers; i++ {
			n++
			out = append(out, node{
				Name: fmt.Sprintf("%s-worker-%d", dc.Name, i), Datacenter: dc.Name,
				IP: fmt.Sprintf("127.1.%d.%d", d+1, n),
			})
		}
	}
	return out
}
