package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// EtcdFlags are the flags that say how to read etcd and where its members
// run, and, for kine, its SQL database and where its servers run: the same
// on every verb that judges quorum (status, drain), so that they read the
// same members and servers and place them alike.
type EtcdFlags struct {
	// EtcdEndpoints is status's --etcd-endpoints (read etcd with the API
	// server down); AddFlags does not add it.
	EtcdEndpoints []string
	// EtcdDatacenters are --etcd-datacenters entries, NAME=DC: members that
	// run on no node (external etcd) placed by name or address.
	EtcdDatacenters []string
	// MemberDCs is EtcdDatacenters parsed by Validate.
	MemberDCs   map[string]string
	EtcdTLS     EtcdTLSFiles
	EtcdTimeout time.Duration
	Exec        bool
	ExecTLS     EtcdExecTLS

	// DatastoreDSN is --datastore-dsn, kine's database; DSN is it parsed
	// by Validate, nil when not given.
	DatastoreDSN string
	DSN          *DatastoreDSN
	// DatastoreDatacenters are --datastore-datacenters entries, HOST=DC;
	// DatabaseDCs is them parsed by Validate.
	DatastoreDatacenters []string
	DatabaseDCs          map[string]string
	// SQLReader reads the database; nil is PostgreSQL over the network.
	SQLReader SQLReader
}

// NewEtcdFlags returns the flags with their defaults: a 2 s deadline,
// exec into etcd pods allowed, kubeadm's certificate paths inside them.
func NewEtcdFlags() EtcdFlags {
	return EtcdFlags{
		EtcdTimeout: 2 * time.Second,
		Exec:        true,
		ExecTLS:     EtcdExecTLS{CACert: DefaultExecCACert, Cert: DefaultExecCert, Key: DefaultExecKey},
	}
}

// AddFlags registers the flags on f, all but --etcd-endpoints.
func (e *EtcdFlags) AddFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&e.EtcdDatacenters, "etcd-datacenters", nil, "Datacenters of etcd members that run on no node (external etcd), as NAME=DC pairs (comma-separated); NAME is a member name, a client or peer URL, host:port or host.")
	f.StringVar(&e.EtcdTLS.CACert, "etcd-cacert", "", "CA bundle to verify etcd's serving certificate (local file).")
	f.StringVar(&e.EtcdTLS.Cert, "etcd-cert", "", "Client certificate for etcd (local file).")
	f.StringVar(&e.EtcdTLS.Key, "etcd-key", "", "Client key for etcd (local file).")
	f.DurationVar(&e.EtcdTimeout, "etcd-timeout", e.EtcdTimeout, "Deadline of each etcd call.")
	f.BoolVar(&e.Exec, "etcd-exec", e.Exec, "When etcd cannot be dialled, run etcdctl inside an etcd pod.")
	f.StringVar(&e.ExecTLS.CACert, "etcd-exec-cacert", e.ExecTLS.CACert, "CA path inside the etcd pod for --etcd-exec.")
	f.StringVar(&e.ExecTLS.Cert, "etcd-exec-cert", e.ExecTLS.Cert, "Client certificate path inside the etcd pod for --etcd-exec.")
	f.StringVar(&e.ExecTLS.Key, "etcd-exec-key", e.ExecTLS.Key, "Client key path inside the etcd pod for --etcd-exec.")
	f.StringVar(&e.DatastoreDSN, "datastore-dsn", "", "kine's PostgreSQL database, postgres://USER[:PASSWORD]@HOST[:PORT][,HOST[:PORT]...]/DATABASE, listing the primary and every replica; the role needs only read access (docs/database.md). The password may come from PGPASSWORD; it is never printed.")
	f.StringSliceVar(&e.DatastoreDatacenters, "datastore-datacenters", nil, "Datacenters of database servers whose address is no node's, as HOST[:PORT]=DC pairs (comma-separated).")
}

