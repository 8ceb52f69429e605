// Package policy is the pure library shared by `kubectl dc` and dc-webhook:
// the topology model, quorum arithmetic and the PlacementPolicy rule engine.
// It takes plain objects and returns decisions; it never prints, serves HTTP
// or calls the API server, so "would this be admitted?" has one answer
// offline and at admission.
package policy

import (
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// State is the cluster as the rules see it. The webhook backs it with
// informer caches, the plugin with the results of LIST calls, tests with
// fixtures (NewStaticState). Implementations must not call the API server:
// the engine calls these methods on the admission path.
type State interface {
	// Nodes returns every node. Callers must not modify them.
	Nodes() []*corev1.Node
	// Node returns the named node, or nil when it is unknown.
	Node(name string) *corev1.Node
	// Pod returns the named pod, or nil when it is unknown.
	Pod(namespace, name string) *corev1.Pod
	// Pods returns the pods in namespace ("" for all) that match selector.
	Pods(namespace string, selector labels.Selector) []*corev1.Pod
	// StatefulSet returns the named StatefulSet, or nil when it is unknown.
	StatefulSet(namespace, name string) *appsv1.StatefulSet
	// NamespaceLabels returns the labels of the named namespace; ok is false
	// when the namespace is unknown.
	NamespaceLabels(name string) (set labels.Set, ok bool)
}

// Operation is what is being done to the object.
type Operation string

const (
	// OperationCreate is an admission CREATE.
	OperationCreate Operation = "CREATE"
	// OperationUpdate is an admission UPDATE.
	OperationUpdate Operation = "UPDATE"
	// OperationCheck is an offline or live check of an existing object
	// (`kubectl dc check`): rules judge the object as if it were created.
	OperationCheck Operation = "CHECK"
)

// Request is one object to judge.
type Request struct {
	Operation Operation
	// Object is the typed object: *corev1.Pod, *appsv1.Deployment,
	// *appsv1.ReplicaSet, *appsv1.StatefulSet, *appsv1.DaemonSet,
	// *batchv1.Job, *batchv1.CronJob, *corev1.ReplicationController,
	// *corev1.PodTemplate, *corev1.Node or *corev1.Binding (pods/binding, with
	// the bound pod looked up in State). Other kinds yield no results.
	Object runtime.Object
	// OldObject is the object before an UPDATE, else nil.
	OldObject runtime.Object
	// Namespace of the object; for a Binding, the pod's namespace.
	Namespace string
	// UserInfo is who asks; empty offline.
	UserInfo authenticationv1.UserInfo
}

// ObjectRef names an object in results.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Result is one rule's verdict on one field of one object.
type Result struct {
	Object ObjectRef
	// Policy is the name of the PlacementPolicy the rule belongs to.
	Policy string
	// Rule is "<policy>/<rule name>", the name used in messages and metrics.
	Rule   string
	Action v1alpha1.Action
	// Error carries the field path, the offending value and a message that
	// says how to fix it.
	Error *field.Error
}

// Results are the verdicts of a request in a deterministic order (by field
// path, then rule, then message).
type Results []Result
