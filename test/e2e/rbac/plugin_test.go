package rbac

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dcstatus "github.com/kubectl-dc/kubectl-dc/plugin/status"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	dcdrain "github.com/kubectl-dc/kubectl-dc/plugin/drain"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

// The roles of manifests/rbac.
const (
	statusRole   = "kubectl-dc-status"
	checkRole    = "kubectl-dc-check"
	drainRole    = "kubectl-dc-drain"
	etcdExecRole = "kubectl-dc-etcd-exec"
)

// call is one API call of a kubectl dc command, read from plugin/.
type call struct {
	group, resource, verb string
	// namespace is where the call goes; "" for a cluster-scoped resource or
	// every namespace.
	namespace string
	// role is the role of manifests/rbac that grants it; "" when the
	// default system:basic-user ClusterRole grants it to every
	// authenticated user.
	role string
	// when says which command makes the call, and when.
	when string
}

// pluginCalls is every API call of every kubectl dc command that talks to
// the cluster. version and completion make none.
var pluginCalls = []call{
	// status (plugin/cluster's snapshot, status.go, etcd.go; the violation
	// counts are check --live's results over the same kinds).
	{"", "nodes", "list", "", statusRole, "status: datacenters, readiness, cordons, control planes; the only list status cannot do without"},
	{"", "pods", "list", "kube-system", statusRole, "status: etcd and kube-apiserver pods (component in (etcd,kube-apiserver)): members, advertised client URLs, API servers"},
	{"", "pods", "list", "", statusRole, "status: every pod, judged as check --live judges it; --lose: the workloads that lose every replica and the PDBs that would be violated"},
	{"discovery.k8s.io", "endpointslices", "list", "default", statusRole, "status: the kubernetes Service's EndpointSlices, the API server addresses"},
	{v1alpha1.GroupVersion.Group, v1alpha1.Resource, "list", "", statusRole, "status: the datacenter label, known datacenters and violations per datacenter"},
	{"apps", "deployments", "list", "", statusRole, "status: pinned workloads and violations per datacenter"},
	{"apps", "statefulsets", "list", "", statusRole, "status: pinned workloads, violations, the N of spread rules"},
	{"apps", "daemonsets", "list", "", statusRole, "status: pinned workloads and violations per datacenter"},
	{"apps", "replicasets", "list", "", statusRole, "status: violations per datacenter, as check --live judges them"},
	{"batch", "jobs", "list", "", statusRole, "status: pinned workloads and violations per datacenter"},
	{"batch", "cronjobs", "list", "", statusRole, "status: pinned workloads and violations per datacenter"},
	{"", "replicationcontrollers", "list", "", statusRole, "status: pinned workloads and violations per datacenter"},
	{"", "podtemplates", "list", "", statusRole, "status: violations per datacenter"},
	{"", "namespaces", "list", "", statusRole, "status: the namespaceSelectors of the policies' rules"},
	{"policy", "poddisruptionbudgets", "list", "", statusRole, "status --lose: the PDBs the loss would violate"},
	{"", "pods/exec", "create", "kube-system", etcdExecRole, "status and drain: etcdctl member list and endpoint status inside an etcd pod, only when the advertised etcd client URLs cannot be dialled (--etcd-exec, default on)"},
	// check --cluster, and check -f against the live policies (check.go).
	{v1alpha1.GroupVersion.Group, v1alpha1.Resource, "list", "", checkRole, "check: the live policies, unless --policy files are given"},
	{"", "nodes", "list", "", checkRole, "check: the known datacenters, nodes spread rules"},
	{"", "namespaces", "list", "", checkRole, "check: the rules' namespaceSelectors"},
	{"", "pods", "list", "", checkRole, "check --cluster: judged; check -f: the members of pods spread rules"},
	{"apps", "deployments", "list", "", checkRole, "check --cluster: judged"},
	{"apps", "replicasets", "list", "", checkRole, "check --cluster: judged"},
	{"apps", "statefulsets", "list", "", checkRole, "check --cluster: judged, and the N of spread rules"},
	{"apps", "daemonsets", "list", "", checkRole, "check --cluster: judged"},
	{"batch", "jobs", "list", "", checkRole, "check --cluster: judged"},
	{"batch", "cronjobs", "list", "", checkRole, "check --cluster: judged"},
	{"", "replicationcontrollers", "list", "", checkRole, "check --cluster: judged"},
	{"", "podtemplates", "list", "", checkRole, "check --cluster: judged"},
	// drain and uncordon (drain.go, drain_exec.go, uncordon.go).
	{v1alpha1.GroupVersion.Group, v1alpha1.Resource, "list", "", drainRole, "drain, uncordon: the datacenter label, unless --datacenter-label"},
	{"", "nodes", "list", "", drainRole, "drain, uncordon: the datacenter's nodes"},
	{"", "pods", "list", "", drainRole, "drain: the plan, the etcd and kube-apiserver pods of kube-system; the waiter's relist"},
	{"discovery.k8s.io", "endpointslices", "list", "default", drainRole, "drain: the kubernetes Service's EndpointSlices, the API servers the plan counts as kubectl dc status does"},
	{"policy", "poddisruptionbudgets", "list", "", drainRole, "drain: the plan's PDBs"},
	{"policy", "poddisruptionbudgets", "watch", "", drainRole, "drain: the pods behind a PDB are evicted as its status allows (optional)"},
	{"apps", "replicasets", "list", "", drainRole, "drain: the Deployments behind the datacenter's ReplicaSet pods"},
	{"authentication.k8s.io", "selfsubjectreviews", "create", "", "", "drain: the user name of the cordoned-by annotation"},
	{"", "nodes", "patch", "", drainRole, "drain: cordon and annotate; uncordon"},
	{"", "pods/eviction", "create", "", drainRole, "drain: evict through the Eviction API"},
	{"", "pods", "watch", "", drainRole, "drain: wait for the evicted pods to be gone"},
	{"", "pods", "delete", "", drainRole, "drain --disable-eviction: delete instead of evict; --force-delete-unreachable: the pods of NotReady nodes, grace period 0"},
	{"authorization.k8s.io", "selfsubjectaccessreviews", "create", "", "", "drain: the preflight, whether the caller may cordon, evict, delete and watch before anything is touched"},
}

