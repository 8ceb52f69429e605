package check

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/webhook"
)

// The declared kinds of the suite: a CRD group of two kinds whose pod
// templates sit at different depths.
const declaredGroup = "e2e.kubectl-dc.io"

var declaredKinds = []struct {
	kind, plural string
	path         []string
}{
	{"Widget", "widgets", []string{"spec", "template"}},
	{"Gadget", "gadgets", []string{"spec", "runner", "pod"}},
}

// declaredPolicies are the differential's pinned policies, the listed one
// declaring both kinds, and a spread rule over role=quorum templates in
// plain.
func declaredPolicies(label, plain string) []*v1alpha1.PlacementPolicy {
	ps := differentialPolicies(label)
	for _, k := range declaredKinds {
		ps[0].Spec.WorkloadKinds = append(ps[0].Spec.WorkloadKinds, v1alpha1.WorkloadKind{Group: declaredGroup, Kind: k.kind, TemplatePath: strings.Join(k.path, ".")})
	}
	return append(ps, quorumPolicy(label, plain))
}

// installDeclaredCRDs creates a CRD for each declared kind (any spec kept
// as sent) and waits until they serve.
func installDeclaredCRDs(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	for _, k := range declaredKinds {
		cluster.InstallCRD(ctx, t, dyn, schema.GroupVersionResource{Group: declaredGroup, Version: "v1", Resource: k.plural}, k.kind)
	}
}

// declaredSample is a declared object, its built-in twin (a Deployment of
// no replicas with the same labels and pod template) and three verdicts.
type declaredSample struct {
	obj  *unstructured.Unstructured
	twin *appsv1.Deployment
	path []string
	what string
	file string
	// check judges obj; twin is the webhook's verdict on the twin, direct
	// its verdict on obj itself.
	check, twin2, direct  verdict
	checkDC, twinDC, dcDC string
}

func (s *declaredSample) key() string {
	return s.obj.GetKind() + "/" + s.obj.GetNamespace() + "/" + s.obj.GetName()
}

// declaredOf makes the object of kind k with d's metadata and pod
// template.
func declaredOf(d *appsv1.Deployment, kind string, path []string) (*unstructured.Unstructured, error) {
	t, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&d.Spec.Template)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(declaredGroup + "/v1")
	u.SetKind(kind)
	u.SetNamespace(d.Namespace)
	u.SetName(d.Name)
	u.SetLabels(d.Labels)
	if err := unstructured.SetNestedMap(u.Object, t, path...); err != nil {
		return nil, err
	}
	return u, nil
}

// buildDeclaredCorpus draws Deployments as the main differential draws its
// objects (rules, selector shapes, placements, datacenter labels,
// namespaces), adds quorum templates, and makes each the twin of a Widget
// or a Gadget.
func buildDeclaredCorpus(seed uint64, label string, nss corpusNamespaces, n int) ([]*declaredSample, error) {
	r := rand.New(rand.NewPCG(seed, 0x64636c64))
	places := testutil.Placements()
	targets := []struct {
		match, miss []string
	}{
		{[]string{"app", "worker"}, []string{"app", "worker-x"}},
		{[]string{"app", "brain"}, []string{"app", "brainy"}},
		{[]string{"app", "web", "tier", "pinned"}, []string{"app", "web", "tier", "free"}},
		{[]string{"app", "edge"}, []string{"app", "edges"}},
		{[]string{"app", "web", "track", "canary"}, []string{"app", "web", "track", "canary", "legacy", "yes"}},
	}
	pick := func(list ...string) string { return list[r.IntN(len(list))] }
	var out []*declaredSample
	for i := range n {
		name := fmt.Sprintf("x%03d", i)
		ns := []string{nss.prod, nss.dev, nss.plain}[r.IntN(3)]
		b := testutil.Deployment(ns, name).Replicas(0).TemplateLabels("corpus", name)
		tg := targets[r.IntN(len(targets))]
		var what []string
		switch r.IntN(4) {
		case 0:
			b.Labels(tg.miss...)
			what = append(what, "no match")
		case 1:
			b.Labels(tg.match...)
			what = append(what, "object and template labels")
		case 2:
			b.ObjectLabels("owner", "team").TemplateLabels(tg.match...)
			what = append(what, "template labels only")
		default:
			b.ObjectLabels(tg.match...).TemplateLabels(tg.miss...)
			what = append(what, "object labels only")
		}
		dc := pick("pod-1", "pod-2", "pod-3", "pod-9")
		other := pick("pod-1", "pod-2", "pod-3")
		if p := i % (len(places) + 1); p < len(places) {
			b.Place(places[p], label, dc, other)
			what = append(what, fmt.Sprintf("%s (%s, %s)", places[p], dc, other))
		} else {
			b.FuzzPlacement(r, label, []string{"pod-1", "pod-2", "pod-3", "pod2", "", "ssd"})
			what = append(what, "fuzz")
		}
		if x := r.IntN(3); x > 0 {
			v := dc
			if x == 2 {
				v = other
			}
			b.ObjectLabels(fromLabel, v)
			what = append(what, fromLabel+"="+v)
		}
		out = append(out, &declaredSample{twin: b.Deployment(), what: strings.Join(what, ", ")})
	}
	// Quorum templates: spread by the scheduler or not.
	for i, tsc := range []bool{true, false} {
		name := fmt.Sprintf("q%03d", i)
		b := testutil.Deployment(nss.plain, name).Replicas(0).TemplateLabels("corpus", name).Labels("role", "quorum")
		what := "quorum template without a spread constraint"
		if tsc {
			b.TopologySpread(label, corev1.DoNotSchedule)
			what = "quorum template spread by DoNotSchedule"
		}
		out = append(out, &declaredSample{twin: b.Deployment(), what: what})
	}
	for i, s := range out {
		k := declaredKinds[i%len(declaredKinds)]
		obj, err := declaredOf(s.twin, k.kind, k.path)
		if err != nil {
			return nil, err
		}
		s.obj, s.path = obj, k.path
	}
	return out, nil
}

