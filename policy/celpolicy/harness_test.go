package celpolicy_test

import (
	"context"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
)

// The harness runs compiled policies through the API server's own
// admission policy machinery (k8s.io/apiserver), in-process: the same CEL
// environment (the one new expressions are checked against when a policy
// is created), the same variable composition, match conditions,
// validator and JSON patcher as kube-apiserver. Only the resource and
// namespace matching of bindings is done here, with label selectors, as
// the API server's matcher does.

var noParams = plugincel.OptionalVariableDeclarations{}

func compiler(t testing.TB, vars []admissionregistrationv1.Variable) *plugincel.CompositedCompiler {
	t.Helper()
	c, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		t.Fatal(err)
	}
	acc := make([]plugincel.NamedExpressionAccessor, len(vars))
	for i, v := range vars {
		acc[i] = &validating.Variable{Name: v.Name, Expression: v.Expression}
	}
	c.CompileAndStoreVariables(acc, noParams, environment.NewExpressions)
	return c
}

func matcher(c *plugincel.CompositedCompiler, conds []admissionregistrationv1.MatchCondition, fail *admissionregistrationv1.FailurePolicyType, name string) matchconditions.Matcher {
	acc := make([]plugincel.ExpressionAccessor, len(conds))
	for i := range conds {
		acc[i] = (*matchconditions.MatchCondition)(&conds[i])
	}
	return matchconditions.NewMatcher(c.CompileCondition(acc, noParams, environment.NewExpressions), fail, "policy", "validate", name)
}

// validator is one compiled ValidatingAdmissionPolicy with its binding.
type validator struct {
	name    string
	actions []admissionregistrationv1.ValidationAction
	nsSel   labels.Selector
	v       validating.Validator
}

