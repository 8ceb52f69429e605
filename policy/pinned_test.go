package policy_test

import (
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func workersPolicy() *testutil.PolicyBuilder {
	return testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(testutil.PinnedRule("workers").In("app", "worker", "jupiter-brain"))
}

const (
	nsPath    = ".nodeSelector[topology.kubernetes.io/zone]"
	termsPath = ".affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
)

// TestPinnedEveryKind runs the core pinned cases over all nine kinds, each
// with its own template path.
func TestPinnedEveryKind(t *testing.T) {
	e := engine(t, workersPolicy())
	state := policy.NewStaticState(threeDCs()...)
	cases := []struct {
		name  string
		build func(*testutil.ObjectBuilder) *testutil.ObjectBuilder
		want  func(path string) []want
	}{
		{"pinned by nodeSelector", func(b *testutil.ObjectBuilder) *testutil.ObjectBuilder { return b.InDC("pod-2") },
			func(string) []want { return nil }},
		{"pinned by affinity", func(b *testutil.ObjectBuilder) *testutil.ObjectBuilder {
			return b.RequiredAffinity(testutil.Term(testutil.In(zone, "pod-3")))
		}, func(string) []want { return nil }},
		{"no selection", func(b *testutil.ObjectBuilder) *testutil.ObjectBuilder { return b },
			func(p string) []want {
				return []want{deny(p+nsPath, "pods must select exactly one datacenter: set nodeSelector[topology.kubernetes.io/zone] to one of: pod-1, pod-2, pod-3")}
			}},
		{"unknown datacenter", func(b *testutil.ObjectBuilder) *testutil.ObjectBuilder { return b.InDC("pod2") },
			func(p string) []want {
				return []want{{field: p + nsPath, action: v1alpha1.ActionDeny, exact: true,
					msg: `unknown datacenter "pod2": did you mean pod-2? known datacenters: pod-1, pod-2, pod-3`}}
			}},
		{"ORed permissive term escapes", func(b *testutil.ObjectBuilder) *testutil.ObjectBuilder {
			return b.RequiredAffinity(testutil.Term(testutil.In(zone, "pod-1")), testutil.Term(testutil.In("disk", "ssd")))
		}, func(p string) []want {
			return []want{deny(p+termsPath+"[1]", "terms are ORed and this term does not pin")}
		}},
		{"not a matching object", func(b *testutil.ObjectBuilder) *testutil.ObjectBuilder {
			return b.Labels("app", "web")
		}, func(string) []want { return nil }},
	}
	for _, tc := range cases {
		for _, b := range testutil.Kinds("travis", "worker") {
			kind := b.Kind()
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				obj := tc.build(b.Labels("app", "worker")).Obj()
				path := policy.PodTemplates(obj)[0].Path.String()
				got := e.Evaluate(create(obj, "travis"), state)
				assertResults(t, got, tc.want(path))
				for _, r := range got {
					if r.Object.Kind != kind || r.Object.Name != "worker" || r.Object.Namespace != "travis" || r.Rule != "macstadium/workers" || r.Policy != "macstadium" {
						t.Errorf("result names %+v rule %q policy %q", r.Object, r.Rule, r.Policy)
					}
				}
			})
		}
	}
}

