package twodc

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/status"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

func run(t *testing.T, c *cluster.Cluster, args ...string) (string, string, int) {
	t.Helper()
	return cluster.KubectlDC(t, c, 15*time.Second, append([]string{"status", "--cache-dir", t.TempDir()}, args...)...)
}

func TestTwoDatacentersNeedAWitness(t *testing.T) {
	c := cluster.Require(t)
	stdout, stderr, code := run(t, c, "-o", "json", "--fail-on-risk")
	if code != status.ExitRisk {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, status.ExitRisk, stdout, stderr)
	}
	var r status.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Etcd.Size != 3 || r.Etcd.Quorum != 2 || r.Etcd.FaultTolerance != 1 {
		t.Errorf("etcd size %d quorum %d tolerance %d, want 3 2 1", r.Etcd.Size, r.Etcd.Quorum, r.Etcd.FaultTolerance)
	}
	verdicts := map[string]bool{}
	for _, d := range r.Datacenters {
		if d.SurvivesLoss != nil {
			verdicts[d.Name] = *d.SurvivesLoss
		}
	}
	if verdicts["pod-1"] || !verdicts["pod-2"] {
		t.Errorf("survivesLoss = %v, want pod-1 false (2 of 3 voters), pod-2 true", verdicts)
	}
	var witness *status.Finding
	for i, f := range r.Findings {
		if strings.Contains(f.Message, "spans two datacenters (pod-1, pod-2)") {
			witness = &r.Findings[i]
		}
	}
	if witness == nil || witness.Severity != "critical" || !strings.Contains(witness.Remedy, "third, witness site") {
		t.Fatalf("findings = %+v, want the witness finding", r.Findings)
	}

	table, _, code := run(t, c)
	if code != 0 || !strings.Contains(table, "[critical] the cluster spans two datacenters (pod-1, pod-2)") || !strings.Contains(table, "fix: add a third, witness site") {
		t.Errorf("exit %d, table:\n%s", code, table)
	}
}
