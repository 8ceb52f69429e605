package celpolicy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy/celtest"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// TestCompiledVerdicts: single cases whose answer and message are known.
func TestCompiledVerdicts(t *testing.T) {
	set, err := celpolicy.Compile(celtest.Policies(), celpolicy.Options{Nodes: celtest.Nodes()})
	if err != nil {
		t.Fatal(err)
	}
	api := newAPIServer(t, set)
	prod := testutil.Namespace("prod", "env", "prod")
	manyTerms := make([]corev1.NodeSelectorTerm, policy.MaxNodeSelectorTerms+1)
	for i := range manyTerms {
		manyTerms[i] = testutil.Term(testutil.In(celtest.Zone, "pod-1"))
	}
	cases := []struct {
		name string
		obj  runtime.Object
		// want are substrings of the one violation's message; none: admitted.
		want []string
		// selector is the nodeSelector after mutation.
		selector map[string]string
	}{
		{name: "a worker without selector is denied, the known datacenters listed",
			obj:  testutil.Deployment("prod", "w").Labels("app", "worker").Obj(),
			want: []string{"alpha/workers", "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]", "pod-1, pod-2, pod-3"}},
		{name: "a worker in pod-2 is admitted",
			obj: testutil.Deployment("prod", "w").Labels("app", "worker").InDC("pod-2").Obj(), selector: map[string]string{celtest.Zone: "pod-2"}},
		{name: "an unknown datacenter is named",
			obj:  testutil.Pod("prod", "w").Labels("app", "worker").InDC("pod-9").Obj(),
			want: []string{"spec.nodeSelector[topology.kubernetes.io/zone]: Invalid value: pod-9", "known datacenters: pod-1, pod-2, pod-3"}},
		{name: "datacenterFromLabel is injected",
			obj:      testutil.Deployment("prod", "w").Labels("app", "worker").ObjectLabels(celtest.FromDC, "pod-3").Obj(),
			selector: map[string]string{celtest.Zone: "pod-3"}},
		{name: "a non-default datacenterFromLabel key is injected on the policy's own label",
			obj:      testutil.StatefulSet("prod", "s").Labels("app", "site").ObjectLabels(celtest.FromSite, "west").Obj(),
			selector: map[string]string{celtest.Site: "west"}},
		{name: "a datacenterFromLabel value that disagrees is denied",
			obj:  testutil.Job("prod", "w").Labels("app", "worker").ObjectLabels(celtest.FromDC, "pod-3").InDC("pod-1").Obj(),
			want: []string{"placement.kubectl-dc.io/datacenter says another datacenter"}, selector: map[string]string{celtest.Zone: "pod-1"}},
		{name: "a permissive term is denied",
			obj:  testutil.CronJob("prod", "w").Labels("app", "brain").Place(testutil.PlacePermissiveTerm, celtest.Zone, "pod-1", "pod-2").Obj(),
			want: []string{"spec.jobTemplate.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", "does not pin"}},
		{name: "beyond the terms limit",
			obj:  testutil.PodTemplate("prod", "w").Labels("app", "brain").RequiredAffinity(manyTerms...).Obj(),
			want: []string{"more than 32 required node affinity terms"}},
		{name: "a mirror pod is left to the webhook",
			obj: testutil.Pod("prod", "m").Labels("app", "worker").Mirror().Obj()},
		{name: "an object being deleted is not judged",
			obj: testutil.Deployment("prod", "w").Labels("app", "worker").Deleting().Obj()},
		{name: "a pod no rule selects is admitted",
			obj: testutil.Pod("prod", "x").Labels("app", "web").Obj()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, vs := api.admit(t, admission.Create, c.obj, nil, prod)
			if len(c.want) == 0 && len(vs) > 0 {
				t.Errorf("violations %v, want none", vs)
			}
			if len(c.want) > 0 {
				if len(vs) != 1 {
					t.Fatalf("violations %v, want one", vs)
				}
				for _, w := range c.want {
					if !strings.Contains(vs[0].Message, w) {
						t.Errorf("message %q does not say %q", vs[0].Message, w)
					}
				}
			}
			if got := celtest.NodeSelectorOf(out); c.selector != nil && !equalMaps(got, c.selector) {
				t.Errorf("nodeSelector %v after mutation, want %v", got, c.selector)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestCompileFollowsNodes: without spec.datacenters the known
// datacenters are the Nodes', and a new datacenter's first Node makes it
// known once compiled again.
func TestCompileFollowsNodes(t *testing.T) {
	policies := celtest.Policies()
	pod := testutil.Pod("dev", "e").Labels("app", "edge").InDC("pod-5").Obj()
	dev := testutil.Namespace("dev", "env", "dev")
	for _, c := range []struct {
		nodes []*corev1.Node
		warn  bool
	}{
		{celtest.Nodes(), true},
		{append(celtest.Nodes(), testutil.Node("pod-5-a").InDC("pod-5").Obj()), false},
	} {
		set, err := celpolicy.Compile(policies, celpolicy.Options{Nodes: c.nodes})
		if err != nil {
			t.Fatal(err)
		}
		_, vs := newAPIServer(t, set).admit(t, admission.Create, pod, nil, dev)
		if got := len(vs) > 0; got != c.warn {
			t.Errorf("with %d nodes: violations %v, want some: %v", len(c.nodes), vs, c.warn)
		}
	}
}

// TestCompileBindings: actions map to validationActions, Warn and Audit
// never fail closed, the namespaceSelector is the rule's less the
// excluded and opted-out namespaces, and names are stable.
func TestCompileBindings(t *testing.T) {
	set, err := celpolicy.Compile(celtest.Policies(), celpolicy.Options{ExcludedNamespaces: []string{"dc-system"}, OptOutLabel: "placement.kubectl-dc.io/ignore"})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Validating) != 6 || len(set.ValidatingBindings) != 12 {
		t.Fatalf("%d policies and %d bindings, want one policy and two bindings per pinned rule (6, 12)", len(set.Validating), len(set.ValidatingBindings))
	}
	if len(set.Mutating) != 2 {
		t.Errorf("%d mutating policies, want one per datacenter label with datacenterFromLabel (2)", len(set.Mutating))
	}
	want := map[string]string{"kubectl-dc.pinned.alpha.workers": "Deny", "kubectl-dc.pinned.beta.edge": "Warn", "kubectl-dc.pinned.beta.canary": "Audit"}
	seen := 0
	for i, b := range set.ValidatingBindings {
		p := set.Validating[i/2]
		rules := b.Spec.MatchResources.ResourceRules
		if i%2 == 0 {
			// Every judged kind but pods, without an objectSelector: a
			// workload's own labels are not its pods'.
			if b.Name != p.Name || b.Spec.PolicyName != p.Name {
				t.Errorf("binding %s binds %s, want %s", b.Name, b.Spec.PolicyName, p.Name)
			}
			if b.Spec.MatchResources.ObjectSelector != nil || len(rules) != len(p.Spec.MatchConstraints.ResourceRules)-1 {
				t.Errorf("%s: objectSelector %v and %d resource rules, want none and every judged kind's but pods'", b.Name, b.Spec.MatchResources.ObjectSelector, len(rules))
			}
			for _, r := range rules {
				if slices.Contains(r.Resources, "pods") {
					t.Errorf("%s names pods: %v", b.Name, r.Resources)
				}
			}
		} else {
			// Pods, selected by their labels as the rule selects them.
			if b.Name != celpolicy.PodBindingName(p.Name) || b.Spec.PolicyName != p.Name {
				t.Errorf("binding %s binds %s, want %s binding %s", b.Name, b.Spec.PolicyName, celpolicy.PodBindingName(p.Name), p.Name)
			}
			if len(rules) != 1 || fmt.Sprint(rules[0].APIGroups, rules[0].Resources) != "[] [pods pods/status]" {
				t.Errorf("%s: resource rules %v, want pods and pods/status alone", b.Name, rules)
			}
			if sel := b.Spec.MatchResources.ObjectSelector; sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
				t.Errorf("%s: objectSelector %v, want the rule's selector", b.Name, sel)
			}
		}
		if a, ok := want[p.Name]; ok {
			seen++
			if len(b.Spec.ValidationActions) != 1 || string(b.Spec.ValidationActions[0]) != a {
				t.Errorf("%s: validationActions %v, want [%s]", b.Name, b.Spec.ValidationActions, a)
			}
			if fail := string(*p.Spec.FailurePolicy); (a == "Deny") != (fail == "Fail") {
				t.Errorf("%s: failurePolicy %s for action %s", p.Name, fail, a)
			}
		}
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.MatchResources.NamespaceSelector)
		if err != nil {
			t.Fatal(err)
		}
		for _, ns := range []*corev1.Namespace{testutil.Namespace("dc-system", corev1.LabelMetadataName, "dc-system"), testutil.Namespace("x", "placement.kubectl-dc.io/ignore", "true")} {
			if sel.Matches(labelsOf(ns)) {
				t.Errorf("%s applies in namespace %s", b.Name, ns.Name)
			}
		}
		if p.Labels[celpolicy.LabelManagedBy] != celpolicy.ManagedBy {
			t.Errorf("%s is not labelled as managed by dc-webhook", p.Name)
		}
	}
	if seen != 2*len(want) {
		t.Errorf("%d of the bindings %v compiled", seen, want)
	}
	prodSel := set.ValidatingBindings[2*2].Spec.MatchResources.NamespaceSelector
	if prodSel.MatchLabels["env"] != "prod" {
		t.Errorf("alpha/prod's binding selects namespaces %v, want env=prod among them", prodSel)
	}
}

func labelsOf(ns *corev1.Namespace) labels.Set { return ns.Labels }

// TestCompileHonoursPinnedEnforcement: a policy's spec.pinnedEnforcement
// decides whether its pinned rules are compiled, the default (the flag)
// decides for the others.
func TestCompileHonoursPinnedEnforcement(t *testing.T) {
	policies := celtest.Policies() // alpha (3 rules), beta (2), gamma (1)
	policies[0].Spec.PinnedEnforcement = v1alpha1.PinnedEnforcementWebhook
	policies[1].Spec.PinnedEnforcement = v1alpha1.PinnedEnforcementBoth
	for _, tc := range []struct {
		def  v1alpha1.PinnedEnforcement
		want []string // policies whose rules are compiled
	}{
		{"", []string{"beta", "gamma"}},
		{v1alpha1.PinnedEnforcementCEL, []string{"beta", "gamma"}},
		{v1alpha1.PinnedEnforcementBoth, []string{"beta", "gamma"}},
		{v1alpha1.PinnedEnforcementWebhook, []string{"beta"}},
	} {
		set, err := celpolicy.Compile(policies, celpolicy.Options{Nodes: celtest.Nodes(), Enforcement: tc.def})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, v := range set.Validating {
			got[strings.Split(v.Name, ".")[2]] = true
		}
		if len(got) != len(tc.want) {
			t.Errorf("default %q: compiled the rules of %v, want %v", tc.def, got, tc.want)
		}
		for _, p := range tc.want {
			if !got[p] {
				t.Errorf("default %q: compiled the rules of %v, want %v", tc.def, got, tc.want)
			}
		}
		// beta's edge rule injects on the zone label, gamma's on the site
		// label: alpha, which also injects on the zone, adds none.
		wantMutating := 2
		if tc.def == v1alpha1.PinnedEnforcementWebhook {
			wantMutating = 1
		}
		if len(set.Mutating) != wantMutating {
			t.Errorf("default %q: %d MutatingAdmissionPolicies, want %d", tc.def, len(set.Mutating), wantMutating)
		}
	}
}

// TestValidatingNameFollowsTheRule: a compiled policy's name comes from
// its rule's name, so removing a rule renames no other; any rule name gives
// a valid object name.
func TestValidatingNameFollowsTheRule(t *testing.T) {
	if a, b := celpolicy.ValidatingName("macstadium", "workers"), celpolicy.ValidatingName("macstadium", "workers"); a != b || a != "kubectl-dc.pinned.macstadium.workers" {
		t.Errorf("names %q, %q; want kubectl-dc.pinned.macstadium.workers twice", a, b)
	}
	names := map[string]bool{}
	for _, rule := range []string{"workers", "Workers", "per datacenter!", "a.b", strings.Repeat("x", 63)} {
		for _, pol := range []string{"macstadium", strings.Repeat("p", 240)} {
			n := celpolicy.ValidatingName(pol, rule)
			if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
				t.Errorf("celpolicy.ValidatingName(%q, %q) = %q: %v", pol, rule, n, errs)
			}
			if names[n] {
				t.Errorf("celpolicy.ValidatingName(%q, %q) = %q, given to another rule too", pol, rule, n)
			}
			names[n] = true
		}
	}
}
