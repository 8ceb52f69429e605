package rbac

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/webhook"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

// webhookNeeds is every API call dc-webhook makes, read from webhook/ and
// the libraries it drives, named as the deployed webhook runs (the defaults
// of webhook.NewOptions: its namespace, certificate Secret and webhook
// configurations). The manifest's RBAC must grant exactly these, and they
// must be enough for the real webhook to become ready.
//
// Calls it does not make, checked: no get (every read comes from an
// informer cache), no patch (the certificate rotator writes with Update), no
// create (secret.yaml ships the Secret empty, the webhook configurations
// come with the manifests), no events, no leases (the manager runs without
// leader election: every replica serves and rotates).
func webhookNeeds() []grant {
	o := webhook.NewOptions()
	ns, secret, config := o.Namespace, o.CertSecret, o.WebhookConfiguration
	return []grant{
		{"", "nodes", "", "", []string{"list", "watch"},
			"informer (server.go): datacenters and readiness of every spread and pinned rule, the Node label guard"},
		{"", "namespaces", "", "", []string{"list", "watch"},
			"informer (server.go): namespace labels for the rules' namespaceSelectors"},
		{"", "pods", "", "", []string{"list", "watch"},
			"member informers (state.go SetMembers): one label-selected LIST+WATCH per spread rule, in every namespace when the rule names none"},
		{"apps", "statefulsets", "", "", []string{"list", "watch"},
			"informer (server.go): a member StatefulSet's replicas are the N of a spread rule"},
		{v1alpha1.GroupVersion.Group, v1alpha1.Resource, "", "", []string{"list", "watch"},
			"informer (server.go): the policies, rebuilt into the engine on every change"},
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", []string{"list", "watch"},
			"certificate rotator's cache (cert-controller, --self-managed-certs): cluster-scoped, and cert-controller lists without a name selector"},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", []string{"list", "watch"},
			"certificate rotator's cache, as for the validating configuration"},
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "", config, []string{"update"},
			"certificate rotator: injects its CA into caBundle with Update"},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", config, []string{"update"},
			"certificate rotator: injects its CA into caBundle with Update"},
		{"", "secrets", ns, "", []string{"list", "watch"},
			"certificate rotator's cache, restricted to the webhook's namespace"},
		{"", "secrets", ns, secret, []string{"update"},
			"certificate rotator: writes the CA and serving certificate into the Secret with Update"},
	}
}

