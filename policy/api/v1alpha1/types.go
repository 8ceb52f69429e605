package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of PlacementPolicy.
var GroupVersion = schema.GroupVersion{Group: "placement.kubectl-dc.io", Version: "v1alpha1"}

// Resource is the plural resource name of PlacementPolicy.
const Resource = "placementpolicies"

// DefaultDatacenterLabel is the node label that names a node's datacenter
// when a policy does not say otherwise.
const DefaultDatacenterLabel = "topology.kubernetes.io/zone"

// DefaultMaxPerNode is how many members of one spread rule a node may hold
// when the rule does not say.
const DefaultMaxPerNode = 1

// Action says what happens to an object that breaks a rule.
// +kubebuilder:validation:Enum=Deny;Warn;Audit
type Action string

const (
	// ActionDeny rejects the request.
	ActionDeny Action = "Deny"
	// ActionWarn admits the request with an admission warning.
	ActionWarn Action = "Warn"
	// ActionAudit admits the request silently; the violation is only reported
	// by `kubectl dc check` and the webhook's metrics.
	ActionAudit Action = "Audit"
)

// PinnedEnforcement says who enforces a policy's pinned rules.
// +kubebuilder:validation:Enum=webhook;cel;both
type PinnedEnforcement string

const (
	// PinnedEnforcementWebhook means dc-webhook judges the pinned rules and
	// injects datacenterFromLabel.
	PinnedEnforcementWebhook PinnedEnforcement = "webhook"
	// PinnedEnforcementCEL means the pinned rules are compiled into
	// ValidatingAdmissionPolicies and MutatingAdmissionPolicies that the
	// API server runs in-process, also with every webhook replica down;
	// the webhook is no longer sent what they cover.
	PinnedEnforcementCEL PinnedEnforcement = "cel"
	// PinnedEnforcementBoth means the compiled admission policies enforce and
	// inject; dc-webhook judges the same requests with the policy engine
	// without refusing them for what the compiled policies cover, and
	// counts every verdict that differs from theirs.
	PinnedEnforcementBoth PinnedEnforcement = "both"
)

// PinnedEnforcements are the valid values, in the order messages list them.
var PinnedEnforcements = []PinnedEnforcement{PinnedEnforcementWebhook, PinnedEnforcementCEL, PinnedEnforcementBoth}

// Compiles reports whether the pinned rules are compiled into admission
// policies (cel and both).
func (e PinnedEnforcement) Compiles() bool {
	return e == PinnedEnforcementCEL || e == PinnedEnforcementBoth
}

// PlacementPolicy binds workloads to datacenters and keeps quorum members
// spread across them. Several policies may exist; all of them apply.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=pp
// +kubebuilder:printcolumn:name="Label",type=string,JSONPath=`.spec.datacenterLabel`
// +kubebuilder:printcolumn:name="Datacenters",type=string,JSONPath=`.spec.datacenters`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PlacementPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PlacementPolicySpec `json:"spec"`
}

