package webhookha_test

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/ha"
)

// The declared kind of TestDeclaredUpdatesWithEveryReplicaDown.
var widgets = schema.GroupVersionResource{Group: "ha.e2e.kubectl-dc.io", Version: "v1", Resource: "widgets"}

// TestDeclaredUpdatesWithEveryReplicaDown: with every replica down, an
// update of an object of a kind a policy declares in spec.workloadKinds
// that leaves its labels and its template alone (a change of replicas, of
// status) is admitted, since no rule could care about it; one that changes
// the template or the labels is refused (failurePolicy Fail).
func TestDeclaredUpdatesWithEveryReplicaDown(t *testing.T) {
	c, f := env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, c)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	installWidgets(ctx, t, dyn)
	createPolicy(ctx, t, c, tu.Policy("e2e-declared").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(tu.PinnedRule("widgets").In("app", "e2e-widget")).Edit(func(p *v1alpha1.PlacementPolicy) {
		p.Spec.WorkloadKinds = []v1alpha1.WorkloadKind{{Group: widgets.Group, Kind: "Widget", TemplatePath: "spec.template"}}
	}).Obj())
	waitDeclaredScoped(ctx, t, c)

	tmpl, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&tu.Deployment(ns, "w").Labels("app", "e2e-widget").InDC("pod-1").Deployment().Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": widgets.GroupVersion().String(), "kind": "Widget",
		"metadata": map[string]any{"name": "pinned", "namespace": ns},
		"spec":     map[string]any{"replicas": int64(2), "template": tmpl},
	}}
	if _, err := dyn.Resource(widgets).Namespace(ns).Create(ctx, w, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a pinned Widget with the webhook up: %v", err)
	}
	unpinned := w.DeepCopy()
	unpinned.SetName("unpinned")
	unstructured.RemoveNestedField(unpinned.Object, "spec", "template", "spec", "nodeSelector")
	if _, err := dyn.Resource(widgets).Namespace(ns).Create(ctx, unpinned, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !ha.DeniedByPolicy(err) {
		t.Fatalf("an unpinned Widget with the webhook up: %v, want denied by the policy (the kind is judged)", err)
	}

	killEveryReplica(ctx, t, f)
	restarted := false
	defer func() {
		if !restarted {
			restart(context.Background(), t, f, f.Replicas...)
		}
	}()
	patch := func(p string, dryRun bool) error {
		opts := metav1.PatchOptions{}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		_, err := dyn.Resource(widgets).Namespace(ns).Patch(ctx, "pinned", types.MergePatchType, []byte(p), opts)
		return err
	}
	for _, p := range []string{`{"spec":{"replicas":0}}`, `{"status":{"phase":"Scaled"}}`} {
		if err := patch(p, false); err != nil {
			t.Errorf("patch %s (labels and template unchanged) with every replica down: %v, want admitted", p, err)
		}
	}
	for _, p := range []string{
		`{"spec":{"template":{"spec":{"nodeSelector":{"topology.kubernetes.io/zone":"pod-2"}}}}}`,
		`{"spec":{"template":{"metadata":{"labels":{"version":"2"}}}}}`,
		`{"metadata":{"labels":{"version":"2"}}}`,
	} {
		if err := patch(p, true); err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
			t.Errorf("patch %s with every replica down: %v, want refused (failurePolicy Fail)", p, err)
		}
	}

	restart(ctx, t, f, f.Replicas...)
	restarted = true
	if err := ha.WaitEnforced(ctx, c.Client(), ns); err != nil {
		t.Fatalf("enforcement did not resume on its own: %v", err)
	}
}

// installWidgets creates the Widget CRD (any spec kept as sent) for the
// test and waits until it serves.
func installWidgets(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	cluster.InstallCRD(ctx, t, dyn, widgets, "Widget")
}

// waitDeclaredScoped waits until the replicas have added the Widget rule
// to the validating and mutating workload webhooks (with the conditions
// that go with it, written in the same update).
func waitDeclaredScoped(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	t.Helper()
	cs := c.Client()
	hasRule := func(rules []admissionregistrationv1.RuleWithOperations) bool {
		for _, r := range rules {
			for _, g := range r.APIGroups {
				if g == widgets.Group {
					return true
				}
			}
		}
		return false
	}
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		v, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "dc-webhook", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		m, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "dc-webhook", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		found := 0
		for _, w := range v.Webhooks {
			if w.Name == "workloads.placement.kubectl-dc.io" && hasRule(w.Rules) {
				found++
			}
		}
		for _, w := range m.Webhooks {
			if w.Name == "workloads.placement.kubectl-dc.io" && hasRule(w.Rules) {
				found++
			}
		}
		return found == 2, nil
	})
	if err != nil {
		t.Fatalf("the workload webhooks were never sent Widgets: %v", err)
	}
}
