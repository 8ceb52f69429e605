// Package drain measures `kubectl dc drain` against `kubectl drain -l` on
// the same datacenter, 10 nodes and 500 pods, from the same starting state,
// rounds interleaved in one run:
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	ns := cluster.Namespace(b, c)
	// The pods are pinned to pod-1: evicted, their replacements wait
	// Pending, and uncordon brings them back, so every round starts from
	// the same 500 pods on the same 10 nodes.
	for i := 0; i < podCount/perApp; i++ {
		if _, err := c.Client().AppsV1().Deployments(ns).Create(context.Background(), deployment(ns, fmt.Sprintf("app-%d", i), c.Label()), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	kubeconfig := "--kubeconfig=" + c.Kubeconfig()
	tools := []struct {
		name string
		cmd  []string
	}{
		{"kubectl-dc-drain", []string{bin, kubeconfig, "drain", dc}},
		{"kubectl-drain-l", []string{"kubectl", kubeconfig, "drain", "-l", c.Label() + "=" + dc, "--ignore-daemonsets", "--delete-emptydir-data"}},
	}
	times := map[string][]time.Duration{}
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		for _, tool := range tools {
			b.StopTimer()
			uncordon(b, bin, kubeconfig)
			waitPodsIn(b, c, ns)
			b.StartTimer()
			start := time.Now()
			out, err := exec.Command(tool.cmd[0], tool.cmd[1:]...).CombinedOutput()
			elapsed := time.Since(start)
			if err != nil {
				b.Fatalf("%s: %v\n%s", tool.name, err, out)
			}
			if left := podsOn(b, c, ns); left != 0 {
				b.Fatalf("%s left %d pods in %s", tool.name, left, dc)
			}
			times[tool.name] = append(times[tool.name], elapsed)
			b.Logf("round %d: %s drained %d pods in %s", r+1, tool.name, podCount, elapsed.Round(time.Millisecond))
		}
	}
	b.StopTimer()
	uncordon(b, bin, kubeconfig)
	ours, theirs := median(times["kubectl-dc-drain"]), median(times["kubectl-drain-l"])
	b.ReportMetric(ours.Seconds(), "dc-drain-s")
	b.ReportMetric(theirs.Seconds(), "kubectl-drain-s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "speedup")
	b.Logf("median of %d rounds: kubectl dc drain %s, kubectl drain -l %s, %.1fx faster",
		rounds, ours.Round(time.Millisecond), theirs.Round(time.Millisecond), theirs.Seconds()/ours.Seconds())
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
