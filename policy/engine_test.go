package policy_test

import (
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func TestValidatePolicy(t *testing.T) {
	valid := func() *testutil.PolicyBuilder { return testutil.Policy("p") }
	cases := []struct {
		name string
		p    *testutil.PolicyBuilder
		want []string // "<type> <field>"
	}{
		{"valid MacStadium policy", valid().Datacenters("pod-1", "pod-2", "pod-3").
			Pinned(testutil.PinnedRule("workers").In("app", "worker").FromLabel("placement.kubectl-dc.io/datacenter")).
			Spread(testutil.Etcd().Expected(5), testutil.SpreadNodes("cp", "node-role.kubernetes.io/control-plane", "")), nil},
		{"bad label", valid().Label("not a label"), []string{"Invalid value spec.datacenterLabel"}},
		{"bad and duplicate datacenters", valid().Datacenters("pod-1", "pod 2", "pod-1", ""),
			[]string{"Invalid value spec.datacenters[1]", "Duplicate value spec.datacenters[2]", "Required value spec.datacenters[3]"}},
		{"duplicate rule names across pinned and spread", valid().Pinned(testutil.PinnedRule("etcd").MatchLabels("a", "b")).Spread(testutil.Etcd()),
			[]string{"Duplicate value spec.spread[0].name"}},
		{"rule without a name", valid().Pinned(testutil.PinnedRule("").MatchLabels("a", "b")), []string{"Required value spec.pinned[0].name"}},
		{"slash in a name", valid().Pinned(testutil.PinnedRule("a/b").MatchLabels("a", "b")), []string{"Invalid value spec.pinned[0].name"}},
		{"empty pinned selector everywhere", valid().Pinned(testutil.PinnedRule("all")), []string{"Required value spec.pinned[0].selector"}},
		{"empty pinned selector narrowed by namespaces", valid().Pinned(testutil.PinnedRule("all").NamespaceSelector("dc-bound", "true")), nil},
		{"bad selector operator", valid().Pinned(testutil.PinnedRule("r").Selector(metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near", Values: []string{"x"}}}})),
			[]string{"Invalid value spec.pinned[0].selector.matchExpressions[0].operator"}},
		{"In without values", valid().Pinned(testutil.PinnedRule("r").In("app")),
			[]string{"Required value spec.pinned[0].selector.matchExpressions[0].values"}},
		{"bad datacenterFromLabel", valid().Pinned(testutil.PinnedRule("r").MatchLabels("a", "b").FromLabel("-x")),
			[]string{"Invalid value spec.pinned[0].datacenterFromLabel"}},
		{"unknown actions", valid().Pinned(testutil.PinnedRule("r").MatchLabels("a", "b").Action("Reject")).Spread(testutil.Etcd().Action("deny")),
			[]string{"Unsupported value spec.pinned[0].action", "Unsupported value spec.spread[0].action"}},
		{"neither pods nor nodes", valid().Spread(&testutil.SpreadBuilder{}), []string{"Required value spec.spread[0].name", "Required value spec.spread[0].pods"}},
		{"both pods and nodes", valid().Spread(testutil.Etcd()).Edit(func(p *v1alpha1.PlacementPolicy) {
			p.Spec.Spread[0].Nodes = &v1alpha1.NodeMembers{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}}
		}), []string{"Forbidden spec.spread[0].nodes"}},
		{"empty member selectors", valid().Spread(testutil.SpreadPods("p", nil), testutil.SpreadNodes("n")),
			[]string{"Required value spec.spread[0].pods.selector", "Required value spec.spread[1].nodes.selector"}},
		{"bad namespace", valid().Spread(testutil.SpreadPods("p", []string{"Kube_System"}, "a", "b")), []string{"Invalid value spec.spread[0].pods.namespaces[0]"}},
		{"negative counts", valid().Spread(testutil.Etcd().MaxPerNode(-1).Expected(-3)),
			[]string{"Invalid value spec.spread[0].maxPerNode", "Invalid value spec.spread[0].expectedMembers"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := policy.ValidatePolicy(tc.p.Obj())
			var got []string
			for _, e := range errs {
				got = append(got, e.Type.String()+" "+e.Field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ValidatePolicy = %q, want %q\n%v", got, tc.want, errs.ToAggregate())
			}
		})
	}
}

func TestNewEngineNamesThePolicy(t *testing.T) {
	_, err := policy.NewEngine([]v1alpha1.PlacementPolicy{testutil.Policy("good").Value(), testutil.Policy("bad").Pinned(testutil.PinnedRule("r").MatchLabels("a", "b").Action("Nope")).Value()})
	if err == nil || !strings.Contains(err.Error(), `placementpolicy "bad": spec.pinned[0].action: Unsupported value: "Nope"`) {
		t.Fatalf("NewEngine error = %v", err)
	}
}

func TestEngineAccessors(t *testing.T) {
	e := engine(t,
		testutil.Policy("b").Label("example.com/dc").Spread(testutil.SpreadNodes("cp", "node-role.kubernetes.io/control-plane", "")),
		testutil.Policy("a").Datacenters("pod-2", "pod-1").Spread(testutil.Etcd()),
		testutil.Policy("c").Datacenters("pod-3"),
	)
	if got := e.Labels(); !reflect.DeepEqual(got, []string{"example.com/dc", zone}) {
		t.Errorf("Labels = %v", got)
	}
	var names []string
	for _, p := range e.Policies() {
		names = append(names, p.Name)
	}
	if !reflect.DeepEqual(names, []string{"a", "b", "c"}) {
		t.Errorf("Policies = %v, want sorted a b c", names)
	}
	state := policy.NewStaticState(testutil.Node("x").Label("example.com/dc", "east").Obj(), testutil.Node("y").InDC("pod-9").Obj())
	if got := e.Datacenters(state); !reflect.DeepEqual(got, []string{"east", "pod-1", "pod-2", "pod-3"}) {
		t.Errorf("Datacenters = %v", got)
	}
	sels := e.MemberPodSelectors()
	if len(sels) != 1 || sels[0].Rule != "a/etcd" || !reflect.DeepEqual(sels[0].Namespaces, []string{"kube-system"}) ||
		!sels[0].Selector.Matches(labels.Set{"component": "etcd"}) || sels[0].Selector.Matches(labels.Set{"component": "dns"}) {
		t.Errorf("MemberPodSelectors = %+v", sels)
	}
}

func TestResultsOrderAndFormats(t *testing.T) {
	p1 := testutil.Policy("zeta").Datacenters("pod-1", "pod-2", "pod-3").Pinned(
		testutil.PinnedRule("warn").MatchLabels("app", "worker").Action(v1alpha1.ActionWarn),
		testutil.PinnedRule("deny").MatchLabels("app", "worker"))
	p2 := testutil.Policy("alpha").Datacenters("pod-1").Pinned(testutil.PinnedRule("audit").MatchLabels("app", "worker").Action(v1alpha1.ActionAudit)).
		Spread(testutil.SpreadPods("spread", nil, "app", "worker"))
	obj := testutil.StatefulSet("ns", "w").Labels("app", "worker").Obj()
	state := policy.NewStaticState(threeDCs()...)
	a := engine(t, p1, p2).Evaluate(create(obj, "ns"), state)
	b := engine(t, p2, p1).Evaluate(create(obj, "ns"), state)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("order depends on policy order:\n%s\n%s", dump(a), dump(b))
	}
	var got []string
	for _, r := range a {
		got = append(got, r.Field()+" "+r.Rule+" "+string(r.Action))
	}
	wantOrder := []string{
		"spec.replicas alpha/spread Deny",
		"spec.template.spec.nodeSelector[topology.kubernetes.io/zone] alpha/audit Audit",
		"spec.template.spec.nodeSelector[topology.kubernetes.io/zone] zeta/deny Deny",
		"spec.template.spec.nodeSelector[topology.kubernetes.io/zone] zeta/warn Warn",
		"spec.template.spec.topologySpreadConstraints alpha/spread Deny",
	}
	if !reflect.DeepEqual(got, wantOrder) {
		t.Fatalf("order:\n%q\nwant\n%q", got, wantOrder)
	}
	if !a.HasDeny() || a.Filter(v1alpha1.ActionAudit)[0].Rule != "alpha/audit" {
		t.Error("HasDeny or Filter wrong")
	}
	denied := a.Denied()
	if len(denied) != 3 || denied[1].Type != field.ErrorTypeRequired || denied[1].Field != "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]" ||
		!strings.HasPrefix(denied[1].Detail, "zeta/deny: pods must select exactly one datacenter") {
		t.Errorf("Denied = %v", denied)
	}
	if a[2].Message() == denied[1].Detail {
		t.Error("Denied modified the result's error")
	}
	warnings := a.Warnings()
	if len(warnings) != 1 || warnings[0] != "zeta/warn: spec.template.spec.nodeSelector[topology.kubernetes.io/zone]: pods must select exactly one datacenter: set nodeSelector[topology.kubernetes.io/zone] to one of: pod-1, pod-2, pod-3" {
		t.Errorf("Warnings = %q", warnings)
	}
	if (policy.Results{}).HasDeny() || policy.Results(nil).Denied() != nil {
		t.Error("empty results deny")
	}
}

func TestAdvice(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *testutil.PolicyBuilder
		want []string
	}{
		{"good", testutil.Policy("p").Datacenters("pod-1", "pod-2", "pod-3").Spread(testutil.Etcd().Expected(5)), nil},
		{"two datacenters", testutil.Policy("p").Datacenters("pod-1", "pod-2").Spread(testutil.Etcd()),
			[]string{"spec.spread[0].surviveDatacenterLoss: two datacenters can never survive the loss of either (3 members split 2+1, 5 split 3+2, 4 split 2+2 all fail), so every placement beyond one member per datacenter will be refused: add a third (witness) datacenter to spec.datacenters, or set surviveDatacenterLoss: false"}},
		{"two datacenters without survival", testutil.Policy("p").Datacenters("pod-1", "pod-2").Spread(testutil.Etcd().Survive(false)), nil},
		{"even size", testutil.Policy("p").Spread(testutil.Etcd().Expected(4)),
			[]string{"spec.spread[0].expectedMembers: an even size adds no fault tolerance (4 tolerates 1 failure(s), like 3): use 3 or 5"}},
		{"too small", testutil.Policy("p").Spread(testutil.Etcd().Expected(1)),
			[]string{"spec.spread[0].expectedMembers: 1 voting member(s) can never survive the loss of a datacenter: use at least 3"}},
		{"node members on a kubelet-settable label", testutil.Policy("p").Spread(testutil.SpreadNodes("cp", "node-role.kubernetes.io/control-plane", "")),
			[]string{"spec.spread[0].nodes: kubelets may set topology.kubernetes.io/zone on their own Node, so a compromised node can move itself between datacenters: use a label under node-restriction.kubernetes.io/ as spec.datacenterLabel, or guard changes to topology.kubernetes.io/zone"}},
		{"node members on a restricted label", testutil.Policy("p").Label("node-restriction.kubernetes.io/datacenter").Spread(testutil.SpreadNodes("cp", "node-role.kubernetes.io/control-plane", "")), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := policy.Advice(tc.p.Obj()); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Advice =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestNodeLabelKeys(t *testing.T) {
	e := engine(t,
		testutil.Policy("b").Label("example.com/dc").Spread(testutil.SpreadNodes("cp", "node-role.kubernetes.io/control-plane", "")),
		testutil.Policy("a").Spread(testutil.Etcd()).Edit(func(p *v1alpha1.PlacementPolicy) {
			p.Spec.Spread = append(p.Spec.Spread, v1alpha1.SpreadRule{Name: "storage", Nodes: &v1alpha1.NodeMembers{Selector: metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "example.com/storage", Operator: metav1.LabelSelectorOpExists}}}}})
		}),
	)
	want := []string{"example.com/dc", "example.com/storage", "node-role.kubernetes.io/control-plane", zone}
	if got := e.NodeLabelKeys(); !reflect.DeepEqual(got, want) {
		t.Errorf("NodeLabelKeys = %v, want %v", got, want)
	}
}
