// Package status drives the built `kubectl dc status` against the local
// control plane with five etcd voters placed 2/2/1 over three datacenters,
// and breaks etcd under it.
package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/plugin/status"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/e2e/reports"
)

func TestMain(m *testing.M) {
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.MacStadium5()}))
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// kubectlDC runs `kubectl-dc status args...` against c with a cache dir
// shared by the test, bounded by a 15 s deadline.
func kubectlDC(t *testing.T, c *cluster.Cluster, cacheDir string, args ...string) result {
	t.Helper()
	bin, err := cluster.BuildBinary("./cmd/kubectl-dc")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	full := append([]string{"status", "--kubeconfig", c.Kubeconfig(), "--cache-dir", cacheDir}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	began := time.Now()
	err = cmd.Run()
	t.Logf("kubectl dc status %s: %s", strings.Join(args, " "), time.Since(began).Round(time.Millisecond))
	r := result{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("kubectl dc %s did not finish within 15s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

func statusJSON(t *testing.T, c *cluster.Cluster, cacheDir string, wantCode int, args ...string) *status.Report {
	t.Helper()
	return reports.Status(t, c, wantCode, append([]string{"--cache-dir", cacheDir}, args...)...)
}

func hasFinding(r *status.Report, substr string) bool { return reports.Finding(r, substr) != nil }

// waitAllHealthy waits until status sees every member healthy again.
func waitAllHealthy(t *testing.T, c *cluster.Cluster, cacheDir string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 90*time.Second, true, func(context.Context) (bool, error) {
		r := kubectlDC(t, c, cacheDir, "-o", "json")
		var rep status.Report
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil {
			return false, nil
		}
		return rep.Etcd.Healthy == rep.Etcd.Size && rep.Etcd.Size == 5 && rep.APIAvailable, nil
	})
	if err != nil {
		t.Fatalf("etcd did not come back healthy: %v", err)
	}
}

func TestStatus(t *testing.T) {
	c := cluster.Require(t)
	cache := t.TempDir()

	t.Run("healthy 2/2/1", func(t *testing.T) {
		// The members want client certificates the operator does not
		// have here, as on a kubeadm cluster: status reads them by exec.
		r := statusJSON(t, c, cache, 0, "--fail-on-risk")
		if r.Etcd.Source != "exec" || r.Etcd.Size != 5 || r.Etcd.Healthy != 5 || r.Etcd.Quorum != 3 || r.Etcd.FaultTolerance != 2 {
			t.Errorf("etcd = source %s size %d healthy %d quorum %d tolerance %d, want exec 5 5 3 2",
				r.Etcd.Source, r.Etcd.Size, r.Etcd.Healthy, r.Etcd.Quorum, r.Etcd.FaultTolerance)
		}
		reports.AssertSurvives(t, r, map[string]string{"pod-1": "yes", "pod-2": "yes", "pod-3": "yes"})
		leaders := 0
		for _, m := range r.Etcd.Members {
			if m.Leader {
				leaders++
			}
			if m.Node != m.Name || !strings.HasPrefix(m.Name, m.Datacenter+"-") {
				t.Errorf("member %s mapped to node %q in %q", m.Name, m.Node, m.Datacenter)
			}
		}
		if leaders != 1 {
			t.Errorf("%d leaders, want 1: %+v", leaders, r.Etcd.Members)
		}
		want := map[string][3]int{"pod-1": {5, 2, 2}, "pod-2": {5, 2, 2}, "pod-3": {2, 1, 1}}
		for _, d := range r.Datacenters {
			w := want[d.Name]
			if d.Nodes.Total != w[0] || d.ControlPlane != w[1] || d.Voters != w[2] || d.HealthyVoters != w[2] {
				t.Errorf("%s: nodes %d cp %d voters %d/%d, want %v", d.Name, d.Nodes.Total, d.ControlPlane, d.HealthyVoters, d.Voters, w)
			}
			if d.APIServers < 1 {
				t.Errorf("%s: no API server mapped", d.Name)
			}
		}
		if hasFinding(r, "two datacenters") {
			t.Errorf("witness finding on three datacenters: %+v", r.Findings)
		}
	})

	t.Run("table verdict first", func(t *testing.T) {
		r := kubectlDC(t, c, cache)
		first := strings.SplitN(r.stdout, "\n", 2)[0]
		if r.code != 0 || !strings.HasPrefix(first, "etcd 5 voters, quorum 3, tolerates 2 failures; survives loss of: pod-1 yes, pod-2 yes, pod-3 yes") {
			t.Errorf("exit %d, first line %q\n%s%s", r.code, first, r.stdout, r.stderr)
		}
	})

	t.Run("what-if lose pod-2", func(t *testing.T) {
		ns := cluster.Namespace(t, c)
		ctx := context.Background()
		labels := map[string]string{"app": "pinned-worker"}
		replicas := int32(2)
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "pinned-worker", Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						NodeSelector: map[string]string{c.Label(): "pod-2"},
						Containers:   []corev1.Container{{Name: "w", Image: "worker"}},
					},
				},
			},
		}
		if _, err := c.Client().AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		minAvail := intstr.FromInt32(1)
		pdb := &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "pinned-worker", Namespace: ns},
			Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvail, Selector: &metav1.LabelSelector{MatchLabels: labels}},
		}
		if _, err := c.Client().PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			pods, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, nil
			}
			running := 0
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning {
					running++
				}
			}
			return running == 2, nil
		})
		if err != nil {
			t.Fatalf("pinned pods not running: %v", err)
		}

		r := statusJSON(t, c, cache, 0, "--lose", "pod-2")
		if r.WhatIf == nil || !r.WhatIf.HasQuorum || r.WhatIf.VotersLeft != 3 {
			t.Fatalf("whatIf = %+v, want quorum kept with 3 voters", r.WhatIf)
		}
		if findDCByName(r, "pod-2").Pinned != 1 {
			t.Errorf("pod-2 pinned = %d, want 1", findDCByName(r, "pod-2").Pinned)
		}
		lost := false
		for _, w := range r.WhatIf.LostWorkloads {
			if w.Namespace == ns && w.Name == "pinned-worker" && w.Kind == "Deployment" && w.Pinned == "pod-2" && w.Replicas == 2 {
				lost = true
			}
		}
		if !lost {
			t.Errorf("lostWorkloads = %+v, want %s/pinned-worker", r.WhatIf.LostWorkloads, ns)
		}
		violated := false
		for _, p := range r.WhatIf.ViolatedPDBs {
			if p.Namespace == ns && p.Name == "pinned-worker" && p.HealthyLeft == 0 && p.Required == 1 {
				violated = true
			}
		}
		if !violated {
			t.Errorf("violatedPDBs = %+v, want %s/pinned-worker", r.WhatIf.ViolatedPDBs, ns)
		}
		// Without pod-2, losing pod-1 (2 voters) or pod-3 (1 voter) is fatal.
		reports.AssertSurvives(t, r, map[string]string{"pod-1": "no", "pod-3": "no"})

		bad := kubectlDC(t, c, cache, "--lose", "pod-7")
		if bad.code != cmdutil.ExitUsage || !strings.Contains(bad.stderr, "--lose pod-7: no node has topology.kubernetes.io/zone=pod-7; did you mean pod-1? known datacenters: pod-1, pod-2, pod-3") {
			t.Errorf("--lose pod-7: exit %d, stderr %q", bad.code, bad.stderr)
		}
	})

	t.Run("unlabeled node", func(t *testing.T) {
		ctx := context.Background()
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "stray-node"}}
		if _, err := c.Client().CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = c.Client().CoreV1().Nodes().Delete(context.Background(), "stray-node", metav1.DeleteOptions{})
		})
		r := statusJSON(t, c, cache, 0)
		u := findDCByName(r, "(unlabeled)")
		if u == nil || u.Nodes.Total != 1 {
			t.Errorf("unlabeled row = %+v", u)
		}
		if !hasFinding(r, "1 nodes have no topology.kubernetes.io/zone label (stray-node)") {
			t.Errorf("findings = %+v", r.Findings)
		}
	})

	t.Run("one voter down in pod-1", func(t *testing.T) {
		if err := c.StopMember("pod-1-cp-1"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.StartMember("pod-1-cp-1"); err != nil {
				t.Errorf("restart pod-1-cp-1: %v", err)
			}
			waitAllHealthy(t, c, cache)
		})
		r := statusJSON(t, c, cache, status.ExitRisk, "--fail-on-risk")
		if r.Etcd.Size != 5 || r.Etcd.Healthy != 4 || r.Etcd.FaultTolerance != 1 || !r.Etcd.HasQuorum {
			t.Errorf("etcd = size %d healthy %d tolerance %d quorum %v, want 5 4 1 true", r.Etcd.Size, r.Etcd.Healthy, r.Etcd.FaultTolerance, r.Etcd.HasQuorum)
		}
		reports.AssertSurvives(t, r, map[string]string{"pod-1": "yes", "pod-2": "no", "pod-3": "yes"})
		if !hasFinding(r, "losing datacenter pod-2 loses etcd quorum") {
			t.Errorf("findings = %+v", r.Findings)
		}
		for _, m := range r.Etcd.Members {
			if m.Name == "pod-1-cp-1" && m.Healthy {
				t.Errorf("stopped member reported healthy")
			}
		}
	})

	t.Run("quorum lost", func(t *testing.T) {
		stopped := []string{"pod-1-cp-1", "pod-1-cp-2", "pod-2-cp-1"}
		for _, m := range stopped {
			if err := c.StopMember(m); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, m := range stopped {
				if err := c.StartMember(m); err != nil {
					t.Errorf("restart %s: %v", m, err)
				}
			}
			waitAllHealthy(t, c, cache)
		})
		// The API cannot exec without quorum: dial the members, with the
		// health-check client certificate as an operator on a control-plane
		// node would.
		ca, cert, key := c.EtcdClientFiles()
		certs := []string{"--etcd-cacert", ca, "--etcd-cert", cert, "--etcd-key", key}
		eps := strings.Join(c.EtcdEndpoints(), ",")
		r := statusJSON(t, c, cache, status.ExitQuorumLost, append([]string{"--etcd-endpoints", eps}, certs...)...)
		if r.Etcd.Source != "direct" || r.Etcd.Size != 5 || r.Etcd.Healthy != 2 || r.Etcd.HasQuorum {
			t.Errorf("etcd = source %s size %d healthy %d quorum %v, want direct 5 2 false", r.Etcd.Source, r.Etcd.Size, r.Etcd.Healthy, r.Etcd.HasQuorum)
		}
		if !hasFinding(r, "etcd has lost quorum") {
			t.Errorf("findings = %+v", r.Findings)
		}
		// The members keep their datacenters (from the API if it still
		// answers from its cache, else from the last run's cache).
		for _, m := range r.Etcd.Members {
			if !strings.HasPrefix(m.Name, m.Datacenter+"-") {
				t.Errorf("member %s in datacenter %q", m.Name, m.Datacenter)
			}
		}
		// Without --etcd-endpoints the advertised or cached endpoints serve.
		r = statusJSON(t, c, cache, status.ExitQuorumLost, certs...)
		if r.Etcd.Healthy != 2 || r.Etcd.HasQuorum {
			t.Errorf("without --etcd-endpoints: healthy %d quorum %v", r.Etcd.Healthy, r.Etcd.HasQuorum)
		}
	})
}

func findDCByName(r *status.Report, name string) *status.DatacenterStatus {
	for i := range r.Datacenters {
		if r.Datacenters[i].Name == name {
			return &r.Datacenters[i]
		}
	}
	return nil
}
