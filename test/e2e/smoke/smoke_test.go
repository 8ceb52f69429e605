// Package smoke proves the local control plane is real: the scheduler places
// pods by datacenter, etcd quorum governs writes, and a datacenter can be
// taken down and brought back.
package smoke

import (
	"context"
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

func TestMain(m *testing.M) {
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.MacStadium()}))
}

func TestDeploymentLandsInItsDatacenter(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	cs := c.Client()

	replicas := int32(6)
	labels := map[string]string{"app": "worker"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{c.Label(): "pod-2"},
					Containers:   []corev1.Container{{Name: "worker", Image: "worker"}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := waitPodsRunning(t, cs, ns, int(replicas))
	inPod2 := map[string]bool{}
	for _, n := range c.Nodes("pod-2") {
		inPod2[n] = true
	}
	for _, p := range pods {
		if !inPod2[p.Spec.NodeName] {
			t.Errorf("pod %s runs on %s, outside pod-2 (%v)", p.Name, p.Spec.NodeName, c.Nodes("pod-2"))
		}
	}
}

func waitPodsRunning(t *testing.T, cs kubernetes.Interface, ns string, want int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		pods = list.Items
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == want, nil
	})
	if err != nil {
		t.Fatalf("want %d running pods in %s, have %d: %v", want, ns, len(pods), err)
	}
	return pods
}

// TestEtcdQuorumGovernsWrites stops members one by one: with one of three
// gone the API stays writable, with two gone writes fail, and restarting
// them brings writes back.
func TestEtcdQuorumGovernsWrites(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	members := c.Members()
	if len(members) != 3 {
		t.Fatalf("want 3 etcd members, have %d", len(members))
	}
	t.Cleanup(func() {
		for _, m := range members {
			if err := c.StartMember(m.Name); err != nil {
				t.Errorf("restart %s: %v", m.Name, err)
			}
		}
	})
	write := func(name string, timeout time.Duration) error {
		cfg := c.RESTConfig()
		cfg.Timeout = timeout
		cs := kubernetes.NewForConfigOrDie(cfg)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	}

	if err := c.StopMember(members[0].Name); err != nil {
		t.Fatal(err)
	}
	if err := retryWrite(write, "one-down"); err != nil {
		t.Fatalf("with 2 of 3 members the API must stay writable: %v", err)
	}
	if err := c.StopMember(members[1].Name); err != nil {
		t.Fatal(err)
	}
	if err := write("two-down", 5*time.Second); err == nil {
		t.Fatal("with 1 of 3 members a write succeeded; quorum is 2")
	}
	for _, m := range members[:2] {
		if err := c.StartMember(m.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := retryWrite(write, "back"); err != nil {
		t.Fatalf("after restarting the members the API must be writable again: %v", err)
	}
}

// retryWrite retries a write for up to a minute: after a membership change
// etcd elects a leader and the API server reconnects.
func retryWrite(write func(string, time.Duration) error, name string) error {
	var last error
	_ = wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		last = write(name, 5*time.Second)
		return last == nil, nil
	})
	return last
}

// TestDatacenterDown takes pod-2 down: its nodes go NotReady and its etcd
// member stops; bringing it back restores both.
func TestDatacenterDown(t *testing.T) {
	c := cluster.Require(t)
	ctx := context.Background()
	if err := c.DatacenterDown(ctx, "pod-2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.DatacenterUp(ctx, "pod-2"); err != nil {
			t.Errorf("bring pod-2 back: %v", err)
		}
	})
	for _, m := range c.Members() {
		if m.Running == (m.Datacenter == "pod-2") {
			t.Errorf("member %s in %s: running=%v after pod-2 went down", m.Name, m.Datacenter, m.Running)
		}
	}
	for _, a := range c.APIServerList() {
		if a.Running == (a.Datacenter == "pod-2") {
			t.Errorf("API server on %s in %s: running=%v after pod-2 went down", a.Node, a.Datacenter, a.Running)
		}
	}
	ready := nodeReadiness(t, c.RESTConfig())
	for _, dc := range c.Topology().Datacenters {
		for _, n := range c.Nodes(dc.Name) {
			if want := dc.Name != "pod-2"; ready[n] != want {
				t.Errorf("node %s in %s: Ready=%v, want %v", n, dc.Name, ready[n], want)
			}
		}
	}
	etcdPod, err := c.Client().CoreV1().Pods("kube-system").Get(ctx, "etcd-pod-2-cp-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if podReady(etcdPod) {
		t.Error("etcd-pod-2-cp-1 still Ready after its datacenter went down")
	}

	if err := c.DatacenterUp(ctx, "pod-2"); err != nil {
		t.Fatal(err)
	}
	ready = nodeReadiness(t, c.RESTConfig())
	for _, n := range c.Nodes("pod-2") {
		if !ready[n] {
			t.Errorf("node %s not Ready after pod-2 came back", n)
		}
	}
	for _, m := range c.Members() {
		if !m.Running {
			t.Errorf("member %s not running after pod-2 came back", m.Name)
		}
	}
}

func nodeReadiness(t *testing.T, cfg *rest.Config) map[string]bool {
	t.Helper()
	list, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range list.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				out[n.Name] = cond.Status == corev1.ConditionTrue
			}
		}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}
