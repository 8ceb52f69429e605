package policy

import (
	"sort"
	"time"
)

// DatabaseServer is one SQL server behind a kine datastore as it was read:
// kine writes to the one primary; replicas follow it by streaming
// replication and one of them is promoted when the primary is lost. kine has
// no quorum: there is no arithmetic of voters, only where the primary is.
type DatabaseServer struct {
	// Address is host:port, as the operator's DSN names it.
	Address string
	// Datacenter the server runs in, "" when unknown.
	Datacenter string
	// Reachable is false when the server did not answer within the
	// deadline; Primary, Streaming and ReplayLag then mean nothing.
	Reachable bool
	// Primary is true for a server not in recovery (it accepts writes).
	Primary bool
	// Streaming is true for a replica a primary lists as streaming to it.
	Streaming bool
	// ReplayLag is how far the replica's replay trails the primary, as the
	// primary reports it; nil when unknown (not streaming, or no lag yet
	// measured).
	ReplayLag *time.Duration
}

// Primaries returns the reachable servers that accept writes. More than
// one is a split brain: two sides each take writes the other never sees.
func Primaries(servers []DatabaseServer) []DatabaseServer {
	var out []DatabaseServer
	for _, s := range servers {
		if s.Reachable && s.Primary {
			out = append(out, s)
		}
	}
	return out
}

// Replicas returns the reachable servers in recovery.
func Replicas(servers []DatabaseServer) []DatabaseServer {
	var out []DatabaseServer
	for _, s := range servers {
		if s.Reachable && !s.Primary {
			out = append(out, s)
		}
	}
	return out
}

// DatastoreLoss is what losing some datacenters does to a kine datastore.
type DatastoreLoss struct {
	// Writable is true when a primary is left outside the lost
	// datacenters (and it is the only one): the API keeps storing
	// changes without anyone acting.
	Writable bool
	// FailoverNeeded is true when the primary is lost and a replica is
	// left to promote.
	FailoverNeeded bool
	// Promote is the replica to promote: the streaming one with the least
	// lag outside the lost datacenters; "" when none is left.
	Promote string
	// DataAtRisk is the replay lag of Promote: writes the old primary took
	// that the promoted replica may never have seen. nil when unknown.
	DataAtRisk *time.Duration
	// Known is false when the verdict depends on a server whose
	// datacenter is unknown, or there is no primary to judge from.
	Known bool
}

// DatastoreLossVerdict judges the loss of the datacenters lost.
func DatastoreLossVerdict(servers []DatabaseServer, lost ...string) DatastoreLoss {
	primaries := Primaries(servers)
	if len(primaries) != 1 {
		// No primary, or a split brain: there is no single place whose
		// loss could be judged.
		return DatastoreLoss{}
	}
	p := primaries[0]
	if p.Datacenter == "" {
		return DatastoreLoss{}
	}
	v := DatastoreLoss{Known: true}
	if !contains(lost, p.Datacenter) {
		v.Writable = true
		return v
	}
	var left []DatabaseServer
	for _, r := range Replicas(servers) {
		if r.Datacenter == "" {
			// It might be in a lost datacenter or not.
			v.Known = false
			continue
		}
		if !contains(lost, r.Datacenter) {
			left = append(left, r)
		}
	}
	sort.SliceStable(left, func(i, j int) bool {
		a, b := left[i], left[j]
		if a.Streaming != b.Streaming {
			return a.Streaming
		}
		return lagOrMax(a.ReplayLag) < lagOrMax(b.ReplayLag)
	})
	v.FailoverNeeded = true
	if len(left) > 0 {
		v.Promote, v.DataAtRisk = left[0].Address, left[0].ReplayLag
	}
	return v
}

func lagOrMax(d *time.Duration) time.Duration {
	if d == nil {
		return time.Duration(1<<63 - 1)
	}
	return *d
}