// TestDifferentialDeclared: objects of two kinds a policy declares in
// spec.workloadKinds (templates at spec.template and spec.runner.pod),
// drawn over every rule, selector shape, placement and datacenter label,
// are judged by kubectl dc check -f against the live policies; each must
// get the verdict and datacenter the webhook gives its built-in twin (a
// Deployment with the same labels and pod template), since a declared
// template is judged as a Deployment's is, and the verdict the webhook
// gives the object itself.
func TestDifferentialDeclared(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin := kubectlDC(t)
	label := c.Label()
	nss := corpusNamespaces{
		prod:  differentialNamespace(ctx, t, c, "dcl-prod", "env", "prod"),
		dev:   differentialNamespace(ctx, t, c, "dcl-dev", "env", "dev"),
		plain: differentialNamespace(ctx, t, c, "dcl-plain"),
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	installDeclaredCRDs(ctx, t, dyn)
	startWebhookWith(ctx, t, c, declaredPolicies(label, nss.plain), differentialReady(dyn, nss, label))
	// A replica adds the declared kinds' rules when it scopes the
	// configurations, at its first sync or its next resync.
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		return webhookSendsGroup(ctx, c, declaredGroup)
	})
	if err != nil {
		t.Fatalf("the webhook configurations never sent %s objects to dc-webhook: %v", declaredGroup, err)
	}

	corpus, err := buildDeclaredCorpus(differentialSeed, label, nss, 120)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, s := range corpus {
		s.file = writeYAML(t, filepath.Join(dir, "declared"), fmt.Sprintf("%03d.yaml", i), s.obj)
	}
	checkDeclared(t, bin, c, filepath.Join(dir, "declared"), corpus, label)

	forEach(corpus, func(s *declaredSample) {
		got, err := createObject(ctx, dyn, s.twin, true)
		s.twin2 = verdictOf(err)
		if err == nil {
			s.twinDC = templateDC(got, label)
		} else if !s.twin2.set {
			t.Errorf("%s: the twin's dry run failed, not by a denial: %v", s.key(), err)
		}
		gvr := schema.GroupVersionResource{Group: declaredGroup, Version: "v1", Resource: strings.ToLower(s.obj.GetKind()) + "s"}
		res, err := dyn.Resource(gvr).Namespace(s.obj.GetNamespace()).Create(ctx, s.obj.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		s.direct = verdictOf(err)
		if err == nil {
			s.dcDC, _, _ = unstructured.NestedString(res.Object, append(append([]string(nil), s.path...), "spec", "nodeSelector", label)...)
		} else if !s.direct.set {
			t.Errorf("%s: the dry run failed, not by a denial: %v", s.key(), err)
		}
	})

	var twinDiffer, directDiffer []*declaredSample
	denied := 0
	for _, s := range corpus {
		if s.check.denied {
			denied++
		}
		if !s.check.set || !s.twin2.set || s.check.denied != s.twin2.denied || (!s.check.denied && s.checkDC != s.twinDC) {
			twinDiffer = append(twinDiffer, s)
		}
		if !s.direct.set || s.check.denied != s.direct.denied || (!s.check.denied && s.checkDC != s.dcDC) {
			directDiffer = append(directDiffer, s)
		}
	}
	t.Logf("%d declared objects: %d denied by check; %d differ from their twin's verdict, %d from the webhook's on the object itself",
		len(corpus), denied, len(twinDiffer), len(directDiffer))
	t.Run("as its twin Deployment", func(t *testing.T) {
		for _, s := range twinDiffer {
			data, _ := yaml.Marshal(s.obj)
			t.Errorf("%s (%s): check and the webhook on its twin Deployment differ\n  check: %s (datacenter %q)\n  twin:  %s (datacenter %q)\n%s",
				s.key(), s.what, s.check, s.checkDC, s.twin2, s.twinDC, data)
		}
	})
	t.Run("as the webhook judges the object", func(t *testing.T) {
		for _, s := range directDiffer {
			t.Errorf("%s (%s): check and the webhook differ\n  check:   %s (datacenter %q)\n  webhook: %s (datacenter %q)",
				s.key(), s.what, s.check, s.checkDC, s.direct, s.dcDC)
		}
	})
}

