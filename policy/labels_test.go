package policy_test

import (
	"reflect"
	"testing"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func TestResolveDatacenterLabel(t *testing.T) {
	const dc = "example.com/dc"
	macstadium := testutil.Policy("macstadium").Value()
	labelled := func(name, label string) v1alpha1.PlacementPolicy { return testutil.Policy(name).Label(label).Value() }
	for _, tc := range []struct {
		name     string
		flag     string
		flagSet  bool
		policies []v1alpha1.PlacementPolicy
		want     policy.LabelChoice
	}{
		{"nothing", zone, false, nil, policy.LabelChoice{Label: zone, Source: "default"}},
		{"flag alone", dc, true, nil, policy.LabelChoice{Label: dc, Source: "flag"}},
		{"unset flag keeps its default out", dc, false, nil, policy.LabelChoice{Label: zone, Source: "default"}},
		{"empty flag counts as unset", "", true, nil, policy.LabelChoice{Label: zone, Source: "default"}},
		{"policy with the default label", zone, false, []v1alpha1.PlacementPolicy{macstadium},
			policy.LabelChoice{Label: zone, Source: "PlacementPolicy/macstadium"}},
		{"policy label", "", false, []v1alpha1.PlacementPolicy{labelled("p", dc)},
			policy.LabelChoice{Label: dc, Source: "PlacementPolicy/p"}},
		{"flag overrides a policy", dc, true, []v1alpha1.PlacementPolicy{macstadium},
			policy.LabelChoice{Label: dc, Source: "flag", Warnings: []string{
				"--datacenter-label example.com/dc overrides PlacementPolicy/macstadium's topology.kubernetes.io/zone",
			}}},
		{"flag agreeing with a policy", dc, true, []v1alpha1.PlacementPolicy{labelled("p", dc)},
			policy.LabelChoice{Label: dc, Source: "flag"}},
		{"flag names only the policies that differ", dc, true,
			[]v1alpha1.PlacementPolicy{labelled("z", "other.example/dc"), labelled("p", dc), macstadium},
			policy.LabelChoice{Label: dc, Source: "flag", Warnings: []string{
				"--datacenter-label example.com/dc overrides PlacementPolicy/macstadium's topology.kubernetes.io/zone",
				"--datacenter-label example.com/dc overrides PlacementPolicy/z's other.example/dc",
			}}},
		{"policies agree", "", false, []v1alpha1.PlacementPolicy{labelled("b", dc), labelled("a", dc)},
			policy.LabelChoice{Label: dc, Source: "PlacementPolicy/a"}},
		{"policies disagree: first by name wins", "", false, []v1alpha1.PlacementPolicy{labelled("b", dc), macstadium},
			policy.LabelChoice{Label: dc, Source: "PlacementPolicy/b", Warnings: []string{
				"PlacementPolicies disagree on the datacenter label: PlacementPolicy/b uses example.com/dc, PlacementPolicy/macstadium uses topology.kubernetes.io/zone: using example.com/dc; pass --datacenter-label to choose",
			}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := policy.ResolveDatacenterLabel(tc.flag, tc.flagSet, tc.policies)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ResolveDatacenterLabel =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestResolveDatacenterLabelLeavesItsInputAlone(t *testing.T) {
	ps := []v1alpha1.PlacementPolicy{testutil.Policy("b").Value(), testutil.Policy("a").Value()}
	policy.ResolveDatacenterLabel("", false, ps)
	if ps[0].Name != "b" || ps[1].Name != "a" {
		t.Errorf("the policies were reordered: %s, %s", ps[0].Name, ps[1].Name)
	}
}

func TestKubeletMaySetLabel(t *testing.T) {
	for _, tc := range []struct {
		label string
		want  bool
	}{
		// The kubelet's well-known labels.
		{"kubernetes.io/hostname", true},
		{"kubernetes.io/os", true},
		{"kubernetes.io/arch", true},
		{"beta.kubernetes.io/os", true},
		{"beta.kubernetes.io/arch", true},
		{"beta.kubernetes.io/instance-type", true},
		{"node.kubernetes.io/instance-type", true},
		{"topology.kubernetes.io/zone", true},
		{"topology.kubernetes.io/region", true},
		{"failure-domain.beta.kubernetes.io/zone", true},
		{"failure-domain.beta.kubernetes.io/region", true},
		// The kubelet's namespaces, and their subdomains.
		{"kubelet.kubernetes.io/x", true},
		{"sub.kubelet.kubernetes.io/x", true},
		{"node.kubernetes.io/x", true},
		{"sub.node.kubernetes.io/x", true},
		// Other kubernetes.io and k8s.io labels.
		{"node-role.kubernetes.io/x", false},
		{"node-role.kubernetes.io/control-plane", false},
		{"kubernetes.io/dc", false},
		{"topology.kubernetes.io/dc", false},
		{"k8s.io/dc", false},
		{"example.k8s.io/dc", false},
		{"xkubelet.kubernetes.io/x", false},
		// The node-restriction namespace, and its subdomains.
		{"node-restriction.kubernetes.io/dc", false},
		{"x.node-restriction.kubernetes.io/dc", false},
		// Everything else.
		{"example.com/dc", true},
		{"examplekubernetes.io/dc", true},
		{"node-restriction.example.com/dc", true},
		{"dc", true},
	} {
		if got := policy.KubeletMaySetLabel(tc.label); got != tc.want {
			t.Errorf("KubeletMaySetLabel(%q) = %v, want %v", tc.label, got, tc.want)
		}
	}
}

// TestAdviceOnKubeletLabels checks that Advice warns about node members on a
// datacenter label exactly when a kubelet may set it.
func TestAdviceOnKubeletLabels(t *testing.T) {
	for _, tc := range []struct {
		label  string
		advice bool
	}{
		{"", true},
		{"example.com/dc", true},
		{"node.kubernetes.io/dc", true},
		{"node-restriction.kubernetes.io/dc", false},
		{"x.node-restriction.kubernetes.io/dc", false},
		{"example.k8s.io/dc", false},
	} {
		p := testutil.Policy("p").Label(tc.label).Spread(testutil.SpreadNodes("cp", "node-role.kubernetes.io/control-plane", "")).Obj()
		if got := len(policy.Advice(p)) > 0; got != tc.advice {
			t.Errorf("label %q: advice %q, want advice: %v", tc.label, policy.Advice(p), tc.advice)
		}
	}
}