func newValidator(t testing.TB, p *admissionregistrationv1.ValidatingAdmissionPolicy, b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) *validator {
	t.Helper()
	c := compiler(t, p.Spec.Variables)
	var vals, msgs []plugincel.ExpressionAccessor
	for _, x := range p.Spec.Validations {
		vals = append(vals, &validating.ValidationCondition{Expression: x.Expression, Message: x.Message, Reason: x.Reason})
		msgs = append(msgs, &validating.MessageExpressionCondition{MessageExpression: x.MessageExpression})
	}
	v := validating.NewValidator(
		c.CompileCondition(vals, noParams, environment.NewExpressions),
		matcher(c, p.Spec.MatchConditions, p.Spec.FailurePolicy, p.Name),
		c.CompileCondition(nil, noParams, environment.NewExpressions),
		c.CompileCondition(msgs, noParams, environment.NewExpressions),
		p.Spec.FailurePolicy, nil)
	if err := v.CompileError(); err != nil {
		t.Fatalf("ValidatingAdmissionPolicy %s does not compile: %v", p.Name, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(b.Spec.MatchResources.NamespaceSelector)
	if err != nil {
		t.Fatal(err)
	}
	return &validator{name: p.Name, actions: b.Spec.ValidationActions, nsSel: sel, v: v}
}

// mutator is one compiled MutatingAdmissionPolicy with its binding.
type mutator struct {
	name    string
	ops     map[string]map[admissionregistrationv1.OperationType]bool // resource -> operations
	nsSel   labels.Selector
	match   matchconditions.Matcher
	patcher patch.Patcher
	// compiler makes the composition context that evaluates the
	// variables once per request, as the API server's dispatcher does.
	compiler *plugincel.CompositedCompiler
}

func newMutator(t testing.TB, p *admissionregistrationv1.MutatingAdmissionPolicy, b *admissionregistrationv1.MutatingAdmissionPolicyBinding) *mutator {
	t.Helper()
	c := compiler(t, p.Spec.Variables)
	m := &mutator{name: p.Name, compiler: c, ops: map[string]map[admissionregistrationv1.OperationType]bool{}, match: matcher(c, p.Spec.MatchConditions, p.Spec.FailurePolicy, p.Name)}
	for _, r := range p.Spec.MatchConstraints.ResourceRules {
		for _, res := range r.Resources {
			m.ops[res] = map[admissionregistrationv1.OperationType]bool{}
			for _, op := range r.Operations {
				m.ops[res][op] = true
			}
		}
	}
	for _, x := range p.Spec.Mutations {
		if x.PatchType != admissionregistrationv1.PatchTypeJSONPatch {
			t.Fatalf("MutatingAdmissionPolicy %s: patch type %s, want JSONPatch", p.Name, x.PatchType)
		}
		ev := c.CompileMutatingEvaluator(&patch.JSONPatchCondition{Expression: x.JSONPatch.Expression}, plugincel.OptionalVariableDeclarations{HasPatchTypes: true}, environment.NewExpressions)
		if errs := ev.CompilationErrors(); len(errs) > 0 {
			t.Fatalf("MutatingAdmissionPolicy %s does not compile: %v", p.Name, errs)
		}
		m.patcher = patch.NewJSONPatcher(ev)
	}
	sel, err := metav1.LabelSelectorAsSelector(b.Spec.MatchResources.NamespaceSelector)
	if err != nil {
		t.Fatal(err)
	}
	m.nsSel = sel
	return m
}

// apiServer runs a compiled Set as kube-apiserver would: mutations, then
// validations.
type apiServer struct {
	validators []*validator
	mutators   []*mutator
}

func newAPIServer(t testing.TB, set *celpolicy.Set) *apiServer {
	t.Helper()
	s := &apiServer{}
	for i := range set.Validating {
		s.validators = append(s.validators, newValidator(t, &set.Validating[i], &set.ValidatingBindings[i]))
	}
	for i := range set.Mutating {
		s.mutators = append(s.mutators, newMutator(t, &set.Mutating[i], &set.MutatingBindings[i]))
	}
	return s
}

// verdict is one compiled policy's answer that an object breaks it.
type verdict struct {
	Policy  string
	Action  admissionregistrationv1.ValidationAction
	Message string
}

// admit mutates obj (a copy) and judges it. op is CREATE or UPDATE; old
// the object before an UPDATE.
func (s *apiServer) admit(t testing.TB, op admission.Operation, obj, old runtime.Object, ns *corev1.Namespace) (runtime.Object, []verdict) {
	t.Helper()
	ctx := context.Background()
	kind, ok := policy.JudgedKindOf(obj)
	if !ok {
		t.Fatalf("not a judged kind: %T", obj)
	}
	obj = obj.DeepCopyObject()
	name := obj.(metav1.Object).GetName()
	attrs := func(o runtime.Object) *admission.VersionedAttributes {
		a := admission.NewAttributesRecord(o, old, kind.GVK(), ns.Name, name, kind.GVR(), "", op, nil, false, nil)
		return &admission.VersionedAttributes{Attributes: a, VersionedKind: kind.GVK(), VersionedOldObject: admission.NewLazyObject(old), VersionedObject: admission.NewLazyObject(o)}
	}
	nsLabels := labels.Set(ns.Labels)
	for _, m := range s.mutators {
		if !m.ops[kind.Resource][admissionregistrationv1.OperationType(op)] || !m.nsSel.Matches(nsLabels) {
			continue
		}
		va := attrs(obj)
		ctx := m.compiler.CreateContext(ctx)
		r := m.match.Match(ctx, va, nil, nil)
		if r.Error != nil {
			t.Fatalf("%s: match conditions: %v", m.name, r.Error)
		}
		if !r.Matches {
			continue
		}
		out, err := m.patcher.Patch(ctx, patch.Request{
			MatchedResource:     kind.GVR(),
			VersionedAttributes: va,
			ObjectInterfaces:    admission.NewObjectInterfacesFromScheme(scheme.Scheme),
			Namespace:           ns,
		}, celconfig.RuntimeCELCostBudget)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		obj = out
	}
	var vs []verdict
	for _, v := range s.validators {
		if !v.nsSel.Matches(nsLabels) {
			continue
		}
		res := v.v.Validate(ctx, kind.GVR(), attrs(obj), nil, ns, celconfig.RuntimeCELCostBudget, nil)
		for _, d := range res.Decisions {
			if d.Evaluation == validating.EvalError {
				t.Errorf("%s: evaluation error: %s", v.name, d.Message)
			}
			if d.Action == validating.ActionDeny {
				for _, a := range v.actions {
					vs = append(vs, verdict{Policy: v.name, Action: a, Message: d.Message})
				}
			}
		}
	}
	return obj, vs
}
