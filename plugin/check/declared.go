package check

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// listDeclared lists, for --live, the objects of every kind the policies
// declare in spec.workloadKinds, in the group's preferred version that
// serves the kind. A kind the cluster does not serve is a note.
func (o *Options) listDeclared(ctx context.Context, engine *policy.Engine) ([]runtime.Object, error) {
	kinds := engine.DeclaredKinds()
	if len(kinds) == 0 {
		return nil, nil
	}
	groups, err := o.clientset.Discovery().ServerGroups()
	if err != nil {
		return nil, fmt.Errorf("discovering the API groups of the declared workload kinds: %w", err)
	}
	var out []runtime.Object
	for _, k := range kinds {
		gvr, namespaced, ok := o.resourceOf(groups, k)
		if !ok {
			o.notef("note: the cluster serves no %s, which policy %s declares in spec.workloadKinds: nothing of it to check\n", k.GroupKind(), k.Policy)
			continue
		}
		ri := o.dynamicClient.Resource(gvr)
		var list interface {
			EachListItem(func(runtime.Object) error) error
		}
		opts := metav1.ListOptions{}
		if namespaced && o.namespace != "" {
			list, err = ri.Namespace(o.namespace).List(ctx, opts)
		} else {
			list, err = ri.List(ctx, opts)
		}
		if err != nil {
			if apierrors.IsForbidden(err) {
				return nil, fmt.Errorf("listing %s, which policy %s declares: %w; grant list on %s", gvr.GroupResource(), k.Policy, err, gvr.GroupResource())
			}
			return nil, fmt.Errorf("listing %s, which policy %s declares: %w", gvr.GroupResource(), k.Policy, err)
		}
		_ = list.EachListItem(func(obj runtime.Object) error {
			out = append(out, obj)
			return nil
		})
	}
	return out, nil
}

// resourceOf finds the resource of a declared kind in the preferred
// version of its group, else in any version that serves it.
func (o *Options) resourceOf(groups *metav1.APIGroupList, k policy.DeclaredKind) (schema.GroupVersionResource, bool, bool) {
	for _, g := range groups.Groups {
		if g.Name != k.Group {
			continue
		}
		versions := append([]metav1.GroupVersionForDiscovery{g.PreferredVersion}, g.Versions...)
		for _, v := range versions {
			if v.GroupVersion == "" {
				continue
			}
			rl, err := o.clientset.Discovery().ServerResourcesForGroupVersion(v.GroupVersion)
			if err != nil {
				continue
			}
			for _, r := range rl.APIResources {
				if r.Kind == k.Kind && !containsSlash(r.Name) {
					gv, _ := schema.ParseGroupVersion(v.GroupVersion)
					return gv.WithResource(r.Name), r.Namespaced, true
				}
			}
		}
	}
	return schema.GroupVersionResource{}, false, false
}

func containsSlash(s string) bool {
	for i := range len(s) {
		if s[i] == '/' {
			return true
		}
	}
	return false
}
