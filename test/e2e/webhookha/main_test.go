// Package webhookha_test shows that dc-webhook, run as production runs it
// (three replicas behind its Service, reached at their endpoint addresses),
// never loses an answer under load and never locks the cluster: replica
// loss, every replica down or hung, certificate rotation, an API server
// restart and the loss of an etcd member, all on the real MacStadium
// control plane.
package webhookha_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/ha"
	"github.com/kubectl-dc/kubectl-dc/test/netns"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

// Network namespaces of this suite: dcha1..dcha3 on 10.213.11-13.0/30.
const (
	prefix     = "dcha"
	firstIndex = 11
	replicas   = 3
	// shutdownDelay is the replicas' --shutdown-delay: longer than the
	// prober needs to take a terminating replica out of the Service.
	shutdownDelay = 2 * time.Second
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	// client-go logs every request the load cancels at the end of a run.
	klog.SetLogger(logr.Discard())
	code := cluster.TestMain(m, cluster.Options{
		Topology: cluster.MacStadium(),
		ServeOn:  ha.RootIPs(firstIndex, replicas),
	})
	if fleet != nil {
		if err := fleet.Stop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
		}
	}
	os.Exit(code)
}

var (
	setupOnce sync.Once
	setupErr  error
	fleet     *ha.Fleet
)

// env returns the cluster with the CRD, the MacStadium policy and the
// replicas installed behind the Service, setting them up on first use.
func env(t *testing.T) (*cluster.Cluster, *ha.Fleet) {
	t.Helper()
	c := cluster.Require(t)
	if err := netns.Supported(); err != nil {
		t.Skipf("replicas run in network namespaces: %v (CI runs as root)", err)
	}
	setupOnce.Do(func() { setupErr = setup(c) })
	if setupErr != nil {
		t.Fatalf("setup: %v", setupErr)
	}
	return c, fleet
}

func setup(c *cluster.Cluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	manifests, err := cluster.ManifestsDir()
	if err != nil {
		return err
	}
	if err := webhooktest.InstallExample(ctx, c.RESTConfig(), manifests); err != nil {
		return err
	}
	bin, err := cluster.BuildBinary("./cmd/dc-webhook")
	if err != nil {
		return err
	}
	fleet, err = ha.Start(ctx, ha.Options{
		Cluster: c, Binary: bin, ManifestsDir: manifests, Replicas: replicas,
		Prefix: prefix, FirstIndex: firstIndex, ShutdownDelay: shutdownDelay,
		SerialisePlacements: true,
	})
	if err != nil {
		return err
	}
	return ha.WaitEnforced(ctx, c.Client(), "default")
}

// loadClient is an admin client without client-side rate limits.
func loadClient(c *cluster.Cluster) kubernetes.Interface {
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.QPS, cfg.Burst = -1, 0
	return kubernetes.NewForConfigOrDie(cfg)
}

// podReview is an AdmissionReview of creating pod.
func podReview(t *testing.T, pod *corev1.Pod) *admissionv1.AdmissionReview {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("e2e-" + pod.Name),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: pod.Namespace, Name: pod.Name,
			Operation: admissionv1.Create,
			UserInfo:  authenticationv1.UserInfo{Username: "e2e"},
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
}

// everyReplicaDecides waits until each replica, asked directly, gives
// want (true = allowed) for pod: their caches have caught up. After an API
// server outage that takes as long as client-go's reflectors back off:
// 0.8 s doubling to 30 s, each wait stretched by up to 100% jitter, so up
// to a minute once the outage is over.
func everyReplicaDecides(ctx context.Context, t *testing.T, f *ha.Fleet, pod *corev1.Pod, want bool) {
	t.Helper()
	review := podReview(t, pod)
	for _, r := range f.Replicas {
		var last string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			resp, err := r.Ask(ctx, f.CA(), "/validate", review)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			last = fmt.Sprintf("allowed=%v %v", resp.Allowed, resp.Result)
			return resp.Allowed == want, nil
		})
		if err != nil {
			t.Fatalf("replica %d never decided allowed=%v for pod %s: last answer %s", r.Index+1, want, pod.Name, last)
		}
	}
}
