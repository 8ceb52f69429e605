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
)

// Names in the validating webhook configuration that ScopeNodes edits.
const (
	nodesWebhook         = "nodes.placement.kubectl-dc.io"
	nodesLabelsCondition = "create-or-labels-change"
)

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

// ScopeNodes keeps the nodes webhook of the validating webhook
// configuration Name in step with the live policies: its
// create-or-labels-change condition sends only changes of the label keys
// the engine judges (Engine.NodeLabelKeys). It reads the configuration by
// list (the webhook's RBAC has no get on it) and writes it with Update, by
// name, as the certificate rotator does; conflicts are retried.
type ScopeNodes struct {
	Client kubernetes.Interface
	Name   string
}

// Sync sets the condition for keys and reports whether it changed the
// configuration. A configuration without the nodes webhook or its
// condition (a local layout, an edited manifest) is left alone.
func (s *ScopeNodes) Sync(ctx context.Context, keys []string) (changed bool, err error) {
	want := NodeLabelsCondition(keys)
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
		if !setNodesCondition(cfg, want) {
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

// setNodesCondition sets the nodes webhook's labels condition of cfg to
// expr and reports whether it changed anything.
func setNodesCondition(cfg *admissionregistrationv1.ValidatingWebhookConfiguration, expr string) bool {
	for i := range cfg.Webhooks {
		w := &cfg.Webhooks[i]
		if w.Name != nodesWebhook {
			continue
		}
		for j := range w.MatchConditions {
			if c := &w.MatchConditions[j]; c.Name == nodesLabelsCondition && c.Expression != expr {
				c.Expression = expr
				return true
			}
		}
	}
	return false
}
