package status

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/policy"
)

// DatastoreKine is the kind of a datastore that is kine over SQL.
const DatastoreKine = "kine"

// DefaultMaxReplayLag is --datastore-max-lag's default.
const DefaultMaxReplayLag = 10 * time.Second

// DatastoreReport is the API servers' datastore when it is not etcd: kine
// over a SQL database. etcd quorum does not apply to it; where the
// database's primary runs does.
type DatastoreReport struct {
	// Kind is "kine".
	Kind string `json:"kind"`
	// DetectedBy says how: "etcd API" (the datastore answers the etcd API
	// as kine does) and/or "pods" (kine pods).
	DetectedBy []string `json:"detectedBy"`
	// Instances are the kine pods.
	Instances []KineInstance `json:"instances"`
	// DSN is --datastore-dsn without its password; "" when not given.
	DSN string `json:"dsn,omitempty"`
	// Servers are the database servers, null when --datastore-dsn was not
	// given (the database cannot be known).
	Servers []DatabaseServerReport `json:"servers"`
	// Primaries names the servers that accept writes: one is healthy, two
	// or more is a split brain, none stops every write.
	Primaries []string `json:"primaries"`
	// MaxReplayLagSeconds is the lag beyond which a replica is reported.
	MaxReplayLagSeconds float64 `json:"maxReplayLagSeconds"`
	// Notes say what could not be read.
	Notes []string `json:"notes,omitempty"`

	servers []policy.DatabaseServer
}

// KineInstance is one kine pod.
type KineInstance struct {
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Node       string `json:"node,omitempty"`
	Datacenter string `json:"datacenter,omitempty"`
	Ready      bool   `json:"ready"`
}

// DatabaseServerReport is one database server.
type DatabaseServerReport struct {
	Address    string `json:"address"`
	Datacenter string `json:"datacenter"`
	// Role is primary, replica or unreachable.
	Role      string `json:"role"`
	Streaming bool   `json:"streaming"`
	// ReplayLagSeconds is a replica's replay lag as its primary reports
	// it; null when unknown.
	ReplayLagSeconds *float64 `json:"replayLagSeconds"`
}

// DatastoreWhatIf is what a --lose does to a kine datastore.
type DatastoreWhatIf struct {
	// Writable: a single primary is left, the API keeps storing changes.
	Writable bool `json:"writable"`
	// APIKept: writable and an API server is left.
	APIKept bool `json:"apiKept"`
	// FailoverNeeded: the primary is lost; Promote is the replica to
	// promote, DataAtRiskSeconds its replay lag (writes it may lack).
	FailoverNeeded    bool     `json:"failoverNeeded"`
	Promote           string   `json:"promote,omitempty"`
	DataAtRiskSeconds *float64 `json:"dataAtRiskSeconds"`
	// Known is false when the verdict cannot be known (no database read,
	// a split brain, a server in no known datacenter).
	Known bool `json:"known"`
}

// Database roles of DatabaseServerReport.Role.
const (
	rolePrimary     = "primary"
	roleReplica     = "replica"
	roleUnreachable = "unreachable"
)

// isKine says how the API servers are seen to store in kine, nil when
// they are not (cluster.DetectKine).
func isKine(in *statusInput) []string {
	return cluster.DetectKine(in.Etcd, in.KinePods, in.EtcdPods)
}

// buildDatastore fills the report of a kine cluster: no etcd arithmetic,
// the database's servers placed in datacenters, the per-datacenter loss
// verdicts from where the primary is.
func buildDatastore(in *statusInput, r *Report, by []string, dcOfNode func(string) string, row func(string) *DatacenterStatus) {
	d := &DatastoreReport{Kind: DatastoreKine, DetectedBy: by, Instances: []KineInstance{}, DSN: in.DatastoreDSN, Notes: in.DatabaseNotes, MaxReplayLagSeconds: in.maxLag().Seconds()}
	r.Datastore = d
	e := cluster.EtcdStatus{Source: cluster.EtcdSourceKine, Members: []cluster.EtcdMember{}}
	if in.Etcd != nil {
		e.Endpoints, e.Notes = in.Etcd.Endpoints, in.Etcd.Notes
	}
	r.Etcd = e
	for _, p := range in.KinePods {
		k := KineInstance{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, Ready: policy.PodReady(p)}
		if k.Node != "" {
			k.Datacenter = dcOfNode(k.Node)
			if k.Datacenter != "" {
				rw := row(k.Datacenter)
				rw.KineInstances++
			}
		}
		d.Instances = append(d.Instances, k)
	}
	if in.Database == nil {
		return
	}
	servers := append([]policy.DatabaseServer{}, in.Database...)
	cluster.PlaceDatabaseServers(servers, in.DatabaseDatacenters, in.Nodes, dcOfNode)
	d.servers = servers
	d.Servers = []DatabaseServerReport{}
	d.Primaries = []string{}
	for _, s := range servers {
		sr := DatabaseServerReport{Address: s.Address, Datacenter: s.Datacenter, Streaming: s.Streaming, ReplayLagSeconds: seconds(s.ReplayLag)}
		switch {
		case !s.Reachable:
			sr.Role = roleUnreachable
		case s.Primary:
			sr.Role = rolePrimary
			d.Primaries = append(d.Primaries, s.Address)
		default:
			sr.Role = roleReplica
		}
		d.Servers = append(d.Servers, sr)
		if s.Datacenter != "" {
			rw := row(s.Datacenter)
			rw.Database = append(rw.Database, sr.Role+" "+s.Address)
		}
	}
}