// webhookEscalations are what a stolen dc-webhook token must not do, beyond
// the verbs of the resources webhookNeeds touches (which
// TestWebhookServiceAccountCanDoExactlyItsNeeds probes one by one).
func webhookEscalations() []key {
	o := webhook.NewOptions()
	ns, config := o.Namespace, o.WebhookConfiguration
	return []key{
		// Workloads: no pod may be started, killed, moved or entered.
		{"", "pods", "default", "", "create"},
		{"", "pods", "kube-system", "", "create"},
		{"", "pods", ns, "", "create"},
		{"", "pods", "kube-system", "etcd-pod-1-cp-1", "delete"},
		{"", "pods/exec", "kube-system", "etcd-pod-1-cp-1", "create"},
		{"", "pods/attach", "kube-system", "etcd-pod-1-cp-1", "create"},
		{"", "pods/portforward", "kube-system", "etcd-pod-1-cp-1", "create"},
		{"", "pods/eviction", "default", "web", "create"},
		{"", "pods/binding", "default", "web", "create"},
		{"", "pods/log", "kube-system", "etcd-pod-1-cp-1", "get"},
		{"apps", "deployments", ns, "dc-webhook", "update"},
		{"apps", "deployments", ns, "", "create"},
		{"apps", "statefulsets", "default", "", "create"},
		{"apps", "daemonsets", "kube-system", "", "create"},
		{"batch", "jobs", "default", "", "create"},
		// Nodes: no relabelling into another datacenter, no cordon, no proxy.
		{"", "nodes", "", "pod-1-worker-1", "update"},
		{"", "nodes", "", "pod-1-worker-1", "patch"},
		{"", "nodes/status", "", "pod-1-worker-1", "patch"},
		{"", "nodes/proxy", "", "pod-1-worker-1", "get"},
		{"", "nodes", "", "", "create"},
		// Namespaces: no opting a namespace out with placement.kubectl-dc.io/ignore.
		{"", "namespaces", "", "default", "update"},
		{"", "namespaces", "", "default", "patch"},
		{"", "namespaces", "", "", "create"},
		{"", "namespaces/status", "", "default", "update"},
		{"", "namespaces/finalize", "", "default", "update"},
		{"", "namespaces", "dc-system", "dc-system", "patch"},
		// Secrets and tokens: nothing but its own Secret.
		{"", "secrets", "kube-system", "", "list"},
		{"", "secrets", "kube-system", "bootstrap-token-abcdef", "get"},
		{"", "secrets", "", "", "list"},
		{"", "secrets", "default", "", "watch"},
		{"", "secrets", ns, "", "create"},
		{"", "secrets", ns, "another-secret", "get"},
		{"", "secrets", ns, "another-secret", "update"},
		{"", "configmaps", "kube-system", "kubeadm-config", "get"},
		{"", "serviceaccounts/token", ns, "dc-webhook", "create"},
		{"", "serviceaccounts/token", "kube-system", "default", "create"},
		{"", "serviceaccounts", "", "", "impersonate"},
		{"", "users", "", "system:admin", "impersonate"},
		{"", "groups", "", "system:masters", "impersonate"},
		{"certificates.k8s.io", "certificatesigningrequests", "", "", "create"},
		{"certificates.k8s.io", "signers", "", "kubernetes.io/kube-apiserver-client", "sign"},
		// Admission: no switching off other webhooks, no replacing its own.
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", "create"},
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "", config, "delete"},
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "other-webhook", "update"},
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "other-webhook", "patch"},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", "create"},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", config, "delete"},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "other-webhook", "update"},
		{"admissionregistration.k8s.io", "validatingadmissionpolicies", "", "", "create"},
		{"admissionregistration.k8s.io", "validatingadmissionpolicybindings", "", "", "create"},
		// The policies and their CRD: no loosening its own rules.
		{v1alpha1.GroupVersion.Group, v1alpha1.Resource, "", "", "create"},
		{v1alpha1.GroupVersion.Group, v1alpha1.Resource, "", "macstadium", "update"},
		{v1alpha1.GroupVersion.Group, v1alpha1.Resource, "", "macstadium", "delete"},
		{"apiextensions.k8s.io", "customresourcedefinitions", "", v1alpha1.Resource + "." + v1alpha1.GroupVersion.Group, "patch"},
		{"apiextensions.k8s.io", "customresourcedefinitions", "", v1alpha1.Resource + "." + v1alpha1.GroupVersion.Group, "delete"},
		// RBAC: no granting itself more.
		{"rbac.authorization.k8s.io", "clusterrolebindings", "", "", "create"},
		{"rbac.authorization.k8s.io", "rolebindings", ns, "", "create"},
		{"rbac.authorization.k8s.io", "clusterroles", "", "dc-webhook", "update"},
		{"rbac.authorization.k8s.io", "clusterroles", "", "", "escalate"},
		{"rbac.authorization.k8s.io", "clusterroles", "", "cluster-admin", "bind"},
		{"rbac.authorization.k8s.io", "roles", ns, "dc-webhook", "update"},
		// Leader election and events: not used, so not granted.
		{"coordination.k8s.io", "leases", ns, "", "create"},
		{"", "events", ns, "", "create"},
		{"events.k8s.io", "events", ns, "", "create"},
	}
}

// manifestRBAC is what manifests/base/rbac.yaml holds.
type manifestRBAC struct {
	serviceAccount      *corev1.ServiceAccount
	clusterRoles        []*rbacv1.ClusterRole
	roles               []*rbacv1.Role
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
	roleBindings        []*rbacv1.RoleBinding
}

// readManifestRBAC decodes every document of manifests/base/rbac.yaml,
// failing t on a kind it does not expect there.
func readManifestRBAC(t *testing.T) manifestRBAC {
	t.Helper()
	path := filepath.Join(repoRoot(t), "manifests", "base", "rbac.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m manifestRBAC
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s document %d: %v", path, i, err)
		}
		var target any
		switch meta.Kind {
		case "ServiceAccount":
			if m.serviceAccount != nil {
				t.Fatalf("%s: more than one ServiceAccount", path)
			}
			m.serviceAccount = &corev1.ServiceAccount{}
			target = m.serviceAccount
		case "ClusterRole":
			r := &rbacv1.ClusterRole{}
			m.clusterRoles, target = append(m.clusterRoles, r), r
		case "Role":
			r := &rbacv1.Role{}
			m.roles, target = append(m.roles, r), r
		case "ClusterRoleBinding":
			b := &rbacv1.ClusterRoleBinding{}
			m.clusterRoleBindings, target = append(m.clusterRoleBindings, b), b
		case "RoleBinding":
			b := &rbacv1.RoleBinding{}
			m.roleBindings, target = append(m.roleBindings, b), b
		default:
			t.Fatalf("%s document %d: unexpected kind %q", path, i, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			t.Fatalf("%s document %d (%s): %v", path, i, meta.Kind, err)
		}
	}
	if m.serviceAccount == nil {
		t.Fatalf("%s holds no ServiceAccount", path)
	}
	return m
}

