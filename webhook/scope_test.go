package webhook

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiadmission "k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-dc/kubectl-dc/policy"
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
