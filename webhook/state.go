package webhook

import (
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// pendingTTL is how long a member pod admitted by this replica is
// remembered, to cover the window between its CREATE and the moment the
// member informer sees it: the scheduler's binding can arrive first.
const pendingTTL = 30 * time.Second

// CacheState is policy.State over informer stores: Nodes, StatefulSets and
// Namespaces from the manager's cache, member pods from one label-selected
// informer per spread rule selector. It never calls the API server.
type CacheState struct {
	nodes        toolscache.Store
	statefulSets toolscache.Store
	namespaces   toolscache.Store

	// nodeList is the snapshot Nodes returns; a node event clears it and
	// the next Nodes call rebuilds it.
	nodeList atomic.Pointer[[]*corev1.Node]

	client  kubernetes.Interface
	members atomic.Pointer[[]*memberInformer]
	mu      sync.Mutex // serialises SetMembers

	pendingMu sync.Mutex
	pending   map[string]pendingPod
}

var _ policy.State = (*CacheState)(nil)

type pendingPod struct {
	pod   *corev1.Pod
	until time.Time
}

// memberInformer watches the pods of one namespace ("" for all) that match
// one selector.
type memberInformer struct {
	key       string
	namespace string
	informer  toolscache.SharedIndexInformer
	cancel    context.CancelFunc
}

// NewCacheState returns a State over the given stores (usually the
// indexers of Node, StatefulSet and Namespace informers). client starts the
// member pod informers of SetMembers; it may be nil when SetMembers is never
// called.
func NewCacheState(nodes, statefulSets, namespaces toolscache.Store, client kubernetes.Interface) *CacheState {
	s := &CacheState{nodes: nodes, statefulSets: statefulSets, namespaces: namespaces, client: client, pending: map[string]pendingPod{}}
	empty := []*memberInformer{}
	s.members.Store(&empty)
	return s
}

// InvalidateNodes drops the node snapshot; call it on every node event.
func (s *CacheState) InvalidateNodes() { s.nodeList.Store(nil) }

// Nodes implements policy.State.
func (s *CacheState) Nodes() []*corev1.Node {
	if l := s.nodeList.Load(); l != nil {
		return *l
	}
	items := s.nodes.List()
	out := make([]*corev1.Node, 0, len(items))
	for _, o := range items {
		if n, ok := o.(*corev1.Node); ok {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	s.nodeList.Store(&out)
	return out
}

// Node implements policy.State.
func (s *CacheState) Node(name string) *corev1.Node {
	o, ok, _ := s.nodes.GetByKey(name)
	if !ok {
		return nil
	}
	n, _ := o.(*corev1.Node)
	return n
}

// StatefulSet implements policy.State.
func (s *CacheState) StatefulSet(namespace, name string) *appsv1.StatefulSet {
	o, ok, _ := s.statefulSets.GetByKey(namespace + "/" + name)
	if !ok {
		return nil
	}
	st, _ := o.(*appsv1.StatefulSet)
	return st
}

// NamespaceLabels implements policy.State.
func (s *CacheState) NamespaceLabels(name string) (labels.Set, bool) {
	o, ok, _ := s.namespaces.GetByKey(name)
	if !ok {
		return nil, false
	}
	ns, ok := o.(*corev1.Namespace)
	if !ok {
		return nil, false
	}
	return labels.Set(ns.Labels), true
}

// Pod implements policy.State: member pods only, from the member informers
// or, for a pod this replica admitted moments ago, from memory.
func (s *CacheState) Pod(namespace, name string) *corev1.Pod {
	key := namespace + "/" + name
	for _, m := range *s.members.Load() {
		if m.namespace != "" && m.namespace != namespace {
			continue
		}
		if o, ok, _ := m.informer.GetIndexer().GetByKey(key); ok {
			if p, ok := o.(*corev1.Pod); ok {
				return p
			}
		}
	}
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if p, ok := s.pending[key]; ok && time.Now().Before(p.until) {
		return p.pod
	}
	return nil
}

// Pods implements policy.State over the member informers.
func (s *CacheState) Pods(namespace string, selector labels.Selector) []*corev1.Pod {
	var out []*corev1.Pod
	var seen map[string]bool
	sources := 0
	for _, m := range *s.members.Load() {
		if namespace != "" && m.namespace != "" && m.namespace != namespace {
			continue
		}
		var items []any
		if namespace != "" {
			items, _ = m.informer.GetIndexer().ByIndex(toolscache.NamespaceIndex, namespace)
		} else {
			items = m.informer.GetIndexer().List()
		}
		sources++
		for _, o := range items {
			p, ok := o.(*corev1.Pod)
			if !ok || !selector.Matches(labels.Set(p.Labels)) {
				continue
			}
			if sources > 1 {
				// Informers of overlapping selectors hold the same pod.
				if seen == nil {
					seen = make(map[string]bool, len(out))
					for _, q := range out {
						seen[q.Namespace+"/"+q.Name] = true
					}
				}
				k := p.Namespace + "/" + p.Name
				if seen[k] {
					continue
				}
				seen[k] = true
			}
			out = append(out, p)
		}
	}
	// Members this replica admitted that no informer holds yet: without
	// them a placement just after another is judged one member short.
	now := time.Now()
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	for k, pp := range s.pending {
		p := pp.pod
		if now.After(pp.until) || (namespace != "" && p.Namespace != namespace) || !selector.Matches(labels.Set(p.Labels)) {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool, len(out))
			for _, q := range out {
				seen[q.Namespace+"/"+q.Name] = true
			}
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// seen forgets the remembered pod obj, which a member informer now holds.
func (s *CacheState) seen(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	delete(s.pending, p.Namespace+"/"+p.Name)
}

// RememberPod keeps a member pod admitted by this replica for pendingTTL, so
// that a binding arriving before the informer sees the pod is still judged,
// and the census counts it.
func (s *CacheState) RememberPod(pod *corev1.Pod) {
	if pod.Name == "" {
		return
	}
	stripped, _ := TransformPod(pod)
	now := time.Now()
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if len(s.pending) > 1000 {
		for k, p := range s.pending {
			if now.After(p.until) {
				delete(s.pending, k)
			}
		}
	}
	s.pending[pod.Namespace+"/"+pod.Name] = pendingPod{pod: stripped.(*corev1.Pod), until: now.Add(pendingTTL)}
}

// SetMembers starts a member informer per (namespace, selector) pair of the
// spread rules that has none yet. Informers no rule needs any more keep
// running until PruneMembers, so that the engine in use keeps its census
// while the next one waits for its informers to sync. Informers run until
// ctx ends. It returns the HasSynced functions of the informers it started.
func (s *CacheState) SetMembers(ctx context.Context, selectors []policy.MemberSelector) []toolscache.InformerSynced {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := memberKeys(selectors)
	old := *s.members.Load()
	next := append([]*memberInformer(nil), old...)
	have := map[string]bool{}
	for _, m := range old {
		have[m.key] = true
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var started []toolscache.InformerSynced
	for _, k := range keys {
		if have[k] {
			continue
		}
		ns, sel := want[k][0], want[k][1]
		m := s.startMember(ctx, k, ns, sel)
		next = append(next, m)
		started = append(started, m.informer.HasSynced)
	}
	s.members.Store(&next)
	return started
}

// PruneMembers stops the member informers that none of selectors needs.
// Call it once the engine of selectors is in use.
func (s *CacheState) PruneMembers(selectors []policy.MemberSelector) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := memberKeys(selectors)
	var next []*memberInformer
	for _, m := range *s.members.Load() {
		if _, ok := want[m.key]; ok {
			next = append(next, m)
		} else {
			m.cancel()
		}
	}
	s.members.Store(&next)
}

// memberKeys maps the informer key of every (namespace, selector) pair of
// selectors to the pair.
func memberKeys(selectors []policy.MemberSelector) map[string][2]string {
	want := map[string][2]string{}
	for _, ms := range selectors {
		sel := ms.Selector.String()
		nss := ms.Namespaces
		if len(nss) == 0 {
			nss = []string{""}
		}
		for _, ns := range nss {
			want[ns+"|"+sel] = [2]string{ns, sel}
		}
	}
	return want
}

func (s *CacheState) startMember(ctx context.Context, key, namespace, selector string) *memberInformer {
	lw := toolscache.NewFilteredListWatchFromClient(s.client.CoreV1().RESTClient(), "pods", namespace, func(o *metav1.ListOptions) {
		o.LabelSelector = selector
		// Finished pods hold no place.
		o.FieldSelector = fields.AndSelectors(
			fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded)),
			fields.OneTermNotEqualSelector("status.phase", string(corev1.PodFailed)),
		).String()
	})
	inf := toolscache.NewSharedIndexInformerWithOptions(lw, &corev1.Pod{}, toolscache.SharedIndexInformerOptions{
		Indexers: toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc},
	})
	_ = inf.SetTransform(TransformPod)
	// A remembered pod the informer has seen is counted from the informer
	// alone: remembered after that, it would outlive its deletion.
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    s.seen,
		UpdateFunc: func(_, obj any) { s.seen(obj) },
	})
	mctx, cancel := context.WithCancel(ctx)
	go inf.RunWithContext(mctx)
	return &memberInformer{key: key, namespace: namespace, informer: inf, cancel: cancel}
}

// MembersSynced reports whether every member informer has synced, and names
// those that have not.
func (s *CacheState) MembersSynced() (bool, string) {
	var waiting []string
	for _, m := range *s.members.Load() {
		if !m.informer.HasSynced() {
			waiting = append(waiting, m.key)
		}
	}
	return len(waiting) == 0, strings.Join(waiting, ", ")
}
