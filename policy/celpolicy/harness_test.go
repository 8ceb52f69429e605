package celpolicy_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
)

// apiServer runs a compiled Set as kube-apiserver would, in-process
// (celpolicy.Evaluator): mutations, then validations.
type apiServer struct {
	e *celpolicy.Evaluator
}

func newAPIServer(t testing.TB, set *celpolicy.Set) *apiServer {
	t.Helper()
	e, err := celpolicy.NewEvaluator(set)
	if err != nil {
		t.Fatal(err)
	}
	return &apiServer{e: e}
}

type verdict = celpolicy.Verdict

// admit mutates obj (a copy) and judges it. op is CREATE or UPDATE; old
// the object before an UPDATE. An expression that cannot be evaluated
// fails t.
func (s *apiServer) admit(t testing.TB, op admission.Operation, obj, old runtime.Object, ns *corev1.Namespace) (runtime.Object, []verdict) {
	t.Helper()
	if _, ok := policy.JudgedKindOf(obj); !ok {
		t.Fatalf("not a judged kind: %T", obj)
	}
	out, vs, err := s.e.Admit(context.Background(), op, obj, old, ns)
	if err != nil {
		t.Errorf("%v", err)
	}
	return out, vs
}
