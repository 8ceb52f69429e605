package webhook

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
)

// Names in the validating webhook configuration that ScopeNodes edits.
const (
	nodesWebhook         = "nodes.placement.kubectl-dc.io"
	nodesLabelsCondition = "create-or-labels-change"
	selectedCondition    = "selected-by-a-rule"
)

// workloadWebhooks are the webhooks whose selected-by-a-rule condition
// ScopeNodes keeps in step with the rules' selectors.
var workloadWebhooks = []string{"workloads.placement.kubectl-dc.io", "kube-system.placement.kubectl-dc.io"}

// templateLabels is the CEL expression of the pod template labels of the
// object of a workload request ({} for a Pod).
const templateLabels = "(request.resource.resource == 'cronjobs' ? object.?spec.?jobTemplate.?spec.?template.?metadata.?labels.orValue({}) : " +
	"request.resource.resource == 'podtemplates' ? object.?template.?metadata.?labels.orValue({}) : " +
	"object.?spec.?template.?metadata.?labels.orValue({}))"

// SelectedCondition returns the CEL expression of the workload webhooks'
// selected-by-a-rule condition: a request is sent when the object's own
// labels or its pod template's labels match one of selectors (the rules'),
// and always for a scale or a binding, which carry no labels, and for any
// kind but the built-in workloads. Namespaces
// are not narrowed: namespaceSelectors are left to the engine. An empty
// selector matches everything; no selector at all, nothing.
func SelectedCondition(selectors []metav1.LabelSelector) string {
	var terms []string
	for i := range selectors {
		s := &selectors[i]
		if len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
			return "true"
		}
		expr, ok := celpolicy.SelectorExpr(s, "m")
		if !ok {
			// A selector ValidatePolicy refused never reaches an engine;
			// should one, send everything rather than guess.
			return "true"
		}
		terms = append(terms, expr)
	}
	if len(terms) == 0 {
		terms = []string{"false"}
	}
	return "request.?subResource.orValue('') in ['scale', 'binding'] || " +
		// Kinds whose template paths this expression does not know (kinds a
		// policy declares) are always sent.
		"!(request.resource.resource in ['pods', 'deployments', 'replicasets', 'statefulsets', 'daemonsets', 'jobs', 'cronjobs', 'replicationcontrollers', 'podtemplates']) || " +
		"[object.?metadata.?labels.orValue({}), " + templateLabels + "].exists(m, " + strings.Join(terms, " || ") + ")"
}

// NodeLabelsCondition returns the CEL expression of the nodes webhook's
// create-or-labels-change condition for keys: a Node creation, or an update
// that adds, removes or changes one of keys. The nodes webhook fails
// closed, so every label change it is sent is refused while no replica
// answers: sending only the changes the rules judge keeps the others
// (roles, taints' labels, anything a node agent sets) working then.
func NodeLabelsCondition(keys []string) string {
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = strconv.Quote(k)
	}
	return "request.operation == 'CREATE' || [" + strings.Join(quoted, ", ") + "].exists(k, " +
		"(has(object.metadata.labels) && k in object.metadata.labels) != (has(oldObject.metadata.labels) && k in oldObject.metadata.labels) || " +
		"(has(object.metadata.labels) && k in object.metadata.labels && object.metadata.labels[k] != oldObject.metadata.labels[k]))"
}

// ScopeNodes keeps the validating webhook configuration Name in step with
// the live policies: the nodes webhook's create-or-labels-change condition
// sends only changes of the label keys the engine judges
// (Engine.NodeLabelKeys), and the workload webhooks' selected-by-a-rule
// condition only objects some rule's selector matches
// (Engine.ObjectSelectors), so that with every replica down nothing
// outside the policies' reach is refused. It reads the configuration by
// list (the webhook's RBAC has no get on it) and writes it with Update, by
// name, as the certificate rotator does; conflicts are retried.
type ScopeNodes struct {
	Client kubernetes.Interface
	Name   string
}

// Sync sets the nodes condition for keys and the workload webhooks'
// selected-by-a-rule condition for selectors, and reports whether it
// changed the configuration. Webhooks or conditions the configuration
// lacks (a local layout, an edited manifest) are left alone.
func (s *ScopeNodes) Sync(ctx context.Context, keys []string, selectors []metav1.LabelSelector) (changed bool, err error) {
	want := NodeLabelsCondition(keys)
	selected := SelectedCondition(selectors)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		changed = false
		list, err := s.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", s.Name).String(),
		})
		if err != nil {
			return err
		}
		var cfg *admissionregistrationv1.ValidatingWebhookConfiguration
		for i := range list.Items {
			if list.Items[i].Name == s.Name {
				cfg = list.Items[i].DeepCopy()
			}
		}
		if cfg == nil {
			return nil
		}
		edited := setCondition(cfg, nodesWebhook, nodesLabelsCondition, want)
		for _, w := range workloadWebhooks {
			edited = setCondition(cfg, w, selectedCondition, selected) || edited
		}
		if !edited {
			return nil
		}
		if _, err := s.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, cfg, metav1.UpdateOptions{FieldManager: "dc-webhook"}); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("scoping the nodes webhook of ValidatingWebhookConfiguration %s: %w", s.Name, err)
	}
	return changed, nil
}

// setCondition sets the condition named cond of the webhook named webhook
// in cfg to expr and reports whether it changed anything.
func setCondition(cfg *admissionregistrationv1.ValidatingWebhookConfiguration, webhook, cond, expr string) bool {
	for i := range cfg.Webhooks {
		w := &cfg.Webhooks[i]
		if w.Name != webhook {
			continue
		}
		for j := range w.MatchConditions {
			if c := &w.MatchConditions[j]; c.Name == cond && c.Expression != expr {
				c.Expression = expr
				return true
			}
		}
	}
	return false
}
