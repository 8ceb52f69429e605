// Package twodc drives `kubectl dc status` and `kubectl dc drain` on a
// cluster spread over only two datacenters, etcd voters placed 2/1: it can
// never survive the loss of either (status says so and asks for a
// witness), and the drain refuses to power off the one holding two voters
// unless told otherwise.
package twodc

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	dcdrain "github.com/kubectl-dc/kubectl-dc/plugin/drain"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

func TestMain(m *testing.M) {
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.Topology{Datacenters: []cluster.Datacenter{
		{Name: "pod-1", Workers: 1, ControlPlanes: 2, APIServers: 1},
		{Name: "pod-2", Workers: 1, ControlPlanes: 1, APIServers: 1},
	}}}))
}

func drain(t *testing.T, c *cluster.Cluster, args ...string) (dcdrain.Plan, string, int) {
	t.Helper()
	out, errOut, code := cluster.KubectlDC(t, c, 2*time.Minute, append([]string{"drain"}, args...)...)
	var plan dcdrain.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("drain %v: plan JSON: %v\n%s\n%s", args, err, out, errOut)
	}
	return plan, errOut, code
}

func TestQuorumLossIsRefused(t *testing.T) {
	c := cluster.Require(t)
	plan, errOut, code := drain(t, c, "pod-1", "--dry-run", "-o", "json")
	if code != 3 || !plan.Refused || plan.Quorum.Survives {
		t.Fatalf("drain pod-1 (2 of 3 voters): exit %d, refused=%v, survives=%v; want exit 3, refused\n%s", code, plan.Refused, plan.Quorum.Survives, errOut)
	}
	arithmetic := strings.Join(plan.Reasons, "\n")
	for _, want := range []string{"2 of 3 etcd voters", "quorum is 2"} {
		if !strings.Contains(arithmetic, want) {
			t.Errorf("refusal does not show the arithmetic %q:\n%s", want, arithmetic)
		}
	}
	if plan.Quorum.Etcd.InDatacenter != 2 || plan.Quorum.Etcd.Remaining != 1 || plan.Quorum.Etcd.Quorum != 2 {
		t.Errorf("quorum counts = %+v, want 2 in pod-1, 1 remaining, quorum 2", plan.Quorum.Etcd)
	}

	plan, errOut, code = drain(t, c, "pod-1", "--dry-run", "--allow-quorum-loss", "-o", "json")
	if code != 0 || plan.Refused {
		t.Errorf("with --allow-quorum-loss: exit %d, refused=%v; want 0\n%s", code, plan.Refused, errOut)
	}

	// pod-2 holds one voter of three: powering it off keeps quorum.
	plan, errOut, code = drain(t, c, "pod-2", "--dry-run", "-o", "json")
	if code != 0 || plan.Refused || !plan.Quorum.Survives {
		t.Errorf("drain pod-2 (1 of 3 voters): exit %d, refused=%v, survives=%v; want accepted\n%s", code, plan.Refused, plan.Quorum.Survives, errOut)
	}
}
