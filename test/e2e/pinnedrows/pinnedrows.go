// Package pinnedrows holds the e2e rows of the pinned rules, shared by the
// suite that runs them with dc-webhook enforcing (test/e2e/webhook) and
// the one that runs them with the webhook's pinned path disabled and the
// compiled admission policies enforcing (test/e2e/cel), against the
// MacStadium example policy and the e2e-actions policy (Policies). A row
// asserts the same outcome in both modes; where the answer necessarily
// comes from elsewhere (a ValidatingAdmissionPolicy rather than the
// webhook), WantDenied and WantWarning know what each mode says. The
// rows that hold only with the webhook enforcing are listed in
// WebhookOnly, each with its reason.
package pinnedrows

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

// Mode is who enforces the pinned rules while the rows run.
type Mode string

// The modes the rows run in.
const (
	// Webhook: dc-webhook judges and injects (--pinned-enforcement=webhook).
	Webhook Mode = "webhook"
	// CEL: the compiled admission policies judge and inject
	// (--pinned-enforcement=cel); the webhook configurations send only
	// pods on a named node of the pinned rules.
	CEL Mode = "cel"
)

// Rules, labels and apps of the policies the rows run against.
const (
	DenyRule  = "macstadium/per-datacenter-services"
	WarnRule  = "e2e-actions/warn"
	AuditRule = "e2e-actions/audit"
	WarnApp   = "warn-me"
	AuditApp  = "audit-me"
	DCLabel   = "placement.kubectl-dc.io/datacenter"
	// IgnoreLabel opts a namespace out of every webhook and compiled policy.
	IgnoreLabel = "placement.kubectl-dc.io/ignore"
)

// Field paths the rows assert.
const (
	zoneKey       = "[" + tu.Zone + "]"
	PodSelector   = "spec.nodeSelector" + zoneKey
	TemplateSel   = "spec.template.spec.nodeSelector" + zoneKey
	PodTerms      = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
	TemplateTerms = "spec.template." + PodTerms
	mirrorNote    = "mirror of a static pod"
	noScheduler   = "e2e-no-such-scheduler"
	holdFinalizer = "e2e.kubectl-dc.io/hold"
)

// Actions is the e2e-actions policy: the pinned check with the Warn and
// Audit actions. The MacStadium example (manifests/examples) holds the
// Deny rule.
func Actions() *v1alpha1.PlacementPolicy {
	return tu.Policy("e2e-actions").Datacenters("pod-1", "pod-2", "pod-3").Pinned(
		tu.PinnedRule("warn").In("app", WarnApp).Action(v1alpha1.ActionWarn),
		tu.PinnedRule("audit").In("app", AuditApp).Action(v1alpha1.ActionAudit),
	).Obj()
}

// Env is what a row runs against.
type Env struct {
	Cluster *cluster.Cluster
	Mode    Mode
	// Metrics reads the local webhook's Prometheus exposition; nil where
	// the webhook does not judge the rows (cel mode).
	Metrics func() (string, error)
	// LogTail is the end of the local webhook's log, for failures.
	LogTail func() string
}

// Row is one way around (or through) the pinned rules and what the
// cluster answers. docs/bypass.md lists the same rows.
type Row struct {
	Name    string
	Way     string
	Outcome string
	Run     func(t *testing.T, e *Env)
}

// Listed is a row of the webhook suite that holds with the webhook
// enforcing only, and why.
type Listed struct {
	Name   string
	Reason string
}

// Reasons a row holds with the webhook enforcing only.
const (
	reasonSpread  = "a spread rule: it needs the cluster's members, which only the webhook sees; spread rules stay with the webhook in every mode"
	reasonGuard   = "the Node label guard: it needs the requester's groups and the Node's old labels, and stays with the webhook in every mode"
	reasonHint    = "the did-you-mean hint is the webhook's: a compiled policy's message lists the known datacenters instead (row unknown-datacenter asserts that)"
	reasonStartup = "the webhook's own caches and startup; no compiled policy is involved"
)

// WebhookOnly are the rows of test/e2e/webhook's TestBypassMatrix and
// tests that are not in Rows, each with its reason. The webhook suite
// fails when a row of its own is in neither list.
var WebhookOnly = []Listed{
	{"binding-member-breaking-spread", reasonSpread},
	{"unknown-datacenter-hint", reasonHint},
	{"kubelet-changes-datacenter-label", reasonGuard},
	{"kubelet-status-update", reasonGuard},
	{"kubelet-changes-datacenter-label-through-status", reasonGuard},
	{"member-template-maxSkew-100", reasonSpread},
	{"member-template-matchLabelKeys-pod-name", reasonSpread},
	{"member-template-anti-affinity-elsewhere", reasonSpread},
	{"member-template-confined-to-one-datacenter", reasonSpread},
	{"member-template-DaemonSet", reasonSpread},
	{"learner-self-declared", reasonSpread},
	{"owner-decoy-statefulset", reasonSpread},
	{"scale-subresource", reasonSpread},
	{"first-member-without-expectedMembers", reasonSpread},
	{"terminating-member-counts", reasonSpread},
	{"node-relabel-moves-member", reasonSpread + "; a Node relabel is judged by the nodes webhook"},
	{"namespace-not-yet-in-cache", reasonStartup},
	{"answer-before-engine-built", reasonStartup},
	{"TestBindingDenied", reasonSpread},
	{"TestLabelGuard", reasonGuard},
	{"TestMirrorPodWarnedNotDenied", reasonSpread},
}

// Recorder collects the API server's warning headers.
type Recorder struct {
	mu   sync.Mutex
	msgs []string
}

// HandleWarningHeader implements rest.WarningHandler.
func (r *Recorder) HandleWarningHeader(_ int, _ string, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, text)
}

