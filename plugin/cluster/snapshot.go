// Package cluster is the one reading of the cluster that every verb
// answers from: a Snapshot listed with a fixed number of paginated LIST
// calls, the live PlacementPolicies, etcd's view of its members read through
// one source chain, and the placement of members and API servers in
// datacenters. The answers themselves live in policy/.
package cluster

import (
	"context"
	"fmt"
	"sort"
	"sync"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// Options say what a verb needs of the cluster beyond what every verb
// reads: the nodes and the PlacementPolicies.
type Options struct {
	// ControlPlane lists the component=etcd and component=kube-apiserver
	// pods of kube-system and the `kubernetes` EndpointSlices.
	ControlPlane bool
	// Namespaces lists every namespace (rules with a namespaceSelector
	// need their labels).
	Namespaces bool
	// Namespace scopes the pods and workloads listed; "" means all.
	Namespace string
	// Pods lists the pods of the scope.
	Pods bool
	// PDBs lists every PodDisruptionBudget.
	PDBs bool
	// Workloads lists every judged kind of the scope other than Pod
	// (policy.JudgedKinds).
	Workloads bool
	// ReplicaSets lists the ReplicaSets of the scope, when Workloads does
	// not: they name the Deployments of pods.
	ReplicaSets bool
	// LabelFlag and LabelFlagSet are --datacenter-label and whether it was
	// given: policy.ResolveDatacenterLabel decides which label applies.
	LabelFlag    string
	LabelFlagSet bool
	// Endpoint reads the control-plane endpoint (ReadControlPlaneEndpoint)
	// beside the lists: KubeconfigServer is the caller's server, LookupHost
	// resolves the endpoint's name (nil: the system resolver).
	Endpoint         bool
	KubeconfigServer string
	LookupHost       LookupHostFunc
}

// Snapshot is the cluster as every verb sees it, read once with a fixed
// number of paginated LIST calls, never one per node or pod.
type Snapshot struct {
	// Label is the datacenter label that applies and where it comes from.
	Label policy.LabelChoice
	// Nodes, sorted by name.
	Nodes []*corev1.Node
	// Namespaces are every namespace (rules with a namespaceSelector need
	// their labels).
	Namespaces []*corev1.Namespace
	// EtcdPods and APIServerPods are the component=etcd and
	// component=kube-apiserver pods of kube-system, sorted by name.
	EtcdPods      []*corev1.Pod
	APIServerPods []*corev1.Pod
	// APIAddresses are the addresses of the `kubernetes` EndpointSlices.
	APIAddresses []string
	// Policies are the live PlacementPolicies that decode and compile.
	Policies Policies
	// Pods of the scope, with Options.Pods; PodsResourceVersion is where a
	// watch of them can start.
	Pods                []*corev1.Pod
	PodsResourceVersion string
	// PDBs, with Options.PDBs.
	PDBs []*policyv1.PodDisruptionBudget
	// Workloads are the judged objects other than Pods, with
	// Options.Workloads, sorted by kind, namespace and name.
	Workloads []runtime.Object
	// Forbidden lists what RBAC did not let the caller list; the snapshot
	// holds everything else.
	Forbidden []string
	// Endpoint is the control-plane endpoint, with Options.Endpoint.
	Endpoint *ControlPlaneEndpoint

	nodeDC    map[string]string
	forbidden []error
}

// ForbiddenError is the API server's refusals of the lists in Forbidden,
// nil when there are none.
func (s *Snapshot) ForbiddenError() error { return utilerrors.NewAggregate(s.forbidden) }

// Read reads the snapshot with pages of PageSize; see Lister.Read.
func Read(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, o Options) (*Snapshot, error) {
	return Lister{Client: kube}.Read(ctx, dyn, o)
}

// Read reads the snapshot, every LIST through l and so with its page
// size. An error listing nodes (the API server is unreachable or refuses)
// is returned; optional lists that RBAC forbids are named in Forbidden.
func (l Lister) Read(ctx context.Context, dyn dynamic.Interface, o Options) (*Snapshot, error) {
	s := &Snapshot{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := map[string]error{}
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				mu.Lock()
				errs[name] = err
				mu.Unlock()
			}
		}()
	}
	run("nodes", func() error {
		_, err := l.Each(ctx, gvrNodes, "", metav1.ListOptions{}, func(obj runtime.Object) { s.Nodes = append(s.Nodes, obj.(*corev1.Node)) })
		return err
	})
	if o.ControlPlane {
		s.readControlPlane(ctx, l, run)
	}
	if o.Endpoint {
		run("endpoint", func() error {
			ep := ReadControlPlaneEndpoint(ctx, l.Client, o.KubeconfigServer, o.LookupHost)
			s.Endpoint = &ep
			return nil
		})
	}
	if o.Namespaces {
		run("namespaces", func() error {
			_, err := l.Each(ctx, gvrNamespaces, "", metav1.ListOptions{}, func(obj runtime.Object) { s.Namespaces = append(s.Namespaces, obj.(*corev1.Namespace)) })
			return err
		})
	}
	if o.ReplicaSets && !o.Workloads {
		run("replicasets", func() error {
			_, err := l.Each(ctx, gvrReplicaSets, o.Namespace, metav1.ListOptions{}, func(obj runtime.Object) { s.Workloads = append(s.Workloads, obj) })
			return err
		})
	}
	if dyn != nil {
		run("placementpolicies", func() error {
			var err error
			s.Policies, err = l.ReadPolicies(ctx, dyn)
			return err
		})
	}
	if o.Pods {
		run("pods", func() error {
			var err error
			s.PodsResourceVersion, err = l.Each(ctx, gvrPods, o.Namespace, metav1.ListOptions{}, func(obj runtime.Object) { s.Pods = append(s.Pods, obj.(*corev1.Pod)) })
			return err
		})
	}
	if o.PDBs {
		run("poddisruptionbudgets", func() error {
			_, err := l.Each(ctx, gvrPDBs, "", metav1.ListOptions{}, func(obj runtime.Object) {
				s.PDBs = append(s.PDBs, obj.(*policyv1.PodDisruptionBudget))
			})
			return err
		})
	}
	if o.Workloads {
		for _, k := range policy.JudgedKinds() {
			gvr := k.GVR()
			if gvr == gvrPods {
				continue
			}
			run(gvr.Resource, func() error {
				_, err := l.Each(ctx, gvr, o.Namespace, metav1.ListOptions{}, func(obj runtime.Object) {
					mu.Lock()
					s.Workloads = append(s.Workloads, obj)
					mu.Unlock()
				})
				return err
			})
		}
	}
	wg.Wait()
	if err := errs["nodes"]; err != nil {
		return nil, err
	}
	for _, name := range sets.List(sets.KeySet(errs)) {
		if apierrors.IsForbidden(errs[name]) {
			// RBAC that hides a kind leaves a snapshot without it, not none.
			s.Forbidden = append(s.Forbidden, name)
			s.forbidden = append(s.forbidden, errs[name])
			continue
		}
		return nil, fmt.Errorf("listing %s: %w", name, errs[name])
	}
	s.sort()
	s.Label = policy.ResolveDatacenterLabel(o.LabelFlag, o.LabelFlagSet, s.Policies.Items)
	s.nodeDC = make(map[string]string, len(s.Nodes))
	for _, n := range s.Nodes {
		s.nodeDC[n.Name] = policy.DatacenterOf(n, s.Label.Label)
	}
	return s, nil
}

