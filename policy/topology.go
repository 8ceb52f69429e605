package policy

import (
	corev1 "k8s.io/api/core/v1"
)

// Well-known labels and annotations the topology model reads.
const (
	// LabelControlPlane marks a control-plane node (kubeadm).
	LabelControlPlane = "node-role.kubernetes.io/control-plane"
	// LabelMaster is the control-plane label of older clusters.
	LabelMaster = "node-role.kubernetes.io/master"
	// AnnotationMirrorPod marks the API mirror of a static pod.
	AnnotationMirrorPod = "kubernetes.io/config.mirror"
	// AnnotationLearner marks a member pod that does not vote (an etcd
	// learner, say) when set to "true": spread rules never count it, and
	// quorum arithmetic leaves it out.
	AnnotationLearner = "placement.kubectl-dc.io/learner"
	// AnnotationEtcdClientURLs is the kubeadm annotation of etcd pods that
	// carries their advertised client URLs.
	AnnotationEtcdClientURLs = "kubeadm.kubernetes.io/etcd.advertise-client-urls"
)

// DatacenterOf returns the value of label on node, "" when the node is nil
// or unlabeled.
func DatacenterOf(node *corev1.Node, label string) string {
	if node == nil {
		return ""
	}
	return node.Labels[label]
}

// NodeReady reports whether the node's Ready condition is True.
func NodeReady(node *corev1.Node) bool {
	if node == nil {
		return false
	}
	for i := range node.Status.Conditions {
		c := &node.Status.Conditions[i]
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// NodeSchedulable reports whether new pods can land on the node: it is Ready
// and not cordoned.
func NodeSchedulable(node *corev1.Node) bool {
	return node != nil && !node.Spec.Unschedulable && NodeReady(node)
}

// IsControlPlane reports whether the node carries the control-plane (or
// legacy master) role label.
func IsControlPlane(node *corev1.Node) bool {
	if node == nil {
		return false
	}
	if _, ok := node.Labels[LabelControlPlane]; ok {
		return true
	}
	_, ok := node.Labels[LabelMaster]
	return ok
}

// IsMirrorPod reports whether the pod is the API mirror of a static pod.
// Rejecting a mirror pod does not stop the static pod; it only hides it.
func IsMirrorPod(pod *corev1.Pod) bool {
	if pod == nil {
		return false
	}
	_, ok := pod.Annotations[AnnotationMirrorPod]
	return ok
}

// IsLearner reports whether the pod is annotated as a non-voting member
// (AnnotationLearner=true).
func IsLearner(pod *corev1.Pod) bool {
	return pod != nil && pod.Annotations[AnnotationLearner] == "true"
}

// PodTerminal reports whether the pod has finished and no longer holds a
// place (Succeeded or Failed) or is being deleted.
func PodTerminal(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// PodReady reports whether pod is Running with its Ready condition true:
// a member that votes, a server that answers.
func PodReady(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
