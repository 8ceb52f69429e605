package pinnedrows

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

var dryRunAll = []string{metav1.DryRunAll}

// Rows are the rows of the pinned rules: denials, warnings, mutations and
// the documented admissions, each holding in both modes.
func Rows() []Row {
	rows := []Row{
		{
			Name:    "deny-warn-audit",
			Way:     "create worker, warn-me and audit-me Deployments without a datacenter",
			Outcome: "the worker denied on " + TemplateSel + " by " + DenyRule + "; warn-me admitted with " + WarnRule + "'s warning; audit-me admitted silently",
			Run:     runDenyWarnAudit,
		},
		{
			Name:    "mutation-injects-selector",
			Way:     "create a worker Deployment labelled " + DCLabel + "=pod-2 without a datacenter, then change only its labels",
			Outcome: "mutated and admitted: nodeSelector zone=pod-2 injected, its pods scheduled in pod-2; the label-only update adds nothing",
			Run:     runMutationInjects,
		},
		{
			Name:    "update-removes-selector-Deployment",
			Way:     "patch a pinned worker Deployment to remove its nodeSelector",
			Outcome: "denied: " + TemplateSel + " by " + DenyRule,
			Run: func(t *testing.T, e *Env) {
				removeSelector(t, e, tu.Deployment("", "worker"))
			},
		},
		{
			Name:    "other-template-kinds",
			Way:     "create worker CronJob, ReplicaSet and ReplicationController without a datacenter, and a CronJob in pod-3",
			Outcome: "the three denied on their template's nodeSelector by " + DenyRule + "; the CronJob in pod-3 admitted",
			Run:     runOtherKinds,
		},
		{
			Name:    "kubectl-server-dry-run",
			Way:     "kubectl apply --dry-run=server a worker Deployment without a datacenter",
			Outcome: "refused; kubectl prints the rule, the field and the known datacenters; nothing created",
			Run:     runKubectlDryRun,
		},
		{
			Name:    "nodeName-in-another-datacenter",
			Way:     "create a jupiter-brain pod selecting pod-1 with spec.nodeName on a pod-2 node, skipping the scheduler",
			Outcome: "denied: spec.nodeName by " + DenyRule + " (by the webhook in both modes: the compiled policies cannot see the Node, and the webhook is sent pods on a named node)",
			Run: func(t *testing.T, e *Env) {
				c := e.Cluster
				ns := cluster.Namespace(t, c)
				pod := tu.Pod(ns, "brain").Labels("app", "jupiter-brain").InDC("pod-1").NodeName(LastNode(c, "pod-2")).Pod()
				_, err := c.Client().CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
				WantDenied(t, e, err, "spec.nodeName", DenyRule)
			},
		},
		{
			Name:    "nodeName-without-selector",
			Way:     "create a worker pod with spec.nodeName and no datacenter selector",
			Outcome: "denied: " + PodSelector + " by " + DenyRule,
			Run: func(t *testing.T, e *Env) {
				c := e.Cluster
				ns := cluster.Namespace(t, c)
				pod := tu.Pod(ns, "worker").Labels("app", "worker").NodeName(LastNode(c, "pod-2")).Pod()
				_, err := c.Client().CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
				WantDenied(t, e, err, PodSelector, DenyRule)
			},
		},
		{
			Name: "binding-pinned-pod-to-another-datacenter",
			Way:  "POST pods/binding of a worker pod selecting pod-1 to a pod-2 node (a scheduler of one's own)",
			Outcome: "admitted, documented: the webhook caches member pods only, so a Binding does not show it the pod's selector; " +
				"the kubelet refuses to run a pod whose nodeSelector its node does not match (NodeAffinity), and only the scheduler " +
				"and cluster administrators may create pods/binding (namespace admin may not)",
			Run: runBindingPinned,
		},
	}

	// Every kind with a pod template, without a datacenter selector.
	for _, k := range []struct {
		build func(namespace, name string) *tu.ObjectBuilder
		field string
	}{
		{tu.Deployment, TemplateSel},
		{tu.ReplicaSet, TemplateSel},
		{tu.StatefulSet, TemplateSel},
		{tu.DaemonSet, TemplateSel},
		{tu.Job, TemplateSel},
		{tu.CronJob, "spec.jobTemplate.spec.template.spec.nodeSelector" + zoneKey},
		{tu.ReplicationController, TemplateSel},
		{tu.PodTemplate, "template.spec.nodeSelector" + zoneKey},
	} {
		kind := k.build("", "").Kind()
		rows = append(rows, Row{
			Name:    "template-" + kind,
			Way:     "create a worker " + kind + " whose pod template selects no datacenter",
			Outcome: "denied: " + k.field + " by " + DenyRule,
			Run: func(t *testing.T, e *Env) {
				ns := cluster.Namespace(t, e.Cluster)
				obj := k.build(ns, "worker").Labels("app", "worker").Obj()
				err := CtrlClient(t, e.Cluster).Create(context.Background(), obj.(client.Object))
				WantDenied(t, e, err, k.field, DenyRule)
			},
		})
	}

	rows = append(rows,
		Row{
			Name:    "template-labels-only",
			Way:     "create a Deployment whose own labels match no rule while its pod template carries app=worker and no selector",
			Outcome: "denied: " + TemplateSel + " by " + DenyRule + " (a rule selects a workload by its own labels or any pod template's: the pods carry the template's)",
			Run: func(t *testing.T, e *Env) {
				ns := cluster.Namespace(t, e.Cluster)
				d := tu.Deployment(ns, "decoy").TemplateLabels("app", "worker").Deployment()
				_, err := e.Cluster.Client().AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
				WantDenied(t, e, err, TemplateSel, DenyRule)
			},
		},
		Row{
			Name:    "update-removes-selector",
			Way:     "update a pinned worker StatefulSet to remove its nodeSelector",
			Outcome: "denied: " + TemplateSel + " by " + DenyRule,
			Run: func(t *testing.T, e *Env) {
				removeSelector(t, e, tu.StatefulSet("", "worker"))
			},
		},
		Row{
			Name:    "update-widens-selector",
			Way:     "update a pinned worker Deployment: drop nodeSelector, add required node affinity zone In [pod-1, pod-2]",
			Outcome: "denied: " + TemplateTerms + "[0] by " + DenyRule,
			Run:     runWidens,
		},
		Row{
			Name:    "affinity-terms-in-two-datacenters",
			Way:     "create a worker pod whose two ORed required node affinity terms pin pod-1 and pod-2",
			Outcome: "denied: " + PodTerms + "[1] by " + DenyRule,
			Run: func(t *testing.T, e *Env) {
				ns := cluster.Namespace(t, e.Cluster)
				pod := tu.Pod(ns, "worker").Labels("app", "worker").
					RequiredAffinity(tu.Term(tu.In(tu.Zone, "pod-1")), tu.Term(tu.In(tu.Zone, "pod-2"))).Pod()
				_, err := e.Cluster.Client().CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
				WantDenied(t, e, err, PodTerms+"[1]", DenyRule)
			},
		},
		Row{
			Name:    "affinity-term-without-datacenter",
			Way:     "create a worker pod whose first ORed term pins pod-1 and whose second names only a hostname in pod-2",
			Outcome: "denied: " + PodTerms + "[1] by " + DenyRule,
			Run: func(t *testing.T, e *Env) {
				ns := cluster.Namespace(t, e.Cluster)
				pod := tu.Pod(ns, "worker").Labels("app", "worker").
					RequiredAffinity(tu.Term(tu.In(tu.Zone, "pod-1")), tu.Term(tu.In(corev1.LabelHostname, LastNode(e.Cluster, "pod-2")))).Pod()
				_, err := e.Cluster.Client().CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
				WantDenied(t, e, err, PodTerms+"[1]", DenyRule)
			},
		},
		Row{
			Name:    "affinity-NotIn",
			Way:     "create a worker Deployment whose only required term is zone NotIn [pod-2] (pod-1 and pod-3)",
			Outcome: "denied: " + TemplateTerms + "[0] by " + DenyRule,
			Run: func(t *testing.T, e *Env) {
				ns := cluster.Namespace(t, e.Cluster)
				d := tu.Deployment(ns, "worker").Labels("app", "worker").
					RequiredAffinity(tu.Term(tu.Expr(tu.Zone, corev1.NodeSelectorOpNotIn, "pod-2"))).Deployment()
				_, err := e.Cluster.Client().AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
				WantDenied(t, e, err, TemplateTerms+"[0]", DenyRule)
			},
		},
		Row{
			Name:    "unknown-datacenter",
			Way:     "create a worker Deployment selecting pod-9, a datacenter that does not exist (its pods would stay Pending)",
			Outcome: "denied: " + TemplateSel + " by " + DenyRule + ", naming the known datacenters pod-1, pod-2, pod-3 (the webhook also says \"did you mean pod-1?\": row unknown-datacenter-hint)",
			Run: func(t *testing.T, e *Env) {
				ns := cluster.Namespace(t, e.Cluster)
				d := tu.Deployment(ns, "worker").Labels("app", "worker").InDC("pod-9").Deployment()
				_, err := e.Cluster.Client().AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
				WantDenied(t, e, err, TemplateSel, DenyRule)
				if err != nil && !strings.Contains(err.Error(), "known datacenters: pod-1, pod-2, pod-3") {
					t.Errorf("denial %q does not list the known datacenters", err)
				}
			},
		},
		Row{
			Name:    "pod-relabelled-into-pinned-rule",
			Way:     "create a pod labelled app=decoy with no datacenter selector, then relabel it app=worker",
			Outcome: "denied: the relabel, on " + PodSelector + " by " + DenyRule + " (a pod relabelled into a rule is judged as if created; its placement cannot change, so it must be recreated)",
			Run: func(t *testing.T, e *Env) {
				ctx := context.Background()
				ns := cluster.Namespace(t, e.Cluster)
				cs := e.Cluster.Client()
				pod := tu.Pod(ns, "decoy").Labels("app", "decoy").Pod()
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					t.Fatalf("create: %v", err)
				}
				_, err := cs.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"worker"}}}`), metav1.PatchOptions{})
				WantDenied(t, e, err, PodSelector, DenyRule)
			},
		},
		Row{
			Name:    "pod-datacenterFromLabel-relabelled",
			Way:     "relabel a running worker pod pinned to pod-1 from " + DCLabel + "=pod-1 to pod-2 (it would become an endpoint of pod-2's Service)",
			Outcome: "denied: " + PodSelector + " by " + DenyRule,
			Run: func(t *testing.T, e *Env) {
				ctx := context.Background()
				ns := cluster.Namespace(t, e.Cluster)
				cs := e.Cluster.Client()
				pod := tu.Pod(ns, "worker").Labels("app", "worker", DCLabel, "pod-1").InDC("pod-1").Pod()
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					t.Fatalf("create: %v", err)
				}
				_, err := cs.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"`+DCLabel+`":"pod-2"}}}`), metav1.PatchOptions{})
				WantDenied(t, e, err, PodSelector, DenyRule)
			},
		},
		Row{
			Name:    "mutation-of-owned-pod",
			Way:     "create a worker pod of a custom controller (ownerReference to a ConfigMap) labelled " + DCLabel + "=pod-2, with no selector",
			Outcome: "mutated and admitted: nodeSelector zone=pod-2 injected (pods with ownerReferences are mutated too)",
			Run:     runOwnedPod,
		},
		Row{
			Name:    "affinity-60k-values-kube-system",
			Way:     "create (server dry run) a kube-system worker pod whose one required term has two In lists of 30,000 values on the zone: quadratic to evaluate, and kube-system fails open on a timeout",
			Outcome: "denied at once: " + PodTerms + "[0].matchExpressions by " + DenyRule + " (more than 32 datacenter values in a term)",
			Run: func(t *testing.T, e *Env) {
				pod := tu.Pod("kube-system", "e2e-huge-affinity").Labels("app", "worker").
					RequiredAffinity(tu.Term(tu.In(tu.Zone, values("a-", 30000)...), tu.In(tu.Zone, values("b-", 30000)...))).Pod()
				// On a saturated machine the API server can take longer
				// than the webhook's timeout to send this request, and
				// kube-system then fails open: that admission is the
				// timeout's, not the webhook's answer, so the row asks
				// again (at most twice) when a webhook failed open.
				for attempt := 1; ; attempt++ {
					before := FailedOpen(t, e)
					start := time.Now()
					_, err := e.Cluster.Client().CoreV1().Pods("kube-system").Create(context.Background(), pod, metav1.CreateOptions{DryRun: dryRunAll})
					t.Logf("answered in %s", time.Since(start))
					if err == nil && attempt < 3 && FailedOpen(t, e) > before {
						t.Logf("admitted because a webhook did not answer in time (failed open); asking again")
						continue
					}
					WantDenied(t, e, err, PodTerms+"[0].matchExpressions", DenyRule)
					return
				}
			},
		},
		Row{
			Name:    "mirror-pod-from-kubelet",
			Way:     "a pod-2 kubelet creates the mirror of a static worker pod selecting pod-1 (NodeRestriction: bound to itself, owned by its Node)",
			Outcome: "admitted with the webhook's warning \"" + DenyRule + ": spec.nodeName: ... mirror of a static pod\" (the compiled policies leave mirror pods to the webhook)",
			Run:     runMirrorFromKubelet,
		},
		Row{
			Name:    "mirror-annotation-from-user",
			Way:     "a namespace editor (ClusterRole edit) creates a worker pod with spec.nodeName on a pod-2 node, no datacenter selector, and the kubernetes.io/config.mirror annotation",
			Outcome: "admitted with the webhook's warning \"" + DenyRule + ": " + PodSelector + ": ... mirror of a static pod\"; the API server only requires spec.nodeName; a kubelet never runs a mirror pod, it deletes it as an orphan",
			Run:     runMirrorFromUser,
		},
		Row{
			Name:    "namespace-ignore-label",
			Way:     "label the namespace " + IgnoreLabel + "=true, then create a worker Deployment without a datacenter",
			Outcome: "admitted (no webhook nor compiled policy applies there); kubectl dc check --cluster still reports it by " + DenyRule + " and exits 1",
			Run:     runIgnoreLabel,
		},
		Row{
			Name:    "namespace-ignore-label-who-may-set",
			Way:     "a namespace admin (ClusterRole admin bound by a RoleBinding in the namespace) sets " + IgnoreLabel + "=true on its own Namespace",
			Outcome: "forbidden by RBAC: admin may read its Namespace object but not update or patch it (nor its status or finalize subresources, which also keep label changes); a Role in the namespace that lists namespaces would allow it",
			Run:     runWhoMaySet,
		},
		excludedNamespace("kube-node-lease", "admitted: excluded by name (kubernetes.io/metadata.name) from every webhook and compiled policy; only cluster administrators create workloads there"),
		excludedNamespace("dc-system", "admitted: the webhook's own namespace is excluded by name so that it can always start; only cluster administrators create workloads there"),
		Row{
			Name:    "namespace-kube-system",
			Way:     "create a worker Deployment without a datacenter in kube-system (server dry run)",
			Outcome: "denied: " + TemplateSel + " by " + DenyRule + " (webhook mode: while the webhook answers, failurePolicy Ignore; cel mode: always, by the API server)",
			Run: func(t *testing.T, e *Env) {
				d := tu.Deployment("kube-system", "e2e-bypass-worker").Labels("app", "worker").Deployment()
				_, err := e.Cluster.Client().AppsV1().Deployments("kube-system").Create(context.Background(), d, metav1.CreateOptions{DryRun: dryRunAll})
				WantDenied(t, e, err, TemplateSel, DenyRule)
			},
		},
		Row{
			Name:    "object-being-deleted",
			Way:     "delete a pinned worker Deployment held by a finalizer, then remove its nodeSelector",
			Outcome: "admitted (matchCondition not-being-deleted); harmless: the deployment controller only syncs status of a Deployment being deleted and makes no ReplicaSet from the new template",
			Run:     runBeingDeleted,
		},
		Row{
			Name:    "scale-down-pre-policy-replicaset",
			Way:     "a worker ReplicaSet without a datacenter selector, created while its namespace was opted out, is scaled down and given a new image once the namespace is judged again; then its nodeSelector is changed",
			Outcome: "scale-down and image update admitted (an UPDATE is judged on what it changes); the change of placement denied: " + TemplateSel + " by " + DenyRule,
			Run:     runPrePolicyReplicaSet,
		},
	)
	return rows
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

