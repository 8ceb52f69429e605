package webhook_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubectl-dc/kubectl-dc/policy"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/webhook"
)

// Field paths and names the bypass matrix asserts.
const (
	zoneKey        = "[" + tu.Zone + "]"
	podSelector    = "spec.nodeSelector" + zoneKey
	templateSel    = "spec.template.spec.nodeSelector" + zoneKey
	podTerms       = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
	templateTerms  = "spec.template." + podTerms
	zoneLabelField = "metadata.labels" + zoneKey
	noScheduler    = "e2e-no-such-scheduler"
	holdFinalizer  = "e2e.kubectl-dc.io/hold"
	ignoreLabel    = "placement.kubectl-dc.io/ignore"
	mirrorNote     = "mirror of a static pod"
	bypassNode     = "e2e-bypass-status-node"
)

// bypass is one way around the placement policy: what a requester does,
// and what the cluster answers. docs/bypass.md lists the same rows.
type bypass struct {
	name    string
	way     string
	outcome string
	run     func(t *testing.T, c *cluster.Cluster)
}

// TestBypassMatrix tries every known way around the placement policy
// through the real API server with dc-webhook installed from manifests/.
// Each row is either denied with a field-level Invalid naming the field
// and the rule, or admitted in exactly the way docs/bypass.md documents.
func TestBypassMatrix(t *testing.T) {
	c := env(t)
	for _, b := range bypasses() {
		t.Run(b.name, func(t *testing.T) {
			t.Logf("way around: %s", b.way)
			t.Logf("outcome: %s", b.outcome)
			b.run(t, c)
		})
	}
}

