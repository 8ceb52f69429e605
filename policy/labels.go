package policy

import (
	"sort"
	"strings"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// Label sources of a LabelChoice other than "PlacementPolicy/<name>".
const (
	// LabelSourceFlag says the label is the one --datacenter-label set.
	LabelSourceFlag = "flag"
	// LabelSourceDefault says no flag and no policy chose a label, so it is
	// v1alpha1.DefaultDatacenterLabel.
	LabelSourceDefault = "default"
)

// LabelChoice is the datacenter label a command uses, where it came from,
// and what the user should hear about the choice.
type LabelChoice struct {
	// Label is the node label whose value names a node's datacenter.
	Label string
	// Source is LabelSourceFlag, "PlacementPolicy/<name>" or
	// LabelSourceDefault.
	Source string
	// Warnings say which policies disagree with the choice, one line each;
	// nil when none does.
	Warnings []string
}

// ResolveDatacenterLabel picks the datacenter label with the one precedence
// every verb uses: an explicitly set --datacenter-label (flagSet, and not
// empty) wins, with a warning for each policy whose label differs; else the
// label of the policies, taken in name order, the first winning with a
// warning for each policy that disagrees; else the default label. A policy
// without spec.datacenterLabel uses the default label, so it disagrees with
// one that sets another.
func ResolveDatacenterLabel(flag string, flagSet bool, policies []v1alpha1.PlacementPolicy) LabelChoice {
	sorted := make([]*v1alpha1.PlacementPolicy, len(policies))
	for i := range policies {
		sorted[i] = &policies[i]
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	if flagSet && flag != "" {
		c := LabelChoice{Label: flag, Source: LabelSourceFlag}
		for _, p := range sorted {
			if l := p.Spec.Label(); l != flag {
				c.Warnings = append(c.Warnings, "--datacenter-label "+flag+" overrides PlacementPolicy/"+p.Name+"'s "+l)
			}
		}
		return c
	}
	if len(sorted) == 0 {
		return LabelChoice{Label: v1alpha1.DefaultDatacenterLabel, Source: LabelSourceDefault}
	}
	first := sorted[0]
	c := LabelChoice{Label: first.Spec.Label(), Source: "PlacementPolicy/" + first.Name}
	for _, p := range sorted[1:] {
		if l := p.Spec.Label(); l != c.Label {
			c.Warnings = append(c.Warnings, "PlacementPolicies disagree on the datacenter label: PlacementPolicy/"+first.Name+" uses "+c.Label+
				", PlacementPolicy/"+p.Name+" uses "+l+": using "+c.Label+"; pass --datacenter-label to choose")
		}
	}
	return c
}

// kubeletLabels are the labels under kubernetes.io and k8s.io that a kubelet
// may set on its own Node (k8s.io/kubelet's list of kubelet labels).
var kubeletLabels = map[string]bool{
	"kubernetes.io/hostname":                   true,
	"kubernetes.io/os":                         true,
	"kubernetes.io/arch":                       true,
	"beta.kubernetes.io/os":                    true,
	"beta.kubernetes.io/arch":                  true,
	"beta.kubernetes.io/instance-type":         true,
	"node.kubernetes.io/instance-type":         true,
	"failure-domain.beta.kubernetes.io/region": true,
	"failure-domain.beta.kubernetes.io/zone":   true,
	"topology.kubernetes.io/region":            true,
	"topology.kubernetes.io/zone":              true,
}

// KubeletMaySetLabel reports whether the NodeRestriction admission plugin
// lets a kubelet set label on its own Node (at registration or later). It
// refuses labels whose prefix is node-restriction.kubernetes.io or ends in
// .node-restriction.kubernetes.io, and labels under kubernetes.io or k8s.io
// (the domains or any subdomain) other than the kubelet's well-known ones
// and those under [*.]kubelet.kubernetes.io and [*.]node.kubernetes.io.
// Every other label, one without a prefix included, a kubelet may set: a
// datacenter label operators must trust belongs under
// node-restriction.kubernetes.io/.
func KubeletMaySetLabel(label string) bool {
	prefix, _, found := strings.Cut(label, "/")
	if !found {
		return true
	}
	if inDomain(prefix, "node-restriction.kubernetes.io") {
		return false
	}
	if !inDomain(prefix, "kubernetes.io") && !inDomain(prefix, "k8s.io") {
		return true
	}
	return kubeletLabels[label] || inDomain(prefix, "kubelet.kubernetes.io") || inDomain(prefix, "node.kubernetes.io")
}

// inDomain reports whether prefix is domain or one of its subdomains.
func inDomain(prefix, domain string) bool {
	return prefix == domain || strings.HasSuffix(prefix, "."+domain)
}
