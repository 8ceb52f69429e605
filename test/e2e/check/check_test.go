// Package check drives the built `kubectl dc check --live` against the
// local MacStadium control plane: the example PlacementPolicy, installed
// through the real CRD, first in Audit mode (violations listed, exit 0),
// then in Deny mode (exit 1).
package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

func TestMain(m *testing.M) {
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.MacStadium()}))
}

var (
	crdResource    = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	policyResource = schema.GroupVersionResource{Group: "placement.kubectl-dc.io", Version: "v1alpha1", Resource: "placementpolicies"}
)

// result is one entry of `check -o json`.
type result struct {
	Object struct {
		Kind      string `json:"kind"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"object"`
	Source struct {
		File     string `json:"file"`
		Document int    `json:"document"`
		Line     int    `json:"line"`
	} `json:"source"`
	Rule    string `json:"rule"`
	Action  string `json:"action"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

type report struct {
	Results []result `json:"results"`
	Summary struct {
		Objects  int `json:"objects"`
		Denied   int `json:"denied"`
		Warnings int `json:"warnings"`
		Audit    int `json:"audit"`
	} `json:"summary"`
}

// want is an expected violation: exact object, rule, action and field, and
// a part of the message.
type want struct {
	kind, namespace, name, rule, action, field, message string
}

func TestCheckCluster(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := kubectlDC(t)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	installCRD(ctx, t, dyn)
	pol := examplePolicy(t, "Audit")
	if _, err := dyn.Resource(policyResource).Create(ctx, pol, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the example policy: %v", err)
	}
	t.Cleanup(func() {
		_ = dyn.Resource(policyResource).Delete(context.Background(), pol.GetName(), metav1.DeleteOptions{})
	})

	ns := cluster.Namespace(t, c)
	label := c.Label()
	const fromLabel = "placement.kubectl-dc.io/datacenter"
	bad := []*appsv1.Deployment{
		// No datacenter at all.
		testutil.Deployment(ns, "worker-anywhere").Labels("app", "worker").Obj().(*appsv1.Deployment),
		// Its label says pod-1, its pods select pod-2.
		testutil.Deployment(ns, "worker-wrong-dc").Labels("app", "worker").ObjectLabels(fromLabel, "pod-1").InDC("pod-2").Obj().(*appsv1.Deployment),
		// Two ORed terms: the second lets pods run in any datacenter.
		testutil.Deployment(ns, "brain-escape").Labels("app", "jupiter-brain").RequiredAffinity(
			testutil.Term(testutil.In(label, "pod-1")),
			testutil.Term(testutil.Expr("kubernetes.io/os", corev1.NodeSelectorOpExists)),
		).Obj().(*appsv1.Deployment),
		// A datacenter that does not exist.
		testutil.Deployment(ns, "worker-pod-9").Labels("app", "worker").InDC("pod-9").Obj().(*appsv1.Deployment),
	}
	good := []*appsv1.Deployment{
		testutil.Deployment(ns, "worker-pod-1").Labels("app", "worker").InDC("pod-1").Obj().(*appsv1.Deployment),
		testutil.Deployment(ns, "brain-pod-2").Labels("app", "jupiter-brain").ObjectLabels(fromLabel, "pod-2").InDC("pod-2").Obj().(*appsv1.Deployment),
		testutil.Deployment(ns, "web").Labels("app", "web").Obj().(*appsv1.Deployment),
	}
	for _, d := range append(bad, good...) {
		if _, err := c.Client().AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create deployment %s: %v", d.Name, err)
		}
	}
	// Wait until the controllers made a ReplicaSet and a pod for each, so
	// that the check sees the whole chain and must report each violation
	// once, on its Deployment.
	waitPods(ctx, t, c, ns, len(bad)+len(good))

	// A would-be etcd member whose template does not spread over
	// datacenters. No replicas: only its template is judged.
	member := testutil.StatefulSet(metav1.NamespaceSystem, "etcd-extra").Labels("component", "etcd").Replicas(0).Obj().(*appsv1.StatefulSet)
	if _, err := c.Client().AppsV1().StatefulSets(metav1.NamespaceSystem).Create(ctx, member, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create statefulset %s: %v", member.Name, err)
	}
	t.Cleanup(func() {
		_ = c.Client().AppsV1().StatefulSets(metav1.NamespaceSystem).Delete(context.Background(), member.Name, metav1.DeleteOptions{})
	})

	pinned := "macstadium/per-datacenter-services"
	tmpl := "spec.template.spec."
	// wants are the violations in namespace order, then by name.
	wants := func(action string, all bool) []want {
		w := []want{
			{"Deployment", ns, "brain-escape", pinned, action, tmpl + "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[1]", "terms are ORed"},
			{"Deployment", ns, "worker-anywhere", pinned, action, tmpl + "nodeSelector[" + label + "]", "pods must select exactly one datacenter"},
			{"Deployment", ns, "worker-pod-9", pinned, action, tmpl + "nodeSelector[" + label + "]", `unknown datacenter "pod-9"`},
			{"Deployment", ns, "worker-wrong-dc", pinned, action, tmpl + "nodeSelector[" + label + "]", `says datacenter "pod-1" but the pods select "pod-2"`},
		}
		if all {
			// kube-system sorts before the test namespace.
			w = append([]want{{"StatefulSet", metav1.NamespaceSystem, "etcd-extra", "macstadium/etcd", action, tmpl + "topologySpreadConstraints", ""}}, w...)
		}
		return w
	}

	t.Run("Audit lists the violations and passes", func(t *testing.T) {
		rep, code := runCheck(t, bin, c.Kubeconfig(), "check", "--live", "-o", "json")
		if code != 0 {
			t.Errorf("exit code = %d, want 0 (Audit never fails)", code)
		}
		assertResults(t, rep, wants("Audit", true))
		if rep.Summary.Denied != 0 || rep.Summary.Audit != 5 {
			t.Errorf("summary = %+v, want 5 audit, 0 denied", rep.Summary)
		}
		// Nine kinds over every namespace: the 7 Deployments, their
		// ReplicaSets and pods, the StatefulSet and the 3 etcd mirror pods
		// at least.
		if rep.Summary.Objects < 25 {
			t.Errorf("only %d objects checked, want at least 25", rep.Summary.Objects)
		}
	})

	t.Run("namespace scope", func(t *testing.T) {
		rep, code := runCheck(t, bin, c.Kubeconfig(), "check", "--live", "-n", ns, "-o", "json")
		if code != 0 {
			t.Errorf("exit code = %d, want 0", code)
		}
		assertResults(t, rep, wants("Audit", false))
		if rep.Summary.Objects != 21 {
			t.Errorf("%d objects checked in %s, want 21 (7 Deployments, 7 ReplicaSets, 7 pods)", rep.Summary.Objects, ns)
		}
	})

	t.Run("Deny fails", func(t *testing.T) {
		cur, err := dyn.Resource(policyResource).Get(ctx, pol.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		setActions(t, cur, "Deny")
		if _, err := dyn.Resource(policyResource).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("switch the policy to Deny: %v", err)
		}
		rep, code := runCheck(t, bin, c.Kubeconfig(), "check", "--live", "-o", "json")
		if code != 1 {
			t.Errorf("exit code = %d, want 1", code)
		}
		assertResults(t, rep, wants("Deny", true))
		if rep.Summary.Denied != 5 {
			t.Errorf("summary = %+v, want 5 denied", rep.Summary)
		}
	})

	t.Run("offline files against the live policy", func(t *testing.T) {
		dir := t.TempDir()
		manifest := filepath.Join(dir, "deploy.yaml")
		d := testutil.Deployment("team-a", "worker").Labels("app", "worker").InDC("pod-4").Obj()
		data, err := yaml.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(manifest, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, code := runCheck(t, bin, c.Kubeconfig(), "check", "-f", manifest, "-o", "json")
		if code != 1 || len(rep.Results) != 1 || !strings.Contains(rep.Results[0].Message, `unknown datacenter "pod-4"`) {
			t.Errorf("exit code = %d, results %+v; want 1 Deny on pod-4", code, rep.Results)
		}
	})
}

// assertResults checks that the results are exactly wants, in order: the
// report is sorted by namespace, kind and name.
func assertResults(t *testing.T, rep report, wants []want) {
	t.Helper()
	got := rep.Results
	if len(got) != len(wants) {
		t.Fatalf("%d results, want %d:\n%s", len(got), len(wants), dump(got))
	}
	for i, w := range wants {
		r := got[i]
		if r.Object.Kind != w.kind || r.Object.Namespace != w.namespace || r.Object.Name != w.name || r.Rule != w.rule || r.Action != w.action || r.Field != w.field || !strings.Contains(r.Message, w.message) {
			t.Errorf("result %d:\n got %s\nwant %s %s/%s %s %s %s ...%s...", i, dump([]result{r}), w.kind, w.namespace, w.name, w.rule, w.action, w.field, w.message)
		}
	}
}

func dump(rs []result) string {
	b, _ := json.MarshalIndent(rs, "", "  ")
	return string(b)
}

// kubectlDC returns the plugin binary: $KUBECTL_DC_BIN when set (a binary
// built by hand), else a fresh build.
func kubectlDC(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("KUBECTL_DC_BIN"); bin != "" {
		return bin
	}
	bin, err := cluster.BuildBinary("./cmd/kubectl-dc")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// runCheck runs the binary with --kubeconfig and decodes its JSON report.
func runCheck(t *testing.T, bin, kubeconfig string, args ...string) (report, int) {
	t.Helper()
	stdout, stderr, code := run(t, bin, kubeconfig, args...)
	var rep report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("kubectl dc %s: exit %d, output is not a JSON report: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, err, stdout, stderr)
	}
	return rep, code
}

// runCheckRaw runs the binary with --kubeconfig and returns its stdout.
func runCheckRaw(t *testing.T, bin, kubeconfig string, args ...string) (string, int) {
	t.Helper()
	stdout, _, code := run(t, bin, kubeconfig, args...)
	return stdout, code
}

func run(t *testing.T, bin, kubeconfig string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", bin, err)
	}
	return out.String(), errOut.String(), code
}

// installCRD creates the CRD of manifests/crd and waits until it is
// Established.
func installCRD(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	root, err := cluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "manifests", "crd", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRD under manifests/crd: %v", err)
	}
	var names []string
	for _, f := range files {
		u := readObject(t, f)
		if _, err := dyn.Resource(crdResource).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create CRD %s: %v", f, err)
		}
		names = append(names, u.GetName())
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			u, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not Established: %v", name, err)
		}
	}
}

// examplePolicy reads manifests/examples/macstadium-policy.yaml with every
// rule's action set to action.
func examplePolicy(t *testing.T, action string) *unstructured.Unstructured {
	t.Helper()
	root, err := cluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	u := readObject(t, filepath.Join(root, "manifests", "examples", "macstadium-policy.yaml"))
	setActions(t, u, action)
	return u
}

// setActions sets the action of every pinned and spread rule of u.
func setActions(t *testing.T, u *unstructured.Unstructured, action string) {
	t.Helper()
	for _, list := range []string{"pinned", "spread"} {
		rules, _, err := unstructured.NestedSlice(u.Object, "spec", list)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			r.(map[string]any)["action"] = action
		}
		if err := unstructured.SetNestedSlice(u.Object, rules, "spec", list); err != nil {
			t.Fatal(err)
		}
	}
}

func readObject(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &unstructured.Unstructured{Object: m}
}

// waitPods waits until ns holds n pods (scheduled or not).
func waitPods(ctx context.Context, t *testing.T, c *cluster.Cluster, ns string, n int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		return len(pods.Items) >= n, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d pods in %s: %v", n, ns, err)
	}
}