func runDenyWarnAudit(t *testing.T, e *Env) {
	c := e.Cluster
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	warnings := &Recorder{}
	cs := ClientWithWarnings(c, warnings)

	_, err := cs.AppsV1().Deployments(ns).Create(ctx, tu.Deployment(ns, "worker").Labels("app", "worker").Deployment(), metav1.CreateOptions{})
	WantDenied(t, e, err, TemplateSel, DenyRule)

	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, tu.Deployment(ns, "warned").Labels("app", WarnApp).Deployment(), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Warn rule denied: %v", err)
	}
	WantWarning(t, e, warnings.Get(), TemplateSel, WarnRule)

	before := len(warnings.Get())
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, tu.Deployment(ns, "audited").Labels("app", AuditApp).Deployment(), metav1.CreateOptions{}); err != nil {
		t.Fatalf("Audit rule denied: %v", err)
	}
	if got := warnings.Get()[before:]; len(got) != 0 {
		t.Errorf("Audit rule warned: %q", got)
	}
	WantMetrics(t, e,
		`dc_webhook_decisions_total{action="Audit",kind="Deployment",operation="CREATE",rule="`+AuditRule+`"}`,
		`dc_webhook_decisions_total{action="Warn",kind="Deployment",operation="CREATE",rule="`+WarnRule+`"}`,
		`dc_webhook_decisions_total{action="Deny",kind="Deployment",operation="CREATE",rule="`+DenyRule+`"}`,
		`dc_webhook_request_duration_seconds_bucket{kind="Deployment",webhook="validate",le="0.001"}`,
		`dc_webhook_request_duration_seconds_count{kind="Deployment",webhook="validate"}`)
}

