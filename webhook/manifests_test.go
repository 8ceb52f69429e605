package webhook

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

func build(t *testing.T, dir string) resmap.ResMap {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return m
}

func get[T any](t *testing.T, m resmap.ResMap, kind, name string) *T {
	t.Helper()
	for _, r := range m.Resources() {
		if r.GetKind() == kind && r.GetName() == name {
			data, err := r.AsYAML()
			if err != nil {
				t.Fatal(err)
			}
			out := new(T)
			if err := yaml.UnmarshalStrict(data, out); err != nil {
				t.Fatalf("%s/%s: %v", kind, name, err)
			}
			return out
		}
	}
	return nil
}

// TestManifests checks the deployed shape that the issue asks for.
func TestManifests(t *testing.T) {
	m := build(t, "../manifests")
	if get[map[string]any](t, m, "CustomResourceDefinition", "placementpolicies.placement.kubectl-dc.io") == nil {
		t.Error("the CRD is not part of manifests/")
	}
	d := get[appsv1.Deployment](t, m, "Deployment", "dc-webhook")
	if d == nil {
		t.Fatal("no Deployment dc-webhook")
	}
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %d, want 3", *d.Spec.Replicas)
	}
	ps := d.Spec.Template.Spec
	if ps.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName = %q", ps.PriorityClassName)
	}
	zone := false
	for _, c := range ps.TopologySpreadConstraints {
		zone = zone || (c.TopologyKey == "topology.kubernetes.io/zone" && c.WhenUnsatisfiable == corev1.DoNotSchedule)
	}
	if !zone {
		t.Error("no DoNotSchedule topology spread over topology.kubernetes.io/zone")
	}
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot ||
		ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot and seccomp RuntimeDefault", ps.SecurityContext)
	}
	c := ps.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container securityContext = %+v", sc)
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("probes missing")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Error("resources missing")
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--self-managed-certs") {
		t.Errorf("args %v do not enable self-managed certificates", c.Args)
	}
	// A terminating replica must answer through its whole shutdown delay,
	// or requests the Service still routes to it fail.
	delay := time.Duration(0)
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--shutdown-delay="); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("--shutdown-delay: %v", err)
			}
			delay = d
		}
	}
	if delay <= 0 {
		t.Errorf("args %v: no --shutdown-delay, so a terminating replica closes its port while the Service still lists it", c.Args)
	}
	if ps.TerminationGracePeriodSeconds == nil || time.Duration(*ps.TerminationGracePeriodSeconds)*time.Second <= delay {
		t.Errorf("terminationGracePeriodSeconds %v must exceed --shutdown-delay %s", ps.TerminationGracePeriodSeconds, delay)
	}
	pdb := get[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget", "dc-webhook")
	if pdb == nil || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 {
		t.Errorf("PDB = %+v, want minAvailable 2", pdb)
	}
	if get[corev1.Service](t, m, "Service", "dc-webhook") == nil {
		t.Error("no Service")
	}

	cr := get[rbacv1.ClusterRole](t, m, "ClusterRole", "dc-webhook")
	role := get[rbacv1.Role](t, m, "Role", "dc-webhook")
	if cr == nil || role == nil {
		t.Fatal("RBAC missing")
	}
	checkPlacementLease(t, m, d)
	var rules []rbacv1.PolicyRule
	for _, r := range m.Resources() {
		switch r.GetKind() {
		case "ClusterRole":
			rules = append(rules, get[rbacv1.ClusterRole](t, m, r.GetKind(), r.GetName()).Rules...)
		case "Role":
			rules = append(rules, get[rbacv1.Role](t, m, r.GetKind(), r.GetName()).Rules...)
		}
	}
	for _, r := range rules {
		for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
			for _, v := range list {
				if v == "*" {
					t.Errorf("wildcard in %+v", r)
				}
			}
		}
		for _, v := range r.Verbs {
			if v != "get" && v != "list" && v != "watch" && len(r.ResourceNames) == 0 {
				t.Errorf("write verb %q without resourceNames in %+v", v, r)
			}
			if v == "create" || v == "delete" {
				t.Errorf("verb %q granted in %+v", v, r)
			}
		}
	}
}

