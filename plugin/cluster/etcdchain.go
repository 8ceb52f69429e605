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

// EtcdServersOfAPIServers returns the --etcd-servers of the kube-apiserver
// pods: where an external etcd (or kine) is, when no etcd pod advertises it.
func EtcdServersOfAPIServers(pods []*corev1.Pod) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range pods {
		for _, c := range p.Spec.Containers {
			args := append(append([]string{}, c.Command...), c.Args...)
			for i, a := range args {
				v, ok := strings.CutPrefix(a, "--etcd-servers=")
				if !ok && a == "--etcd-servers" && i+1 < len(args) {
					v, ok = args[i+1], true
				}
				if !ok {
					continue
				}
				for _, u := range SplitURLList(v) {
					if !seen[u] {
						seen[u] = true
						out = append(out, u)
					}
				}
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
	// APIServerPods are the kube-apiserver pods: when no etcd pod
	// advertises client URLs (external etcd), their --etcd-servers are
	// dialled instead.
	APIServerPods []*corev1.Pod
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
	eps, from := EtcdEndpointsFromPods(etcdPods), "the advertised etcd client URLs"
	if len(eps) == 0 {
		eps, from = EtcdServersOfAPIServers(o.APIServerPods), "the API servers' --etcd-servers"
	}
	if len(eps) > 0 {
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
		notes = append(notes, fmt.Sprintf("dialling %s failed: %v", from, err))
		if len(etcdPods) == 0 {
			// Nothing to exec into: say which endpoints were tried.
			return &EtcdView{Endpoints: eps, Notes: notes}
		}
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