func bypasses() []bypass {
	rows := []bypass{
		{
			name:    "nodeName-in-another-datacenter",
			way:     "create a jupiter-brain pod selecting pod-1 with spec.nodeName on a pod-2 node, skipping the scheduler",
			outcome: "denied: spec.nodeName by " + denyRule,
			run: func(t *testing.T, c *cluster.Cluster) {
				ns := cluster.Namespace(t, c)
				pod := tu.Pod(ns, "brain").Labels("app", "jupiter-brain").InDC("pod-1").NodeName(lastNode(c, "pod-2")).Pod()
				_, err := c.Client().CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
				wantDenied(t, err, "spec.nodeName", denyRule)
			},
		},
		{
			name:    "nodeName-without-selector",
			way:     "create a worker pod with spec.nodeName and no datacenter selector",
			outcome: "denied: " + podSelector + " by " + denyRule,
			run: func(t *testing.T, c *cluster.Cluster) {
				ns := cluster.Namespace(t, c)
				pod := tu.Pod(ns, "worker").Labels("app", "worker").NodeName(lastNode(c, "pod-2")).Pod()
				_, err := c.Client().CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
				wantDenied(t, err, podSelector, denyRule)
			},
		},
		{
			name: "binding-pinned-pod-to-another-datacenter",
			way:  "POST pods/binding of a worker pod selecting pod-1 to a pod-2 node (a scheduler of one's own)",
			outcome: "admitted, documented: the webhook caches member pods only, so a Binding does not show it the pod's selector; " +
				"the kubelet refuses to run a pod whose nodeSelector its node does not match (NodeAffinity), and only the scheduler " +
				"and cluster administrators may create pods/binding (namespace admin may not)",
			run: func(t *testing.T, c *cluster.Cluster) {
				ctx := context.Background()
				ns := cluster.Namespace(t, c)
				cs := c.Client()
				pod := tu.Pod(ns, "worker").Labels("app", "worker").InDC("pod-1").Edit(unscheduled).Pod()
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					t.Fatalf("create: %v", err)
				}
				target := lastNode(c, "pod-2")
				if err := cs.CoreV1().Pods(ns).Bind(ctx, tu.Binding(ns, pod.Name, target), metav1.CreateOptions{}); err != nil {
					t.Fatalf("the documented outcome is an admitted binding, got %v", err)
				}
				const nsAdmin = "e2e-binding-admin"
				bind(t, c, ns, nsAdmin, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"})
				eventually(t, "the RoleBinding in effect", func(ctx context.Context) (bool, error) {
					return canDo(t, c, nsAdmin, ns, "create", "pods", ""), nil
				})
				if canDo(t, c, nsAdmin, ns, "create", "pods", "binding") {
					t.Errorf("a namespace admin may create pods/binding in %s: the documented guarantee does not hold", ns)
				}
			},
		},
		{
			name:    "binding-member-breaking-spread",
			way:     "POST pods/binding of a fourth etcd member to a pod-1 node, which already holds a voter, without the scheduler",
			outcome: "denied: target.name by " + etcdRule + " (kube-system's binding webhook, failurePolicy Ignore)",
			run: func(t *testing.T, c *cluster.Cluster) {
				ctx := context.Background()
				cs := c.Client()
				pod := tu.Pod("kube-system", "etcd-e2e-bypass-bind").Labels("component", "etcd", "tier", "control-plane").Edit(unscheduled).Pod()
				if _, err := cs.CoreV1().Pods("kube-system").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					t.Fatalf("create: %v", err)
				}
				t.Cleanup(func() { deletePodNow(c, "kube-system", pod.Name) })
				err := cs.CoreV1().Pods("kube-system").Bind(ctx, tu.Binding("kube-system", pod.Name, lastNode(c, "pod-1")), metav1.CreateOptions{})
				wantDenied(t, err, "target.name", etcdRule)
			},
		},
	}

	// Every kind with a pod template, without a datacenter selector.
	for _, k := range []struct {
		build func(namespace, name string) *tu.ObjectBuilder
		field string
	}{
		{tu.Deployment, templateSel},
		{tu.ReplicaSet, templateSel},
		{tu.StatefulSet, templateSel},
		{tu.DaemonSet, templateSel},
		{tu.Job, templateSel},
		{tu.CronJob, "spec.jobTemplate.spec.template.spec.nodeSelector" + zoneKey},
		{tu.ReplicationController, templateSel},
		{tu.PodTemplate, "template.spec.nodeSelector" + zoneKey},
	} {
		kind := k.build("", "").Kind()
		rows = append(rows, bypass{
			name:    "template-" + kind,
			way:     "create a worker " + kind + " whose pod template selects no datacenter",
			outcome: "denied: " + k.field + " by " + denyRule,
			run: func(t *testing.T, c *cluster.Cluster) {
				ns := cluster.Namespace(t, c)
				obj := k.build(ns, "worker").Labels("app", "worker").Obj()
				err := ctrlClient(t, c).Create(context.Background(), obj.(client.Object))
				wantDenied(t, err, k.field, denyRule)
			},
		})
	}

	rows = append(rows,
		bypass{
			name:    "template-labels-only",
			way:     "create a Deployment whose own labels match no rule while its pod template carries app=worker and no selector",
			outcome: "denied: " + templateSel + " by " + denyRule + " (a rule selects a workload by its own labels or any pod template's: the pods carry the template's)",
			run: func(t *testing.T, c *cluster.Cluster) {
				ns := cluster.Namespace(t, c)
				d := tu.Deployment(ns, "decoy").TemplateLabels("app", "worker").Deployment()
				_, err := c.Client().AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
				wantDenied(t, err, templateSel, denyRule)
			},
		},
		bypass{
			name:    "update-removes-selector",
			way:     "update a pinned worker StatefulSet to remove its nodeSelector",
			outcome: "denied: " + templateSel + " by " + denyRule,
			run: func(t *testing.T, c *cluster.Cluster) {
				ctx := context.Background()
				ns := cluster.Namespace(t, c)
				cs := c.Client()
				sts := tu.StatefulSet(ns, "worker").Labels("app", "worker").InDC("pod-1").Replicas(0).StatefulSet()
				if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
					t.Fatalf("create: %v", err)
				}
				remove := []byte(`[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]`)
				_, err := cs.AppsV1().StatefulSets(ns).Patch(ctx, sts.Name, types.JSONPatchType, remove, metav1.PatchOptions{})
				wantDenied(t, err, templateSel, denyRule)
			},
		},
		bypass{
			name:    "update-widens-selector",
			way:     "update a pinned worker Deployment: drop nodeSelector, add required node affinity zone In [pod-1, pod-2]",
			outcome: "denied: " + templateTerms + "[0] by " + denyRule,
			run: func(t *testing.T, c *cluster.Cluster) {
				ctx := context.Background()
				ns := cluster.Namespace(t, c)
				cs := c.Client()
				d := tu.Deployment(ns, "worker").Labels("app", "worker").InDC("pod-1").Replicas(0).Deployment()
				if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
					t.Fatalf("create: %v", err)
				}
				wide := tu.Pod("", "").RequiredAffinity(tu.Term(tu.In(tu.Zone, "pod-1", "pod-2"))).Spec().Affinity
				patch, err := json.Marshal([]map[string]any{
					{"op": "remove", "path": "/spec/template/spec/nodeSelector"},
					{"op": "add", "path": "/spec/template/spec/affinity", "value": wide},
				})
				if err != nil {
					t.Fatal(err)
				}
				_, err = cs.AppsV1().Deployments(ns).Patch(ctx, d.Name, types.JSONPatchType, patch, metav1.PatchOptions{})
				wantDenied(t, err, templateTerms+"[0]", denyRule)
			},
		},
		bypass{
			name:    "affinity-terms-in-two-datacenters",
			way:     "create a worker pod whose two ORed required node affinity terms pin pod-1 and pod-2",
			outcome: "denied: " + podTerms + "[1] by " + denyRule,
			run: func(t *testing.T, c *cluster.Cluster) {
				ns := cluster.Namespace(t, c)
				pod := tu.Pod(ns, "worker").Labels("app", "worker").
					RequiredAffinity(tu.Term(tu.In(tu.Zone, "pod-1")), tu.Term(tu.In(tu.Zone, "pod-2"))).Pod()
				_, err := c.Client().CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
				wantDenied(t, err, podTerms+"[1]", denyRule)
			},
		},
		bypass{
			name:    "affinity-term-without-datacenter",
			way:     "create a worker pod whose first ORed term pins pod-1 and whose second names only a hostname in pod-2",
			outcome: "denied: " + podTerms + "[1] by " + denyRule,
			run: func(t *testing.T, c *cluster.Cluster) {
				ns := cluster.Namespace(t, c)
				pod := tu.Pod(ns, "worker").Labels("app", "worker").
					RequiredAffinity(tu.Term(tu.In(tu.Zone, "pod-1")), tu.Term(tu.In(corev1.LabelHostname, lastNode(c, "pod-2")))).Pod()
				_, err := c.Client().CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
				wantDenied(t, err, podTerms+"[1]", denyRule)
			},
		},
		bypass{
			name:    "affinity-NotIn",
			way:     "create a worker Deployment whose only required term is zone NotIn [pod-2] (pod-1 and pod-3)",
			outcome: "denied: " + templateTerms + "[0] by " + denyRule,
			run: func(t *testing.T, c *cluster.Cluster) {
				ns := cluster.Namespace(t, c)
				d := tu.Deployment(ns, "worker").Labels("app", "worker").
					RequiredAffinity(tu.Term(tu.Expr(tu.Zone, corev1.NodeSelectorOpNotIn, "pod-2"))).Deployment()
				_, err := c.Client().AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
				wantDenied(t, err, templateTerms+"[0]", denyRule)
			},
		},
		bypass{
			name:    "unknown-datacenter",
			way:     "create a worker Deployment selecting pod-9, a datacenter that does not exist (its pods would stay Pending)",
			outcome: "denied: " + templateSel + " by " + denyRule + ", with the hint \"did you mean pod-1? known datacenters: pod-1, pod-2, pod-3\"",
			run: func(t *testing.T, c *cluster.Cluster) {
				ns := cluster.Namespace(t, c)
				d := tu.Deployment(ns, "worker").Labels("app", "worker").InDC("pod-9").Deployment()
				_, err := c.Client().AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
				wantDenied(t, err, templateSel, denyRule)
				if err != nil && !strings.Contains(err.Error(), "did you mean pod-1? known datacenters: pod-1, pod-2, pod-3") {
					t.Errorf("denial %q lacks the hint", err)
				}
			},
		},
		bypass{
			name:    "pod-relabelled-into-pinned-rule",
			way:     "create a pod labelled app=decoy with no datacenter selector, then relabel it app=worker",
			outcome: "denied: the relabel, on " + podSelector + " by " + denyRule + " (a pod relabelled into a rule is judged as if created; its placement cannot change, so it must be recreated)",
			run: func(t *testing.T, c *cluster.Cluster) {
				ctx := context.Background()
				ns := cluster.Namespace(t, c)
				cs := c.Client()
				pod := tu.Pod(ns, "decoy").Labels("app", "decoy").Pod()
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					t.Fatalf("create: %v", err)
				}
				_, err := cs.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"worker"}}}`), metav1.PatchOptions{})
				if err == nil {
					t.Errorf("relabel admitted: pod %s/%s is now app=worker without a datacenter selector", ns, pod.Name)
				}
				wantDenied(t, err, podSelector, denyRule)
			},
		},
		bypass{
			name:    "kubelet-changes-datacenter-label",
			way:     "the kubelet of pod-1's last worker (system:node:<name>, group system:nodes) patches its Node's zone label to pod-2",
			outcome: "denied: " + zoneLabelField + " by " + webhook.RuleLabelGuard + " (NodeRestriction lets kubelets set topology.kubernetes.io/zone)",
			run: func(t *testing.T, c *cluster.Cluster) {
				node := lastNode(c, "pod-1")
				_, err := kubeletClient(c, node, nil).CoreV1().Nodes().Patch(context.Background(), node, types.StrategicMergePatchType, zonePatch("pod-2"), metav1.PatchOptions{})
				wantDenied(t, err, zoneLabelField, webhook.RuleLabelGuard)
			},
		},
		bypass{
			name:    "kubelet-status-update",
			way:     "the same kubelet updates nodes/status (a condition, as a heartbeat does)",
			outcome: "admitted and never sent to the webhook (the labels-change condition filters it); the same kubelet's label patch is sent",
			run: func(t *testing.T, c *cluster.Cluster) {
				ctx := context.Background()
				node := lastNode(c, "pod-1")
				kubelet := kubeletClient(c, node, nil)
				before := nodeValidations(t)
				status := []byte(`{"status":{"conditions":[{"type":"E2EBypassProbe","status":"True","reason":"Probe","message":"bypass matrix","lastHeartbeatTime":"` +
					time.Now().UTC().Format(time.RFC3339) + `"}]}}`)
				if _, err := kubelet.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, status, metav1.PatchOptions{}, "status"); err != nil {
					t.Fatalf("kubelet status update: %v", err)
				}
				t.Cleanup(func() {
					drop := []byte(`{"status":{"conditions":[{"type":"E2EBypassProbe","$patch":"delete"}]}}`)
					_, _ = c.Client().CoreV1().Nodes().Patch(context.Background(), node, types.StrategicMergePatchType, drop, metav1.PatchOptions{}, "status")
				})
				if got := nodeValidations(t); got != before {
					t.Errorf("the webhook judged %v Node requests during a status update, want none", got-before)
				}
				// The counter does move for what the webhook is sent.
				_, err := kubelet.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, zonePatch("pod-2"), metav1.PatchOptions{})
				wantDenied(t, err, zoneLabelField, webhook.RuleLabelGuard)
				if got := nodeValidations(t); got != before+1 {
					t.Errorf("Node requests judged: %v after a label patch, want %v", got, before+1)
				}
			},
		},
		bypass{
			name:    "kubelet-changes-datacenter-label-through-status",
			way:     "a kubelet patches its Node's zone label through the nodes/status subresource, which keeps metadata changes",
			outcome: "denied: " + zoneLabelField + " by " + webhook.RuleLabelGuard + " (nodes/status is in the nodes webhook's rules)",
			run: func(t *testing.T, c *cluster.Cluster) {
				ctx := context.Background()
				admin := c.Client()
				// A node of its own, cordoned and never Ready: moving it
				// changes nothing for the rest of the suite.
				if _, err := admin.CoreV1().Nodes().Create(ctx, tu.Node(bypassNode).InDC("pod-3").Cordoned().NotReady().Obj(), metav1.CreateOptions{}); err != nil {
					t.Fatalf("admin creating a labelled node: %v", err)
				}
				t.Cleanup(func() { _ = admin.CoreV1().Nodes().Delete(context.Background(), bypassNode, metav1.DeleteOptions{}) })
				_, err := kubeletClient(c, bypassNode, nil).CoreV1().Nodes().Patch(ctx, bypassNode, types.StrategicMergePatchType, zonePatch("pod-1"), metav1.PatchOptions{}, "status")
				if err == nil {
					got, _ := admin.CoreV1().Nodes().Get(ctx, bypassNode, metav1.GetOptions{})
					t.Errorf("status patch admitted: node %s now has %s=%q", bypassNode, tu.Zone, got.Labels[tu.Zone])
				}
				wantDenied(t, err, zoneLabelField, webhook.RuleLabelGuard)
			},
		},
		bypass{
			name:    "mirror-pod-from-kubelet",
			way:     "a pod-2 kubelet creates the mirror of a static worker pod selecting pod-1 (NodeRestriction: bound to itself, owned by its Node)",
			outcome: "admitted with the warning \"" + denyRule + ": spec.nodeName: ... mirror of a static pod\"",
			run: func(t *testing.T, c *cluster.Cluster) {
				ctx := context.Background()
				ns := cluster.Namespace(t, c)
				node := lastNode(c, "pod-2")
				n, err := c.Client().CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				pod := tu.Pod(ns, "worker-"+node).Labels("app", "worker").InDC("pod-1").NodeName(node).Mirror().OwnedByNode(node, n.UID).Pod()
				warnings := &recorder{}
				if _, err := kubeletClient(c, node, warnings).CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					t.Fatalf("mirror pod refused: %v", err)
				}
				if got := warnings.get(); !contains(got, denyRule+": spec.nodeName: ") || !contains(got, mirrorNote) {
					t.Errorf("warnings = %q, want the %s violation on spec.nodeName noted as a mirror pod", got, denyRule)
				}
			},
		},
		bypass{
			name:    "mirror-annotation-from-user",
			way:     "a namespace editor (ClusterRole edit) creates a worker pod with spec.nodeName on a pod-2 node, no datacenter selector, and the kubernetes.io/config.mirror annotation",
			outcome: "admitted with the warning \"" + denyRule + ": " + podSelector + ": ... mirror of a static pod\"; the API server only requires spec.nodeName; a kubelet never runs a mirror pod, it deletes it as an orphan",
			run: func(t *testing.T, c *cluster.Cluster) {
				ns := cluster.Namespace(t, c)
				const editor = "e2e-ns-editor"
				bind(t, c, ns, editor, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"})
				cfg := rest.CopyConfig(c.RESTConfig())
				cfg.Impersonate = rest.ImpersonationConfig{UserName: editor, Groups: []string{"system:authenticated"}}
				warnings := &recorder{}
				cfg.WarningHandler = warnings
				user := kubernetes.NewForConfigOrDie(cfg)
				pod := tu.Pod(ns, "worker").Labels("app", "worker").NodeName(lastNode(c, "pod-2")).Mirror().Pod()
				eventually(t, "the editor creating a pod with the mirror annotation", func(ctx context.Context) (bool, error) {
					_, err := user.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
					if apierrors.IsForbidden(err) {
						return false, nil // the RoleBinding is not in effect yet
					}
					if err != nil {
						t.Fatalf("pod with the mirror annotation refused: %v", err)
					}
					return true, nil
				})
				if got := warnings.get(); !contains(got, denyRule+": "+podSelector+": ") || !contains(got, mirrorNote) {
					t.Errorf("warnings = %q, want the %s violation on %s noted as a mirror pod", got, denyRule, podSelector)
				}
			},
		},
		bypass{
			name:    "namespace-ignore-label",
			way:     "label the namespace " + ignoreLabel + "=true, then create a worker Deployment without a datacenter",
			outcome: "admitted (no webhook is called there); kubectl dc check --cluster still reports it by " + denyRule + " and exits 1",
			run: func(t *testing.T, c *cluster.Cluster) {
				ctx := context.Background()
				ns := cluster.Namespace(t, c)
				cs := c.Client()
				optOut := []byte(`{"metadata":{"labels":{"` + ignoreLabel + `":"true"}}}`)
				if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, optOut, metav1.PatchOptions{}); err != nil {
					t.Fatal(err)
				}
				d := tu.Deployment(ns, "worker").Labels("app", "worker").Deployment()
				eventually(t, "the API server skipping the webhook in the opted-out namespace", func(ctx context.Context) (bool, error) {
					_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
					return err == nil, nil
				})
				if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
					t.Fatalf("create in the opted-out namespace: %v", err)
				}
				stdout, stderr, code := cluster.KubectlDC(t, c, 3*time.Minute, "check", "--cluster", "-n", ns, "-o", "json")
				if code != 1 {
					t.Fatalf("kubectl dc check --cluster -n %s exited %d, want 1\nstdout:\n%s\nstderr:\n%s", ns, code, stdout, stderr)
				}
				var report struct {
					Results []struct {
						Object policy.ObjectRef `json:"object"`
						Rule   string           `json:"rule"`
						Action string           `json:"action"`
						Field  string           `json:"field"`
					} `json:"results"`
				}
				if err := json.Unmarshal([]byte(stdout), &report); err != nil {
					t.Fatalf("check output is not JSON: %v\n%s", err, stdout)
				}
				found := false
				for _, r := range report.Results {
					found = found || (r.Object.Kind == "Deployment" && r.Object.Name == d.Name && r.Rule == denyRule && r.Action == "Deny" && r.Field == templateSel)
				}
				if !found {
					t.Errorf("check does not report Deployment %s/%s on %s by %s:\n%s", ns, d.Name, templateSel, denyRule, stdout)
				}
			},
		},
		bypass{
			name:    "namespace-ignore-label-who-may-set",
			way:     "a namespace admin (ClusterRole admin bound by a RoleBinding in the namespace) sets " + ignoreLabel + "=true on its own Namespace",
			outcome: "forbidden by RBAC: admin may read its Namespace object but not update or patch it (nor its status or finalize subresources, which also keep label changes); a Role in the namespace that lists namespaces would allow it",
			run: func(t *testing.T, c *cluster.Cluster) {
				ctx := context.Background()
				ns := cluster.Namespace(t, c)
				cs := c.Client()
				const nsAdmin, labeler = "e2e-ns-admin", "e2e-ns-labeler"
				bind(t, c, ns, nsAdmin, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"})
				// The namespace's own object is authorized in the namespace:
				// the RoleBinding applies to it, admin reads it.
				eventually(t, "the RoleBinding in effect", func(ctx context.Context) (bool, error) {
					return canI(t, c, nsAdmin, ns, "get", ""), nil
				})
				for _, verb := range []string{"update", "patch"} {
					for _, sub := range []string{"", "status", "finalize"} {
						if canI(t, c, nsAdmin, ns, verb, sub) {
							t.Errorf("namespace admin may %s namespaces/%s %s", verb, sub, ns)
						}
					}
				}
				// Those subresources matter: unlike pods/status, they keep
				// changes to metadata, labels included.
				viaStatus := []byte(`{"metadata":{"labels":{"e2e.kubectl-dc.io/via-status":"true"}}}`)
				if got, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, viaStatus, metav1.PatchOptions{}, "status"); err != nil || got.Labels["e2e.kubectl-dc.io/via-status"] != "true" {
					t.Errorf("a label set through namespaces/status was dropped (err %v); the who-may-set list names that subresource for nothing", err)
				}
				optOut := []byte(`{"metadata":{"labels":{"` + ignoreLabel + `":"true"}}}`)
				cfg := rest.CopyConfig(c.RESTConfig())
				cfg.Impersonate = rest.ImpersonationConfig{UserName: nsAdmin, Groups: []string{"system:authenticated"}}
				admin := kubernetes.NewForConfigOrDie(cfg)
				if _, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
					t.Errorf("namespace admin reading its namespace: %v", err)
				}
				_, err := admin.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, optOut, metav1.PatchOptions{})
				if !apierrors.IsForbidden(err) {
					t.Errorf("namespace admin labelling its namespace: err = %v, want Forbidden", err)
				}
				// Who else may: a Role of that namespace granting namespaces
				// patch, since the request is authorized in the namespace.
				role := &rbacv1.Role{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "namespace-labeler"},
					Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"patch"}}},
				}
				if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				bind(t, c, ns, labeler, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name})
				eventually(t, "a namespaced Role granting patch on its Namespace", func(ctx context.Context) (bool, error) {
					return canI(t, c, labeler, ns, "patch", ""), nil
				})
				cfg.Impersonate.UserName = labeler
				got, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, optOut, metav1.PatchOptions{})
				if err != nil || got.Labels[ignoreLabel] != "true" {
					t.Errorf("subject of a namespaced Role granting patch on namespaces labelling its namespace: %v", err)
				}
			},
		},
		excludedNamespace("kube-node-lease", "admitted: excluded by name (kubernetes.io/metadata.name) from every webhook; only cluster administrators create workloads there"),
		excludedNamespace("dc-system", "admitted: the webhook's own namespace is excluded by name so that it can always start; only cluster administrators create workloads there"),
		bypass{
			name:    "namespace-kube-system",
			way:     "create a worker Deployment without a datacenter in kube-system (server dry run)",
			outcome: "denied: " + templateSel + " by " + denyRule + " while the webhook answers (failurePolicy Ignore: admitted when it does not)",
			run: func(t *testing.T, c *cluster.Cluster) {
				d := tu.Deployment("kube-system", "e2e-bypass-worker").Labels("app", "worker").Deployment()
				_, err := c.Client().AppsV1().Deployments("kube-system").Create(context.Background(), d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				wantDenied(t, err, templateSel, denyRule)
			},
		},
		bypass{
			name:    "object-being-deleted",
			way:     "delete a pinned worker Deployment held by a finalizer, then remove its nodeSelector",
			outcome: "admitted (matchCondition not-being-deleted); harmless: the deployment controller only syncs status of a Deployment being deleted and makes no ReplicaSet from the new template",
			run:     runBeingDeleted,
		},
	)
	rows = append(rows, quorumBypasses()...)
	return append(rows, startupBypasses()...)
}

