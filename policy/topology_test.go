package policy_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func TestTopology(t *testing.T) {
	for _, tc := range []struct {
		name                             string
		node                             *corev1.Node
		dc                               string
		ready, schedulable, controlPlane bool
	}{
		{"nil", nil, "", false, false, false},
		{"plain", testutil.Node("a").Obj(), "", true, true, false},
		{"in dc", testutil.Node("a").InDC("pod-1").Obj(), "pod-1", true, true, false},
		{"control plane", testutil.Node("a").InDC("pod-2").ControlPlane().Obj(), "pod-2", true, true, true},
		{"master", testutil.Node("a").Label("node-role.kubernetes.io/master", "").Obj(), "", true, true, true},
		{"not ready", testutil.Node("a").InDC("pod-1").NotReady().Obj(), "pod-1", false, false, false},
		{"cordoned", testutil.Node("a").InDC("pod-1").Cordoned().Obj(), "pod-1", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := policy.DatacenterOf(tc.node, zone); got != tc.dc {
				t.Errorf("DatacenterOf = %q, want %q", got, tc.dc)
			}
			if got := policy.NodeReady(tc.node); got != tc.ready {
				t.Errorf("NodeReady = %v, want %v", got, tc.ready)
			}
			if got := policy.NodeSchedulable(tc.node); got != tc.schedulable {
				t.Errorf("NodeSchedulable = %v, want %v", got, tc.schedulable)
			}
			if got := policy.IsControlPlane(tc.node); got != tc.controlPlane {
				t.Errorf("IsControlPlane = %v, want %v", got, tc.controlPlane)
			}
		})
	}
	if !policy.IsMirrorPod(testutil.Pod("kube-system", "etcd-a").Mirror().Pod()) {
		t.Error("IsMirrorPod(mirror) = false")
	}
	if policy.IsMirrorPod(testutil.Pod("kube-system", "etcd-a").Pod()) || policy.IsMirrorPod(nil) {
		t.Error("IsMirrorPod(plain or nil) = true")
	}
	if !policy.IsLearner(testutil.Pod("kube-system", "etcd-a").Learner().Pod()) {
		t.Error("IsLearner(learner) = false")
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"pending", testutil.Pod("ns", "a").Pod(), false},
		{"running, ready", testutil.Pod("ns", "a").Ready(true).Pod(), true},
		{"running, not ready", testutil.Pod("ns", "a").Ready(false).Pod(), false},
		{"running, no condition", testutil.Pod("ns", "a").Phase(corev1.PodRunning).Pod(), false},
		{"ready but failed", testutil.Pod("ns", "a").Ready(true).Phase(corev1.PodFailed).Pod(), false},
	} {
		if got := policy.PodReady(tc.pod); got != tc.want {
			t.Errorf("PodReady(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPodTemplatesAndRefs(t *testing.T) {
	paths := map[string]string{
		"Pod": "spec", "Deployment": "spec.template.spec", "ReplicaSet": "spec.template.spec",
		"StatefulSet": "spec.template.spec", "DaemonSet": "spec.template.spec", "Job": "spec.template.spec",
		"CronJob": "spec.jobTemplate.spec.template.spec", "ReplicationController": "spec.template.spec",
		"PodTemplate": "template.spec",
	}
	for _, b := range testutil.Kinds("ns", "x") {
		obj, kind := b.Labels("app", "x").Obj(), b.Kind()
		ts := policy.PodTemplates(obj)
		if len(ts) != 1 {
			t.Fatalf("%s: %d templates", b.Kind(), len(ts))
		}
		if got := ts[0].Path.String(); got != paths[b.Kind()] {
			t.Errorf("%s: path %q, want %q", b.Kind(), got, paths[b.Kind()])
		}
		if ts[0].Spec != b.Spec() || ts[0].Meta.Labels["app"] != "x" {
			t.Errorf("%s: template does not point into the object", b.Kind())
		}
		obj.GetObjectKind().SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind().GroupVersion().WithKind(""))
		if ref := policy.ObjectRefOf(obj); ref != (policy.ObjectRef{Kind: kind, Namespace: "ns", Name: "x"}) {
			t.Errorf("ObjectRefOf = %+v", ref)
		}
	}
	if policy.PodTemplates(testutil.Node("a").Obj()) != nil {
		t.Error("PodTemplates(Node) is not nil")
	}
	if ref := policy.ObjectRefOf(testutil.Node("a").Obj()); ref != (policy.ObjectRef{Kind: "Node", Name: "a"}) {
		t.Errorf("ObjectRefOf(Node) = %+v", ref)
	}
}
