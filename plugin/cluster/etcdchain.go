package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// SameEndpointSet reports whether a and b hold the same URLs.
func SameEndpointSet(a, b []string) bool {
	norm := func(l []string) sets.Set[string] {
		out := sets.New[string]()
		for _, u := range l {
			out.Insert(strings.TrimRight(u, "/"))
		}
		return out
	}
	return norm(a).Equal(norm(b))
}

// EtcdEndpointsFromPods returns the advertised client URLs of the etcd pods.
func EtcdEndpointsFromPods(pods []*corev1.Pod) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range pods {
		for _, u := range SplitURLList(p.Annotations[policy.AnnotationEtcdClientURLs]) {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// EtcdOptions say how etcd may be read.
type EtcdOptions struct {
	// TLS are client TLS files on this machine for dialling members.
	TLS EtcdTLSFiles
	// Timeout bounds each etcd call.
	Timeout time.Duration
	// Exec allows running etcdctl inside an etcd pod through PodExec,
	// with the certificate paths ExecTLS inside the pod.
	Exec    bool
	ExecTLS EtcdExecTLS
	PodExec PodExecFunc
	// Prefetched, when set, is a direct read already made at some
	// endpoints (status starts one while the API is listed); it is used
	// when the pods advertise the same endpoints.
	Prefetched *Prefetched
}

// Prefetched is a direct read of etcd made ahead of ReadEtcd.
type Prefetched struct {
	Endpoints []string
	View      *EtcdView
	Err       error
}

// ReadEtcd reads etcd's own view of its members from the etcd pods, in
// order: directly at the client URLs the pods advertise; by etcdctl inside
// an etcd pod; else it returns a view with no members and notes saying why
// each way failed, and BuildEtcd falls back to the pods' readiness. Every
// verb that judges quorum reads etcd through it.
func ReadEtcd(ctx context.Context, etcdPods []*corev1.Pod, o EtcdOptions) *EtcdView {
	var notes []string
	if eps := EtcdEndpointsFromPods(etcdPods); len(eps) > 0 {
		var v *EtcdView
		var err error
		if p := o.Prefetched; p != nil && SameEndpointSet(eps, p.Endpoints) {
			v, err = p.View, p.Err
			if v != nil {
				v.Endpoints = eps
			}
		} else {
			v, err = ReadEtcdDirect(ctx, eps, o.TLS, o.Timeout)
		}
		if err == nil {
			return v
		}
		notes = append(notes, fmt.Sprintf("dialling the advertised etcd client URLs failed: %v", err))
	}
	if o.Exec && len(etcdPods) > 0 && o.PodExec != nil {
		v, err := ReadEtcdExec(ctx, o.PodExec, etcdPods, o.ExecTLS, o.Timeout)
		if err == nil {
			v.Notes = notes
			return v
		}
		notes = append(notes, err.Error())
	}
	return &EtcdView{Notes: notes}
}
