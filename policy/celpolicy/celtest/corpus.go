// Package celtest holds the corpus of the differential tests between the
// policy engine and the compiled admission policies (celpolicy): the
// policies, the Nodes and Namespaces they run against, and creates and
// updates of every judged kind drawn from a seed, with what dc-webhook
// does with each (EngineAdmit). The in-process test (celpolicy) and the
// suite through a real API server (test/e2e/cel) run the same corpus.
package celtest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// Labels of the corpus: the default datacenter label, a second policy's
// own datacenter label, and datacenterFromLabel keys, one of them not the
// default one.
const (
	Zone     = testutil.Zone
	Site     = "example.com/site"
	FromDC   = "placement.kubectl-dc.io/datacenter"
	FromSite = "example.com/site-of"
)

// Policies are the policies of the differential tests: listed
// datacenters, datacenters from the Nodes, another datacenter label with a
// non-default datacenterFromLabel key, every action, a namespaceSelector
// and every selector operator.
func Policies() []v1alpha1.PlacementPolicy {
	return []v1alpha1.PlacementPolicy{
		testutil.Policy("alpha").Datacenters("pod-1", "pod-2", "pod-3").Pinned(
			testutil.PinnedRule("workers").MatchLabels("app", "worker").FromLabel(FromDC),
			testutil.PinnedRule("brains").In("app", "brain", "brain-canary"),
			testutil.PinnedRule("prod").MatchLabels("tier", "pinned").NamespaceSelector("env", "prod").FromLabel(FromDC),
		).Value(),
		testutil.Policy("beta").Pinned(
			testutil.PinnedRule("edge").MatchLabels("app", "edge").Action(v1alpha1.ActionWarn).FromLabel(FromDC),
			testutil.PinnedRule("canary").Selector(metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "track", Operator: metav1.LabelSelectorOpExists},
				{Key: "legacy", Operator: metav1.LabelSelectorOpDoesNotExist},
				{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"pinned"}},
			}}).Action(v1alpha1.ActionAudit),
		).Value(),
		testutil.Policy("gamma").Label(Site).Datacenters("east", "west").Pinned(
			testutil.PinnedRule("sites").MatchLabels("app", "site").FromLabel(FromSite),
		).Value(),
	}
}

// Nodes are three datacenters on the default label, one of them
// (pod-4) not in alpha's list, and two sites.
func Nodes() []*corev1.Node {
	var out []*corev1.Node
	for _, dc := range []string{"pod-1", "pod-2", "pod-4"} {
		out = append(out, testutil.Node(dc+"-a").InDC(dc).Label(Site, "east").Obj())
	}
	return out
}

// Namespaces are the namespaces of the corpus, with the labels the
// rules' namespaceSelectors match.
func Namespaces() []*corev1.Namespace {
	return []*corev1.Namespace{
		testutil.Namespace("prod", "env", "prod"),
		testutil.Namespace("dev", "env", "dev"),
		testutil.Namespace("plain"),
	}
}

// Request is one admission request of the corpus.
type Request struct {
	Op       admission.Operation
	Obj, Old runtime.Object
	NS       *corev1.Namespace
	What     string
}

// target is a rule with labels it selects (one of match) and labels it
// does not (miss), the datacenter label it pins on, the datacenters to
// draw from and its datacenterFromLabel key.
type target struct {
	match       [][]string
	miss        []string
	label, from string
	dcs         []string
}

var targets = []target{
	{[][]string{{"app", "worker"}}, []string{"app", "worker-x"}, Zone, FromDC, nil},
	{[][]string{{"app", "brain"}, {"app", "brain-canary"}}, []string{"app", "brainy"}, Zone, FromDC, nil},
	{[][]string{{"app", "web", "tier", "pinned"}}, []string{"app", "web", "tier", "free"}, Zone, FromDC, nil},
	{[][]string{{"app", "edge"}}, []string{"app", "edges"}, Zone, FromDC, nil},
	{[][]string{{"app", "web", "track", "canary"}, {"app", "web", "track", "", "tier", "free"}}, []string{"app", "web", "track", "canary", "legacy", "yes"}, Zone, FromDC, nil},
	{[][]string{{"app", "site"}}, []string{"app", "sites"}, Site, FromSite, []string{"east", "west", "north", "east", ""}},
	{nil, []string{"app", "web"}, Zone, FromDC, nil},
}

var zoneValues = []string{"pod-1", "pod-2", "pod-3", "pod-4", "pod-1", "pod-2", "pod-9", "pod2"}

