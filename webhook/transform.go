package webhook

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// The transforms below run before an object enters an informer cache and
// keep only what the rule engine reads, so that a cluster of thousands of
// nodes and member pods costs little memory. Objects of other types (a
// DeletedFinalStateUnknown, say) pass through unchanged.

// stripMeta keeps identity, labels and owners; annotations only when keep
// names them.
func stripMeta(m *metav1.ObjectMeta, keep ...string) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		Generation:        m.Generation,
		Labels:            m.Labels,
		OwnerReferences:   m.OwnerReferences,
		DeletionTimestamp: m.DeletionTimestamp,
		CreationTimestamp: m.CreationTimestamp,
	}
	for _, k := range keep {
		if v, ok := m.Annotations[k]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	return out
}

// TransformNode keeps labels, schedulability, taints and the Ready
// condition of a Node.
func TransformNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{
		TypeMeta:   n.TypeMeta,
		ObjectMeta: stripMeta(&n.ObjectMeta),
		Spec:       corev1.NodeSpec{Unschedulable: n.Spec.Unschedulable, Taints: n.Spec.Taints},
	}
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{n.Status.Conditions[i]}
			break
		}
	}
	return out, nil
}

// TransformPod keeps what spread rules count: labels, owners, the
// annotations the engine reads (mirror, learner, etcd client URLs), the
// node, phase and Ready condition. Containers, volumes and most of status go.
func TransformPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		TypeMeta:   p.TypeMeta,
		ObjectMeta: stripMeta(&p.ObjectMeta, policy.AnnotationMirrorPod, policy.AnnotationLearner, policy.AnnotationEtcdClientURLs),
		Spec: corev1.PodSpec{
			NodeName:      p.Spec.NodeName,
			NodeSelector:  p.Spec.NodeSelector,
			SchedulerName: p.Spec.SchedulerName,
		},
		Status: corev1.PodStatus{Phase: p.Status.Phase},
	}
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			out.Status.Conditions = []corev1.PodCondition{p.Status.Conditions[i]}
			break
		}
	}
	return out, nil
}

// TransformStatefulSet keeps replicas, the selector and the pod template's
// metadata: the N of a spread rule without expectedMembers, verified
// against its members, and what a scale of it is judged on.
func TransformStatefulSet(obj any) (any, error) {
	s, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return obj, nil
	}
	// The template's labels and learner annotation say whether its pods
	// are members, for a scale of the StatefulSet (statefulsets/scale
	// carries only the replicas).
	return &appsv1.StatefulSet{
		TypeMeta:   s.TypeMeta,
		ObjectMeta: stripMeta(&s.ObjectMeta),
		Spec: appsv1.StatefulSetSpec{Replicas: s.Spec.Replicas, Selector: s.Spec.Selector,
			Template: corev1.PodTemplateSpec{ObjectMeta: stripMeta(&s.Spec.Template.ObjectMeta, policy.AnnotationLearner)}},
	}, nil
}

// TransformNamespace keeps a Namespace's name and labels, all that
// namespaceSelectors read.
func TransformNamespace(obj any) (any, error) {
	n, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{
		TypeMeta:   n.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels},
	}, nil
}

// TransformPolicy drops the managed fields of a PlacementPolicy.
func TransformPolicy(obj any) (any, error) {
	p, ok := obj.(*v1alpha1.PlacementPolicy)
	if !ok {
		return obj, nil
	}
	p.ManagedFields = nil
	p.Annotations = nil
	return p, nil
}