// Validate checks the flags and parses --etcd-datacenters into MemberDCs.
func (e *EtcdFlags) Validate() error {
	if (e.EtcdTLS.Cert == "") != (e.EtcdTLS.Key == "") {
		return errors.New("--etcd-cert and --etcd-key must be given together")
	}
	if e.EtcdTimeout <= 0 {
		return errors.New("--etcd-timeout must be positive, e.g. 2s")
	}
	var err error
	if e.MemberDCs, err = ParsePlacements("--etcd-datacenters", "NAME=DC, a member name or address and its datacenter, e.g. etcd-a=pod-1 or 10.0.3.10=pod-3", e.EtcdDatacenters); err != nil {
		return err
	}
	if e.DatabaseDCs, err = ParsePlacements("--datastore-datacenters", "HOST[:PORT]=DC, e.g. 10.0.2.20=pod-2", e.DatastoreDatacenters); err != nil {
		return err
	}
	e.DSN = nil
	if e.DatastoreDSN != "" {
		if e.DSN, err = ParseDatastoreDSN(e.DatastoreDSN); err != nil {
			return err
		}
	}
	return nil
}

// ReadDatastore reads kine's database servers through --datastore-dsn
// within --etcd-timeout each; nil servers and no notes when no DSN was
// given.
func (e *EtcdFlags) ReadDatastore(ctx context.Context) ([]policy.DatabaseServer, []string) {
	if e.DSN == nil {
		return nil, nil
	}
	reader := e.SQLReader
	if reader == nil {
		reader = PostgresReader{}
	}
	return ReadDatastore(ctx, e.DSN, reader, e.EtcdTimeout)
}

// Options are the options of ReadEtcd the flags give: exec only through
// podExec (nil: none), the API servers' --etcd-servers dialled when no
// etcd pod advertises its URLs.
func (e *EtcdFlags) Options(podExec PodExecFunc, apiServerPods []*corev1.Pod) EtcdOptions {
	return EtcdOptions{
		TLS: e.EtcdTLS, Timeout: e.EtcdTimeout, Exec: e.Exec && podExec != nil, ExecTLS: e.ExecTLS, PodExec: podExec,
		APIServerPods: apiServerPods,
	}
}

// EtcdMemberDatacenters places the members that run on no node: flag's
// entries (--etcd-datacenters), then the live policies' spec.etcdMembers
// for the names the flag does not give. sources says where each policy
// entry comes from ("PlacementPolicy/<name>"); the flag's have none.
func (s *Snapshot) EtcdMemberDatacenters(flag map[string]string) (dcs, sources map[string]string) {
	for k, dc := range flag {
		if dcs == nil {
			dcs = map[string]string{}
		}
		dcs[k] = dc
	}
	if s == nil {
		return dcs, sources
	}
	for _, p := range s.Policies.Items {
		for k, dc := range p.Spec.EtcdMembers {
			if _, ok := dcs[k]; ok {
				continue
			}
			if dcs == nil {
				dcs = map[string]string{}
			}
			if sources == nil {
				sources = map[string]string{}
			}
			dcs[k], sources[k] = dc, "PlacementPolicy/"+p.Name
		}
	}
	return dcs, sources
}

// ParsePlacements parses a flag of KEY=DC pairs; nil when there are none.
// want says the form in the error of an entry that has not got it.
func ParsePlacements(flag, want string, entries []string) (map[string]string, error) {
	var out map[string]string
	for _, e := range entries {
		key, dc, ok := strings.Cut(e, "=")
		key, dc = strings.TrimSpace(key), strings.TrimSpace(dc)
		if !ok || key == "" || dc == "" {
			return nil, fmt.Errorf("%s %q: want %s", flag, e, want)
		}
		if prev, dup := out[key]; dup && prev != dc {
			return nil, fmt.Errorf("%s places %s in both %s and %s: give it once", flag, key, prev, dc)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[key] = dc
	}
	return out, nil
}
