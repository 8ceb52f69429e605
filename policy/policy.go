// Package policy is the pure library shared by `kubectl dc` and dc-webhook:
// the topology model, quorum arithmetic and the PlacementPolicy rule engine.
// It takes plain objects and returns decisions; it never prints, serves HTTP
// or calls the API server, so "would this be admitted?" has one answer
// offline and at admission.
//
// # Using it
//
// Build an Engine from the policies with NewEngine (it validates them with
// ValidatePolicy and parses every selector once), then call Evaluate (or
// EvaluateContext, which gives up with no results when its context ends)
// for each object with a State (informer caches in the webhook, LIST
// results or NewStaticState in the plugin). Kinds a policy declares in
// spec.workloadKinds go through EvaluateDeclared and MutateDeclared.
// Results are ordered by field path, rule, then message; Results.Denied
// gives the field.ErrorList for apierrors.NewInvalid, Results.Warnings the
// admission warnings, and Audit results are only returned. Mutate injects
// the nodeSelector of datacenterFromLabel into pod templates that select
// no datacenter; it is idempotent and never touches mirror pods.
//
// ObjectSelectors and NodeLabelKeys say which objects and which Node label
// changes some rule could judge, so that the webhook configurations can be
// scoped to them. MemberPlacements names the member placements a request
// makes, and WithPods counts placements decided moments ago that the caches
// do not show yet: the webhook serialises those across its replicas.
//
// # Pinned rules
//
// A rule's selector matches an object by its own labels or by the labels
// of any of its pod templates (the pods carry the template's labels). Its
// namespaceSelector is evaluated against State.NamespaceLabels; a namespace
// the state does not know yet cannot be evaluated, so the rule is applied,
// never skipped, and the message says so.
//
// Every pod template of a matched Pod, Deployment, ReplicaSet, StatefulSet,
// DaemonSet, Job, CronJob, ReplicationController, PodTemplate or declared
// kind must select exactly one datacenter (see SelectedDatacenter):
// nodeSelector[label], or required node affinity in which every ORed term
// pins the label to the same single value. A permissive term is reported
// at its own path (...nodeSelectorTerms[i]). The value must be known
// (spec.datacenters, else a value of the label on some Node); an unknown
// one gets a "did you mean" hint by edit distance and the known list. The
// object's datacenterFromLabel label, when present, must equal the
// selection, and a Pod created with spec.nodeName must name a node of its
// datacenter.
//
// # Spread rules
//
// Members are pods (namespaces and selector) or nodes (selector). A member
// placed on node x in datacenter d is allowed iff:
//
//   - x holds fewer than maxPerNode members (pods only);
//   - after placement the member counts over datacenters that have a Ready
//     schedulable node differ by at most one, or d was a least-loaded
//     datacenter before placement (placements that repair an unbalanced set
//     are allowed, or a degraded cluster could never heal);
//   - with surviveDatacenterLoss, d holds at most floor((N-1)/2) members.
//     N is expectedMembers; else, for a member pod, the replicas of its
//     controlling StatefulSet, trusted only when verified (group apps, the
//     UID the pod names, a selector that selects the pod), since anyone may
//     name a decoy as controller; else max(current members + 1, 3), so that
//     members can be added one at a time up to one per datacenter, the
//     message asking for expectedMembers once every datacenter holds its
//     share. With fewer than three datacenters the message says that two
//     datacenters can never survive the loss of either and that a third
//     (witness) site is needed.
//
// Placements are: a pods/binding of a member, a member Pod created with
// spec.nodeName, a pod relabelled into the members, a learner promoted to
// voter, a member Node created or relabelled into d, and a relabel of a
// Node that holds member pods into another datacenter (judged as placing
// each of them there).
//
// Member workload templates must be kept apart by the scheduler itself: a
// topology spread constraint with maxSkew 1, DoNotSchedule, the datacenter
// label as key and a labelSelector that selects the members, with no
// matchLabelKeys that split them; or a required pod anti-affinity term on
// the datacenter label over the members' own namespace. Either is void when
// the template's nodeSelector or required node affinity confines its pods
// to fewer datacenters than there are, and a DaemonSet is never a valid
// member template. The replica count (or expectedMembers) must fit the
// datacenters: 4 over 3 cannot survive the loss of one, use 5.
//
// Counting members, pods that are unscheduled, Succeeded or Failed hold no
// place; a member being deleted still runs and votes, so it counts until
// it is gone. Learners never count, and only a mirror pod may be one (a
// member pod annotated placement.kubectl-dc.io/learner=true,
// AnnotationLearner): any other member annotated so counts as a voter, since
// a pod's creator could otherwise place it next to a voter unjudged.
//
// # Updates
//
// An UPDATE is judged on what it changes, as a create of that, so that no
// rule can freeze a controller admitted before the rule applied. An update
// that brings the object into no new rule, keeps its datacenterFromLabel
// value, leaves the placement of every pod template as it was (labels, the
// learner annotation, nodeSelector, affinity, topology spread constraints,
// nodeName) and does not grow the member count yields no result:
// scale-downs, status, image-only changes. A Pod's placement is immutable,
// so an update of a Pod is judged only when it is relabelled into a rule or
// into a spread rule's members, given another datacenterFromLabel value, or
// promoted from learner to voter. Without an OldObject of the same kind
// everything counts as changed.
//
// # Limits
//
// Evaluation is linear in the size of the object. A pod template may carry
// at most MaxNodeSelectorTerms required node affinity terms, and one term
// at most MaxDatacenterValues values on the datacenter label; beyond that
// the rule reports the template (a Deny rule denies it) with a message
// that names the limit, instead of evaluating it.
//
// # Exceptions
//
// Objects being deleted are not judged. Mirror pods (static pods such as
// kubeadm's etcd) are never denied: their Deny results become Warn with a
// note, since rejecting a mirror pod does not stop the static pod, it only
// hides it; and Mutate never touches them.
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
	// when the namespace is unknown (not yet in the caches), and a rule
	// whose namespaceSelector would need it is then applied, never
	// skipped.
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
	// OldObject is the object before an UPDATE, else nil. An UPDATE is
	// judged on what it changes from OldObject; without it everything
	// counts as changed.
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
