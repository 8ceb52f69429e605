package policy

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

func beingDeleted(obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	return err == nil && m.GetDeletionTimestamp() != nil
}

// mirrorPodOf reports whether the request is about a mirror pod: the pod
// itself, or a Binding of one.
func mirrorPodOf(req Request, state State) bool {
	switch o := req.Object.(type) {
	case *corev1.Pod:
		return IsMirrorPod(o)
	case *corev1.Binding:
		if state != nil {
			return IsMirrorPod(state.Pod(req.Namespace, o.Name))
		}
	}
	return false
}