// pluginNamedCalls are the calls that name their object: a get by name.
var pluginNamedCalls = []struct {
	call
	name string
}{
	{call{"", "configmaps", "get", "kube-system", statusRole, "status: kubeadm's controlPlaneEndpoint"}, "kubeadm-config"},
	{call{"", "configmaps", "get", "kube-system", statusRole, "status: the endpoint every kube-proxy dials"}, "kube-proxy"},
	{call{"", "configmaps", "get", "kube-public", statusRole, "status: the endpoint nodes join with"}, "cluster-info"},
}

// pluginWriteExceptions are the writes of manifests/rbac that cannot name
// their objects.
var pluginWriteExceptions = map[key]string{
	{group: "", resource: "nodes", verb: "patch"}:          "drain cordons every node of a datacenter: the names are the cluster's",
	{group: "", resource: "pods/eviction", verb: "create"}: "drain evicts any pod on the datacenter's nodes",
	{group: "", resource: "pods", verb: "delete"}:          "drain --disable-eviction and --force-delete-unreachable delete any pod on the datacenter's nodes",
	{group: "", resource: "pods/exec", verb: "create"}:     "etcd pods are named after their nodes (etcd-<node>): docs/rbac.md shows how to add resourceNames",
}

// TestPluginRolesAreExact reads manifests/rbac as kustomize builds it: no
// wildcards, writes only where they cannot name their objects, every verb
// of every role is a call of pluginCalls assigned to it and every call is
// granted by its role. docs/rbac.md names every role.
func TestPluginRolesAreExact(t *testing.T) {
	crs, rs := shippedRoles(t)
	want := map[string]map[key]string{}
	for _, c := range pluginCalls {
		if c.role == "" {
			continue
		}
		if want[c.role] == nil {
			want[c.role] = map[key]string{}
		}
		ns := ""
		if c.role == etcdExecRole {
			ns = c.namespace
		}
		want[c.role][key{group: c.group, resource: c.resource, namespace: ns, verb: c.verb}] = c.when
	}
	for _, c := range pluginNamedCalls {
		want[c.role][key{group: c.group, resource: c.resource, name: c.name, verb: c.verb}] = c.when
	}
	got := map[string][]key{}
	for name, r := range crs {
		checkRuleHygiene(t, "ClusterRole "+name, r.Rules, pluginWriteExceptions)
		got[name] = ruleKeys(r.Rules, "")
	}
	for name, r := range rs {
		checkRuleHygiene(t, "Role "+r.Namespace+"/"+name, r.Rules, pluginWriteExceptions)
		got[name] = ruleKeys(r.Rules, r.Namespace)
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "rbac.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, ks := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("manifests/rbac ships %s, which no call of pluginCalls belongs to", name)
			continue
		}
		if !strings.Contains(string(doc), name) {
			t.Errorf("docs/rbac.md does not document %s", name)
		}
		for _, k := range ks {
			if _, ok := want[name][k]; !ok {
				t.Errorf("%s grants %s, which no kubectl dc command needs", name, k)
			}
		}
	}
	for name, calls := range want {
		ks, ok := got[name]
		if !ok {
			t.Errorf("manifests/rbac has no role %s", name)
			continue
		}
		for k, why := range calls {
			if !slices.Contains(ks, k) {
				t.Errorf("%s does not grant %s (%s)", name, k, why)
			}
		}
	}
}

