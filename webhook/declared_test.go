package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiadmission "k8s.io/apiserver/pkg/admission"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// declaring is the example policy declaring Rollouts, their pod template
// at spec.template.
func declaring() v1alpha1.PlacementPolicy {
	p := macstadium(v1alpha1.ActionDeny)
	p.Spec.WorkloadKinds = []v1alpha1.WorkloadKind{{Group: "argoproj.io", Kind: "Rollout", TemplatePath: "spec.template"}}
	return p
}

// rolloutOf is a Rollout carrying the labels and pod template of the
// Deployment d builds.
func rolloutOf(t *testing.T, d *tu.ObjectBuilder) *unstructured.Unstructured {
	t.Helper()
	dep := d.Deployment()
	tmpl, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&dep.Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"template": tmpl, "strategy": map[string]any{"canary": map[string]any{}}}}}
	u.SetAPIVersion("argoproj.io/v1alpha1")
	u.SetKind("Rollout")
	u.SetNamespace(dep.Namespace)
	u.SetName(dep.Name)
	u.SetLabels(dep.Labels)
	return u
}

// rolloutRequest is the admission request for a Rollout.
func rolloutRequest(t *testing.T, op admissionv1.Operation, obj, old *unstructured.Unstructured) admission.Request {
	t.Helper()
	req := request(t, op, obj, nil, admin)
	req.Resource = metav1.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	if old != nil {
		raw, err := json.Marshal(old)
		if err != nil {
			t.Fatal(err)
		}
		req.OldObject.Raw = raw
	}
	return req
}

// TestValidateDeclaredKinds: an object of a kind a policy declares is
// judged at its declared template path as a Deployment is at its own
// (it was admitted unjudged); kinds no policy declares still are.
func TestValidateDeclaredKinds(t *testing.T) {
	f := newFixture(t, declaring())
	worker := func() *tu.ObjectBuilder { return tu.Deployment("apps", "worker").Labels("app", "worker") }
	tests := []struct {
		name        string
		obj         *unstructured.Unstructured
		wantAllowed bool
		wantCauses  []string
	}{
		{"unpinned worker denied", rolloutOf(t, worker()), false, []string{"spec.template.spec.nodeSelector[topology.kubernetes.io/zone]"}},
		{"pinned worker admitted", rolloutOf(t, worker().InDC("pod-2")), true, nil},
		{"unknown datacenter denied", rolloutOf(t, worker().InDC("pod-9")), false, []string{"spec.template.spec.nodeSelector[topology.kubernetes.io/zone]"}},
		{"not selected admitted", rolloutOf(t, tu.Deployment("apps", "web").Labels("app", "web")), true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.h.Validate().Handle(context.Background(), rolloutRequest(t, admissionv1.Create, tc.obj, nil))
			if resp.Allowed != tc.wantAllowed || strings.Join(causes(resp), ",") != strings.Join(tc.wantCauses, ",") {
				t.Errorf("allowed=%v causes=%v, want %v %v (%+v)", resp.Allowed, causes(resp), tc.wantAllowed, tc.wantCauses, resp.Result)
			}
		})
	}
	t.Run("update leaving the template alone admitted", func(t *testing.T) {
		old := rolloutOf(t, worker())
		obj := old.DeepCopy()
		_ = unstructured.SetNestedField(obj.Object, int64(0), "spec", "replicas")
		if resp := f.h.Validate().Handle(context.Background(), rolloutRequest(t, admissionv1.Update, obj, old)); !resp.Allowed {
			t.Errorf("scale-down denied: %+v", resp.Result)
		}
	})
	t.Run("no template at the declared path refused", func(t *testing.T) {
		obj := rolloutOf(t, worker())
		unstructured.RemoveNestedField(obj.Object, "spec", "template")
		resp := f.h.Validate().Handle(context.Background(), rolloutRequest(t, admissionv1.Create, obj, nil))
		if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "no pod template at spec.template") {
			t.Errorf("allowed=%v result=%+v, want a refusal naming the path", resp.Allowed, resp.Result)
		}
	})
	t.Run("undeclared kind admitted unjudged", func(t *testing.T) {
		g := newFixture(t, macstadium(v1alpha1.ActionDeny))
		resp := g.h.Validate().Handle(context.Background(), rolloutRequest(t, admissionv1.Create, rolloutOf(t, worker()), nil))
		if !resp.Allowed {
			t.Errorf("undeclared kind denied: %+v", resp.Result)
		}
	})
}

