package webhook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiadmission "k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// TestScopeNodesTooManyKeys: label keys too many for one match condition
// (the API server would refuse it, and the previous condition, which may
// leave out a key the policies now judge, would stay) make the nodes
// webhook's condition true: every Node write is sent.
func TestScopeNodesTooManyKeys(t *testing.T) {
	v, _, err := Configurations("../manifests", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(v)
	s := &ScopeNodes{Client: cs, Name: v.Name}
	var keys []string
	for i := range 400 {
		keys = append(keys, fmt.Sprintf("example.com/%s-%d", strings.Repeat("k", 240), i))
	}
	if n := len(NodeLabelsCondition(keys)); n <= maxConditionCodePoints {
		t.Fatalf("the condition of 400 long keys is only %d long: the test proves nothing", n)
	}
	if _, err := s.Sync(context.Background(), keys, SelectedCondition(nil), "", false, nil); err != nil {
		t.Fatal(err)
	}
	got, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), v.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range got.Webhooks {
		for _, c := range w.MatchConditions {
			if w.Name == nodesWebhook && c.Name == nodesLabelsCondition && c.Expression != "true" {
				t.Errorf("condition of %d code points written; want true", len(c.Expression))
			}
		}
	}
}

// TestScopeNodes: the nodes webhook's condition follows the live policies'
// label keys; nothing else of the configuration changes.
func TestScopeNodes(t *testing.T) {
	v, _, err := Configurations("../manifests", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(v)
	s := &ScopeNodes{Client: cs, Name: v.Name}
	keys := []string{"node-role.kubernetes.io/control-plane", "topology.kubernetes.io/zone"}
	changed, err := s.Sync(context.Background(), keys, SelectedCondition(nil), "", false, nil)
	if err != nil || !changed {
		t.Fatalf("Sync = %v, %v; want a change", changed, err)
	}
	got, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), v.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cond string
	for _, w := range got.Webhooks {
		for _, c := range w.MatchConditions {
			if w.Name == nodesWebhook && c.Name == nodesLabelsCondition {
				cond = c.Expression
			}
		}
	}
	if cond != NodeLabelsCondition(keys) || !strings.Contains(cond, `"topology.kubernetes.io/zone"`) {
		t.Errorf("condition = %q", cond)
	}
	if changed, err := s.Sync(context.Background(), keys, SelectedCondition(nil), "", false, nil); err != nil || changed {
		t.Errorf("second Sync = %v, %v; want no change", changed, err)
	}
	other := &ScopeNodes{Client: fake.NewClientset(&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "dc-webhook-local"}}), Name: "dc-webhook"}
	if changed, err := other.Sync(context.Background(), keys, SelectedCondition(nil), "", false, nil); err != nil || changed {
		t.Errorf("Sync without the configuration = %v, %v; want nothing done", changed, err)
	}
}

// TestSelectedConditionEveryJudgedKind: for every kind policy.JudgedKinds
// lists, the selected-by-a-rule condition reads the labels of its pod
// template where the kind keeps it, so an object selected only by its
// template's labels is sent and one selected by nothing is not; the
// condition and the engine cannot disagree on where a template lives.
func TestSelectedConditionEveryJudgedKind(t *testing.T) {
	sel := []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "worker"}}}
	sent := newSender(t, []admissionregistrationv1.MatchCondition{{Name: selectedCondition, Expression: SelectedCondition(sel)}})
	for _, k := range policy.JudgedKinds() {
		t.Run(k.Kind, func(t *testing.T) {
			for _, app := range []string{"worker", "web"} {
				obj := k.New()
				if rc, ok := obj.(*corev1.ReplicationController); ok {
					rc.Spec.Template = &corev1.PodTemplateSpec{}
				}
				for _, tmpl := range k.Templates(obj) {
					tmpl.Meta.Labels = map[string]string{"app": app}
				}
				if got, want := sent(apiadmission.Create, obj, nil, ""), app == "worker"; got != want {
					t.Errorf("%s with template label app=%s: sent = %v, want %v", k.Kind, app, got, want)
				}
			}
		})
	}
}

// crdMapper is a RESTMapper that learns Rollouts when reset, as discovery
// does once their CustomResourceDefinition is installed.
type crdMapper struct {
	meta.RESTMapper
	installed bool
	resets    int
}

func (m *crdMapper) Reset() {
	m.resets++
	rm := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Group: "argoproj.io", Version: "v1alpha1"}})
	if m.installed {
		rm.Add(schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"}, meta.RESTScopeNamespace)
	}
	m.RESTMapper = rm
}

