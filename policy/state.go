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
