package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// EtcdSourceKine is the etcd source of a cluster whose API servers store
// in kine: there are no etcd members and no quorum to count.
const EtcdSourceKine = "kine"

// IsKine reports whether the view was read from kine rather than etcd:
// kine answers the etcd API with one member named "kine" whose ID is 0, a
// value no etcd member ever has.
func (v *EtcdView) IsKine() bool {
	if v == nil || len(v.Members) == 0 {
		return false
	}
	for _, m := range v.Members {
		if m.ID != 0 || m.Name != "kine" {
			return false
		}
	}
	return true
}

// DetectKine says how the API servers are seen to store in kine, nil when
// they are not: the datastore answers the etcd API as kine does ("etcd
// API"), or kine pods run while no etcd member was read and no etcd pod
// runs ("pods"). status and drain both ask it.
func DetectKine(view *EtcdView, kinePods, etcdPods []*corev1.Pod) []string {
	var by []string
	if view.IsKine() {
		by = append(by, "etcd API")
	}
	etcdRead := view != nil && len(view.Members) > 0 && !view.IsKine()
	if len(kinePods) > 0 && !etcdRead && len(etcdPods) == 0 {
		by = append(by, "pods")
	}
	return by
}

// KinePods returns the pods that run kine: labelled component=kine,
// app=kine or app.kubernetes.io/name=kine (kubeadm-style static pods and
// charts), or with a container whose image is kine's.
func KinePods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if policy.PodTerminal(p) {
			continue
		}
		if p.Labels["component"] == "kine" || p.Labels["app"] == "kine" || p.Labels["app.kubernetes.io/name"] == "kine" || kineImage(p) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name })
	return out
}

func kineImage(p *corev1.Pod) bool {
	for _, c := range p.Spec.Containers {
		repo, _, _ := strings.Cut(c.Image, "@")
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		if repo == "kine" || strings.HasSuffix(repo, "/kine") {
			return true
		}
	}
	return false
}

// DatastoreDSN is a PostgreSQL connection URL with one or more hosts,
// postgres://USER[:PASSWORD]@HOST[:PORT][,HOST[:PORT]...]/DB[?PARAMS].
// Its String never shows the password.
type DatastoreDSN struct {
	// Hosts are host:port, the port defaulted to 5432.
	Hosts []string
	// user, password, database and params rebuild one URL per host.
	user     *url.Userinfo
	database string
	params   url.Values
}

// ParseDatastoreDSN parses --datastore-dsn. Errors never quote the DSN:
// it may hold a password.
func ParseDatastoreDSN(s string) (*DatastoreDSN, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "postgres" && scheme != "postgresql") {
		return nil, errors.New("--datastore-dsn: want a PostgreSQL URL, postgres://USER[:PASSWORD]@HOST[:PORT][,HOST[:PORT]...]/DATABASE (the password may come from PGPASSWORD instead)")
	}
	authority, path, _ := strings.Cut(rest, "/")
	d := &DatastoreDSN{}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		one, err := url.Parse(scheme + "://" + authority[:at] + "@host")
		if err != nil || one.User == nil {
			return nil, errors.New("--datastore-dsn: the user part does not parse: percent-encode special characters in the user and password")
		}
		d.user, authority = one.User, authority[at+1:]
	}
	db, query, _ := strings.Cut(path, "?")
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("--datastore-dsn: the parameters after ? do not parse: %w", err)
	}
	d.database, d.params = db, params
	for _, h := range strings.Split(authority, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "5432")
		}
		d.Hosts = append(d.Hosts, h)
	}
	if len(d.Hosts) == 0 {
		return nil, errors.New("--datastore-dsn names no host: list the primary and every replica, postgres://USER@HOST1:5432,HOST2:5432/DATABASE")
	}
	return d, nil
}

// HostURL is the connection URL of one host, password included: for the
// database driver only, never for printing.
func (d *DatastoreDSN) HostURL(host string) string {
	u := url.URL{Scheme: "postgres", User: d.user, Host: host, Path: "/" + d.database, RawQuery: d.params.Encode()}
	return u.String()
}

// String is the DSN with the password replaced.
func (d *DatastoreDSN) String() string {
	u := url.URL{Scheme: "postgres", User: d.user, Host: strings.Join(d.Hosts, ","), Path: "/" + d.database, RawQuery: d.params.Encode()}
	return u.Redacted()
}