// TestScopeDeclaredKinds: the workload webhooks, validating and mutating,
// get a CREATE and UPDATE rule for the resource of every kind the live
// policies declare, resolved by the mapper (which reads discovery again
// for a kind it does not know); a kind that cannot be resolved is named
// with its policy; the rules go when no policy declares the kind, and the
// manifests' own rules are left as they were.
func TestScopeDeclaredKinds(t *testing.T) {
	ctx := context.Background()
	v, m, err := Configurations("../manifests", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(v, m)
	mapper := &crdMapper{}
	mapper.Reset()
	s := &ScopeNodes{Client: cs, Name: v.Name, Mapper: mapper}
	declaringEng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{declaring()})
	if err != nil {
		t.Fatal(err)
	}
	plainEng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{macstadium(v1alpha1.ActionDeny)})
	if err != nil {
		t.Fatal(err)
	}
	sync := func(eng *policy.Engine, podRelabels bool) bool {
		t.Helper()
		keys, selected, mutate, _ := s.Conditions(eng)
		rules, _ := s.DeclaredRules(eng)
		changed, err := s.Sync(ctx, keys, selected, mutate, podRelabels, rules)
		if err != nil {
			t.Fatal(err)
		}
		return changed
	}
	// sends lists the webhooks, validating then mutating, with a rule for
	// rollouts.argoproj.io/v1alpha1 on CREATE and UPDATE.
	sends := func() []string {
		t.Helper()
		gv, _ := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, v.Name, metav1.GetOptions{})
		gm, _ := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, m.Name, metav1.GetOptions{})
		var out []string
		has := func(kind, name string, rules []admissionregistrationv1.RuleWithOperations) {
			for _, r := range rules {
				if slices.Equal(r.APIGroups, []string{"argoproj.io"}) && slices.Equal(r.APIVersions, []string{"v1alpha1"}) && slices.Equal(r.Resources, []string{"rollouts"}) &&
					slices.Equal(r.Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}) &&
					r.Scope != nil && *r.Scope == admissionregistrationv1.NamespacedScope {
					out = append(out, kind+" "+name)
				}
			}
		}
		for _, w := range gv.Webhooks {
			has("validating", w.Name, w.Rules)
		}
		for _, w := range gm.Webhooks {
			has("mutating", w.Name, w.Rules)
		}
		return out
	}

	rules, unresolved := s.DeclaredRules(declaringEng)
	if len(rules) != 0 || len(unresolved) != 1 || !strings.Contains(unresolved[0].Error(), "Rollout.argoproj.io, which policy macstadium declares") ||
		!strings.Contains(unresolved[0].Error(), "CustomResourceDefinition") || mapper.resets != 2 {
		t.Fatalf("before the CRD: rules %v, unresolved %v, resets %d; want none, the kind and its policy named, discovery read again", rules, unresolved, mapper.resets)
	}

	mapper.installed = true
	if !sync(declaringEng, false) {
		t.Fatal("Sync with a declared kind changed nothing")
	}
	want := []string{"validating workloads.placement.kubectl-dc.io", "validating kube-system.placement.kubectl-dc.io",
		"mutating workloads.placement.kubectl-dc.io", "mutating kube-system.placement.kubectl-dc.io"}
	if got := sends(); !slices.Equal(got, want) {
		t.Errorf("webhooks sent Rollouts: %v, want %v", got, want)
	}
	if sync(declaringEng, false) {
		t.Error("a second Sync changed the configurations again")
	}
	if !sync(declaringEng, true) || sync(declaringEng, true) {
		t.Error("the pod-relabel rule and the declared rules do not settle")
	}
	if sync(plainEng, false); len(sends()) != 0 {
		t.Errorf("rules left once no policy declares the kind: %v", sends())
	}
	gv, _ := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, v.Name, metav1.GetOptions{})
	gm, _ := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, m.Name, metav1.GetOptions{})
	for i := range v.Webhooks {
		if !equality.Semantic.DeepEqual(gv.Webhooks[i].Rules, v.Webhooks[i].Rules) {
			t.Errorf("validating %s: rules %v, want the manifests' %v", v.Webhooks[i].Name, gv.Webhooks[i].Rules, v.Webhooks[i].Rules)
		}
	}
	for i := range m.Webhooks {
		if !equality.Semantic.DeepEqual(gm.Webhooks[i].Rules, m.Webhooks[i].Rules) {
			t.Errorf("mutating %s: rules %v, want the manifests' %v", m.Webhooks[i].Name, gm.Webhooks[i].Rules, m.Webhooks[i].Rules)
		}
	}
}

