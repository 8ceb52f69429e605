// Package testutil builds fixtures for tests of kubectl-dc: nodes in
// datacenters, workloads of every kind the policy engine judges, and
// PlacementPolicies. Builders start from a minimal valid object, every
// method returns the builder, and Obj (or a typed getter) returns the object.
//
//	testutil.Node("a").InDC("pod-1").ControlPlane().Obj()
//	testutil.Deployment("ns", "worker").Labels("app", "worker").NodeSelector(testutil.Zone, "pod-1").Obj()
//	testutil.Policy("p").Datacenters("pod-1", "pod-2").Pinned(testutil.PinnedRule("r").MatchLabels("app", "worker")).Obj()
package testutil

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Zone is the default datacenter label, topology.kubernetes.io/zone.
const Zone = "topology.kubernetes.io/zone"

// kv turns "k1", "v1", "k2", "v2" into a map; it panics on an odd count,
// a test bug.
func kv(pairs []string) map[string]string {
	if len(pairs)%2 != 0 {
		panic(fmt.Sprintf("testutil: odd number of key/value strings: %q", pairs))
	}
	m := make(map[string]string, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

func merge(dst *map[string]string, pairs []string) {
	if *dst == nil {
		*dst = map[string]string{}
	}
	for k, v := range kv(pairs) {
		(*dst)[k] = v
	}
}

// NodeBuilder builds a Node; it starts Ready and schedulable.
type NodeBuilder struct{ n *corev1.Node }

// Node starts a Ready, schedulable node with no labels.
func Node(name string) *NodeBuilder {
	return &NodeBuilder{n: &corev1.Node{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
		}},
	}}
}

// InDC sets the default datacenter label (Zone) to dc.
func (b *NodeBuilder) InDC(dc string) *NodeBuilder { return b.Label(Zone, dc) }

// Label sets labels from key/value pairs.
func (b *NodeBuilder) Label(pairs ...string) *NodeBuilder {
	merge(&b.n.Labels, pairs)
	return b
}

// ControlPlane adds the node-role.kubernetes.io/control-plane label.
func (b *NodeBuilder) ControlPlane() *NodeBuilder {
	return b.Label("node-role.kubernetes.io/control-plane", "")
}

// NotReady sets the Ready condition to False.
func (b *NodeBuilder) NotReady() *NodeBuilder {
	b.n.Status.Conditions[0].Status = corev1.ConditionFalse
	return b
}

// Cordoned marks the node unschedulable.
func (b *NodeBuilder) Cordoned() *NodeBuilder {
	b.n.Spec.Unschedulable = true
	return b
}

// Deleting sets a deletion timestamp.
func (b *NodeBuilder) Deleting() *NodeBuilder {
	now := metav1.Now()
	b.n.DeletionTimestamp = &now
	return b
}

// Obj returns the node.
func (b *NodeBuilder) Obj() *corev1.Node { return b.n }

// Nodes builds n Ready nodes per datacenter named "<dc>-<i>" (from 1).
func Nodes(perDC int, dcs ...string) []runtime.Object {
	var out []runtime.Object
	for _, dc := range dcs {
		for i := 1; i <= perDC; i++ {
			out = append(out, Node(fmt.Sprintf("%s-%d", dc, i)).InDC(dc).Obj())
		}
	}
	return out
}

// Namespace builds a namespace with labels from key/value pairs.
func Namespace(name string, pairs ...string) *corev1.Namespace {
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: name}}
	if len(pairs) > 0 {
		ns.Labels = kv(pairs)
	}
	return ns
}

// Binding builds the pods/binding of pod namespace/name to node.
func Binding(namespace, pod, node string) *corev1.Binding {
	return &corev1.Binding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Binding"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: pod},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
}

// In is a node selector requirement key In values.
func In(key string, values ...string) corev1.NodeSelectorRequirement {
	return Expr(key, corev1.NodeSelectorOpIn, values...)
}

// Expr is a node selector requirement.
func Expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

// Term is a node selector term of the given requirements (ANDed).
func Term(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: reqs}
}