func runMutationInjects(t *testing.T, e *Env) {
	c := e.Cluster
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	cs := c.Client()
	d := tu.Deployment(ns, "worker").Labels("app", "worker").ObjectLabels(DCLabel, "pod-2").Deployment()
	got, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if sel := got.Spec.Template.Spec.NodeSelector[tu.Zone]; sel != "pod-2" {
		t.Fatalf("nodeSelector = %v, want zone pod-2 injected", got.Spec.Template.Spec.NodeSelector)
	}
	WantMetrics(t, e, `dc_webhook_mutations_total{kind="Deployment"}`, `dc_webhook_request_duration_seconds_count{kind="Deployment",webhook="mutate"}`)
	// Its pods land in pod-2.
	Eventually(t, e, "worker pod scheduled in pod-2", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=worker"})
		if err != nil || len(pods.Items) == 0 || pods.Items[0].Spec.NodeName == "" {
			return false, nil
		}
		if !strings.HasPrefix(pods.Items[0].Spec.NodeName, "pod-2-") {
			t.Fatalf("pod placed on %s, want a pod-2 node", pods.Items[0].Spec.NodeName)
		}
		return true, nil
	})
	// A label-only update re-runs the mutation, which adds nothing.
	upd, err := cs.AppsV1().Deployments(ns).Patch(ctx, got.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if len(upd.Spec.Template.Spec.NodeSelector) != 1 {
		t.Errorf("nodeSelector after update = %v", upd.Spec.Template.Spec.NodeSelector)
	}
}