// TestDeclaredUpdatesSentWhenTheyChangeTheTemplate: with the conditions a
// replica writes for the kinds the policies declare, the workload
// webhooks, validating and mutating, are sent an UPDATE of a declared kind
// only when it changes the object's labels or its template at the declared
// path (so a change of replicas succeeds with every replica down), every
// CREATE, and every request of a kind no policy declares; no object, not
// even one whose path holds no map, makes the conditions fail.
func TestDeclaredUpdatesSentWhenTheyChangeTheTemplate(t *testing.T) {
	ctx := context.Background()
	v, m, err := Configurations("../manifests", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(v, m)
	mapper := &crdMapper{installed: true}
	mapper.Reset()
	s := &ScopeNodes{Client: cs, Name: v.Name, Mapper: mapper}
	p := declaring()
	p.Spec.WorkloadKinds = append(p.Spec.WorkloadKinds, v1alpha1.WorkloadKind{Group: "ci.example.com", Kind: "Runner", TemplatePath: "spec.runner.pod-template"})
	eng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{p})
	if err != nil {
		t.Fatal(err)
	}
	keys, selected, mutate, podRelabels := s.Conditions(eng)
	rules, _ := s.DeclaredRules(eng)
	if _, err := s.Sync(ctx, keys, selected, mutate, podRelabels, rules); err != nil {
		t.Fatal(err)
	}
	gv, _ := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, v.Name, metav1.GetOptions{})
	gm, _ := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, m.Name, metav1.GetOptions{})

	rollout := func(edit ...func(u *unstructured.Unstructured)) *unstructured.Unstructured {
		u := rolloutOf(t, tu.Deployment("apps", "worker").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2"))
		_ = unstructured.SetNestedField(u.Object, int64(3), "spec", "replicas")
		for _, e := range edit {
			e(u)
		}
		return u
	}
	set := func(value any, path ...string) func(u *unstructured.Unstructured) {
		return func(u *unstructured.Unstructured) { _ = unstructured.SetNestedField(u.Object, value, path...) }
	}
	runner := func(edit ...func(u *unstructured.Unstructured)) *unstructured.Unstructured {
		u := rollout()
		u.SetAPIVersion("ci.example.com/v1")
		u.SetKind("Runner")
		tmpl, _, _ := unstructured.NestedMap(u.Object, "spec", "template")
		_ = unstructured.SetNestedMap(u.Object, map[string]any{"pod-template": tmpl}, "spec", "runner")
		for _, e := range edit {
			e(u)
		}
		return u
	}
	rollouts := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	runners := schema.GroupVersionResource{Group: "ci.example.com", Version: "v1", Resource: "runners"}
	others := schema.GroupVersionResource{Group: "ci.example.com", Version: "v1", Resource: "others"}
	cases := []struct {
		name     string
		op       apiadmission.Operation
		gvr      schema.GroupVersionResource
		obj, old *unstructured.Unstructured
		want     bool
	}{
		{"a create", apiadmission.Create, rollouts, rollout(), nil, true},
		{"a change of replicas only", apiadmission.Update, rollouts, rollout(set(int64(0), "spec", "replicas")), rollout(), false},
		{"a change of status only", apiadmission.Update, rollouts, rollout(set("Paused", "status", "phase")), rollout(), false},
		{"a change of the template's nodeSelector", apiadmission.Update, rollouts,
			rollout(set("pod-1", "spec", "template", "spec", "nodeSelector", "topology.kubernetes.io/zone")), rollout(), true},
		{"a change of the template's labels", apiadmission.Update, rollouts,
			rollout(set("web", "spec", "template", "metadata", "labels", "app")), rollout(), true},
		{"a change of the object's labels", apiadmission.Update, rollouts,
			rollout(set("v2", "metadata", "labels", "version")), rollout(), true},
		{"a template added", apiadmission.Update, rollouts,
			rollout(), rollout(func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, "spec", "template") }), true},
		{"no template before or after", apiadmission.Update, rollouts,
			rollout(set(int64(0), "spec", "replicas"), func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, "spec", "template") }),
			rollout(func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, "spec", "template") }), false},
		{"a spec that is no map", apiadmission.Update, rollouts,
			rollout(set([]any{"x"}, "spec")), rollout(set([]any{"y"}, "spec")), false},
		{"a spec that becomes a map", apiadmission.Update, rollouts, rollout(), rollout(set("x", "spec")), true},
		{"another kind's template path changed", apiadmission.Update, runners,
			runner(set("pod-1", "spec", "template", "spec", "nodeSelector", "topology.kubernetes.io/zone")), runner(), false},
		{"its own template path changed", apiadmission.Update, runners,
			runner(set("pod-1", "spec", "runner", "pod-template", "spec", "nodeSelector", "topology.kubernetes.io/zone")), runner(), true},
		{"a kind no policy declares", apiadmission.Update, others,
			runner(set("Other", "kind"), set(int64(0), "spec", "replicas")), runner(set("Other", "kind")), true},
	}
	for _, w := range []struct {
		kind  string
		conds []admissionregistrationv1.MatchCondition
	}{
		{"validating", conditionsOf(t, gv.Webhooks, "workloads.placement.kubectl-dc.io")},
		{"mutating", conditionsOf(t, gm.Webhooks, "workloads.placement.kubectl-dc.io")},
	} {
		sent := newMatcher(t, w.conds)
		for _, tc := range cases {
			t.Run(w.kind+"/"+tc.name, func(t *testing.T) {
				var old runtime.Object
				if tc.old != nil {
					old = tc.old
				}
				if got := sent(tc.op, tc.obj, old, tc.obj.GroupVersionKind(), tc.gvr, ""); got != tc.want {
					t.Errorf("sent = %v, want %v", got, tc.want)
				}
			})
		}
	}
}

