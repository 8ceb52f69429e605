package drain

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// dRoot puts a verb under a root with kubectl's connection flags (-n
// among them), as kubectl dc does.
func dRoot(sub *cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use: "kubectl-dc", SilenceErrors: true, SilenceUsage: true,
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl dc"},
	}
	genericclioptions.NewConfigFlags(true).AddFlags(root.PersistentFlags())
	root.AddCommand(sub)
	return root
}

// dListRecorder records the Limit of every LIST a fake client is sent,
// by resource.
type dListRecorder struct {
	mu     sync.Mutex
	limits map[string][]int64
}

func (r *dListRecorder) record(resource string, limit int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limits[resource] = append(r.limits[resource], limit)
}

func (r *dListRecorder) reactor(a k8stesting.Action) (bool, runtime.Object, error) {
	l := a.(k8stesting.ListActionImpl)
	r.record(l.Resource.Resource, l.ListOptions.Limit)
	return false, nil, nil
}

// dRecordingDynamic records the Limit of the LISTs of a dynamic client:
// the fake's list actions of cluster-scoped resources drop it.
type dRecordingDynamic struct {
	dynamic.Interface
	rec *dListRecorder
}

func (d dRecordingDynamic) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return dRecordingResource{d.Interface.Resource(gvr), gvr.Resource, d.rec}
}

type dRecordingResource struct {
	dynamic.NamespaceableResourceInterface
	resource string
	rec      *dListRecorder
}

func (r dRecordingResource) List(ctx context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	r.rec.record(r.resource, opts.Limit)
	return r.NamespaceableResourceInterface.List(ctx, opts)
}

// TestDrainChunkSizeIsThePageSizeOfEveryList: --chunk-size is the Limit of
// every LIST the drain makes: the snapshot's (nodes, pods, PDBs,
// ReplicaSets, the control plane, the PlacementPolicies) and the relist of
// the wait; 0 sends no Limit (no paging), as kubectl drain.
func TestDrainChunkSizeIsThePageSizeOfEveryList(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int64
	}{
		{args: []string{"--chunk-size", "7"}, want: 7},
		{args: []string{"--chunk-size=0"}, want: 0},
		{want: 500},
	} {
		t.Run(strings.Join(append([]string{"drain"}, tt.args...), " "), func(t *testing.T) {
			cs, watching := dWatchedClientset(dFixture()...)
			dEvictWhenWatched(cs, watching, nil)
			o, out, errOut := newDTestDrain(cs)
			o.Timeout = 20 * time.Second
			rec := &dListRecorder{limits: map[string][]int64{}}
			cs.PrependReactor("list", "*", rec.reactor)
			o.dynamic = dRecordingDynamic{dynamicfake.NewSimpleDynamicClientWithCustomListKinds(policy.Scheme,
				map[schema.GroupVersionResource]string{cluster.PolicyGVR: "PlacementPolicyList"},
				testutil.Policy("dcs").Datacenters("pod-1", "pod-2", "pod-3").Obj()), rec}

			root := dRoot(newCmdDrain(o))
			root.SetArgs(append([]string{"drain", "pod-2"}, tt.args...))
			if err := root.ExecuteContext(context.Background()); err != nil {
				t.Fatalf("drain = %v\n%s\n%s", err, out, errOut)
			}
			for _, r := range []string{"nodes", "pods", "poddisruptionbudgets", "replicasets", "endpointslices", "placementpolicies"} {
				if len(rec.limits[r]) == 0 {
					t.Errorf("no LIST of %s recorded; lists: %v", r, rec.limits)
				}
			}
			// kube-system's control plane and every pod.
			if n := len(rec.limits["pods"]); n != 2 {
				t.Errorf("%d LISTs of pods, want the snapshot's two", n)
			}
			for r, limits := range rec.limits {
				for _, l := range limits {
					if l != tt.want {
						t.Errorf("LIST %s limit = %d, want %d (--chunk-size)", r, l, tt.want)
					}
				}
			}
		})
	}
}

