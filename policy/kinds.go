package policy

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Kind is one workload kind the pinned and spread rules judge, in the one
// version the engine takes: the webhook configurations ask for it, kubectl
// dc check lists it, PodTemplates reads its templates.
type Kind struct {
	// Group is the API group, "" for the core group.
	Group string
	// Version is the API version the engine takes.
	Version string
	// Kind is the kind, as in TypeMeta.
	Kind string
	// Resource is the plural resource name, as in webhook rules and RBAC.
	Resource string
	// TemplatePaths are the field paths of the pod specs of an object of
	// the kind, in the order Templates returns them.
	TemplatePaths []*field.Path

	newObj    func() runtime.Object
	templates func(runtime.Object) []PodTemplate
}

// GVK returns the kind's group, version and kind.
func (k Kind) GVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
}

// GVR returns the kind's group, version and resource.
func (k Kind) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: k.Group, Version: k.Version, Resource: k.Resource}
}

// New returns an empty object of the kind, its TypeMeta set.
func (k Kind) New() runtime.Object {
	obj := k.newObj()
	obj.GetObjectKind().SetGroupVersionKind(k.GVK())
	return obj
}

// NewList returns an empty list of the kind (a DeploymentList, say), its
// TypeMeta set, to decode a LIST response into.
func (k Kind) NewList() runtime.Object {
	gvk := k.GVK()
	gvk.Kind += "List"
	obj, err := Scheme.New(gvk)
	if err != nil {
		// Every judged kind is in Scheme, with its list; a test checks it.
		panic("policy: no list of " + k.Kind + " in Scheme: " + err.Error())
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj
}

// Templates returns the pod templates of obj, nil when obj is not of the
// kind or has no template (a ReplicationController without one).
func (k Kind) Templates(obj runtime.Object) []PodTemplate { return k.templates(obj) }

// Field paths are immutable once built, so they are built once.
var (
	pathPodSpec         = field.NewPath("spec")
	pathTemplateSpec    = field.NewPath("spec", "template", "spec")
	pathCronJobSpec     = field.NewPath("spec", "jobTemplate", "spec", "template", "spec")
	pathPodTemplateSpec = field.NewPath("template", "spec")
)

// judgedKinds is the one list of the workload kinds the engine judges.
// Adding a kind here makes PodTemplates read it, the webhook decode it and
// kubectl dc check list it; the webhook configurations in manifests/ must
// then ask for it (a test fails until they do).
var judgedKinds = []Kind{
	{Group: "", Version: "v1", Kind: "Pod", Resource: "pods",
		TemplatePaths: []*field.Path{pathPodSpec},
		newObj:        func() runtime.Object { return &corev1.Pod{} },
		templates: func(obj runtime.Object) []PodTemplate {
			o := obj.(*corev1.Pod)
			return []PodTemplate{{Path: pathPodSpec, Meta: &o.ObjectMeta, Spec: &o.Spec}}
		}},
	{Group: "apps", Version: "v1", Kind: "Deployment", Resource: "deployments",
		TemplatePaths: []*field.Path{pathTemplateSpec},
		newObj:        func() runtime.Object { return &appsv1.Deployment{} },
		templates: func(obj runtime.Object) []PodTemplate {
			return tmpl(pathTemplateSpec, &obj.(*appsv1.Deployment).Spec.Template)
		}},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet", Resource: "replicasets",
		TemplatePaths: []*field.Path{pathTemplateSpec},
		newObj:        func() runtime.Object { return &appsv1.ReplicaSet{} },
		templates: func(obj runtime.Object) []PodTemplate {
			return tmpl(pathTemplateSpec, &obj.(*appsv1.ReplicaSet).Spec.Template)
		}},
	{Group: "apps", Version: "v1", Kind: "StatefulSet", Resource: "statefulsets",
		TemplatePaths: []*field.Path{pathTemplateSpec},
		newObj:        func() runtime.Object { return &appsv1.StatefulSet{} },
		templates: func(obj runtime.Object) []PodTemplate {
			return tmpl(pathTemplateSpec, &obj.(*appsv1.StatefulSet).Spec.Template)
		}},
	{Group: "apps", Version: "v1", Kind: "DaemonSet", Resource: "daemonsets",
		TemplatePaths: []*field.Path{pathTemplateSpec},
		newObj:        func() runtime.Object { return &appsv1.DaemonSet{} },
		templates: func(obj runtime.Object) []PodTemplate {
			return tmpl(pathTemplateSpec, &obj.(*appsv1.DaemonSet).Spec.Template)
		}},
	{Group: "batch", Version: "v1", Kind: "Job", Resource: "jobs",
		TemplatePaths: []*field.Path{pathTemplateSpec},
		newObj:        func() runtime.Object { return &batchv1.Job{} },
		templates: func(obj runtime.Object) []PodTemplate {
			return tmpl(pathTemplateSpec, &obj.(*batchv1.Job).Spec.Template)
		}},
	{Group: "batch", Version: "v1", Kind: "CronJob", Resource: "cronjobs",
		TemplatePaths: []*field.Path{pathCronJobSpec},
		newObj:        func() runtime.Object { return &batchv1.CronJob{} },
		templates: func(obj runtime.Object) []PodTemplate {
			return tmpl(pathCronJobSpec, &obj.(*batchv1.CronJob).Spec.JobTemplate.Spec.Template)
		}},
	{Group: "", Version: "v1", Kind: "ReplicationController", Resource: "replicationcontrollers",
		TemplatePaths: []*field.Path{pathTemplateSpec},
		newObj:        func() runtime.Object { return &corev1.ReplicationController{} },
		templates: func(obj runtime.Object) []PodTemplate {
			if t := obj.(*corev1.ReplicationController).Spec.Template; t != nil {
				return tmpl(pathTemplateSpec, t)
			}
			return nil
		}},
	{Group: "", Version: "v1", Kind: "PodTemplate", Resource: "podtemplates",
		TemplatePaths: []*field.Path{pathPodTemplateSpec},
		newObj:        func() runtime.Object { return &corev1.PodTemplate{} },
		templates: func(obj runtime.Object) []PodTemplate {
			return tmpl(pathPodTemplateSpec, &obj.(*corev1.PodTemplate).Template)
		}},
}

