package webhook

import (
	"context"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiadmission "k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// sender says whether a webhook with the match conditions conds is sent
// a request, evaluated as the API server evaluates them (its own
// matcher): every condition holds. Resource rules are the caller's.
type sender func(op apiadmission.Operation, obj, old runtime.Object, subresource string) bool

// newSender compiles conds once, for many requests.
func newSender(t testing.TB, conds []admissionregistrationv1.MatchCondition) sender {
	t.Helper()
	match := newMatcher(t, conds)
	return func(op apiadmission.Operation, obj, old runtime.Object, subresource string) bool {
		t.Helper()
		kind, ok := policy.JudgedKindOf(obj)
		if !ok {
			t.Fatalf("%T is no judged kind", obj)
		}
		return match(op, obj, old, kind.GVK(), kind.GVR(), subresource)
	}
}

// matcher is a sender for objects of any kind, of resource gvr.
type matcher func(op apiadmission.Operation, obj, old runtime.Object, gvk schema.GroupVersionKind, gvr schema.GroupVersionResource, subresource string) bool

// newMatcher compiles conds once, for many requests.
func newMatcher(t testing.TB, conds []admissionregistrationv1.MatchCondition) matcher {
	t.Helper()
	c, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		t.Fatal(err)
	}
	acc := make([]plugincel.ExpressionAccessor, len(conds))
	for i := range conds {
		acc[i] = (*matchconditions.MatchCondition)(&conds[i])
	}
	fail := admissionregistrationv1.Fail
	m := matchconditions.NewMatcher(c.CompileCondition(acc, plugincel.OptionalVariableDeclarations{}, environment.StoredExpressions), &fail, "webhook", "test", "test")
	return func(op apiadmission.Operation, obj, old runtime.Object, gvk schema.GroupVersionKind, gvr schema.GroupVersionResource, subresource string) bool {
		t.Helper()
		var ns, name string
		if m, err := meta.Accessor(obj); err == nil {
			ns, name = m.GetNamespace(), m.GetName()
		}
		a := apiadmission.NewAttributesRecord(obj, old, gvk, ns, name, gvr, subresource, op, nil, false, nil)
		va := &apiadmission.VersionedAttributes{Attributes: a, VersionedKind: gvk,
			VersionedObject: apiadmission.NewLazyObject(obj), VersionedOldObject: apiadmission.NewLazyObject(old)}
		r := m.Match(c.CreateContext(context.Background()), va, nil, nil)
		if r.Error != nil {
			t.Fatalf("evaluating the match conditions: %v", r.Error)
		}
		return r.Matches
	}
}

// conditionsOf returns the match conditions of the webhook named name in
// webhooks, fataling when it has none.
func conditionsOf[W webhookConditions](t testing.TB, webhooks []W, name string) []admissionregistrationv1.MatchCondition {
	t.Helper()
	for i := range webhooks {
		if n, conds := nameAndConditions(&webhooks[i]); n == name {
			return conds
		}
	}
	t.Fatalf("no webhook %s", name)
	return nil
}