// webhookSendsGroup reports whether the validating and the mutating
// workload webhooks of the local dc-webhook have a rule for the API group.
func webhookSendsGroup(ctx context.Context, c *cluster.Cluster, group string) (bool, error) {
	name := "dc-webhook" + webhook.LocalSuffix
	v, err := c.Client().AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("reading the validating webhook configuration: %w", err)
	}
	m, err := c.Client().AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("reading the mutating webhook configuration: %w", err)
	}
	var rules [][]admissionregistrationv1.RuleWithOperations
	for _, w := range v.Webhooks {
		if w.Name == "workloads.placement.kubectl-dc.io" {
			rules = append(rules, w.Rules)
		}
	}
	for _, w := range m.Webhooks {
		if w.Name == "workloads.placement.kubectl-dc.io" {
			rules = append(rules, w.Rules)
		}
	}
	if len(rules) != 2 {
		return false, nil
	}
	for _, rs := range rules {
		if !slices.ContainsFunc(rs, func(r admissionregistrationv1.RuleWithOperations) bool { return slices.Contains(r.APIGroups, group) }) {
			return false, nil
		}
	}
	return true, nil
}

// verdictOf reads a create's error: admitted, denied by a webhook, or no
// verdict (another failure).
func verdictOf(err error) verdict {
	switch {
	case err == nil:
		return verdict{set: true}
	case strings.Contains(err.Error(), "denied the request"):
		return verdict{set: true, denied: true, messages: []string{err.Error()}}
	}
	return verdict{}
}

// checkDeclared runs kubectl dc check -f over dir against the live
// policies and files results and mutations under their samples by file.
func checkDeclared(t *testing.T, bin string, c *cluster.Cluster, dir string, corpus []*declaredSample, label string) {
	t.Helper()
	out, code := runCheckRaw(t, bin, c.Kubeconfig(), "check", "-f", dir, "-o", "json")
	var rep struct {
		report
		Mutations []struct {
			Source, Field, Value string
		} `json:"mutations"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check -f: exit %d, not a JSON report: %v\n%s", code, err, out)
	}
	if rep.Summary.Objects != len(corpus) {
		t.Errorf("check -f: %d objects checked, want %d", rep.Summary.Objects, len(corpus))
	}
	byFile := map[string]*declaredSample{}
	for _, s := range corpus {
		byFile[s.file] = s
		s.check.set = true
		s.checkDC, _, _ = unstructured.NestedString(s.obj.Object, append(append([]string(nil), s.path...), "spec", "nodeSelector", label)...)
	}
	for _, r := range rep.Results {
		s := byFile[r.Source.File]
		if s == nil || r.Action != "Deny" {
			t.Errorf("check -f: an unexpected result: %s", dump([]result{r}))
			continue
		}
		s.check.denied = true
		s.check.messages = append(s.check.messages, r.Rule+" "+r.Field+": "+r.Message)
	}
	for _, m := range rep.Mutations {
		file, _, _ := strings.Cut(m.Source, "#")
		if s := byFile[file]; s != nil && strings.HasSuffix(m.Field, "nodeSelector["+label+"]") {
			s.checkDC = m.Value
		}
	}
}