// TestWebhookRBACManifestIsLeastPrivilege reads manifests/base/rbac.yaml:
// no wildcards, every write names its objects, the bindings bind the
// webhook's ServiceAccount alone, and every verb it grants on every
// resource is one webhookNeeds lists, with the code that needs it. A
// permission added without a need, or a need dropped from the code without
// its permission, fails here.
func TestWebhookRBACManifestIsLeastPrivilege(t *testing.T) {
	m := readManifestRBAC(t)
	sa := m.serviceAccount
	o := webhook.NewOptions()
	if sa.Namespace != o.Namespace {
		t.Errorf("ServiceAccount %s is in namespace %q, the webhook runs in %q", sa.Name, sa.Namespace, o.Namespace)
	}

	granted := map[key]bool{}
	for _, r := range m.clusterRoles {
		// No exceptions: every write of the webhook names its object.
		checkRuleHygiene(t, "ClusterRole "+r.Name, r.Rules, nil)
		bound := false
		for _, b := range m.clusterRoleBindings {
			if b.RoleRef.Kind == "ClusterRole" && b.RoleRef.Name == r.Name {
				bound = true
				checkSubjects(t, "ClusterRoleBinding "+b.Name, b.Subjects, sa)
			}
		}
		if !bound {
			t.Errorf("ClusterRole %s is bound by no ClusterRoleBinding of rbac.yaml", r.Name)
		}
		for _, k := range ruleKeys(r.Rules, "") {
			granted[k] = true
		}
	}
	for _, r := range m.roles {
		checkRuleHygiene(t, "Role "+r.Namespace+"/"+r.Name, r.Rules, nil)
		if r.Namespace != sa.Namespace {
			t.Errorf("Role %s is in namespace %q: the webhook needs namespaced rights only in its own, %q", r.Name, r.Namespace, sa.Namespace)
		}
		bound := false
		for _, b := range m.roleBindings {
			if b.RoleRef.Kind == "Role" && b.RoleRef.Name == r.Name && b.Namespace == r.Namespace {
				bound = true
				checkSubjects(t, "RoleBinding "+b.Namespace+"/"+b.Name, b.Subjects, sa)
			}
		}
		if !bound {
			t.Errorf("Role %s/%s is bound by no RoleBinding of rbac.yaml", r.Namespace, r.Name)
		}
		for _, k := range ruleKeys(r.Rules, r.Namespace) {
			granted[k] = true
		}
	}
	for _, b := range m.roleBindings {
		if b.RoleRef.Kind != "Role" {
			t.Errorf("RoleBinding %s/%s binds %s %s: bind the namespaced Role of rbac.yaml", b.Namespace, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
	}

	needs := keys(webhookNeeds())
	for k := range granted {
		if _, ok := needs[k]; !ok {
			t.Errorf("rbac.yaml grants %s, which nothing in webhook/ needs: remove it (or add the call and its reason to webhookNeeds)", k)
		}
	}
	for k, why := range needs {
		if !granted[k] {
			t.Errorf("rbac.yaml does not grant %s, which the webhook needs: %s", k, why)
		}
	}
}

// checkSubjects fails t unless subjects is exactly the ServiceAccount sa.
func checkSubjects(t *testing.T, what string, subjects []rbacv1.Subject, sa *corev1.ServiceAccount) {
	t.Helper()
	want := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: sa.Namespace, Name: sa.Name}
	if len(subjects) != 1 || subjects[0] != want {
		t.Errorf("%s binds %+v, want only the ServiceAccount %s/%s", what, subjects, sa.Namespace, sa.Name)
	}
}

// TestWebhookServiceAccountCanDoExactlyItsNeeds applies namespace.yaml and
// rbac.yaml to the real API server and asks it, with SubjectAccessReviews
// as the ServiceAccount's token would be judged, about every verb on every
// resource webhookNeeds touches, at the names and namespaces it needs and at
// others: allowed exactly where a need says so. Then the escalations a
// stolen token would try are all denied.
func TestWebhookServiceAccountCanDoExactlyItsNeeds(t *testing.T) {
	c := cluster.Require(t)
	ctx := context.Background()
	base := filepath.Join(repoRoot(t), "manifests", "base")
	if err := webhooktest.ApplyFiles(ctx, c.RESTConfig(), filepath.Join(base, "namespace.yaml"), filepath.Join(base, "rbac.yaml")); err != nil {
		t.Fatal(err)
	}
	sa := readManifestRBAC(t).serviceAccount
	s := serviceAccount(sa.Namespace, sa.Name)
	cs := c.Client()
	needs := webhookNeeds()
	// The bindings reach the authorizer through its watch: wait for one
	// need of the ClusterRole and one of the Role.
	var first []key
	seen := map[bool]bool{}
	for _, g := range needs {
		if cluster := g.namespace == ""; !seen[cluster] {
			seen[cluster] = true
			first = append(first, key{g.group, g.resource, g.namespace, g.name, g.verbs[0]})
		}
	}
	waitAllowed(t, cs, s, first)

	model := grants(needs)
	allowedExactly(ctx, t, cs, s, needs, "the webhook needs")
	for _, k := range webhookEscalations() {
		if model(k) {
			t.Fatalf("escalation %s is also a need: fix one of the tables", k)
		}
		if got, reason := allowed(ctx, t, cs, s, k); got {
			t.Errorf("%s may %s (%s): a stolen webhook token must not", s.user, k, reason)
		}
	}
}

// grants returns whether a call k is one the grants gs allow.
func grants(gs []grant) func(k key) bool {
	return func(k key) bool {
		for _, g := range gs {
			if g.group == k.group && g.resource == k.resource && slices.Contains(g.verbs, k.verb) &&
				(g.namespace == "" || g.namespace == k.namespace) && (g.name == "" || g.name == k.name) {
				return true
			}
		}
		return false
	}
}

// allowedExactly asks the API server, as s, every probe of needs and fails
// t for each answer that differs from the grants: allowed though not
// needed, or needed (by what) and refused. It returns how many it asked.
func allowedExactly(ctx context.Context, t *testing.T, cs kubernetes.Interface, s subject, needs []grant, what string) int {
	t.Helper()
	model := grants(needs)
	asked := 0
	for _, k := range probes(needs) {
		got, reason := allowed(ctx, t, cs, s, k)
		asked++
		switch want := model(k); {
		case got && !want:
			t.Errorf("%s may %s, which nothing in webhook/ needs (%s)", s.user, k, reason)
		case !got && want:
			t.Errorf("%s may not %s, which %s", s.user, k, what)
		}
	}
	return asked
}

// probes returns, for every resource the grants touch, every verb of
// allVerbs at every namespace and name the grants use, at another name, in
// another namespace and cluster-wide.
func probes(gs []grant) []key {
	type point struct{ namespace, name string }
	type res struct{ group, resource string }
	points := map[res]map[point]bool{}
	add := func(r res, p point) {
		if points[r] == nil {
			points[r] = map[point]bool{}
		}
		points[r][p] = true
	}
	for _, g := range gs {
		r := res{g.group, g.resource}
		add(r, point{"", ""})
		add(r, point{"kube-system", ""})
		add(r, point{g.namespace, g.name})
		if g.name != "" {
			add(r, point{g.namespace, "not-" + g.name})
		}
		if g.namespace != "" {
			add(r, point{"kube-system", g.name})
			add(r, point{"", g.name})
		}
	}
	var out []key
	for r, ps := range points {
		for p := range ps {
			for _, v := range allVerbs {
				out = append(out, key{r.group, r.resource, p.namespace, p.name, v})
			}
		}
	}
	return out
}

// TestWebhookRunsOnItsNeedsAlone runs the real dc-webhook with
// --self-managed-certs as a ServiceAccount bound to webhookNeeds and nothing
// else, with a policy whose spread rule names no namespace (so that member
// pods are watched cluster-wide). It must issue its certificate into the
// Secret, inject the CA into both webhook configurations, sync every cache
// and become ready, and log no forbidden request: the needs are enough.
func TestWebhookRunsOnItsNeedsAlone(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := repoRoot(t)
	base := filepath.Join(root, "manifests", "base")
	manifests := filepath.Join(root, "manifests")
	if err := webhooktest.ApplyFiles(ctx, c.RESTConfig(),
		filepath.Join(manifests, "crd", "placement.kubectl-dc.io_placementpolicies.yaml"),
		filepath.Join(manifests, "examples", "macstadium-policy.yaml"),
		filepath.Join(base, "namespace.yaml"), filepath.Join(base, "secret.yaml")); err != nil {
		t.Fatal(err)
	}
	cs := c.Client()
	o := webhook.NewOptions()
	t.Cleanup(func() {
		_ = cs.CoreV1().Secrets(o.Namespace).Delete(context.Background(), o.CertSecret, metav1.DeleteOptions{})
	})

	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: policy.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	anywhere := tu.Policy("rbac-e2e-anywhere").Spread(tu.SpreadPods("quorum", nil, "app", "rbac-e2e-quorum").Action(v1alpha1.ActionAudit)).Obj()
	if err := cl.Create(ctx, anywhere); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Delete(context.Background(), anywhere) })

	// Webhook configurations named as deployed, matching nothing: the
	// Service behind them does not exist here.
	v, m := webhooktest.CreateNeverCalled(ctx, t, cs, o.Namespace, o.WebhookConfiguration)

	// A ServiceAccount of its own, so that rbac.yaml (which another test
	// applies) does not help: only the needs are bound to it.
	const name = "dc-webhook-needs-only"
	clusterRole, role := rolesOf(name, o.Namespace, webhookNeeds())
	bindClusterRole(t, c, o.Namespace, name, clusterRole, true)
	bindRole(t, c, o.Namespace, name, role)

	bin, err := cluster.BuildBinary("./cmd/dc-webhook")
	if err != nil {
		t.Fatal(err)
	}
	local, err := webhooktest.Start(ctx, webhooktest.Options{
		Binary: bin, Kubeconfig: impersonating(t, c, serviceAccount(o.Namespace, name)), REST: c.RESTConfig(),
		ManifestsDir: manifests, SelfManagedCerts: true, Dir: t.TempDir(),
		Args: []string{"--namespace", o.Namespace},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = local.Stop() })

	var secret *corev1.Secret
	err = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		s, err := cs.CoreV1().Secrets(o.Namespace).Get(ctx, o.CertSecret, metav1.GetOptions{})
		if err != nil || len(s.Data["ca.crt"]) == 0 || len(s.Data["tls.crt"]) == 0 || len(s.Data["tls.key"]) == 0 {
			return false, nil
		}
		gv, err1 := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, v.Name, metav1.GetOptions{})
		gm, err2 := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, m.Name, metav1.GetOptions{})
		if err1 != nil || err2 != nil {
			return false, nil
		}
		secret = s
		return injected(gv.Webhooks, s.Data["ca.crt"]) && injectedM(gm.Webhooks, s.Data["ca.crt"]), nil
	})
	if err != nil {
		t.Fatalf("the rotator did not fill %s and inject its CA on the needs alone: %v\n%s", o.CertSecret, err, local.LogTail())
	}
	// What the kubelet does with the Secret volume.
	if err := os.MkdirAll(local.CertDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tls.key", "tls.crt"} {
		if err := os.WriteFile(filepath.Join(local.CertDir, f), secret.Data[f], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := local.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(local.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "forbidden") {
			t.Errorf("dc-webhook made a request its needs do not allow: %s", line)
		}
	}
}

