package testutil

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// ObjectBuilder builds a Pod or a workload with a pod template (Deployment,
// ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ReplicationController,
// PodTemplate). Template methods act on the pod spec; for a Pod, object and
// template metadata are the same.
type ObjectBuilder struct {
	obj   runtime.Object
	meta  *metav1.ObjectMeta
	tmeta *metav1.ObjectMeta
	spec  *corev1.PodSpec
	// sel is the workload's pod selector, kept equal to the template labels.
	sel      **metav1.LabelSelector
	replicas **int32
}

func container() []corev1.Container {
	return []corev1.Container{{Name: "main", Image: "registry.example/app:1"}}
}

func om(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

// Pod starts a pod with one container.
func Pod(namespace, name string) *ObjectBuilder {
	p := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: om(namespace, name)}
	p.Spec.Containers = container()
	return &ObjectBuilder{obj: p, meta: &p.ObjectMeta, tmeta: &p.ObjectMeta, spec: &p.Spec}
}

// Deployment starts a Deployment of one replica.
func Deployment(namespace, name string) *ObjectBuilder {
	d := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: om(namespace, name)}
	d.Spec.Template.Spec.Containers = container()
	b := &ObjectBuilder{obj: d, meta: &d.ObjectMeta, tmeta: &d.Spec.Template.ObjectMeta, spec: &d.Spec.Template.Spec, sel: &d.Spec.Selector, replicas: &d.Spec.Replicas}
	return b.Replicas(1)
}

// ReplicaSet starts a ReplicaSet of one replica.
func ReplicaSet(namespace, name string) *ObjectBuilder {
	d := &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}, ObjectMeta: om(namespace, name)}
	d.Spec.Template.Spec.Containers = container()
	b := &ObjectBuilder{obj: d, meta: &d.ObjectMeta, tmeta: &d.Spec.Template.ObjectMeta, spec: &d.Spec.Template.Spec, sel: &d.Spec.Selector, replicas: &d.Spec.Replicas}
	return b.Replicas(1)
}

// StatefulSet starts a StatefulSet of one replica.
func StatefulSet(namespace, name string) *ObjectBuilder {
	d := &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: om(namespace, name)}
	d.Spec.ServiceName = name
	d.Spec.Template.Spec.Containers = container()
	b := &ObjectBuilder{obj: d, meta: &d.ObjectMeta, tmeta: &d.Spec.Template.ObjectMeta, spec: &d.Spec.Template.Spec, sel: &d.Spec.Selector, replicas: &d.Spec.Replicas}
	return b.Replicas(1)
}

// DaemonSet starts a DaemonSet.
func DaemonSet(namespace, name string) *ObjectBuilder {
	d := &appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}, ObjectMeta: om(namespace, name)}
	d.Spec.Template.Spec.Containers = container()
	return &ObjectBuilder{obj: d, meta: &d.ObjectMeta, tmeta: &d.Spec.Template.ObjectMeta, spec: &d.Spec.Template.Spec, sel: &d.Spec.Selector}
}

// Job starts a Job.
func Job(namespace, name string) *ObjectBuilder {
	d := &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: om(namespace, name)}
	d.Spec.Template.Spec.Containers = container()
	d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &ObjectBuilder{obj: d, meta: &d.ObjectMeta, tmeta: &d.Spec.Template.ObjectMeta, spec: &d.Spec.Template.Spec}
}

// CronJob starts an hourly CronJob.
func CronJob(namespace, name string) *ObjectBuilder {
	d := &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: om(namespace, name)}
	d.Spec.Schedule = "@hourly"
	t := &d.Spec.JobTemplate.Spec.Template
	t.Spec.Containers = container()
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &ObjectBuilder{obj: d, meta: &d.ObjectMeta, tmeta: &t.ObjectMeta, spec: &t.Spec}
}

