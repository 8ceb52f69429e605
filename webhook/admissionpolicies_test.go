package webhook

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

type discardLog struct{}

func (discardLog) Info(string, ...any)         {}
func (discardLog) Error(error, string, ...any) {}

func enginesOf(t *testing.T, policies ...*v1alpha1.PlacementPolicy) *EngineStore {
	t.Helper()
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	for _, p := range policies {
		if err := store.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	s := &EngineStore{Log: discardLog{}}
	s.Rebuild(context.Background(), store)
	return s
}

// writes counts the create, update and delete calls of cs.
func writes(cs *fake.Clientset) map[string]int {
	n := map[string]int{}
	for _, a := range cs.Actions() {
		if v := a.GetVerb(); v == "create" || v == "update" || v == "delete" {
			n[v+" "+a.GetResource().Resource]++
		}
	}
	return n
}

// TestAdmissionPoliciesReconcile: the compiled policies are written once,
// an unchanged compilation writes nothing, a policy edit updates and
// prunes, and webhook mode deletes everything written.
func TestAdmissionPoliciesReconcile(t *testing.T) {
	ctx := context.Background()
	pol := testutil.Policy("travis").Datacenters("pod-1", "pod-2").Pinned(
		testutil.PinnedRule("workers").MatchLabels("app", "worker").FromLabel("example.com/dc"),
		testutil.PinnedRule("brains").MatchLabels("app", "brain").Action(v1alpha1.ActionWarn),
	).Obj()
	cs := fake.NewClientset()
	nodes := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	_ = nodes.Add(testutil.Node("pod-1-a").InDC("pod-1").Obj())
	a := &AdmissionPolicies{Client: cs, Mode: PinnedCEL, Engines: enginesOf(t, pol), Nodes: nodes, Log: discardLog{}}
	if err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got := writes(cs)
	want := map[string]int{
		"create validatingadmissionpolicies": 2, "create validatingadmissionpolicybindings": 4, // two bindings per rule
		"create mutatingadmissionpolicies": 1, "create mutatingadmissionpolicybindings": 1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("first reconcile: %d %s, want %d (all writes: %v)", got[k], k, n, got)
		}
	}
	vaps, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{})
	if err != nil || len(vaps.Items) != 2 {
		t.Fatalf("listing the written policies: %v, %v", vaps, err)
	}

	cs.ClearActions()
	a.applied = "" // as after a resync: compare with what is live
	if err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if w := writes(cs); len(w) != 0 {
		t.Errorf("an unchanged compilation wrote %v", w)
	}

	// One rule fewer, and no injection: its policy, bindings and the
	// mutating policy go, and nothing else is written (the rule left keeps
	// its name: names follow rules, not their places in the list).
	edited := pol.DeepCopy()
	edited.Spec.Pinned = edited.Spec.Pinned[1:]
	a.Engines = enginesOf(t, edited)
	cs.ClearActions()
	if err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got = writes(cs)
	for k, n := range map[string]int{"delete validatingadmissionpolicybindings": 2, "delete validatingadmissionpolicies": 1, "delete mutatingadmissionpolicies": 1, "delete mutatingadmissionpolicybindings": 1} {
		if got[k] != n {
			t.Errorf("after removing a rule: %d %s, want %d (all writes: %v)", got[k], k, n, got)
		}
	}
	if len(got) != 4 {
		t.Errorf("after removing a rule: writes %v, want the 4 deletions alone", got)
	}

	a.Mode = PinnedWebhook
	if err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _ := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("webhook mode leaves %d bindings", len(l.Items))
	}
}

// TestAdmissionPoliciesLeaveOthersAlone: objects dc-webhook did not write
// are never deleted.
func TestAdmissionPoliciesLeaveOthersAlone(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	other := validatingPolicy("someone-elses")
	if _, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cs.PrependReactor("list", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if l, ok := action.(k8stesting.ListAction); ok && l.GetListRestrictions().Labels.String() != "app.kubernetes.io/managed-by=dc-webhook" {
			t.Errorf("listed %s without the managed-by selector", action.GetResource().Resource)
		}
		return false, nil, nil
	})
	a := &AdmissionPolicies{Client: cs, Mode: PinnedWebhook, Engines: enginesOf(t), Log: discardLog{}}
	if err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "someone-elses", metav1.GetOptions{}); err != nil {
		t.Errorf("a policy dc-webhook did not write is gone: %v", err)
	}
}

// TestScopeConditionsCEL: with the compiled policies enforcing, the
// workload webhooks no longer send what only pinned rules select (but
// still pods on a named node), and the mutating webhooks send nothing;
// with the webhook enforcing, the mutating webhooks send objects that
// carry any datacenterFromLabel key of the live policies, not only the
// example's.
func TestScopeConditionsCEL(t *testing.T) {
	pol := testutil.Policy("travis").Pinned(
		testutil.PinnedRule("workers").MatchLabels("app", "worker").FromLabel("example.com/dc-of"),
	).Spread(testutil.Etcd()).Value()
	eng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{pol})
	if err != nil {
		t.Fatal(err)
	}
	_, selected, mutate, _ := (&ScopeNodes{Pinned: PinnedCEL}).Conditions(eng)
	if mutate != "false" {
		t.Errorf("cel mode: has-datacenter-label = %q, want false", mutate)
	}
	if !strings.Contains(selected, `"component" in m`) || !strings.Contains(selected, "nodeName") {
		t.Errorf("cel mode: selected-by-a-rule = %q, want the spread selector and pinned pods on a named node", selected)
	}
	if strings.Contains(strings.Split(selected, "nodeName")[0], `"app" in m`) {
		t.Errorf("cel mode: selected-by-a-rule sends pinned workloads: %q", selected)
	}
	_, selected, mutate, _ = (&ScopeNodes{Pinned: PinnedWebhook}).Conditions(eng)
	if !strings.Contains(mutate, `"example.com/dc-of"`) {
		t.Errorf("webhook mode: has-datacenter-label = %q, want the policy's datacenterFromLabel key", mutate)
	}
	if !strings.Contains(selected, `"app" in m`) {
		t.Errorf("webhook mode: selected-by-a-rule = %q, want the pinned selector", selected)
	}
	if FromLabelCondition(nil) != "false" {
		t.Errorf("no datacenterFromLabel: %q, want false", FromLabelCondition(nil))
	}
}

func validatingPolicy(name string) *admissionregistrationv1.ValidatingAdmissionPolicy {
	return &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
