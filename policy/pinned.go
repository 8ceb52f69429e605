package policy

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// pinnedRule is a compiled PinnedRule.
type pinnedRule struct {
	ruleMeta
	rule  *v1alpha1.PinnedRule
	sel   labels.Selector
	nsSel labels.Selector // nil: every namespace
}

func (r *pinnedRule) evaluate(c *evalContext) {}

func (r *pinnedRule) mutate(obj runtime.Object, namespace string, state State) bool { return false }

var _ = field.NewPath
