package status

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-dc/kubectl-dc/plugin/status"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

// TestKubeadmEtcd reads etcd the three ways status knows on members that,
// as kubeadm's, speak only TLS with client certificates: by exec into the
// etcd pods when the operator has no certificates, directly when given
// them, and from the pods' readiness when exec is forbidden. A real learner
// (joined with member add --learner, running and catching up) is seen by
// the first two and counted as no voter.
func TestKubeadmEtcd(t *testing.T) {
	c := cluster.Require(t)
	ctx := context.Background()
	cache := t.TempDir()

	m := c.Members()[0]
	plain := &http.Client{Timeout: 3 * time.Second}
	if resp, err := plain.Get(strings.Replace(m.ClientURL, "https://", "http://", 1) + "/health"); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("plain HTTP to member %s answered %s: the members must speak TLS only", m.Name, resp.Status)
	}
	noCert, err := c.EtcdClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	noCert.Certificates = nil
	tlsNoCert := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: noCert}}
	if resp, err := tlsNoCert.Get(m.ClientURL + "/health"); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("TLS without a client certificate to member %s answered %s: the members must require client certificates", m.Name, resp.Status)
	}

	// A learner whose Node cannot be made (the name is a worker's) is
	// undone: no member is left half-joined, and the worker stays.
	if _, err := c.AddLearner(ctx, "pod-3-worker-1", "pod-3"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("AddLearner on an existing worker's name: %v; want it refused", err)
	}
	if ms := etcdMemberCount(t, c); ms != 5 {
		t.Fatalf("%d etcd members after a refused learner, want the 5 voters alone", ms)
	}
	if _, err := c.Client().CoreV1().Nodes().Get(ctx, "pod-3-worker-1", metav1.GetOptions{}); err != nil {
		t.Fatalf("the worker whose name was refused is gone: %v", err)
	}

	const learner = "pod-3-cp-2"
	t.Cleanup(func() {
		if err := c.RemoveMember(context.Background(), learner); err != nil {
			t.Errorf("remove learner: %v", err)
		}
	})
	joined, err := c.AddLearner(ctx, learner, "pod-3")
	if err != nil {
		t.Fatal(err)
	}
	learnerServes(t, c, joined)
	leader := etcdLeader(t, c)

	assertView := func(t *testing.T, r *status.Report, source string) {
		t.Helper()
		e := r.Etcd
		if e.Source != source || e.Size != 5 || e.Learners != 1 || e.Leader != leader {
			t.Fatalf("etcd = source %s, %d voters, %d learners, leader %q; want %s, 5, 1, %q\nnotes: %v", e.Source, e.Size, e.Learners, e.Leader, source, leader, e.Notes)
		}
		for _, mm := range e.Members {
			if mm.Name == learner && (!mm.Learner || mm.Datacenter != "pod-3") {
				t.Errorf("member %s: learner %v in %q, want a learner in pod-3", mm.Name, mm.Learner, mm.Datacenter)
			}
		}
	}

	// As an operator runs etcdctl: into each member's own pod, with the
	// certificates at kubeadm's paths. The second control-plane node of a
	// datacenter and the learner's node answer exec as the first does.
	t.Run("kubectl exec etcdctl in every etcd pod", func(t *testing.T) {
		pods, err := c.Client().CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "component=etcd"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 6 {
			t.Fatalf("%d etcd pods, want 6 (5 voters and the learner)", len(pods.Items))
		}
		pki := "/etc/kubernetes/pki/etcd/"
		for _, p := range pods.Items {
			url := p.Annotations[cluster.EtcdAdvertiseAnnotation]
			out, err := exec.Command("kubectl", "--kubeconfig", c.Kubeconfig(), "--request-timeout", "20s", "-n", metav1.NamespaceSystem,
				"exec", p.Name, "--", "etcdctl", "--endpoints", url,
				"--cacert", pki+"ca.crt", "--cert", pki+"healthcheck-client.crt", "--key", pki+"healthcheck-client.key",
				"endpoint", "status").CombinedOutput()
			if err != nil || !strings.Contains(string(out), url) {
				t.Errorf("kubectl exec %s (on %s) -- etcdctl endpoint status: %v\n%s", p.Name, p.Spec.NodeName, err, out)
			}
		}
	})

	t.Run("exec without certificates", func(t *testing.T) {
		r := statusJSON(t, c, cache, 0)
		assertView(t, r, "exec")
		if !strings.Contains(strings.Join(r.Etcd.Notes, "\n"), "--etcd-cacert") {
			t.Errorf("notes do not say why the direct read failed: %v", r.Etcd.Notes)
		}
		table := kubectlDC(t, c, cache)
		if !strings.Contains(table.stdout, "+1L") {
			t.Errorf("table does not mark the learner (+1L):\n%s", table.stdout)
		}
	})

	t.Run("direct with certificates", func(t *testing.T) {
		ca, cert, key := c.EtcdClientFiles()
		r := statusJSON(t, c, cache, 0, "--etcd-cacert", ca, "--etcd-cert", cert, "--etcd-key", key)
		assertView(t, r, "direct")
	})

	t.Run("pods when exec is forbidden", func(t *testing.T) {
		user := "status-only"
		bindClusterRole(t, c, user, "kubectl-dc-status", "status.yaml")
		r := statusJSON(t, c, cache, 0, "--as", user)
		if r.Etcd.Source != "pods" {
			t.Fatalf("etcd source %s, want pods\nnotes: %v", r.Etcd.Source, r.Etcd.Notes)
		}
		if notes := strings.Join(r.Etcd.Notes, "\n"); !strings.Contains(notes, "forbidden") || !strings.Contains(notes, "exec") {
			t.Errorf("notes do not say exec was forbidden: %v", r.Etcd.Notes)
		}
	})
}