// checkPlacementLease fails t unless the Deployment d serialises member
// placements through a Lease that m creates in d's namespace, and a Role
// bound to d's ServiceAccount grants get and update on that Lease by name
// and nothing else: the flag without the Lease refuses every member
// placement, the Lease without the flag serialises nothing.
func checkPlacementLease(t *testing.T, m resmap.ResMap, d *appsv1.Deployment) {
	t.Helper()
	name := ""
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--placement-lease="); ok {
			name = v
		}
	}
	if name == "" {
		t.Errorf("Deployment %s passes no --placement-lease: concurrent member placements over several replicas are not serialised; add --placement-lease=%s (manifests/base/webhook-placements.yaml)", d.Name, placementLease)
		return
	}
	var lease *coordinationv1.Lease
	for _, r := range m.Resources() {
		if r.GetKind() == "Lease" && r.GetName() == name && r.GetNamespace() == d.Namespace {
			lease = get[coordinationv1.Lease](t, m, "Lease", name)
		}
	}
	if lease == nil {
		t.Errorf("Deployment %s passes --placement-lease=%s but the manifests create no Lease %s/%s: list webhook-placements.yaml in manifests/base/kustomization.yaml", d.Name, name, d.Namespace, name)
	}
	sa := d.Spec.Template.Spec.ServiceAccountName
	granted := map[string]bool{}
	for _, r := range m.Resources() {
		if r.GetKind() != "RoleBinding" || r.GetNamespace() != d.Namespace {
			continue
		}
		b := get[rbacv1.RoleBinding](t, m, "RoleBinding", r.GetName())
		bound := false
		for _, s := range b.Subjects {
			bound = bound || (s.Kind == rbacv1.ServiceAccountKind && s.Name == sa && s.Namespace == d.Namespace)
		}
		if !bound || b.RoleRef.Kind != "Role" {
			continue
		}
		role := get[rbacv1.Role](t, m, "Role", b.RoleRef.Name)
		if role == nil {
			t.Errorf("RoleBinding %s binds Role %s, which the manifests do not create", b.Name, b.RoleRef.Name)
			continue
		}
		for _, rule := range role.Rules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					if g != coordinationv1.GroupName || res != "leases" {
						continue
					}
					if len(rule.ResourceNames) != 1 || rule.ResourceNames[0] != name {
						t.Errorf("Role %s grants %v on leases with resourceNames %v: name only the Lease %s", role.Name, rule.Verbs, rule.ResourceNames, name)
					}
					for _, v := range rule.Verbs {
						granted[v] = true
					}
				}
			}
		}
	}
	if verbs := slices.Sorted(maps.Keys(granted)); !slices.Equal(verbs, []string{"get", "update"}) {
		t.Errorf("ServiceAccount %s may [%s] on the Lease %s, want exactly get and update (the ledger reads it and writes it with Update)", sa, strings.Join(verbs, ", "), name)
	}
}

// placementLease is the Lease of manifests/base/webhook-placements.yaml.
const placementLease = "dc-webhook-placements"