func TestPinnedSelections(t *testing.T) {
	in := testutil.In
	term := testutil.Term
	cases := []struct {
		name string
		obj  runtime.Object
		want []want
	}{
		{"two terms pinning the same datacenter", testutil.Deployment("travis", "worker").Labels("app", "worker").
			RequiredAffinity(term(in(zone, "pod-1")), term(in(zone, "pod-1"), in("disk", "ssd"))).Obj(), nil},
		{"In intersection pins one", testutil.Deployment("travis", "worker").Labels("app", "worker").
			RequiredAffinity(term(in(zone, "pod-1", "pod-2"), in(zone, "pod-2", "pod-3"))).Obj(), nil},
		{"In with two values is permissive", testutil.Deployment("travis", "worker").Labels("app", "worker").
			RequiredAffinity(term(in(zone, "pod-1", "pod-2"))).Obj(),
			[]want{deny("spec.template.spec"+termsPath+"[0]", "does not pin topology.kubernetes.io/zone")}},
		{"NotIn is permissive", testutil.Deployment("travis", "worker").Labels("app", "worker").
			RequiredAffinity(term(testutil.Expr(zone, corev1.NodeSelectorOpNotIn, "pod-1"))).Obj(),
			[]want{deny("spec.template.spec"+termsPath+"[0]", "does not pin")}},
		{"In excluded by NotIn is permissive", testutil.Deployment("travis", "worker").Labels("app", "worker").
			RequiredAffinity(term(in(zone, "pod-1"), testutil.Expr(zone, corev1.NodeSelectorOpNotIn, "pod-1"))).Obj(),
			[]want{deny("spec.template.spec"+termsPath+"[0]", "does not pin")}},
		{"terms disagree", testutil.Deployment("travis", "worker").Labels("app", "worker").
			RequiredAffinity(term(in(zone, "pod-1")), term(in(zone, "pod-2"))).Obj(),
			[]want{deny("spec.template.spec"+termsPath+"[1]", "term 0 pins topology.kubernetes.io/zone to pod-1 but this term pins pod-2")}},
		{"nodeSelector and affinity disagree", testutil.Deployment("travis", "worker").Labels("app", "worker").InDC("pod-1").
			RequiredAffinity(term(in(zone, "pod-2"))).Obj(),
			[]want{deny("spec.template.spec"+termsPath+"[0]", "nodeSelector[topology.kubernetes.io/zone] pins pod-1 but this required node affinity term pins pod-2")}},
		{"nodeSelector with a permissive term is pinned", testutil.Deployment("travis", "worker").Labels("app", "worker").InDC("pod-1").
			RequiredAffinity(term(in("disk", "ssd"))).Obj(), nil},
		{"unknown datacenter in affinity", testutil.Deployment("travis", "worker").Labels("app", "worker").
			RequiredAffinity(term(in("disk", "ssd"), in(zone, "POD-3"))).Obj(),
			[]want{{field: "spec.template.spec" + termsPath + "[0].matchExpressions[1].values", action: v1alpha1.ActionDeny, exact: true,
				msg: `unknown datacenter "POD-3": did you mean pod-3? known datacenters: pod-1, pod-2, pod-3`}}},
		{"unknown datacenter far from every known one", testutil.Deployment("travis", "worker").Labels("app", "worker").InDC("frankfurt").Obj(),
			[]want{{field: "spec.template.spec" + nsPath, action: v1alpha1.ActionDeny, exact: true,
				msg: `unknown datacenter "frankfurt": known datacenters: pod-1, pod-2, pod-3`}}},
		{"empty datacenter", testutil.Deployment("travis", "worker").Labels("app", "worker").InDC("").Obj(),
			[]want{deny("spec.template.spec"+nsPath, "empty datacenter")}},
	}
	e := engine(t, workersPolicy())
	state := policy.NewStaticState(threeDCs()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertResults(t, e.Evaluate(create(tc.obj, "travis"), state), tc.want)
		})
	}
}

func TestSelectedDatacenter(t *testing.T) {
	in := testutil.In
	term := testutil.Term
	for _, tc := range []struct {
		name string
		b    *testutil.ObjectBuilder
		dc   string
		ok   bool
	}{
		{"none", testutil.Pod("a", "b"), "", false},
		{"nodeSelector", testutil.Pod("a", "b").InDC("pod-1"), "pod-1", true},
		{"other label only", testutil.Pod("a", "b").NodeSelector("disk", "ssd"), "", false},
		{"affinity", testutil.Pod("a", "b").RequiredAffinity(term(in(zone, "pod-2"))), "pod-2", true},
		{"duplicate value", testutil.Pod("a", "b").RequiredAffinity(term(in(zone, "pod-2", "pod-2"))), "pod-2", true},
		{"empty In", testutil.Pod("a", "b").RequiredAffinity(term(in(zone))), "", false},
		{"Exists", testutil.Pod("a", "b").RequiredAffinity(term(testutil.Expr(zone, corev1.NodeSelectorOpExists))), "", false},
		{"DoesNotExist with In", testutil.Pod("a", "b").RequiredAffinity(term(in(zone, "pod-1"), testutil.Expr(zone, corev1.NodeSelectorOpDoesNotExist))), "", false},
		{"agreeing nodeSelector and affinity", testutil.Pod("a", "b").InDC("pod-1").RequiredAffinity(term(in(zone, "pod-1"))), "pod-1", true},
		{"nodeSelector excluded by NotIn", testutil.Pod("a", "b").InDC("pod-1").RequiredAffinity(term(testutil.Expr(zone, corev1.NodeSelectorOpNotIn, "pod-1"))), "pod-1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dc, ok := policy.SelectedDatacenter(tc.b.Spec(), zone)
			if ok != tc.ok || (ok && dc != tc.dc) {
				t.Errorf("SelectedDatacenter = %q, %v; want %q, %v", dc, ok, tc.dc, tc.ok)
			}
		})
	}
}

