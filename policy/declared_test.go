package policy_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func rolloutPolicy() *testutil.PolicyBuilder {
	return workersPolicy().Edit(func(p *v1alpha1.PlacementPolicy) {
		p.Spec.WorkloadKinds = []v1alpha1.WorkloadKind{{Group: "argoproj.io", Kind: "Rollout", TemplatePath: "spec.template"}}
	})
}

func rollout(templateLabels map[string]any, nodeSelector map[string]any) *unstructured.Unstructured {
	spec := map[string]any{"containers": []any{map[string]any{"name": "c", "image": "i"}}}
	if nodeSelector != nil {
		spec["nodeSelector"] = nodeSelector
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "r", "namespace": "travis", "labels": map[string]any{"dc": "pod-2"}},
		"spec":     map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": templateLabels}, "spec": spec}},
	}}
}

func TestEvaluateDeclared(t *testing.T) {
	e := engine(t, rolloutPolicy())
	state := policy.NewStaticState(threeDCs()...)
	ctx := context.Background()
	cases := []struct {
		name string
		obj  *unstructured.Unstructured
		want []want
	}{
		{"unpinned", rollout(map[string]any{"app": "worker"}, nil), []want{deny("spec.template.spec"+nsPath, "select exactly one datacenter")}},
		{"pinned", rollout(map[string]any{"app": "worker"}, map[string]any{zone: "pod-1"}), nil},
		{"not selected", rollout(map[string]any{"app": "web"}, nil), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs, ok, err := e.EvaluateDeclared(ctx, policy.Request{Operation: policy.OperationCheck, Object: tc.obj, Namespace: "travis"}, state)
			if !ok || err != nil {
				t.Fatalf("ok %v err %v", ok, err)
			}
			assertResults(t, rs, tc.want)
			for _, r := range rs {
				if r.Object.Kind != "Rollout" || r.Object.Name != "r" {
					t.Errorf("result names %+v", r.Object)
				}
			}
		})
	}
	t.Run("undeclared kind", func(t *testing.T) {
		if _, ok, _ := engine(t, workersPolicy()).EvaluateDeclared(ctx, policy.Request{Object: rollout(nil, nil)}, state); ok {
			t.Error("judged a kind no policy declares")
		}
	})
	t.Run("no template at the path", func(t *testing.T) {
		obj := rollout(nil, nil)
		unstructured.RemoveNestedField(obj.Object, "spec", "template")
		if _, _, err := e.EvaluateDeclared(ctx, policy.Request{Object: obj}, state); err == nil {
			t.Error("no error for a missing template")
		}
	})
}

func TestMutateDeclared(t *testing.T) {
	e := engine(t, testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(testutil.PinnedRule("workers").In("app", "worker").FromLabel("dc")).Edit(func(p *v1alpha1.PlacementPolicy) {
		p.Spec.WorkloadKinds = []v1alpha1.WorkloadKind{{Group: "argoproj.io", Kind: "Rollout", TemplatePath: "spec.template"}}
	}))
	state := policy.NewStaticState(threeDCs()...)
	obj := rollout(map[string]any{"app": "worker"}, nil)
	changed, err := e.MutateDeclared(obj, "travis", state)
	if err != nil || !changed {
		t.Fatalf("changed %v err %v", changed, err)
	}
	got, _, _ := unstructured.NestedString(obj.Object, "spec", "template", "spec", "nodeSelector", zone)
	if got != "pod-2" {
		t.Errorf("nodeSelector[%s] = %q, want pod-2", zone, got)
	}
	rs, _, _ := e.EvaluateDeclared(context.Background(), policy.Request{Operation: policy.OperationCheck, Object: obj, Namespace: "travis"}, state)
	assertResults(t, rs, nil)
}

