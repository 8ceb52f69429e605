// Package drain measures `kubectl dc drain` against `kubectl drain -l` on
// the same datacenter, 10 nodes and 500 pods, from the same starting state,
// rounds interleaved in one run, without a PDB and under one PDB of
// maxUnavailable 10%:
//
//	go test -run '^$' -bench BenchmarkDrain -benchtime 1x ./test/bench/drain
package drain

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

const (
	dc       = "pod-1"
	podCount = 500
	perApp   = 100
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The cluster is only worth starting when benchmarks run.
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.Topology{Datacenters: []cluster.Datacenter{
		{Name: "pod-1", Workers: 10, ControlPlanes: 1, APIServers: 1},
		{Name: "pod-2", Workers: 10, ControlPlanes: 1, APIServers: 1},
		{Name: "pod-3", Workers: 1, ControlPlanes: 1, APIServers: 1},
	}}}))
}

// BenchmarkDrain drains the 500-pod datacenter twice over: the pods pinned
// to it with no PDB (evicted, they go Pending), and the same 500 pods free
// to move to pod-2 under one PDB of maxUnavailable 10%, each time ours
// against kubectl drain -l in the same run. It reports both ratios.
func BenchmarkDrain(b *testing.B) {
	c := cluster.Require(b)
	bin, err := cluster.BuildBinary("./cmd/kubectl-dc")
	if err != nil {
		b.Fatal(err)
	}
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	kubeconfig := "--kubeconfig=" + c.Kubeconfig()
	tools := []struct {
		name string
		cmd  []string
	}{
		// pod-1 holds the control-plane endpoint: --allow-quorum-loss.
		{"kubectl-dc-drain", []string{bin, kubeconfig, "drain", dc, "--allow-quorum-loss"}},
		{"kubectl-drain-l", []string{"kubectl", kubeconfig, "drain", "-l", c.Label() + "=" + dc, "--ignore-daemonsets", "--delete-emptydir-data"}},
	}
	scenarios := []struct {
		name string
		pdb  bool
	}{{"no-pdb", false}, {"pdb-10pct", true}}
	for _, sc := range scenarios {
		ns := cluster.Namespace(b, c)
		// Without a PDB the pods are pinned to pod-1: evicted, their
		// replacements wait Pending, and uncordon brings them back. Under
		// the PDB they must be able to go elsewhere, or the PDB blocks:
		// every round starts by cordoning the other datacenters and
		// recreating the pods in pod-1.
		for i := 0; i < podCount/perApp; i++ {
			d := deployment(ns, fmt.Sprintf("app-%d", i), c.Label())
			if sc.pdb {
				d.Spec.Template.Spec.NodeSelector = nil
				d.Spec.Template.Labels["bench"] = "pdb"
			}
			if _, err := c.Client().AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		if sc.pdb {
			ten := intstr.FromString("10%")
			pdb := &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: ns},
				Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &ten, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"bench": "pdb"}}},
			}
			if _, err := c.Client().PolicyV1().PodDisruptionBudgets(ns).Create(context.Background(), pdb, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		times := map[string][]time.Duration{}
		for r := 0; r < rounds; r++ {
			for _, tool := range tools {
				b.StopTimer()
				if sc.pdb {
					resetIntoDC(b, c, bin, kubeconfig, ns)
				} else {
					uncordon(b, bin, kubeconfig)
					waitPodsIn(b, c, ns)
				}
				b.StartTimer()
				start := time.Now()
				out, err := exec.Command(tool.cmd[0], tool.cmd[1:]...).CombinedOutput()
				elapsed := time.Since(start)
				if err != nil {
					b.Fatalf("%s %s: %v\n%s", sc.name, tool.name, err, out)
				}
				if left := podsOn(b, c, ns); left != 0 {
					b.Fatalf("%s %s left %d pods in %s", sc.name, tool.name, left, dc)
				}
				times[tool.name] = append(times[tool.name], elapsed)
				b.Logf("%s round %d: %s drained %d pods in %s", sc.name, r+1, tool.name, podCount, elapsed.Round(time.Millisecond))
			}
		}
		b.StopTimer()
		uncordon(b, bin, kubeconfig)
		setSchedulable(b, c, true, "pod-2", "pod-3")
		// The next scenario drains pod-1 too: this one's pods leave.
		for i := 0; i < podCount/perApp; i++ {
			_ = c.Client().AppsV1().Deployments(ns).Delete(context.Background(), fmt.Sprintf("app-%d", i), metav1.DeleteOptions{})
		}
		_ = wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
			l, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			return err == nil && len(l.Items) == 0, nil
		})
		ours, theirs := median(times["kubectl-dc-drain"]), median(times["kubectl-drain-l"])
		b.ReportMetric(ours.Seconds(), sc.name+"-dc-drain-s")
		b.ReportMetric(theirs.Seconds(), sc.name+"-kubectl-drain-s")
		b.ReportMetric(theirs.Seconds()/ours.Seconds(), sc.name+"-speedup")
		b.Logf("%s: median of %d rounds: kubectl dc drain %s, kubectl drain -l %s, %.1fx faster",
			sc.name, rounds, ours.Round(time.Millisecond), theirs.Round(time.Millisecond), theirs.Seconds()/ours.Seconds())
		b.StartTimer()
	}
}

