package status

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// kineTopo is two datacenters whose API servers store in kine: a kine pod
// on each control plane, no etcd pods, the datastore answering the etcd API
// as kine does. pod-1-cp-1 is 10.0.0.1, pod-2-cp-1 10.0.0.3.
func kineTopo() *topo {
	tp := newTopo().dc("pod-1", 1, 1).dc("pod-2", 1, 1)
	tp.in.EtcdPods = nil
	for _, n := range []string{"pod-1-cp-1", "pod-2-cp-1"} {
		tp.in.KinePods = append(tp.in.KinePods, readyPod(testutil.Pod("kube-system", "kine-"+n).Labels("component", "kine").Mirror().NodeName(n).Pod(), true))
	}
	tp.in.Etcd = &cluster.EtcdView{Source: cluster.EtcdSourceDirect, Members: []cluster.EtcdMemberInfo{{Name: "kine", Healthy: true, ClientURLs: []string{"http://127.0.0.1:2379"}}}}
	return tp
}

// withDatabase sets the database as read: servers "<ip>:5432".
func (t *topo) withDatabase(servers ...policy.DatabaseServer) *topo {
	t.in.Database = servers
	t.in.DatastoreDSN = "postgres://ro:xxxxx@10.0.0.1:5432,10.0.0.3:5432/kine"
	return t
}

func pgServer(ip string, primary bool, lag time.Duration) policy.DatabaseServer {
	s := policy.DatabaseServer{Address: ip + ":5432", Reachable: true, Primary: primary}
	if !primary && lag >= 0 {
		s.Streaming, s.ReplayLag = true, &lag
	}
	return s
}

func TestKineWithoutDatabase(t *testing.T) {
	r := kineTopo().build()
	if r.Datastore == nil || r.Datastore.Kind != "kine" || strings.Join(r.Datastore.DetectedBy, ",") != "etcd API,pods" || len(r.Datastore.Instances) != 2 {
		t.Fatalf("datastore = %+v", r.Datastore)
	}
	if r.Etcd.Source != cluster.EtcdSourceKine || r.Etcd.Size != 0 || r.Etcd.Quorum != 0 || len(r.Etcd.Members) != 0 {
		t.Errorf("etcd = %+v: no quorum arithmetic on kine", r.Etcd)
	}
	if got := survives(r); got["pod-1"] != "unknown" || got["pod-2"] != "unknown" {
		t.Errorf("survivesLoss = %v, want unknown without the database", got)
	}
	if f := findingWith(r, "store in kine"); f == nil || !strings.Contains(f.Remedy, "--datastore-dsn") {
		t.Errorf("findings = %+v", r.Findings)
	}
	for _, etcdOnly := range []string{"two datacenters", "lost quorum", "etcd endpoint"} {
		if f := findingWith(r, etcdOnly); f != nil {
			t.Errorf("an etcd finding on kine: %s", f.Message)
		}
	}
	if findDC(r, "pod-1").KineInstances != 1 {
		t.Errorf("pod-1 row = %+v", findDC(r, "pod-1"))
	}
	if err := statusExit(r, false); err != nil {
		t.Errorf("exit = %v, want 0", err)
	}
	// Detected by pods alone, when the datastore was not read.
	tp := kineTopo()
	tp.in.Etcd = &cluster.EtcdView{}
	if r := tp.build(); r.Datastore == nil || strings.Join(r.Datastore.DetectedBy, ",") != "pods" {
		t.Errorf("by pods: datastore = %+v", r.Datastore)
	}
}

