package cluster

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// PageSize is the default page size of every LIST: big lists come in
// pages, so memory and API server load stay bounded.
const PageSize = 500

// ListFunc lists one page.
type ListFunc func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error)

// ListAll runs a paginated LIST to its end with pages of PageSize; see
// Lister.List.
func ListAll(ctx context.Context, opts metav1.ListOptions, list ListFunc, each func(runtime.Object)) (string, error) {
	return Lister{}.List(ctx, opts, list, each)
}

// List runs a paginated LIST to its end through client-go's pager, with
// the lister's page size, and calls each for every item. It returns the
// resourceVersion of the first page, from which a watch can follow the
// list. A Limit in opts is the page size of this list alone.
func (l Lister) List(ctx context.Context, opts metav1.ListOptions, list ListFunc, each func(runtime.Object)) (string, error) {
	rv := ""
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		obj, err := list(ctx, o)
		if err == nil && rv == "" {
			if ml, lerr := metaList(obj); lerr == nil {
				rv = ml.GetResourceVersion()
			}
		}
		return obj, err
	})
	// The pager sends PageSize as the Limit of every page; 0 sends none.
	p.PageSize = l.pageSize()
	err := p.EachListItem(ctx, opts, func(obj runtime.Object) error {
		each(obj)
		return nil
	})
	return rv, err
}

func metaList(obj runtime.Object) (metav1.ListInterface, error) {
	l, ok := obj.(metav1.ListInterface)
	if !ok {
		return nil, fmt.Errorf("%T is not a list", obj)
	}
	return l, nil
}

// Lister lists through the typed client, which speaks protobuf and works
// with the fake clientsets of unit tests. A verb builds one Lister and
// makes every LIST through it, so that one flag (drain's --chunk-size)
// sets the page size of them all.
type Lister struct {
	Client kubernetes.Interface
	// PageSize is the Limit of every LIST: 0 means the default, PageSize;
	// negative means no paging, each list in one call (kubectl's
	// --chunk-size=0).
	PageSize int64
}

// NoPaging is the Lister.PageSize of lists made in one call.
const NoPaging int64 = -1

// PageSizeFromChunkSize is the Lister.PageSize of kubectl's --chunk-size
// value: 0 there means no paging.
func PageSizeFromChunkSize(chunk int64) int64 {
	if chunk <= 0 {
		return NoPaging
	}
	return chunk
}

func (l Lister) pageSize() int64 {
	switch {
	case l.PageSize == 0:
		return PageSize
	case l.PageSize < 0:
		return 0
	}
	return l.PageSize
}

// For returns the list function of a resource in namespace ns ("" for all,
// ignored for cluster-scoped resources), or false when the resource is not
// one the lister knows. Every kind of policy.JudgedKinds is known (a unit
// test holds it to that), as are the kinds status and drain read.
func (l Lister) For(gvr schema.GroupVersionResource, ns string) (ListFunc, bool) {
	c := l.Client
	var f ListFunc
	switch gvr {
	case gvrNodes:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().Nodes().List(ctx, o)
		}
	case gvrNamespaces:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().Namespaces().List(ctx, o)
		}
	case gvrPods:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().Pods(ns).List(ctx, o)
		}
	case gvrPodTemplates:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().PodTemplates(ns).List(ctx, o)
		}
	case gvrReplicationControllers:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().ReplicationControllers(ns).List(ctx, o)
		}
	case gvrDeployments:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.AppsV1().Deployments(ns).List(ctx, o)
		}
	case gvrReplicaSets:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.AppsV1().ReplicaSets(ns).List(ctx, o)
		}
	case gvrStatefulSets:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.AppsV1().StatefulSets(ns).List(ctx, o)
		}
	case gvrDaemonSets:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.AppsV1().DaemonSets(ns).List(ctx, o)
		}
	case gvrJobs:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.BatchV1().Jobs(ns).List(ctx, o)
		}
	case gvrCronJobs:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.BatchV1().CronJobs(ns).List(ctx, o)
		}
	case gvrPDBs:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.PolicyV1().PodDisruptionBudgets(ns).List(ctx, o)
		}
	case gvrEndpointSlices:
		f = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.DiscoveryV1().EndpointSlices(ns).List(ctx, o)
		}
	default:
		return nil, false
	}
	return f, true
}

// Each lists gvr in ns with opts and calls each for every item; see ListAll.
func (l Lister) Each(ctx context.Context, gvr schema.GroupVersionResource, ns string, opts metav1.ListOptions, each func(runtime.Object)) (string, error) {
	f, ok := l.For(gvr, ns)
	if !ok {
		return "", fmt.Errorf("listing %s: not a resource kubectl dc lists", gvr.Resource)
	}
	return l.List(ctx, opts, f, each)
}

var (
	gvrNodes                  = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	gvrNamespaces             = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrPods                   = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	gvrPodTemplates           = schema.GroupVersionResource{Version: "v1", Resource: "podtemplates"}
	gvrReplicationControllers = schema.GroupVersionResource{Version: "v1", Resource: "replicationcontrollers"}
	gvrDeployments            = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrReplicaSets            = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	gvrStatefulSets           = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	gvrDaemonSets             = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
	gvrJobs                   = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	gvrCronJobs               = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}
	gvrPDBs                   = schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}
	gvrEndpointSlices         = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
)

// keep the policy import honest: the judged kinds come from policy.
var _ = policy.PodTemplates
