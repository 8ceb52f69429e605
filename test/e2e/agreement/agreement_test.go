// Package agreement holds every verb of kubectl dc to one answer: for
// several cluster states, status, drain --dry-run and check --live must give
// the same datacenter label, the same voters per datacenter, the same
// quorum verdict for losing each datacenter, the same PodDisruptionBudget
// verdicts and the same violation counts. A verb that computes one of these
// on its own sooner or later disagrees, and this suite says where.
package agreement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	dcdrain "github.com/kubectl-dc/kubectl-dc/plugin/drain"
	dcstatus "github.com/kubectl-dc/kubectl-dc/plugin/status"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
	testcluster "github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

// The datacenters of MacStadium5: voters 2/2/1.
var datacenters = []string{"pod-1", "pod-2", "pod-3"}

// room is a second datacenter label every node carries with the same
// values, so that a policy and a flag can name different labels that both
// work.
const room = "example.com/room"

func TestMain(m *testing.M) {
	os.Exit(testcluster.TestMain(m, testcluster.Options{Topology: testcluster.MacStadium5()}))
}

// answers is what every verb must agree on, as each one says it.
type answers struct {
	label string
	// voters per datacenter, and the cluster's size.
	voters map[string]int
	size   int
	// learners is how many learners status sees (drain counts none).
	learners int
	// survives says, per datacenter, whether etcd keeps quorum without it.
	survives map[string]bool
	// pdbs are the PDB verdicts of losing (draining) each datacenter.
	pdbs map[string][]cluster.PDBVerdict
	// violations is the number of policy results; -1 when there is no
	// policy.
	violations int
}

func (a answers) String() string {
	b, _ := json.Marshal(map[string]any{"label": a.label, "learners": a.learners, "voters": a.voters, "size": a.size, "survives": a.survives, "pdbs": a.pdbs, "violations": a.violations})
	return string(b)
}

func run(t *testing.T, c *testcluster.Cluster, args ...string) (string, string, int) {
	t.Helper()
	return testcluster.KubectlDC(t, c, time.Minute, args...)
}

// ran is one command's answer.
type ran struct {
	out, errOut string
	code        int
}

// runAll runs the commands at once (they only read, and the state is
// settled) and returns their answers in order.
func runAll(t *testing.T, c *testcluster.Cluster, cmds [][]string) []ran {
	t.Helper()
	// Build first: the commands' deadline is for running them.
	if _, err := testcluster.BuildBinary("./cmd/kubectl-dc"); err != nil {
		t.Fatal(err)
	}
	answers := make([]ran, len(cmds))
	errs := make([]error, len(cmds))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &answers[i]
			a.out, a.errOut, a.code, errs[i] = testcluster.RunKubectlDC(ctx, c, args...)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return answers
}

// commands are what agree runs: status, status --lose and drain --dry-run
// of each datacenter, and check --cluster.
func commands(t *testing.T, extra []string) [][]string {
	// Each status its own cache: they run at once.
	status := func(args ...string) []string {
		return append(append([]string{"status", "-o", "json", "--cache-dir", t.TempDir()}, extra...), args...)
	}
	cmds := [][]string{status()}
	for _, dc := range datacenters {
		cmds = append(cmds, status("--lose", dc))
	}
	for _, dc := range datacenters {
		cmds = append(cmds, append([]string{"drain", dc, "--dry-run", "-o", "json"}, extra...))
	}
	return append(cmds, []string{"check", "--cluster", "-A", "-o", "json"})
}

// fromStatus reads the answers of kubectl dc status and of --lose per
// datacenter (for the PDB verdicts): the first 1+len(datacenters) answers.
func fromStatus(t *testing.T, reports []ran) answers {
	t.Helper()
	report := func(r ran) dcstatus.Report {
		var rep dcstatus.Report
		if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
			t.Fatalf("status: exit %d, %v\n%s\n%s", r.code, err, r.out, r.errOut)
		}
		return rep
	}
	r := report(reports[0])
	a := answers{label: r.DatacenterLabel, voters: map[string]int{}, survives: map[string]bool{}, pdbs: map[string][]cluster.PDBVerdict{}, size: r.Etcd.Size, learners: r.Etcd.Learners}
	for _, d := range r.Datacenters {
		a.voters[d.Name] = d.Voters
		if d.SurvivesLoss != nil {
			a.survives[d.Name] = *d.SurvivesLoss
		}
	}
	a.violations = -1
	if r.Violations != nil {
		a.violations = *r.Violations
	}
	for i, dc := range datacenters {
		w := report(reports[1+i]).WhatIf
		if w == nil {
			t.Fatalf("status --lose %s: no whatIf", dc)
		}
		a.pdbs[dc] = w.PDBs
	}
	return a
}