// readControlPlane lists the control plane's pods and addresses.
func (s *Snapshot) readControlPlane(ctx context.Context, l Lister, run func(string, func() error)) {
	run("kube-system pods", func() error {
		_, err := l.Each(ctx, gvrPods, metav1.NamespaceSystem, metav1.ListOptions{LabelSelector: "component in (etcd,kube-apiserver)"}, func(obj runtime.Object) {
			p := obj.(*corev1.Pod)
			if p.Labels["component"] == "etcd" {
				s.EtcdPods = append(s.EtcdPods, p)
			} else {
				s.APIServerPods = append(s.APIServerPods, p)
			}
		})
		return err
	})
	run("endpointslices", func() error {
		_, err := l.Each(ctx, gvrEndpointSlices, metav1.NamespaceDefault, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"}, func(obj runtime.Object) {
			for _, ep := range obj.(*discoveryv1.EndpointSlice).Endpoints {
				s.APIAddresses = append(s.APIAddresses, ep.Addresses...)
			}
		})
		return err
	})
}

func (s *Snapshot) sort() {
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Name < s.Nodes[j].Name })
	sort.Slice(s.EtcdPods, func(i, j int) bool { return s.EtcdPods[i].Name < s.EtcdPods[j].Name })
	sort.Slice(s.APIServerPods, func(i, j int) bool { return s.APIServerPods[i].Name < s.APIServerPods[j].Name })
	sort.Strings(s.APIAddresses)
	sort.Slice(s.Workloads, func(i, j int) bool {
		a, b := policy.ObjectRefOf(s.Workloads[i]), policy.ObjectRefOf(s.Workloads[j])
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}

// DatacenterOfNode names the datacenter of a node by the snapshot's label:
// Unlabeled for a node without it, "" for a node the snapshot does not hold.
func (s *Snapshot) DatacenterOfNode(name string) string {
	dc, ok := s.nodeDC[name]
	switch {
	case !ok:
		return ""
	case dc == "":
		return Unlabeled
	}
	return dc
}

// Datacenters are the datacenters known: the label's values on nodes and
// the datacenters the policies list, sorted.
func (s *Snapshot) Datacenters() []string {
	dcs := sets.New[string]()
	for _, dc := range s.nodeDC {
		if dc != "" {
			dcs.Insert(dc)
		}
	}
	for _, p := range s.Policies.Items {
		dcs.Insert(p.Spec.Datacenters...)
	}
	return sets.List(dcs)
}

// PolicyDatacenters are the datacenters the policies list, sorted.
func (s *Snapshot) PolicyDatacenters() []string {
	dcs := sets.New[string]()
	for _, p := range s.Policies.Items {
		dcs.Insert(p.Spec.Datacenters...)
	}
	return sets.List(dcs)
}

// Placement returns what places members and API servers, with the lost
// datacenters of a what-if counted as down.
func (s *Snapshot) Placement(lost ...string) Placement {
	l := map[string]bool{}
	for _, d := range lost {
		l[d] = true
	}
	return Placement{Nodes: s.Nodes, EtcdPods: s.EtcdPods, DatacenterOf: s.DatacenterOfNode, Lost: l}
}

// Warnings are what the reader of the snapshot should be told: the label
// choice and the policies left out.
func (s *Snapshot) Warnings() []string {
	return append(append([]string{}, s.Label.Warnings...), s.Policies.Warnings...)
}

// GVRPods is the pods resource, for listing member pods by selector.
var GVRPods = gvrPods
