package cluster

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// Etcd sources: where the member list of a report comes from.
const (
	// EtcdSourceDirect means etcd was dialled (--etcd-endpoints or the kubeadm
	// advertise annotation of the etcd pods).
	EtcdSourceDirect = "direct"
	// EtcdSourceExec means etcdctl ran inside an etcd pod.
	EtcdSourceExec = "exec"
	// EtcdSourcePods means only the readiness of the etcd pods is known: no
	// leader, no learners unless annotated.
	EtcdSourcePods = "pods"
	// EtcdSourceUnknown means there is nothing to read: no etcd pods
	// (a managed control plane, kine) and no endpoints.
	EtcdSourceUnknown = "unknown"
)

// Unlabeled is how nodes without the datacenter label are listed.
const Unlabeled = "(unlabeled)"

// EtcdStatus is the etcd cluster as seen.
type EtcdStatus struct {
	// Source is direct, exec, pods or unknown.
	Source string `json:"source"`
	// Size is the number of voting members (learners excluded).
	Size int `json:"size"`
	// Healthy is the number of healthy voting members.
	Healthy  int `json:"healthy"`
	Learners int `json:"learners"`
	Quorum   int `json:"quorum"`
	// FaultTolerance is how many more voters may fail now while a quorum
	// remains: healthy voters minus quorum (size minus quorum when all are
	// healthy), never below 0.
	FaultTolerance int  `json:"faultTolerance"`
	HasQuorum      bool `json:"hasQuorum"`
	// Leader is the leader's name, "" when unknown or none.
	Leader    string       `json:"leader,omitempty"`
	Endpoints []string     `json:"endpoints,omitempty"`
	Members   []EtcdMember `json:"members"`
	// Notes explain fallbacks (why direct or exec reading failed).
	Notes []string `json:"notes,omitempty"`
}

// EtcdMember is one etcd member.
type EtcdMember struct {
	Name       string `json:"name"`
	ID         string `json:"id,omitempty"`
	Node       string `json:"node"`
	Datacenter string `json:"datacenter"`
	// DatacenterFrom says how the datacenter is known: "node" (the node
	// the member runs on), "etcd-datacenters" or "PlacementPolicy/<name>"
	// (the operator placed a member that is on no node with the flag or
	// the policy's spec.etcdMembers), "cache" (a previous run, the API being
	// down); "" when it is not known.
	DatacenterFrom string   `json:"datacenterFrom,omitempty"`
	Healthy        bool     `json:"healthy"`
	Leader         bool     `json:"leader"`
	Learner        bool     `json:"learner"`
	ClientURLs     []string `json:"clientURLs,omitempty"`
	PeerURLs       []string `json:"peerURLs,omitempty"`
}

// EtcdView is the member list read from etcd.
type EtcdView struct {
	Source    string
	Endpoints []string
	Members   []EtcdMemberInfo
	// LeaderID is the leader the healthy members agree on, 0 when none.
	LeaderID uint64
	Notes    []string
}

// EtcdMemberInfo is one member as read from etcd.
type EtcdMemberInfo struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	Learner    bool
	// Healthy is true when the member answered its status call without
	// errors.
	Healthy bool
}

// Voters converts members to the quorum arithmetic's voters.
func Voters(members []EtcdMember) []policy.Voter {
	out := make([]policy.Voter, 0, len(members))
	for _, m := range members {
		dc := m.Datacenter
		if dc == Unlabeled {
			dc = ""
		}
		out = append(out, policy.Voter{Name: m.Name, Node: m.Node, Datacenter: dc, Healthy: m.Healthy, Learner: m.Learner})
	}
	return out
}

// Placement is what places etcd members and API servers in datacenters.
type Placement struct {
	Nodes    []*corev1.Node
	EtcdPods []*corev1.Pod
	// DatacenterOf names the datacenter of a node: Unlabeled for a node
	// without the label, "" for a node no one knows.
	DatacenterOf func(node string) string
	// Cached maps node and member names to datacenters from a previous run,
	// used when the API server is unavailable.
	Cached map[string]string
	// Lost are the datacenters of a what-if: their members count as down.
	Lost map[string]bool
	// MemberDatacenters places the members that run on no node (external
	// etcd): a member name or address (a client or peer URL, its
	// host:port or its host) to a datacenter. A member on a node takes the
	// node's datacenter.
	MemberDatacenters map[string]string
	// MemberSources says where an entry of MemberDatacenters comes from
	// ("PlacementPolicy/<name>"); FromEtcdDatacenters when it has none.
	MemberSources map[string]string
}

// Datacenter sources of a member (EtcdMember.DatacenterFrom).
const (
	FromNode            = "node"
	FromEtcdDatacenters = "etcd-datacenters"
	FromCache           = "cache"
)

