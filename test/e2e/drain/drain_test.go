// Package drain drives the built `kubectl dc drain` and `uncordon` against
// the local MacStadium control plane: the plan, a real parallel drain of
// pod-2, a pinned workload whose PDB blocks, and an interrupted drain that a
// second run finishes.
package drain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-dc/kubectl-dc/plugin/drain"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

func TestMain(m *testing.M) {
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.MacStadium()}))
}

var kubectlDC string

func binary(t *testing.T) string {
	t.Helper()
	if kubectlDC == "" {
		bin, err := cluster.BuildBinary("./cmd/kubectl-dc")
		if err != nil {
			t.Fatal(err)
		}
		kubectlDC = bin
	}
	return kubectlDC
}

// run runs kubectl-dc and returns stdout, stderr and the exit code.
func run(t *testing.T, c *cluster.Cluster, args ...string) (string, string, int) {
	t.Helper()
	return cluster.KubectlDC(t, c, 3*time.Minute, args...)
}

func labels(app string) map[string]string { return map[string]string{"app": app} }

func podSpec(nodeSelector map[string]string) corev1.PodSpec {
	zero := int64(0)
	return corev1.PodSpec{
		NodeSelector:                  nodeSelector,
		TerminationGracePeriodSeconds: &zero,
		Containers:                    []corev1.Container{{Name: "app", Image: "app"}},
	}
}

func deployment(ns, name string, replicas int32, nodeSelector map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels(name)},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels(name)},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels(name)}, Spec: podSpec(nodeSelector)},
		},
	}
}

func daemonSet(ns, name string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels(name)},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels(name)}, Spec: podSpec(nil)},
		},
	}
}

// create makes the objects and waits until want pods of ns run.
func create(t *testing.T, c *cluster.Cluster, ns string, want int, objs ...any) {
	t.Helper()
	ctx := context.Background()
	cs := c.Client()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.Deployment:
			_, err = cs.AppsV1().Deployments(ns).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.DaemonSet:
			_, err = cs.AppsV1().DaemonSets(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = cs.CoreV1().Pods(ns).Create(ctx, o, metav1.CreateOptions{})
		case *policyv1.PodDisruptionBudget:
			_, err = cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("create: unexpected %T", o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	waitRunning(t, c, ns, want)
}

func waitRunning(t *testing.T, c *cluster.Cluster, ns string, want int) {
	t.Helper()
	var running int
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		running = 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return running >= want, nil
	})
	if err != nil {
		t.Fatalf("%s: %d pods running, want %d", ns, running, want)
	}
}

// podsOn returns the pods of ns on the nodes of dc, by owner kind.
func podsOn(t *testing.T, c *cluster.Cluster, ns, dc string) map[string][]string {
	t.Helper()
	list, err := c.Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodes := c.Nodes(dc)
	out := map[string][]string{}
	for _, p := range list.Items {
		if !slices.Contains(nodes, p.Spec.NodeName) || p.DeletionTimestamp != nil {
			continue
		}
		kind := "none"
		if ref := metav1.GetControllerOf(&p); ref != nil {
			kind = ref.Kind
		}
		out[kind] = append(out[kind], p.Name)
	}
	return out
}

func uncordon(t *testing.T, c *cluster.Cluster, dc string) {
	t.Helper()
	if _, errOut, code := run(t, c, "uncordon", dc, "--all"); code != 0 {
		t.Errorf("uncordon %s --all: exit %d: %s", dc, code, errOut)
	}
}