func TestCertManagerOverlay(t *testing.T) {
	m := build(t, "../manifests/overlays/cert-manager")
	if s := get[corev1.Secret](t, m, "Secret", "dc-webhook-certs"); s != nil {
		t.Error("the overlay ships the empty Secret cert-manager owns")
	}
	if get[map[string]any](t, m, "Certificate", "dc-webhook") == nil {
		t.Error("no serving Certificate")
	}
	d := get[appsv1.Deployment](t, m, "Deployment", "dc-webhook")
	if args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--self-managed-certs=false") {
		t.Errorf("args = %s", args)
	}
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		w := get[map[string]any](t, m, kind, "dc-webhook")
		meta, _ := (*w)["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		if ann["cert-manager.io/inject-ca-from"] != "dc-system/dc-webhook" {
			t.Errorf("%s annotations = %v", kind, ann)
		}
	}
	if get[rbacv1.Role](t, m, "Role", "dc-webhook") != nil {
		t.Error("the overlay keeps the Secret-writing Role")
	}
	checkPlacementLease(t, m, d)
	cr := get[rbacv1.ClusterRole](t, m, "ClusterRole", "dc-webhook")
	for _, r := range cr.Rules {
		for _, g := range r.APIGroups {
			if g == "admissionregistration.k8s.io" {
				t.Errorf("the overlay keeps webhook-configuration access: %+v", r)
			}
		}
	}
}

// TestCELOverlay: overlays/cel turns on --pinned-enforcement=cel and grants
// exactly what the admission policies' writer needs: list, create, update
// and delete on the four admission policy kinds (names follow the
// policies, so they cannot be listed by name), and get and update on its
// leader election Lease by name; no wildcards, nothing else.
func TestCELOverlay(t *testing.T) {
	m := build(t, "../manifests/overlays/cel")
	d := get[appsv1.Deployment](t, m, "Deployment", "dc-webhook")
	if d == nil {
		t.Fatal("no Deployment dc-webhook")
	}
	if args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--pinned-enforcement=cel") {
		t.Errorf("args %s do not pass --pinned-enforcement=cel", args)
	}
	cr := get[rbacv1.ClusterRole](t, m, "ClusterRole", "dc-webhook-admission-policies")
	if cr == nil {
		t.Fatal("no ClusterRole dc-webhook-admission-policies")
	}
	want := []string{"mutatingadmissionpolicies", "mutatingadmissionpolicybindings", "validatingadmissionpolicies", "validatingadmissionpolicybindings"}
	var resources []string
	for _, r := range cr.Rules {
		if !slices.Equal(r.APIGroups, []string{"admissionregistration.k8s.io"}) {
			t.Errorf("rule %+v outside admissionregistration.k8s.io", r)
		}
		if v := slices.Sorted(slices.Values(r.Verbs)); !slices.Equal(v, []string{"create", "delete", "list", "update"}) {
			t.Errorf("verbs %v, want exactly list, create, update and delete", r.Verbs)
		}
		resources = append(resources, r.Resources...)
	}
	if slices.Sort(resources); !slices.Equal(resources, want) {
		t.Errorf("resources %v, want %v", resources, want)
	}
	o := NewOptions()
	var lease *coordinationv1.Lease
	for _, r := range m.Resources() {
		if r.GetKind() == "Lease" && r.GetName() == o.AdmissionPoliciesLease && r.GetNamespace() == d.Namespace {
			lease = get[coordinationv1.Lease](t, m, "Lease", o.AdmissionPoliciesLease)
		}
	}
	if lease == nil {
		t.Errorf("no Lease %s/%s, the default --admission-policies-lease", d.Namespace, o.AdmissionPoliciesLease)
	}
	role := get[rbacv1.Role](t, m, "Role", "dc-webhook-admission-policies")
	if role == nil || len(role.Rules) != 1 || !slices.Equal(role.Rules[0].ResourceNames, []string{o.AdmissionPoliciesLease}) ||
		!slices.Equal(role.Rules[0].Verbs, []string{"get", "update"}) {
		t.Errorf("Role dc-webhook-admission-policies = %+v, want get and update on the Lease %s by name", role, o.AdmissionPoliciesLease)
	}
	for _, r := range m.Resources() {
		for _, k := range []string{"ClusterRoleBinding", "RoleBinding"} {
			if r.GetKind() == k && r.GetName() == "dc-webhook-admission-policies" {
				return
			}
		}
	}
	t.Error("the admission policy roles are bound to nothing")
}