// ReplicationController starts a ReplicationController of one replica.
func ReplicationController(namespace, name string) *ObjectBuilder {
	d := &corev1.ReplicationController{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"}, ObjectMeta: om(namespace, name)}
	d.Spec.Template = &corev1.PodTemplateSpec{}
	d.Spec.Template.Spec.Containers = container()
	b := &ObjectBuilder{obj: d, meta: &d.ObjectMeta, tmeta: &d.Spec.Template.ObjectMeta, spec: &d.Spec.Template.Spec, replicas: &d.Spec.Replicas}
	return b.Replicas(1)
}

// PodTemplate starts a PodTemplate.
func PodTemplate(namespace, name string) *ObjectBuilder {
	d := &corev1.PodTemplate{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodTemplate"}, ObjectMeta: om(namespace, name)}
	d.Template.Spec.Containers = container()
	return &ObjectBuilder{obj: d, meta: &d.ObjectMeta, tmeta: &d.Template.ObjectMeta, spec: &d.Template.Spec}
}

// Kinds returns a builder for every kind the engine judges, in the order
// Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
// ReplicationController, PodTemplate, for table tests over all nine.
func Kinds(namespace, name string) []*ObjectBuilder {
	return []*ObjectBuilder{
		Pod(namespace, name), Deployment(namespace, name), ReplicaSet(namespace, name),
		StatefulSet(namespace, name), DaemonSet(namespace, name), Job(namespace, name),
		CronJob(namespace, name), ReplicationController(namespace, name), PodTemplate(namespace, name),
	}
}

// Labels sets labels on the object and its pod template, and makes the
// workload's selector match them.
func (b *ObjectBuilder) Labels(pairs ...string) *ObjectBuilder {
	merge(&b.meta.Labels, pairs)
	return b.TemplateLabels(pairs...)
}

// ObjectLabels sets labels on the object only.
func (b *ObjectBuilder) ObjectLabels(pairs ...string) *ObjectBuilder {
	merge(&b.meta.Labels, pairs)
	return b
}

// TemplateLabels sets labels on the pod template (and the workload's
// selector) only. For a Pod they are the pod's labels.
func (b *ObjectBuilder) TemplateLabels(pairs ...string) *ObjectBuilder {
	merge(&b.tmeta.Labels, pairs)
	if b.sel != nil {
		m := map[string]string{}
		for k, v := range b.tmeta.Labels {
			m[k] = v
		}
		*b.sel = &metav1.LabelSelector{MatchLabels: m}
	}
	return b
}

// Annotations sets annotations on the pod template (the pod for a Pod).
func (b *ObjectBuilder) Annotations(pairs ...string) *ObjectBuilder {
	merge(&b.tmeta.Annotations, pairs)
	return b
}

// NodeSelector sets nodeSelector entries from key/value pairs.
func (b *ObjectBuilder) NodeSelector(pairs ...string) *ObjectBuilder {
	merge(&b.spec.NodeSelector, pairs)
	return b
}

// InDC sets nodeSelector[Zone] = dc.
func (b *ObjectBuilder) InDC(dc string) *ObjectBuilder { return b.NodeSelector(Zone, dc) }

// NodeName sets spec.nodeName.
func (b *ObjectBuilder) NodeName(node string) *ObjectBuilder {
	b.spec.NodeName = node
	return b
}

// RequiredAffinity appends required node affinity terms (ORed).
func (b *ObjectBuilder) RequiredAffinity(terms ...corev1.NodeSelectorTerm) *ObjectBuilder {
	if b.spec.Affinity == nil {
		b.spec.Affinity = &corev1.Affinity{}
	}
	if b.spec.Affinity.NodeAffinity == nil {
		b.spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := b.spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
	}
	na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, terms...)
	return b
}

func (b *ObjectBuilder) templateSelector() *metav1.LabelSelector {
	m := map[string]string{}
	for k, v := range b.tmeta.Labels {
		m[k] = v
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

// TopologySpread appends a maxSkew 1 topology spread constraint on key with
// the given whenUnsatisfiable, selecting the template's current labels
// (call it after Labels).
func (b *ObjectBuilder) TopologySpread(key string, when corev1.UnsatisfiableConstraintAction) *ObjectBuilder {
	b.spec.TopologySpreadConstraints = append(b.spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
		MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: when, LabelSelector: b.templateSelector(),
	})
	return b
}

// PodAntiAffinity appends a required pod anti-affinity term on topologyKey
// selecting the template's current labels (call it after Labels).
func (b *ObjectBuilder) PodAntiAffinity(topologyKey string) *ObjectBuilder {
	if b.spec.Affinity == nil {
		b.spec.Affinity = &corev1.Affinity{}
	}
	if b.spec.Affinity.PodAntiAffinity == nil {
		b.spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{}
	}
	pa := b.spec.Affinity.PodAntiAffinity
	pa.RequiredDuringSchedulingIgnoredDuringExecution = append(pa.RequiredDuringSchedulingIgnoredDuringExecution, corev1.PodAffinityTerm{
		TopologyKey: topologyKey, LabelSelector: b.templateSelector(),
	})
	return b
}

// Replicas sets spec.replicas on kinds that have it; others ignore it.
func (b *ObjectBuilder) Replicas(n int32) *ObjectBuilder {
	if b.replicas != nil {
		*b.replicas = &n
	}
	return b
}

// Mirror marks a Pod as the mirror of a static pod.
func (b *ObjectBuilder) Mirror() *ObjectBuilder {
	return b.Annotations("kubernetes.io/config.mirror", "0123456789abcdef")
}

// Learner marks a member pod as a non-voting learner.
func (b *ObjectBuilder) Learner() *ObjectBuilder {
	return b.Annotations("placement.kubectl-dc.io/learner", "true")
}

// OwnedBy adds a controller owner reference of kind (apps/v1) and name.
func (b *ObjectBuilder) OwnedBy(kind, name string) *ObjectBuilder {
	t := true
	b.meta.OwnerReferences = append(b.meta.OwnerReferences, metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: &t,
	})
	return b
}

// Phase sets a Pod's status phase.
func (b *ObjectBuilder) Phase(p corev1.PodPhase) *ObjectBuilder {
	if pod, ok := b.obj.(*corev1.Pod); ok {
		pod.Status.Phase = p
	}
	return b
}

// Ready makes a Pod Running with its Ready condition set to ready.
func (b *ObjectBuilder) Ready(ready bool) *ObjectBuilder {
	if pod, ok := b.obj.(*corev1.Pod); ok {
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		pod.Status.Phase = corev1.PodRunning
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	}
	return b
}

// Deleting sets a deletion timestamp on the object.
func (b *ObjectBuilder) Deleting() *ObjectBuilder {
	now := metav1.Now()
	b.meta.DeletionTimestamp = &now
	return b
}

// Edit lets a test change the pod spec directly.
func (b *ObjectBuilder) Edit(f func(spec *corev1.PodSpec)) *ObjectBuilder {
	f(b.spec)
	return b
}

// Obj returns the object.
func (b *ObjectBuilder) Obj() runtime.Object { return b.obj }

// Kind returns the object's kind.
func (b *ObjectBuilder) Kind() string { return b.obj.GetObjectKind().GroupVersionKind().Kind }

// Pod returns the object as a Pod; it panics for other kinds.
func (b *ObjectBuilder) Pod() *corev1.Pod { return b.obj.(*corev1.Pod) }

// Deployment returns the object as a Deployment; it panics for other kinds.
func (b *ObjectBuilder) Deployment() *appsv1.Deployment { return b.obj.(*appsv1.Deployment) }

// StatefulSet returns the object as a StatefulSet; it panics for other kinds.
func (b *ObjectBuilder) StatefulSet() *appsv1.StatefulSet { return b.obj.(*appsv1.StatefulSet) }

// Spec returns the pod spec of the object.
func (b *ObjectBuilder) Spec() *corev1.PodSpec { return b.spec }

// OwnedByNode adds the controller owner reference a kubelet puts on the
// mirror of a static pod: the Node name with its uid (NodeRestriction
// checks both).
func (b *ObjectBuilder) OwnedByNode(name string, uid types.UID) *ObjectBuilder {
	t := true
	b.meta.OwnerReferences = append(b.meta.OwnerReferences, metav1.OwnerReference{
		APIVersion: "v1", Kind: "Node", Name: name, UID: uid, Controller: &t,
	})
	return b
}

// Finalizers adds finalizers to the object.
func (b *ObjectBuilder) Finalizers(finalizers ...string) *ObjectBuilder {
	b.meta.Finalizers = append(b.meta.Finalizers, finalizers...)
	return b
}