// TestDrainDatacenter drains pod-2 with a few hundred pods of several
// deployments, a DaemonSet and an unmanaged pod: the plan says what will
// happen, the drain does it, and uncordon restores scheduling.
func TestDrainDatacenter(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	t.Cleanup(func() { uncordon(t, c, "pod-2") })
	lonely := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "lonely", Namespace: ns}, Spec: podSpec(map[string]string{c.Label(): "pod-2"})}
	// 7 schedulable worker nodes; the DaemonSet runs on each of them.
	create(t, c, ns, 120+90+60+7+1,
		deployment(ns, "web", 120, nil), deployment(ns, "api", 90, nil), deployment(ns, "cache", 60, nil),
		daemonSet(ns, "agent"), lonely)
	before := podsOn(t, c, ns, "pod-2")
	if len(before["ReplicaSet"]) == 0 || len(before["DaemonSet"]) != 3 || len(before["none"]) != 1 {
		t.Fatalf("pod-2 before the drain: %d ReplicaSet pods, %d DaemonSet pods, %d unmanaged; want some, 3, 1",
			len(before["ReplicaSet"]), len(before["DaemonSet"]), len(before["none"]))
	}

	out, errOut, code := run(t, c, "drain", "pod-2", "--dry-run", "-o", "json")
	if code != 3 {
		t.Fatalf("dry run with an unmanaged pod and no --force: exit %d, want 3 (refused)\n%s\n%s", code, out, errOut)
	}
	var plan drain.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, out)
	}
	var nodes []string
	for _, n := range plan.Nodes {
		nodes = append(nodes, n.Name)
	}
	if !slices.Equal(nodes, c.Nodes("pod-2")) {
		t.Errorf("plan nodes = %v, want %v", nodes, c.Nodes("pod-2"))
	}
	// Every pod the plan evicts in the namespace is a ReplicaSet's, and
	// every ReplicaSet pod of pod-2 is evicted (the scheduler may still be
	// placing the last replicas, so compare sets, not counts taken apart).
	planned := map[string]bool{}
	for _, p := range plan.Evict {
		if p.Namespace == ns && !p.Blocked {
			planned[p.Name] = true
			if p.Name == "lonely" || strings.HasPrefix(p.Name, "agent-") {
				t.Errorf("plan evicts %s, which is not a ReplicaSet pod", p.Name)
			}
		}
	}
	for _, name := range before["ReplicaSet"] {
		if !planned[name] {
			t.Errorf("plan does not evict %s, a ReplicaSet pod in pod-2", name)
		}
	}
	skipped := map[string]int{}
	for _, p := range plan.Skipped {
		skipped[p.Reason]++
	}
	if skipped["DaemonSet"] != 3 || skipped["MirrorPod"] != 2 {
		t.Errorf("plan skips %v, want 3 DaemonSet pods and 2 mirror pods (etcd, kube-apiserver)", skipped)
	}
	unmanaged := false
	for _, b := range plan.Blockers {
		if b.Kind == "Unmanaged" && slices.Contains(b.Pods, ns+"/lonely") && strings.Contains(b.Remedy, "--force") {
			unmanaged = true
		}
	}
	if !unmanaged {
		t.Errorf("plan blockers %+v lack the unmanaged pod %s/lonely with a --force remedy", plan.Blockers, ns)
	}
	if !plan.Quorum.Survives {
		t.Errorf("pod-2 holds 1 of 3 voters; the plan says quorum does not survive: %v", plan.Quorum.Messages)
	}

	out, errOut, code = run(t, c, "drain", "pod-2", "--force", "-o", "json")
	if code != 0 {
		t.Fatalf("drain pod-2 --force: exit %d\n%s\n%s", code, out, errOut)
	}
	after := podsOn(t, c, ns, "pod-2")
	if len(after["ReplicaSet"]) != 0 || len(after["none"]) != 0 {
		t.Errorf("after the drain pod-2 still runs %v", after)
	}
	if len(after["DaemonSet"]) != 3 {
		t.Errorf("DaemonSet pods in pod-2 after the drain: %v, want 3 kept", after["DaemonSet"])
	}
	mirrors, err := c.Client().CoreV1().Pods("kube-system").Get(context.Background(), "etcd-pod-2-cp-1", metav1.GetOptions{})
	if err != nil || mirrors.DeletionTimestamp != nil {
		t.Errorf("the etcd mirror pod of pod-2 must stay: %v", err)
	}
	// The evicted replicas went to the other datacenters.
	waitRunning(t, c, ns, 120+90+60+7)
	for _, name := range c.Nodes("pod-2") {
		n, err := c.Client().CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !n.Spec.Unschedulable || n.Annotations["drain.kubectl-dc.io/cordoned-by"] == "" {
			t.Errorf("node %s after the drain: unschedulable=%v, annotations %v", name, n.Spec.Unschedulable, n.Annotations)
		}
	}

	if _, errOut, code := run(t, c, "uncordon", "pod-2"); code != 0 {
		t.Fatalf("uncordon pod-2: exit %d: %s", code, errOut)
	}
	for _, name := range c.Nodes("pod-2") {
		n, err := c.Client().CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Spec.Unschedulable || n.Annotations["drain.kubectl-dc.io/cordoned-by"] != "" {
			t.Errorf("node %s after uncordon: unschedulable=%v, annotations %v", name, n.Spec.Unschedulable, n.Annotations)
		}
	}
	// Scheduling works again: a deployment pinned to pod-2 runs there.
	create(t, c, ns, 120+90+60+7+3, deployment(ns, "back", 3, map[string]string{c.Label(): "pod-2"}))
}

