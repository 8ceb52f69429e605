package policy

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// Scheme knows the client-go kinds and PlacementPolicy. Decode objects with
// Codecs.UniversalDeserializer() to get the typed objects the engine judges.
var Scheme = newScheme()

// Codecs are the serializers of Scheme.
var Codecs = serializer.NewCodecFactory(Scheme)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// WorkloadKinds are the pod and pod-template kinds the pinned and spread
// rules judge, each in the one version the engine takes. kubectl dc check
// and dc-webhook both read this list, so that they judge the same kinds.
var WorkloadKinds = kindsOf(
	&corev1.Pod{}, &appsv1.Deployment{}, &appsv1.ReplicaSet{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{},
	&batchv1.Job{}, &batchv1.CronJob{}, &corev1.ReplicationController{}, &corev1.PodTemplate{},
)

func kindsOf(objs ...runtime.Object) []schema.GroupVersionKind {
	out := make([]schema.GroupVersionKind, 0, len(objs))
	for _, o := range objs {
		gvks, _, err := Scheme.ObjectKinds(o)
		utilruntime.Must(err)
		out = append(out, gvks[0])
	}
	return out
}