// scrub removes the DSN's password from a driver's message.
func (d *DatastoreDSN) scrub(msg string) string {
	if d.user == nil {
		return msg
	}
	if pw, ok := d.user.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
		msg = strings.ReplaceAll(msg, url.QueryEscape(pw), "xxxxx")
	}
	return msg
}

// SQLServerState is what one PostgreSQL server says of itself.
type SQLServerState struct {
	// InRecovery is pg_is_in_recovery(): true on a replica.
	InRecovery bool
	// Replication is a primary's pg_stat_replication.
	Replication []ReplicationRow
}

// ReplicationRow is one row of pg_stat_replication: a replica streaming
// from this primary.
type ReplicationRow struct {
	ClientAddr      string
	ApplicationName string
	State           string
	// ReplayLag is nil when the primary has measured none yet.
	ReplayLag *time.Duration
}

// SQLReader reads one server of the datastore; it must return by ctx's
// deadline.
type SQLReader interface {
	ReadServer(ctx context.Context, dsn *DatastoreDSN, host string) (SQLServerState, error)
}

// ReadDatastore asks every host of dsn, in parallel and each within
// timeout, whether it is a primary and what streams from it. A host that
// does not answer is unreachable, with a note that never shows the
// password. The datacenters are left to PlaceDatabaseServers.
func ReadDatastore(ctx context.Context, dsn *DatastoreDSN, reader SQLReader, timeout time.Duration) ([]policy.DatabaseServer, []string) {
	states := make([]SQLServerState, len(dsn.Hosts))
	errs := make([]error, len(dsn.Hosts))
	var wg sync.WaitGroup
	for i, h := range dsn.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			states[i], errs[i] = reader.ReadServer(cctx, dsn, h)
		}()
	}
	wg.Wait()
	servers := make([]policy.DatabaseServer, len(dsn.Hosts))
	var notes []string
	for i, h := range dsn.Hosts {
		servers[i] = policy.DatabaseServer{Address: h}
		if errs[i] != nil {
			notes = append(notes, fmt.Sprintf("database %s did not answer: %s", h, dsn.scrub(errs[i].Error())))
			continue
		}
		servers[i].Reachable, servers[i].Primary = true, !states[i].InRecovery
	}
	// Every primary's replication rows, matched to the replicas.
	for i, st := range states {
		if errs[i] != nil || st.InRecovery {
			continue
		}
		for _, row := range st.Replication {
			j := matchReplica(row, servers, len(st.Replication))
			if j < 0 {
				notes = append(notes, fmt.Sprintf("primary %s streams to %s (%s), which --datastore-dsn does not list", servers[i].Address, row.ClientAddr, row.ApplicationName))
				continue
			}
			servers[j].Streaming = servers[j].Streaming || row.State == "streaming"
			if row.ReplayLag != nil {
				servers[j].ReplayLag = row.ReplayLag
			}
		}
	}
	return servers, notes
}

// matchReplica finds the replica of a pg_stat_replication row: by its
// client address, else by an application_name that is its address or host,
// else the only replica when the primary streams to one.
func matchReplica(row ReplicationRow, servers []policy.DatabaseServer, rows int) int {
	var replicas []int
	for j, s := range servers {
		if s.Reachable && s.Primary {
			continue
		}
		replicas = append(replicas, j)
		host, _, _ := net.SplitHostPort(s.Address)
		if row.ClientAddr != "" && row.ClientAddr == host {
			return j
		}
		if row.ApplicationName != "" && (row.ApplicationName == s.Address || row.ApplicationName == host) {
			return j
		}
	}
	if rows == 1 && len(replicas) == 1 {
		return replicas[0]
	}
	return -1
}

// PlaceDatabaseServers sets each server's datacenter: from places (its
// host:port or host, --datastore-datacenters), else the datacenter of the
// one node whose InternalIP is its host.
func PlaceDatabaseServers(servers []policy.DatabaseServer, places map[string]string, nodes []*corev1.Node, dcOfNode func(string) string) {
	for i := range servers {
		s := &servers[i]
		host, _, _ := net.SplitHostPort(s.Address)
		if dc := places[s.Address]; dc != "" {
			s.Datacenter = dc
			continue
		}
		if dc := places[host]; dc != "" {
			s.Datacenter = dc
			continue
		}
		if n := nodeWithIP(nodes, host); n != "" {
			if dc := dcOfNode(n); dc != Unlabeled {
				s.Datacenter = dc
			}
		}
	}
}