// etcdMemberCount asks etcd how many members it has.
func etcdMemberCount(t *testing.T, c *cluster.Cluster) int {
	t.Helper()
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Members)
}

// etcdLeader asks etcd which member leads.
// learnerServes fails unless the learner AddLearner returned answers a
// status call at once: a member that only listens (it has not caught up
// with the leader yet) holds the connection until the call times out.
func learnerServes(t *testing.T, c *cluster.Cluster, m cluster.Member) {
	t.Helper()
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, m.ClientURL)
	if err != nil {
		t.Fatalf("learner %s does not serve once AddLearner returned: %v", m.Name, err)
	}
	if !st.IsLearner {
		t.Fatalf("member %s at %s is no learner", m.Name, m.ClientURL)
	}
}

func etcdLeader(t *testing.T, c *cluster.Cluster) string {
	t.Helper()
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	var name string
	err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := cli.MemberList(ctx)
		if err != nil {
			return false, nil
		}
		st, err := cli.Status(ctx, cli.Endpoints()[0])
		if err != nil || st.Leader == 0 {
			return false, nil
		}
		for _, mm := range list.Members {
			if mm.ID == st.Leader {
				name = mm.Name
			}
		}
		return name != "", nil
	})
	if err != nil {
		t.Fatalf("no etcd leader: %v", err)
	}
	return name
}

// bindClusterRole applies the ClusterRole role from manifests/rbac/file
// and binds it to user for the test.
func bindClusterRole(t *testing.T, c *cluster.Cluster, user, role, file string) {
	t.Helper()
	dir, err := cluster.ManifestsDir()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("kubectl", "--kubeconfig", c.Kubeconfig(), "apply", "-f", filepath.Join(dir, "rbac", file)).CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply %s: %v\n%s", file, err, out)
	}
	ctx := context.Background()
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := c.Client().RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client().RbacV1().ClusterRoleBindings().Delete(context.Background(), b.Name, metav1.DeleteOptions{})
	})
}
