package status

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// Finding severities, most severe first.
const (
	severityCritical = "critical"
	severityWarning  = "warning"
	severityInfo     = "info"
)

// Report is what `kubectl dc status` prints; its JSON keys are a
// contract (DESIGN.md, "Interfaces").
type Report struct {
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
	Etcd         cluster.EtcdStatus `json:"etcd"`
	// Datastore is set when the API servers store in kine rather than
	// etcd (etcd.source is then "kine").
	Datastore  *DatastoreReport          `json:"datastore,omitempty"`
	APIServers []cluster.APIServerStatus `json:"apiServers"`
	// ControlPlaneEndpoint is what kubelets and operators dial; null when
	// the API server could not be read.
	ControlPlaneEndpoint *EndpointReport `json:"controlPlaneEndpoint"`
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
	SurvivesLoss *bool `json:"survivesLoss"`
	Lost         bool  `json:"lost,omitempty"`
	// Down is true when the datacenter is out now: it has nodes and none is
	// Ready, and none of its etcd voters or API servers answers.
	Down bool `json:"down"`
	// Nodes is null when the API server could not be read: unknown, not 0.
	Nodes        *NodeCounts `json:"nodes"`
	ControlPlane int         `json:"controlPlane"`
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
	// KineInstances counts the kine pods here.
	KineInstances int `json:"kineInstances,omitempty"`
	// Database lists the database servers here, "<role> <address>".
	Database []string `json:"database,omitempty"`
	// NodeNames and Members (etcd member names) are the details of -o
	// wide.
	NodeNames []string `json:"nodeNames,omitempty"`
	Members   []string `json:"members,omitempty"`
	// memberLabels are Members as the table shows them: the leader
	// marked *, learners and members down said so.
	memberLabels []string
}

// NodeCounts counts nodes.
type NodeCounts struct {
	Total    int `json:"total"`
	Ready    int `json:"ready"`
	Cordoned int `json:"cordoned"`
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
	// APIReachable says whether the API can still be reached through the
	// control-plane endpoint; null when that cannot be known.
	APIReachable *bool `json:"apiReachable"`
	// APIReachableReason says why not, or why it is not known.
	APIReachableReason string `json:"apiReachableReason,omitempty"`
	// LostWorkloads lose every replica.
	LostWorkloads []WorkloadLoss `json:"lostWorkloads"`
	// ViolatedPDBs would fall below their budget.
	ViolatedPDBs []PDBViolation `json:"violatedPDBs"`
	// Datastore is the verdict on a kine datastore; HasQuorum then says
	// whether it stays writable.
	Datastore *DatastoreWhatIf `json:"datastore,omitempty"`
	// PDBs are the verdicts on every PDB that covers a lost pod, as
	// kubectl dc drain's plan reports them for the same datacenter.
	PDBs []cluster.PDBVerdict `json:"pdbs"`
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
	Etcd *cluster.EtcdView
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
	// Endpoint is the control-plane endpoint as read; nil when it was not.
	Endpoint *cluster.ControlPlaneEndpoint
	// EndpointDatacenter is --endpoint-datacenter.
	EndpointDatacenter string
	// MemberDatacenters is --etcd-datacenters and the policies'
	// spec.etcdMembers: members on no node placed by name or address.
	MemberDatacenters map[string]string
	// MemberSources names the PlacementPolicy of the MemberDatacenters
	// entries that come from a policy's spec.etcdMembers.
	MemberSources map[string]string
	// KinePods are the pods that run kine.
	KinePods []*corev1.Pod
	// Database are the SQL servers behind kine as read with
	// --datastore-dsn (datacenters not yet placed); nil when not read.
	Database []policy.DatabaseServer
	// DatabaseNotes say what could not be read of them.
	DatabaseNotes []string
	// DatastoreDSN is --datastore-dsn without its password.
	DatastoreDSN string
	// DatabaseDatacenters is --datastore-datacenters.
	DatabaseDatacenters map[string]string
	// MaxReplayLag is --datastore-max-lag; 0 means DefaultMaxReplayLag.
	MaxReplayLag time.Duration
}

// isDown says whether a datacenter is out now: every node NotReady, no
// voter healthy, no API server up. A datacenter lost in a what-if is not
// down, it is lost; one without nodes (known from policies only) is not
// known to be down.
func isDown(d *DatacenterStatus) bool {
	if d.Lost || d.Name == cluster.Unlabeled || d.Nodes == nil || d.Nodes.Total == 0 || d.Nodes.Ready > 0 {
		return false
	}
	return d.HealthyVoters == 0 && d.APIServersUp == 0
}

