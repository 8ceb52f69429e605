// Package kine runs `kubectl dc status` on the two-datacenter design that
// replaces etcd by kine over SQL: API servers on kine, kine writing to a
// PostgreSQL primary in pod-1 with a streaming replica in pod-2. Status must
// say "kine", where the primary and the replica are and the lag; that losing
// pod-2 keeps the API and losing pod-1 needs a failover; a split brain when
// both servers accept writes (exit 4); and, once pod-1 is down and the
// replica promoted, that the primary moved. It reads the database with the
// read-only role of docs/database.md, never prints its password and never
// waits on a database that does not answer.
package kine

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/status"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/e2e/reports"
)

func TestMain(m *testing.M) {
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.KinePostgres()}))
}

// statusJSON runs status -o json with the database's DSN and args, wants
// exit code want, and checks the password appears nowhere.
func statusJSON(t *testing.T, c *cluster.Cluster, cache string, want int, args ...string) *status.Report {
	t.Helper()
	r, stdout, stderr := reports.RunStatus(t, c, want, append([]string{"--cache-dir", cache, "--datastore-dsn", c.DatastoreDSN()}, args...)...)
	if strings.Contains(stdout+stderr, c.DatabasePassword) {
		t.Fatalf("the database password was printed:\n%s\n%s", stdout, stderr)
	}
	return r
}

func server(r *status.Report, dc string) *status.DatabaseServerReport {
	if r.Datastore == nil {
		return nil
	}
	for i := range r.Datastore.Servers {
		if r.Datastore.Servers[i].Datacenter == dc {
			return &r.Datastore.Servers[i]
		}
	}
	return nil
}

