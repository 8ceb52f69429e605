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

// declaringKindsAt returns the engine of policies that declare a kind for
// each of paths, one per group, its template at the path: the example
// policy the first 64 (as many as one policy may declare), another policy
// each next 64.
func declaringKindsAt(t testing.TB, paths []string) *policy.Engine {
	t.Helper()
	policies := []v1alpha1.PlacementPolicy{macstadium(v1alpha1.ActionDeny)}
	for i, path := range paths {
		if i > 0 && i%64 == 0 {
			policies = append(policies, tu.Policy(fmt.Sprintf("declaring-%d", i/64)).Datacenters("pod-1", "pod-2", "pod-3").Value())
		}
		p := &policies[len(policies)-1]
		p.Spec.WorkloadKinds = append(p.Spec.WorkloadKinds, v1alpha1.WorkloadKind{Group: fmt.Sprintf("ci%d.example.com", i), Kind: "Runner", TemplatePath: path})
	}
	eng, err := policy.NewEngine(policies)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// longestPath is the longest template path a policy may give (256
// characters): 128 fields, the first two named after i (under 676), so
// that each i has a path of its own.
func longestPath(i int) string {
	return string(rune('a'+i/26)) + "." + string(rune('a'+i%26)) + strings.Repeat(".a", 126)
}

// TestDeclaredConditionsWithinAPILimits: with 16 declared kinds (more is
// unusual) and with 64 (the most one policy may declare), templates four
// fields deep, and with 64 each at a path of its own as long as a policy
// may give (128 fields), the selected-by-a-rule and has-datacenter-label
// conditions a replica writes are accepted by the API server's compiler,
// and evaluating them for the last kind stays within the cost limits of a
// match condition (the matcher fails on a cost overrun): an update of its
// template is sent, a change of replicas is not.
func TestDeclaredConditionsWithinAPILimits(t *testing.T) {
	fourDeep := func(int) string { return "spec.jobTemplate.spec.template" }
	for _, tc := range []struct {
		n      int
		pathOf func(i int) string
	}{{16, fourDeep}, {64, fourDeep}, {64, longestPath}} {
		n, path := tc.n, tc.pathOf(tc.n-1)
		t.Run(strconv.Itoa(n)+"/"+strconv.Itoa(strings.Count(path, ".")+1), func(t *testing.T) {
			paths := make([]string, n)
			for i := range paths {
				paths[i] = tc.pathOf(i)
			}
			eng := declaringKindsAt(t, paths)
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
				if !strings.Contains(expr, strconv.Quote(last.Group+"/Runner")) {
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

// TestDeclaredConditionTooLong: declared kinds whose templates lie so
// deep (192 kinds, as many as three policies may declare, each at a path
// of its own of 128 fields, as long as a policy may give) that the
// declared-update condition would pass the API server's size limit leave
// the conditions as they are without it, which the API server accepts:
// every update of a declared kind is sent, rather than the configuration
// refused and the previous conditions kept.
func TestDeclaredConditionTooLong(t *testing.T) {
	paths := make([]string, 192)
	for i := range paths {
		paths[i] = longestPath(i)
	}
	eng := declaringKindsAt(t, paths)
	if err := compileAsNew(t, DeclaredUpdateCondition(eng.DeclaredKinds())); err == nil {
		t.Fatal("the declared-update condition fits: the test needs more kinds")
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

// BenchmarkDeclaredConditions measures what the API server spends on
// compiling each condition a replica writes with 16 and 64 declared
// kinds, templates four fields deep, each at a path of its own, and with
// one kind at a path of 32 and of 128 fields: it compiles them on every
// write of the webhook configurations, and on its start.
func BenchmarkDeclaredConditions(b *testing.B) {
	c, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		b.Fatal(err)
	}
	deep := func(n int) string { return strings.TrimSuffix(strings.Repeat("a.", n), ".") }
	for _, tc := range []struct {
		name  string
		paths []string
	}{
		{"kinds=16", nil}, {"kinds=64", nil},
		{"kinds=1/fields=32", []string{deep(32)}}, {"kinds=1/fields=128", []string{deep(128)}},
	} {
		if tc.paths == nil {
			n, _ := strconv.Atoi(strings.TrimPrefix(tc.name, "kinds="))
			for i := range n {
				tc.paths = append(tc.paths, fmt.Sprintf("spec.job%dTemplate.spec.template", i))
			}
		}
		eng := declaringKindsAt(b, tc.paths)
		_, selected, mutate, _ := (&ScopeNodes{}).Conditions(eng)
		last := strconv.Quote(fmt.Sprintf("ci%d.example.com", len(tc.paths)-1))
		for _, cond := range []struct{ name, expr string }{{selectedCondition, selected}, {fromLabelCondition, mutate}} {
			b.Run(tc.name+"/"+cond.name, func(b *testing.B) {
				if !strings.Contains(cond.expr, strings.TrimSuffix(last, `"`)) {
					b.Skip("the declared-update condition does not fit")
				}
				b.ReportMetric(float64(utf8.RuneCountInString(cond.expr)), "codepoints")
				for b.Loop() {
					r := c.CompileCELExpression(&matchconditions.MatchCondition{Expression: cond.expr}, plugincel.OptionalVariableDeclarations{HasAuthorizer: true}, environment.NewExpressions)
					if r.Error != nil {
						b.Fatal(r.Error)
					}
				}
			})
		}
	}
}

// TestSelectorConditionsTooLong: rules whose selectors together pass the
// API server's 100,000 code points leave the conditions that would name
// them "true" (every request the webhooks' rules name is sent), which the
// API server accepts, rather than an expression it refuses, Sync failing
// and the replicas keeping the previous, narrower conditions: in webhook
// mode the workload webhooks' selected-by-a-rule, in both mode that and
// the mutating webhooks' has-datacenter-label, which audits the rules.
func TestSelectorConditionsTooLong(t *testing.T) {
	long := strings.Repeat("x", 50)
	for _, mode := range []v1alpha1.PinnedEnforcement{v1alpha1.PinnedEnforcementWebhook, v1alpha1.PinnedEnforcementBoth} {
		t.Run(string(mode), func(t *testing.T) {
			var policies []v1alpha1.PlacementPolicy
			for i := range 16 {
				var rules []*tu.PinnedBuilder
				for j := range 64 {
					rules = append(rules, tu.PinnedRule(fmt.Sprintf("r%d", j)).MatchLabels("example.com/team-"+long, fmt.Sprintf("%s-%d-%d", long, i, j)))
				}
				policies = append(policies, tu.Policy(fmt.Sprintf("p%d", i)).Datacenters("pod-1", "pod-2").Pinned(rules...).
					Edit(func(p *v1alpha1.PlacementPolicy) { p.Spec.PinnedEnforcement = mode }).Value())
			}
			eng, err := policy.NewEngine(policies)
			if err != nil {
				t.Fatal(err)
			}
			s := &ScopeNodes{}
			_, narrow, narrowMutate, _ := s.conditions(eng)
			if utf8.RuneCountInString(narrow) <= maxConditionCodePoints {
				t.Fatalf("selected-by-a-rule has %d code points: the test needs more selectors", utf8.RuneCountInString(narrow))
			}
			_, selected, mutate, _ := s.Conditions(eng)
			conds := map[string]string{selectedCondition: selected}
			if mode == v1alpha1.PinnedEnforcementBoth {
				if utf8.RuneCountInString(narrowMutate) <= maxConditionCodePoints {
					t.Fatalf("has-datacenter-label has %d code points: the test needs more selectors", utf8.RuneCountInString(narrowMutate))
				}
				conds[fromLabelCondition] = mutate
			}
			for name, expr := range conds {
				if err := compileAsNew(t, expr); err != nil {
					t.Errorf("%s (%d code points) refused: %v", name, utf8.RuneCountInString(expr), err)
					continue
				}
				sent := newSender(t, []admissionregistrationv1.MatchCondition{{Name: name, Expression: expr}})
				pod := tu.Pod("apps", "worker").Labels("example.com/team-"+long, long+"-15-63").Obj()
				if !sent(apiadmission.Create, pod, nil, "") {
					t.Errorf("%s: a pod the last rule selects is not sent", name)
				}
			}
		})
	}
}