func TestPinnedFromLabelNodeNameAndScope(t *testing.T) {
	p := testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").Pinned(
		testutil.PinnedRule("workers").MatchLabels("app", "worker").FromLabel("placement.kubectl-dc.io/datacenter"),
		testutil.PinnedRule("prod").MatchLabels("tier", "db").NamespaceSelector("env", "prod").Action(v1alpha1.ActionWarn),
		testutil.PinnedRule("audit").MatchLabels("tier", "batch").Action(v1alpha1.ActionAudit),
	)
	e := engine(t, p)
	state := policy.NewStaticState(append(threeDCs(), testutil.Namespace("shop", "env", "prod"), testutil.Namespace("dev"))...)
	dcLabel := "placement.kubectl-dc.io/datacenter"
	cases := []struct {
		name string
		req  policy.Request
		want []want
	}{
		{"datacenterFromLabel agrees", create(testutil.Deployment("travis", "w").Labels("app", "worker").ObjectLabels(dcLabel, "pod-1").InDC("pod-1").Obj(), "travis"), nil},
		{"datacenterFromLabel mismatch", create(testutil.Deployment("travis", "w").Labels("app", "worker").ObjectLabels(dcLabel, "pod-1").InDC("pod-2").Obj(), "travis"),
			[]want{deny("spec.template.spec"+nsPath, `the object's label placement.kubectl-dc.io/datacenter=pod-1 says datacenter "pod-1" but the pods select "pod-2"`)}},
		{"datacenterFromLabel missing selection names the value", create(testutil.Deployment("travis", "w").Labels("app", "worker").ObjectLabels(dcLabel, "pod-3").Obj(), "travis"),
			[]want{deny("spec.template.spec"+nsPath, "set nodeSelector[topology.kubernetes.io/zone] to pod-3 (from label placement.kubectl-dc.io/datacenter")}},
		{"nodeName in the selected datacenter", create(testutil.Pod("travis", "w").Labels("app", "worker").InDC("pod-1").NodeName("pod-1-2").Obj(), "travis"), nil},
		{"nodeName in another datacenter", create(testutil.Pod("travis", "w").Labels("app", "worker").InDC("pod-1").NodeName("pod-2-1").Obj(), "travis"),
			[]want{deny("spec.nodeName", `node pod-2-1 is in datacenter "pod-2" but the pod selects "pod-1"`)}},
		{"nodeName on an unknown node is left to the kubelet", create(testutil.Pod("travis", "w").Labels("app", "worker").InDC("pod-1").NodeName("ghost").Obj(), "travis"), nil},
		{"namespaceSelector matches", create(testutil.Deployment("shop", "db").Labels("tier", "db").Obj(), "shop"),
			[]want{{field: "spec.template.spec" + nsPath, action: v1alpha1.ActionWarn, msg: "select exactly one datacenter"}}},
		{"namespaceSelector does not match", create(testutil.Deployment("dev", "db").Labels("tier", "db").Obj(), "dev"), nil},
		{"a namespace not yet known is judged, never skipped", create(testutil.Deployment("nowhere", "db").Labels("tier", "db").Obj(), "nowhere"),
			[]want{{field: "spec.template.spec" + nsPath, action: v1alpha1.ActionWarn, msg: "(namespace nowhere is not known yet, so the rule's namespaceSelector could not be evaluated and the rule was applied)"}}},
		{"a namespace not yet known passes what complies", create(testutil.Deployment("nowhere", "db").Labels("tier", "db").InDC("pod-1").Obj(), "nowhere"), nil},
		{"audit", create(testutil.Job("travis", "j").Labels("tier", "batch").Obj(), "travis"),
			[]want{{field: "spec.template.spec" + nsPath, action: v1alpha1.ActionAudit, msg: "select exactly one datacenter"}}},
		{"object being deleted is not judged", create(testutil.Deployment("travis", "w").Labels("app", "worker").Deleting().Obj(), "travis"), nil},
		{"pod update is not judged (placement is immutable)", policy.Request{Operation: policy.OperationUpdate, Namespace: "travis",
			Object: testutil.Pod("travis", "w").Labels("app", "worker").Obj(), OldObject: testutil.Pod("travis", "w").Labels("app", "worker").Obj()}, nil},
		{"pod relabelled into the rule is judged as if created", policy.Request{Operation: policy.OperationUpdate, Namespace: "travis",
			Object: testutil.Pod("travis", "w").Labels("app", "worker").Obj(), OldObject: testutil.Pod("travis", "w").Labels("app", "decoy").Obj()},
			[]want{deny("spec"+nsPath, "select exactly one datacenter")}},
		{"pod relabelled into the rule that already selects one datacenter", policy.Request{Operation: policy.OperationUpdate, Namespace: "travis",
			Object: testutil.Pod("travis", "w").Labels("app", "worker").InDC("pod-2").Obj(), OldObject: testutil.Pod("travis", "w").Labels("app", "decoy").InDC("pod-2").Obj()}, nil},
		{"pod relabelled to another datacenterFromLabel value is judged", policy.Request{Operation: policy.OperationUpdate, Namespace: "travis",
			Object:    testutil.Pod("travis", "w").Labels("app", "worker", dcLabel, "pod-2").InDC("pod-1").NodeName("pod-1-1").Obj(),
			OldObject: testutil.Pod("travis", "w").Labels("app", "worker", dcLabel, "pod-1").InDC("pod-1").NodeName("pod-1-1").Obj()},
			[]want{deny("spec"+nsPath, `the object's label placement.kubectl-dc.io/datacenter=pod-2 says datacenter "pod-2" but the pods select "pod-1"`)}},
		{"pod relabel that keeps the datacenterFromLabel value is not judged", policy.Request{Operation: policy.OperationUpdate, Namespace: "travis",
			Object:    testutil.Pod("travis", "w").Labels("app", "worker", dcLabel, "pod-1", "v", "2").Obj(),
			OldObject: testutil.Pod("travis", "w").Labels("app", "worker", dcLabel, "pod-1").Obj()}, nil},
		{"deployment update is judged", policy.Request{Operation: policy.OperationUpdate, Namespace: "travis",
			Object: testutil.Deployment("travis", "w").Labels("app", "worker").Obj(), OldObject: testutil.Deployment("travis", "w").Labels("app", "worker").InDC("pod-1").Obj()},
			[]want{deny("spec.template.spec"+nsPath, "select exactly one datacenter")}},
		{"mirror pod is warned, never denied", create(testutil.Pod("travis", "static-w").Labels("app", "worker").Mirror().Obj(), "travis"),
			[]want{{field: "spec" + nsPath, action: v1alpha1.ActionWarn, msg: "(not denied: this is the mirror of a static pod"}}},
		{"other kinds are ignored", create(testutil.Namespace("travis", "app", "worker"), ""), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertResults(t, e.Evaluate(tc.req, state), tc.want)
		})
	}
}