func injected(hooks []admissionregistrationv1.ValidatingWebhook, ca []byte) bool {
	for _, h := range hooks {
		if !bytes.Equal(h.ClientConfig.CABundle, ca) {
			return false
		}
	}
	return len(hooks) > 0
}

func injectedM(hooks []admissionregistrationv1.MutatingWebhook, ca []byte) bool {
	for _, h := range hooks {
		if !bytes.Equal(h.ClientConfig.CABundle, ca) {
			return false
		}
	}
	return len(hooks) > 0
}

// rolesOf turns grants into a ClusterRole (the cluster-wide ones) and a
// Role in namespace (the ones of that namespace), both named name.
func rolesOf(name, namespace string, gs []grant) (*rbacv1.ClusterRole, *rbacv1.Role) {
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
	r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	for _, g := range gs {
		rule := rbacv1.PolicyRule{APIGroups: []string{g.group}, Resources: []string{g.resource}, Verbs: g.verbs}
		if g.name != "" {
			rule.ResourceNames = []string{g.name}
		}
		if g.namespace == "" {
			cr.Rules = append(cr.Rules, rule)
		} else {
			r.Rules = append(r.Rules, rule)
		}
	}
	return cr, r
}

// impersonating writes the admin kubeconfig of c impersonating s, so that
// only the RBAC bound to s applies.
func impersonating(t *testing.T, c *cluster.Cluster, s subject) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate, a.ImpersonateGroups = s.user, s.groups
	}
	path := filepath.Join(t.TempDir(), "impersonating.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