// removeSelector creates a pinned worker of b's kind in pod-1, with no
// replicas, and patches its nodeSelector away.
func removeSelector(t *testing.T, e *Env, b *tu.ObjectBuilder) {
	ctx := context.Background()
	ns := cluster.Namespace(t, e.Cluster)
	obj := b.Labels("app", "worker").InDC("pod-1").Replicas(0).Obj().(client.Object)
	obj.SetNamespace(ns)
	cl := CtrlClient(t, e.Cluster)
	if err := cl.Create(ctx, obj); err != nil {
		t.Fatalf("create: %v", err)
	}
	// A patch, not an Update: the controllers keep writing status.
	remove := client.RawPatch(types.JSONPatchType, []byte(`[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]`))
	err := cl.Patch(ctx, obj, remove)
	WantDenied(t, e, err, TemplateSel, DenyRule)
}

func runOtherKinds(t *testing.T, e *Env) {
	c := e.Cluster
	ns := cluster.Namespace(t, c)
	ctx := context.Background()
	cs := c.Client()
	cron := tu.CronJob(ns, "worker").Labels("app", "worker").Obj().(*batchv1.CronJob)
	_, err := cs.BatchV1().CronJobs(ns).Create(ctx, cron, metav1.CreateOptions{})
	WantDenied(t, e, err, "spec.jobTemplate.spec.template.spec.nodeSelector"+zoneKey, DenyRule)

	rs := tu.ReplicaSet(ns, "worker").Labels("app", "worker").Obj().(*appsv1.ReplicaSet)
	_, err = cs.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{})
	WantDenied(t, e, err, TemplateSel, DenyRule)

	rc := tu.ReplicationController(ns, "worker").Labels("app", "worker").Obj().(*corev1.ReplicationController)
	_, err = cs.CoreV1().ReplicationControllers(ns).Create(ctx, rc, metav1.CreateOptions{})
	WantDenied(t, e, err, TemplateSel, DenyRule)

	ok := tu.CronJob(ns, "worker-ok").Labels("app", "worker").InDC("pod-3").Obj().(*batchv1.CronJob)
	if _, err := cs.BatchV1().CronJobs(ns).Create(ctx, ok, metav1.CreateOptions{}); err != nil {
		t.Errorf("CronJob in pod-3 denied: %v", err)
	}
}