func TestPinnedKnownDatacentersFromNodes(t *testing.T) {
	e := engine(t, testutil.Policy("p").Label("example.com/dc").Pinned(testutil.PinnedRule("all").MatchLabels("app", "worker")))
	nodes := policy.NewStaticState(
		testutil.Node("a").Label("example.com/dc", "east").Obj(),
		testutil.Node("b").Label("example.com/dc", "west").Obj(),
		testutil.Node("c").InDC("pod-1").Obj(), // another label: not a datacenter of this policy
	)
	pinned := func(dc string) runtime.Object {
		return testutil.Deployment("ns", "w").Labels("app", "worker").NodeSelector("example.com/dc", dc).Obj()
	}
	assertResults(t, e.Evaluate(create(pinned("west"), "ns"), nodes), nil)
	assertResults(t, e.Evaluate(create(pinned("wesst"), "ns"), nodes), []want{{
		field: "spec.template.spec.nodeSelector[example.com/dc]", action: v1alpha1.ActionDeny, exact: true,
		msg: `unknown datacenter "wesst": did you mean west? known datacenters: east, west`}})
	assertResults(t, e.Evaluate(create(pinned("west"), "ns"), policy.NewStaticState()), []want{deny(
		"spec.template.spec.nodeSelector[example.com/dc]", "no datacenters are known; list them in spec.datacenters of PlacementPolicy p or label the nodes with example.com/dc")})
	if got := strings.Join(e.Datacenters(nodes), ","); got != "east,west" {
		t.Errorf("Datacenters = %s, want east,west", got)
	}
}