// datastoreVerdicts sets each row's survivesLoss from the database: a
// datacenter can be lost when the primary is elsewhere; losing the
// primary's needs a failover, which is no survival.
func datastoreVerdicts(r *Report, lost map[string]bool) {
	d := r.Datastore
	if d == nil || d.servers == nil {
		return
	}
	all := sortedDatacenters(lost)
	for i := range r.Datacenters {
		rw := &r.Datacenters[i]
		if rw.Name == cluster.Unlabeled {
			continue
		}
		v := policy.DatastoreLossVerdict(d.servers, append(append([]string{}, all...), rw.Name)...)
		if v.Known {
			ok := v.Writable
			rw.SurvivesLoss = &ok
		}
	}
}

// datastoreWhatIf is the --lose verdict on the datastore.
func datastoreWhatIf(in *statusInput, r *Report, w *WhatIfReport) {
	d := r.Datastore
	if d == nil {
		return
	}
	dw := &DatastoreWhatIf{}
	if d.servers != nil {
		v := policy.DatastoreLossVerdict(d.servers, in.Lose...)
		dw.Writable, dw.FailoverNeeded, dw.Promote, dw.DataAtRiskSeconds, dw.Known = v.Writable, v.FailoverNeeded, v.Promote, seconds(v.DataAtRisk), v.Known
	}
	dw.APIKept = dw.Writable && w.APIServersLeft > 0
	w.Datastore = dw
	w.HasQuorum = dw.Writable
}

func seconds(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	s := d.Seconds()
	return &s
}

