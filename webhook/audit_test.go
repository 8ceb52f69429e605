package webhook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apiadmission "k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// bothFixture is a handler with two policies: travis, whose pinned rule
// is enforced in both mode (its spec.pinnedEnforcement), its datacenters
// those of the Nodes, and macstadium, enforced by the webhook (the
// default). The auditor's Node cache holds a datacenter pod-4 the
// engine's state does not know yet, as when the two caches see a new
// datacenter's first Node at different moments: a pod-4 selection is
// then admitted by the compiled policy and denied by the engine.
func bothFixture(t *testing.T) (*fixture, *PinnedAuditor) {
	t.Helper()
	travis := tu.Policy("travis").Pinned(tu.PinnedRule("workers").MatchLabels("app", "worker").FromLabel("example.com/dc-of")).
		Edit(func(p *v1alpha1.PlacementPolicy) { p.Spec.PinnedEnforcement = v1alpha1.PinnedEnforcementBoth }).Value()
	macstadium := tu.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(tu.PinnedRule("brains").MatchLabels("app", "brain").FromLabel(dcLabel)).Value()
	f := newFixture(t, travis, macstadium)
	nodes := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	for _, o := range append(tu.Nodes(2, "pod-1", "pod-2", "pod-3"), tu.Node("pod-4-1").InDC("pod-4").Obj()) {
		if err := nodes.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	a := &PinnedAuditor{Mode: PinnedWebhook, Nodes: nodes, Log: discardLog{}}
	if err := a.BuildFor(f.h.Engine()); err != nil {
		t.Fatal(err)
	}
	f.h.Audit = a
	return f, a
}

// TestBothModeStepsAside: in both mode the validating webhook refuses
// nothing the compiled policies judge (a worker without a datacenter is
// theirs to refuse), but keeps what they cannot judge (a pod's
// spec.nodeName in another datacenter) and the rules of the policies it
// enforces itself.
func TestBothModeStepsAside(t *testing.T) {
	f, _ := bothFixture(t)
	validate := func(obj runtime.Object) admission.Response {
		return f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, obj, nil, admin))
	}
	if r := validate(tu.Deployment("apps", "worker").Labels("app", "worker").Obj()); !r.Allowed || len(r.Warnings) != 0 {
		t.Errorf("both mode: a worker without a datacenter: allowed=%v warnings=%v %v, want admitted silently (the compiled policy refuses it)", r.Allowed, r.Warnings, r.Result)
	}
	if r := validate(tu.Pod("apps", "worker-0").Labels("app", "worker").InDC("pod-1").NodeName("pod-2-1").Obj()); r.Allowed || !slices.Contains(causes(r), "spec.nodeName") {
		t.Errorf("both mode: a worker pod selecting pod-1 on a pod-2 node: allowed=%v causes=%v, want denied on spec.nodeName", r.Allowed, causes(r))
	}
	if r := validate(tu.Deployment("apps", "brain").Labels("app", "brain").Obj()); r.Allowed {
		t.Errorf("webhook mode: a brain without a datacenter admitted")
	}
}