func TestKinePrimaryAndReplica(t *testing.T) {
	tp := kineTopo().withDatabase(pgServer("10.0.0.1", true, 0), pgServer("10.0.0.3", false, 200*time.Millisecond))
	r := tp.build()
	if got := survives(r); got["pod-1"] != "NO" || got["pod-2"] != "yes" {
		t.Errorf("survivesLoss = %v, want pod-1 NO (the primary's), pod-2 yes", got)
	}
	d := r.Datastore
	if len(d.Servers) != 2 || d.Servers[0].Role != "primary" || d.Servers[0].Datacenter != "pod-1" || d.Servers[1].Role != "replica" || d.Servers[1].Datacenter != "pod-2" ||
		d.Servers[1].ReplayLagSeconds == nil || *d.Servers[1].ReplayLagSeconds != 0.2 {
		t.Errorf("servers = %+v", d.Servers)
	}
	if v := verdictLine(r); !strings.HasPrefix(v, "datastore: kine (2 instances), no etcd quorum; primary 10.0.0.1:5432 in pod-1; replica 10.0.0.3:5432 in pod-2 (lag 200ms); survives loss of: pod-1 NO, pod-2 yes") {
		t.Errorf("verdict = %q", v)
	}
	if f := findingWith(r, "losing datacenter pod-1, which holds the database primary 10.0.0.1:5432, stops every write"); f == nil || !strings.Contains(f.Message, "promote 10.0.0.3:5432 (it trails by 200ms)") {
		t.Errorf("findings = %+v", r.Findings)
	}
	if f := findingWith(r, "behind primary"); f != nil {
		t.Errorf("lag under the threshold reported: %s", f.Message)
	}
	var exit *cmdutil.ExitError
	if err := statusExit(r, true); !errors.As(err, &exit) || exit.Code != ExitRisk {
		t.Errorf("--fail-on-risk: exit %v, want %d (pod-1 needs a failover)", err, ExitRisk)
	}

	tp.in.Lose = []string{"pod-2"}
	r = tp.build()
	if w := r.WhatIf.Datastore; w == nil || !w.Writable || !w.APIKept || w.FailoverNeeded || !w.Known {
		t.Errorf("--lose pod-2: %+v, want the API kept", w)
	}
	if err := statusExit(r, true); err != nil {
		t.Errorf("--lose pod-2 --fail-on-risk: exit %v, want 0", err)
	}

	tp.in.Lose = []string{"pod-1"}
	r = tp.build()
	w := r.WhatIf.Datastore
	if w == nil || w.Writable || w.APIKept || !w.FailoverNeeded || w.Promote != "10.0.0.3:5432" || w.DataAtRiskSeconds == nil || *w.DataAtRiskSeconds != 0.2 {
		t.Errorf("--lose pod-1: %+v, want a failover to 10.0.0.3:5432 with 0.2s at risk", w)
	}
	if f := findingWith(r, "the database primary is lost (as if pod-1 were lost)"); f == nil || f.Severity != severityCritical || !strings.Contains(f.Message, "writes at risk: its replay lag, 200ms") {
		t.Errorf("findings = %+v", r.Findings)
	}
	if err := statusExit(r, true); !errors.As(err, &exit) || exit.Code != ExitRisk {
		t.Errorf("--lose pod-1 --fail-on-risk: exit %v, want %d", err, ExitRisk)
	}
}

func TestKineSplitBrain(t *testing.T) {
	r := kineTopo().withDatabase(pgServer("10.0.0.1", true, 0), pgServer("10.0.0.3", true, 0)).build()
	f := findingWith(r, "SPLIT BRAIN: 2 database servers accept writes (10.0.0.1:5432 in pod-1, 10.0.0.3:5432 in pod-2)")
	if f == nil || f.Severity != severityCritical || !strings.Contains(f.Remedy, "witness in a third datacenter") || !strings.Contains(f.Remedy, "fence") {
		t.Fatalf("findings = %+v", r.Findings)
	}
	if r.Findings[0] != *f {
		t.Errorf("split brain is not the first finding: %+v", r.Findings)
	}
	var exit *cmdutil.ExitError
	if err := statusExit(r, false); !errors.As(err, &exit) || exit.Code != ExitQuorumLost {
		t.Errorf("exit = %v, want %d", err, ExitQuorumLost)
	}
	if got := survives(r); got["pod-1"] != "unknown" || got["pod-2"] != "unknown" {
		t.Errorf("survivesLoss = %v, want unknown in a split brain", got)
	}
	if v := verdictLine(r); !strings.Contains(v, "SPLIT BRAIN") {
		t.Errorf("verdict = %q", v)
	}
}