// PlacementPolicySpec is the desired placement.
type PlacementPolicySpec struct {
	// DatacenterLabel is the node label whose value names a node's
	// datacenter. Empty means topology.kubernetes.io/zone.
	// +optional
	// +kubebuilder:validation:MaxLength=317
	DatacenterLabel string `json:"datacenterLabel,omitempty"`

	// Datacenters lists the datacenters that exist. Empty means the values of
	// DatacenterLabel found on Nodes.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	Datacenters []string `json:"datacenters,omitempty"`

	// Pinned rules bind workloads to exactly one datacenter.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Pinned []PinnedRule `json:"pinned,omitempty"`

	// Spread rules keep quorum members apart so that losing one datacenter
	// never loses quorum.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Spread []SpreadRule `json:"spread,omitempty"`

	// WorkloadKinds declares workload kinds beyond the built-in ones (Pod,
	// Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
	// ReplicationController, PodTemplate) whose objects carry a pod
	// template: an operator's custom resource, an Argo Rollout, an
	// OpenKruise CloneSet. The pinned and spread rules judge the template
	// at TemplatePath as they judge a Deployment's spec.template.
	// +optional
	// +listType=map
	// +listMapKey=group
	// +listMapKey=kind
	// +kubebuilder:validation:MaxItems=64
	WorkloadKinds []WorkloadKind `json:"workloadKinds,omitempty"`

	// PinnedEnforcement says who enforces this policy's pinned rules:
	// webhook (dc-webhook judges and injects), cel (admission policies
	// compiled from them, run by the API server in-process) or both (the
	// compiled policies enforce, dc-webhook audits them and counts the
	// differences). Empty means dc-webhook's --pinned-enforcement. Spread
	// rules, the Node label guard and a pod's spec.nodeName stay with
	// dc-webhook whatever it says; kubectl dc check judges every rule the
	// same way whatever it says.
	// +optional
	PinnedEnforcement PinnedEnforcement `json:"pinnedEnforcement,omitempty"`

	// EtcdMembers places etcd members that run on no Node (external etcd,
	// etcd on hosts of their own): a member name, client or peer URL,
	// host:port or host, to its datacenter. kubectl dc status counts them
	// there; its --etcd-datacenters flag overrides an entry.
	// +optional
	// +kubebuilder:validation:MaxProperties=256
	EtcdMembers map[string]string `json:"etcdMembers,omitempty"`
}

// EffectivePinnedEnforcement is who enforces the pinned rules: the spec's
// PinnedEnforcement when set, else def (dc-webhook's flag).
func (s *PlacementPolicySpec) EffectivePinnedEnforcement(def PinnedEnforcement) PinnedEnforcement {
	if s.PinnedEnforcement != "" {
		return s.PinnedEnforcement
	}
	return def
}

// WorkloadKind is a kind of object with a pod template, in any version of
// its group.
type WorkloadKind struct {
	// Group is the API group of the kind, as kubectl api-resources shows
	// it, for example argoproj.io. The built-in groups ("" for core, apps,
	// batch) hold no declarable kind: a built-in workload kind declared
	// again is ignored, any other kind of theirs is refused.
	// +optional
	// +kubebuilder:default=""
	// +kubebuilder:validation:MaxLength=253
	Group string `json:"group,omitempty"`

	// Kind is the kind, as in the objects' kind field, for example Rollout.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Z][A-Za-z0-9]*$`
	Kind string `json:"kind"`

	// TemplatePath is the dotted path of the pod template (a
	// PodTemplateSpec: metadata and spec) in the object, for example
	// spec.template, or spec.jobTemplate.spec.template.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`
	TemplatePath string `json:"templatePath"`
}

// PinnedRule says that every pod template of the objects it selects must
// select exactly one known datacenter.
// +kubebuilder:validation:XValidation:rule="(has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0) || (has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0) || (has(self.namespaceSelector) && ((has(self.namespaceSelector.matchLabels) && size(self.namespaceSelector.matchLabels) > 0) || (has(self.namespaceSelector.matchExpressions) && size(self.namespaceSelector.matchExpressions) > 0)))",message="an empty selector with no namespaceSelector pins every workload of the cluster: select the workloads by label or narrow the namespaces"
type PinnedRule struct {
	// Name identifies the rule in messages and metrics.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[^/]+$`
	Name string `json:"name"`

	// NamespaceSelector selects the namespaces the rule applies in. Nil or
	// empty means every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Selector selects the workloads the rule applies to: an object matches
	// when the selector matches its own labels or the labels of any of its
	// pod templates (the labels its pods will carry). A Pod matches by its
	// labels. It is required: an empty selector matches every workload.
	Selector metav1.LabelSelector `json:"selector"`

	// DatacenterFromLabel names a label on the object whose value is the
	// datacenter it must select. When it is set and the object carries the
	// label, the mutating webhook injects the matching nodeSelector when it is
	// missing, and a different selection is a violation.
	// +optional
	DatacenterFromLabel string `json:"datacenterFromLabel,omitempty"`

	// Action is what happens on a violation. Empty means Deny.
	// +optional
	Action Action `json:"action,omitempty"`
}