// TestMutateDeclaredKinds: the datacenterFromLabel mutation fills the
// nodeSelector of a declared kind's template at its declared path, and
// the validating webhook admits the result.
func TestMutateDeclaredKinds(t *testing.T) {
	f := newFixture(t, declaring())
	obj := rolloutOf(t, tu.Deployment("apps", "worker").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2"))
	req := rolloutRequest(t, admissionv1.Create, obj, nil)
	resp := f.h.Mutate().Handle(context.Background(), req)
	if !resp.Allowed || len(resp.Patches) != 1 || resp.Patches[0].Path != "/spec/template/spec/nodeSelector" {
		t.Fatalf("allowed=%v patches=%+v, want one add of the template nodeSelector", resp.Allowed, resp.Patches)
	}
	patched := applyPatch(t, req, resp)
	if !strings.Contains(string(patched), `"nodeSelector":{"topology.kubernetes.io/zone":"pod-2"}`) || !strings.Contains(string(patched), `"canary":{}`) {
		t.Errorf("patched object: %s", patched)
	}
	if got := counterValue(f.h.Metrics.Mutations.WithLabelValues("Rollout")); got != 1 {
		t.Errorf("mutations = %v, want 1", got)
	}
	req.Object.Raw = patched
	if again := f.h.Mutate().Handle(context.Background(), req); !again.Allowed || len(again.Patches) != 0 {
		t.Errorf("second mutation patched again: %+v", again.Patches)
	}
	if v := f.h.Validate().Handle(context.Background(), req); !v.Allowed {
		t.Errorf("mutated Rollout denied: %+v", v.Result)
	}
}

// TestMutateDeclaredUpdates: an UPDATE of a declared kind that leaves its
// labels and its template alone (a change of replicas) is not mutated, so
// a Rollout admitted before the policy is not rolled out by it; one that
// changes the template is mutated as a create is.
func TestMutateDeclaredUpdates(t *testing.T) {
	f := newFixture(t, declaring())
	worker := func() *unstructured.Unstructured {
		return rolloutOf(t, tu.Deployment("apps", "worker").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2"))
	}
	scaled := worker()
	_ = unstructured.SetNestedField(scaled.Object, int64(5), "spec", "replicas")
	if resp := f.h.Mutate().Handle(context.Background(), rolloutRequest(t, admissionv1.Update, scaled, worker())); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("a change of replicas: allowed=%v patches=%+v, want no patch", resp.Allowed, resp.Patches)
	}
	relabelled := worker()
	_ = unstructured.SetNestedField(relabelled.Object, "worker-2", "spec", "template", "metadata", "labels", "version")
	resp := f.h.Mutate().Handle(context.Background(), rolloutRequest(t, admissionv1.Update, relabelled, worker()))
	if !resp.Allowed || len(resp.Patches) != 1 || resp.Patches[0].Path != "/spec/template/spec/nodeSelector" {
		t.Errorf("a template change: allowed=%v patches=%+v, want one add of the template nodeSelector", resp.Allowed, resp.Patches)
	}
}

// TestDeclaredKindsInEveryMode: whoever enforces a policy's pinned rules
// (cel, both), the kinds it declares, which no compiled admission policy
// knows, are judged and injected by the webhook: an unpinned Rollout is
// refused, one carrying the datacenterFromLabel key gets the nodeSelector
// (it got none: the webhook injected only for the policies it enforces),
// and the conditions a replica writes send that Rollout to the workload
// webhooks, validating and mutating, while a Deployment carrying the key
// is left to the compiled mutating policy.
func TestDeclaredKindsInEveryMode(t *testing.T) {
	ctx := context.Background()
	rollouts := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	for _, mode := range []v1alpha1.PinnedEnforcement{v1alpha1.PinnedEnforcementCEL, v1alpha1.PinnedEnforcementBoth} {
		t.Run(string(mode), func(t *testing.T) {
			p := declaring()
			p.Spec.PinnedEnforcement = mode
			f := newFixture(t, p)
			nodes := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
			for _, o := range tu.Nodes(2, "pod-1", "pod-2", "pod-3") {
				if err := nodes.Add(o); err != nil {
					t.Fatal(err)
				}
			}
			f.h.Audit = &PinnedAuditor{Mode: PinnedWebhook, Nodes: nodes, Log: discardLog{}}
			if err := f.h.Audit.BuildFor(f.h.Engine()); err != nil {
				t.Fatal(err)
			}

			unpinned := rolloutOf(t, tu.Deployment("apps", "worker").Labels("app", "worker"))
			if r := f.h.Validate().Handle(ctx, rolloutRequest(t, admissionv1.Create, unpinned, nil)); r.Allowed ||
				strings.Join(causes(r), ",") != "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]" {
				t.Errorf("an unpinned Rollout: allowed=%v causes=%v, want refused on its template's nodeSelector", r.Allowed, causes(r))
			}

			labelled := rolloutOf(t, tu.Deployment("apps", "worker").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2"))
			req := rolloutRequest(t, admissionv1.Create, labelled, nil)
			resp := f.h.Mutate().Handle(ctx, req)
			if !resp.Allowed || len(resp.Patches) != 1 || resp.Patches[0].Path != "/spec/template/spec/nodeSelector" {
				t.Fatalf("a Rollout labelled %s=pod-2: allowed=%v patches=%+v, want one add of the template nodeSelector", dcLabel, resp.Allowed, resp.Patches)
			}
			req.Object.Raw = applyPatch(t, req, resp)
			if r := f.h.Validate().Handle(ctx, req); !r.Allowed {
				t.Errorf("the mutated Rollout refused: %+v", r.Result)
			}

			_, selected, mutate, _ := (&ScopeNodes{Pinned: PinnedWebhook}).Conditions(f.h.Engine())
			for name, expr := range map[string]string{selectedCondition: selected, fromLabelCondition: mutate} {
				conds := []admissionregistrationv1.MatchCondition{{Name: name, Expression: expr}}
				if !newMatcher(t, conds)(apiadmission.Create, labelled, nil, labelled.GroupVersionKind(), rollouts, "") {
					t.Errorf("%s: a Rollout labelled %s=pod-2 is not sent", name, dcLabel)
				}
			}
			web := tu.Deployment("apps", "web").Labels("app", "web").ObjectLabels(dcLabel, "pod-2").Obj()
			if newSender(t, []admissionregistrationv1.MatchCondition{{Name: fromLabelCondition, Expression: mutate}})(apiadmission.Create, web, nil, "") {
				t.Errorf("%s: a Deployment labelled %s=pod-2 is sent; the compiled mutating policy injects it", fromLabelCondition, dcLabel)
			}
		})
	}
}
