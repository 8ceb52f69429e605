package policy

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// spreadRule is a compiled SpreadRule.
type spreadRule struct {
	ruleMeta
	rule    *v1alpha1.SpreadRule
	index   int
	podSel  labels.Selector
	nodeSel labels.Selector
}

func (r *spreadRule) evaluate(c *evalContext) {}
