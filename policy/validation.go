package policy

import (
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

var knownActions = []string{string(v1alpha1.ActionDeny), string(v1alpha1.ActionWarn), string(v1alpha1.ActionAudit)}

// ValidatePolicy checks a policy beyond what the CRD schema can: labels and
// datacenter names are valid, rule names are unique across pinned and
// spread (they name rules in messages and metrics), selectors parse, actions
// are known, exactly one of pods and nodes is set, counts are not negative.
// An empty pinned selector is refused unless a namespaceSelector narrows it
// (it would pin every workload of the cluster, kube-system included); an
// empty member selector is always refused (every pod or node would be a
// member).
func ValidatePolicy(p *v1alpha1.PlacementPolicy) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if l := p.Spec.DatacenterLabel; l != "" {
		for _, msg := range validation.IsQualifiedName(l) {
			errs = append(errs, field.Invalid(spec.Child("datacenterLabel"), l, msg))
		}
	}
	seenDC := map[string]bool{}
	for i, dc := range p.Spec.Datacenters {
		path := spec.Child("datacenters").Index(i)
		switch {
		case dc == "":
			errs = append(errs, field.Required(path, "a datacenter name must not be empty"))
		case seenDC[dc]:
			errs = append(errs, field.Duplicate(path, dc))
		default:
			for _, msg := range validation.IsValidLabelValue(dc) {
				errs = append(errs, field.Invalid(path, dc, msg+" (datacenter names are values of the node label "+p.Spec.Label()+")"))
			}
		}
		seenDC[dc] = true
	}
	names := map[string]bool{}
	checkName := func(path *field.Path, name string) {
		switch {
		case name == "":
			errs = append(errs, field.Required(path, "every rule needs a name; it names the rule in messages and metrics"))
		case names[name]:
			errs = append(errs, field.Duplicate(path, name))
		case strings.Contains(name, "/"):
			errs = append(errs, field.Invalid(path, name, "must not contain '/'"))
		}
		names[name] = true
	}
	for i := range p.Spec.Pinned {
		r := &p.Spec.Pinned[i]
		path := spec.Child("pinned").Index(i)
		checkName(path.Child("name"), r.Name)
		errs = append(errs, validateSelector(&r.Selector, path.Child("selector"))...)
		if r.NamespaceSelector != nil {
			errs = append(errs, validateSelector(r.NamespaceSelector, path.Child("namespaceSelector"))...)
		}
		if isEmptySelector(&r.Selector) && isEmptySelector(r.NamespaceSelector) {
			errs = append(errs, field.Required(path.Child("selector"), "an empty selector with no namespaceSelector pins every workload of the cluster, kube-system included: select the workloads by label, or narrow the namespaces with namespaceSelector"))
		}
		if l := r.DatacenterFromLabel; l != "" {
			for _, msg := range validation.IsQualifiedName(l) {
				errs = append(errs, field.Invalid(path.Child("datacenterFromLabel"), l, msg))
			}
		}
		errs = append(errs, validateAction(r.Action, path.Child("action"))...)
	}
	for i := range p.Spec.Spread {
		r := &p.Spec.Spread[i]
		path := spec.Child("spread").Index(i)
		checkName(path.Child("name"), r.Name)
		switch {
		case r.Pods == nil && r.Nodes == nil:
			errs = append(errs, field.Required(path.Child("pods"), "set exactly one of pods (members are pods) and nodes (members are nodes, as for a stacked control plane)"))
		case r.Pods != nil && r.Nodes != nil:
			errs = append(errs, field.Forbidden(path.Child("nodes"), "set exactly one of pods and nodes, not both"))
		}
		if r.Pods != nil {
			pp := path.Child("pods")
			for j, ns := range r.Pods.Namespaces {
				for _, msg := range validation.IsDNS1123Label(ns) {
					errs = append(errs, field.Invalid(pp.Child("namespaces").Index(j), ns, msg))
				}
			}
			errs = append(errs, validateMemberSelector(&r.Pods.Selector, pp.Child("selector"), "pod")...)
		}
		if r.Nodes != nil {
			errs = append(errs, validateMemberSelector(&r.Nodes.Selector, path.Child("nodes", "selector"), "node")...)
		}
		if r.MaxPerNode < 0 {
			errs = append(errs, field.Invalid(path.Child("maxPerNode"), r.MaxPerNode, "must be at least 1 (0 or unset means 1)"))
		}
		if r.ExpectedMembers < 0 {
			errs = append(errs, field.Invalid(path.Child("expectedMembers"), r.ExpectedMembers, "must be at least 1; leave it unset to use the owning StatefulSet's replicas, else the current members plus one"))
		}
		errs = append(errs, validateAction(r.Action, path.Child("action"))...)
	}
	errs = append(errs, validateWorkloadKinds(p)...)
	return errs
}

func validateSelector(s *metav1.LabelSelector, path *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabelSelector(s, metav1validation.LabelSelectorValidationOptions{}, path)
	if len(errs) == 0 {
		if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
			errs = append(errs, field.Invalid(path, s.String(), err.Error()))
		}
	}
	return errs
}

func validateMemberSelector(s *metav1.LabelSelector, path *field.Path, what string) field.ErrorList {
	if isEmptySelector(s) {
		return field.ErrorList{field.Required(path, "an empty selector would make every "+what+" a member: select the members by label (for etcd, matchLabels {component: etcd})")}
	}
	return validateSelector(s, path)
}

func validateAction(a v1alpha1.Action, path *field.Path) field.ErrorList {
	if a == "" || contains(knownActions, string(a)) {
		return nil
	}
	return field.ErrorList{field.NotSupported(path, a, knownActions)}
}

// Advice returns advice on a valid policy that will not do what its
// author likely wants, one line each, prefixed with the field path:
// surviving a datacenter loss with fewer than three datacenters listed, an
// even or too small expectedMembers, and a datacenter label that kubelets
// may set on their own Node while node members depend on it.
func Advice(p *v1alpha1.PlacementPolicy) []string {
	var out []string
	spec := field.NewPath("spec")
	label := p.Spec.Label()
	for i := range p.Spec.Spread {
		r := &p.Spec.Spread[i]
		path := spec.Child("spread").Index(i)
		survive := r.SurvivesDatacenterLoss()
		if survive && len(p.Spec.Datacenters) > 0 && len(p.Spec.Datacenters) < 3 {
			out = append(out, path.Child("surviveDatacenterLoss").String()+": two datacenters can never survive the loss of either (3 members split 2+1, 5 split 3+2, 4 split 2+2 all fail), so every placement beyond one member per datacenter will be refused: add a third (witness) datacenter to spec.datacenters, or set surviveDatacenterLoss: false")
		}
		if n := int(r.ExpectedMembers); n > 0 {
			switch {
			case survive && n < 3:
				out = append(out, path.Child("expectedMembers").String()+": "+itoa(n)+" voting member(s) can never survive the loss of a datacenter: use at least 3")
			case n%2 == 0:
				out = append(out, path.Child("expectedMembers").String()+": an even size adds no fault tolerance ("+itoa(n)+" tolerates "+itoa(FaultTolerance(n))+" failure(s), like "+itoa(n-1)+"): use "+itoa(n-1)+" or "+itoa(n+1))
			}
		}
		if r.Nodes != nil && KubeletMaySetLabel(label) {
			out = append(out, path.Child("nodes").String()+": kubelets may set "+label+" on their own Node, so a compromised node can move itself between datacenters: use a label under node-restriction.kubernetes.io/ as spec.datacenterLabel, or guard changes to "+label)
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