// TestBothModeAudits: the mutating webhook, which sees every object after
// the compiled mutating policies and before the API server's validation,
// judges the rules in both mode with the engine and with the compiled
// policies in-process, counts each disagreement by rule, never changes
// its answer for it, and injects only for the policies the webhook
// enforces.
func TestBothModeAudits(t *testing.T) {
	f, _ := bothFixture(t)
	mutate := func(obj runtime.Object) admission.Response {
		return f.h.Mutate().Handle(context.Background(), request(t, admissionv1.Create, obj, nil, admin))
	}
	diff := func() float64 { return counterValue(f.h.Metrics.PinnedDifferences.WithLabelValues("travis/workers")) }

	// They agree: pod-1 is known to both, no selector is refused by both.
	for _, obj := range []runtime.Object{
		tu.Deployment("apps", "worker").Labels("app", "worker").InDC("pod-1").Obj(),
		tu.Deployment("apps", "worker").Labels("app", "worker").Obj(),
		tu.Deployment("apps", "web").Labels("app", "web").Obj(),
	} {
		if r := mutate(obj); !r.Allowed || len(r.Patches) != 0 {
			t.Errorf("mutate: allowed=%v patches=%v, want admitted unchanged", r.Allowed, r.Patches)
		}
	}
	if d := diff(); d != 0 {
		t.Errorf("%v differences where the two agree", d)
	}
	if n := counterValue(f.h.Metrics.PinnedAudits); n != 2 {
		t.Errorf("%v requests audited, want 2 (the web Deployment matches no rule in both mode)", n)
	}

	// They disagree: pod-4 is known to the compiled policy alone.
	if r := mutate(tu.Deployment("apps", "worker").Labels("app", "worker").InDC("pod-4").Obj()); !r.Allowed || len(r.Patches) != 0 {
		t.Errorf("a disagreement changed the answer: allowed=%v patches=%v", r.Allowed, r.Patches)
	}
	if d := diff(); d != 1 {
		t.Errorf("%v differences counted for travis/workers, want 1", d)
	}

	// The compiled mutating policy injects travis's label; the webhook
	// does not, but still injects macstadium's.
	if r := mutate(tu.Deployment("apps", "worker").Labels("app", "worker").ObjectLabels("example.com/dc-of", "pod-2").Obj()); !r.Allowed || len(r.Patches) != 0 {
		t.Errorf("both mode: the webhook injected %v for a rule the compiled policies inject", r.Patches)
	}
	// Also when it carries a key of a policy the webhook enforces whose
	// rule does not select it.
	if r := mutate(tu.Deployment("apps", "worker").Labels("app", "worker").ObjectLabels("example.com/dc-of", "pod-2", dcLabel, "pod-1").Obj()); !r.Allowed || len(r.Patches) != 0 {
		t.Errorf("both mode: the webhook injected %v for a rule the compiled policies inject", r.Patches)
	}
	if r := mutate(tu.Deployment("apps", "brain").Labels("app", "brain").ObjectLabels(dcLabel, "pod-2").Obj()); !r.Allowed || len(r.Patches) != 1 {
		t.Errorf("webhook mode: patches %v, want the nodeSelector injected", r.Patches)
	}
}

// TestScopeConditionsPerPolicy: each policy's pinned rules go where its
// spec.pinnedEnforcement says, whatever the flag.
func TestScopeConditionsPerPolicy(t *testing.T) {
	cel := tu.Policy("a").Pinned(tu.PinnedRule("r").MatchLabels("app", "in-cel").FromLabel("example.com/cel-dc")).
		Edit(func(p *v1alpha1.PlacementPolicy) { p.Spec.PinnedEnforcement = v1alpha1.PinnedEnforcementCEL }).Value()
	both := tu.Policy("b").Pinned(tu.PinnedRule("r").MatchLabels("app", "in-both").FromLabel("example.com/both-dc")).
		Edit(func(p *v1alpha1.PlacementPolicy) { p.Spec.PinnedEnforcement = v1alpha1.PinnedEnforcementBoth }).Value()
	hook := tu.Policy("c").Pinned(tu.PinnedRule("r").MatchLabels("app", "in-webhook").FromLabel("example.com/webhook-dc")).Value()
	eng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{cel, both, hook})
	if err != nil {
		t.Fatal(err)
	}
	_, selected, mutate, _ := (&ScopeNodes{Pinned: PinnedWebhook}).Conditions(eng)
	beforeNodeName := func(s string) string {
		if i := strings.Index(s, "nodeName"); i >= 0 {
			return s[:i]
		}
		return s
	}
	for _, tc := range []struct {
		what, expr, sub string
		want            bool
	}{
		{"validating sends the webhook policy's workloads", beforeNodeName(selected), `"in-webhook"`, true},
		{"validating does not send the cel policy's workloads", beforeNodeName(selected), `"in-cel"`, false},
		{"validating does not send the both policy's workloads", beforeNodeName(selected), `"in-both"`, false},
		{"validating sends pods on a named node of the cel policy", selected, `"in-cel"`, true},
		{"mutating injects the webhook policy's key", mutate, `"example.com/webhook-dc"`, true},
		{"mutating does not inject the cel policy's key", mutate, `"example.com/cel-dc"`, false},
		{"mutating does not inject the both policy's key", mutate, `"example.com/both-dc"`, false},
		{"mutating audits the both policy's workloads", mutate, `"in-both"`, true},
		{"mutating never sees the cel policy's workloads", mutate, `"in-cel"`, false},
	} {
		if got := strings.Contains(tc.expr, tc.sub); got != tc.want {
			t.Errorf("%s: %s in %q is %v, want %v", tc.what, tc.sub, tc.expr, got, tc.want)
		}
	}
}

