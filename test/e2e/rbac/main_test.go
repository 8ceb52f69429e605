// Package rbac proves the RBAC of kubectl-dc against the real API server of
// the local MacStadium control plane: the dc-webhook ServiceAccount of
// manifests/base can do what the webhook's code does and nothing more
// (SubjectAccessReviews, and the real webhook running on those needs alone),
// and the per-command ClusterRoles of manifests/rbac are enough for the
// built `kubectl dc` to run each verb, while a role without one of its
// permissions fails with a forbidden error that names it.
package rbac

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

func TestMain(m *testing.M) {
	// webhooktest.ApplyFiles uses a controller-runtime client that has
	// nothing to log here.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.MacStadium()}))
}

// repoRoot returns the module root.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := cluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// writeVerbs change state or hand out power. A rule that grants one of them
// must name its objects (resourceNames) unless the rule is listed as an
// exception with its reason.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate", "approve", "sign", "attest"}

// allVerbs are the verbs the exactness checks probe for every resource a
// role touches.
var allVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}

// grant is one permission: verbs on a resource, in a namespace ("" for a
// cluster-scoped resource or every namespace) and on one object name (""
// for any object).
type grant struct {
	group, resource string
	namespace       string
	name            string
	verbs           []string
	// why says which code makes the call, for the failure messages and
	// docs/rbac.md.
	why string
}

// key is one verb of a grant, the unit the exactness checks compare.
type key struct {
	group, resource, namespace, name, verb string
}

func (k key) String() string {
	s := k.verb + " " + k.resource
	if k.group != "" {
		s += "." + k.group
	}
	if k.name != "" {
		s += "/" + k.name
	}
	if k.namespace != "" {
		s += " in " + k.namespace
	} else {
		s += " cluster-wide"
	}
	return s
}

// keys expands grants into one key per verb.
func keys(gs []grant) map[key]string {
	out := map[key]string{}
	for _, g := range gs {
		for _, v := range g.verbs {
			out[key{g.group, g.resource, g.namespace, g.name, v}] = g.why
		}
	}
	return out
}

// ruleKeys expands RBAC rules bound in namespace ("" for a ClusterRole) into
// keys, one per group, resource, name and verb.
func ruleKeys(rules []rbacv1.PolicyRule, namespace string) []key {
	var out []key
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, n := range names {
					for _, v := range r.Verbs {
						out = append(out, key{g, res, namespace, n, v})
					}
				}
			}
		}
	}
	return out
}

// checkRuleHygiene fails t for wildcards, non-resource URLs and write verbs
// that do not name their objects, unless exempt lists the (group, resource,
// verb) with the reason it cannot name them.
func checkRuleHygiene(t *testing.T, what string, rules []rbacv1.PolicyRule, exempt map[key]string) {
	t.Helper()
	for i, r := range rules {
		for field, values := range map[string][]string{"apiGroups": r.APIGroups, "resources": r.Resources, "verbs": r.Verbs, "resourceNames": r.ResourceNames} {
			for _, v := range values {
				if strings.Contains(v, "*") {
					t.Errorf("%s rule %d: %s holds the wildcard %q: list what is needed", what, i, field, v)
				}
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("%s rule %d grants nonResourceURLs %v: nothing needs them", what, i, r.NonResourceURLs)
		}
		if len(r.ResourceNames) > 0 {
			continue
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if !slices.Contains(writeVerbs, v) {
						continue
					}
					if _, ok := exempt[key{group: g, resource: res, verb: v}]; !ok {
						t.Errorf("%s rule %d grants %s on %s (group %q) without resourceNames: name the objects, or justify the exception", what, i, v, res, g)
					}
				}
			}
		}
	}
}

// build runs kustomize over dir and decodes every resource of kind into T.
func build[T any](t *testing.T, dir, kind string) []*T {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*T
	for _, r := range m.Resources() {
		if r.GetKind() != kind {
			continue
		}
		data, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj := new(T)
		if err := yaml.UnmarshalStrict(data, obj); err != nil {
			t.Fatalf("%s %s: %v", kind, r.GetName(), err)
		}
		out = append(out, obj)
	}
	return out
}

// subject is who a SubjectAccessReview asks about.
type subject struct {
	user   string
	groups []string
}

// serviceAccount is the subject the API server makes of a ServiceAccount's
// token: its user name and the groups every ServiceAccount token carries.
func serviceAccount(namespace, name string) subject {
	return subject{
		user:   "system:serviceaccount:" + namespace + ":" + name,
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
}

// allowed asks the API server whether s may do k, and why not.
func allowed(ctx context.Context, t *testing.T, cs kubernetes.Interface, s subject, k key) (bool, string) {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: s.user, Groups: s.groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: k.namespace, Verb: k.verb, Group: k.group, Name: k.name,
		},
	}}
	res, sub, _ := strings.Cut(k.resource, "/")
	sar.Spec.ResourceAttributes.Resource, sar.Spec.ResourceAttributes.Subresource = res, sub
	out, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview %s for %s: %v", k, s.user, err)
	}
	return out.Status.Allowed, out.Status.Reason + out.Status.EvaluationError
}