func runWidens(t *testing.T, e *Env) {
	ctx := context.Background()
	ns := cluster.Namespace(t, e.Cluster)
	cs := e.Cluster.Client()
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
	WantDenied(t, e, err, TemplateTerms+"[0]", DenyRule)
}

func runBindingPinned(t *testing.T, e *Env) {
	ctx := context.Background()
	c := e.Cluster
	ns := cluster.Namespace(t, c)
	cs := c.Client()
	pod := tu.Pod(ns, "worker").Labels("app", "worker").InDC("pod-1").Edit(func(s *corev1.PodSpec) { s.SchedulerName = noScheduler }).Pod()
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := cs.CoreV1().Pods(ns).Bind(ctx, tu.Binding(ns, pod.Name, LastNode(c, "pod-2")), metav1.CreateOptions{}); err != nil {
		t.Fatalf("the documented outcome is an admitted binding, got %v", err)
	}
	const nsAdmin = "e2e-binding-admin"
	Bind(t, c, ns, nsAdmin, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"})
	Eventually(t, e, "the RoleBinding in effect", func(ctx context.Context) (bool, error) {
		return CanDo(t, c, nsAdmin, ns, "create", "pods", ""), nil
	})
	if CanDo(t, c, nsAdmin, ns, "create", "pods", "binding") {
		t.Errorf("a namespace admin may create pods/binding in %s: the documented guarantee does not hold", ns)
	}
}

func runOwnedPod(t *testing.T, e *Env) {
	ctx := context.Background()
	ns := cluster.Namespace(t, e.Cluster)
	cs := e.Cluster.Client()
	owner, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "controller"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := tu.Pod(ns, "worker").Labels("app", "worker", DCLabel, "pod-2").Pod()
	yes := true
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: &yes}}
	got, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("owned pod refused instead of mutated: %v", err)
	}
	if got.Spec.NodeSelector[tu.Zone] != "pod-2" {
		t.Errorf("nodeSelector = %v, want %s=pod-2", got.Spec.NodeSelector, tu.Zone)
	}
}