// BenchmarkMutateAudit measures what the audit of both mode adds to the
// mutating handler: the same worker Deployment (selected by travis's rule,
// pinned to pod-1) through a handler that audits it (travis in both mode)
// and through one that does not (travis enforced by the webhook).
func BenchmarkMutateAudit(b *testing.B) {
	travis := func(mode v1alpha1.PinnedEnforcement) v1alpha1.PlacementPolicy {
		return tu.Policy("travis").Pinned(tu.PinnedRule("workers").MatchLabels("app", "worker").FromLabel("example.com/dc-of")).
			Edit(func(p *v1alpha1.PlacementPolicy) { p.Spec.PinnedEnforcement = mode }).Value()
	}
	req := request(b, admissionv1.Create, tu.Deployment("apps", "worker").Labels("app", "worker").InDC("pod-1").Obj(), nil, admin)
	for _, mode := range []v1alpha1.PinnedEnforcement{v1alpha1.PinnedEnforcementWebhook, v1alpha1.PinnedEnforcementBoth} {
		b.Run(string(mode), func(b *testing.B) {
			f := newFixture(b, travis(mode))
			nodes := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
			for _, o := range tu.Nodes(2, "pod-1", "pod-2", "pod-3") {
				_ = nodes.Add(o)
			}
			a := &PinnedAuditor{Mode: PinnedWebhook, Nodes: nodes, Log: discardLog{}}
			if err := a.BuildFor(f.h.Engine()); err != nil {
				b.Fatal(err)
			}
			f.h.Audit = a
			h := f.h.Mutate()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.Handle(ctx, req)
			}
		})
	}
}

// TestPolicyFieldNeedsTheRightToCompile: where the webhook may not write
// admission policies, a policy's spec.pinnedEnforcement is ignored and the
// webhook keeps enforcing its pinned rules: left to compiled policies no
// one can write, they would be enforced by no one.
func TestPolicyFieldNeedsTheRightToCompile(t *testing.T) {
	cel := tu.Policy("a").Pinned(tu.PinnedRule("r").MatchLabels("app", "in-cel").FromLabel("example.com/cel-dc")).
		Edit(func(p *v1alpha1.PlacementPolicy) { p.Spec.PinnedEnforcement = v1alpha1.PinnedEnforcementCEL }).Value()
	if got := pinnedWebhookOnly.For(&cel); got != PinnedWebhook {
		t.Errorf("without the right to compile: %s, want webhook", got)
	}
	if got := PinnedWebhook.For(&cel); got != PinnedCEL {
		t.Errorf("with it: %s, want cel", got)
	}
	eng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{cel})
	if err != nil {
		t.Fatal(err)
	}
	_, selected, mutate, _ := (&ScopeNodes{Pinned: pinnedWebhookOnly}).Conditions(eng)
	if strings.Contains(selected, "nodeName") || !strings.Contains(selected, `"in-cel"`) || !strings.Contains(mutate, `"example.com/cel-dc"`) {
		t.Errorf("without the right to compile: selected-by-a-rule %q, has-datacenter-label %q; want the policy's workloads sent to both", selected, mutate)
	}
	for _, allowed := range []bool{true, false} {
		cs := fake.NewClientset()
		cs.PrependReactor("create", "selfsubjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
			r := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
			if a := r.Spec.ResourceAttributes; a == nil || a.Resource != "validatingadmissionpolicies" || a.Verb != "create" {
				t.Errorf("asked about %+v", a)
			}
			r.Status.Allowed = allowed
			return true, r, nil
		})
		if got, err := canWriteAdmissionPolicies(context.Background(), cs); err != nil || got != allowed {
			t.Errorf("canWriteAdmissionPolicies = %v, %v; want %v", got, err, allowed)
		}
	}
}