// datastoreCell is a row's DATASTORE column: its database servers' roles
// and its kine instances.
func datastoreCell(d DatacenterStatus) string {
	var parts []string
	for _, s := range d.Database {
		role, _, _ := strings.Cut(s, " ")
		parts = append(parts, role)
	}
	if d.KineInstances > 0 {
		parts = append(parts, fmt.Sprintf("kine x%d", d.KineInstances))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// datastoreExit maps a kine report to the exit code: no single primary is
// ExitQuorumLost; with --fail-on-risk, a loss that needs a failover (or
// cannot be judged) is ExitRisk.
func datastoreExit(r *Report, failOnRisk bool) error {
	d := r.Datastore
	if d.servers != nil && len(d.Primaries) != 1 {
		return &cmdutil.ExitError{Code: ExitQuorumLost}
	}
	if !failOnRisk {
		return nil
	}
	if w := r.WhatIf; w != nil && w.Datastore != nil {
		if !w.Datastore.Writable {
			return &cmdutil.ExitError{Code: ExitRisk}
		}
		return nil
	}
	for _, dc := range r.Datacenters {
		if dc.Name != cluster.Unlabeled && (dc.SurvivesLoss == nil || !*dc.SurvivesLoss) {
			return &cmdutil.ExitError{Code: ExitRisk}
		}
	}
	return nil
}

// datastoreLine is the verdict line of a kine cluster.
func datastoreLine(r *Report) string {
	d := r.Datastore
	var b strings.Builder
	fmt.Fprintf(&b, "datastore: kine (%d %s", len(d.Instances), cmdutil.Plural(len(d.Instances), "instance", "instances"))
	b.WriteString("), no etcd quorum")
	if d.Servers == nil {
		b.WriteString("; database unknown (no --datastore-dsn)")
		return b.String()
	}
	for _, s := range d.Servers {
		fmt.Fprintf(&b, "; %s %s in %s", s.Role, s.Address, orUnknown(s.Datacenter))
		if s.Role == roleReplica {
			switch {
			case !s.Streaming:
				b.WriteString(" NOT STREAMING")
			case s.ReplayLagSeconds != nil:
				fmt.Fprintf(&b, " (lag %s)", formatLag(*s.ReplayLagSeconds))
			default:
				b.WriteString(" (streaming)")
			}
		}
	}
	if len(d.Primaries) > 1 {
		b.WriteString("; SPLIT BRAIN")
	}
	return b.String()
}

func orUnknown(dc string) string {
	if dc == "" {
		return "an unknown datacenter"
	}
	return dc
}

func formatLag(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// datastore: what is wrong with a kine datastore.
func (f *findings) datastore() {
	d, add := f.r.Datastore, f.add
	if d == nil {
		return
	}
	if d.Servers == nil {
		add(severityInfo,
			fmt.Sprintf("the API servers store in kine (detected by %s), not etcd: etcd quorum does not apply; where the database's primary and replicas run, and so which datacenters can be lost, is unknown", strings.Join(d.DetectedBy, " and ")),
			"pass --datastore-dsn postgres://USER@PRIMARY,REPLICA/DATABASE with a read-only role (docs/database.md)")
		return
	}
	for _, s := range d.Servers {
		if s.Role == roleUnreachable {
			add(severityWarning, fmt.Sprintf("database server %s did not answer: its role is unknown", s.Address),
				"check that it runs and that this machine may connect (kubectl dc status -o wide shows the error)")
		}
		if s.Datacenter == "" {
			add(severityWarning, fmt.Sprintf("database server %s is in no known datacenter: loss verdicts that depend on it are unknown", s.Address),
				fmt.Sprintf("say where it runs with --datastore-datacenters %s=<datacenter>", s.Address))
		}
	}
	primaries := policy.Primaries(d.servers)
	switch len(primaries) {
	case 0:
		add(severityCritical, "no database server accepts writes: kine, and so the API, cannot store any change",
			"bring the primary back, or promote the most recent replica (pg_ctl promote, or SELECT pg_promote()) and point kine at it")
		return
	case 1:
	default:
		var where []string
		for _, p := range primaries {
			where = append(where, p.Address+" in "+orUnknown(p.Datacenter))
		}
		add(severityCritical,
			fmt.Sprintf("SPLIT BRAIN: %d database servers accept writes (%s): the kine instances of each side store changes the other never sees", len(primaries), strings.Join(where, ", ")),
			"fence one side now (stop it or make it read-only), keep the primary holding the writes you want and rebuild the other as its replica; then add a witness in a third datacenter that decides which side may be primary and fences the other, so that no promotion can leave two")
		return
	}
	p := primaries[0]
	replicas := policy.Replicas(d.servers)
	streaming := 0
	for _, rp := range replicas {
		if rp.Streaming {
			streaming++
		}
		if !rp.Streaming {
			add(severityWarning, fmt.Sprintf("replica %s in %s is not streaming from primary %s: a failover to it loses every write since it stopped", rp.Address, orUnknown(rp.Datacenter), p.Address),
				"check its primary_conninfo and the primary's pg_hba.conf, and its log")
		} else if rp.ReplayLag != nil && *rp.ReplayLag > f.in.maxLag() {
			add(severityWarning, fmt.Sprintf("replica %s in %s replays %s behind primary %s (more than %s): a failover now would lose up to that much of the latest writes", rp.Address, orUnknown(rp.Datacenter), rp.ReplayLag.Round(time.Millisecond), p.Address, f.in.maxLag()),
				"look for a slow disk or network on the replica, or long queries holding replay back (hot_standby_feedback, max_standby_streaming_delay)")
		}
	}
	if streaming == 0 {
		add(severityWarning, fmt.Sprintf("primary %s in %s has no streaming replica: losing %s loses the datastore and every write since the last backup", p.Address, orUnknown(p.Datacenter), orUnknown(p.Datacenter)),
			"run a streaming replica in another datacenter")
	}
	if p.Datacenter != "" && len(f.in.Lose) == 0 {
		v := policy.DatastoreLossVerdict(d.servers, p.Datacenter)
		msg := fmt.Sprintf("losing datacenter %s, which holds the database primary %s, stops every write of the API until a replica is promoted", p.Datacenter, p.Address)
		if v.Promote != "" {
			msg += fmt.Sprintf(": promote %s", v.Promote)
			if v.DataAtRisk != nil {
				msg += fmt.Sprintf(" (it trails by %s)", v.DataAtRisk.Round(time.Millisecond))
			}
		}
		add(severityWarning, msg,
			"have a witness in a third datacenter promote the replica and fence the old primary, or keep a written manual failover (pg_ctl promote on the replica, then point kine at it)")
	}
}

// datastoreWhatIfFindings: what the --lose datacenters do to the datastore.
func (f *findings) datastoreWhatIf() {
	w, what := f.r.WhatIf, f.what
	if w == nil || w.Datastore == nil || !w.Datastore.Known {
		return
	}
	dw := w.Datastore
	switch {
	case dw.FailoverNeeded && dw.Promote != "":
		risk := "unknown"
		if dw.DataAtRiskSeconds != nil {
			risk = formatLag(*dw.DataAtRiskSeconds)
		}
		f.add(severityCritical, fmt.Sprintf("the database primary is lost%s: the API stores nothing until %s is promoted; writes at risk: its replay lag, %s", what, dw.Promote, risk),
			fmt.Sprintf("promote %s (pg_ctl promote) and point kine at it; a witness in a third datacenter can do it and fence the old primary", dw.Promote))
	case dw.FailoverNeeded:
		f.add(severityCritical, fmt.Sprintf("the database primary is lost%s and no replica is left: the datastore is gone until restored from backup", what),
			"run a streaming replica in another datacenter")
	}
}

// maxLag is --datastore-max-lag, defaulted.
func (in *statusInput) maxLag() time.Duration {
	if in.MaxReplayLag > 0 {
		return in.MaxReplayLag
	}
	return DefaultMaxReplayLag
}

// sortedDatacenters lists the keys of lost, sorted.
func sortedDatacenters(lost map[string]bool) []string {
	out := make([]string, 0, len(lost))
	for d := range lost {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}