// fromDrain reads the answers of kubectl dc drain --dry-run of each
// datacenter, in the order of datacenters.
func fromDrain(t *testing.T, plans []ran) answers {
	t.Helper()
	a := answers{voters: map[string]int{}, survives: map[string]bool{}, pdbs: map[string][]cluster.PDBVerdict{}}
	for i, dc := range datacenters {
		var p dcdrain.Plan
		if err := json.Unmarshal([]byte(plans[i].out), &p); err != nil {
			t.Fatalf("drain %s --dry-run: exit %d, %v\n%s\n%s", dc, plans[i].code, err, plans[i].out, plans[i].errOut)
		}
		if a.label != "" && a.label != p.Label {
			t.Errorf("drain disagrees with itself on the label: %s, then %s", a.label, p.Label)
		}
		a.label = p.Label
		a.voters[dc] = p.Quorum.Etcd.InDatacenter
		a.size = p.Quorum.Etcd.Total
		a.survives[dc] = p.Quorum.EtcdSurvives
		a.pdbs[dc] = p.PDBs
	}
	return a
}

// checkLive is the number of results of kubectl dc check --live, -1 when
// the cluster has no policy (exit 2 saying so).
func checkLive(t *testing.T, r ran) int {
	t.Helper()
	if r.code == 2 && strings.Contains(r.errOut, "has no PlacementPolicy") {
		return -1
	}
	var rep struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("check --cluster: exit %d, %v\n%s\n%s", r.code, err, r.out, r.errOut)
	}
	return len(rep.Results)
}

// agree asserts that status, drain and check answer alike, and returns the
// answers for the state's own assertions. The commands run at once.
func agree(t *testing.T, c *testcluster.Cluster, extra ...string) answers {
	t.Helper()
	all := runAll(t, c, commands(t, extra))
	n := len(datacenters)
	s, d := fromStatus(t, all[:1+n]), fromDrain(t, all[1+n:1+2*n])
	if s.label != d.label {
		t.Errorf("label: status %s, drain %s", s.label, d.label)
	}
	if s.size != d.size {
		t.Errorf("etcd size: status %d, drain %d", s.size, d.size)
	}
	for _, dc := range datacenters {
		if s.voters[dc] != d.voters[dc] {
			t.Errorf("voters in %s: status %d, drain %d", dc, s.voters[dc], d.voters[dc])
		}
		if s.survives[dc] != d.survives[dc] {
			t.Errorf("survives the loss of %s: status %v, drain %v", dc, s.survives[dc], d.survives[dc])
		}
		if !reflect.DeepEqual(pdbKeys(s.pdbs[dc]), pdbKeys(d.pdbs[dc])) {
			t.Errorf("PDB verdicts for %s:\n status %+v\n drain  %+v", dc, s.pdbs[dc], d.pdbs[dc])
		}
	}
	if n := checkLive(t, all[len(all)-1]); n != s.violations {
		t.Errorf("violations: status %d, check --live %d results", s.violations, n)
	}
	if t.Failed() {
		t.Logf("status: %s\ndrain:  %s", s, d)
	}
	return s
}

// pdbKeys is what the verbs must agree on per PDB: the budget and the
// verdict (drain leaves DaemonSet and mirror pods in place, so Gone is not
// compared: no PDB of this suite covers such pods, and any that did would
// show here as a difference worth a look).
func pdbKeys(vs []cluster.PDBVerdict) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s/%s expected=%d desired=%d healthy=%d allowed=%d left=%d violated=%v",
			v.Namespace, v.Name, v.Expected, v.DesiredHealthy, v.CurrentHealthy, v.DisruptionsAllowed, v.HealthyLeft, v.Violated))
	}
	return out
}