// TestCELModeStepsAside: for a policy in cel mode the validating webhook
// leaves the pinned verdicts to the compiled policies also on the objects
// it is still sent for other reasons (pods on a named node, objects a
// spread rule selects too): it never refuses nor warns a second time for
// them, nor counts a verdict it did not give, but still judges a pod's
// node, mirror pods (the compiled policies leave them out) and spread.
func TestCELModeStepsAside(t *testing.T) {
	travis := tu.Policy("travis").Datacenters("pod-1", "pod-2", "pod-3").Pinned(
		tu.PinnedRule("workers").MatchLabels("app", "worker"),
		tu.PinnedRule("edge").MatchLabels("app", "edge").Action(v1alpha1.ActionWarn),
		tu.PinnedRule("members").MatchLabels("component", "etcd"),
	).Spread(tu.Etcd()).Edit(func(p *v1alpha1.PlacementPolicy) { p.Spec.PinnedEnforcement = v1alpha1.PinnedEnforcementCEL }).Value()
	f := newFixture(t, travis)
	a := &PinnedAuditor{Mode: PinnedWebhook, Log: discardLog{}}
	if err := a.BuildFor(f.h.Engine()); err != nil {
		t.Fatal(err)
	}
	f.h.Audit = a
	nodeSelector := "spec.nodeSelector[" + tu.Zone + "]"
	for _, tc := range []struct {
		name         string
		obj          runtime.Object
		wantAllowed  bool
		wantCauses   []string
		wantWarnings int
	}{
		{"a worker pod on a named node without a datacenter: the compiled policy's refusal", tu.Pod("apps", "w").Labels("app", "worker").NodeName("pod-1-1").Obj(), true, nil, 0},
		{"a worker pod selecting pod-1 on a pod-2 node: the webhook's", tu.Pod("apps", "w").Labels("app", "worker").InDC("pod-1").NodeName("pod-2-1").Obj(), false, []string{"spec.nodeName"}, 0},
		{"a Warn rule's pod on a named node: the compiled policy's warning", tu.Pod("apps", "e").Labels("app", "edge").NodeName("pod-1-1").Obj(), true, nil, 0},
		{"a member a pinned rule selects too, placed well", tu.Pod("kube-system", "etcd-pod-3-1").Labels("component", "etcd").NodeName("pod-3-1").Obj(), true, nil, 0},
		{"the same member next to pod-1's: spread refuses", tu.Pod("kube-system", "etcd-pod-1-2").Labels("component", "etcd").NodeName("pod-1-2").Obj(), false, []string{"spec.nodeName", "spec.nodeName"}, 0},
		{"a mirror worker pod: the compiled policies leave it to the webhook, which warns", tu.Pod("apps", "w").Labels("app", "worker").NodeName("pod-1-1").Mirror().Obj(), true, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.h.Validate().Handle(context.Background(), request(t, admissionv1.Create, tc.obj, nil, admin))
			if r.Allowed != tc.wantAllowed || !slices.Equal(causes(r), tc.wantCauses) || len(r.Warnings) != tc.wantWarnings {
				t.Errorf("allowed=%v causes=%v warnings=%v; want allowed=%v causes=%v and %d warnings", r.Allowed, causes(r), r.Warnings, tc.wantAllowed, tc.wantCauses, tc.wantWarnings)
			}
			if slices.Contains(causes(r), nodeSelector) {
				t.Errorf("refused on %s, which the compiled policy judges", nodeSelector)
			}
		})
	}
	// Counted: the webhook's own verdicts (the node, the mirror pod's
	// warning, spread), none of the compiled policies'.
	for _, c := range []struct {
		rule, action string
		want         float64
	}{
		{"travis/workers", "Deny", 1}, {"travis/workers", "Warn", 1}, {"travis/edge", "Warn", 0},
		{"travis/members", "Deny", 0}, {"travis/etcd", "Deny", 2},
	} {
		if n := counterValue(f.h.Metrics.Decisions.WithLabelValues(c.rule, c.action, "Pod", "CREATE")); n != c.want {
			t.Errorf("%v %s decisions counted for %s, want %v", n, c.action, c.rule, c.want)
		}
	}
}

