package celpolicy

import (
	"context"
	"errors"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// An Evaluator runs a compiled Set in-process through the API server's own
// admission policy machinery (k8s.io/apiserver): the CEL environment new
// expressions are checked against when a policy is created, the same
// variable composition, match conditions, validator and JSON patcher as
// kube-apiserver. Only the matching of policies and bindings (resources,
// and namespaces and objects by their labels) is done here, as the API
// server's matcher does it. It
// lets dc-webhook know, without asking the API server, what the compiled
// policies answer (--pinned-enforcement=both), and the differential tests
// run the compiled policies without one. An Evaluator is safe for
// concurrent use.
type Evaluator struct {
	validators []*validator
	mutators   []*mutator
}

// Verdict is one compiled policy's answer that an object breaks it.
type Verdict struct {
	// Policy is the name of the ValidatingAdmissionPolicy.
	Policy string
	// Action is the binding's validation action.
	Action admissionregistrationv1.ValidationAction
	// Message is the policy's message.
	Message string
}

// noParams: the compiled policies take no parameters.
var noParams = plugincel.OptionalVariableDeclarations{}

func newCompiler(vars []admissionregistrationv1.Variable) (*plugincel.CompositedCompiler, error) {
	c, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		return nil, err
	}
	acc := make([]plugincel.NamedExpressionAccessor, len(vars))
	for i, v := range vars {
		acc[i] = &validating.Variable{Name: v.Name, Expression: v.Expression}
	}
	c.CompileAndStoreVariables(acc, noParams, environment.NewExpressions)
	return c, nil
}

func newMatcher(c *plugincel.CompositedCompiler, conds []admissionregistrationv1.MatchCondition, fail *admissionregistrationv1.FailurePolicyType, name string) matchconditions.Matcher {
	acc := make([]plugincel.ExpressionAccessor, len(conds))
	for i := range conds {
		acc[i] = (*matchconditions.MatchCondition)(&conds[i])
	}
	return matchconditions.NewMatcher(c.CompileCondition(acc, noParams, environment.NewExpressions), fail, "policy", "validate", name)
}

// validator is one compiled ValidatingAdmissionPolicy with its bindings.
type validator struct {
	name string
	// def is what the policy's matchConstraints select.
	def   binding
	binds []validatorBinding
	v     validating.Validator
}

// validatorBinding is one binding of a validator: what it selects and its
// validation actions.
type validatorBinding struct {
	binding
	actions []admissionregistrationv1.ValidationAction
}

func newValidator(p *admissionregistrationv1.ValidatingAdmissionPolicy, bs []*admissionregistrationv1.ValidatingAdmissionPolicyBinding) (*validator, error) {
	c, err := newCompiler(p.Spec.Variables)
	if err != nil {
		return nil, err
	}
	var vals, msgs []plugincel.ExpressionAccessor
	for _, x := range p.Spec.Validations {
		vals = append(vals, &validating.ValidationCondition{Expression: x.Expression, Message: x.Message, Reason: x.Reason})
		msgs = append(msgs, &validating.MessageExpressionCondition{MessageExpression: x.MessageExpression})
	}
	v := validating.NewValidator(
		c.CompileCondition(vals, noParams, environment.NewExpressions),
		newMatcher(c, p.Spec.MatchConditions, p.Spec.FailurePolicy, p.Name),
		c.CompileCondition(nil, noParams, environment.NewExpressions),
		c.CompileCondition(msgs, noParams, environment.NewExpressions),
		p.Spec.FailurePolicy, nil)
	if err := v.CompileError(); err != nil {
		return nil, fmt.Errorf("ValidatingAdmissionPolicy %s does not compile: %w", p.Name, err)
	}
	def, err := newBinding(p.Spec.MatchConstraints)
	if err != nil {
		return nil, fmt.Errorf("ValidatingAdmissionPolicy %s: matchConstraints: %w", p.Name, err)
	}
	out := &validator{name: p.Name, def: def, v: v}
	for _, b := range bs {
		binds, err := newBinding(b.Spec.MatchResources)
		if err != nil {
			return nil, fmt.Errorf("ValidatingAdmissionPolicyBinding %s: %w", b.Name, err)
		}
		out.binds = append(out.binds, validatorBinding{binding: binds, actions: b.Spec.ValidationActions})
	}
	return out, nil
}