// TestAgreement walks the cluster through its states and holds the verbs
// to one answer in each. The states build on each other: policies and
// workloads first, then a member down, then a datacenter powered off.
func TestAgreement(t *testing.T) {
	c := testcluster.Require(t)
	ctx := context.Background()
	ns := testcluster.Namespace(t, c)
	labelRooms(ctx, t, c)

	t.Run("healthy", func(t *testing.T) {
		a := agree(t, c)
		if a.label != testcluster.DefaultLabel || a.size != 5 || !reflect.DeepEqual(a.voters, map[string]int{"pod-1": 2, "pod-2": 2, "pod-3": 1}) {
			t.Errorf("answers = %s, want the default label and voters 2/2/1", a)
		}
		for _, dc := range datacenters {
			if !a.survives[dc] {
				t.Errorf("survives the loss of %s = false, want true (2/2/1 of 5)", dc)
			}
		}
	})

	installPolicies(ctx, t, c)
	workloads(ctx, t, c, ns)

	t.Run("policies and PDBs", func(t *testing.T) {
		a := agree(t, c)
		if a.label != room {
			t.Errorf("label = %s, want the policies' %s", a.label, room)
		}
		if a.violations == 0 {
			t.Errorf("no violations: the unpinned worker should be one")
		}
		if len(a.pdbs["pod-1"]) != 4 {
			t.Errorf("PDB verdicts for pod-1 = %+v, want the four PDBs", a.pdbs["pod-1"])
		}
		byName := map[string]cluster.PDBVerdict{}
		for _, v := range a.pdbs["pod-1"] {
			byName[v.Name] = v
		}
		// minAvailable 50% of 3 expected: 2 desired; all 3 run in pod-1.
		if v := byName["half"]; v.DesiredHealthy != 2 || !v.Violated {
			t.Errorf("PDB half = %+v, want desiredHealthy 2 and violated", v)
		}
		// Neither field: the disruption controller asks for nothing.
		if v := byName["neither"]; v.DesiredHealthy != 0 || v.Violated {
			t.Errorf("PDB neither = %+v, want desiredHealthy 0, not violated", v)
		}
		// 2 of 4 pods can never be healthy (no node fits them).
		if v := byName["unhealthy"]; v.CurrentHealthy != 2 {
			t.Errorf("PDB unhealthy = %+v, want 2 healthy", v)
		}
	})

	t.Run("flag overrides the policies' label", func(t *testing.T) {
		a := agree(t, c, "--datacenter-label", testcluster.DefaultLabel)
		if a.label != testcluster.DefaultLabel {
			t.Errorf("label = %s, want the flag's %s", a.label, testcluster.DefaultLabel)
		}
		_, errOut, _ := run(t, c, "status", "--datacenter-label", testcluster.DefaultLabel, "--cache-dir", t.TempDir())
		if !strings.Contains(errOut, "--datacenter-label "+testcluster.DefaultLabel+" overrides PlacementPolicy/") {
			t.Errorf("status does not say the flag overrides the policies:\n%s", errOut)
		}
	})

	t.Run("a learner", func(t *testing.T) {
		id := addLearner(ctx, t, c)
		a := agree(t, c)
		// A learner votes in no datacenter: still 2/2/1 of 5.
		if a.learners != 1 || a.size != 5 || !reflect.DeepEqual(a.voters, map[string]int{"pod-1": 2, "pod-2": 2, "pod-3": 1}) {
			t.Errorf("answers with learner %x = %s, want 1 learner and 5 voters 2/2/1", id, a)
		}
	})

	t.Run("a member down", func(t *testing.T) {
		if err := c.StopMember("pod-1-cp-1"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := c.StartMember("pod-1-cp-1"); err != nil {
				t.Fatal(err)
			}
		}()
		a := agree(t, c)
		// 4 of 5 healthy: losing pod-2 leaves 2 of the 3 needed.
		if a.survives["pod-2"] || !a.survives["pod-3"] {
			t.Errorf("survives = %v, want pod-2 false (2 healthy left of 5), pod-3 true", a.survives)
		}
	})

	t.Run("a datacenter powered off", func(t *testing.T) {
		if err := c.DatacenterDown(ctx, "pod-3"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := c.DatacenterUp(ctx, "pod-3"); err != nil {
				t.Fatal(err)
			}
		}()
		waitNodesNotReady(ctx, t, c, "pod-3")
		a := agree(t, c)
		// 4 of 5 healthy without pod-3: losing pod-1 or pod-2 as well
		// leaves 2, below the quorum of 3.
		if a.survives["pod-1"] || a.survives["pod-2"] {
			t.Errorf("survives = %v, want pod-1 and pod-2 false with pod-3 down", a.survives)
		}
	})
}