// TestBuiltinKindsByGroupAndResource: the conditions know a built-in kind
// by its group and resource: a custom resource named deployments or pods
// in another group (a declared kind, its template elsewhere) is sent to
// the workload webhooks whatever its labels, and its update carrying a
// datacenterFromLabel key to the mutating webhooks (while some rule is
// audited), as the built-in kinds of those names are not.
func TestBuiltinKindsByGroupAndResource(t *testing.T) {
	sel := []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "worker"}}}
	object := func(apiVersion, kind string, labels map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"runner": map[string]any{"pod": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "worker"}}}}}}}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace("apps")
		u.SetName("worker")
		if labels != nil {
			_ = unstructured.SetNestedMap(u.Object, labels, "metadata", "labels")
		}
		return u
	}
	customDeployments := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "deployments"}
	customPods := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "pods"}
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	pods := schema.GroupVersionResource{Group: "", Version: "v1", Resource: "pods"}
	labelled := map[string]any{dcLabel: "pod-2"}
	cases := []struct {
		name string
		cond string
		op   apiadmission.Operation
		gvr  schema.GroupVersionResource
		obj  *unstructured.Unstructured
		want bool
	}{
		{"selected: custom deployments, template elsewhere", SelectedCondition(sel), apiadmission.Create, customDeployments,
			object("example.com/v1", "Deployment", nil), true},
		{"selected: apps deployments, no template", SelectedCondition(sel), apiadmission.Create, deployments,
			object("apps/v1", "Deployment", nil), false},
		{"mutate and audit: an update of custom pods with the label", MutateCondition([]string{dcLabel}, sel), apiadmission.Update, customPods,
			object("example.com/v1", "Pod", labelled), true},
		{"mutate and audit: an update of pods with the label", MutateCondition([]string{dcLabel}, sel), apiadmission.Update, pods,
			object("v1", "Pod", labelled), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sent := newMatcher(t, []admissionregistrationv1.MatchCondition{{Name: "c", Expression: tc.cond}})
			var old runtime.Object
			if tc.op == apiadmission.Update {
				old = tc.obj.DeepCopy()
			}
			if got := sent(tc.op, tc.obj, old, tc.obj.GroupVersionKind(), tc.gvr, ""); got != tc.want {
				t.Errorf("sent = %v, want %v", got, tc.want)
			}
		})
	}

	// With the manifests' own conditions and those a replica writes, an
	// update of the custom pods that changes their template only is sent
	// to the workload webhooks, validating and mutating.
	ctx := context.Background()
	v, m, err := Configurations("../manifests", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(v, m)
	s := &ScopeNodes{Client: cs, Name: v.Name}
	p := declaring()
	p.Spec.WorkloadKinds = append(p.Spec.WorkloadKinds, v1alpha1.WorkloadKind{Group: "example.com", Kind: "Pod", TemplatePath: "spec.runner.pod"})
	eng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{p})
	if err != nil {
		t.Fatal(err)
	}
	keys, selected, mutate, podRelabels := s.Conditions(eng)
	if _, err := s.Sync(ctx, keys, selected, mutate, podRelabels, nil); err != nil {
		t.Fatal(err)
	}
	gv, _ := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, v.Name, metav1.GetOptions{})
	gm, _ := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, m.Name, metav1.GetOptions{})
	old := object("example.com/v1", "Pod", labelled)
	obj := old.DeepCopy()
	_ = unstructured.SetNestedField(obj.Object, "pod-2", "spec", "runner", "pod", "spec", "nodeSelector", tu.Zone)
	for kind, conds := range map[string][]admissionregistrationv1.MatchCondition{
		"validating": conditionsOf(t, gv.Webhooks, "workloads.placement.kubectl-dc.io"),
		"mutating":   conditionsOf(t, gm.Webhooks, "workloads.placement.kubectl-dc.io"),
	} {
		if !newMatcher(t, conds)(apiadmission.Update, obj, old, obj.GroupVersionKind(), customPods, "") {
			t.Errorf("%s: a template change of the custom pods is not sent", kind)
		}
	}
}
