package celpolicy_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"

	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy/celtest"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// BenchmarkAdmitPod is the API server's work in the compiled policies of
// the differential tests (six pinned rules) for a pod one rule pins: its
// create, and a status write that leaves its labels alone, which the
// kubelet makes several times in a pod's life.
//
//	go test -run '^$' -bench BenchmarkAdmitPod -benchmem ./policy/celpolicy/
func BenchmarkAdmitPod(b *testing.B) {
	set, err := celpolicy.Compile(celtest.Policies(), celpolicy.Options{Nodes: celtest.Nodes()})
	if err != nil {
		b.Fatal(err)
	}
	e, err := celpolicy.NewEvaluator(set)
	if err != nil {
		b.Fatal(err)
	}
	ns := testutil.Namespace("plain")
	created := testutil.Pod("plain", "worker-1").Labels("app", "worker").InDC("pod-1").Pod()
	running := created.DeepCopy()
	running.Status.Phase = corev1.PodRunning
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		op       admission.Operation
		obj, old runtime.Object
	}{
		{"create", admission.Create, created, nil},
		{"status-write", admission.Update, running, created},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := e.Admit(ctx, tc.op, tc.obj, tc.old, ns); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