// addLearner adds a real learner to etcd's member list (a member added
// with --learner that never starts, as a member being added looks until
// it catches up) and removes it when the test ends.
func addLearner(ctx context.Context, t *testing.T, c *testcluster.Cluster) uint64 {
	t.Helper()
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := cli.MemberAddAsLearner(cctx, []string{"https://127.0.0.1:1"})
	if err != nil {
		t.Fatalf("member add --learner: %v", err)
	}
	id := resp.Member.ID
	t.Cleanup(func() {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cli.MemberRemove(rctx, id); err != nil {
			t.Errorf("member remove %x: %v", id, err)
		}
	})
	return id
}

// labelRooms gives every node the second datacenter label, with the same
// values as the first.
func labelRooms(ctx context.Context, t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	for _, dc := range datacenters {
		for _, n := range c.Nodes(dc) {
			patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, room, dc)
			if _, err := c.Client().CoreV1().Nodes().Patch(ctx, n, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// installPolicies installs the CRD and a policy on the second label:
// workers pinned (the unpinned one is a violation) and etcd spread.
func installPolicies(ctx context.Context, t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(`apiVersion: placement.kubectl-dc.io/v1alpha1
kind: PlacementPolicy
metadata:
  name: rooms
spec:
  datacenterLabel: `+room+`
  datacenters: [pod-1, pod-2, pod-3]
  pinned:
  - name: workers
    selector: {matchLabels: {app: worker}}
    action: Audit
  spread:
  - name: etcd
    pods:
      namespaces: [kube-system]
      selector: {matchLabels: {component: etcd}}
    action: Audit
`), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if err := webhooktest.ApplyFiles(ctx, c.RESTConfig(), filepath.Join(root, "manifests", "crd", "placement.kubectl-dc.io_placementpolicies.yaml"), p); err != nil {
		t.Fatal(err)
	}
}

// workloads creates, in pod-1: a pinned worker (3 pods), an unpinned worker
// (a violation), and four PDBs: minAvailable 50%, maxUnavailable 1,
// neither field, and one over pods half of which can never be healthy.
func workloads(ctx context.Context, t *testing.T, c *testcluster.Cluster, ns string) {
	t.Helper()
	cs := c.Client()
	create := func(d *appsv1.Deployment) {
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create(testutil.Deployment(ns, "half").Labels("app", "half").NodeSelector(room, "pod-1").Replicas(3).Deployment())
	create(testutil.Deployment(ns, "one").Labels("app", "one").NodeSelector(room, "pod-1").Replicas(2).Deployment())
	create(testutil.Deployment(ns, "neither").Labels("app", "neither").NodeSelector(room, "pod-1").Replicas(2).Deployment())
	create(testutil.Deployment(ns, "fits").Labels("app", "flaky", "part", "fits").NodeSelector(room, "pod-1").Replicas(2).Deployment())
	create(testutil.Deployment(ns, "nowhere").Labels("app", "flaky", "part", "nowhere").NodeSelector(room, "pod-9").Replicas(2).Deployment())
	create(testutil.Deployment(ns, "worker-pod-1").Labels("app", "worker").NodeSelector(room, "pod-1").Replicas(1).Deployment())
	create(testutil.Deployment(ns, "worker-anywhere").Labels("app", "worker").Replicas(1).Deployment())
	for _, p := range []*testutil.PDBBuilder{
		testutil.PDB(ns, "half").MatchLabels("app", "half").MinAvailable("50%"),
		testutil.PDB(ns, "one").MatchLabels("app", "one").MaxUnavailable("1"),
		testutil.PDB(ns, "neither").MatchLabels("app", "neither"),
		testutil.PDB(ns, "unhealthy").MatchLabels("app", "flaky").MinAvailable("3"),
	} {
		if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, p.Obj(), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the pods that can run, and for the disruption controller to
	// count them, so every verb reads the same settled state.
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ready := 0
		for i := range pods.Items {
			for _, cond := range pods.Items[i].Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		pdbs, err := cs.PolicyV1().PodDisruptionBudgets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		synced := 0
		for i := range pdbs.Items {
			if pdbs.Items[i].Status.ObservedGeneration == pdbs.Items[i].Generation && pdbs.Items[i].Status.CurrentHealthy > 0 {
				synced++
			}
		}
		return ready == 11 && len(pods.Items) == 13 && synced == 4, nil
	})
	if err != nil {
		t.Fatalf("workloads did not settle: %v", err)
	}
}

// waitNodesNotReady waits until every node of dc is seen NotReady.
func waitNodesNotReady(ctx context.Context, t *testing.T, c *testcluster.Cluster, dc string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range c.Nodes(dc) {
			n, err := c.Client().CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("nodes of %s still Ready: %v", dc, err)
	}
}