func runMirrorFromKubelet(t *testing.T, e *Env) {
	ctx := context.Background()
	c := e.Cluster
	ns := cluster.Namespace(t, c)
	node := LastNode(c, "pod-2")
	n, err := c.Client().CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := tu.Pod(ns, "worker-"+node).Labels("app", "worker").InDC("pod-1").NodeName(node).Mirror().OwnedByNode(node, n.UID).Pod()
	warnings := &Recorder{}
	if _, err := KubeletClient(c, node, warnings).CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("mirror pod refused: %v", err)
	}
	if got := warnings.Get(); !Contains(got, DenyRule+": spec.nodeName: ") || !Contains(got, mirrorNote) {
		t.Errorf("warnings = %q, want the %s violation on spec.nodeName noted as a mirror pod", got, DenyRule)
	}
}

func runMirrorFromUser(t *testing.T, e *Env) {
	c := e.Cluster
	ns := cluster.Namespace(t, c)
	const editor = "e2e-ns-editor"
	Bind(t, c, ns, editor, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"})
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: editor, Groups: []string{"system:authenticated"}}
	warnings := &Recorder{}
	cfg.WarningHandler = warnings
	user := kubernetes.NewForConfigOrDie(cfg)
	pod := tu.Pod(ns, "worker").Labels("app", "worker").NodeName(LastNode(c, "pod-2")).Mirror().Pod()
	Eventually(t, e, "the editor creating a pod with the mirror annotation", func(ctx context.Context) (bool, error) {
		_, err := user.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) {
			return false, nil // the RoleBinding is not in effect yet
		}
		if err != nil {
			t.Fatalf("pod with the mirror annotation refused: %v", err)
		}
		return true, nil
	})
	if got := warnings.Get(); !Contains(got, DenyRule+": "+PodSelector+": ") || !Contains(got, mirrorNote) {
		t.Errorf("warnings = %q, want the %s violation on %s noted as a mirror pod", got, DenyRule, PodSelector)
	}
}