// Get returns the warnings so far.
func (r *Recorder) Get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// ClientWithWarnings is the admin client, its warnings recorded by r.
func ClientWithWarnings(c *cluster.Cluster, r *Recorder) kubernetes.Interface {
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.WarningHandler = r
	return kubernetes.NewForConfigOrDie(cfg)
}

// Eventually polls cond for up to a minute.
func Eventually(t *testing.T, e *Env, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, cond); err != nil {
		tail := ""
		if e != nil && e.LogTail != nil {
			tail = e.LogTail()
		}
		t.Fatalf("%s: %v\nwebhook log:\n%s", what, err, tail)
	}
}

// Contains reports whether some string of list contains sub.
func Contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// fromWebhook reports whether a denial of field is the webhook's in mode:
// always with the webhook enforcing; with the compiled policies, only for
// what they leave to it (a pod's spec.nodeName).
func fromWebhook(mode Mode, field string) bool {
	return mode == Webhook || field == "spec.nodeName"
}

// termsIndex is the part of a field path the compiled policies do not
// say: which required node affinity term, and which of its expressions.
var termsIndex = regexp.MustCompile(`nodeSelectorTerms\[\d+\].*$`)

// CELField is field as the compiled policies' messages name it: they name
// the terms, not the one term (nor expression) at fault.
func CELField(field string) string {
	return termsIndex.ReplaceAllString(field, "nodeSelectorTerms")
}

// WantDenied asserts that err refuses the request on field by rule: with
// the webhook enforcing, the webhook's field-level Invalid whose causes
// name exactly field; with the compiled policies, the Invalid of a
// ValidatingAdmissionPolicy whose message names the rule and the field.
func WantDenied(t *testing.T, e *Env, err error, field, rule string) {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted; want a denial on %s by %s", field, rule)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || !apierrors.IsInvalid(err) {
		t.Fatalf("error %v is not an Invalid status", err)
	}
	st := status.Status()
	if !fromWebhook(e.Mode, field) {
		want := "PlacementPolicy rule " + rule + ": " + CELField(field)
		if !strings.Contains(st.Message, "ValidatingAdmissionPolicy") || !strings.Contains(st.Message, want) {
			t.Errorf("message %q is not a compiled policy's naming %q", st.Message, want)
		}
		return
	}
	if !strings.Contains(st.Message, `admission webhook "`) || !strings.Contains(st.Message, rule) {
		t.Errorf("message %q does not come from the webhook rule %s", st.Message, rule)
	}
	var fields []string
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			if c.Field == field {
				return
			}
			fields = append(fields, c.Field)
		}
	}
	t.Errorf("causes %v lack exactly %s", fields, field)
}

// FailedOpen is how many requests the API servers have admitted because
// a webhook with failurePolicy Ignore failed (did not answer in time).
func FailedOpen(t *testing.T, e *Env) float64 {
	t.Helper()
	texts, err := e.Cluster.APIServerMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, text := range texts {
		n += cluster.MetricSum(text, "apiserver_admission_webhook_fail_open_count")
	}
	return n
}

// WantWarning asserts that warnings hold rule's warning on field: the
// webhook's "<rule>: <field>: ..." or a compiled policy's "... PlacementPolicy
// rule <rule>: <field>: ...".
func WantWarning(t *testing.T, e *Env, warnings []string, field, rule string) {
	t.Helper()
	want := rule + ": " + field
	if !fromWebhook(e.Mode, field) {
		want = "PlacementPolicy rule " + rule + ": " + CELField(field)
	}
	if !Contains(warnings, want) {
		t.Errorf("warnings = %q, want one with %q", warnings, want)
	}
}

// WantMetrics asserts that the webhook's metrics hold every series of
// want, when the env can read them.
func WantMetrics(t *testing.T, e *Env, want ...string) {
	t.Helper()
	if e.Metrics == nil {
		return
	}
	metrics, err := e.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics lack %s", w)
		}
	}
}

// Bind binds user to ref in namespace ns.
func Bind(t *testing.T, c *cluster.Cluster, ns, user string, ref rbacv1.RoleRef) {
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

// CanI asks the API server whether user may verb the Namespace ns (or its
// subresource), with the attributes the API server gives such a request:
// a Namespace's own object is authorized in that namespace.
func CanI(t *testing.T, c *cluster.Cluster, user, ns, verb, subresource string) bool {
	t.Helper()
	return Access(t, c, user, authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Resource: "namespaces", Subresource: subresource, Name: ns})
}

// CanDo asks whether user may verb resource (or its subresource) in ns.
func CanDo(t *testing.T, c *cluster.Cluster, user, ns, verb, resource, subresource string) bool {
	t.Helper()
	return Access(t, c, user, authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Resource: resource, Subresource: subresource})
}

// Access asks whether user (authenticated) may do attrs.
func Access(t *testing.T, c *cluster.Cluster, user string, attrs authorizationv1.ResourceAttributes) bool {
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

// LastNode returns the last node of dc: a worker, as control planes come
// first.
func LastNode(c *cluster.Cluster, dc string) string {
	nodes := c.Nodes(dc)
	return nodes[len(nodes)-1]
}

// CtrlClient is a controller-runtime client of the admin configuration.
func CtrlClient(t *testing.T, c *cluster.Cluster) client.Client {
	t.Helper()
	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: policy.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// KubeletClient impersonates the kubelet of node, as the Node authorizer
// and NodeRestriction know it; warnings may be nil.
func KubeletClient(c *cluster.Cluster, node string, warnings *Recorder) kubernetes.Interface {
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:node:" + node, Groups: []string{"system:nodes", "system:authenticated"}}
	if warnings != nil {
		cfg.WarningHandler = warnings
	}
	return kubernetes.NewForConfigOrDie(cfg)
}