func TestMutate(t *testing.T) {
	dcLabel := "placement.kubectl-dc.io/datacenter"
	e := engine(t, testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(testutil.PinnedRule("workers").MatchLabels("app", "worker").FromLabel(dcLabel)))
	state := policy.NewStaticState(threeDCs()...)
	for _, b := range testutil.Kinds("travis", "worker") {
		t.Run(b.Kind(), func(t *testing.T) {
			obj := b.Labels("app", "worker").ObjectLabels(dcLabel, "pod-2").Obj()
			if !e.Mutate(obj, "travis", state) {
				t.Fatal("Mutate reported no change")
			}
			if got := b.Spec().NodeSelector[zone]; got != "pod-2" {
				t.Errorf("nodeSelector[%s] = %q, want pod-2", zone, got)
			}
			if e.Mutate(obj, "travis", state) {
				t.Error("second Mutate changed the object: not idempotent")
			}
			assertResults(t, e.Evaluate(create(obj, "travis"), state), nil)
		})
	}
	for _, tc := range []struct {
		name string
		b    *testutil.ObjectBuilder
	}{
		{"mirror pod", testutil.Pod("travis", "w").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2").Mirror()},
		{"no datacenter label", testutil.Deployment("travis", "w").Labels("app", "worker")},
		{"not matched", testutil.Deployment("travis", "w").Labels("app", "web").ObjectLabels(dcLabel, "pod-2")},
		{"already selected (even another DC)", testutil.Deployment("travis", "w").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2").InDC("pod-1")},
		{"selected by affinity", testutil.Deployment("travis", "w").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2").
			RequiredAffinity(testutil.Term(testutil.In(zone, "pod-2")))},
		{"being deleted", testutil.Deployment("travis", "w").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2").Deleting()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.b.Spec().DeepCopy()
			if e.Mutate(tc.b.Obj(), "travis", state) {
				t.Error("Mutate changed the object")
			}
			if tc.b.Spec().NodeSelector[zone] != before.NodeSelector[zone] {
				t.Error("nodeSelector changed")
			}
		})
	}
	// A permissive affinity gets the nodeSelector, which pins it.
	b := testutil.Deployment("travis", "w").Labels("app", "worker").ObjectLabels(dcLabel, "pod-3").
		RequiredAffinity(testutil.Term(testutil.In("disk", "ssd")))
	if !e.Mutate(b.Obj(), "travis", state) || b.Spec().NodeSelector[zone] != "pod-3" {
		t.Errorf("permissive affinity: nodeSelector = %v", b.Spec().NodeSelector)
	}
}

// TestMutateUpdate: an UPDATE is mutated as dc-webhook mutates it, never a
// Pod (its nodeSelector is immutable once created), nor a workload whose
// labels and pod templates are unchanged; a workload whose template or
// labels change gets the nodeSelector as on create.
func TestMutateUpdate(t *testing.T) {
	dcLabel := "placement.kubectl-dc.io/datacenter"
	e := engine(t, testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(testutil.PinnedRule("workers").MatchLabels("app", "worker").FromLabel(dcLabel)))
	state := policy.NewStaticState(threeDCs()...)
	worker := func(b *testutil.ObjectBuilder) *testutil.ObjectBuilder {
		return b.Labels("app", "worker").ObjectLabels(dcLabel, "pod-2")
	}
	cases := []struct {
		name     string
		obj, old *testutil.ObjectBuilder
		want     string // nodeSelector[zone] after the mutation
	}{
		{"a pod relabelled into the rule is left alone",
			worker(testutil.Pod("travis", "w")), testutil.Pod("travis", "w").Labels("app", "web").ObjectLabels(dcLabel, "pod-2"), ""},
		{"a scale-down of a workload admitted before the policy is left alone",
			worker(testutil.Deployment("travis", "w")).Replicas(0), worker(testutil.Deployment("travis", "w")), ""},
		{"a workload relabelled into the rule is mutated",
			worker(testutil.Deployment("travis", "w")), testutil.Deployment("travis", "w").Labels("app", "web").ObjectLabels(dcLabel, "pod-2"), "pod-2"},
		{"a new datacenter label on a workload is mutated",
			worker(testutil.Deployment("travis", "w")), testutil.Deployment("travis", "w").Labels("app", "worker"), "pod-2"},
		{"a template whose selection was removed is mutated",
			worker(testutil.StatefulSet("travis", "w")), worker(testutil.StatefulSet("travis", "w")).InDC("pod-1"), "pod-2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			changed := e.MutateUpdate(tc.obj.Obj(), tc.old.Obj(), "travis", state)
			if got := tc.obj.Spec().NodeSelector[zone]; changed != (tc.want != "") || got != tc.want {
				t.Errorf("MutateUpdate = %v, nodeSelector[%s] = %q; want %v, %q", changed, zone, got, tc.want != "", tc.want)
			}
		})
	}
	if policy.SameTemplatesAndLabels(testutil.Pod("travis", "w").Obj(), testutil.Deployment("travis", "w").Obj()) {
		t.Error("SameTemplatesAndLabels: a Pod and a Deployment are the same")
	}
}

