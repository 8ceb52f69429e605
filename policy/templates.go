package policy

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PodTemplate is one pod spec inside an object, with where it lives.
type PodTemplate struct {
	// Path is the field path of the pod spec: spec for a Pod,
	// spec.template.spec for a Deployment, spec.jobTemplate.spec.template.spec
	// for a CronJob, template.spec for a PodTemplate.
	Path *field.Path
	// Meta is the metadata of the pods the template makes (the Pod's own
	// metadata for a Pod).
	Meta *metav1.ObjectMeta
	// Spec is the pod spec; changes to it change the object.
	Spec *corev1.PodSpec
}

// Field paths are immutable once built, so they are built once.
var (
	pathNodeName       = field.NewPath("spec", "nodeName")
	pathReplicas       = field.NewPath("spec", "replicas")
	pathMetadataLabels = field.NewPath("metadata", "labels")
	pathBindingTarget  = field.NewPath("target", "name")
)

// PodTemplates returns every pod template of an object of a judged kind
// (JudgedKinds: Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
// CronJob, ReplicationController, PodTemplate), and nil for any other
// object.
func PodTemplates(obj runtime.Object) []PodTemplate {
	if k := judgedByType[reflect.TypeOf(obj)]; k != nil {
		return k.templates(obj)
	}
	return nil
}

// ObjectRefOf names obj for results. The kind comes from the Go type for the
// kinds the engine knows (decoded objects often carry no TypeMeta), else
// from the object's TypeMeta or Scheme.
func ObjectRefOf(obj runtime.Object) ObjectRef {
	var ref ObjectRef
	if obj == nil {
		return ref
	}
	ref.Kind = kindOf(obj)
	if m, err := meta.Accessor(obj); err == nil {
		ref.Namespace, ref.Name = m.GetNamespace(), m.GetName()
	}
	return ref
}

func kindOf(obj runtime.Object) string {
	if k := judgedByType[reflect.TypeOf(obj)]; k != nil {
		return k.Kind
	}
	switch obj.(type) {
	case *corev1.Node:
		return "Node"
	case *corev1.Binding:
		return "Binding"
	}
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	if gvks, _, err := Scheme.ObjectKinds(obj); err == nil && len(gvks) > 0 {
		return gvks[0].Kind
	}
	return ""
}
