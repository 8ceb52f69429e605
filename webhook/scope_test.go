package webhook

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

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
	changed, err := s.Sync(context.Background(), keys, SelectedCondition(nil), "", false)
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
	if changed, err := s.Sync(context.Background(), keys, SelectedCondition(nil), "", false); err != nil || changed {
		t.Errorf("second Sync = %v, %v; want no change", changed, err)
	}
	other := &ScopeNodes{Client: fake.NewClientset(&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "dc-webhook-local"}}), Name: "dc-webhook"}
	if changed, err := other.Sync(context.Background(), keys, SelectedCondition(nil), "", false); err != nil || changed {
		t.Errorf("Sync without the configuration = %v, %v; want nothing done", changed, err)
	}
}