// kubectlDC runs the built kubectl-dc as s (impersonated from the admin
// kubeconfig: --as), with args.
func kubectlDC(t *testing.T, c *cluster.Cluster, s subject, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	full := []string{"--as", s.user}
	for _, g := range s.groups {
		full = append(full, "--as-group", g)
	}
	return cluster.KubectlDC(t, c, 3*time.Minute, append(full, args...)...)
}

// status runs `kubectl dc status -o json` as s with a fresh cache, so that
// no earlier run's etcd endpoints help, and decodes the report.
func status(t *testing.T, c *cluster.Cluster, s subject, args ...string) (*dcstatus.Report, string, int) {
	t.Helper()
	out, errOut, code := kubectlDC(t, c, s, append([]string{"status", "-o", "json", "--cache-dir", t.TempDir()}, args...)...)
	if code != 0 && code != dcstatus.ExitRisk {
		return nil, errOut, code
	}
	var r dcstatus.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status %v: exit %d, not a JSON report: %v\n%s\n%s", args, code, err, out, errOut)
	}
	return &r, errOut, code
}

// notAllowed returns the report's findings about lists RBAC refused.
func notAllowed(r *dcstatus.Report) []string {
	var out []string
	for _, f := range r.Findings {
		if strings.Contains(f.Message, "not allowed to list") {
			out = append(out, f.Message)
		}
	}
	return out
}