// MemberKeys are the names a member may be placed by: its name, then each
// peer and client URL, its host:port and its host.
func MemberKeys(name string, urls ...string) []string {
	keys := []string{name}
	for _, u := range urls {
		keys = append(keys, strings.TrimRight(u, "/"))
		if p, err := url.Parse(u); err == nil && p.Host != "" {
			keys = append(keys, p.Host)
			if h := urlHostOf(u); h != "" && h != p.Host {
				keys = append(keys, h)
			}
		}
	}
	return keys
}

// PlacedDatacenter is the datacenter places gives a member, by the first
// of its MemberKeys that places names, and that key; "" when none does.
func PlacedDatacenter(places map[string]string, name string, urls ...string) (dc, key string) {
	for _, k := range MemberKeys(name, urls...) {
		if dc := places[k]; dc != "" {
			return dc, k
		}
	}
	return "", ""
}

// BuildEtcd maps the members (from etcd, else from the etcd pods) to nodes
// and datacenters and does the quorum arithmetic. Members in lost
// datacenters count as down.
func BuildEtcd(view *EtcdView, at Placement) EtcdStatus {
	nodes := make(map[string]*corev1.Node, len(at.Nodes))
	for _, n := range at.Nodes {
		nodes[n.Name] = n
	}
	dcOfNode, lost := at.DatacenterOf, at.Lost
	e := EtcdStatus{Members: []EtcdMember{}}
	switch {
	case view != nil && view.Source != "" && len(view.Members) > 0:
		e.Source = view.Source
		e.Endpoints = view.Endpoints
		e.Notes = view.Notes
		for _, m := range view.Members {
			node := MemberNode(m, at.Nodes, at.EtcdPods)
			em := EtcdMember{
				Name: m.Name, ID: fmt.Sprintf("%x", m.ID), Node: node,
				Healthy: m.Healthy, Learner: m.Learner,
				Leader:     m.ID != 0 && m.ID == view.LeaderID,
				ClientURLs: m.ClientURLs, PeerURLs: m.PeerURLs,
			}
			if node != "" {
				em.Datacenter, em.DatacenterFrom = dcOfNode(node), FromNode
				if len(at.Nodes) == 0 {
					// No node objects: the node is a guess by name and
					// its datacenter the last run's.
					em.DatacenterFrom = FromCache
				}
			}
			if em.Datacenter == "" {
				// No node holds it (external etcd), or the API is down and
				// the node is a guess: the operator's placement, else the
				// last run's.
				urls := append(append([]string{}, m.PeerURLs...), m.ClientURLs...)
				if dc, key := PlacedDatacenter(at.MemberDatacenters, m.Name, urls...); dc != "" {
					em.Datacenter, em.DatacenterFrom = dc, FromEtcdDatacenters
					if src := at.MemberSources[key]; src != "" {
						em.DatacenterFrom = src
					}
				} else if dc := at.Cached[m.Name]; dc != "" {
					em.Datacenter, em.DatacenterFrom = dc, FromCache
				}
			}
			if em.Datacenter == "" {
				em.DatacenterFrom = ""
			}
			e.Members = append(e.Members, em)
		}
	case len(at.EtcdPods) > 0:
		e.Source = EtcdSourcePods
		if view != nil {
			e.Notes = view.Notes
		}
		for _, p := range at.EtcdPods {
			name := p.Spec.NodeName
			if name == "" {
				name = p.Name
			}
			dc := dcOfNode(p.Spec.NodeName)
			from := FromNode
			if dc == "" {
				from = ""
			}
			e.Members = append(e.Members, EtcdMember{
				Name: name, Node: p.Spec.NodeName, Datacenter: dc, DatacenterFrom: from,
				// A Ready pod on a NotReady node is a kubelet that stopped
				// reporting, not a member that answers.
				Healthy:    policy.PodReady(p) && (nodes[p.Spec.NodeName] == nil || policy.NodeReady(nodes[p.Spec.NodeName])),
				Learner:    policy.IsLearner(p),
				ClientURLs: SplitURLList(p.Annotations[policy.AnnotationEtcdClientURLs]),
			})
		}
	default:
		e.Source = EtcdSourceUnknown
		if view != nil {
			e.Notes = view.Notes
			e.Endpoints = view.Endpoints
		}
	}
	for i := range e.Members {
		m := &e.Members[i]
		if m.Node != "" && nodes[m.Node] == nil && len(nodes) > 0 && at.Cached[m.Node] == "" {
			// A member on a node the API does not know: keep the name, no DC.
			m.Datacenter, m.DatacenterFrom = "", ""
		}
		if lost[m.Datacenter] {
			m.Healthy = false
			m.Leader = false
		}
		if m.Leader {
			e.Leader = m.Name
		}
	}
	sort.Slice(e.Members, func(i, j int) bool { return e.Members[i].Name < e.Members[j].Name })
	voters := Voters(e.Members)
	e.Size = policy.VotingMembers(voters)
	for _, m := range e.Members {
		if m.Learner {
			e.Learners++
		} else if m.Healthy {
			e.Healthy++
		}
	}
	e.Quorum = policy.Quorum(e.Size)
	// Tolerance is what is left now: with every voter healthy it is
	// policy.FaultTolerance(n); each failed voter uses one up.
	e.FaultTolerance = max(0, min(e.Healthy-e.Quorum, policy.FaultTolerance(e.Size)))
	e.HasQuorum = policy.SurvivesLoss(voters)
	return e
}

