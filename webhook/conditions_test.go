package webhook

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiadmission "k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
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

// compileAsNew compiles expr as the API server compiles a match condition
// of a webhook configuration being created or updated (a new expression:
// the parser's limits, the current library), and returns why it refuses
// it.
func compileAsNew(t testing.TB, expr string) error {
	t.Helper()
	c, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		t.Fatal(err)
	}
	r := c.CompileCELExpression(&matchconditions.MatchCondition{Expression: expr}, plugincel.OptionalVariableDeclarations{HasAuthorizer: true}, environment.NewExpressions)
	if r.Error != nil {
		return r.Error
	}
	return nil
}

// declaringKinds returns the engine of a policy that declares n kinds, one
// per group, with their templates at path.
func declaringKinds(t testing.TB, n int, path string) *policy.Engine {
	t.Helper()
	p := macstadium(v1alpha1.ActionDeny)
	for i := range n {
		p.Spec.WorkloadKinds = append(p.Spec.WorkloadKinds, v1alpha1.WorkloadKind{Group: fmt.Sprintf("ci%d.example.com", i), Kind: "Runner", TemplatePath: path})
	}
	eng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{p})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// TestDeclaredConditionsWithinAPILimits: with 16 declared kinds (more is
// unusual), templates four fields deep, the selected-by-a-rule and has-datacenter-label conditions a replica writes
// are accepted by the API server's compiler, and evaluating them for the
// last kind stays within the cost limits of a match condition (the
// matcher fails on a cost overrun): an update of its template is sent, a
// change of replicas is not.
func TestDeclaredConditionsWithinAPILimits(t *testing.T) {
	const path = "spec.jobTemplate.spec.template"
	for _, n := range []int{16} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			eng := declaringKinds(t, n, path)
			_, selected, mutate, _ := (&ScopeNodes{}).Conditions(eng)
			last := schema.GroupVersionResource{Group: fmt.Sprintf("ci%d.example.com", n-1), Version: "v1", Resource: "runners"}
			runner := func(replicas int64, zone string) *unstructured.Unstructured {
				u := &unstructured.Unstructured{}
				u.SetAPIVersion(last.GroupVersion().String())
				u.SetKind("Runner")
				u.SetNamespace("apps")
				u.SetName("worker")
				u.SetLabels(map[string]string{dcLabel: "pod-2"})
				_ = unstructured.SetNestedField(u.Object, replicas, "spec", "replicas")
				_ = unstructured.SetNestedStringMap(u.Object, map[string]string{"app": "worker"}, append(strings.Split(path, "."), "metadata", "labels")...)
				_ = unstructured.SetNestedStringMap(u.Object, map[string]string{tu.Zone: zone}, append(strings.Split(path, "."), "spec", "nodeSelector")...)
				return u
			}
			for name, expr := range map[string]string{selectedCondition: selected, fromLabelCondition: mutate} {
				if !strings.Contains(expr, strconv.Quote(last.Group)) {
					t.Fatalf("%s does not name the last declared kind's group", name)
				}
				if err := compileAsNew(t, expr); err != nil {
					t.Fatalf("%s (%d code points) refused: %v", name, utf8.RuneCountInString(expr), err)
				}
				sent := newMatcher(t, []admissionregistrationv1.MatchCondition{{Name: name, Expression: expr}})
				if !sent(apiadmission.Update, runner(3, "pod-1"), runner(3, "pod-2"), runner(3, "").GroupVersionKind(), last, "") {
					t.Errorf("%s: a change of the template is not sent", name)
				}
				if sent(apiadmission.Update, runner(0, "pod-2"), runner(3, "pod-2"), runner(3, "").GroupVersionKind(), last, "") {
					t.Errorf("%s: a change of replicas is sent", name)
				}
			}
		})
	}
}

// TestDeclaredConditionTooLong: a declared kind whose template lies so
// deep (128 fields, as long a path as a policy may give) that the
// declared-update condition would pass the API server's size limit leaves
// the conditions as they are without it, which the API server accepts:
// every update of a declared kind is sent, rather than the configuration
// refused and the previous conditions kept.
func TestDeclaredConditionTooLong(t *testing.T) {
	path := strings.TrimSuffix(strings.Repeat("a.", 128), ".")
	eng := declaringKinds(t, 1, path)
	if err := compileAsNew(t, DeclaredUpdateCondition(eng.DeclaredKinds())); err == nil {
		t.Fatal("the declared-update condition fits: the test needs a longer path")
	}
	s := &ScopeNodes{}
	_, selected, mutate, _ := s.Conditions(eng)
	_, without, mutateWithout, _ := s.conditions(eng)
	for name, got := range map[string][2]string{selectedCondition: {selected, without}, fromLabelCondition: {mutate, mutateWithout}} {
		if got[0] != got[1] {
			t.Errorf("%s = %.200q..., want the condition without the declared kinds", name, got[0])
		}
		if err := compileAsNew(t, got[0]); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
}