// DownDatacenters names the datacenters that are down now.
func (r *Report) DownDatacenters() []string {
	var out []string
	for _, d := range r.Datacenters {
		if d.Down {
			out = append(out, d.Name)
		}
	}
	return out
}

// buildReport turns the listed objects into the report. It is pure: the
// same input always gives the same report.
func buildReport(in *statusInput) *Report {
	lost := map[string]bool{}
	for _, d := range in.Lose {
		lost[d] = true
	}
	r := &Report{
		DatacenterLabel: in.Label,
		LabelSource:     in.LabelSource,
		Lose:            in.Lose,
		APIAvailable:    in.APIAvailable,
		APIServers:      []cluster.APIServerStatus{},
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
			return cluster.Unlabeled
		}
		return in.CachedDatacenters[name]
	}

	rows := map[string]*DatacenterStatus{}
	row := func(name string) *DatacenterStatus {
		if rows[name] == nil {
			rows[name] = &DatacenterStatus{Name: name, Lost: lost[name]}
			if in.APIAvailable {
				rows[name].Nodes = &NodeCounts{}
			}
		}
		return rows[name]
	}
	for _, d := range in.PolicyDatacenters {
		row(d)
	}
	unlabeled := []string{}
	for _, n := range in.Nodes {
		dc := dcOfNode(n.Name)
		if dc == cluster.Unlabeled {
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

	at := cluster.Placement{Nodes: in.Nodes, EtcdPods: in.EtcdPods, DatacenterOf: dcOfNode, Cached: in.CachedDatacenters, Lost: lost, MemberDatacenters: in.MemberDatacenters, MemberSources: in.MemberSources}
	kineBy := isKine(in)
	if len(kineBy) > 0 {
		buildDatastore(in, r, kineBy, dcOfNode, row)
	} else {
		r.Etcd = cluster.BuildEtcd(in.Etcd, at)
	}
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
		rw.Members = append(rw.Members, m.Name)
		rw.memberLabels = append(rw.memberLabels, label)
	}

	r.APIServers = cluster.MapAPIServers(in.APIAddresses, in.APIServerPods, at)
	for _, a := range r.APIServers {
		if a.Datacenter != "" {
			rw := row(a.Datacenter)
			rw.APIServers++
			if a.Up {
				rw.APIServersUp++
			}
		}
	}
	r.ControlPlaneEndpoint = buildEndpoint(in, r.APIServers)
	for _, w := range in.Workloads {
		// A workload pinned to a datacenter no node or policy knows makes
		// no row of its own (kubectl dc check reports it).
		if rw := rows[w.Pinned]; rw != nil && w.Pinned != "" {
			rw.Pinned++
		}
	}

	voters := cluster.Voters(r.Etcd.Members)
	known := r.Etcd.Source != cluster.EtcdSourceUnknown && r.Etcd.Size > 0
	names := make([]string, 0, len(rows))
	for name := range rows {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		// The unlabeled row goes last.
		if (names[i] == cluster.Unlabeled) != (names[j] == cluster.Unlabeled) {
			return names[j] == cluster.Unlabeled
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		rw := rows[name]
		sort.Strings(rw.NodeNames)
		sort.Strings(rw.Members)
		sort.Strings(rw.memberLabels)
		rw.Down = isDown(rw)
		if known && name != cluster.Unlabeled {
			// Voters of lost datacenters are already down, so this is the
			// loss of name on top of them; a lost row says whether the
			// cluster lives on without it.
			v, sure := r.Etcd.HasQuorum, true
			if !lost[name] {
				// A voter in no known datacenter may be in this one:
				// a verdict that depends on it is unknown, not yes.
				v, sure = policy.SurvivesLossKnown(voters, name)
			}
			if sure {
				rw.SurvivesLoss = &v
			}
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
	datastoreVerdicts(r, lost)

	if len(in.Lose) > 0 {
		r.WhatIf = buildWhatIf(in, r, dcOfNode, lost)
	}
	r.Findings = buildFindings(in, r, unlabeled)
	return r
}

// buildWhatIf computes what the loss of the --lose datacenters does to
// workloads and PodDisruptionBudgets.
func buildWhatIf(in *statusInput, r *Report, dcOfNode func(string) string, lost map[string]bool) *WhatIfReport {
	w := &WhatIfReport{
		Lose: in.Lose, HasQuorum: r.Etcd.HasQuorum, VotersLeft: r.Etcd.Healthy,
		LostWorkloads: []WorkloadLoss{}, ViolatedPDBs: []PDBViolation{},
	}
	for _, a := range r.APIServers {
		if a.Up {
			w.APIServersLeft++
		}
	}
	if ep := r.ControlPlaneEndpoint; ep != nil {
		reach := policy.EndpointReachable(ep.Endpoint, append(append([]string{}, in.Lose...), r.DownDatacenters()...))
		w.APIReachable, w.APIReachableReason = reach.Reachable, reach.Reason
	}
	for _, d := range r.Datacenters {
		if d.Nodes != nil {
			w.NodesLeft += d.Nodes.Ready
		}
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
	datastoreWhatIf(in, r, w)
	w.PDBs = cluster.PDBVerdicts(in.PDBs, in.Pods, podLost)
	for _, v := range w.PDBs {
		if v.Violated {
			w.ViolatedPDBs = append(w.ViolatedPDBs, PDBViolation{Namespace: v.Namespace, Name: v.Name, HealthyLeft: v.HealthyLeft, Required: v.DesiredHealthy})
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

// findings gathers what is wrong with a report, each check a method.
type findings struct {
	in *statusInput
	r  *Report
	// dcs are the real datacenters (labelled), lost ones included.
	dcs []string
	// perDC counts the voters of each datacenter.
	perDC map[string]int
	// what names the what-if, "" without --lose.
	what      string
	unlabeled []string
	out       []Finding
}

func (f *findings) add(sev, msg, remedy string) {
	f.out = append(f.out, Finding{Severity: sev, Message: msg, Remedy: remedy})
}

// buildFindings lists what is wrong, most severe first, each with a remedy:
// the checks run in order, and a stable sort puts the critical ones first.
func buildFindings(in *statusInput, r *Report, unlabeled []string) []Finding {
	f := &findings{in: in, r: r, unlabeled: unlabeled, perDC: policy.VotersPerDatacenter(cluster.Voters(r.Etcd.Members))}
	for _, d := range r.Datacenters {
		if d.Name != cluster.Unlabeled {
			f.dcs = append(f.dcs, d.Name)
		}
	}
	if len(in.Lose) > 0 {
		f.what = " (as if " + strings.Join(in.Lose, ", ") + " were lost)"
	}
	for _, check := range []func(){f.datacentersDown, f.etcdReadable, f.etcdFromPods, f.etcdPlacement, f.memberPlacements, f.datastore, f.apiServers, f.endpoint, f.labels, f.readProblems, f.whatIf, f.datastoreWhatIf} {
		check()
	}
	order := map[string]int{severityCritical: 0, severityWarning: 1, severityInfo: 2}
	sort.SliceStable(f.out, func(i, j int) bool { return order[f.out[i].Severity] < order[f.out[j].Severity] })
	if f.out == nil {
		f.out = []Finding{}
	}
	return f.out
}

// etcdReadable: etcd could not be read, or has lost quorum.
func (f *findings) etcdReadable() {
	e, what, add := &f.r.Etcd, f.what, f.add
	switch {
	case e.Source == cluster.EtcdSourceKine:
		// No etcd: the datastore check judges the database.
	case e.Source == cluster.EtcdSourceUnknown && len(e.Endpoints) > 0:
		add(severityCritical,
			fmt.Sprintf("no etcd endpoint answered (%s): etcd is down or unreachable from here", strings.Join(e.Endpoints, ", ")),
			"check the endpoints, the --etcd-cacert/--etcd-cert/--etcd-key files and the network path; run again with -o wide to see each endpoint's error")
	case e.Source == cluster.EtcdSourceUnknown:
		add(severityWarning,
			"no etcd pods (kube-system, component=etcd) and no etcd endpoints: this looks like a managed control plane or an external datastore (kine); etcd quorum, member placement and whether any datacenter can be lost cannot be known",
			"pass --etcd-endpoints (with --etcd-cacert/--etcd-cert/--etcd-key) if you can reach the datastore, or ask your provider how its control plane is spread")
	case !e.HasQuorum:
		add(severityCritical,
			fmt.Sprintf("etcd has lost quorum%s: %d of %d voters healthy, %d needed; the API server cannot serve or store changes", what, e.Healthy, e.Size, e.Quorum),
			"bring stopped members back (their datacenter, node or etcd process); if they are gone for good, restore quorum from a snapshot with etcdutl and re-add members")
	}
}

// etcdFromPods: the members were judged from pod readiness alone.
func (f *findings) etcdFromPods() {
	e, add := &f.r.Etcd, f.add
	if e.Source == cluster.EtcdSourcePods {
		add(severityInfo,
			"etcd was judged from pod readiness only: leader, learners and the real member list are unknown",
			"pass --etcd-endpoints or make the advertised client URLs reachable from here (kubectl dc status reads kubeadm.kubernetes.io/etcd.advertise-client-urls)")
	}
}

// etcdPlacement: where the voters are, how many, and members no datacenter
// holds.
func (f *findings) etcdPlacement() {
	in, r, e, dcs, perDC, what, add := f.in, f.r, &f.r.Etcd, f.dcs, f.perDC, f.what, f.add
	if e.Source != cluster.EtcdSourceUnknown && e.Size > 0 {
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
		if down := r.DownDatacenters(); len(dcs) != 2 && len(down) > 0 && e.HasQuorum {
			// One cause, one finding: with a datacenter down, the next
			// loss anywhere is what the outage left.
			var fatal []string
			for _, d := range r.Datacenters {
				if d.SurvivesLoss != nil && !*d.SurvivesLoss && !d.Lost && !d.Down {
					fatal = append(fatal, d.Name)
				}
			}
			if len(fatal) > 0 {
				add(severityCritical,
					fmt.Sprintf("with %s down, losing %s as well loses etcd quorum%s: %d of %d voters are healthy, %d needed", strings.Join(down, ", "), orList(fatal), what, e.Healthy, e.Size, e.Quorum),
					fmt.Sprintf("bring %s back before any maintenance elsewhere; kubectl dc status -w shows it return", strings.Join(down, ", ")))
			}
		} else if len(dcs) != 2 {
			for _, d := range r.Datacenters {
				if d.SurvivesLoss != nil && !*d.SurvivesLoss && !d.Lost {
					add(severityCritical,
						fmt.Sprintf("losing datacenter %s loses etcd quorum%s: %d healthy %s would be left of %d, %d needed", d.Name, what, e.Healthy-d.HealthyVoters, cmdutil.Plural(e.Healthy-d.HealthyVoters, "voter", "voters"), e.Size, e.Quorum),
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
		var unsure []string
		for _, d := range r.Datacenters {
			if d.SurvivesLoss == nil && d.Name != cluster.Unlabeled && !d.Lost {
				unsure = append(unsure, d.Name)
			}
		}
		depends := "no loss verdict depends on it"
		if len(unsure) > 0 {
			depends = "whether the cluster survives the loss of " + orList(unsure) + " depends on it and is shown as unknown"
		}
		for _, m := range e.Members {
			switch {
			case m.Node == "" && m.Datacenter == "":
				add(severityWarning,
					fmt.Sprintf("etcd member %s matches no node by name or address and --etcd-datacenters does not place it: its datacenter is unknown; %s", m.Name, depends),
					fmt.Sprintf("say where it runs with --etcd-datacenters %s=<datacenter> (a member name, URL, host:port or host), or, on a stacked control plane, name members after their nodes and use the node InternalIP in their peer URLs", m.Name))
			case m.Datacenter == cluster.Unlabeled:
				add(severityWarning,
					fmt.Sprintf("etcd member %s runs on node %s, which has no %s label: its datacenter is unknown; %s", m.Name, m.Node, in.Label, depends),
					fmt.Sprintf("kubectl label node %s %s=<datacenter>", m.Node, in.Label))
			}
		}
	}
}

// memberPlacements: --etcd-datacenters entries that place no member, and
// entries for members that run on a node (the node's datacenter wins).
func (f *findings) memberPlacements() {
	places := f.in.MemberDatacenters
	if len(places) == 0 || f.r.Etcd.Source == cluster.EtcdSourceUnknown || f.r.Etcd.Source == cluster.EtcdSourcePods {
		return
	}
	source := func(k string) string {
		if src := f.in.MemberSources[k]; src != "" {
			return src + " spec.etcdMembers"
		}
		return "--etcd-datacenters"
	}
	used := map[string]bool{}
	for _, m := range f.r.Etcd.Members {
		for _, k := range cluster.MemberKeys(m.Name, append(append([]string{}, m.PeerURLs...), m.ClientURLs...)...) {
			if dc, ok := places[k]; ok {
				used[k] = true
				if m.DatacenterFrom == cluster.FromNode && dc != m.Datacenter {
					f.add(severityWarning,
						fmt.Sprintf("%s places etcd member %s in %s, but it runs on node %s in %s: the node's datacenter counts", source(k), m.Name, dc, m.Node, m.Datacenter),
						fmt.Sprintf("drop %s from %s, or fix the %s label of node %s", k, source(k), f.in.Label, m.Node))
				}
			}
		}
	}
	var unused []string
	for k := range places {
		if !used[k] {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	for _, k := range unused {
		f.add(severityWarning,
			fmt.Sprintf("%s names %s, which is no etcd member's name, URL, host:port or host", source(k), k),
			"check the member names and URLs (kubectl dc status -o json lists etcd.members) and correct the entry")
	}
}

// apiServers: API servers all in one datacenter, or in none known.
func (f *findings) apiServers() {
	r, dcs, add := f.r, f.dcs, f.add
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
}

// labels: nodes without the datacenter label, and a label kubelets may set.
func (f *findings) labels() {
	in, dcs, unlabeled, add := f.in, f.dcs, f.unlabeled, f.add
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
	if policy.KubeletMaySetLabel(in.Label) {
		add(severityWarning,
			fmt.Sprintf("the datacenter label %s is one a kubelet may set on its own Node: a compromised or misconfigured node can move itself to another datacenter", in.Label),
			"use a label under node-restriction.kubernetes.io/ (for example node-restriction.kubernetes.io/datacenter), which the NodeRestriction admission plugin keeps kubelets from setting, or guard changes with dc-webhook")
	}
}

// readProblems: what the report could not read.
func (f *findings) readProblems() {
	in, add := f.in, f.add
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
}

// whatIf: what the --lose datacenters take with them.
func (f *findings) whatIf() {
	r, what, add := f.r, f.what, f.add
	if w := r.WhatIf; w != nil {
		if unknown := policy.UnknownVoters(cluster.Voters(r.Etcd.Members)); len(unknown) > 0 && r.Etcd.HasQuorum {
			if _, known := policy.SurvivesLossKnown(cluster.Voters(r.Etcd.Members)); !known {
				add(severityWarning,
					fmt.Sprintf("etcd keeps quorum%s only if %s, in no known datacenter, %s not there", what, strings.Join(unknown, ", "), map[bool]string{true: "is", false: "are"}[len(unknown) == 1]),
					"place them with --etcd-datacenters NAME=DC")
			}
		}
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
}

// datacentersDown: a datacenter that is out now, said first, with what
// still holds.
func (f *findings) datacentersDown() {
	r, e := f.r, &f.r.Etcd
	for _, d := range r.Datacenters {
		if !d.Down {
			continue
		}
		var held []string
		switch {
		case e.Source == cluster.EtcdSourceKine:
			held = append(held, "datastore: kine")
		case e.Source == cluster.EtcdSourceUnknown || e.Size == 0:
			held = append(held, "etcd: unknown")
		case e.HasQuorum:
			held = append(held, fmt.Sprintf("etcd keeps quorum with %d of %d voters (%d needed, tolerates %d more %s)", e.Healthy, e.Size, e.Quorum, e.FaultTolerance, cmdutil.Plural(e.FaultTolerance, "failure", "failures")))
		default:
			held = append(held, fmt.Sprintf("etcd has LOST QUORUM: %d of %d voters healthy, %d needed", e.Healthy, e.Size, e.Quorum))
		}
		up := 0
		for _, a := range r.APIServers {
			if a.Up {
				up++
			}
		}
		held = append(held, fmt.Sprintf("%d of %d API servers up", up, len(r.APIServers)))
		var orphans []string
		for _, w := range f.in.Workloads {
			if w.Pinned == d.Name {
				orphans = append(orphans, w.Kind+"/"+w.Namespace+"/"+w.Name)
			}
		}
		if len(orphans) > 0 {
			held = append(held, fmt.Sprintf("%d workloads pinned to %s have no replica anywhere (%s)", len(orphans), d.Name, joinSome(orphans, 5)))
		}
		f.add(severityCritical,
			fmt.Sprintf("datacenter %s is DOWN: its %d nodes are NotReady and its %d etcd voters and %d API servers do not answer; %s", d.Name, d.Nodes.Total, d.Voters, d.APIServers, strings.Join(held, "; ")),
			fmt.Sprintf("bring %s back (power, network, kubelets), or drain it for good with kubectl dc drain %s; kubectl dc status -w shows it return", d.Name, d.Name))
	}
}

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