func runIgnoreLabel(t *testing.T, e *Env) {
	ctx := context.Background()
	c := e.Cluster
	ns := cluster.Namespace(t, c)
	cs := c.Client()
	optOut := []byte(`{"metadata":{"labels":{"` + IgnoreLabel + `":"true"}}}`)
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, optOut, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	d := tu.Deployment(ns, "worker").Labels("app", "worker").Deployment()
	Eventually(t, e, "the API server skipping the opted-out namespace", func(ctx context.Context) (bool, error) {
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{DryRun: dryRunAll})
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
		found = found || (r.Object.Kind == "Deployment" && r.Object.Name == d.Name && r.Rule == DenyRule && r.Action == "Deny" && r.Field == TemplateSel)
	}
	if !found {
		t.Errorf("check does not report Deployment %s/%s on %s by %s:\n%s", ns, d.Name, TemplateSel, DenyRule, stdout)
	}
}

func runWhoMaySet(t *testing.T, e *Env) {
	ctx := context.Background()
	c := e.Cluster
	ns := cluster.Namespace(t, c)
	cs := c.Client()
	const nsAdmin, labeler = "e2e-ns-admin", "e2e-ns-labeler"
	Bind(t, c, ns, nsAdmin, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"})
	// The namespace's own object is authorized in the namespace: the
	// RoleBinding applies to it, admin reads it.
	Eventually(t, e, "the RoleBinding in effect", func(ctx context.Context) (bool, error) {
		return CanI(t, c, nsAdmin, ns, "get", ""), nil
	})
	for _, verb := range []string{"update", "patch"} {
		for _, sub := range []string{"", "status", "finalize"} {
			if CanI(t, c, nsAdmin, ns, verb, sub) {
				t.Errorf("namespace admin may %s namespaces/%s %s", verb, sub, ns)
			}
		}
	}
	// Those subresources matter: like pods/status, they keep changes to
	// metadata, labels included.
	viaStatus := []byte(`{"metadata":{"labels":{"e2e.kubectl-dc.io/via-status":"true"}}}`)
	if got, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, viaStatus, metav1.PatchOptions{}, "status"); err != nil || got.Labels["e2e.kubectl-dc.io/via-status"] != "true" {
		t.Errorf("a label set through namespaces/status was dropped (err %v); the who-may-set list names that subresource for nothing", err)
	}
	optOut := []byte(`{"metadata":{"labels":{"` + IgnoreLabel + `":"true"}}}`)
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
	// Who else may: a Role of that namespace granting namespaces patch,
	// since the request is authorized in the namespace.
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "namespace-labeler"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"patch"}}},
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	Bind(t, c, ns, labeler, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name})
	Eventually(t, e, "a namespaced Role granting patch on its Namespace", func(ctx context.Context) (bool, error) {
		return CanI(t, c, labeler, ns, "patch", ""), nil
	})
	cfg.Impersonate.UserName = labeler
	got, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, optOut, metav1.PatchOptions{})
	if err != nil || got.Labels[IgnoreLabel] != "true" {
		t.Errorf("subject of a namespaced Role granting patch on namespaces labelling its namespace: %v", err)
	}
}