// TestUpdatesJudgedOnWhatTheyChange: an UPDATE that leaves the placement of
// the pod templates, the datacenter label and the member count alone is
// admitted whatever the policy says, so that a workload admitted before a
// rule applied can still be scaled down and rolled forward.
func TestUpdatesJudgedOnWhatTheyChange(t *testing.T) {
	dcLabel := "placement.kubectl-dc.io/datacenter"
	e := engine(t, testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(testutil.PinnedRule("workers").MatchLabels("app", "worker").FromLabel(dcLabel)).
		Spread(testutil.Etcd()))
	// One datacenter down: pod-3's nodes are NotReady.
	state := policy.NewStaticState(append(testutil.Nodes(2, "pod-1", "pod-2"),
		testutil.Node("pod-3-1").InDC("pod-3").NotReady().Obj(), testutil.Node("pod-3-2").InDC("pod-3").NotReady().Obj())...)
	rs := func() *testutil.ObjectBuilder {
		return testutil.ReplicaSet("travis", "w").Labels("app", "worker").Replicas(3)
	}
	etcd := func() *testutil.ObjectBuilder {
		return testutil.StatefulSet("kube-system", "etcd").Labels("component", "etcd").Replicas(3).TopologySpread(zone, corev1.DoNotSchedule)
	}
	update := func(obj, old *testutil.ObjectBuilder) policy.Request {
		m := obj.Obj().(interface{ GetNamespace() string })
		return policy.Request{Operation: policy.OperationUpdate, Object: obj.Obj(), OldObject: old.Obj(), Namespace: m.GetNamespace()}
	}
	image := func(s *corev1.PodSpec) { s.Containers[0].Image = "registry.example/app:2" }
	cases := []struct {
		name string
		req  policy.Request
		want []want
	}{
		{"scale-down of a ReplicaSet admitted before the rule", update(rs().Replicas(0), rs()), nil},
		{"status-only update of it", update(rs(), rs()), nil},
		{"image-only update of it", update(rs().Edit(image), rs()), nil},
		{"a change of its placement is judged as a create", update(rs().NodeSelector("disk", "ssd"), rs()),
			[]want{deny("spec.template.spec"+nsPath, "select exactly one datacenter")}},
		{"relabelled into the rule is judged", update(rs(), testutil.ReplicaSet("travis", "w").Labels("app", "decoy").Replicas(3)),
			[]want{deny("spec.template.spec"+nsPath, "select exactly one datacenter")}},
		{"a new datacenterFromLabel value is judged", update(rs().InDC("pod-1").ObjectLabels(dcLabel, "pod-2"), rs().InDC("pod-1").ObjectLabels(dcLabel, "pod-1")),
			[]want{deny("spec.template.spec"+nsPath, `says datacenter "pod-2" but the pods select "pod-1"`)}},
		{"image-only update of a 3-member StatefulSet with a datacenter down", update(etcd().Edit(image), etcd()), nil},
		{"scale-down of that StatefulSet", update(etcd().Replicas(1), etcd()), nil},
		{"scale-up of that StatefulSet is judged", update(etcd().Replicas(5), etcd()),
			[]want{deny("spec.replicas", "5 voting members over 2 datacenter(s)")}},
		{"a member template losing its spread constraint is judged", update(testutil.StatefulSet("kube-system", "etcd").Labels("component", "etcd").Replicas(3), etcd()),
			[]want{deny("spec.replicas", "3 voting members over 2 datacenter(s)"), deny("spec.template.spec.topologySpreadConstraints", "quorum members must be spread")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertResults(t, e.Evaluate(tc.req, state), tc.want)
		})
	}
}