// The subtests run in order, each on what the one before left.
func TestKineOverPostgres(t *testing.T) {
	c := cluster.Require(t)
	cache := t.TempDir()
	dbs := c.DatabaseList()
	if len(dbs) != 2 || dbs[0].Datacenter != "pod-1" || !dbs[0].Primary || dbs[1].Datacenter != "pod-2" {
		t.Fatalf("databases = %+v, want a primary in pod-1 and a replica in pod-2", dbs)
	}

	t.Run("primary in pod-1, replica streaming in pod-2", func(t *testing.T) {
		var r *status.Report
		// The primary measures a replay lag once the replica has replayed
		// a write; the API servers write every few seconds (leases).
		deadline := time.Now().Add(time.Minute)
		for {
			r = statusJSON(t, c, cache, 0)
			if s := server(r, "pod-2"); s != nil && s.Streaming && s.ReplayLagSeconds != nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(2 * time.Second)
		}
		if r.Datastore == nil || r.Datastore.Kind != "kine" || r.Etcd.Source != "kine" || r.Etcd.Size != 0 {
			t.Fatalf("datastore = %+v, etcd = %+v; want kine and no etcd arithmetic", r.Datastore, r.Etcd)
		}
		if by := strings.Join(r.Datastore.DetectedBy, ","); by != "etcd API,pods" {
			t.Errorf("detected by %q, want the etcd API and the kine pods", by)
		}
		p, rep := server(r, "pod-1"), server(r, "pod-2")
		if p == nil || p.Role != "primary" || rep == nil || rep.Role != "replica" || !rep.Streaming || rep.ReplayLagSeconds == nil {
			t.Fatalf("servers = %+v, want the primary in pod-1 and a streaming replica with a lag in pod-2", r.Datastore.Servers)
		}
		if reports.Survives(r)["pod-1"] != "no" || reports.Survives(r)["pod-2"] != "yes" {
			t.Errorf("survivesLoss pod-1 %s, pod-2 %s; want no (the primary's) and yes", reports.Survives(r)["pod-1"], reports.Survives(r)["pod-2"])
		}
		if f := reports.Finding(r, "losing datacenter pod-1, which holds the database primary"); f == nil || !strings.Contains(f.Message, "promote "+rep.Address) {
			t.Errorf("findings = %+v, want the failover pod-1's loss needs", r.Findings)
		}
		if !strings.Contains(r.Datastore.DSN, "xxxxx") {
			t.Errorf("dsn = %q, want the password replaced", r.Datastore.DSN)
		}
		table, _, _ := cluster.KubectlDC(t, c, 30*time.Second, "status", "--cache-dir", cache, "--datastore-dsn", c.DatastoreDSN())
		if !strings.HasPrefix(table, "datastore: kine (2 instances), no etcd quorum; primary "+p.Address+" in pod-1; replica "+rep.Address+" in pod-2") {
			t.Errorf("table:\n%s", table)
		}
	})

	t.Run("what if", func(t *testing.T) {
		w := statusJSON(t, c, cache, 0, "--lose", "pod-2").WhatIf
		if w == nil || w.Datastore == nil || !w.Datastore.APIKept || !w.Datastore.Writable || w.Datastore.FailoverNeeded {
			t.Errorf("--lose pod-2: %+v, want the API kept", w)
		}
		w = statusJSON(t, c, cache, 0, "--lose", "pod-1").WhatIf
		if w == nil || w.Datastore == nil || w.Datastore.APIKept || !w.Datastore.FailoverNeeded || w.Datastore.Promote != c.DatabaseList()[1].Address {
			t.Errorf("--lose pod-1: %+v, want a failover to pod-2's replica", w)
		}
		statusJSON(t, c, cache, status.ExitRisk, "--lose", "pod-1", "--fail-on-risk")
	})

	// drain judges the database as status does: pod-1 holds the only
	// primary, so draining it refuses until a failover; pod-2 may go.
	t.Run("drain refuses the primary's datacenter", func(t *testing.T) {
		out, errOut, code := cluster.KubectlDC(t, c, 30*time.Second, "drain", "pod-1", "--dry-run", "--datastore-dsn", c.DatastoreDSN())
		promote := c.DatabaseList()[1].Address
		if code != 3 || !strings.Contains(out+errOut, "database primary "+c.DatabaseList()[0].Address+" is in pod-1") || !strings.Contains(out+errOut, "promote "+promote) {
			t.Errorf("drain pod-1 --dry-run: exit %d, want 3 naming the primary and the replica to promote\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if strings.Contains(out+errOut, c.DatabasePassword) {
			t.Fatalf("the database password was printed:\n%s\n%s", out, errOut)
		}
		out, errOut, code = cluster.KubectlDC(t, c, 30*time.Second, "drain", "pod-2", "--dry-run", "--datastore-dsn", c.DatastoreDSN())
		if code != 0 || !strings.Contains(out, "stays writable") {
			t.Errorf("drain pod-2 --dry-run: exit %d, want 0 with the datastore writable\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	t.Run("a database that never answers costs the deadline, no more", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = l.Close() }()
		go func() {
			// Accept and say nothing, as a server behind a dead link.
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				defer func() { _ = conn.Close() }()
			}
		}()
		dsn := strings.Replace(c.DatastoreDSN(), "/kine?", ","+l.Addr().String()+"/kine?", 1)
		began := time.Now()
		stdout, stderr, code := cluster.KubectlDC(t, c, 30*time.Second, "status", "--cache-dir", cache, "-o", "wide", "--etcd-timeout", "1s", "--datastore-dsn", dsn)
		t.Logf("status with a silent database server and --etcd-timeout 1s took %s", time.Since(began).Round(10*time.Millisecond))
		if code != 0 || !strings.Contains(stdout, l.Addr().String()+" did not answer") {
			t.Errorf("exit %d, want 0 with the silent server unreachable:\n%s\n%s", code, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, c.DatabasePassword) {
			t.Errorf("the password was printed:\n%s\n%s", stdout, stderr)
		}
	})

	t.Run("split brain: the replica promoted while the primary runs", func(t *testing.T) {
		if err := c.PromoteReplica(t.Context(), "pod-2", false); err != nil {
			t.Fatal(err)
		}
		r := statusJSON(t, c, cache, status.ExitQuorumLost)
		f := reports.Finding(r, "SPLIT BRAIN: 2 database servers accept writes")
		if f == nil || f.Severity != "critical" || !strings.Contains(f.Remedy, "witness") {
			t.Fatalf("findings = %+v, want a critical split brain", r.Findings)
		}
		if len(r.Datastore.Primaries) != 2 {
			t.Errorf("primaries = %v", r.Datastore.Primaries)
		}
	})

	t.Run("pod-1 down, kine on pod-2's primary: the primary moved", func(t *testing.T) {
		if err := c.DatacenterDown(t.Context(), "pod-1"); err != nil {
			t.Fatal(err)
		}
		// The promotion script's second half: kine writes to the new
		// primary.
		if err := c.PromoteReplica(t.Context(), "pod-2", true); err != nil {
			t.Fatal(err)
		}
		r := statusJSON(t, c, cache, 0)
		p, old := server(r, "pod-2"), server(r, "pod-1")
		if p == nil || p.Role != "primary" || old == nil || old.Role != "unreachable" {
			t.Fatalf("servers = %+v, want the primary in pod-2 and pod-1's server unreachable", r.Datastore.Servers)
		}
		if f := reports.Finding(r, "has no streaming replica"); f == nil {
			t.Errorf("findings = %+v, want pod-2's primary without a replica", r.Findings)
		}
		if f := reports.Finding(r, "datacenter pod-1 is DOWN"); f == nil || !strings.Contains(f.Message, "datastore: kine") {
			t.Errorf("findings = %+v, want pod-1 down", r.Findings)
		}
	})

	// pod-1 powers on with its old primary, which nothing fenced: two
	// servers accept writes. status says split brain; drain cannot judge
	// the datastore and says why, refusing nothing for it.
	t.Run("pod-1 back after the promotion: its old primary makes a split brain", func(t *testing.T) {
		if err := c.DatacenterUp(t.Context(), "pod-1"); err != nil {
			t.Fatal(err)
		}
		r := statusJSON(t, c, cache, status.ExitQuorumLost)
		if f := reports.Finding(r, "SPLIT BRAIN: 2 database servers accept writes"); f == nil || len(r.Datastore.Primaries) != 2 {
			t.Fatalf("primaries %v, findings %+v; want a split brain of pod-1's old and pod-2's new primary", r.Datastore.Primaries, r.Findings)
		}
		// pod-2: pod-1 holds the control-plane endpoint (its API server),
		// which would refuse the drain for a reason of its own.
		out, errOut, code := cluster.KubectlDC(t, c, 30*time.Second, "drain", "pod-2", "--dry-run", "--datastore-dsn", c.DatastoreDSN())
		if code != 0 || !strings.Contains(out, "2 primaries, a split brain") {
			t.Errorf("drain pod-2 --dry-run during the split brain: exit %d, want 0 saying the datastore cannot be judged\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})
}