// excludedNamespace is the row of a namespace excluded by name.
func excludedNamespace(ns, outcome string) Row {
	return Row{
		Name:    "namespace-" + ns,
		Way:     "create a worker Deployment without a datacenter in " + ns + " (server dry run)",
		Outcome: outcome,
		Run: func(t *testing.T, e *Env) {
			ctx := context.Background()
			cs := e.Cluster.Client()
			_, err := cs.CoreV1().Namespaces().Create(ctx, tu.Namespace(ns), metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			d := tu.Deployment(ns, "e2e-bypass-worker").Labels("app", "worker").Deployment()
			if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{DryRun: dryRunAll}); err != nil {
				t.Errorf("worker without a datacenter in %s: %v, want admitted", ns, err)
			}
		},
	}
}

func runBeingDeleted(t *testing.T, e *Env) {
	ctx := context.Background()
	ns := cluster.Namespace(t, e.Cluster)
	cs := e.Cluster.Client()
	d := tu.Deployment(ns, "worker").Labels("app", "worker").InDC("pod-1").Finalizers(holdFinalizer).Deployment()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	release := func() {
		_, _ = cs.AppsV1().Deployments(ns).Patch(context.Background(), d.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	}
	t.Cleanup(release)
	var first string
	Eventually(t, e, "the Deployment's ReplicaSet", func(ctx context.Context) (bool, error) {
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
	Eventually(t, e, "the deployment controller observing the new generation", func(ctx context.Context) (bool, error) {
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

func runPrePolicyReplicaSet(t *testing.T, e *Env) {
	ctx := context.Background()
	ns := cluster.Namespace(t, e.Cluster)
	cs := e.Cluster.Client()
	optOut := func(v string) {
		t.Helper()
		patch := []byte(`{"metadata":{"labels":{"` + IgnoreLabel + `":` + v + `}}}`)
		if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	probe := tu.Deployment(ns, "probe").Labels("app", "worker").Deployment()
	optOut(`"true"`)
	Eventually(t, e, "the opted-out namespace skipped", func(ctx context.Context) (bool, error) {
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: dryRunAll})
		return err == nil, nil
	})
	rs := tu.ReplicaSet(ns, "worker").Labels("app", "worker").Replicas(2).Obj().(*appsv1.ReplicaSet)
	if _, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create while opted out: %v", err)
	}
	optOut("null")
	Eventually(t, e, "the namespace judged again", func(ctx context.Context) (bool, error) {
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: dryRunAll})
		return err != nil, nil
	})
	patch := func(p string) error {
		_, err := cs.AppsV1().ReplicaSets(ns).Patch(ctx, rs.Name, types.StrategicMergePatchType, []byte(p), metav1.PatchOptions{})
		return err
	}
	if err := patch(`{"spec":{"replicas":0}}`); err != nil {
		t.Errorf("scale-down refused: %v", err)
	}
	if err := patch(`{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"registry.example/app:2"}]}}}}`); err != nil {
		t.Errorf("image-only update refused: %v", err)
	}
	err := patch(`{"spec":{"template":{"spec":{"nodeSelector":{"disk":"ssd"}}}}}`)
	WantDenied(t, e, err, TemplateSel, DenyRule)
}

func runKubectlDryRun(t *testing.T, e *Env) {
	c := e.Cluster
	ns := cluster.Namespace(t, c)
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	bad, err := yaml.Marshal(tu.Deployment(ns, "worker").Labels("app", "worker").Deployment())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--kubeconfig", c.Kubeconfig(), "apply", "--dry-run=server", "-f", "-")
	cmd.Stdin = bytes.NewReader(bad)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("kubectl apply --dry-run=server admitted a worker without a datacenter:\n%s", out)
	}
	for _, want := range []string{DenyRule, TemplateSel, "pod-1, pod-2, pod-3"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl output lacks %q:\n%s", want, out)
		}
	}
	// The dry run left nothing behind.
	if _, err := c.Client().AppsV1().Deployments(ns).Get(context.Background(), "worker", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("dry run created the deployment: %v", err)
	}
}