// TestStatusRole runs `kubectl dc status` as ServiceAccounts bound to
// kubectl-dc-status, with and without the etcd exec Role, and without one
// of its lists. The local members want client certificates, as kubeadm's
// do: with the health-check certificate status reads etcd directly (source
// "direct"), which needs no RBAC; without it, by exec (the etcd exec Role),
// else from the etcd pods' readiness.
func TestStatusRole(t *testing.T) {
	c := cluster.Require(t)
	ns := cluster.Namespace(t, c)
	crs, rs := shippedRoles(t)

	t.Run("enough", func(t *testing.T) {
		s := bindClusterRole(t, c, ns, "status", roleNamed(t, crs, statusRole, ns+"-status"), true)
		ca, cert, key := c.EtcdClientFiles()
		certs := []string{"--etcd-cacert", ca, "--etcd-cert", cert, "--etcd-key", key}
		r, errOut, code := status(t, c, s, certs...)
		if code != 0 {
			t.Fatalf("status as %s: exit %d\n%s", s.user, code, errOut)
		}
		if !r.APIAvailable || r.Etcd.Source != "direct" || r.Etcd.Size != 3 || r.Etcd.Healthy != 3 || len(r.APIServers) != 3 {
			t.Errorf("status as %s: apiAvailable %v, etcd source %q size %d healthy %d, %d API servers; want true, direct 3 3, 3",
				s.user, r.APIAvailable, r.Etcd.Source, r.Etcd.Size, r.Etcd.Healthy, len(r.APIServers))
		}
		if f := notAllowed(r); len(f) > 0 {
			t.Errorf("status as %s: %v", s.user, f)
		}
		r, errOut, code = status(t, c, s, append(certs, "--lose", "pod-3")...)
		if code != 0 || r.WhatIf == nil {
			t.Fatalf("status --lose pod-3 as %s: exit %d, what-if %v\n%s", s.user, code, r != nil && r.WhatIf != nil, errOut)
		}
		if f := notAllowed(r); len(f) > 0 {
			t.Errorf("status --lose pod-3 as %s: %v", s.user, f)
		}
	})

	t.Run("etcd by exec", func(t *testing.T) {
		s := bindClusterRole(t, c, ns, "status-exec", roleNamed(t, crs, statusRole, ns+"-status-exec"), true)
		r, errOut, code := status(t, c, s)
		if code != 0 {
			t.Fatalf("status as %s: exit %d\n%s", s.user, code, errOut)
		}
		if !anyNote(r, func(n string) bool { return forbidden(n, "create", "pods/exec") }) {
			t.Errorf("without %s, the exec notes name no forbidden pods/exec: %q", etcdExecRole, r.Etcd.Notes)
		}
		if r.Etcd.Source != "pods" {
			t.Errorf("etcd source = %q, want pods (readiness of the etcd pods)", r.Etcd.Source)
		}

		exec, ok := rs[etcdExecRole]
		if !ok {
			t.Fatalf("manifests/rbac has no Role %s", etcdExecRole)
		}
		exec = exec.DeepCopy()
		exec.ObjectMeta = metav1.ObjectMeta{Namespace: exec.Namespace, Name: ns + "-etcd-exec"}
		bindRole(t, c, ns, "status-exec", exec)
		r, errOut, code = status(t, c, s)
		if code != 0 {
			t.Fatalf("status as %s: exit %d\n%s", s.user, code, errOut)
		}
		// kwok plays the kubelet of the etcd pods' nodes and runs etcdctl.
		if r.Etcd.Source != "exec" || r.Etcd.Size != 3 || r.Etcd.Healthy != 3 || anyNote(r, func(n string) bool { return strings.Contains(n, "forbidden") }) {
			t.Errorf("with %s: etcd source %q size %d healthy %d, notes %q; want exec 3 3 and nothing forbidden", etcdExecRole, r.Etcd.Source, r.Etcd.Size, r.Etcd.Healthy, r.Etcd.Notes)
		}
	})

	t.Run("without list nodes", func(t *testing.T) {
		s := bindClusterRole(t, c, ns, "status-no-nodes", without(t, crs[statusRole], ns+"-status-no-nodes", "", "nodes", "list"), true)
		_, errOut, code := status(t, c, s)
		if code != 1 || !forbidden(errOut, "list", "nodes") {
			t.Errorf("status without list nodes: exit %d, want 1 and a forbidden list of nodes:\n%s", code, errOut)
		}
	})

	t.Run("without list pods", func(t *testing.T) {
		s := bindClusterRole(t, c, ns, "status-no-pods", without(t, crs[statusRole], ns+"-status-no-pods", "", "pods", "list"), true)
		r, errOut, code := status(t, c, s)
		if code != 0 {
			t.Fatalf("status without list pods: exit %d\n%s", code, errOut)
		}
		if f := notAllowed(r); len(f) != 1 || !strings.Contains(f[0], "kube-system pods") {
			t.Errorf("status without list pods: findings %v, want one naming the kube-system pods", f)
		}
		if r.Etcd.Size != 0 || r.Etcd.Source == "direct" {
			t.Errorf("status without list pods: etcd source %q size %d; want no members (no pods, no advertised URLs)", r.Etcd.Source, r.Etcd.Size)
		}
	})
}

func anyNote(r *dcstatus.Report, f func(string) bool) bool {
	return slices.ContainsFunc(r.Etcd.Notes, f)
}

