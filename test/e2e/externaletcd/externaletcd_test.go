// Package externaletcd runs `kubectl dc status` on a cluster whose etcd
// members run on hosts that are no Node (kubeadm's external etcd, DC/OS's
// etcd tasks): one per datacenter on an address of that datacenter, no etcd
// pods, the API servers still mirror pods on the control-plane nodes. Placed
// with --etcd-datacenters, the members give the verdicts the same placement
// gives stacked (test/e2e/status); a member nothing places is said to be in
// no known datacenter.
package externaletcd

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/status"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/e2e/reports"
)

func TestMain(m *testing.M) {
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.ExternalEtcd()}))
}

// statusJSON runs status -o json with args and wants exit code want.
func statusJSON(t *testing.T, c *cluster.Cluster, want int, args ...string) *status.Report {
	t.Helper()
	return reports.Status(t, c, want, append([]string{"--cache-dir", t.TempDir()}, args...)...)
}

func TestExternalEtcd(t *testing.T) {
	c := cluster.Require(t)
	ca, cert, key := c.EtcdClientFiles()
	certs := []string{"--etcd-cacert", ca, "--etcd-cert", cert, "--etcd-key", key}

	// The members' hosts: pod-1's and pod-2's placed by name, pod-3's by
	// the host of its client URL.
	var place []string
	var pod3 string
	for _, m := range c.Members() {
		if m.Node != "" {
			t.Fatalf("member %s runs on node %s: the topology's etcd must be external", m.Name, m.Node)
		}
		u, err := url.Parse(m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		if m.Datacenter == "pod-3" {
			pod3 = m.Name
			place = append(place, u.Hostname()+"="+m.Datacenter)
			continue
		}
		place = append(place, m.Name+"="+m.Datacenter)
	}
	all := strings.Join(place, ",")

	t.Run("no etcd pods: the API servers' etcd servers are read, the members placed nowhere", func(t *testing.T) {
		r := statusJSON(t, c, 0, certs...)
		if r.Etcd.Source != "direct" || r.Etcd.Size != 3 || r.Etcd.Healthy != 3 {
			t.Fatalf("etcd = source %s, %d voters, %d healthy; want direct 3 3\nnotes: %v", r.Etcd.Source, r.Etcd.Size, r.Etcd.Healthy, r.Etcd.Notes)
		}
		reports.AssertSurvives(t, r, map[string]string{"pod-1": "unknown", "pod-2": "unknown", "pod-3": "unknown"})
		for _, m := range r.Etcd.Members {
			if m.Datacenter != "" || m.Node != "" {
				t.Errorf("member %s placed in %q on %q with nothing to place it", m.Name, m.Datacenter, m.Node)
			}
			if f := reports.Finding(r, "etcd member "+m.Name+" matches no node"); f == nil || !strings.Contains(f.Message, "datacenter is unknown") {
				t.Errorf("no unknown-datacenter finding for %s: %+v", m.Name, r.Findings)
			}
		}
	})

	t.Run("placed by --etcd-datacenters: the stacked verdicts", func(t *testing.T) {
		r := statusJSON(t, c, 0, append([]string{"--fail-on-risk", "--etcd-datacenters", all}, certs...)...)
		// test/e2e/status: three voters 1/1/1 survive the loss of each.
		reports.AssertSurvives(t, r, map[string]string{"pod-1": "yes", "pod-2": "yes", "pod-3": "yes"})
		for _, m := range r.Etcd.Members {
			if m.DatacenterFrom != "etcd-datacenters" || !strings.HasPrefix(m.Name, m.Datacenter+"-") {
				t.Errorf("member %s in %q from %q, want its own datacenter from --etcd-datacenters", m.Name, m.Datacenter, m.DatacenterFrom)
			}
		}
		for _, d := range r.Datacenters {
			if d.Voters != 1 || d.HealthyVoters != 1 {
				t.Errorf("%s: %d/%d voters, want 1/1", d.Name, d.HealthyVoters, d.Voters)
			}
		}
		if f := reports.Finding(r, "datacenter is unknown"); f != nil {
			t.Errorf("every member is placed, yet: %s", f.Message)
		}

		w := statusJSON(t, c, 0, append([]string{"--lose", "pod-1", "--etcd-datacenters", all}, certs...)...).WhatIf
		if w == nil || !w.HasQuorum || w.VotersLeft != 2 {
			t.Errorf("--lose pod-1: %+v, want quorum kept with 2 voters", w)
		}
		w = statusJSON(t, c, 0, append([]string{"--lose", "pod-1,pod-2", "--etcd-datacenters", all}, certs...)...).WhatIf
		if w == nil || w.HasQuorum || w.VotersLeft != 1 {
			t.Errorf("--lose pod-1,pod-2: %+v, want quorum lost with 1 voter", w)
		}
	})

	t.Run("one member placed nowhere", func(t *testing.T) {
		r := statusJSON(t, c, status.ExitRisk, append([]string{"--fail-on-risk", "--etcd-datacenters", strings.Join(place[:2], ",")}, certs...)...)
		reports.AssertSurvives(t, r, map[string]string{"pod-1": "unknown", "pod-2": "unknown", "pod-3": "yes"})
		f := reports.Finding(r, "etcd member "+pod3+" matches no node")
		if f == nil || !strings.Contains(f.Message, "pod-1 or pod-2") || !strings.Contains(f.Remedy, "--etcd-datacenters "+pod3+"=") {
			t.Errorf("findings = %+v, want %s reported in no known datacenter", r.Findings, pod3)
		}
		table, _, _ := cluster.KubectlDC(t, c, 30*time.Second, append([]string{"status", "--cache-dir", t.TempDir(), "--etcd-datacenters", strings.Join(place[:2], ",")}, certs...)...)
		if !strings.Contains(table, "1 in no known datacenter") || !strings.Contains(table, "pod-1 unknown") {
			t.Errorf("table does not say the member is in no known datacenter:\n%s", table)
		}
	})

	t.Run("a member down: the stacked verdicts", func(t *testing.T) {
		name := c.Members()[0].Name
		if err := c.StopMember(name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.StartMember(name); err != nil {
				t.Errorf("restart %s: %v", name, err)
			}
		})
		r := statusJSON(t, c, status.ExitRisk, append([]string{"--fail-on-risk", "--etcd-datacenters", all}, certs...)...)
		if r.Etcd.Healthy != 2 || !r.Etcd.HasQuorum {
			t.Errorf("etcd = %d healthy, quorum %v; want 2 and quorum", r.Etcd.Healthy, r.Etcd.HasQuorum)
		}
		reports.AssertSurvives(t, r, map[string]string{"pod-1": "yes", "pod-2": "no", "pod-3": "no"})
		if f := reports.Finding(r, "losing datacenter pod-2 loses etcd quorum"); f == nil {
			t.Errorf("findings = %+v", r.Findings)
		}
	})

	t.Run("placed by a PlacementPolicy's spec.etcdMembers", func(t *testing.T) {
		dir, err := cluster.ManifestsDir()
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("kubectl", "--kubeconfig", c.Kubeconfig(), "apply", "--server-side", "-f", filepath.Join(dir, "crd")).CombinedOutput(); err != nil {
			t.Fatalf("kubectl apply the CRD: %v\n%s", err, out)
		}
		members := ""
		for _, kv := range place {
			k, v, _ := strings.Cut(kv, "=")
			members += fmt.Sprintf("    %q: %s\n", k, v)
		}
		policy := "apiVersion: placement.kubectl-dc.io/v1alpha1\nkind: PlacementPolicy\nmetadata: {name: external-etcd}\nspec:\n  datacenters: [pod-1, pod-2, pod-3]\n  etcdMembers:\n" + members
		cmd := exec.Command("kubectl", "--kubeconfig", c.Kubeconfig(), "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(policy)
		// The CRD is served a moment after it is created.
		var out []byte
		for i := 0; i < 50; i++ {
			if out, err = cmd.CombinedOutput(); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
			cmd = exec.Command("kubectl", "--kubeconfig", c.Kubeconfig(), "apply", "-f", "-")
			cmd.Stdin = strings.NewReader(policy)
		}
		if err != nil {
			t.Fatalf("kubectl apply the policy: %v\n%s", err, out)
		}
		t.Cleanup(func() {
			_ = exec.Command("kubectl", "--kubeconfig", c.Kubeconfig(), "delete", "placementpolicy", "external-etcd").Run()
		})
		r := statusJSON(t, c, 0, certs...)
		reports.AssertSurvives(t, r, map[string]string{"pod-1": "yes", "pod-2": "yes", "pod-3": "yes"})
		for _, m := range r.Etcd.Members {
			if m.DatacenterFrom != "PlacementPolicy/external-etcd" || !strings.HasPrefix(m.Name, m.Datacenter+"-") {
				t.Errorf("member %s in %q from %q, want its own datacenter from the policy", m.Name, m.Datacenter, m.DatacenterFrom)
			}
		}
	})

	t.Run("no certificates: unreachable, said at once", func(t *testing.T) {
		r := statusJSON(t, c, status.ExitQuorumLost)
		if r.Etcd.Source != "unknown" || !strings.Contains(strings.Join(r.Etcd.Notes, "\n"), "--etcd-servers") {
			t.Errorf("etcd = source %s, notes %v; want unknown, saying the API servers' --etcd-servers were dialled", r.Etcd.Source, r.Etcd.Notes)
		}
	})
}