// mutator is one compiled MutatingAdmissionPolicy with its binding.
type mutator struct {
	name string
	ops  map[string]map[admissionregistrationv1.OperationType]bool // resource -> operations
	// def is what the policy's matchConstraints select.
	def     binding
	binds   binding
	match   matchconditions.Matcher
	patcher patch.Patcher
	// compiler makes the composition context that evaluates the
	// variables once per request, as the API server's dispatcher does.
	compiler *plugincel.CompositedCompiler
}

func newMutator(p *admissionregistrationv1.MutatingAdmissionPolicy, b *admissionregistrationv1.MutatingAdmissionPolicyBinding) (*mutator, error) {
	c, err := newCompiler(p.Spec.Variables)
	if err != nil {
		return nil, err
	}
	m := &mutator{name: p.Name, compiler: c, ops: map[string]map[admissionregistrationv1.OperationType]bool{}, match: newMatcher(c, p.Spec.MatchConditions, p.Spec.FailurePolicy, p.Name)}
	for _, r := range p.Spec.MatchConstraints.ResourceRules {
		for _, res := range r.Resources {
			m.ops[res] = map[admissionregistrationv1.OperationType]bool{}
			for _, op := range r.Operations {
				m.ops[res][op] = true
			}
		}
	}
	for _, x := range p.Spec.Mutations {
		if x.PatchType != admissionregistrationv1.PatchTypeJSONPatch || x.JSONPatch == nil {
			return nil, fmt.Errorf("MutatingAdmissionPolicy %s: patch type %s, want JSONPatch", p.Name, x.PatchType)
		}
		ev := c.CompileMutatingEvaluator(&patch.JSONPatchCondition{Expression: x.JSONPatch.Expression}, plugincel.OptionalVariableDeclarations{HasPatchTypes: true}, environment.NewExpressions)
		if errs := ev.CompilationErrors(); len(errs) > 0 {
			return nil, fmt.Errorf("MutatingAdmissionPolicy %s does not compile: %w", p.Name, errors.Join(errs...))
		}
		m.patcher = patch.NewJSONPatcher(ev)
	}
	if m.def, err = newBinding(p.Spec.MatchConstraints); err != nil {
		return nil, fmt.Errorf("MutatingAdmissionPolicy %s: matchConstraints: %w", p.Name, err)
	}
	if m.binds, err = newBinding(b.Spec.MatchResources); err != nil {
		return nil, fmt.Errorf("MutatingAdmissionPolicyBinding %s: %w", b.Name, err)
	}
	return m, nil
}

// binding is what a policy's matchConstraints, or a binding's
// matchResources, select: resources, and namespaces and objects by their
// labels.
type binding struct {
	// resources are those the resourceRules name; nil when there are
	// none (a binding without them: the policy's apply).
	resources           map[string]bool
	namespaces, objects labels.Selector
}

// newBinding reads the selectors of r; an absent one selects everything,
// as the API server reads it.
func newBinding(r *admissionregistrationv1.MatchResources) (binding, error) {
	b := binding{namespaces: labels.Everything(), objects: labels.Everything()}
	var err error
	if r == nil {
		return b, nil
	}
	for _, rule := range r.ResourceRules {
		if b.resources == nil {
			b.resources = map[string]bool{}
		}
		for _, res := range rule.Resources {
			b.resources[res] = true
		}
	}
	if r.NamespaceSelector != nil {
		if b.namespaces, err = metav1.LabelSelectorAsSelector(r.NamespaceSelector); err != nil {
			return b, fmt.Errorf("namespaceSelector: %w", err)
		}
	}
	if r.ObjectSelector != nil {
		if b.objects, err = metav1.LabelSelectorAsSelector(r.ObjectSelector); err != nil {
			return b, fmt.Errorf("objectSelector: %w", err)
		}
	}
	return b, nil
}

// matches says whether the binding applies to a request on resource, on
// obj (old before an update) in ns: the resource is among its own, the
// namespace's labels match, and the object's or the old object's do, as
// the API server's matcher decides.
func (b binding) matches(resource string, ns *corev1.Namespace, obj, old runtime.Object) bool {
	if b.resources != nil && !b.resources[resource] {
		return false
	}
	if !b.namespaces.Matches(labels.Set(ns.Labels)) {
		return false
	}
	for _, o := range []runtime.Object{obj, old} {
		if m, ok := o.(metav1.Object); ok && b.objects.Matches(labels.Set(m.GetLabels())) {
			return true
		}
	}
	return false
}

