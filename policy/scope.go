package policy

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PinnedSelectors returns the label selectors of every pinned rule, in
// rule order: what ObjectSelectors holds for pinned rules alone, for
// configurations that leave pinned rules to the API server.
func (e *Engine) PinnedSelectors() []metav1.LabelSelector {
	var out []metav1.LabelSelector
	for _, r := range e.rules {
		if p, ok := r.(*pinnedRule); ok {
			out = append(out, p.rule.Selector)
		}
	}
	return out
}

// SpreadPodSelectors returns the member selectors of every pods spread
// rule, in rule order: what ObjectSelectors holds for spread rules alone.
func (e *Engine) SpreadPodSelectors() []metav1.LabelSelector {
	var out []metav1.LabelSelector
	for _, r := range e.rules {
		if s, ok := r.(*spreadRule); ok && s.rule.Pods != nil {
			out = append(out, s.rule.Pods.Selector)
		}
	}
	return out
}

// FromLabelKeys returns, sorted and deduplicated, the datacenterFromLabel
// keys of the pinned rules: an object that carries none of them is never
// changed by Mutate.
func (e *Engine) FromLabelKeys() []string {
	set := map[string]struct{}{}
	for _, r := range e.rules {
		if p, ok := r.(*pinnedRule); ok && p.rule.DatacenterFromLabel != "" {
			set[p.rule.DatacenterFromLabel] = struct{}{}
		}
	}
	return sortedKeys(set)
}