// TestGoneWaiterRelistPageSize: the wait's relist (before its first watch,
// and after a watch fails) lists with the Lister's page size.
func TestGoneWaiterRelistPageSize(t *testing.T) {
	for _, tt := range []struct {
		pageSize, want int64
	}{{7, 7}, {cluster.NoPaging, 0}, {0, cluster.PageSize}} {
		cs := fake.NewClientset(dPod("apps", "b", "n1", "x").Obj())
		rec := &dListRecorder{limits: map[string][]int64{}}
		cs.PrependReactor("list", "*", rec.reactor)
		w := &goneWaiter{Client: cs, Lister: cluster.Lister{Client: cs, PageSize: tt.pageSize}}
		// apps/a is not there: the relist finds it gone and the wait ends.
		if err := w.Wait(context.Background(), "", []evictTarget{{Namespace: "apps", Name: "a", UID: "uid-apps-a"}}); err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if got := rec.limits["pods"]; len(got) != 1 || got[0] != tt.want {
			t.Errorf("page size %d: LIST limits of pods = %v, want [%d]", tt.pageSize, got, tt.want)
		}
	}
}

// TestIgnoredNamespaceIsSaid: drain and uncordon work on every namespace
// of a datacenter; -n is warned about on stderr, never ignored silently,
// and the verb still does its work.
func TestIgnoredNamespaceIsSaid(t *testing.T) {
	const warning = "Warning: -n/--namespace is ignored: kubectl dc %s works on every namespace (a datacenter spans namespaces)"
	t.Run("drain", func(t *testing.T) {
		cs, _ := dWatchedClientset(dFixture()...)
		o, out, errOut := newDTestDrain(cs)
		root := dRoot(newCmdDrain(o))
		root.SetArgs([]string{"drain", "pod-2", "--dry-run", "-n", "apps"})
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("drain --dry-run -n apps = %v\n%s", err, errOut)
		}
		if want := strings.Replace(warning, "%s", "drain", 1) + "; --pod-selector limits the pods\n"; !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
		if !strings.Contains(out.String(), "Drain plan for datacenter pod-2") {
			t.Errorf("the plan is not printed:\n%s", out)
		}
	})
	t.Run("uncordon", func(t *testing.T) {
		ours := dNode("pod-2-worker-1", "pod-2").Cordoned().Obj()
		ours.Annotations = map[string]string{AnnotationCordonedBy: "tester@host"}
		streams, _, out, errOut := genericiooptions.NewTestIOStreams()
		o := NewUncordonOptions(nil, streams)
		o.client = fake.NewClientset(ours)
		root := dRoot(newCmdUncordon(o))
		root.SetArgs([]string{"uncordon", "pod-2", "--namespace=apps"})
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("uncordon --namespace=apps = %v\n%s", err, errOut)
		}
		if want := strings.Replace(warning, "%s", "uncordon", 1) + "\n"; !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
		if out.String() != "node/pod-2-worker-1 uncordoned\n" {
			t.Errorf("stdout = %q", out)
		}
	})
	t.Run("not given", func(t *testing.T) {
		cs, _ := dWatchedClientset(dFixture()...)
		o, _, errOut := newDTestDrain(cs)
		root := dRoot(newCmdDrain(o))
		root.SetArgs([]string{"drain", "pod-2", "--dry-run"})
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("drain --dry-run = %v\n%s", err, errOut)
		}
		if strings.Contains(errOut.String(), "--namespace") {
			t.Errorf("warning without -n:\n%s", errOut)
		}
	})
}

// TestDrainReadsEndpoint: the plan judges the control-plane endpoint the
// snapshot read (kubeadm-config's controlPlaneEndpoint), as status does.
func TestDrainReadsEndpoint(t *testing.T) {
	cs, _ := dWatchedClientset(dFixture(testutil.KubeadmConfig("10.9.9.9:6443"))...)
	o, out, errOut := newDTestDrain(cs)
	root := dRoot(newCmdDrain(o))
	root.SetArgs([]string{"drain", "pod-2", "--dry-run", "-o", "json"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("drain --dry-run = %v\n%s", err, errOut)
	}
	var plan Plan
	if err := json.Unmarshal(out.Bytes(), &plan); err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	if ep := plan.Quorum.Endpoint; ep == nil || ep.Address != "10.9.9.9:6443" || ep.Source != cluster.EndpointSourceKubeadmConfig {
		t.Errorf("endpoint = %+v; want 10.9.9.9:6443 from kubeadm-config", ep)
	}
}