// TestPinnedWorkloadWithPDBBlocks: a deployment pinned to pod-1 with
// minAvailable = replicas can never be evicted. The plan says so and the
// drain gives up at its timeout instead of hanging.
func TestPinnedWorkloadWithPDBBlocks(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	t.Cleanup(func() { uncordon(t, c, "pod-1") })
	minAvailable := intstr.FromInt32(4)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: ns},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable, Selector: &metav1.LabelSelector{MatchLabels: labels("worker")}},
	}
	create(t, c, ns, 4, deployment(ns, "worker", 4, map[string]string{c.Label(): "pod-1"}), pdb)
	// The PDB controller must have seen the pods before it can refuse.
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := c.Client().PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "worker", metav1.GetOptions{})
		return err == nil && p.Status.CurrentHealthy == 4, nil
	}); err != nil {
		t.Fatalf("PDB never saw 4 healthy pods: %v", err)
	}

	out, errOut, code := run(t, c, "drain", "pod-1", "--dry-run", "-o", "json")
	var plan drain.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan JSON (exit %d): %v\n%s\n%s", code, err, out, errOut)
	}
	pinned := false
	for _, p := range plan.Pinned {
		if strings.Contains(p.Workload, ns+"/worker") && p.BlocksForever {
			pinned = true
		}
	}
	if !pinned {
		t.Errorf("plan.pinned %+v lacks %s/worker blocking forever", plan.Pinned, ns)
	}
	pdbBlocker := false
	for _, b := range plan.Blockers {
		if b.Kind == "PodDisruptionBudget" && strings.Contains(b.Object, "worker") {
			pdbBlocker = true
		}
	}
	if !pdbBlocker {
		t.Errorf("plan blockers %+v lack the PDB %s/worker", plan.Blockers, ns)
	}

	// pod-1 holds the control-plane endpoint (kubeadm-config names its API
	// server): the drain is refused without --allow-quorum-loss.
	out, errOut, code = run(t, c, "drain", "pod-1", "--allow-quorum-loss", "--timeout", "15s", "-o", "json")
	if code != 1 {
		t.Fatalf("drain blocked by a PDB: exit %d, want 1 (timed out)\n%s\n%s", code, out, errOut)
	}
	var result struct {
		Summary drain.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &result); err != nil {
		t.Fatalf("summary JSON: %v\n%s", err, out)
	}
	// Other tests' namespaces may still be going away; judge this one's.
	blocked := 0
	for _, b := range result.Summary.Blocked {
		if b.Namespace == ns {
			blocked++
			if !strings.Contains(b.Reason, "PDB "+ns+"/worker") {
				t.Errorf("blocked pod %s: reason %q does not name the PDB", b.Name, b.Reason)
			}
		}
	}
	if result.Summary.Result != "TimedOut" || blocked != 4 {
		t.Errorf("summary: result %s, %d pods of %s blocked; want TimedOut with the 4 pinned pods", result.Summary.Result, blocked, ns)
	}
	if !strings.Contains(errOut, "worker") {
		t.Errorf("progress on stderr does not name the blocking PDB:\n%s", errOut)
	}
}

// TestInterruptedDrainResumes interrupts a drain after its first evictions
// and runs it again: the second run keeps the first run's cordons and
// finishes the job.
func TestInterruptedDrainResumes(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	t.Cleanup(func() { uncordon(t, c, "pod-3") })
	// pod-3 has one worker (110 pods); evicted replicas go Pending, which
	// is fine: the drain waits for the evicted pods to be gone.
	const replicas = 100
	create(t, c, ns, replicas, deployment(ns, "batch", replicas, map[string]string{c.Label(): "pod-3"}))

	cmd := exec.Command(binary(t), "--kubeconfig", c.Kubeconfig(), "drain", "pod-3", "--concurrency", "1")
	var errOut syncBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return strings.Contains(errOut.String(), "evicted"), nil
	})
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	left := podsOn(t, c, ns, "pod-3")["ReplicaSet"]
	var exit *exec.ExitError
	if len(left) > 0 && (!errors.As(err, &exit) || exit.ExitCode() != 1) {
		t.Errorf("interrupted drain with %d pods left: %v, want exit 1\n%s", len(left), err, errOut.String())
	}
	t.Logf("%d of %d pods left in pod-3 after the interrupt", len(left), replicas)

	out, stderr, code := run(t, c, "drain", "pod-3", "-o", "json")
	if code != 0 {
		t.Fatalf("second drain: exit %d\n%s\n%s", code, out, stderr)
	}
	if left := podsOn(t, c, ns, "pod-3")["ReplicaSet"]; len(left) != 0 {
		t.Errorf("after the second drain pod-3 still runs %d pods", len(left))
	}
	var result struct {
		Summary drain.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &result); err != nil {
		t.Fatalf("summary JSON: %v\n%s", err, out)
	}
	if len(result.Summary.Cordoned) != 0 || !slices.Equal(result.Summary.AlreadyCordoned, c.Nodes("pod-3")) {
		t.Errorf("second run: cordoned %v, already cordoned %v; want none and %v", result.Summary.Cordoned, result.Summary.AlreadyCordoned, c.Nodes("pod-3"))
	}
}

// syncBuffer is a bytes.Buffer safe for a process writing while a test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
