package policy_test

import (
	"context"
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

func TestValidateWorkloadKinds(t *testing.T) {
	p := workersPolicy().Edit(func(p *v1alpha1.PlacementPolicy) {
		p.Spec.WorkloadKinds = []v1alpha1.WorkloadKind{{Kind: "Rollout", TemplatePath: "spec..template"}, {Kind: "", TemplatePath: "spec.template"}}
	}).Value()
	errs := policy.ValidatePolicy(&p)
	if len(errs) != 2 {
		t.Fatalf("got %v, want 2 errors", errs)
	}
}
