package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// listChunk is the page size of every LIST: big lists come in pages, so
// memory and API server load stay bounded.
const listChunk = 500

// placementPolicyGVR is the PlacementPolicy resource.
var placementPolicyGVR = v1alpha1.GroupVersion.WithResource(v1alpha1.Resource)

// gathered is the result of the LIST calls.
type gathered struct {
	Nodes         []*corev1.Node
	EtcdPods      []*corev1.Pod
	APIServerPods []*corev1.Pod
	APIAddresses  []string
	Policies      []v1alpha1.PlacementPolicy
	Workloads     []*statusWorkloadObj
	Namespaces    []*corev1.Namespace
	Pods          []*corev1.Pod
	PDBs          []*policyv1.PodDisruptionBudget
	// Forbidden lists what RBAC did not let us list.
	Forbidden []string
}

// statusWorkloadObj is a listed controller with its pod template.
type statusWorkloadObj struct {
	Kind, Namespace, Name string
	Selector              *metav1.LabelSelector
	Template              *corev1.PodTemplateSpec
	// Obj is the typed object, for the policy engine.
	Obj runtime.Object
}

// statusListAll runs a paginated LIST through the client-go pager and calls each
// for every item.
func statusListAll(ctx context.Context, opts metav1.ListOptions, list func(context.Context, metav1.ListOptions) (runtime.Object, error), each func(runtime.Object)) error {
	p := pager.New(pager.ListPageFunc(list))
	p.PageSize = listChunk
	return p.EachListItem(ctx, opts, func(obj runtime.Object) error {
		each(obj)
		return nil
	})
}

// gatherObjects makes a fixed number of paginated LIST calls, in parallel:
// nodes, control-plane pods of kube-system, the `kubernetes` EndpointSlices,
// PlacementPolicies (absent CRD is fine), Deployments, StatefulSets,
// DaemonSets and Namespaces, and with withPods every pod and PodDisruptionBudget. It never
// makes one call per node or pod. An error from the node list (the API is
// unreachable) is returned; other optional lists are best effort.
func gatherObjects(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, withPods bool) (*gathered, error) {
	g := &gathered{}
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
		return statusListAll(ctx, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Nodes().List(ctx, o)
		}, func(obj runtime.Object) { g.Nodes = append(g.Nodes, obj.(*corev1.Node)) })
	})
	run("kube-system pods", func() error {
		return statusListAll(ctx, metav1.ListOptions{LabelSelector: "component in (etcd,kube-apiserver)"}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, o)
		}, func(obj runtime.Object) {
			p := obj.(*corev1.Pod)
			if p.Labels["component"] == "etcd" {
				g.EtcdPods = append(g.EtcdPods, p)
			} else {
				g.APIServerPods = append(g.APIServerPods, p)
			}
		})
	})
	run("endpointslices", func() error {
		var addrs []string
		err := statusListAll(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, o)
		}, func(obj runtime.Object) {
			for _, ep := range obj.(*discoveryv1.EndpointSlice).Endpoints {
				addrs = append(addrs, ep.Addresses...)
			}
		})
		sort.Strings(addrs)
		g.APIAddresses = addrs
		return err
	})
	if dyn != nil {
		run("placementpolicies", func() error {
			err := statusListAll(ctx, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return dyn.Resource(placementPolicyGVR).List(ctx, o)
			}, func(obj runtime.Object) {
				var p v1alpha1.PlacementPolicy
				if u, ok := obj.(*unstructured.Unstructured); ok && runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p) == nil {
					g.Policies = append(g.Policies, p)
				}
			})
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				return nil
			}
			return err
		})
	}
	addWorkload := func(obj runtime.Object, kind string, m *metav1.ObjectMeta, sel *metav1.LabelSelector, t *corev1.PodTemplateSpec) {
		mu.Lock()
		g.Workloads = append(g.Workloads, &statusWorkloadObj{Kind: kind, Namespace: m.Namespace, Name: m.Name, Selector: sel, Template: t, Obj: obj})
		mu.Unlock()
	}
	run("deployments", func() error {
		return statusListAll(ctx, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.AppsV1().Deployments("").List(ctx, o)
		}, func(obj runtime.Object) {
			d := obj.(*appsv1.Deployment)
			addWorkload(d, "Deployment", &d.ObjectMeta, d.Spec.Selector, &d.Spec.Template)
		})
	})
	run("statefulsets", func() error {
		return statusListAll(ctx, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.AppsV1().StatefulSets("").List(ctx, o)
		}, func(obj runtime.Object) {
			s := obj.(*appsv1.StatefulSet)
			addWorkload(s, "StatefulSet", &s.ObjectMeta, s.Spec.Selector, &s.Spec.Template)
		})
	})
	run("daemonsets", func() error {
		return statusListAll(ctx, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.AppsV1().DaemonSets("").List(ctx, o)
		}, func(obj runtime.Object) {
			s := obj.(*appsv1.DaemonSet)
			addWorkload(s, "DaemonSet", &s.ObjectMeta, s.Spec.Selector, &s.Spec.Template)
		})
	})
	run("namespaces", func() error {
		return statusListAll(ctx, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Namespaces().List(ctx, o)
		}, func(obj runtime.Object) { g.Namespaces = append(g.Namespaces, obj.(*corev1.Namespace)) })
	})
	if withPods {
		run("pods", func() error {
			return statusListAll(ctx, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return client.CoreV1().Pods("").List(ctx, o)
			}, func(obj runtime.Object) { g.Pods = append(g.Pods, obj.(*corev1.Pod)) })
		})
		run("poddisruptionbudgets", func() error {
			return statusListAll(ctx, metav1.ListOptions{}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return client.PolicyV1().PodDisruptionBudgets("").List(ctx, o)
			}, func(obj runtime.Object) {
				g.PDBs = append(g.PDBs, obj.(*policyv1.PodDisruptionBudget))
			})
		})
	}
	wg.Wait()
	if err := errs["nodes"]; err != nil {
		return nil, err
	}
	for _, name := range []string{"kube-system pods", "endpointslices", "placementpolicies", "deployments", "statefulsets", "daemonsets", "namespaces", "pods", "poddisruptionbudgets"} {
		if err := errs[name]; apierrors.IsForbidden(err) {
			// RBAC that hides a kind leaves a report without it, not none.
			g.Forbidden = append(g.Forbidden, name)
			continue
		}
		if err := errs[name]; err != nil {
			return nil, fmt.Errorf("listing %s: %w", name, err)
		}
	}
	sort.Slice(g.Workloads, func(i, j int) bool {
		a, b := g.Workloads[i], g.Workloads[j]
		return a.Namespace+"/"+a.Kind+"/"+a.Name < b.Namespace+"/"+b.Kind+"/"+b.Name
	})
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].Name < g.Nodes[j].Name })
	sort.Slice(g.EtcdPods, func(i, j int) bool { return g.EtcdPods[i].Name < g.EtcdPods[j].Name })
	return g, nil
}

