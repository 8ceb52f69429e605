package plugin

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// Etcd sources: where the member list of a report comes from.
const (
	// etcdSourceDirect means etcd was dialled (--etcd-endpoints or the kubeadm
	// advertise annotation of the etcd pods).
	etcdSourceDirect = "direct"
	// etcdSourceExec means etcdctl ran inside an etcd pod.
	etcdSourceExec = "exec"
	// etcdSourcePods means only the readiness of the etcd pods is known: no
	// leader, no learners unless annotated.
	etcdSourcePods = "pods"
	// etcdSourceUnknown means there is nothing to read: no etcd pods
	// (a managed control plane, kine) and no endpoints.
	etcdSourceUnknown = "unknown"
)

// Finding severities, most severe first.
const (
	severityCritical = "critical"
	severityWarning  = "warning"
	severityInfo     = "info"
)

// annotationAPIServerEndpoint is kubeadm's annotation of kube-apiserver
// pods with the address and port the server advertises.
const annotationAPIServerEndpoint = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"

// unlabeledDC is how nodes without the datacenter label are listed.
const unlabeledDC = "(unlabeled)"

// StatusReport is what `kubectl dc status` prints; its JSON keys are a
// contract (DESIGN.md, "Interfaces").
type StatusReport struct {
	// DatacenterLabel is the node label that names datacenters.
	DatacenterLabel string `json:"datacenterLabel"`
	// LabelSource says where the label comes from: "flag", "default" or
	// "PlacementPolicy/<name>".
	LabelSource string `json:"labelSource"`
	// Lose lists the datacenters of a --lose what-if; the whole report is
	// computed as if they were gone.
	Lose []string `json:"lose,omitempty"`
	// APIAvailable is false when the API server could not be read; the
	// report then holds only what etcd (and the cache) said.
	APIAvailable bool               `json:"apiAvailable"`
	Datacenters  []DatacenterStatus `json:"datacenters"`
	Etcd         EtcdStatus         `json:"etcd"`
	APIServers   []APIServerStatus  `json:"apiServers"`
	// Violations counts every PlacementPolicy result on the listed
	// workloads and etcd pods; null when no policy exists.
	Violations *int `json:"violations"`
	// WhatIf is set with --lose.
	WhatIf   *WhatIfReport `json:"whatIf,omitempty"`
	Findings []Finding     `json:"findings"`
}

// DatacenterStatus is one row of the report.
type DatacenterStatus struct {
	// Name is the label value, or "(unlabeled)" for nodes without it.
	Name string `json:"name"`
	// SurvivesLoss says whether etcd keeps quorum without this datacenter;
	// null when it cannot be known (no etcd information, unlabeled row).
	SurvivesLoss *bool      `json:"survivesLoss"`
	Lost         bool       `json:"lost,omitempty"`
	Nodes        NodeCounts `json:"nodes"`
	ControlPlane int        `json:"controlPlane"`
	// Voters and HealthyVoters count non-learner etcd members here.
	Voters        int  `json:"etcdVoters"`
	HealthyVoters int  `json:"etcdHealthyVoters"`
	Learners      int  `json:"etcdLearners"`
	Leader        bool `json:"etcdLeader"`
	// APIServers counts the API servers here; APIServersUp those whose pod
	// is Ready (and whose datacenter is not lost in a what-if).
	APIServers   int `json:"apiServers"`
	APIServersUp int `json:"apiServersUp"`
	// Pinned counts workloads whose pod template selects this datacenter.
	Pinned int `json:"pinned"`
	// Violations counts PlacementPolicy results on workloads pinned here and
	// on etcd pods here; null when no policy exists.
	Violations *int `json:"violations"`
	// NodeNames and Members are the details of -o wide.
	NodeNames []string `json:"nodeNames,omitempty"`
	Members   []string `json:"members,omitempty"`
}

