package policy

import (
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// StaticState is a State over a fixed set of objects: the plugin's LIST
// results, a `--nodes` file, or test fixtures. It is not safe for
// concurrent Add and reads.
type StaticState struct {
	nodes        map[string]*corev1.Node
	nodeList     []*corev1.Node
	pods         map[string]*corev1.Pod
	podList      []*corev1.Pod
	statefulSets map[string]*appsv1.StatefulSet
	namespaces   map[string]labels.Set
}

var _ State = (*StaticState)(nil)

// NewStaticState returns a State holding the Nodes, Pods, StatefulSets and
// Namespaces among objs (pointers); other objects are ignored.
func NewStaticState(objs ...runtime.Object) *StaticState {
	s := &StaticState{
		nodes:        map[string]*corev1.Node{},
		pods:         map[string]*corev1.Pod{},
		statefulSets: map[string]*appsv1.StatefulSet{},
		namespaces:   map[string]labels.Set{},
	}
	for _, o := range objs {
		s.Add(o)
	}
	return s
}

// Add adds or replaces a Node, Pod, StatefulSet or Namespace, and reports
// whether obj was one of those.
func (s *StaticState) Add(obj runtime.Object) bool {
	switch o := obj.(type) {
	case *corev1.Node:
		if _, ok := s.nodes[o.Name]; ok {
			for i, n := range s.nodeList {
				if n.Name == o.Name {
					s.nodeList[i] = o
				}
			}
		} else {
			s.nodeList = append(s.nodeList, o)
		}
		s.nodes[o.Name] = o
	case *corev1.Pod:
		key := o.Namespace + "/" + o.Name
		if _, ok := s.pods[key]; ok {
			for i, p := range s.podList {
				if p.Namespace == o.Namespace && p.Name == o.Name {
					s.podList[i] = o
				}
			}
		} else {
			s.podList = append(s.podList, o)
		}
		s.pods[key] = o
	case *appsv1.StatefulSet:
		s.statefulSets[o.Namespace+"/"+o.Name] = o
	case *corev1.Namespace:
		s.namespaces[o.Name] = labels.Set(o.Labels)
	default:
		return false
	}
	return true
}

// Nodes returns the nodes sorted by name.
func (s *StaticState) Nodes() []*corev1.Node {
	sort.Slice(s.nodeList, func(i, j int) bool { return s.nodeList[i].Name < s.nodeList[j].Name })
	return s.nodeList
}

// Node returns the named node or nil.
func (s *StaticState) Node(name string) *corev1.Node { return s.nodes[name] }

// Pod returns the named pod or nil.
func (s *StaticState) Pod(namespace, name string) *corev1.Pod {
	return s.pods[namespace+"/"+name]
}

// Pods returns the pods in namespace ("" for all) matching selector (nil
// matches every pod).
func (s *StaticState) Pods(namespace string, selector labels.Selector) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range s.podList {
		if namespace != "" && p.Namespace != namespace {
			continue
		}
		if selector != nil && !selector.Matches(labels.Set(p.Labels)) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// StatefulSet returns the named StatefulSet or nil.
func (s *StaticState) StatefulSet(namespace, name string) *appsv1.StatefulSet {
	return s.statefulSets[namespace+"/"+name]
}

// NamespaceLabels returns the labels of a namespace added as a Namespace.
func (s *StaticState) NamespaceLabels(name string) (labels.Set, bool) {
	l, ok := s.namespaces[name]
	return l, ok
}

// WithPods returns state with pods added: member placements decided
// moments ago that state's caches may not show yet. An added pod replaces
// the state's pod of the same namespace and name while that one is not
// bound to a node (a binding being serialised). Pods must not be modified.
func WithPods(state State, pods []*corev1.Pod) State {
	if len(pods) == 0 {
		return state
	}
	return &overlayState{State: state, extra: pods}
}

type overlayState struct {
	State
	extra []*corev1.Pod
}

func (s *overlayState) Pod(namespace, name string) *corev1.Pod {
	p := s.State.Pod(namespace, name)
	if p != nil && p.Spec.NodeName != "" {
		return p
	}
	for _, e := range s.extra {
		if e.Namespace == namespace && e.Name == name {
			return e
		}
	}
	return p
}

func (s *overlayState) Pods(namespace string, selector labels.Selector) []*corev1.Pod {
	base := s.State.Pods(namespace, selector)
	// Whether the caches have caught up is judged by what Pods returns, the
	// census, not by Pod, which may also know pods admitted moments ago.
	bound := make(map[string]bool, len(base))
	for _, p := range base {
		if p.Spec.NodeName != "" {
			bound[p.Namespace+"/"+p.Name] = true
		}
	}
	out := make([]*corev1.Pod, 0, len(base)+len(s.extra))
	replaced := map[string]bool{}
	for _, e := range s.extra {
		if namespace != "" && e.Namespace != namespace {
			continue
		}
		if selector != nil && !selector.Matches(labels.Set(e.Labels)) {
			continue
		}
		k := e.Namespace + "/" + e.Name
		if bound[k] {
			continue
		}
		replaced[k] = true
		out = append(out, e)
	}
	for _, p := range base {
		if !replaced[p.Namespace+"/"+p.Name] {
			out = append(out, p)
		}
	}
	return out
}