// NewEvaluator compiles the expressions of set, as the API server does
// when the policies are created. It takes milliseconds per policy: build
// one per compilation, not per request.
func NewEvaluator(set *Set) (*Evaluator, error) {
	e := &Evaluator{}
	bindings := map[string][]*admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	for i := range set.ValidatingBindings {
		b := &set.ValidatingBindings[i]
		bindings[b.Spec.PolicyName] = append(bindings[b.Spec.PolicyName], b)
	}
	for i := range set.Validating {
		v, err := newValidator(&set.Validating[i], bindings[set.Validating[i].Name])
		if err != nil {
			return nil, err
		}
		e.validators = append(e.validators, v)
	}
	for i := range set.Mutating {
		m, err := newMutator(&set.Mutating[i], &set.MutatingBindings[i])
		if err != nil {
			return nil, err
		}
		e.mutators = append(e.mutators, m)
	}
	return e, nil
}

// attributes are the request as the policies see it.
func attributes(kind policy.Kind, op admission.Operation, obj, old runtime.Object, ns *corev1.Namespace) *admission.VersionedAttributes {
	name := ""
	if m, ok := obj.(metav1.Object); ok {
		name = m.GetName()
	}
	a := admission.NewAttributesRecord(obj, old, kind.GVK(), ns.Name, name, kind.GVR(), "", op, nil, false, nil)
	return &admission.VersionedAttributes{Attributes: a, VersionedKind: kind.GVK(), VersionedOldObject: admission.NewLazyObject(old), VersionedObject: admission.NewLazyObject(obj)}
}

// Admit is what the API server does with a create or update of obj (old
// before an update) in ns: the mutating policies, then the validating
// ones. It returns the mutated object (a copy; obj is left alone) and the
// verdicts; the error gathers what could not be evaluated (a Deny
// policy's failurePolicy Fail refuses then). obj must be a judged kind.
func (e *Evaluator) Admit(ctx context.Context, op admission.Operation, obj, old runtime.Object, ns *corev1.Namespace) (runtime.Object, []Verdict, error) {
	kind, ok := policy.JudgedKindOf(obj)
	if !ok {
		return obj, nil, nil
	}
	obj = obj.DeepCopyObject()
	var errs []error
	for _, m := range e.mutators {
		if !m.ops[kind.Resource][admissionregistrationv1.OperationType(op)] || !m.def.matches(kind.Resource, ns, obj, old) || !m.binds.matches(kind.Resource, ns, obj, old) {
			continue
		}
		va := attributes(kind, op, obj, old, ns)
		ctx := m.compiler.CreateContext(ctx)
		r := m.match.Match(ctx, va, nil, nil)
		if r.Error != nil {
			errs = append(errs, fmt.Errorf("%s: match conditions: %w", m.name, r.Error))
			continue
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
			errs = append(errs, fmt.Errorf("%s: %w", m.name, err))
			continue
		}
		obj = out
	}
	vs, err := e.Validate(ctx, op, obj, old, ns)
	if err != nil {
		errs = append(errs, err)
	}
	return obj, vs, utilerrors.NewAggregate(errs)
}

// Validate runs the validating policies alone on obj, as the API server
// does after every mutation: what dc-webhook's handlers see has been
// through the mutating policies already.
func (e *Evaluator) Validate(ctx context.Context, op admission.Operation, obj, old runtime.Object, ns *corev1.Namespace) ([]Verdict, error) {
	kind, ok := policy.JudgedKindOf(obj)
	if !ok {
		return nil, nil
	}
	var vs []Verdict
	var errs []error
	for _, v := range e.validators {
		if !v.def.matches(kind.Resource, ns, obj, old) {
			continue
		}
		// The API server evaluates a policy once for every binding that
		// selects the request.
		for _, b := range v.binds {
			if !b.matches(kind.Resource, ns, obj, old) {
				continue
			}
			res := v.v.Validate(ctx, kind.GVR(), attributes(kind, op, obj, old, ns), nil, ns, celconfig.RuntimeCELCostBudget, nil)
			for _, d := range res.Decisions {
				if d.Evaluation == validating.EvalError {
					errs = append(errs, fmt.Errorf("%s: %s", v.name, d.Message))
				}
				if d.Action == validating.ActionDeny {
					for _, a := range b.actions {
						vs = append(vs, Verdict{Policy: v.name, Action: a, Message: d.Message})
					}
				}
			}
		}
	}
	return vs, utilerrors.NewAggregate(errs)
}
