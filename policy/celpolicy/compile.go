// Package celpolicy compiles the pinned rules of PlacementPolicies into
// ValidatingAdmissionPolicies and MutatingAdmissionPolicies
// (admissionregistration.k8s.io/v1), so that the API server judges them
// in-process, in CEL, without a webhook round trip, and keeps judging them
// while no webhook replica answers.
//
// The compiled policies give the answers of the policy engine: the same
// matching (the object's labels or its pod template's, the
// namespaceSelector), the same pod-template paths per kind
// (policy.JudgedKinds), exactly one known datacenter by nodeSelector or by
// required node affinity in which every term pins the label to one value
// (policy.SelectedDatacenter), the same limits, datacenterFromLabel
// agreement and its injection (policy.Engine.Mutate), updates judged on
// what they change, and Deny, Warn and Audit as the bindings'
// validationActions. The known datacenters are written into the
// expressions: a policy's spec.datacenters, else the values of its label
// on the Nodes given to Compile, so the caller compiles again when they
// change.
//
// What CEL cannot judge stays with the webhook: spread rules (they need
// the cluster's members), the Node label guard, a pod created with
// spec.nodeName in another datacenter (it needs the Node), mirror pods
// (never denied, only warned about), the kinds policies declare in
// spec.workloadKinds, and the did-you-mean hint (the messages list the
// known datacenters instead).
package celpolicy

import (
	"fmt"
	"hash/fnv"
	"sort"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// LabelManagedBy marks the objects Compile makes, with ManagedBy as value,
// so that their owner can find and delete those no policy makes anymore.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "dc-webhook"
)

// Options are what Compile needs beyond the policies.
type Options struct {
	// Nodes give the known datacenters of a policy without
	// spec.datacenters: the values of its label on them.
	Nodes []*corev1.Node
	// ExcludedNamespaces are never judged (the webhook's own namespace,
	// kube-node-lease), as the webhook configurations exclude them.
	ExcludedNamespaces []string
	// OptOutLabel, when set, is the namespace label whose value "true"
	// opts a namespace out, as for the webhook configurations.
	OptOutLabel string
	// Enforcement is who enforces the pinned rules of a policy without
	// spec.pinnedEnforcement (dc-webhook's flag); "" compiles them.
	// Policies whose enforcement is webhook are not compiled.
	Enforcement v1alpha1.PinnedEnforcement
}

// Compiled reports whether Compile compiles the pinned rules of p under
// opts: its spec.pinnedEnforcement, else opts.Enforcement, is cel or both.
func (o *Options) Compiled(p *v1alpha1.PlacementPolicy) bool {
	def := o.Enforcement
	if def == "" {
		def = v1alpha1.PinnedEnforcementCEL
	}
	return p.Spec.EffectivePinnedEnforcement(def).Compiles()
}

// Set is the compiled form of the pinned rules of a set of policies.
type Set struct {
	Validating         []admissionregistrationv1.ValidatingAdmissionPolicy
	ValidatingBindings []admissionregistrationv1.ValidatingAdmissionPolicyBinding
	Mutating           []admissionregistrationv1.MutatingAdmissionPolicy
	MutatingBindings   []admissionregistrationv1.MutatingAdmissionPolicyBinding
}

// Compile compiles the pinned rules of policies (those opts.Compiled
// says are compiled): one
// ValidatingAdmissionPolicy per rule with two bindings (pods, and every
// other judged kind), and one
// MutatingAdmissionPolicy and binding per datacenter label that some
// rule's datacenterFromLabel injects. Names are stable across calls, so
// that the caller can update in place. The error says which policy is
// invalid, as policy.NewEngine does.
func Compile(policies []v1alpha1.PlacementPolicy, opts Options) (*Set, error) {
	engine, err := policy.NewEngine(policies)
	if err != nil {
		return nil, err
	}
	objs := make([]runtime.Object, len(opts.Nodes))
	for i, n := range opts.Nodes {
		objs[i] = n
	}
	state := policy.NewStaticState(objs...)
	kinds := policy.JudgedKinds()
	set := &Set{}
	// Injection is compiled per label, from every rule that injects on it,
	// in the engine's order: the first rule that applies wins, as in
	// Engine.Mutate, whatever order the API server runs policies in.
	injections := map[string][]injection{}
	var labels []string
	for _, p := range engine.Policies() {
		if !opts.Compiled(&p) {
			continue
		}
		one, err := policy.NewEngine([]v1alpha1.PlacementPolicy{p})
		if err != nil {
			return nil, err
		}
		known := one.Datacenters(state)
		label := p.Spec.Label()
		for i := range p.Spec.Pinned {
			r := &p.Spec.Pinned[i]
			c := ruleCompiler{policy: p.Name, rule: r, label: label, known: known, kinds: kinds, opts: &opts}
			vap, bindings, err := c.validating()
			if err != nil {
				return nil, err
			}
			set.Validating = append(set.Validating, *vap)
			set.ValidatingBindings = append(set.ValidatingBindings, bindings...)
			if r.DatacenterFromLabel != "" {
				if _, seen := injections[label]; !seen {
					labels = append(labels, label)
				}
				injections[label] = append(injections[label], injection{rule: r})
			}
		}
	}
	sort.Strings(labels)
	for _, label := range labels {
		m, b, err := mutating(label, injections[label], kinds, &opts)
		if err != nil {
			return nil, err
		}
		set.Mutating = append(set.Mutating, *m)
		set.MutatingBindings = append(set.MutatingBindings, *b)
	}
	return set, nil
}

// ValidatingName returns the name of the ValidatingAdmissionPolicy (and
// its binding) of the pinned rule ruleName of the policy named policyName.
// It follows the rule's name, never its place in the list, so that removing
// one rule renames no other: the rule's name itself when it is a DNS label,
// else a hash of it, and a hash of both names when the whole would be too
// long for an object name.
func ValidatingName(policyName, ruleName string) string {
	rule := ruleName
	if len(validation.IsDNS1123Label(rule)) > 0 {
		rule = "r" + hash32(ruleName)
	}
	name := "kubectl-dc.pinned." + policyName + "." + rule
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "kubectl-dc.pinned." + hash32(policyName+"/"+ruleName)
	}
	return name
}

// hash32 is s's FNV-1a hash in hexadecimal.
func hash32(s string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return fmt.Sprintf("%08x", h.Sum32())
}

// PodBindingName returns the name of the binding, for pods, of the
// ValidatingAdmissionPolicy named policyName; the other binding has the
// policy's name.
func PodBindingName(policyName string) string {
	name := policyName + ".pods"
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "kubectl-dc.pinned." + hash32(policyName) + ".pods"
	}
	return name
}

// MutatingName returns the name of the MutatingAdmissionPolicy (and its
// binding) that injects nodeSelector[label].
func MutatingName(label string) string {
	return "kubectl-dc.inject." + hash32(label)
}

func managedMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelManagedBy: ManagedBy}}
}

// namespaceSelector returns the selector of the namespaces a binding
// applies in: those of sel (nil: every one), less the excluded and the
// opted-out ones.
func (o *Options) namespaceSelector(sel *metav1.LabelSelector) *metav1.LabelSelector {
	out := &metav1.LabelSelector{}
	if sel != nil {
		sel.DeepCopyInto(out)
	}
	if len(o.ExcludedNamespaces) > 0 {
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: append([]string(nil), o.ExcludedNamespaces...)})
	}
	if o.OptOutLabel != "" {
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: o.OptOutLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"true"}})
	}
	return out
}
