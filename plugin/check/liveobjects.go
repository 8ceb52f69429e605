package check

import (
	"context"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/policy"
)

// readLiveVersions finds, for the -f objects checked against the live
// cluster, the object of the same kind, namespace and name there. An object
// that exists is judged as dc-webhook judges its UPDATE (kubectl apply,
// replace or edit): on what the new version changes, so that a scale-down
// or an image change of a workload admitted before a rule is not refused
// offline while admission lets it through, and a pod is not given the
// nodeSelector the mutation cannot add to an existing pod. One LIST by name
// (fieldSelector metadata.name) per object, the verb kubectl-dc-check
// grants. A kind the user may not list is judged as a create, which judges
// everything, with a note.
func (o *Options) readLiveVersions(ctx context.Context, engine *policy.Engine, items []item) error {
	found := map[objectKey]runtime.Object{}
	forbidden := map[string]error{}
	var groups *metav1.APIGroupList
	for i := range items {
		it := &items[i]
		m, err := metaOf(it.obj)
		if err != nil || m.GetName() == "" {
			continue
		}
		key := keyOf(it.obj)
		if live, done := found[key]; done {
			it.old = live
			continue
		}
		var live runtime.Object
		var resource string
		if u, ok := it.obj.(*unstructured.Unstructured); ok {
			if groups == nil {
				if groups, err = o.clientset.Discovery().ServerGroups(); err != nil {
					return fmt.Errorf("discovering the API groups of the declared workload kinds: %w", err)
				}
			}
			live, resource, err = o.liveDeclared(ctx, engine, groups, u)
		} else {
			live, resource, err = o.liveJudged(ctx, it.obj, m.GetNamespace(), m.GetName())
		}
		switch {
		case apierrors.IsForbidden(err):
			forbidden[resource] = err
		case err != nil:
			return fmt.Errorf("reading the live %s %s/%s: %w", resource, m.GetNamespace(), m.GetName(), err)
		}
		found[key] = live
		it.old = live
	}
	for _, r := range sortedErrorKeys(forbidden) {
		o.notef("note: the live %s cannot be read (%v): such objects are judged as creates, on everything, even those that exist\n", r, forbidden[r])
	}
	return nil
}

// liveOwners lists the StatefulSets that control the -f pods, for the
// rules to read: a spread rule takes N from the replicas of a member's
// verified owner, as dc-webhook does from its cache. One LIST by name per
// owner. Owners the user may not list are left out, with a note: N is
// then inferred from the members.
func (o *Options) liveOwners(ctx context.Context, items []item) ([]runtime.Object, error) {
	var out []runtime.Object
	seen := map[objectKey]bool{}
	var denied error
	for _, it := range items {
		pod, ok := it.obj.(*corev1.Pod)
		if !ok {
			continue
		}
		ref := metav1.GetControllerOfNoCopy(pod)
		if ref == nil || ref.Kind != "StatefulSet" {
			continue
		}
		if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != appsv1.GroupName {
			continue
		}
		key := objectKey{kind: ref.Kind, namespace: pod.Namespace, name: ref.Name}
		if seen[key] {
			continue
		}
		seen[key] = true
		sts := &appsv1.StatefulSet{}
		sts.Namespace, sts.Name = pod.Namespace, ref.Name
		live, resource, err := o.liveJudged(ctx, sts, pod.Namespace, ref.Name)
		switch {
		case apierrors.IsForbidden(err):
			denied = err
		case err != nil:
			return nil, fmt.Errorf("reading the live %s %s/%s, owner of pod %s: %w", resource, pod.Namespace, ref.Name, pod.Name, err)
		case live != nil:
			out = append(out, live)
		}
	}
	if denied != nil {
		o.notef("note: the StatefulSets that own the pods cannot be read (%v): spread rules infer N from the members instead of the owner's replicas\n", denied)
	}
	return out, nil
}

// liveJudged lists the object of a judged kind named name in namespace.
func (o *Options) liveJudged(ctx context.Context, obj runtime.Object, namespace, name string) (runtime.Object, string, error) {
	k, ok := policy.JudgedKindOf(obj)
	if !ok {
		return nil, "", nil
	}
	var live runtime.Object
	l := cluster.Lister{Client: o.clientset}
	_, err := l.Each(ctx, k.GVR(), namespace, byName(name), func(obj runtime.Object) {
		// The fake clientsets of unit tests ignore field selectors.
		if m, err := metaOf(obj); err == nil && m.GetName() == name {
			live = obj
		}
	})
	if live != nil {
		live.GetObjectKind().SetGroupVersionKind(k.GVK())
	}
	return live, k.GVR().GroupResource().String(), err
}

// liveDeclared lists the object of a declared kind named as u, in the
// version the cluster serves.
func (o *Options) liveDeclared(ctx context.Context, engine *policy.Engine, groups *metav1.APIGroupList, u *unstructured.Unstructured) (runtime.Object, string, error) {
	k, ok := engine.DeclaredKindFor(u.GroupVersionKind().GroupKind())
	if !ok {
		return nil, "", nil
	}
	gvr, namespaced, ok := o.resourceOf(groups, k)
	if !ok {
		return nil, "", nil
	}
	ri := o.dynamicClient.Resource(gvr)
	var list *unstructured.UnstructuredList
	var err error
	if namespaced {
		list, err = ri.Namespace(u.GetNamespace()).List(ctx, byName(u.GetName()))
	} else {
		list, err = ri.List(ctx, byName(u.GetName()))
	}
	if err != nil {
		return nil, gvr.GroupResource().String(), err
	}
	for i := range list.Items {
		if list.Items[i].GetName() == u.GetName() {
			return &list.Items[i], gvr.GroupResource().String(), nil
		}
	}
	return nil, gvr.GroupResource().String(), nil
}

func byName(name string) metav1.ListOptions {
	return metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

func sortedErrorKeys(m map[string]error) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