// checkReport is the part of `check -o json` the tests compare.
type checkReport struct {
	Results []struct {
		Object struct {
			Kind      string `json:"kind"`
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"object"`
		Rule   string `json:"rule"`
		Action string `json:"action"`
	} `json:"results"`
	Summary struct {
		Objects int `json:"objects"`
		Denied  int `json:"denied"`
	} `json:"summary"`
}

// TestCheckRole runs `kubectl dc check --cluster` against the MacStadium
// example policy as a ServiceAccount bound to kubectl-dc-check: it must see
// what the admin sees. Without list on ReplicaSets, or on the policies, it
// must stop with the forbidden list named.
func TestCheckRole(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	manifests := filepath.Join(repoRoot(t), "manifests")
	if err := webhooktest.ApplyFiles(ctx, c.RESTConfig(),
		filepath.Join(manifests, "crd", "placement.kubectl-dc.io_placementpolicies.yaml"),
		filepath.Join(manifests, "examples", "macstadium-policy.yaml")); err != nil {
		t.Fatal(err)
	}
	ns := cluster.Namespace(t, c)
	// A worker that selects no datacenter: one Deny violation, on the
	// Deployment (its ReplicaSet and pod are reported through it).
	d := tu.Deployment(ns, "worker-anywhere").Labels("app", "worker").Deployment()
	if _, err := c.Client().AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(ctx, t, c, ns, 1)

	check := func(s *subject) (checkReport, string, int) {
		t.Helper()
		var out, errOut string
		var code int
		if s == nil {
			out, errOut, code = cluster.KubectlDC(t, c, 3*time.Minute, "check", "--cluster", "-o", "json")
		} else {
			out, errOut, code = kubectlDC(t, c, *s, "check", "--cluster", "-o", "json")
		}
		var r checkReport
		if code <= 1 {
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("check --cluster: exit %d, not a JSON report: %v\n%s\n%s", code, err, out, errOut)
			}
		}
		return r, errOut, code
	}

	crs, _ := shippedRoles(t)
	t.Run("enough", func(t *testing.T) {
		s := bindClusterRole(t, c, ns, "check", roleNamed(t, crs, checkRole, ns+"-check"), true)
		admin, _, adminCode := check(nil)
		got, errOut, code := check(&s)
		if code != 1 || adminCode != 1 {
			t.Fatalf("check --cluster: exit %d as %s, %d as admin; want 1 (the Deny violation)\n%s", code, s.user, adminCode, errOut)
		}
		a, _ := json.Marshal(admin)
		g, _ := json.Marshal(got)
		if string(a) != string(g) {
			t.Errorf("check --cluster as %s differs from the admin's:\n got %s\nwant %s", s.user, g, a)
		}
		if got.Summary.Denied != 1 || got.Results[0].Object.Name != "worker-anywhere" {
			t.Errorf("check --cluster as %s: %s, want one Deny on worker-anywhere", s.user, g)
		}
	})

	for _, lack := range []struct{ group, resource string }{{"apps", "replicasets"}, {v1alpha1.GroupVersion.Group, v1alpha1.Resource}} {
		t.Run("without list "+lack.resource, func(t *testing.T) {
			name := "check-no-" + lack.resource
			s := bindClusterRole(t, c, ns, name, without(t, crs[checkRole], ns+"-"+name, lack.group, lack.resource, "list"), true)
			_, errOut, code := check(&s)
			if code != cmdutil.ExitUsage || !forbidden(errOut, "list", lack.resource) {
				t.Errorf("check --cluster without list %s: exit %d, want 2 and the forbidden list named:\n%s", lack.resource, code, errOut)
			}
		})
	}
}

// waitPods waits until ns holds n running pods.
func waitPods(ctx context.Context, t *testing.T, c *cluster.Cluster, ns string, n int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return running >= n, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d running pods in %s: %v", n, ns, err)
	}
}

// podsIn returns the names of the pods of ns on the nodes of dc that are
// not being deleted.
func podsIn(t *testing.T, c *cluster.Cluster, ns, dc string) []string {
	t.Helper()
	list, err := c.Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		if slices.Contains(c.Nodes(dc), p.Spec.NodeName) && p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	return out
}

// cordoned returns the cordoned nodes of dc with their cordoned-by
// annotation.
func cordoned(t *testing.T, c *cluster.Cluster, dc string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range c.Nodes(dc) {
		n, err := c.Client().CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Spec.Unschedulable {
			out[name] = n.Annotations[dcdrain.AnnotationCordonedBy]
		}
	}
	return out
}

// drainOutput is `kubectl dc drain -o json` without --dry-run.
type drainOutput struct {
	Plan    dcdrain.Plan    `json:"plan"`
	Summary dcdrain.Summary `json:"summary"`
}

// TestDrainRole drains pod-3 (one worker, one control plane) with pods of
// a Deployment pinned there, as ServiceAccounts bound to kubectl-dc-drain
// or to copies lacking one write: the preflight's SelfSubjectAccessReviews
// find every missing write, the dry run shows it as a blocker and exits 3,
// the drain refuses before cordoning anything; uncordon needs patch; with
// the whole role the drain and uncordon succeed and the cordon names the
// ServiceAccount.
func TestDrainRole(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const dc = "pod-3"
	ns := cluster.Namespace(t, c)
	t.Cleanup(func() {
		_, _, _ = cluster.KubectlDC(t, c, time.Minute, "uncordon", dc, "--all")
	})
	const replicas = 4
	zero := int64(0)
	d := tu.Deployment(ns, "batch").Labels("app", "batch").InDC(dc).Replicas(replicas).
		Edit(func(s *corev1.PodSpec) { s.TerminationGracePeriodSeconds = &zero }).Obj().(*appsv1.Deployment)
	if _, err := c.Client().AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(ctx, t, c, ns, replicas)
	crs, _ := shippedRoles(t)
	full := crs[drainRole]

	t.Run("dry run without writes", func(t *testing.T) {
		ro := without(t, without(t, full, "x", "", "nodes", "patch"), ns+"-drain-read-only", "", "pods/eviction", "create")
		s := bindClusterRole(t, c, ns, "drain-read-only", ro, true)
		out, errOut, code := kubectlDC(t, c, s, "drain", dc, "--dry-run", "-o", "json")
		var plan dcdrain.Plan
		if code != dcdrain.ExitDrainRefused || json.Unmarshal([]byte(out), &plan) != nil || !plan.Refused {
			t.Fatalf("drain --dry-run as %s without writes: exit %d, want %d with the RBAC blockers\n%s\n%s", s.user, code, dcdrain.ExitDrainRefused, out, errOut)
		}
		rbac := ""
		for _, b := range plan.Blockers {
			if b.Kind == "Forbidden" {
				rbac += b.Message + "\n"
			}
		}
		if !strings.Contains(rbac, "patch nodes cluster-wide") || !strings.Contains(rbac, "create pods/eviction in namespace "+ns) {
			t.Errorf("drain --dry-run as %s: RBAC blockers %q, want patch nodes and create pods/eviction in %s", s.user, rbac, ns)
		}
		// Other tests' pods may run in pod-3 too: count this test's.
		mine := 0
		for _, p := range plan.Evict {
			if p.Namespace == ns {
				mine++
			}
		}
		if mine != replicas {
			t.Errorf("drain --dry-run as %s plans %d evictions in %s, want %d", s.user, mine, ns, replicas)
		}
	})

	t.Run("without patch nodes", func(t *testing.T) {
		s := bindClusterRole(t, c, ns, "drain-no-patch", without(t, full, ns+"-drain-no-patch", "", "nodes", "patch"), true)
		out, errOut, code := kubectlDC(t, c, s, "drain", dc)
		if code != dcdrain.ExitDrainRefused || !strings.Contains(out, "the API server refuses patch nodes cluster-wide") {
			t.Errorf("drain without patch nodes: exit %d, want %d and the refused patch named:\n%s\n%s", code, dcdrain.ExitDrainRefused, out, errOut)
		}
		if got := cordoned(t, c, dc); len(got) > 0 {
			t.Errorf("drain without patch nodes cordoned %v", got)
		}
	})

	t.Run("without create pods/eviction", func(t *testing.T) {
		s := bindClusterRole(t, c, ns, "drain-no-evict", without(t, full, ns+"-drain-no-evict", "", "pods/eviction", "create"), true)
		// The preflight finds the refusal: nothing is cordoned.
		out, errOut, code := kubectlDC(t, c, s, "drain", dc, "--timeout", "1h", "-o", "json")
		var plan dcdrain.Plan
		if code != dcdrain.ExitDrainRefused || json.Unmarshal([]byte(out), &plan) != nil || !plan.Refused {
			t.Fatalf("drain without evictions: exit %d, want %d with the plan\n%s\n%s", code, dcdrain.ExitDrainRefused, out, errOut)
		}
		if !strings.Contains(strings.Join(plan.Reasons, "\n"), "create pods/eviction in namespace "+ns) {
			t.Errorf("drain without evictions: reasons %v do not name the refused eviction in %s", plan.Reasons, ns)
		}
		if got := cordoned(t, c, dc); len(got) > 0 {
			t.Errorf("drain without evictions cordoned %v", got)
		}
		waitPods(ctx, t, c, ns, replicas)
	})

	t.Run("uncordon without patch nodes", func(t *testing.T) {
		// The refused drains cordoned nothing: cordon as the admin.
		for _, name := range c.Nodes(dc) {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"admin@test"}},"spec":{"unschedulable":true}}`, dcdrain.AnnotationCordonedBy)
			if _, err := c.Client().CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		s := bindClusterRole(t, c, ns, "uncordon-no-patch", without(t, full, ns+"-uncordon-no-patch", "", "nodes", "patch"), true)
		_, errOut, code := kubectlDC(t, c, s, "uncordon", dc)
		if code != 1 || !forbidden(errOut, "patch", "nodes") {
			t.Errorf("uncordon without patch nodes: exit %d, want 1 and the forbidden patch named:\n%s", code, errOut)
		}
	})

	t.Run("enough", func(t *testing.T) {
		s := bindClusterRole(t, c, ns, "drain", roleNamed(t, crs, drainRole, ns+"-drain"), true)
		if _, errOut, code := kubectlDC(t, c, s, "uncordon", dc, "--all"); code != 0 {
			t.Fatalf("uncordon --all as %s: exit %d\n%s", s.user, code, errOut)
		}
		if got := cordoned(t, c, dc); len(got) > 0 {
			t.Fatalf("after uncordon --all, %v still cordoned", got)
		}
		waitPods(ctx, t, c, ns, replicas)

		out, errOut, code := kubectlDC(t, c, s, "drain", dc, "-o", "json")
		var got drainOutput
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
			t.Fatalf("drain %s as %s: exit %d\n%s\n%s", dc, s.user, code, out, errOut)
		}
		if got.Summary.Result != "Done" || got.Summary.Evicted < replicas || len(got.Summary.Blocked) > 0 || !slices.Equal(got.Summary.Cordoned, c.Nodes(dc)) {
			t.Errorf("drain as %s: result %s, %d evicted, blocked %v, cordoned %v; want Done, at least %d, none, %v",
				s.user, got.Summary.Result, got.Summary.Evicted, got.Summary.Blocked, got.Summary.Cordoned, replicas, c.Nodes(dc))
		}
		if left := podsIn(t, c, ns, dc); len(left) > 0 {
			t.Errorf("after the drain, pods of %s still run in %s: %v", ns, dc, left)
		}
		// The cordoned-by annotation comes from a SelfSubjectReview, which
		// the role does not grant: every authenticated user may.
		for node, by := range cordoned(t, c, dc) {
			if !strings.HasPrefix(by, s.user+"@") {
				t.Errorf("node %s cordoned by %q, want %s@<host>", node, by, s.user)
			}
		}
		out, errOut, code = kubectlDC(t, c, s, "uncordon", dc)
		if code != 0 || strings.Count(out, "uncordoned") != len(c.Nodes(dc)) {
			t.Errorf("uncordon as %s: exit %d\n%s\n%s", s.user, code, out, errOut)
		}
		if got := cordoned(t, c, dc); len(got) > 0 {
			t.Errorf("after uncordon, %v still cordoned", got)
		}
	})
}