// MemberNode finds the node of an etcd member: a node named like the
// member, else the etcd pod that advertises one of its client URLs, else
// the one node whose InternalIP is the host of a peer or client URL.
func MemberNode(m EtcdMemberInfo, nodes []*corev1.Node, etcdPods []*corev1.Pod) string {
	for _, n := range nodes {
		if n.Name == m.Name {
			return n.Name
		}
	}
	for _, u := range m.ClientURLs {
		var found []string
		for _, p := range etcdPods {
			for _, pu := range SplitURLList(p.Annotations[policy.AnnotationEtcdClientURLs]) {
				if sameEndpoint(pu, u) && p.Spec.NodeName != "" {
					found = append(found, p.Spec.NodeName)
				}
			}
		}
		if len(found) == 1 {
			return found[0]
		}
	}
	for _, u := range append(append([]string{}, m.PeerURLs...), m.ClientURLs...) {
		if n := nodeWithIP(nodes, urlHostOf(u)); n != "" {
			return n
		}
	}
	// With no node objects (API down), a member named like a node is
	// still the best guess.
	if len(nodes) == 0 {
		return m.Name
	}
	return ""
}

// nodeWithIP names the one node whose InternalIP is ip, "" when none or
// several are.
func nodeWithIP(nodes []*corev1.Node, ip string) string {
	if ip == "" {
		return ""
	}
	found := ""
	for _, n := range nodes {
		if statusNodeHasIP(n, ip) {
			if found != "" {
				return ""
			}
			found = n.Name
		}
	}
	return found
}

func statusNodeHasIP(n *corev1.Node, ip string) bool {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address == ip {
			return true
		}
	}
	return false
}

// SplitURLList splits a comma-separated URL list, dropping empties.
func SplitURLList(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// urlHost returns the host of u without port, "" when u does not parse.
func urlHostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return ""
	}
	if h, _, err := net.SplitHostPort(p.Host); err == nil {
		return h
	}
	return p.Host
}

func sameEndpoint(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

// AnnotationAPIServerEndpoint is kubeadm's annotation of kube-apiserver
// pods with the address and port the server advertises.
const AnnotationAPIServerEndpoint = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"

// APIServerStatus is one API server address of the `kubernetes` Service.
type APIServerStatus struct {
	Address    string `json:"address"`
	Node       string `json:"node,omitempty"`
	Datacenter string `json:"datacenter,omitempty"`
	// Mapped is false when no node has this InternalIP.
	Mapped bool `json:"mapped"`
	// Up is false when the datacenter is lost in a what-if.
	Up bool `json:"up"`
}

// MapAPIServers lists the API servers: the kube-apiserver pods (mapped by
// their node) and the addresses of the `kubernetes` EndpointSlice that no
// such pod accounts for, mapped to nodes by InternalIP.
func MapAPIServers(addrs []string, pods []*corev1.Pod, at Placement) []APIServerStatus {
	nodes, dcOfNode, lost := at.Nodes, at.DatacenterOf, at.Lost
	out := []APIServerStatus{}
	covered := map[string]bool{}
	for _, p := range pods {
		addr := p.Annotations[AnnotationAPIServerEndpoint]
		if addr == "" {
			addr = p.Status.PodIP
		}
		if host, _, err := net.SplitHostPort(addr); err == nil {
			covered[host] = true
		}
		covered[addr] = true
		covered[p.Status.PodIP] = true
		s := APIServerStatus{Address: addr, Node: p.Spec.NodeName, Up: policy.PodReady(p)}
		if s.Node != "" {
			s.Datacenter, s.Mapped = dcOfNode(s.Node), true
			s.Up = s.Up && !lost[s.Datacenter]
		}
		out = append(out, s)
	}
	for _, a := range addrs {
		if covered[a] {
			continue
		}
		s := APIServerStatus{Address: a, Up: true}
		var found []string
		for _, n := range nodes {
			if statusNodeHasIP(n, a) {
				found = append(found, n.Name)
			}
		}
		if len(found) == 1 {
			s.Node, s.Datacenter, s.Mapped = found[0], dcOfNode(found[0]), true
			s.Up = !lost[s.Datacenter]
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].Address < out[j].Address
	})
	return out
}
