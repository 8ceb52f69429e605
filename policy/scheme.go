package policy

import (
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

// WorkloadKinds are the group, version and kind of every judged kind
// (JudgedKinds), in its order. kubectl dc check and dc-webhook both read
// this list, so that they judge the same kinds.
var WorkloadKinds = func() []schema.GroupVersionKind {
	out := make([]schema.GroupVersionKind, 0, len(judgedKinds))
	for _, k := range judgedKinds {
		out = append(out, k.GVK())
	}
	return out
}()
