package drain

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestFloorDrain runs the reference evictor against a fake clientset whose
// evictions delete the pod, the first attempt of each refused with a 429:
// every pod of the nodes is evicted and seen gone, a mirror pod and the
// pods of other nodes are left, the nodes are cordoned, and the PDB's
// watch ends with the drain.
func TestFloorDrain(t *testing.T) {
	var objs []runtime.Object
	for _, n := range []string{"a", "b", "other"} {
		objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
		for i := range 3 {
			objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("%s-%d", n, i), UID: "u"}, Spec: corev1.PodSpec{NodeName: n}})
		}
	}
	objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "etcd-a", Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "x"}}, Spec: corev1.PodSpec{NodeName: "a"}})
	objs = append(objs, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "bench"}})
	cs := fake.NewClientset(objs...)
	refused := map[string]bool{}
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		if !refused[ev.Name] {
			refused[ev.Name] = true
			return true, nil, apierrors.NewTooManyRequests("budget", 0)
		}
		gvr := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
		return true, nil, cs.Tracker().Delete(gvr, ev.Namespace, ev.Name)
	})
	f := &floor{client: cs, nodes: []string{"a", "b"}, workers: 1, pause: time.Millisecond, pdb: "ns/bench"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := f.drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.pods != 6 || st.tooMany != 6 || len(st.acceptedAt) != 6 {
		t.Errorf("pods %d, 429s %d, accepted %d; want 6 of each", st.pods, st.tooMany, len(st.acceptedAt))
	}
	t.Log(st)
	left, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range left.Items {
		names = append(names, p.Name)
	}
	if want := fmt.Sprint([]string{"etcd-a", "other-0", "other-1", "other-2"}); fmt.Sprint(names) != want {
		t.Errorf("pods left %v, want %s", names, want)
	}
	for _, n := range []string{"a", "b"} {
		node, err := cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil || !node.Spec.Unschedulable {
			t.Errorf("node %s not cordoned (%v)", n, err)
		}
	}
}