// setSchedulable cordons or uncordons every node of dcs.
func setSchedulable(b *testing.B, c *cluster.Cluster, schedulable bool, dcs ...string) {
	for _, d := range dcs {
		for _, name := range c.Nodes(d) {
			patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, !schedulable)
			if _, err := c.Client().CoreV1().Nodes().Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// resetIntoDC puts the 500 pods of ns back into dc: the other datacenters
// cordoned, dc uncordoned, every pod deleted and recreated by its
// Deployment in dc, then the others uncordoned for the drain to fill.
func resetIntoDC(b *testing.B, c *cluster.Cluster, bin, kubeconfig, ns string) {
	setSchedulable(b, c, false, "pod-2", "pod-3")
	uncordon(b, bin, kubeconfig)
	zero := int64(0)
	if err := c.Client().CoreV1().Pods(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		b.Fatal(err)
	}
	waitPodsIn(b, c, ns)
	setSchedulable(b, c, true, "pod-2", "pod-3")
	// The PDB must have seen the 500 healthy pods before the drain.
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := c.Client().PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "bench", metav1.GetOptions{})
		return err == nil && p.Status.CurrentHealthy == podCount && p.Status.DisruptionsAllowed == podCount/10, nil
	})
	if err != nil {
		b.Fatalf("PDB never saw %d healthy pods: %v", podCount, err)
	}
}

func deployment(ns, name, label string) *appsv1.Deployment {
	replicas, zero := int32(perApp), int64(0)
	l := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec: corev1.PodSpec{
					NodeSelector:                  map[string]string{label: dc},
					TerminationGracePeriodSeconds: &zero,
					Containers:                    []corev1.Container{{Name: "app", Image: "app"}},
				},
			},
		},
	}
}

// uncordon makes every node of dc schedulable, whoever cordoned it.
func uncordon(b *testing.B, bin, kubeconfig string) {
	if out, err := exec.Command(bin, kubeconfig, "uncordon", dc, "--all").CombinedOutput(); err != nil {
		b.Fatalf("uncordon: %v\n%s", err, out)
	}
}

// waitPodsIn waits until all 500 pods run in dc again.
func waitPodsIn(b *testing.B, c *cluster.Cluster, ns string) {
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		return podsOn(b, c, ns) == podCount, nil
	})
	if err != nil {
		b.Fatalf("pods did not come back to %s: %v", dc, err)
	}
}

// podsOn counts the running pods of ns on the nodes of dc.
func podsOn(b *testing.B, c *cluster.Cluster, ns string) int {
	list, err := c.Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	nodes, n := c.Nodes(dc), 0
	for _, p := range list.Items {
		if slices.Contains(nodes, p.Spec.NodeName) && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			n++
		}
	}
	return n
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
