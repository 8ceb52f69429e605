package webhooktest

import (
	"context"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-dc/kubectl-dc/webhook"
)

// CreateNeverCalled creates validating and mutating webhook configurations
// named name, pointing at the Service dc-webhook of namespace but matching
// nothing (ConfigMaps in namespaces no test labels), and deletes them at
// the end of t: what the certificate rotator injects its CA into when no
// Service exists to call. It returns what it created.
func CreateNeverCalled(ctx context.Context, t testing.TB, cs kubernetes.Interface, namespace, name string) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration) {
	t.Helper()
	none := admissionregistrationv1.SideEffectClassNone
	ignore := admissionregistrationv1.Ignore
	path := webhook.PathValidate
	cc := admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: namespace, Name: "dc-webhook", Path: &path}}
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
	}}
	never := &metav1.LabelSelector{MatchLabels: map[string]string{"e2e.kubectl-dc.io/never": "true"}}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: []admissionregistrationv1.ValidatingWebhook{{
		Name: "never.placement.kubectl-dc.io", ClientConfig: cc, Rules: rules, NamespaceSelector: never,
		SideEffects: &none, FailurePolicy: &ignore, AdmissionReviewVersions: []string{"v1"},
	}}}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: []admissionregistrationv1.MutatingWebhook{{
		Name: "never.placement.kubectl-dc.io", ClientConfig: cc, Rules: rules, NamespaceSelector: never,
		SideEffects: &none, FailurePolicy: &ignore, AdmissionReviewVersions: []string{"v1"},
	}}}
	adm := cs.AdmissionregistrationV1()
	if _, err := adm.ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adm.ValidatingWebhookConfigurations().Delete(context.Background(), v.Name, metav1.DeleteOptions{})
	})
	if _, err := adm.MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adm.MutatingWebhookConfigurations().Delete(context.Background(), m.Name, metav1.DeleteOptions{})
	})
	return v, m
}
