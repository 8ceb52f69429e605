package policy

import (
	"k8s.io/apimachinery/pkg/runtime"
)

// matchesWorkload reports whether the pinned rule applies to obj: its
// selector matches the object's own labels or the labels of any of its pod
// templates, since the pods carry the template's labels and that is what
// operators select. Judging the controller's labels alone admits a
// controller whose every pod is then denied. unknownNS is as for matches.
func (r *pinnedRule) matchesWorkload(obj runtime.Object, objLabels map[string]string, namespace string, state State) (ok, unknownNS bool) {
	if ok, unknownNS = r.matches(objLabels, namespace, state); ok {
		return ok, unknownNS
	}
	if obj == nil {
		return false, false
	}
	for _, t := range PodTemplates(obj) {
		if t.Meta == nil {
			continue
		}
		if ok, unknownNS = r.matches(t.Meta.Labels, namespace, state); ok {
			return ok, unknownNS
		}
	}
	return false, false
}
