package policy

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// Scheme knows the client-go kinds and PlacementPolicy. Decode objects with
// Codecs.UniversalDeserializer() to get the typed objects the engine judges.
var Scheme = runtime.NewScheme()

// Codecs are the serializers of Scheme.
var Codecs = serializer.NewCodecFactory(Scheme)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(v1alpha1.AddToScheme(Scheme))
}