func TestKineReplicaProblems(t *testing.T) {
	t.Run("no replica", func(t *testing.T) {
		r := kineTopo().withDatabase(pgServer("10.0.0.1", true, 0)).build()
		if f := findingWith(r, "primary 10.0.0.1:5432 in pod-1 has no streaming replica"); f == nil {
			t.Errorf("findings = %+v", r.Findings)
		}
	})
	t.Run("not streaming", func(t *testing.T) {
		r := kineTopo().withDatabase(pgServer("10.0.0.1", true, 0), pgServer("10.0.0.3", false, -1)).build()
		if f := findingWith(r, "replica 10.0.0.3:5432 in pod-2 is not streaming"); f == nil {
			t.Errorf("findings = %+v", r.Findings)
		}
		if v := verdictLine(r); !strings.Contains(v, "NOT STREAMING") {
			t.Errorf("verdict = %q", v)
		}
	})
	t.Run("lag beyond the threshold", func(t *testing.T) {
		tp := kineTopo().withDatabase(pgServer("10.0.0.1", true, 0), pgServer("10.0.0.3", false, 3*time.Second))
		tp.in.MaxReplayLag = time.Second
		r := tp.build()
		if f := findingWith(r, "replica 10.0.0.3:5432 in pod-2 replays 3s behind primary 10.0.0.1:5432 (more than 1s)"); f == nil {
			t.Errorf("findings = %+v", r.Findings)
		}
	})
	t.Run("no primary", func(t *testing.T) {
		r := kineTopo().withDatabase(policy.DatabaseServer{Address: "10.0.0.1:5432"}, pgServer("10.0.0.3", false, -1)).build()
		if f := findingWith(r, "no database server accepts writes"); f == nil || f.Severity != severityCritical {
			t.Errorf("findings = %+v", r.Findings)
		}
		if f := findingWith(r, "database server 10.0.0.1:5432 did not answer"); f == nil {
			t.Errorf("findings = %+v", r.Findings)
		}
		var exit *cmdutil.ExitError
		if err := statusExit(r, false); !errors.As(err, &exit) || exit.Code != ExitQuorumLost {
			t.Errorf("exit = %v, want %d", err, ExitQuorumLost)
		}
	})
	t.Run("server in no known datacenter", func(t *testing.T) {
		r := kineTopo().withDatabase(pgServer("10.0.0.1", true, 0), pgServer("192.168.1.9", false, 0)).build()
		if f := findingWith(r, "database server 192.168.1.9:5432 is in no known datacenter"); f == nil || !strings.Contains(f.Remedy, "--datastore-datacenters 192.168.1.9:5432=") {
			t.Errorf("findings = %+v", r.Findings)
		}
		if got := survives(r); got["pod-1"] != "unknown" || got["pod-2"] != "yes" {
			t.Errorf("survivesLoss = %v", got)
		}
	})
}

// fakeDatabase answers per host; the password must never reach output.
type fakeDatabase map[string]cluster.SQLServerState

func (f fakeDatabase) ReadServer(ctx context.Context, _ *cluster.DatastoreDSN, host string) (cluster.SQLServerState, error) {
	st, ok := f[host]
	if !ok {
		<-ctx.Done()
		return st, ctx.Err()
	}
	return st, nil
}

func TestStatusRunReadsTheDatabase(t *testing.T) {
	tp := kineTopo()
	var objs []runtime.Object
	for _, n := range tp.in.Nodes {
		objs = append(objs, n)
	}
	for _, p := range append(append([]*corev1.Pod{}, tp.in.KinePods...), tp.in.APIServerPods...) {
		objs = append(objs, p)
	}
	lag := 100 * time.Millisecond
	for _, tc := range []struct {
		name   string
		output string
	}{{"json", cmdutil.OutputJSON}, {"wide", cmdutil.OutputWide}} {
		t.Run(tc.name, func(t *testing.T) {
			o, out, errOut := newTestStatusOptions(t, objs)
			o.Output = tc.output
			o.EtcdTimeout = 100 * time.Millisecond
			o.DatastoreDSN = "postgres://kubectl-dc-ro:hunter2@10.0.0.1,10.0.0.3,10.0.0.9/kine"
			o.SQLReader = fakeDatabase{
				"10.0.0.1:5432": {Replication: []cluster.ReplicationRow{{ClientAddr: "10.0.0.3", State: "streaming", ReplayLag: &lag}}},
				"10.0.0.3:5432": {InRecovery: true},
			}
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := o.Run(context.Background()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if strings.Contains(out.String()+errOut.String(), "hunter2") {
				t.Fatalf("the password was printed:\n%s\n%s", out, errOut)
			}
			if tc.output == cmdutil.OutputWide {
				if !strings.Contains(out.String(), "10.0.0.9:5432 did not answer: context deadline exceeded") || !strings.Contains(out.String(), "DATASTORE") {
					t.Errorf("wide table:\n%s", out)
				}
				return
			}
			var r Report
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if r.Datastore == nil || len(r.Datastore.Primaries) != 1 || r.Datastore.Servers[1].Datacenter != "pod-2" || !r.Datastore.Servers[1].Streaming ||
				r.Datastore.Servers[2].Role != "unreachable" || !strings.Contains(r.Datastore.DSN, "kubectl-dc-ro:xxxxx@") {
				t.Errorf("datastore = %+v", r.Datastore)
			}
		})
	}
}