// NodeCounts counts nodes.
type NodeCounts struct {
	Total    int `json:"total"`
	Ready    int `json:"ready"`
	Cordoned int `json:"cordoned"`
}

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
	Name       string   `json:"name"`
	ID         string   `json:"id,omitempty"`
	Node       string   `json:"node"`
	Datacenter string   `json:"datacenter"`
	Healthy    bool     `json:"healthy"`
	Leader     bool     `json:"leader"`
	Learner    bool     `json:"learner"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	PeerURLs   []string `json:"peerURLs,omitempty"`
}

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

// Finding is one problem with what to do about it.
type Finding struct {
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Remedy   string `json:"remedy,omitempty"`
}

// WhatIfReport is the outcome of a --lose what-if.
type WhatIfReport struct {
	Lose []string `json:"lose"`
	// HasQuorum says whether etcd keeps quorum without those datacenters.
	HasQuorum bool `json:"hasQuorum"`
	// VotersLeft is the number of healthy voters outside them.
	VotersLeft     int `json:"votersLeft"`
	APIServersLeft int `json:"apiServersLeft"`
	NodesLeft      int `json:"nodesLeft"`
	// LostWorkloads lose every replica.
	LostWorkloads []WorkloadLoss `json:"lostWorkloads"`
	// ViolatedPDBs would fall below their budget.
	ViolatedPDBs []PDBViolation `json:"violatedPDBs"`
}

// WorkloadLoss is a statusWorkload all of whose replicas are in lost datacenters.
type WorkloadLoss struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Pinned is the datacenter its template selects, "" when it is not pinned
	// and merely happens to run only there.
	Pinned string `json:"pinned,omitempty"`
	// Replicas is the number of live pods it loses (0 when only its pinning
	// is known).
	Replicas int `json:"replicas"`
}

// PDBViolation is a PodDisruptionBudget that the loss would break.
type PDBViolation struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// HealthyLeft is how many of its healthy pods survive; Required is how
	// many it needs.
	HealthyLeft int `json:"healthyLeft"`
	Required    int `json:"required"`
}

// statusWorkload is a controller whose pod template may pin a datacenter.
type statusWorkload struct {
	Kind, Namespace, Name string
	Selector              labels.Selector
	// Pinned is the datacenter the template selects, "" when none.
	Pinned string
}

// statusInput is everything the report is built from: listed objects and
// what etcd said. buildReport is pure over it.
type statusInput struct {
	Label       string
	LabelSource string
	// PolicyDatacenters are the datacenters the PlacementPolicies name.
	PolicyDatacenters []string
	Nodes             []*corev1.Node
	EtcdPods          []*corev1.Pod
	// APIAddresses are the addresses of the `kubernetes` EndpointSlice.
	APIAddresses []string
	// APIServerPods are the kube-apiserver (mirror) pods of kube-system.
	APIServerPods []*corev1.Pod
	Workloads     []statusWorkload
	// Pods are every pod, listed only for a what-if.
	Pods []*corev1.Pod
	PDBs []*policyv1.PodDisruptionBudget
	// Etcd is what reading etcd gave; nil when it was not read (pod
	// readiness stands in).
	Etcd *etcdView
	// APIAvailable is false when the API server could not be read.
	APIAvailable bool
	// CachedDatacenters maps node and member names to datacenters from a
	// previous run, used when the API server is unavailable.
	CachedDatacenters map[string]string
	// Lose lists the what-if datacenters.
	Lose []string
	// Violations counts policy results per datacenter ("" unattributed);
	// nil when no policy exists.
	Violations map[string]int
	// PolicyError says why the live policies could not be compiled.
	PolicyError string
	// Forbidden lists the kinds RBAC did not let status list.
	Forbidden []string
}

// etcdView is the member list read from etcd.
type etcdView struct {
	Source    string
	Endpoints []string
	Members   []etcdMemberInfo
	// LeaderID is the leader the healthy members agree on, 0 when none.
	LeaderID uint64
	Notes    []string
}

// etcdMemberInfo is one member as read from etcd.
type etcdMemberInfo struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	Learner    bool
	// Healthy is true when the member answered its status call without
	// errors.
	Healthy bool
}

// buildReport turns the listed objects into the report. It is pure: the
// same input always gives the same report.
func buildReport(in *statusInput) *StatusReport {
	lost := map[string]bool{}
	for _, d := range in.Lose {
		lost[d] = true
	}
	r := &StatusReport{
		DatacenterLabel: in.Label,
		LabelSource:     in.LabelSource,
		Lose:            in.Lose,
		APIAvailable:    in.APIAvailable,
		APIServers:      []APIServerStatus{},
		Findings:        []Finding{},
	}
	nodes := map[string]*corev1.Node{}
	for _, n := range in.Nodes {
		nodes[n.Name] = n
	}
	dcOfNode := func(name string) string {
		if n := nodes[name]; n != nil {
			if dc := policy.DatacenterOf(n, in.Label); dc != "" {
				return dc
			}
			return unlabeledDC
		}
		return in.CachedDatacenters[name]
	}

	rows := map[string]*DatacenterStatus{}
	row := func(name string) *DatacenterStatus {
		if rows[name] == nil {
			rows[name] = &DatacenterStatus{Name: name, Lost: lost[name]}
		}
		return rows[name]
	}
	for _, d := range in.PolicyDatacenters {
		row(d)
	}
	unlabeled := []string{}
	for _, n := range in.Nodes {
		dc := dcOfNode(n.Name)
		if dc == unlabeledDC {
			unlabeled = append(unlabeled, n.Name)
		}
		rw := row(dc)
		rw.Nodes.Total++
		if policy.NodeReady(n) && !lost[dc] {
			rw.Nodes.Ready++
		}
		if n.Spec.Unschedulable {
			rw.Nodes.Cordoned++
		}
		if policy.IsControlPlane(n) {
			rw.ControlPlane++
		}
		rw.NodeNames = append(rw.NodeNames, n.Name)
	}

	r.Etcd = buildEtcd(in, nodes, dcOfNode, lost)
	for _, m := range r.Etcd.Members {
		if m.Datacenter == "" {
			continue
		}
		rw := row(m.Datacenter)
		label := m.Name
		switch {
		case m.Learner:
			rw.Learners++
			label += " (learner)"
		default:
			rw.Voters++
			if m.Healthy {
				rw.HealthyVoters++
			}
		}
		if m.Leader {
			rw.Leader = true
			label += "*"
		}
		if !m.Healthy {
			label += " (down)"
		}
		rw.Members = append(rw.Members, label)
	}

	r.APIServers = mapAPIServers(in.APIAddresses, in.APIServerPods, in.Nodes, dcOfNode, lost)
	for _, a := range r.APIServers {
		if a.Datacenter != "" {
			rw := row(a.Datacenter)
			rw.APIServers++
			if a.Up {
				rw.APIServersUp++
			}
		}
	}
	for _, w := range in.Workloads {
		// A workload pinned to a datacenter no node or policy knows makes
		// no row of its own (kubectl dc check reports it).
		if rw := rows[w.Pinned]; rw != nil && w.Pinned != "" {
			rw.Pinned++
		}
	}

	voters := votersOf(r.Etcd.Members)
	known := r.Etcd.Source != etcdSourceUnknown && r.Etcd.Size > 0
	names := make([]string, 0, len(rows))
	for name := range rows {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		// The unlabeled row goes last.
		if (names[i] == unlabeledDC) != (names[j] == unlabeledDC) {
			return names[j] == unlabeledDC
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		rw := rows[name]
		sort.Strings(rw.NodeNames)
		sort.Strings(rw.Members)
		if known && name != unlabeledDC {
			// Voters of lost datacenters are already down, so this is the
			// loss of name on top of them; a lost row says whether the
			// cluster lives on without it.
			v := r.Etcd.HasQuorum
			if !lost[name] {
				v = policy.SurvivesLoss(voters, name)
			}
			rw.SurvivesLoss = &v
		}
		if in.Violations != nil {
			v := in.Violations[name]
			rw.Violations = &v
		}
		r.Datacenters = append(r.Datacenters, *rw)
	}
	if in.Violations != nil {
		total := 0
		for _, v := range in.Violations {
			total += v
		}
		r.Violations = &total
	}
	if r.Datacenters == nil {
		r.Datacenters = []DatacenterStatus{}
	}

	if len(in.Lose) > 0 {
		r.WhatIf = buildWhatIf(in, r, dcOfNode, lost)
	}
	r.Findings = buildFindings(in, r, unlabeled)
	return r
}

// votersOf converts members to the quorum arithmetic's voters.
func votersOf(members []EtcdMember) []policy.Voter {
	out := make([]policy.Voter, 0, len(members))
	for _, m := range members {
		dc := m.Datacenter
		if dc == unlabeledDC {
			dc = ""
		}
		out = append(out, policy.Voter{Name: m.Name, Node: m.Node, Datacenter: dc, Healthy: m.Healthy, Learner: m.Learner})
	}
	return out
}

// buildEtcd maps the members (from etcd, else from the etcd pods) to nodes
// and datacenters and does the quorum arithmetic. Members in lost
// datacenters count as down.
func buildEtcd(in *statusInput, nodes map[string]*corev1.Node, dcOfNode func(string) string, lost map[string]bool) EtcdStatus {
	e := EtcdStatus{Members: []EtcdMember{}}
	switch {
	case in.Etcd != nil && in.Etcd.Source != "" && len(in.Etcd.Members) > 0:
		e.Source = in.Etcd.Source
		e.Endpoints = in.Etcd.Endpoints
		e.Notes = in.Etcd.Notes
		for _, m := range in.Etcd.Members {
			node := memberNode(m, in.Nodes, in.EtcdPods)
			em := EtcdMember{
				Name: m.Name, ID: fmt.Sprintf("%x", m.ID), Node: node,
				Healthy: m.Healthy, Learner: m.Learner,
				Leader:     m.ID != 0 && m.ID == in.Etcd.LeaderID,
				ClientURLs: m.ClientURLs, PeerURLs: m.PeerURLs,
			}
			if node != "" {
				em.Datacenter = dcOfNode(node)
			} else if dc := in.CachedDatacenters[m.Name]; dc != "" {
				em.Datacenter = dc
			}
			e.Members = append(e.Members, em)
		}
	case len(in.EtcdPods) > 0:
		e.Source = etcdSourcePods
		if in.Etcd != nil {
			e.Notes = in.Etcd.Notes
		}
		for _, p := range in.EtcdPods {
			name := p.Spec.NodeName
			if name == "" {
				name = p.Name
			}
			e.Members = append(e.Members, EtcdMember{
				Name: name, Node: p.Spec.NodeName, Datacenter: dcOfNode(p.Spec.NodeName),
				Healthy: policy.PodReady(p), Learner: policy.IsLearner(p),
				ClientURLs: splitURLList(p.Annotations[policy.AnnotationEtcdClientURLs]),
			})
		}
	default:
		e.Source = etcdSourceUnknown
		if in.Etcd != nil {
			e.Notes = in.Etcd.Notes
			e.Endpoints = in.Etcd.Endpoints
		}
	}
	for i := range e.Members {
		m := &e.Members[i]
		if m.Node != "" && nodes[m.Node] == nil && len(nodes) > 0 && in.CachedDatacenters[m.Node] == "" {
			// A member on a node the API does not know: keep the name, no DC.
			m.Datacenter = ""
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
	voters := votersOf(e.Members)
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

// memberNode finds the node of an etcd member: a node named like the
// member, else the etcd pod that advertises one of its client URLs, else
// the one node whose InternalIP is the host of a peer or client URL.
func memberNode(m etcdMemberInfo, nodes []*corev1.Node, etcdPods []*corev1.Pod) string {
	for _, n := range nodes {
		if n.Name == m.Name {
			return n.Name
		}
	}
	for _, u := range m.ClientURLs {
		var found []string
		for _, p := range etcdPods {
			for _, pu := range splitURLList(p.Annotations[policy.AnnotationEtcdClientURLs]) {
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
		host := urlHostOf(u)
		if host == "" {
			continue
		}
		var found []string
		for _, n := range nodes {
			if statusNodeHasIP(n, host) {
				found = append(found, n.Name)
			}
		}
		if len(found) == 1 {
			return found[0]
		}
	}
	// With no node objects (API down), a member named like a node is
	// still the best guess.
	if len(nodes) == 0 {
		return m.Name
	}
	return ""
}

// mapAPIServers lists the API servers: the kube-apiserver pods (mapped by
// their node) and the addresses of the `kubernetes` EndpointSlice that no
// such pod accounts for, mapped to nodes by InternalIP.
func mapAPIServers(addrs []string, pods []*corev1.Pod, nodes []*corev1.Node, dcOfNode func(string) string, lost map[string]bool) []APIServerStatus {
	out := []APIServerStatus{}
	covered := map[string]bool{}
	for _, p := range pods {
		addr := p.Annotations[annotationAPIServerEndpoint]
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

// buildWhatIf computes what the loss of the --lose datacenters does to
// workloads and PodDisruptionBudgets.
func buildWhatIf(in *statusInput, r *StatusReport, dcOfNode func(string) string, lost map[string]bool) *WhatIfReport {
	w := &WhatIfReport{
		Lose: in.Lose, HasQuorum: r.Etcd.HasQuorum, VotersLeft: r.Etcd.Healthy,
		LostWorkloads: []WorkloadLoss{}, ViolatedPDBs: []PDBViolation{},
	}
	for _, a := range r.APIServers {
		if a.Up {
			w.APIServersLeft++
		}
	}
	for _, d := range r.Datacenters {
		w.NodesLeft += d.Nodes.Ready
	}
	podsByNS := map[string][]*corev1.Pod{}
	for _, p := range in.Pods {
		if policy.PodTerminal(p) {
			continue
		}
		podsByNS[p.Namespace] = append(podsByNS[p.Namespace], p)
	}
	podLost := func(p *corev1.Pod) bool {
		return p.Spec.NodeName != "" && lost[dcOfNode(p.Spec.NodeName)]
	}
	for _, wl := range in.Workloads {
		total, gone := 0, 0
		if wl.Selector != nil && !wl.Selector.Empty() {
			for _, p := range podsByNS[wl.Namespace] {
				if wl.Selector.Matches(labels.Set(p.Labels)) {
					total++
					if podLost(p) {
						gone++
					}
				}
			}
		}
		switch {
		case total > 0 && gone == total:
			w.LostWorkloads = append(w.LostWorkloads, WorkloadLoss{Kind: wl.Kind, Namespace: wl.Namespace, Name: wl.Name, Pinned: wl.Pinned, Replicas: gone})
		case total == 0 && wl.Pinned != "" && lost[wl.Pinned]:
			w.LostWorkloads = append(w.LostWorkloads, WorkloadLoss{Kind: wl.Kind, Namespace: wl.Namespace, Name: wl.Name, Pinned: wl.Pinned})
		}
	}
	for _, pdb := range in.PDBs {
		if v, ok := pdbViolated(pdb, podsByNS[pdb.Namespace], podLost); ok {
			w.ViolatedPDBs = append(w.ViolatedPDBs, v)
		}
	}
	sort.Slice(w.LostWorkloads, func(i, j int) bool {
		a, b := w.LostWorkloads[i], w.LostWorkloads[j]
		return a.Namespace+"/"+a.Kind+"/"+a.Name < b.Namespace+"/"+b.Kind+"/"+b.Name
	})
	sort.Slice(w.ViolatedPDBs, func(i, j int) bool {
		return w.ViolatedPDBs[i].Namespace+"/"+w.ViolatedPDBs[i].Name < w.ViolatedPDBs[j].Namespace+"/"+w.ViolatedPDBs[j].Name
	})
	return w
}

// pdbViolated reports whether losing the pods podLost selects leaves pdb
// below its budget. The expected count is the PDB's status when the
// disruption controller filled it in, else the matching pods.
func pdbViolated(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, podLost func(*corev1.Pod) bool) (PDBViolation, bool) {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || pdb.Spec.Selector == nil {
		return PDBViolation{}, false
	}
	matched, healthyLeft, lostAny := 0, 0, false
	for _, p := range pods {
		if !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		matched++
		switch {
		case podLost(p):
			lostAny = true
		case policy.PodReady(p):
			healthyLeft++
		}
	}
	if !lostAny {
		return PDBViolation{}, false
	}
	expected := matched
	if pdb.Status.ExpectedPods > 0 {
		expected = int(pdb.Status.ExpectedPods)
	}
	required := 0
	switch {
	case pdb.Spec.MinAvailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, expected, true)
		if err != nil {
			return PDBViolation{}, false
		}
		required = v
	case pdb.Spec.MaxUnavailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, expected, true)
		if err != nil {
			return PDBViolation{}, false
		}
		required = expected - v
	default:
		return PDBViolation{}, false
	}
	if healthyLeft >= required {
		return PDBViolation{}, false
	}
	return PDBViolation{Namespace: pdb.Namespace, Name: pdb.Name, HealthyLeft: healthyLeft, Required: required}, true
}

// buildFindings lists what is wrong, most severe first, each with a remedy.
func buildFindings(in *statusInput, r *StatusReport, unlabeled []string) []Finding {
	var out []Finding
	add := func(sev, msg, remedy string) { out = append(out, Finding{Severity: sev, Message: msg, Remedy: remedy}) }
	e := &r.Etcd

	var dcs []string // real datacenters (labelled), lost ones included
	for _, d := range r.Datacenters {
		if d.Name != unlabeledDC {
			dcs = append(dcs, d.Name)
		}
	}
	perDC := policy.VotersPerDatacenter(votersOf(e.Members))
	what := ""
	if len(in.Lose) > 0 {
		what = " (as if " + strings.Join(in.Lose, ", ") + " were lost)"
	}

	switch {
	case e.Source == etcdSourceUnknown && len(e.Endpoints) > 0:
		add(severityCritical,
			fmt.Sprintf("no etcd endpoint answered (%s): etcd is down or unreachable from here", strings.Join(e.Endpoints, ", ")),
			"check the endpoints, the --etcd-cacert/--etcd-cert/--etcd-key files and the network path; run again with -o wide to see each endpoint's error")
	case e.Source == etcdSourceUnknown:
		add(severityWarning,
			"no etcd pods (kube-system, component=etcd) and no etcd endpoints: this looks like a managed control plane or an external datastore (kine); etcd quorum, member placement and whether any datacenter can be lost cannot be known",
			"pass --etcd-endpoints (with --etcd-cacert/--etcd-cert/--etcd-key) if you can reach the datastore, or ask your provider how its control plane is spread")
	case !e.HasQuorum:
		add(severityCritical,
			fmt.Sprintf("etcd has lost quorum%s: %d of %d voters healthy, %d needed; the API server cannot serve or store changes", what, e.Healthy, e.Size, e.Quorum),
			"bring stopped members back (their datacenter, node or etcd process); if they are gone for good, restore quorum from a snapshot with etcdutl and re-add members")
	}
	if e.Source == etcdSourcePods {
		add(severityInfo,
			"etcd was judged from pod readiness only: leader, learners and the real member list are unknown",
			"pass --etcd-endpoints or make the advertised client URLs reachable from here (kubectl dc status reads kubeadm.kubernetes.io/etcd.advertise-client-urls)")
	}

	if e.Source != etcdSourceUnknown && e.Size > 0 {
		if len(dcs) == 2 {
			add(severityCritical,
				fmt.Sprintf("the cluster spans two datacenters (%s, %s): with %d voters one of them holds at least %d, so losing it always loses quorum; no placement over two sites survives the loss of either", dcs[0], dcs[1], e.Size, (e.Size+1)/2),
				"add a third, witness site that runs one etcd voter (a small control-plane node elsewhere), then place voters 1/1/1 or 2/2/1")
		}
		if len(dcs) >= 2 && len(perDC) == 1 {
			for dc := range perDC {
				if dc != "" {
					add(severityCritical,
						fmt.Sprintf("all %d etcd voters are in datacenter %s: losing it loses the cluster", e.Size, dc),
						"move voters to other datacenters so that none holds more than "+fmt.Sprint(policy.MaxPerDatacenter(e.Size)))
				}
			}
		}
		if len(dcs) != 2 {
			for _, d := range r.Datacenters {
				if d.SurvivesLoss != nil && !*d.SurvivesLoss && !d.Lost {
					add(severityCritical,
						fmt.Sprintf("losing datacenter %s loses etcd quorum%s: %d healthy voters would be left of %d, %d needed", d.Name, what, e.Healthy-d.HealthyVoters, e.Size, e.Quorum),
						fmt.Sprintf("restore failed members, or spread voters so that no datacenter holds more than %d of %d", policy.MaxPerDatacenter(e.Size), e.Size))
				}
			}
		}
		if e.Size%2 == 0 {
			add(severityWarning,
				fmt.Sprintf("etcd has an even number of voters (%d): quorum %d tolerates %d failures, no more than %d voters would", e.Size, e.Quorum, policy.FaultTolerance(e.Size), e.Size-1),
				fmt.Sprintf("add one voter (%d tolerate %d) or remove one", e.Size+1, policy.FaultTolerance(e.Size+1)))
		}
		if e.Size == 1 {
			add(severityWarning, "etcd has a single voter: it tolerates no failure", "run three or five voters over three datacenters")
		}
		for _, m := range e.Members {
			switch {
			case m.Node == "":
				add(severityWarning,
					fmt.Sprintf("etcd member %s matches no node by name or address: its datacenter is unknown and it is never counted as lost", m.Name),
					"name members after their nodes (kubeadm does), or make their peer URLs use the node InternalIP")
			case m.Datacenter == unlabeledDC:
				add(severityWarning,
					fmt.Sprintf("etcd member %s runs on node %s, which has no %s label: its datacenter is unknown and it is never counted as lost", m.Name, m.Node, in.Label),
					fmt.Sprintf("kubectl label node %s %s=<datacenter>", m.Node, in.Label))
			}
		}
	}

	if len(r.APIServers) > 0 && len(dcs) >= 2 {
		apiDCs := map[string]bool{}
		mapped := 0
		for _, a := range r.APIServers {
			if a.Mapped {
				apiDCs[a.Datacenter] = true
				mapped++
			}
		}
		if mapped == len(r.APIServers) && len(apiDCs) == 1 {
			for dc := range apiDCs {
				add(severityWarning,
					fmt.Sprintf("all %d API servers are in datacenter %s: losing it loses the API even if etcd keeps quorum", len(r.APIServers), dc),
					"run a control-plane node with an API server in at least one other datacenter")
			}
		}
	}
	for _, a := range r.APIServers {
		if !a.Mapped {
			add(severityInfo,
				fmt.Sprintf("API server %s (EndpointSlice default/kubernetes) matches no node InternalIP: its datacenter is unknown", a.Address),
				"check that control-plane nodes report their InternalIP and that the API servers advertise it (--advertise-address)")
		}
	}

	if len(unlabeled) > 0 {
		shown := unlabeled
		if len(shown) > 5 {
			shown = append(append([]string{}, shown[:5]...), fmt.Sprintf("and %d more", len(unlabeled)-5))
		}
		add(severityWarning,
			fmt.Sprintf("%d nodes have no %s label (%s): they belong to no datacenter", len(unlabeled), in.Label, strings.Join(shown, ", ")),
			fmt.Sprintf("kubectl label node %s %s=<datacenter>, or pass --datacenter-label if your datacenters use another label", unlabeled[0], in.Label))
	}
	if len(in.Nodes) > 0 && len(dcs) == 0 && len(unlabeled) == len(in.Nodes) {
		add(severityWarning,
			fmt.Sprintf("no node carries the datacenter label %s", in.Label),
			"pass --datacenter-label with the label your nodes use, or label them")
	}
	if kubeletCanSet(in.Label) {
		add(severityWarning,
			fmt.Sprintf("the datacenter label %s is one a kubelet may set on its own Node: a compromised or misconfigured node can move itself to another datacenter", in.Label),
			"use a label under node-restriction.kubernetes.io/ (for example node-restriction.kubernetes.io/datacenter), which the NodeRestriction admission plugin keeps kubelets from setting, or guard changes with dc-webhook")
	}
	if len(in.Forbidden) > 0 {
		add(severityWarning, "not allowed to list "+strings.Join(in.Forbidden, ", ")+": the report leaves them out",
			"ask for list permission on them cluster-wide (kubectl auth can-i list pods -A)")
	}
	if in.PolicyError != "" {
		add(severityWarning, "the live PlacementPolicies do not compile: "+in.PolicyError, "fix them (kubectl dc check --policy FILE shows the field errors) so that dc-webhook and status can apply them")
	}
	if !in.APIAvailable {
		add(severityWarning,
			"the API server could not be read: nodes, API servers and workloads are missing from this report",
			"check the API server and its etcd; the etcd part above was read directly")
	}

	if w := r.WhatIf; w != nil {
		if w.APIServersLeft == 0 && len(r.APIServers) > 0 {
			add(severityCritical, fmt.Sprintf("no API server is left%s", what), "run an API server in a datacenter that is not lost")
		}
		for _, l := range w.LostWorkloads {
			add(severityWarning,
				fmt.Sprintf("%s %s/%s loses every replica%s", l.Kind, l.Namespace, l.Name, what),
				"spread it over more datacenters, or accept the outage for a workload pinned to one")
		}
		for _, p := range w.ViolatedPDBs {
			add(severityWarning,
				fmt.Sprintf("PodDisruptionBudget %s/%s would be violated%s: %d healthy pods left, %d required", p.Namespace, p.Name, what, p.HealthyLeft, p.Required),
				"spread its pods over datacenters, or expect `kubectl dc drain` to block on it")
		}
	}

	order := map[string]int{severityCritical: 0, severityWarning: 1, severityInfo: 2}
	sort.SliceStable(out, func(i, j int) bool { return order[out[i].Severity] < order[out[j].Severity] })
	if out == nil {
		out = []Finding{}
	}
	return out
}

// kubeletCanSet reports whether the NodeRestriction admission plugin lets a
// kubelet set label on its own Node: anything outside the kubernetes.io and
// k8s.io namespaces, plus the well-known labels it allows there. Labels under
// node-restriction.kubernetes.io/ are never allowed.
func kubeletCanSet(label string) bool {
	prefix, _, found := strings.Cut(label, "/")
	if !found {
		return true
	}
	if prefix == "node-restriction.kubernetes.io" || strings.HasSuffix(prefix, ".node-restriction.kubernetes.io") {
		return false
	}
	switch label {
	case "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
		"beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
		"failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
		"topology.kubernetes.io/region", "topology.kubernetes.io/zone":
		return true
	}
	if prefix == "kubelet.kubernetes.io" || strings.HasSuffix(prefix, ".kubelet.kubernetes.io") ||
		prefix == "node.kubernetes.io" || strings.HasSuffix(prefix, ".node.kubernetes.io") {
		return true
	}
	for _, d := range []string{"kubernetes.io", "k8s.io"} {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			return false
		}
	}
	return true
}

func statusNodeHasIP(n *corev1.Node, ip string) bool {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address == ip {
			return true
		}
	}
	return false
}

// splitURLs splits a comma-separated URL list, dropping empties.
func splitURLList(s string) []string {
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