// runBeingDeleted is the object-being-deleted row.
func runBeingDeleted(t *testing.T, c *cluster.Cluster) {
	ctx := context.Background()
	ns := cluster.Namespace(t, c)
	cs := c.Client()
	d := tu.Deployment(ns, "worker").Labels("app", "worker").InDC("pod-1").Finalizers(holdFinalizer).Deployment()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	release := func() {
		_, _ = cs.AppsV1().Deployments(ns).Patch(context.Background(), d.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	}
	t.Cleanup(release)
	var first string
	eventually(t, "the Deployment's ReplicaSet", func(ctx context.Context) (bool, error) {
		rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(rss.Items) != 1 {
			return false, nil
		}
		first = rss.Items[0].Name
		return true, nil
	})
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, d.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	got, err := cs.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil {
		t.Fatalf("Deployment not held with a deletionTimestamp: %v", err)
	}
	remove := []byte(`[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]`)
	upd, err := cs.AppsV1().Deployments(ns).Patch(ctx, d.Name, types.JSONPatchType, remove, metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("update of a Deployment being deleted refused: %v", err)
	}
	if len(upd.Spec.Template.Spec.NodeSelector) != 0 {
		t.Fatalf("nodeSelector after the update = %v", upd.Spec.Template.Spec.NodeSelector)
	}
	// The controller has judged the new template once it reports the new
	// generation as observed.
	eventually(t, "the deployment controller observing the new generation", func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		return err == nil && got.Status.ObservedGeneration >= upd.Generation, nil
	})
	rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range rss.Items {
		if rs.Name != first || rs.Spec.Template.Spec.NodeSelector[tu.Zone] != "pod-1" {
			t.Errorf("ReplicaSet %s (nodeSelector %v) appeared for a Deployment being deleted; want only %s, selecting pod-1", rs.Name, rs.Spec.Template.Spec.NodeSelector, first)
		}
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeSelector[tu.Zone] != "pod-1" {
			t.Errorf("pod %s selects %v, want pod-1", p.Name, p.Spec.NodeSelector)
		}
	}
	release()
}