// TestMutateDeclaredUpdate: an UPDATE of a declared kind is mutated as
// MutateUpdate mutates a built-in workload's: not when it leaves the labels
// and the template at the declared path alone (a change of replicas must
// not fill in, and so roll out, a template admitted before the policy),
// as on create when it changes them or the old object has no template.
func TestMutateDeclaredUpdate(t *testing.T) {
	e := engine(t, testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(testutil.PinnedRule("workers").In("app", "worker").FromLabel("dc")).Edit(func(p *v1alpha1.PlacementPolicy) {
		p.Spec.WorkloadKinds = []v1alpha1.WorkloadKind{{Group: "argoproj.io", Kind: "Rollout", TemplatePath: "spec.template"}}
	}))
	state := policy.NewStaticState(threeDCs()...)
	worker := func() *unstructured.Unstructured { return rollout(map[string]any{"app": "worker"}, nil) }
	withReplicas := func(u *unstructured.Unstructured, n int64) *unstructured.Unstructured {
		_ = unstructured.SetNestedField(u.Object, n, "spec", "replicas")
		return u
	}
	cases := []struct {
		name     string
		obj, old *unstructured.Unstructured
		want     string // nodeSelector[zone] after the mutation
	}{
		{"a change of replicas only is left alone", withReplicas(worker(), 0), withReplicas(worker(), 3), ""},
		{"a status-like change only is left alone",
			func() *unstructured.Unstructured {
				u := worker()
				_ = unstructured.SetNestedField(u.Object, "Paused", "status", "phase")
				return u
			}(), worker(), ""},
		{"a template relabelled into the rule is mutated", worker(), rollout(map[string]any{"app": "web"}, nil), "pod-2"},
		{"a new datacenter label is mutated", worker(),
			func() *unstructured.Unstructured {
				u := worker()
				u.SetLabels(nil)
				return u
			}(), "pod-2"},
		{"a template whose selection was removed is mutated", worker(), rollout(map[string]any{"app": "worker"}, map[string]any{zone: "pod-1"}), "pod-2"},
		{"an old object without a template is no reason to leave it alone", worker(),
			func() *unstructured.Unstructured {
				u := worker()
				unstructured.RemoveNestedField(u.Object, "spec", "template")
				return u
			}(), "pod-2"},
		{"no old object is a create", worker(), nil, "pod-2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			changed, err := e.MutateDeclaredUpdate(tc.obj, tc.old, "travis", state)
			got, _, _ := unstructured.NestedString(tc.obj.Object, "spec", "template", "spec", "nodeSelector", zone)
			if err != nil || changed != (tc.want != "") || got != tc.want {
				t.Errorf("MutateDeclaredUpdate = %v, %v, nodeSelector[%s] = %q; want %v, %q", changed, err, zone, got, tc.want != "", tc.want)
			}
		})
	}
}

// TestValidateWorkloadKinds: each declaration needs a kind and a dotted
// template path; a kind of a built-in group ("", apps, batch) that is no
// built-in kind is refused on its group, naming the fix (no custom
// resource lives there, and dc-webhook could not tell its rule from the
// built-in kinds'); a built-in kind declared again is no error.
func TestValidateWorkloadKinds(t *testing.T) {
	cases := []struct {
		name string
		kind v1alpha1.WorkloadKind
		// field is the field of the one error, "" for none; detail a part
		// of its message.
		field, detail string
	}{
		{"a custom resource", v1alpha1.WorkloadKind{Group: "argoproj.io", Kind: "Rollout", TemplatePath: "spec.template"}, "", ""},
		{"a built-in kind", v1alpha1.WorkloadKind{Group: "apps", Kind: "Deployment", TemplatePath: "spec.template"}, "", ""},
		{"no kind", v1alpha1.WorkloadKind{Group: "argoproj.io", TemplatePath: "spec.template"}, "spec.workloadKinds[0].kind", "for example Rollout"},
		{"an empty path segment", v1alpha1.WorkloadKind{Group: "argoproj.io", Kind: "Rollout", TemplatePath: "spec..template"}, "spec.workloadKinds[0].templatePath", "a dotted path"},
		{"a kind of apps", v1alpha1.WorkloadKind{Group: "apps", Kind: "Rollout", TemplatePath: "spec.template"}, "spec.workloadKinds[0].group",
			`Rollout is no kind of the built-in API groups ("" (core), apps, batch), where no custom resource lives: set group to the API group of Rollout`},
		{"a kind of the core group", v1alpha1.WorkloadKind{Kind: "Rollout", TemplatePath: "spec.template"}, "spec.workloadKinds[0].group", "argoproj.io for an Argo Rollout"},
		{"a kind of batch", v1alpha1.WorkloadKind{Group: "batch", Kind: "Runner", TemplatePath: "spec.runner.pod"}, "spec.workloadKinds[0].group", "API group of Runner"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := workersPolicy().Edit(func(p *v1alpha1.PlacementPolicy) {
				p.Spec.WorkloadKinds = []v1alpha1.WorkloadKind{tc.kind}
			}).Value()
			errs := policy.ValidatePolicy(&p)
			if tc.field == "" {
				if len(errs) != 0 {
					t.Errorf("errors %v, want none", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Error(), tc.detail) {
				t.Errorf("errors %v, want one on %s saying %q", errs, tc.field, tc.detail)
			}
		})
	}
}