// waitAllowed waits until the API server's RBAC cache lets s do every key:
// bindings reach the authorizer through a watch, a moment after they are
// created.
func waitAllowed(t *testing.T, cs kubernetes.Interface, s subject, ks []key) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, k := range ks {
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			ok, _ := allowed(ctx, t, cs, s, k)
			return ok, nil
		})
		if err != nil {
			t.Fatalf("%s is still not allowed to %s: %v", s.user, k, err)
		}
	}
}

// bindClusterRole creates a ServiceAccount named name in namespace ns,
// binds it cluster-wide to role (creating role first when create is set),
// and waits until the API server authorizes it. Everything is deleted when
// t ends. It returns the subject to impersonate.
func bindClusterRole(t *testing.T, c *cluster.Cluster, ns, name string, role *rbacv1.ClusterRole, create bool) subject {
	t.Helper()
	ctx := context.Background()
	cs := c.Client()
	if create {
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ClusterRole %s: %v", role.Name, err)
		}
		t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{}) })
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ServiceAccount %s/%s: %v", ns, name, err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ClusterRoleBinding %s: %v", crb.Name, err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	s := serviceAccount(ns, name)
	waitAllowed(t, cs, s, ruleKeys(role.Rules, ""))
	return s
}

// bindRole binds the ServiceAccount ns/name to the namespaced role (created
// here) and waits until the API server authorizes it.
func bindRole(t *testing.T, c *cluster.Cluster, ns, name string, role *rbacv1.Role) {
	t.Helper()
	ctx := context.Background()
	cs := c.Client()
	if _, err := cs.RbacV1().Roles(role.Namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Role %s/%s: %v", role.Namespace, role.Name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: role.Namespace, Name: ns + "-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
	}
	if _, err := cs.RbacV1().RoleBindings(role.Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create RoleBinding %s/%s: %v", rb.Namespace, rb.Name, err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().RoleBindings(role.Namespace).Delete(context.Background(), rb.Name, metav1.DeleteOptions{})
		_ = cs.RbacV1().Roles(role.Namespace).Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	})
	waitAllowed(t, cs, serviceAccount(ns, name), ruleKeys(role.Rules, role.Namespace))
}

// without returns a copy of role named name that lacks verb on resource of
// group, and fails t if role did not grant it (the test would prove
// nothing).
func without(t *testing.T, role *rbacv1.ClusterRole, name, group, resource, verb string) *rbacv1.ClusterRole {
	t.Helper()
	out := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
	removed := false
	for _, r := range role.Rules {
		if !slices.Contains(r.APIGroups, group) || !slices.Contains(r.Resources, resource) || !slices.Contains(r.Verbs, verb) {
			out.Rules = append(out.Rules, *r.DeepCopy())
			continue
		}
		removed = true
		// The other resources keep every verb; this one keeps the others.
		if others := slices.DeleteFunc(slices.Clone(r.Resources), func(s string) bool { return s == resource }); len(others) > 0 {
			keep := *r.DeepCopy()
			keep.Resources = others
			out.Rules = append(out.Rules, keep)
		}
		if verbs := slices.DeleteFunc(slices.Clone(r.Verbs), func(s string) bool { return s == verb }); len(verbs) > 0 {
			keep := *r.DeepCopy()
			keep.Resources, keep.Verbs = []string{resource}, verbs
			out.Rules = append(out.Rules, keep)
		}
	}
	if !removed {
		t.Fatalf("ClusterRole %s does not grant %s on %s (group %q): nothing to take away", role.Name, verb, resource, group)
	}
	return out
}

// shippedRoles returns the ClusterRoles and Roles of manifests/rbac by name,
// as kustomize builds them.
func shippedRoles(t *testing.T) (map[string]*rbacv1.ClusterRole, map[string]*rbacv1.Role) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "manifests", "rbac")
	crs := map[string]*rbacv1.ClusterRole{}
	for _, r := range build[rbacv1.ClusterRole](t, dir, "ClusterRole") {
		crs[r.Name] = r
	}
	rs := map[string]*rbacv1.Role{}
	for _, r := range build[rbacv1.Role](t, dir, "Role") {
		rs[r.Name] = r
	}
	return crs, rs
}

// roleNamed returns a fresh copy of the shipped ClusterRole name under a
// test-unique name, so that tests do not share cluster objects.
func roleNamed(t *testing.T, crs map[string]*rbacv1.ClusterRole, name, as string) *rbacv1.ClusterRole {
	t.Helper()
	r, ok := crs[name]
	if !ok {
		t.Fatalf("manifests/rbac has no ClusterRole %s", name)
	}
	out := r.DeepCopy()
	out.ObjectMeta = metav1.ObjectMeta{Name: as, Labels: r.Labels}
	return out
}

// forbidden reports whether text holds the API server's forbidden message
// for verb on resource (a "pods/exec" style resource names a subresource).
func forbidden(text, verb, resource string) bool {
	return strings.Contains(text, "is forbidden") && strings.Contains(text, fmt.Sprintf("cannot %s resource %q", verb, resource))
}
