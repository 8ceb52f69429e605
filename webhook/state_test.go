package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/kubectl-dc/kubectl-dc/policy"
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
	// It is counted by the census too (a placement just after it is judged
	// with it), until an informer sees it.
	if pods := s.Pods("kube-system", labels.SelectorFromSet(labels.Set{"component": "etcd"})); len(pods) != 1 || pods[0].Name != "etcd-x" {
		t.Errorf("census of the remembered member = %v, want etcd-x", pods)
	}
	if pods := s.Pods("kube-system", labels.SelectorFromSet(labels.Set{"component": "other"})); len(pods) != 0 {
		t.Errorf("census of another selector = %v, want none", pods)
	}
	if pods := s.Pods("default", labels.Everything()); len(pods) != 0 {
		t.Errorf("census of another namespace = %v, want none", pods)
	}
	s.seen(pod)
	if pods := s.Pods("kube-system", labels.Everything()); len(pods) != 0 {
		t.Errorf("a remembered pod an informer saw is still counted from memory: %v", pods)
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

// podServer is an API server of one etcd member pod in kube-system, listed
// only for the selector component=etcd; watches stay open and silent.
func podServer(t *testing.T) *httptest.Server {
	t.Helper()
	pod := tu.Pod("kube-system", "etcd-a").Labels("component", "etcd").NodeName("pod-1-1").Pod()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		q := r.URL.Query()
		selected := q.Get("labelSelector") == "component=etcd"
		if q.Get("watch") == "true" || q.Get("watch") == "1" {
			w.WriteHeader(http.StatusOK)
			enc := json.NewEncoder(w)
			if q.Get("sendInitialEvents") == "true" {
				// A streaming list: the members, then the bookmark that
				// ends the initial events.
				if selected {
					_ = enc.Encode(map[string]any{"type": "ADDED", "object": pod})
				}
				_ = enc.Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{"kind": "Pod", "apiVersion": "v1",
					"metadata": map[string]any{"resourceVersion": "1", "annotations": map[string]string{"k8s.io/initial-events-end": "true"}}}})
			}
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		list := corev1.PodList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"}, ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
		if selected {
			list.Items = []corev1.Pod{*pod}
		}
		_ = json.NewEncoder(w).Encode(list)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestPolicyEditKeepsTheCensus: while a policy change waits for the member
// informers of its new selectors, the engine in use still counts the
// members of the old ones; they stop only once the new engine is in use.
func TestPolicyEditKeepsTheCensus(t *testing.T) {
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: podServer(t).URL})
	if err != nil {
		t.Fatal(err)
	}
	empty := func() toolscache.Indexer {
		return toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	}
	s := NewCacheState(empty(), empty(), empty(), cs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	oldSel := labels.SelectorFromSet(labels.Set{"component": "etcd"})
	newSel := labels.SelectorFromSet(labels.Set{"component": "etcd", "tier": "control-plane"})
	oldRules := []policy.MemberSelector{{Rule: "p/etcd", Namespaces: []string{"kube-system"}, Selector: oldSel}}
	newRules := []policy.MemberSelector{{Rule: "p/etcd", Namespaces: []string{"kube-system"}, Selector: newSel}}
	if !toolscache.WaitForCacheSync(ctx.Done(), s.SetMembers(ctx, oldRules)...) {
		t.Fatal("old member informer never synced")
	}
	if got := s.Pods("kube-system", oldSel); len(got) != 1 {
		t.Fatalf("census before the edit = %d members, want 1", len(got))
	}
	started := s.SetMembers(ctx, newRules)
	if got := s.Pods("kube-system", oldSel); len(got) != 1 {
		t.Errorf("census of the engine in use while the edit syncs = %d members, want 1", len(got))
	}
	toolscache.WaitForCacheSync(ctx.Done(), started...)
	s.PruneMembers(newRules)
	if n := len(*s.members.Load()); n != 1 {
		t.Errorf("%d member informers after the new engine is in use, want 1", n)
	}
}