// TestBothModeFilteredUpdatesCannotDiffer: the mutating webhook is not
// sent an UPDATE that changes neither the labels nor the pod templates
// (the manifests' update-changes-templates-or-labels condition, and
// sameTemplatesAndLabels in the handler), though the compiled validating
// policies still run on it. The audit need not see those updates: neither
// the engine nor a compiled policy judges an update that changes none of
// that, so their verdicts cannot differ. Shown on every kind and
// placement, in a datacenter both know, in one only the compiled policy
// knows (pod-4) and in none, with and without a datacenterFromLabel value
// the placement contradicts: the same objects created do differ.
func TestBothModeFilteredUpdatesCannotDiffer(t *testing.T) {
	f, a := bothFixture(t)
	eng := f.h.Engine()
	v := a.current(eng)
	_, m, err := Configurations("../manifests", nil)
	if err != nil {
		t.Fatal(err)
	}
	var cond []admissionregistrationv1.MatchCondition
	for _, c := range conditionsOf(t, m.Webhooks, "workloads.placement.kubectl-dc.io") {
		if c.Name == "update-changes-templates-or-labels" {
			cond = append(cond, c)
		}
	}
	if len(cond) != 1 {
		t.Fatalf("the mutating webhook has no update-changes-templates-or-labels condition")
	}
	sent := newSender(t, cond)
	if !sent(apiadmission.Update, tu.Deployment("apps", "w").Labels("app", "worker").Obj(), tu.Deployment("apps", "w").Obj(), "") {
		t.Fatal("a relabelled Deployment is not sent either: the condition is not evaluated as the API server does")
	}
	ctx := context.Background()
	differences := func() float64 { return counterValue(f.h.Metrics.PinnedDifferences.WithLabelValues("travis/workers")) }
	creates, updates := 0, 0
	for i := range tu.Kinds("apps", "w") {
		for _, p := range tu.Placements() {
			for _, dc := range []string{"pod-1", "pod-4", "pod-9"} {
				for _, from := range []string{"", "pod-2"} {
					build := func() *tu.ObjectBuilder {
						b := tu.Kinds("apps", "w")[i].Labels("app", "worker").Place(p, tu.Zone, dc, "pod-2")
						if from != "" {
							b.ObjectLabels("example.com/dc-of", from)
						}
						return b
					}
					old := build().Obj()
					// What such updates change: the replicas, the object's
					// annotations, a pod's status.
					obj := build().Replicas(3).Phase(corev1.PodRunning).Obj()
					if _, isPod := obj.(*corev1.Pod); !isPod {
						m, _ := meta.Accessor(obj)
						m.SetAnnotations(map[string]string{"example.com/touched": "yes"})
					}
					what := fmt.Sprintf("%T, %s in %s, datacenterFromLabel %q", obj, p, dc, from)

					before := differences()
					f.h.audit(ctx, eng, v, request(t, admissionv1.Create, old, nil, admin), old)
					if differences() > before {
						creates++
					}
					if sent(apiadmission.Update, obj, old, "") {
						t.Errorf("%s: the update is sent to the mutating webhook", what)
						continue
					}
					if !policy.SameTemplatesAndLabels(old, obj) {
						t.Errorf("%s: the mutating handler would audit the update the configuration does not send", what)
					}
					before, audited := differences(), counterValue(f.h.Metrics.PinnedAudits)
					f.h.audit(ctx, eng, v, request(t, admissionv1.Update, obj, old, admin), obj)
					if n := counterValue(f.h.Metrics.PinnedAudits) - audited; n != 1 {
						t.Fatalf("%s: the update is audited %v times, want once", what, n)
					}
					if d := differences() - before; d != 0 {
						t.Errorf("%s: the engine and the compiled policy differ on an update the mutating webhook is not sent", what)
					}
					updates++
				}
			}
		}
	}
	if creates == 0 {
		t.Fatal("no created object differs: the test cannot tell a difference from none")
	}
	t.Logf("%d filtered updates, none differs; %d of the same objects created differ", updates, creates)
}

