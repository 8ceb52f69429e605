package webhook

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"

	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func TestCacheState(t *testing.T) {
	nodes := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	sts := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	nss := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	_ = nodes.Add(tu.Node("b").InDC("pod-2").Obj())
	_ = nodes.Add(tu.Node("a").InDC("pod-1").Obj())
	_ = sts.Add(tu.StatefulSet("db", "etcd").Replicas(5).Obj())
	_ = nss.Add(tu.Namespace("db", "team", "storage"))
	s := NewCacheState(nodes, sts, nss, nil)

	if got := s.Nodes(); len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Fatalf("Nodes = %v, want a, b", got)
	}
	_ = nodes.Add(tu.Node("c").InDC("pod-3").Obj())
	if got := s.Nodes(); len(got) != 2 {
		t.Errorf("snapshot rebuilt without an event: %d nodes", len(got))
	}
	s.InvalidateNodes()
	if got := s.Nodes(); len(got) != 3 {
		t.Errorf("Nodes after invalidation = %d, want 3", len(got))
	}
	if n := s.Node("b"); n == nil || n.Labels[tu.Zone] != "pod-2" {
		t.Errorf("Node(b) = %v", n)
	}
	if s.Node("zz") != nil {
		t.Error("unknown node found")
	}
	if st := s.StatefulSet("db", "etcd"); st == nil || *st.Spec.Replicas != 5 {
		t.Errorf("StatefulSet = %v", st)
	}
	if l, ok := s.NamespaceLabels("db"); !ok || l["team"] != "storage" {
		t.Errorf("NamespaceLabels(db) = %v, %v", l, ok)
	}
	if _, ok := s.NamespaceLabels("nope"); ok {
		t.Error("unknown namespace found")
	}

	// A member admitted moments ago is found before any informer sees it.
	pod := tu.Pod("kube-system", "etcd-x").Labels("component", "etcd").Pod()
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	if s.Pod("kube-system", "etcd-x") != nil {
		t.Fatal("pod found before it was remembered")
	}
	s.RememberPod(pod)
	got := s.Pod("kube-system", "etcd-x")
	if got == nil || got.Labels["component"] != "etcd" {
		t.Fatalf("remembered pod = %v", got)
	}
	if got.ManagedFields != nil || got.Spec.Containers != nil {
		t.Errorf("remembered pod not stripped: %+v", got)
	}
	if pods := s.Pods("kube-system", labels.Everything()); len(pods) != 0 {
		t.Errorf("Pods without member informers = %d", len(pods))
	}
}

func TestTransforms(t *testing.T) {
	node := tu.Node("a").InDC("pod-1").Obj()
	node.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	node.Annotations = map[string]string{"big": "x"}
	node.Status.Images = []corev1.ContainerImage{{Names: []string{"img"}}}
	node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeMemoryPressure})
	out, _ := TransformNode(node)
	n := out.(*corev1.Node)
	if n.ManagedFields != nil || n.Annotations != nil || n.Status.Images != nil || len(n.Status.Conditions) != 1 || n.Labels[tu.Zone] != "pod-1" {
		t.Errorf("TransformNode kept too much or too little: %+v", n)
	}

	pod := tu.Pod("kube-system", "etcd-a").Labels("component", "etcd").NodeName("a").Mirror().Annotations("other", "x").Pod()
	out, _ = TransformPod(pod)
	p := out.(*corev1.Pod)
	if p.Spec.NodeName != "a" || p.Spec.Containers != nil || p.Annotations["other"] != "" || p.Annotations["kubernetes.io/config.mirror"] == "" {
		t.Errorf("TransformPod = %+v", p)
	}
	if other, _ := TransformPod("tombstone"); other != "tombstone" {
		t.Error("TransformPod changed a non-pod")
	}
}