// hugeValues returns n distinct datacenter names, the worst case of an In
// list.
func hugeValues(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "dc-" + strconv.Itoa(i)
	}
	return out
}

// TestSelectionLimits: evaluation is bounded; a spec beyond the limits is
// refused by the rule, naming the field, instead of being evaluated.
func TestSelectionLimits(t *testing.T) {
	e := engine(t, workersPolicy().Spread(testutil.Etcd()))
	state := policy.NewStaticState(threeDCs()...)
	terms := "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
	many := make([]corev1.NodeSelectorTerm, policy.MaxNodeSelectorTerms+1)
	for i := range many {
		many[i] = testutil.Term(testutil.In(zone, "pod-1"))
	}
	atLimit := append(hugeValues(policy.MaxDatacenterValues/2-1), "pod-1")
	cases := []struct {
		name string
		obj  *testutil.ObjectBuilder
		want []want
	}{
		{"two In lists of 60k values on the datacenter key", testutil.Pod("travis", "w").Labels("app", "worker").
			RequiredAffinity(testutil.Term(testutil.In(zone, hugeValues(60000)...), testutil.In(zone, hugeValues(60000)...))),
			[]want{{field: terms + "[0].matchExpressions", action: v1alpha1.ActionDeny, msg: "list more than 32 values on topology.kubernetes.io/zone"}}},
		{"too many terms", testutil.Pod("travis", "w").Labels("app", "worker").RequiredAffinity(many...),
			[]want{{field: terms, action: v1alpha1.ActionDeny, msg: "more than 32 required node affinity terms"}}},
		{"a member pod beyond the limits", member("etcd-x", "").RequiredAffinity(many...),
			nil}, // a pod is judged on its placement, not its template
		{"at the limit, two lists intersecting in one value", testutil.Pod("travis", "w").Labels("app", "worker").
			RequiredAffinity(testutil.Term(testutil.In(zone, atLimit...), testutil.In(zone, append([]string{"pod-1"}, hugeValues(policy.MaxDatacenterValues/2-1)...)...))),
			// dc-0 … dc-30 are common to both lists too: the term does not pin.
			[]want{{field: terms + "[0]", action: v1alpha1.ActionDeny, msg: "does not pin"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertResults(t, e.Evaluate(create(tc.obj.Obj(), tc.obj.Pod().Namespace), state), tc.want)
		})
	}
	sts := testutil.StatefulSet("kube-system", "etcd").Labels("component", "etcd").Replicas(3).TopologySpread(zone, corev1.DoNotSchedule).RequiredAffinity(many...)
	assertResults(t, e.Evaluate(create(sts.Obj(), "kube-system"), state),
		[]want{{field: "spec.template." + terms, action: v1alpha1.ActionDeny, msg: "more than 32 required node affinity terms"}})
}