// SpreadRule keeps the members of a quorum (etcd, say) spread over nodes and
// datacenters. Exactly one of Pods and Nodes is set.
// +kubebuilder:validation:XValidation:rule="has(self.pods) != has(self.nodes)",message="exactly one of pods and nodes must be set"
type SpreadRule struct {
	// Name identifies the rule in messages and metrics.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[^/]+$`
	Name string `json:"name"`

	// Pods selects members that are pods.
	// +optional
	Pods *PodMembers `json:"pods,omitempty"`

	// Nodes selects members that are nodes, as for a stacked control plane
	// whose etcd runs as static pods: the Node objects are the control point.
	// +optional
	Nodes *NodeMembers `json:"nodes,omitempty"`

	// MaxPerNode is how many members one node may hold. 0 means 1.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxPerNode int32 `json:"maxPerNode,omitempty"`

	// SurviveDatacenterLoss requires that no datacenter holds more than
	// floor((N-1)/2) members, so that losing any one datacenter keeps a
	// quorum. Nil means true.
	// +optional
	SurviveDatacenterLoss *bool `json:"surviveDatacenterLoss,omitempty"`

	// ExpectedMembers is N, the number of voting members. 0 means the
	// replicas of the owning StatefulSet, else the current members plus one.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ExpectedMembers int32 `json:"expectedMembers,omitempty"`

	// Action is what happens on a violation. Empty means Deny.
	// +optional
	Action Action `json:"action,omitempty"`
}

// PodMembers selects member pods.
// +kubebuilder:validation:XValidation:rule="(has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0) || (has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0)",message="selector must not be empty: it would make every pod a member"
type PodMembers struct {
	// Namespaces the members live in. Empty means every namespace.
	// +optional
	// +listType=set
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:items:MaxLength=63
	Namespaces []string `json:"namespaces,omitempty"`

	// Selector selects the member pods by label. It is required: an empty
	// selector would make every pod a member.
	Selector metav1.LabelSelector `json:"selector"`
}

// NodeMembers selects member nodes.
// +kubebuilder:validation:XValidation:rule="(has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0) || (has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0)",message="selector must not be empty: it would make every node a member"
type NodeMembers struct {
	// Selector selects the member nodes by label, for example
	// node-role.kubernetes.io/control-plane.
	Selector metav1.LabelSelector `json:"selector"`
}

// PlacementPolicyList is a list of PlacementPolicy.
//
// +kubebuilder:object:root=true
type PlacementPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []PlacementPolicy `json:"items"`
}

// AddToScheme registers PlacementPolicy and PlacementPolicyList.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &PlacementPolicy{}, &PlacementPolicyList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Label returns the datacenter label, defaulted.
func (s *PlacementPolicySpec) Label() string {
	if s.DatacenterLabel == "" {
		return DefaultDatacenterLabel
	}
	return s.DatacenterLabel
}

// EffectiveAction returns the action, defaulted to Deny.
func (r *PinnedRule) EffectiveAction() Action { return defaultAction(r.Action) }

// EffectiveAction returns the action, defaulted to Deny.
func (r *SpreadRule) EffectiveAction() Action { return defaultAction(r.Action) }

// EffectiveMaxPerNode returns MaxPerNode, defaulted.
func (r *SpreadRule) EffectiveMaxPerNode() int {
	if r.MaxPerNode <= 0 {
		return DefaultMaxPerNode
	}
	return int(r.MaxPerNode)
}

// SurvivesDatacenterLoss returns SurviveDatacenterLoss, defaulted to true.
func (r *SpreadRule) SurvivesDatacenterLoss() bool {
	return r.SurviveDatacenterLoss == nil || *r.SurviveDatacenterLoss
}

func defaultAction(a Action) Action {
	if a == "" {
		return ActionDeny
	}
	return a
}