// excludedNamespace is the row of a namespace the webhooks exclude by name.
func excludedNamespace(ns, outcome string) bypass {
	return bypass{
		name:    "namespace-" + ns,
		way:     "create a worker Deployment without a datacenter in " + ns + " (server dry run)",
		outcome: outcome,
		run: func(t *testing.T, c *cluster.Cluster) {
			ctx := context.Background()
			cs := c.Client()
			_, err := cs.CoreV1().Namespaces().Create(ctx, tu.Namespace(ns), metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			d := tu.Deployment(ns, "e2e-bypass-worker").Labels("app", "worker").Deployment()
			if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				t.Errorf("worker without a datacenter in %s: %v, want admitted", ns, err)
			}
		},
	}
}

// wantDenied is wantInvalid with the field matched exactly, not as a
// substring (spec.template.spec... is part of spec.jobTemplate.spec...).
func wantDenied(t *testing.T, err error, field, rule string) {
	t.Helper()
	wantInvalid(t, err, field, rule)
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return
	}
	var fields []string
	for _, c := range status.Status().Details.Causes {
		if c.Field == field {
			return
		}
		fields = append(fields, c.Field)
	}
	t.Errorf("causes %v lack exactly %s", fields, field)
}

// unscheduled names a scheduler that does not exist, so that no scheduler
// binds the pod and the test binds it itself.
func unscheduled(spec *corev1.PodSpec) { spec.SchedulerName = noScheduler }