// buildObject draws one object of kind index k.
func buildObject(r *rand.Rand, k int, ns, name string) (*testutil.ObjectBuilder, string) {
	b := testutil.Kinds(ns, name)[k]
	b.TemplateLabels("corpus", name)
	t := targets[r.IntN(len(targets))]
	var match []string
	if len(t.match) > 0 {
		match = t.match[r.IntN(len(t.match))]
	}
	shape := r.IntN(4)
	if b.Kind() == "Pod" && shape > 1 {
		shape = 1
	}
	var what []string
	switch {
	case match == nil || shape == 0:
		what = append(what, "no match")
		b.Labels(t.miss...)
	case shape == 1:
		what = append(what, "object and template labels")
		b.Labels(match...)
	case shape == 2:
		what = append(what, "template labels only")
		b.ObjectLabels("owner", "team-"+name).TemplateLabels(match...)
	default:
		what = append(what, "object labels only")
		b.ObjectLabels(match...).TemplateLabels(t.miss...)
	}
	values := zoneValues
	if t.dcs != nil {
		values = t.dcs
	}
	dc := values[r.IntN(len(values))]
	other := values[r.IntN(len(values))]
	places := testutil.Placements()
	if p := r.IntN(len(places) + 2); p < len(places) {
		what = append(what, fmt.Sprintf("%s (%s, %s)", places[p], dc, other))
		b.Place(places[p], t.label, dc, other)
	} else {
		what = append(what, "fuzz")
		b.FuzzPlacement(r, t.label, append(values, "", "7", "ssd"))
	}
	if r.IntN(6) == 0 {
		// A selection on the other datacenter label too.
		l := Site
		if t.label == Site {
			l = Zone
		}
		b.NodeSelector(l, []string{"pod-1", "east", "west", "pod-9"}[r.IntN(4)])
	}
	switch x := r.IntN(10); {
	case x < 4:
	case x < 7:
		b.ObjectLabels(t.from, dc)
	case x < 8:
		b.ObjectLabels(t.from, other)
	case x < 9:
		b.ObjectLabels(t.from, "pod-7")
	default:
		b.ObjectLabels(t.from, "")
	}
	return b.Replicas(1), strings.Join(what, ", ")
}

// Corpus makes n requests from seed: creates of every judged kind,
// and updates that change labels, placement, both or neither.
func Corpus(seed uint64, n int, nss []*corev1.Namespace) []Request {
	r := rand.New(rand.NewPCG(seed, 0x63656c))
	kinds := len(policy.JudgedKinds())
	var out []Request
	for i := range n {
		ns := nss[r.IntN(len(nss))]
		name := fmt.Sprintf("c%04d", i)
		b, what := buildObject(r, i%kinds, ns.Name, name)
		req := Request{Op: admission.Create, Obj: b.Obj(), NS: ns, What: "create: " + what}
		if r.IntN(4) == 0 {
			req.Op = admission.Update
			switch r.IntN(3) {
			case 0:
				// Another draw of the same object: labels and placement change.
				ob, owhat := buildObject(r, i%kinds, ns.Name, name)
				req.Old, req.What = ob.Obj(), "update from "+owhat+" to "+what
			case 1:
				// Only the image changes.
				old := b.Obj().DeepCopyObject()
				policy.PodTemplates(old)[0].Spec.Containers[0].Image = "old"
				req.Old, req.What = old, "image-only update: "+what
			default:
				// Only the object's labels change.
				old := b.Obj().DeepCopyObject()
				old.(metav1.Object).SetLabels(map[string]string{"app": "before"})
				req.Old, req.What = old, "relabel: "+what
			}
		}
		out = append(out, req)
	}
	return out
}

// EngineAdmit is what dc-webhook does with the request: the mutation
// (pods on create only; other updates only when they change labels or
// templates, as the mutating webhook's rules and conditions say), then
// the engine's verdicts.
func EngineAdmit(e *policy.Engine, state policy.State, req Request) (runtime.Object, policy.Results) {
	obj := req.Obj.DeepCopyObject()
	_, isPod := obj.(*corev1.Pod)
	mutate := req.Op == admission.Create
	if req.Op == admission.Update && !isPod {
		om, nm := req.Old.(metav1.Object), obj.(metav1.Object)
		ot, nt := policy.PodTemplates(req.Old), policy.PodTemplates(obj)
		mutate = !maps.Equal(om.GetLabels(), nm.GetLabels()) || len(ot) != len(nt) ||
			(len(nt) > 0 && (!equality.Semantic.DeepEqual(ot[0].Meta, nt[0].Meta) || !equality.Semantic.DeepEqual(ot[0].Spec, nt[0].Spec)))
	}
	if mutate {
		e.Mutate(obj, req.NS.Name, state)
	}
	op := policy.OperationCreate
	if req.Op == admission.Update {
		op = policy.OperationUpdate
	}
	return obj, e.Evaluate(policy.Request{Operation: op, Object: obj, OldObject: req.Old, Namespace: req.NS.Name}, state)
}

// RuleOf maps the compiled policies' names to the rules they compile.
func RuleOf(policies []v1alpha1.PlacementPolicy) map[string]string {
	m := map[string]string{}
	for _, p := range policies {
		for _, r := range p.Spec.Pinned {
			m[celpolicy.ValidatingName(p.Name, r.Name)] = p.Name + "/" + r.Name
		}
	}
	return m
}

// NodeSelectorOf is the pod template's nodeSelector of obj, as the
// admission left it.
func NodeSelectorOf(obj runtime.Object) map[string]string {
	ts := policy.PodTemplates(obj)
	if len(ts) == 0 {
		return nil
	}
	return ts[0].Spec.NodeSelector
}
