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
	// "<dc>-cp-<i>". Each runs one etcd member named after it.
	ControlPlanes int
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

// MacStadium5 is MacStadium with five voters placed 2/2/1.
func MacStadium5() Topology {
	t := MacStadium()
	t.Datacenters[0].ControlPlanes = 2
	t.Datacenters[1].ControlPlanes = 2
	return t
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
		members += dc.ControlPlanes
		apiservers += dc.APIServers
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
