package drain

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// barrierServer answers node patches, holding each until n are in flight
// together (or a generous deadline passes), and records the most ever in
// flight: patches sent one after another never meet. (The fake clientset
// serialises its calls, so this is an HTTP server.)
type barrierServer struct {
	n        int
	mu       sync.Mutex
	inFlight int
	most     int
	patched  []string
	all      chan struct{}
}

func (b *barrierServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPatch {
		http.Error(w, "only node patches here", http.StatusMethodNotAllowed)
		return
	}
	name := path.Base(r.URL.Path)
	b.mu.Lock()
	b.inFlight++
	b.most = max(b.most, b.inFlight)
	b.patched = append(b.patched, name)
	if b.inFlight == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(10 * time.Second):
	}
	b.mu.Lock()
	b.inFlight--
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: name}})
}

// TestCordonInParallel: drain cordons a datacenter's nodes together, not
// one after another, and reports them in the plan's order.
func TestCordonInParallel(t *testing.T) {
	const n = 6
	b := &barrierServer{n: n, all: make(chan struct{})}
	srv := httptest.NewServer(b)
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	plan := &Plan{Datacenter: "pod-2", Nodes: []PlanNode{{Name: "pod-2-cordoned", Unschedulable: true}}}
	var want []string
	for i := range n {
		name := fmt.Sprintf("pod-2-worker-%d", i)
		plan.Nodes = append(plan.Nodes, PlanNode{Name: name})
		want = append(want, name)
	}
	cordoned, already, err := cordon(context.Background(), cs, plan, "tester@host", time.Unix(0, 0))
	if err != nil {
		t.Fatalf("cordon: %v", err)
	}
	if b.most != n {
		t.Errorf("at most %d node patches in flight together, want %d", b.most, n)
	}
	if fmt.Sprint(cordoned) != fmt.Sprint(want) || fmt.Sprint(already) != "[pod-2-cordoned]" {
		t.Errorf("cordoned %v, already %v; want %v and [pod-2-cordoned]", cordoned, already, want)
	}
	if len(b.patched) != n {
		t.Errorf("patched %v, want the %d schedulable nodes once each", b.patched, n)
	}
}
