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
// kubelet makes several times in a pod's life; and for a pod no rule
// selects, and one a rule selects without a datacenter (refused). Compare
// allocs/op: the time of one run depends on what else the machine runs.
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
	unselected := testutil.Pod("plain", "web-1").Labels("app", "web").Pod()
	refused := testutil.Pod("plain", "worker-2").Labels("app", "worker").Pod()
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
		{"unselected-create", admission.Create, unselected, nil},
		{"refused-create", admission.Create, refused, nil},
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
