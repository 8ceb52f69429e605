package webhook_test

import (
	"bufio"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubectl-dc/kubectl-dc/policy"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/e2e/pinnedrows"
	"github.com/kubectl-dc/kubectl-dc/webhook"
)

// Field paths and names the bypass matrix asserts.
const (
	zoneKey        = "[" + tu.Zone + "]"
	templateSel    = "spec.template.spec.nodeSelector" + zoneKey
	podTerms       = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
	zoneLabelField = "metadata.labels" + zoneKey
	noScheduler    = "e2e-no-such-scheduler"
	holdFinalizer  = "e2e.kubectl-dc.io/hold"
	ignoreLabel    = "placement.kubectl-dc.io/ignore"
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
		{
			name:    "kubelet-changes-datacenter-label",
			way:     "the kubelet of pod-1's last worker (system:node:<name>, group system:nodes) patches its Node's zone label to pod-2",
			outcome: "denied: " + zoneLabelField + " by " + webhook.RuleLabelGuard + " (NodeRestriction lets kubelets set topology.kubernetes.io/zone)",
			run: func(t *testing.T, c *cluster.Cluster) {
				node := lastNode(c, "pod-1")
				_, err := kubeletClient(c, node, nil).CoreV1().Nodes().Patch(context.Background(), node, types.StrategicMergePatchType, zonePatch("pod-2"), metav1.PatchOptions{})
				wantDenied(t, err, zoneLabelField, webhook.RuleLabelGuard)
			},
		},
		{
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
		{
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
		{
			name:    "unknown-datacenter-hint",
			way:     "create a worker Deployment selecting pod-9, a datacenter that does not exist",
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
	}
	rows = append(rows, quorumBypasses()...)
	rows = append(rows, startupBypasses()...)
	// The rows of the pinned rules, shared with test/e2e/cel, which runs
	// them with the compiled admission policies enforcing.
	e := &pinnedrows.Env{Mode: pinnedrows.Webhook, Metrics: func() (string, error) { return local.Metrics() }, LogTail: func() string { return local.LogTail() }}
	for _, r := range pinnedrows.Rows() {
		rows = append(rows, bypass{name: r.Name, way: r.Way, outcome: r.Outcome, run: func(t *testing.T, c *cluster.Cluster) {
			env := *e
			env.Cluster = c
			r.Run(t, &env)
		}})
	}
	return rows
}

// TestRowsListed: every row of this suite is either shared with the
// compiled admission policies' suite (pinnedrows.Rows) or listed as
// holding with the webhook enforcing only, with its reason
// (pinnedrows.WebhookOnly), and nothing is listed that is not a row.
func TestRowsListed(t *testing.T) {
	listed := map[string]bool{}
	for _, l := range pinnedrows.WebhookOnly {
		if l.Reason == "" {
			t.Errorf("%s is listed without a reason", l.Name)
		}
		listed[l.Name] = true
	}
	shared := map[string]bool{}
	for _, r := range pinnedrows.Rows() {
		shared[r.Name] = true
	}
	seen := map[string]bool{}
	for _, b := range bypasses() {
		seen[b.name] = true
		if shared[b.name] == listed[b.name] {
			t.Errorf("row %s: shared %v, listed as webhook-only %v; want exactly one", b.name, shared[b.name], listed[b.name])
		}
	}
	for name := range listed {
		if !seen[name] && !strings.HasPrefix(name, "Test") {
			t.Errorf("%s is listed as webhook-only but is no row of TestBypassMatrix", name)
		}
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