// TestBothModeAuditsPodRelabels: the compiled policies judge a pod
// relabelled into a rule, through the pod or pods/status. In both mode the
// mutating webhooks are sent those relabels too (ScopeNodes adds the pod
// update rule; their conditions send only relabels the audited rules then
// select), and the handler audits them without patching, since a pod's
// nodeSelector cannot change. The rule goes again once no policy is in
// both mode.
func TestBothModeAuditsPodRelabels(t *testing.T) {
	f, _ := bothFixture(t)
	ctx := context.Background()
	v, m, err := Configurations("../manifests", nil)
	if err != nil {
		t.Fatal(err)
	}
	manifestRules := map[string][]admissionregistrationv1.RuleWithOperations{}
	for _, w := range m.Webhooks {
		manifestRules[w.Name] = w.Rules
	}
	cs := fake.NewClientset(v, m)
	s := &ScopeNodes{Client: cs, Name: m.Name, Pinned: PinnedWebhook}
	sync := func(eng *policy.Engine) *admissionregistrationv1.MutatingWebhookConfiguration {
		t.Helper()
		keys, selected, mutate, podRelabels := s.Conditions(eng)
		if _, err := s.Sync(ctx, keys, selected, mutate, podRelabels, nil); err != nil {
			t.Fatal(err)
		}
		live, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, m.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return live
	}
	sendsPodUpdates := func(w *admissionregistrationv1.MutatingWebhook, sub string) bool {
		for _, r := range w.Rules {
			if slices.Contains(r.Operations, admissionregistrationv1.Update) && slices.Contains(r.APIGroups, "") && slices.Contains(r.Resources, "pods"+sub) {
				return true
			}
		}
		return false
	}

	// pod-4 is known to the compiled policy alone: a disagreement.
	decoy := tu.Pod("apps", "p").Labels("app", "decoy").InDC("pod-4").Obj()
	worker := tu.Pod("apps", "p").Labels("app", "worker").InDC("pod-4").Obj()
	running := tu.Pod("apps", "p").Labels("app", "worker").InDC("pod-4").Phase(corev1.PodRunning).Obj()
	brain := tu.Pod("apps", "p").Labels("app", "brain").ObjectLabels(dcLabel, "pod-2").Obj()
	for _, w := range sync(f.h.Engine()).Webhooks {
		if !sendsPodUpdates(&w, "") || !sendsPodUpdates(&w, "/status") {
			t.Errorf("both mode: %s has rules %v, want pod updates through pods and pods/status too", w.Name, w.Rules)
		}
		sent := newSender(t, w.MatchConditions)
		for _, c := range []struct {
			what     string
			sub      string
			obj, old runtime.Object
			want     bool
		}{
			{"a relabel into the audited rule through pods/status", "status", worker, decoy, true},
			{"a relabel into the audited rule through the pod", "", worker, decoy, true},
			{"a status report", "status", running, worker, false},
			{"a relabel into a rule the webhook injects for", "status", brain, decoy, false},
		} {
			if got := sent(apiadmission.Update, c.obj, c.old, c.sub); got != c.want {
				t.Errorf("%s: %s sent: %v, want %v", w.Name, c.what, got, c.want)
			}
		}
	}

	audits := counterValue(f.h.Metrics.PinnedAudits)
	for _, sub := range []string{"status", ""} {
		req := request(t, admissionv1.Update, worker, decoy, admin)
		req.SubResource = sub
		if r := f.h.Mutate().Handle(ctx, req); !r.Allowed || len(r.Patches) != 0 {
			t.Errorf("pods%s relabel: allowed=%v patches=%v, want admitted unchanged", sub, r.Allowed, r.Patches)
		}
	}
	if n := counterValue(f.h.Metrics.PinnedAudits) - audits; n != 2 {
		t.Errorf("%v pod relabels audited, want 2", n)
	}
	if d := counterValue(f.h.Metrics.PinnedDifferences.WithLabelValues("travis/workers")); d != 2 {
		t.Errorf("%v differences counted on the relabels into pod-4, want 2", d)
	}
	req := request(t, admissionv1.Update, brain, decoy, admin)
	req.SubResource = "status"
	if r := f.h.Mutate().Handle(ctx, req); !r.Allowed || len(r.Patches) != 0 {
		t.Errorf("a pod relabelled into a rule the webhook injects for: allowed=%v patches=%v, want admitted unchanged (a pod's nodeSelector cannot change)", r.Allowed, r.Patches)
	}

	// No policy in both mode: the manifests' rules again.
	var policies []v1alpha1.PlacementPolicy
	for _, p := range f.h.Engine().Policies() {
		p.Spec.PinnedEnforcement = v1alpha1.PinnedEnforcementWebhook
		policies = append(policies, p)
	}
	eng, err := policy.NewEngine(policies)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range sync(eng).Webhooks {
		if !equality.Semantic.DeepEqual(w.Rules, manifestRules[w.Name]) {
			t.Errorf("webhook mode: %s has rules %v, want the manifests' %v", w.Name, w.Rules, manifestRules[w.Name])
		}
	}
}

