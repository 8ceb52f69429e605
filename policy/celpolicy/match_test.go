package celpolicy_test

import (
	"context"
	"maps"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy/celtest"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// variant returns an Evaluator of set with every validating policy's spec
// changed by edit (the bindings and mutating policies left out).
func variant(t *testing.T, set *celpolicy.Set, edit func(*admissionregistrationv1.ValidatingAdmissionPolicySpec)) *celpolicy.Evaluator {
	t.Helper()
	out := &celpolicy.Set{ValidatingBindings: set.ValidatingBindings}
	for i := range set.Validating {
		p := set.Validating[i].DeepCopy()
		edit(&p.Spec)
		out.Validating = append(out.Validating, *p)
	}
	e, err := celpolicy.NewEvaluator(out)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// matchOnly is set whose validations always refuse: a verdict says that
// the policy's match condition matched the request.
func matchOnly(t *testing.T, set *celpolicy.Set) *celpolicy.Evaluator {
	return variant(t, set, func(s *admissionregistrationv1.ValidatingAdmissionPolicySpec) {
		s.Validations = []admissionregistrationv1.Validation{{Expression: "false", Message: "matched"}}
	})
}

// policiesOf returns the names of the policies with a verdict on the
// request, failing t on an expression that cannot be evaluated.
func policiesOf(t *testing.T, e *celpolicy.Evaluator, op admission.Operation, obj, old runtime.Object, ns *corev1.Namespace) map[string]bool {
	t.Helper()
	vs, err := e.Validate(context.Background(), op, obj, old, ns)
	if err != nil {
		t.Errorf("%v", err)
	}
	out := map[string]bool{}
	for _, v := range vs {
		out[v.Policy] = true
	}
	return out
}

// TestMatchConditionSkipsOnlyAdmittedPods: the validating policies' match
// condition lets the API server skip their variables for the pods a rule
// admits whatever they say (those it does not select, those pinned to a
// known datacenter by nodeSelector). Every pod request of the corpus it
// skips is one the validation alone, without the match condition,
// admits; objects being deleted, mirror pods and pod updates that leave
// the labels alone are left out, as the policies never judge them.
func TestMatchConditionSkipsOnlyAdmittedPods(t *testing.T) {
	policies := celtest.Policies()
	set, err := celpolicy.Compile(policies, celpolicy.Options{Nodes: celtest.Nodes()})
	if err != nil {
		t.Fatal(err)
	}
	selectors := map[string]labels.Selector{}
	for _, p := range policies {
		for _, r := range p.Spec.Pinned {
			sel, err := metav1.LabelSelectorAsSelector(&r.Selector)
			if err != nil {
				t.Fatal(err)
			}
			selectors[celpolicy.ValidatingName(p.Name, r.Name)] = sel
		}
	}
	matched := matchOnly(t, set)
	validated := variant(t, set, func(s *admissionregistrationv1.ValidatingAdmissionPolicySpec) { s.MatchConditions = nil })
	// bound: a verdict says that the binding selects the namespace.
	bound := variant(t, set, func(s *admissionregistrationv1.ValidatingAdmissionPolicySpec) {
		s.MatchConditions = nil
		s.Validations = []admissionregistrationv1.Validation{{Expression: "false", Message: "bound"}}
	})

	// skippedSelected counts the (policy, pod) pairs skipped although the
	// rule selects the pod: the pinned pods.
	pods, skippedSelected := 0, 0
	// One request in nine of the corpus is a pod's.
	corpus := celtest.Corpus(18, 9000, celtest.Namespaces())
	for _, req := range corpus {
		pod, ok := req.Obj.(*corev1.Pod)
		if !ok || pod.DeletionTimestamp != nil {
			continue
		}
		if _, mirror := pod.Annotations[policy.AnnotationMirrorPod]; mirror {
			continue
		}
		if req.Op == admission.Update && maps.Equal(pod.Labels, req.Old.(*corev1.Pod).Labels) {
			continue
		}
		pods++
		m := policiesOf(t, matched, req.Op, req.Obj, req.Old, req.NS)
		v := policiesOf(t, validated, req.Op, req.Obj, req.Old, req.NS)
		b := policiesOf(t, bound, req.Op, req.Obj, req.Old, req.NS)
		for name := range v {
			if !m[name] {
				t.Errorf("%s Pod %s (%s): %s skips it, but its validation refuses it", req.Op, pod.Name, req.What, name)
			}
		}
		for name, sel := range selectors {
			if b[name] && !m[name] && sel.Matches(labels.Set(pod.Labels)) {
				skippedSelected++
			}
		}
	}
	t.Logf("%d pod requests, %d (policy, selected pod) pairs skipped", pods, skippedSelected)
	// Some of the skipped pods are selected and pinned, or the test
	// proves little.
	if skippedSelected < 20 {
		t.Errorf("only %d selected pods skipped", skippedSelected)
	}
}

// TestMatchConditionShapes: which pod requests the match condition of the
// rule alpha/workers (app=worker, datacenterFromLabel, pod-1..pod-3)
// sends to the validation: workload kinds always; pods unless the rule
// admits them whatever the variables say.
func TestMatchConditionShapes(t *testing.T) {
	set, err := celpolicy.Compile(celtest.Policies(), celpolicy.Options{Nodes: celtest.Nodes()})
	if err != nil {
		t.Fatal(err)
	}
	e := matchOnly(t, set)
	workers := celpolicy.ValidatingName("alpha", "workers")
	ns := testutil.Namespace("plain")
	worker := func() *testutil.ObjectBuilder { return testutil.Pod("plain", "w").Labels("app", "worker") }
	pinned := worker().InDC("pod-1").Obj()
	cases := []struct {
		name     string
		op       admission.Operation
		obj, old runtime.Object
		judged   bool
	}{
		{name: "a pod pinned to a known datacenter", obj: pinned},
		{name: "a pod no rule selects", obj: testutil.Pod("plain", "x").Labels("app", "web").Obj()},
		{name: "a pod pinned where its datacenterFromLabel says", obj: worker().InDC("pod-1").ObjectLabels(celtest.FromDC, "pod-1").Obj()},
		{name: "a status write", op: admission.Update, obj: pinned, old: pinned},
		{name: "a pod pinned to an unknown datacenter", obj: worker().InDC("pod-9").Obj(), judged: true},
		{name: "a pod without a datacenter", obj: worker().Obj(), judged: true},
		{name: "a pod whose datacenterFromLabel disagrees", obj: worker().InDC("pod-1").ObjectLabels(celtest.FromDC, "pod-2").Obj(), judged: true},
		{name: "a pod with required node affinity", obj: worker().InDC("pod-1").RequiredAffinity(testutil.Term(testutil.In(celtest.Zone, "pod-2"))).Obj(), judged: true},
		{name: "a pod relabelled into the rule", op: admission.Update, obj: worker().Obj(), old: testutil.Pod("plain", "w").Labels("app", "web").Obj(), judged: true},
		{name: "a Deployment pinned to a known datacenter", obj: testutil.Deployment("plain", "w").Labels("app", "worker").InDC("pod-1").Obj(), judged: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op := c.op
			if op == "" {
				op = admission.Create
			}
			if got := policiesOf(t, e, op, c.obj, c.old, ns)[workers]; got != c.judged {
				t.Errorf("sent to the validation: %v, want %v", got, c.judged)
			}
		})
	}
}
