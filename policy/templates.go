package policy

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
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
	pathPodSpec         = field.NewPath("spec")
	pathTemplateSpec    = field.NewPath("spec", "template", "spec")
	pathCronJobSpec     = field.NewPath("spec", "jobTemplate", "spec", "template", "spec")
	pathPodTemplateSpec = field.NewPath("template", "spec")
	pathNodeName        = field.NewPath("spec", "nodeName")
	pathReplicas        = field.NewPath("spec", "replicas")
	pathMetadataLabels  = field.NewPath("metadata", "labels")
	pathBindingTarget   = field.NewPath("target", "name")
)

// PodTemplates returns every pod template of a Pod, Deployment, ReplicaSet,
// StatefulSet, DaemonSet, Job, CronJob, ReplicationController or
// PodTemplate, and nil for any other object.
func PodTemplates(obj runtime.Object) []PodTemplate {
	switch o := obj.(type) {
	case *corev1.Pod:
		return []PodTemplate{{Path: pathPodSpec, Meta: &o.ObjectMeta, Spec: &o.Spec}}
	case *appsv1.Deployment:
		return tmpl(pathTemplateSpec, &o.Spec.Template)
	case *appsv1.ReplicaSet:
		return tmpl(pathTemplateSpec, &o.Spec.Template)
	case *appsv1.StatefulSet:
		return tmpl(pathTemplateSpec, &o.Spec.Template)
	case *appsv1.DaemonSet:
		return tmpl(pathTemplateSpec, &o.Spec.Template)
	case *batchv1.Job:
		return tmpl(pathTemplateSpec, &o.Spec.Template)
	case *batchv1.CronJob:
		return tmpl(pathCronJobSpec, &o.Spec.JobTemplate.Spec.Template)
	case *corev1.ReplicationController:
		if o.Spec.Template == nil {
			return nil
		}
		return tmpl(pathTemplateSpec, o.Spec.Template)
	case *corev1.PodTemplate:
		return tmpl(pathPodTemplateSpec, &o.Template)
	}
	return nil
}

func tmpl(p *field.Path, t *corev1.PodTemplateSpec) []PodTemplate {
	return []PodTemplate{{Path: p, Meta: &t.ObjectMeta, Spec: &t.Spec}}
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
	switch obj.(type) {
	case *corev1.Pod:
		return "Pod"
	case *appsv1.Deployment:
		return "Deployment"
	case *appsv1.ReplicaSet:
		return "ReplicaSet"
	case *appsv1.StatefulSet:
		return "StatefulSet"
	case *appsv1.DaemonSet:
		return "DaemonSet"
	case *batchv1.Job:
		return "Job"
	case *batchv1.CronJob:
		return "CronJob"
	case *corev1.ReplicationController:
		return "ReplicationController"
	case *corev1.PodTemplate:
		return "PodTemplate"
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