// TestBothModeCountsAReinvocationOnce: the API server calls the mutating
// webhook again when a later mutation changed the object, with a new uid
// and nothing saying it is a reinvocation; the audit counts the request
// once all the same. Requests of their own with the same identity are
// counted: pods a controller creates by generateName from one template
// (the same object each time), a DaemonSet's pods (another node each).
func TestBothModeCountsAReinvocationOnce(t *testing.T) {
	f, a := bothFixture(t)
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a.seen.now = func() time.Time { return clock }
	ctx := context.Background()
	audits := func() float64 { return counterValue(f.h.Metrics.PinnedAudits) }
	differences := func() float64 { return counterValue(f.h.Metrics.PinnedDifferences.WithLabelValues("travis/workers")) }
	call := func(obj runtime.Object) admission.Response {
		t.Helper()
		r := f.h.Mutate().Handle(ctx, request(t, admissionv1.Create, obj, nil, admin))
		if !r.Allowed {
			t.Fatalf("mutate: %v", r.Result)
		}
		return r
	}
	// A later mutating webhook adds a sidecar and an annotation.
	sidecar := func(obj runtime.Object) runtime.Object {
		obj = obj.DeepCopyObject()
		pod := obj.(*corev1.Pod)
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "proxy", Image: "registry.example/proxy:1"})
		pod.Annotations = map[string]string{"example.com/injected": "true"}
		return pod
	}
	generated := func(node string) runtime.Object {
		b := tu.Pod("apps", "").Labels("app", "worker").InDC("pod-4")
		if node != "" {
			b.RequiredAffinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}})
		}
		pod := b.Pod()
		pod.GenerateName = "worker-"
		return pod
	}
	check := func(what string, wantAudits, wantDifferences float64) {
		t.Helper()
		if n, d := audits(), differences(); n != wantAudits || d != wantDifferences {
			t.Errorf("%s: %v audits and %v differences, want %v and %v", what, n, d, wantAudits, wantDifferences)
		}
	}

	// pod-4 is known to the compiled policy alone: every audit differs.
	first := generated("")
	call(first)
	check("a pod created by generateName", 1, 1)
	call(sidecar(first))
	check("its reinvocation", 1, 1)
	call(first)
	check("a second pod from the same template (the same object)", 2, 2)
	call(sidecar(first))
	check("its reinvocation", 2, 2)
	call(sidecar(first))
	check("a third call once both were reinvoked: a request of its own", 3, 3)

	ds := generated("pod-4-1")
	call(ds)
	call(generated("pod-4-2"))
	check("two DaemonSet pods (their node affinity differs)", 5, 5)
	call(sidecar(ds))
	check("the first one's reinvocation", 5, 5)

	// A later mutation that changes what the rules judge: the verdict may
	// differ from the first call's, so the reinvocation is audited.
	relabelled := sidecar(generated("")).(*corev1.Pod)
	relabelled.Spec.NodeSelector[tu.Zone] = "pod-1"
	call(relabelled)
	check("a reinvocation after a later mutation moved the pod to pod-1", 6, 5)

	// Long after, the same request is another one.
	call(first)
	clock = clock.Add(auditWindow + time.Second)
	call(sidecar(first))
	check("the same identity long after", 8, 7)

	// The webhook's own injection (for a policy it enforces) is part of
	// what a reinvocation carries: a worker Deployment whose pods are
	// brains, labelled with macstadium's datacenter.
	both := tu.Deployment("apps", "mixed").ObjectLabels("app", "worker", dcLabel, "pod-2").TemplateLabels("app", "brain").Obj()
	r := call(both)
	if len(r.Patches) == 0 {
		t.Fatalf("the webhook did not inject macstadium's nodeSelector")
	}
	patched := both.DeepCopyObject().(*appsv1.Deployment)
	patched.Spec.Template.Spec.NodeSelector = map[string]string{tu.Zone: "pod-2"}
	patched.Annotations = map[string]string{"example.com/injected": "true"}
	before := audits()
	call(patched)
	if n := audits() - before; n != 0 {
		t.Errorf("the reinvocation of a request the webhook patched was audited again")
	}
}

// TestAuditLedgerBounded: the ledger forgets its oldest requests beyond
// auditMemory, and beyond auditMemoryPerRequest of one identity, so that
// it stays small and quick under any load.
func TestAuditLedgerBounded(t *testing.T) {
	var l auditLedger
	for i := 0; i <= auditMemory; i++ {
		l.first(fmt.Sprint("request-", i), 1, 1)
	}
	if len(l.order) != auditMemory || len(l.records) != auditMemory {
		t.Errorf("%d requests remembered (%d identities), want %d", len(l.order), len(l.records), auditMemory)
	}
	if _, first := l.first("request-0", 2, 1); !first {
		t.Errorf("the oldest request is still remembered")
	}
	for i := 0; i <= auditMemoryPerRequest; i++ {
		l.first("one-identity", 7, 7)
	}
	if n := len(l.records["one-identity"]); n != auditMemoryPerRequest {
		t.Errorf("%d requests of one identity remembered, want %d", n, auditMemoryPerRequest)
	}
}