// lastNode returns the last node of dc: a worker, as control planes come
// first.
func lastNode(c *cluster.Cluster, dc string) string {
	nodes := c.Nodes(dc)
	return nodes[len(nodes)-1]
}

func zonePatch(dc string) []byte {
	return []byte(`{"metadata":{"labels":{"` + tu.Zone + `":"` + dc + `"}}}`)
}

// kubeletClient impersonates the kubelet of node, as the Node authorizer
// and NodeRestriction know it; warnings may be nil.
func kubeletClient(c *cluster.Cluster, node string, warnings *recorder) kubernetes.Interface {
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:node:" + node, Groups: []string{"system:nodes", "system:authenticated"}}
	if warnings != nil {
		cfg.WarningHandler = warnings
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

func ctrlClient(t *testing.T, c *cluster.Cluster) client.Client {
	t.Helper()
	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: policy.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func deletePodNow(c *cluster.Cluster, ns, name string) {
	zero := int64(0)
	_ = c.Client().CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
}

// nodeValidations returns how many Node requests the webhook has judged.
func nodeValidations(t *testing.T) float64 {
	t.Helper()
	metrics, err := local.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	const series = `dc_webhook_request_duration_seconds_count{kind="Node",webhook="validate"} `
	sc := bufio.NewScanner(strings.NewReader(metrics))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s%s: %v", series, v, err)
			}
			return n
		}
	}
	return 0
}

// bind binds user to ref in namespace ns.
func bind(t *testing.T, c *cluster.Cluster, ns, user string, ref rbacv1.RoleRef) {
	t.Helper()
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		RoleRef:    ref,
	}
	if _, err := c.Client().RbacV1().RoleBindings(ns).Create(context.Background(), rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// canI asks the API server whether user may verb the Namespace ns (or its
// subresource), with the attributes the API server gives such a request:
// a Namespace's own object is authorized in that namespace.
func canI(t *testing.T, c *cluster.Cluster, user, ns, verb, subresource string) bool {
	t.Helper()
	return access(t, c, user, authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Resource: "namespaces", Subresource: subresource, Name: ns})
}

// canDo asks whether user may verb resource (or its subresource) in ns.
func canDo(t *testing.T, c *cluster.Cluster, user, ns, verb, resource, subresource string) bool {
	t.Helper()
	return access(t, c, user, authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Resource: resource, Subresource: subresource})
}

func access(t *testing.T, c *cluster.Cluster, user string, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user,
		Groups:             []string{"system:authenticated"},
		ResourceAttributes: &attrs,
	}}
	got, err := c.Client().AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	return got.Status.Allowed
}