func tmpl(p *field.Path, t *corev1.PodTemplateSpec) []PodTemplate {
	return []PodTemplate{{Path: p, Meta: &t.ObjectMeta, Spec: &t.Spec}}
}

// judgedByType indexes judgedKinds by the Go type of their objects.
var judgedByType = func() map[reflect.Type]*Kind {
	m := make(map[reflect.Type]*Kind, len(judgedKinds))
	for i := range judgedKinds {
		m[reflect.TypeOf(judgedKinds[i].newObj())] = &judgedKinds[i]
	}
	return m
}()

// JudgedKinds returns the workload kinds the pinned and spread rules judge,
// in the order Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
// CronJob, ReplicationController, PodTemplate. The slice is the caller's.
func JudgedKinds() []Kind {
	return append([]Kind(nil), judgedKinds...)
}

// JudgedKindOf returns the judged kind of obj by its Go type (decoded
// objects often carry no TypeMeta), and false for any other object.
func JudgedKindOf(obj runtime.Object) (Kind, bool) {
	if k := judgedByType[reflect.TypeOf(obj)]; k != nil {
		return *k, true
	}
	return Kind{}, false
}

// JudgedKindFor returns the judged kind of group and kind gk, whatever the
// version, and false when gk is not judged.
func JudgedKindFor(gk schema.GroupKind) (Kind, bool) {
	for _, k := range judgedKinds {
		if k.Group == gk.Group && k.Kind == gk.Kind {
			return k, true
		}
	}
	return Kind{}, false
}
