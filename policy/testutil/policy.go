package testutil

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// PolicyBuilder builds a PlacementPolicy.
type PolicyBuilder struct{ p *v1alpha1.PlacementPolicy }

// Policy starts a policy with the default label and no rules.
func Policy(name string) *PolicyBuilder {
	return &PolicyBuilder{p: &v1alpha1.PlacementPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PlacementPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}}
}

// Label sets spec.datacenterLabel.
func (b *PolicyBuilder) Label(l string) *PolicyBuilder {
	b.p.Spec.DatacenterLabel = l
	return b
}

// Datacenters sets spec.datacenters.
func (b *PolicyBuilder) Datacenters(dcs ...string) *PolicyBuilder {
	b.p.Spec.Datacenters = dcs
	return b
}

// Pinned appends pinned rules.
func (b *PolicyBuilder) Pinned(rules ...*PinnedBuilder) *PolicyBuilder {
	for _, r := range rules {
		b.p.Spec.Pinned = append(b.p.Spec.Pinned, r.r)
	}
	return b
}

// Spread appends spread rules.
func (b *PolicyBuilder) Spread(rules ...*SpreadBuilder) *PolicyBuilder {
	for _, r := range rules {
		b.p.Spec.Spread = append(b.p.Spec.Spread, r.r)
	}
	return b
}

// Edit lets a test change the policy directly.
func (b *PolicyBuilder) Edit(f func(*v1alpha1.PlacementPolicy)) *PolicyBuilder {
	f(b.p)
	return b
}

// Obj returns the policy.
func (b *PolicyBuilder) Obj() *v1alpha1.PlacementPolicy { return b.p }

// Value returns a copy of the policy as a value, for NewEngine's slice.
func (b *PolicyBuilder) Value() v1alpha1.PlacementPolicy { return *b.p.DeepCopy() }

// PinnedBuilder builds a PinnedRule.
type PinnedBuilder struct{ r v1alpha1.PinnedRule }

// PinnedRule starts a pinned rule with an empty selector and no action
// (Deny).
func PinnedRule(name string) *PinnedBuilder {
	return &PinnedBuilder{r: v1alpha1.PinnedRule{Name: name}}
}

// MatchLabels adds matchLabels to the selector.
func (b *PinnedBuilder) MatchLabels(pairs ...string) *PinnedBuilder {
	merge(&b.r.Selector.MatchLabels, pairs)
	return b
}

// In adds a matchExpression key In values to the selector.
func (b *PinnedBuilder) In(key string, values ...string) *PinnedBuilder {
	b.r.Selector.MatchExpressions = append(b.r.Selector.MatchExpressions, metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpIn, Values: values})
	return b
}

// Selector replaces the selector.
func (b *PinnedBuilder) Selector(s metav1.LabelSelector) *PinnedBuilder {
	b.r.Selector = s
	return b
}

// NamespaceSelector sets a namespaceSelector of matchLabels.
func (b *PinnedBuilder) NamespaceSelector(pairs ...string) *PinnedBuilder {
	b.r.NamespaceSelector = &metav1.LabelSelector{MatchLabels: kv(pairs)}
	return b
}

// FromLabel sets datacenterFromLabel.
func (b *PinnedBuilder) FromLabel(l string) *PinnedBuilder {
	b.r.DatacenterFromLabel = l
	return b
}

// Action sets the action.
func (b *PinnedBuilder) Action(a v1alpha1.Action) *PinnedBuilder {
	b.r.Action = a
	return b
}

// Rule returns the rule.
func (b *PinnedBuilder) Rule() v1alpha1.PinnedRule { return b.r }

// SpreadBuilder builds a SpreadRule.
type SpreadBuilder struct{ r v1alpha1.SpreadRule }

// SpreadPods starts a spread rule whose members are the pods in namespaces
// (none: every namespace) matching the matchLabels pairs.
func SpreadPods(name string, namespaces []string, pairs ...string) *SpreadBuilder {
	return &SpreadBuilder{r: v1alpha1.SpreadRule{Name: name, Pods: &v1alpha1.PodMembers{
		Namespaces: namespaces, Selector: metav1.LabelSelector{MatchLabels: kv(pairs)},
	}}}
}

// SpreadNodes starts a spread rule whose members are the nodes matching the
// matchLabels pairs.
func SpreadNodes(name string, pairs ...string) *SpreadBuilder {
	return &SpreadBuilder{r: v1alpha1.SpreadRule{Name: name, Nodes: &v1alpha1.NodeMembers{
		Selector: metav1.LabelSelector{MatchLabels: kv(pairs)},
	}}}
}

// Etcd is the spread rule of kubeadm's stacked etcd pods: component=etcd in
// kube-system.
func Etcd() *SpreadBuilder {
	return SpreadPods("etcd", []string{"kube-system"}, "component", "etcd")
}

// MaxPerNode sets maxPerNode.
func (b *SpreadBuilder) MaxPerNode(n int32) *SpreadBuilder {
	b.r.MaxPerNode = n
	return b
}

// Expected sets expectedMembers.
func (b *SpreadBuilder) Expected(n int32) *SpreadBuilder {
	b.r.ExpectedMembers = n
	return b
}

// Survive sets surviveDatacenterLoss.
func (b *SpreadBuilder) Survive(v bool) *SpreadBuilder {
	b.r.SurviveDatacenterLoss = &v
	return b
}

// Action sets the action.
func (b *SpreadBuilder) Action(a v1alpha1.Action) *SpreadBuilder {
	b.r.Action = a
	return b
}

// Rule returns the rule.
func (b *SpreadBuilder) Rule() v1alpha1.SpreadRule { return b.r }