// datacenterLabelFrom picks the datacenter label: the live PlacementPolicy's
// wins, then --datacenter-label, then the default.
func datacenterLabelFrom(policies []v1alpha1.PlacementPolicy, flag string, flagSet bool) (label, source string) {
	for _, p := range policies {
		if p.Spec.DatacenterLabel != "" {
			return p.Spec.DatacenterLabel, "PlacementPolicy/" + p.Name
		}
	}
	if len(policies) > 0 && !flagSet {
		return v1alpha1.DefaultDatacenterLabel, "PlacementPolicy/" + policies[0].Name
	}
	if flagSet {
		return flag, "flag"
	}
	return v1alpha1.DefaultDatacenterLabel, "default"
}

// etcdEndpointsFromPods returns the advertised client URLs of the etcd pods.
func etcdEndpointsFromPods(pods []*corev1.Pod) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range pods {
		for _, u := range splitURLList(p.Annotations[policy.AnnotationEtcdClientURLs]) {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// statusCache is what one run leaves for the next, so that a run while the
// API server is down still knows the etcd endpoints and where members are.
type statusCache struct {
	Server    string   `json:"server"`
	Label     string   `json:"label"`
	Endpoints []string `json:"endpoints"`
	// Datacenters maps node and member names to datacenters.
	Datacenters map[string]string `json:"datacenters"`
}

func cachePath(dir, server string) string {
	sum := sha256.Sum256([]byte(server))
	return filepath.Join(dir, "kubectl-dc", "status-"+hex.EncodeToString(sum[:8])+".json")
}

func readStatusCache(dir, server string) *statusCache {
	if dir == "" {
		return nil
	}
	data, err := os.ReadFile(cachePath(dir, server))
	if err != nil {
		return nil
	}
	var c statusCache
	if json.Unmarshal(data, &c) != nil || c.Server != server {
		return nil
	}
	return &c
}

// writeStatusCache is best effort: a read-only home must not fail status.
func writeStatusCache(dir string, c *statusCache) {
	if dir == "" {
		return
	}
	p := cachePath(dir, c.Server)
	if os.MkdirAll(filepath.Dir(p), 0o750) != nil {
		return
	}
	data, err := json.Marshal(c)
	if err != nil {
		return
	}
	tmp := p + ".tmp"
	if os.WriteFile(tmp, data, 0o600) == nil {
		_ = os.Rename(tmp, p)
	}
}

// countingTransport counts the HTTP requests made through it.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

// policyViolations runs the policy engine over the listed workloads and etcd
// pods, as `kubectl dc check --cluster` would, and counts the results per
// datacenter: a workload's pinned datacenter, a member pod's node's
// datacenter, else "" (unattributed).
func policyViolations(g *gathered, label string, pinned map[*statusWorkloadObj]string) (map[string]int, error) {
	engine, err := policy.NewEngine(g.Policies)
	if err != nil {
		return nil, err
	}
	objs := make([]runtime.Object, 0, len(g.Nodes)+len(g.EtcdPods)+len(g.Namespaces)+len(g.Workloads))
	for _, n := range g.Nodes {
		objs = append(objs, n)
	}
	for _, p := range g.EtcdPods {
		objs = append(objs, p)
	}
	for _, ns := range g.Namespaces {
		objs = append(objs, ns)
	}
	for _, w := range g.Workloads {
		if w.Kind == "StatefulSet" {
			objs = append(objs, w.Obj)
		}
	}
	state := policy.NewStaticState(objs...)
	nodeDC := map[string]string{}
	for _, n := range g.Nodes {
		nodeDC[n.Name] = policy.DatacenterOf(n, label)
	}
	out := map[string]int{}
	for _, w := range g.Workloads {
		rs := engine.Evaluate(policy.Request{Operation: policy.OperationCheck, Object: w.Obj, Namespace: w.Namespace}, state)
		out[pinned[w]] += len(rs)
	}
	for _, p := range g.EtcdPods {
		rs := engine.Evaluate(policy.Request{Operation: policy.OperationCheck, Object: p, Namespace: p.Namespace}, state)
		out[nodeDC[p.Spec.NodeName]] += len(rs)
	}
	return out, nil
}
