package check

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

// differentialSeed makes the corpus; DIFFERENTIAL_SEED replaces it to
// explore other corpora.
const differentialSeed = 14

// perKind is how many objects of each judged kind the corpus holds.
const perKind = 40

// The policies of the differential suite: "differential" lists its
// datacenters, "from-nodes" takes them from the Nodes.
const (
	ruleWorkers = "differential/workers" // app=worker, datacenterFromLabel
	ruleBrains  = "differential/brains"  // app In (brain, brain-canary)
	ruleProd    = "differential/prod"    // tier=pinned in namespaces env=prod, datacenterFromLabel
	ruleEdge    = "from-nodes/edge"      // app=edge, datacenters from the Nodes
	ruleCanary  = "from-nodes/canary"    // track exists, legacy does not, tier not pinned
	ruleNone    = "none"                 // app=web: no rule
)

func differentialPolicies(label string) []*v1alpha1.PlacementPolicy {
	listed := testutil.Policy("differential").Label(label).Datacenters("pod-1", "pod-2", "pod-3").Pinned(
		testutil.PinnedRule("workers").MatchLabels("app", "worker").FromLabel(fromLabel),
		testutil.PinnedRule("brains").In("app", "brain", "brain-canary"),
		testutil.PinnedRule("prod").MatchLabels("tier", "pinned").NamespaceSelector("env", "prod").FromLabel(fromLabel),
	).Obj()
	fromNodes := testutil.Policy("from-nodes").Label(label).Pinned(
		testutil.PinnedRule("edge").MatchLabels("app", "edge"),
		testutil.PinnedRule("canary").Selector(metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "track", Operator: metav1.LabelSelectorOpExists},
			{Key: "legacy", Operator: metav1.LabelSelectorOpDoesNotExist},
			{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"pinned"}},
		}}),
	).Obj()
	return []*v1alpha1.PlacementPolicy{listed, fromNodes}
}

// sample is one object of the corpus and what it exercises.
type sample struct {
	obj             runtime.Object
	kind, ns, name  string
	helm            bool // written without a namespace: the check's -n gives it
	rule, selector  string
	placement       string
	fromLabel       string
	nodeName        string
	offline, dryRun verdict
	live            verdict
	// offlineDC and admittedDC are the template's nodeSelector[label]
	// after the offline mutation and after admission.
	offlineDC, admittedDC string
}

func (s *sample) key() string { return s.kind + "/" + s.ns + "/" + s.name }

// verdict is one way's answer for one object.
type verdict struct {
	set      bool
	denied   bool
	messages []string
}

func (v verdict) String() string {
	if !v.set {
		return "no answer"
	}
	w := "admitted"
	if v.denied {
		w = "denied"
	}
	if len(v.messages) > 0 {
		w += ": " + strings.Join(v.messages, "; ")
	}
	return w
}

// namespaces of the corpus: labels matching the prod rule's selector, not
// matching, none; and one whose objects name no namespace (Helm output).
type corpusNamespaces struct{ prod, dev, plain, helm string }

func (n corpusNamespaces) labels() map[string]map[string]string {
	return map[string]map[string]string{
		n.prod: {"env": "prod"}, n.dev: {"env": "dev"}, n.plain: nil, n.helm: {"env": "prod", "team": "helm"},
	}
}

// buildCorpus makes perKind objects of every judged kind from seed: kinds
// and placements in turn, the rest drawn.
func buildCorpus(seed uint64, label string, nss corpusNamespaces, nodes map[string][]string) []*sample {
	r := rand.New(rand.NewPCG(seed, 0x6b756265))
	kinds := len(policy.JudgedKinds())
	places := testutil.Placements()
	dcs := []string{"pod-1", "pod-2", "pod-3"}
	pickDC := func() string {
		// One in four is a datacenter that does not exist, or nearly.
		return []string{"pod-1", "pod-2", "pod-3", "pod-1", "pod-2", "pod-3", "pod-9", "pod2"}[r.IntN(8)]
	}
	otherThan := func(dc string) string {
		for {
			if o := dcs[r.IntN(len(dcs))]; o != dc {
				return o
			}
		}
	}
	// A target is a rule with label pairs it selects (one of match) and
	// pairs it does not (miss).
	type target struct {
		rule  string
		match [][]string
		miss  []string
	}
	targets := []target{
		{ruleWorkers, [][]string{{"app", "worker"}}, []string{"app", "worker-x"}},
		{ruleBrains, [][]string{{"app", "brain"}, {"app", "brain-canary"}}, []string{"app", "brainy"}},
		{ruleProd, [][]string{{"app", "web", "tier", "pinned"}}, []string{"app", "web", "tier", "free"}},
		{ruleEdge, [][]string{{"app", "edge"}}, []string{"app", "edges"}},
		{ruleCanary, [][]string{{"app", "web", "track", "canary"}, {"app", "web", "track", "", "tier", "free"}}, []string{"app", "web", "track", "canary", "legacy", "yes"}},
		{ruleNone, nil, []string{"app", "web"}},
	}
	var out []*sample
	for i := range kinds * perKind {
		name := fmt.Sprintf("d%03d", i)
		s := &sample{name: name}
		switch r.IntN(4) {
		case 0:
			s.ns = nss.prod
		case 1:
			s.ns = nss.dev
		case 2:
			s.ns = nss.plain
		default:
			s.ns, s.helm = nss.helm, true
		}
		b := testutil.Kinds(s.ns, name)[i%kinds]
		s.kind = b.Kind()
		// Every template has a label of its own, for the workloads'
		// selectors.
		b.TemplateLabels("corpus", name)

		t := targets[r.IntN(len(targets))]
		s.rule = t.rule
		var match []string
		if len(t.match) > 0 {
			match = t.match[r.IntN(len(t.match))]
		}
		shape := r.IntN(4)
		if s.kind == "Pod" && shape > 1 {
			// A pod's labels are its template's.
			shape = 1
		}
		switch {
		case t.rule == ruleNone || shape == 0:
			s.selector = "no match"
			b.Labels(t.miss...)
		case shape == 1:
			s.selector = "object and template labels"
			b.Labels(match...)
		case shape == 2:
			s.selector = "template labels only"
			b.ObjectLabels("owner", "team-"+name).TemplateLabels(match...)
		default:
			s.selector = "object labels only"
			b.ObjectLabels(match...).TemplateLabels(t.miss...)
		}

		dc := pickDC()
		other := otherThan(dc)
		if p := (i/kinds + i) % (len(places) + 1); p < len(places) {
			s.placement = fmt.Sprintf("%s (%s, %s)", places[p], dc, other)
			b.Place(places[p], label, dc, other)
		} else {
			s.placement = "fuzz"
			b.FuzzPlacement(r, label, []string{"pod-1", "pod-2", "pod-3", "pod2", "", "7", "ssd"})
		}

		switch x := r.IntN(10); {
		case x < 4:
			s.fromLabel = "-"
		case x < 7:
			s.fromLabel = dc
		case x < 8:
			s.fromLabel = other
		case x < 9:
			s.fromLabel = "pod-7"
		default:
			s.fromLabel = ""
		}
		if s.fromLabel != "-" {
			b.ObjectLabels(fromLabel, s.fromLabel)
		}

		if s.kind == "Pod" && r.IntN(3) == 0 {
			in := dc
			if _, known := nodes[in]; !known || r.IntN(2) == 0 {
				in = otherThan(dc)
			}
			s.nodeName = nodes[in][len(nodes[in])-1]
			b.NodeName(s.nodeName)
		}
		s.obj = quiet(b.Replicas(0).Obj())
		out = append(out, s)
	}
	return out
}

// quiet keeps an object from making pods it does not need to: suspended
// Jobs and CronJobs (the scalable kinds have zero replicas). DaemonSets
// and Pods still run.
func quiet(obj runtime.Object) runtime.Object {
	yes := true
	switch o := obj.(type) {
	case *batchv1.Job:
		o.Spec.Suspend = &yes
	case *batchv1.CronJob:
		o.Spec.Suspend = &yes
	}
	return obj
}

// TestDifferential: a corpus of objects of every judged kind, with every
// selector, affinity, datacenterFromLabel and namespace shape, gets one
// verdict from (a) kubectl dc check -f offline, (b) the API server with
// dc-webhook (a server-side dry run), and (c) kubectl dc check --live after
// a real create with every rule in Audit. Admitted objects also carry the
// same datacenter offline and after admission (the mutation).
func TestDifferential(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin := kubectlDC(t)
	label := c.Label()
	seed := uint64(differentialSeed)
	if v := os.Getenv("DIFFERENTIAL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("DIFFERENTIAL_SEED=%q: %v", v, err)
		}
		seed = n
	}

	nss := corpusNamespaces{
		prod: differentialNamespace(ctx, t, c, "diff-prod", "env", "prod"),
		dev:  differentialNamespace(ctx, t, c, "diff-dev", "env", "dev"),
		// No labels but the API server's kubernetes.io/metadata.name.
		plain: differentialNamespace(ctx, t, c, "diff-plain"),
		helm:  differentialNamespace(ctx, t, c, "diff-helm", "env", "prod", "team", "helm"),
	}
	nodes := map[string][]string{}
	for _, dc := range []string{"pod-1", "pod-2", "pod-3"} {
		nodes[dc] = c.Nodes(dc)
	}
	corpus := buildCorpus(seed, label, nss, nodes)
	t.Logf("corpus of %d objects from seed %d", len(corpus), seed)
	assertCoverage(t, corpus)

	policies := differentialPolicies(label)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Ready when the webhook knows the namespaces: the prod rule denies in
	// the env=prod namespaces and, since a namespace the webhook does not
	// know yet is judged as if it matched, admits in the others.
	startWebhookWith(ctx, t, c, policies, func(ctx context.Context) (bool, error) {
		for ns, lbls := range nss.labels() {
			probe := testutil.Deployment(ns, "probe").Labels("tier", "pinned").Obj()
			err := dryRun(ctx, dyn, probe)
			if denied := err != nil && strings.Contains(err.Error(), ruleProd); denied != (lbls["env"] == "prod") {
				return false, nil
			}
		}
		return true, nil
	})

	dir := t.TempDir()
	writeCorpus(ctx, t, c, dir, corpus, nss, policies)

	t.Run("offline", func(t *testing.T) { offlineVerdicts(t, bin, c, dir, corpus, nss, label) })
	t.Run("dry run through the webhook", func(t *testing.T) { dryRunVerdicts(ctx, t, dyn, corpus, label) })
	t.Run("live after a create in Audit", func(t *testing.T) { liveVerdicts(ctx, t, bin, c, dyn, corpus, policies) })

	var differ []*sample
	denied := 0
	for _, s := range corpus {
		if s.offline.denied {
			denied++
		}
		if s.offline.denied != s.dryRun.denied || s.offline.denied != s.live.denied || !s.offline.set || !s.dryRun.set || !s.live.set ||
			(!s.dryRun.denied && s.offlineDC != s.admittedDC) {
			differ = append(differ, s)
		}
	}
	t.Logf("%d objects: %d denied, %d admitted by all three", len(corpus), denied, len(corpus)-denied)
	for _, s := range differ {
		data, _ := yaml.Marshal(s.obj)
		t.Errorf("%s: the answers differ\n  selector: %s (%s), placement: %s, datacenterFromLabel: %q, nodeName: %q, no namespace in the file: %v\n"+
			"  offline:  %s\n  dry run:  %s\n  live:     %s\n  datacenter offline %q, after admission %q\n%s",
			s.key(), s.selector, s.rule, s.placement, s.fromLabel, s.nodeName, s.helm, s.offline, s.dryRun, s.live, s.offlineDC, s.admittedDC, data)
	}
	if len(differ) > 0 {
		t.Errorf("%d of %d objects got different answers (seed %d)", len(differ), len(corpus), seed)
	}
}

// assertCoverage fails when the corpus misses a kind, a selector shape, a
// placement, a datacenterFromLabel shape or a namespace kind, or has too
// few objects.
func assertCoverage(t *testing.T, corpus []*sample) {
	t.Helper()
	if len(corpus) < 300 {
		t.Fatalf("corpus of %d objects, want at least 300", len(corpus))
	}
	seen := map[string]bool{}
	for _, s := range corpus {
		place, _, _ := strings.Cut(s.placement, " (")
		from := "datacenterFromLabel"
		if s.fromLabel == "-" {
			from = "no datacenterFromLabel"
		}
		for _, k := range []string{"kind " + s.kind, "selector " + s.selector, "rule " + s.rule, "placement " + place, from + " in " + s.rule,
			"ns " + strings.Split(s.ns, "-")[1], "unknown dc " + strconv.FormatBool(strings.Contains(s.placement, "pod-9"))} {
			seen[k] = true
		}
	}
	var want []string
	for _, k := range policy.JudgedKinds() {
		want = append(want, "kind "+k.Kind)
	}
	for _, p := range testutil.Placements() {
		want = append(want, "placement "+p.String())
	}
	want = append(want, "placement fuzz", "selector no match", "selector object and template labels", "selector template labels only", "selector object labels only",
		"datacenterFromLabel in "+ruleWorkers, "no datacenterFromLabel in "+ruleWorkers, "datacenterFromLabel in "+ruleProd, "no datacenterFromLabel in "+ruleProd,
		"ns prod", "ns dev", "ns plain", "ns helm", "unknown dc true", "rule "+ruleBrains, "rule "+ruleEdge, "rule "+ruleCanary, "rule "+ruleNone)
	for _, w := range want {
		if !seen[w] {
			t.Errorf("the corpus has no object with %s", w)
		}
	}
}

// differentialNamespace creates a namespace named prefix-<random> with
// labels, and waits for its default ServiceAccount (pods need it).
func differentialNamespace(ctx context.Context, t *testing.T, c *cluster.Cluster, prefix string, pairs ...string) string {
	t.Helper()
	ns := testutil.Namespace(prefix+"-"+strconv.FormatUint(rand.Uint64()%1e6, 10), pairs...)
	if _, err := c.Client().CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		_ = c.Client().CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client().CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s: no default ServiceAccount: %v", ns.Name, err)
	}
	return ns.Name
}

// writeCorpus writes dir/manifests/<namespace>.yaml (the Namespace, then
// its objects; those of nss.helm without a namespace, as Helm writes
// them), dir/policy.yaml and dir/nodes.yaml (the live Nodes).
func writeCorpus(ctx context.Context, t *testing.T, c *cluster.Cluster, dir string, corpus []*sample, nss corpusNamespaces, policies []*v1alpha1.PlacementPolicy) {
	t.Helper()
	byNS := map[string][]runtime.Object{}
	for ns, lbls := range nss.labels() {
		var pairs []string
		for k, v := range lbls {
			pairs = append(pairs, k, v)
		}
		byNS[ns] = []runtime.Object{testutil.Namespace(ns, pairs...)}
	}
	for _, s := range corpus {
		obj := s.obj
		if s.helm {
			obj = obj.DeepCopyObject()
			m, err := metaOf(obj)
			if err != nil {
				t.Fatal(err)
			}
			m.SetNamespace("")
		}
		byNS[s.ns] = append(byNS[s.ns], obj)
	}
	for ns, objs := range byNS {
		writeYAML(t, filepath.Join(dir, "manifests"), ns+".yaml", objs...)
	}
	var pols []runtime.Object
	for _, p := range policies {
		pols = append(pols, p)
	}
	writeYAML(t, dir, "policy.yaml", pols...)
	list, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []runtime.Object
	for i := range list.Items {
		n := &list.Items[i]
		n.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}
		n.ManagedFields = nil
		nodes = append(nodes, n)
	}
	writeYAML(t, dir, "nodes.yaml", nodes...)
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

// offlineVerdicts runs kubectl dc check -f over the corpus, offline: the
// policy file, the Nodes file, the Namespace documents, and -n for the
// objects without a namespace.
func offlineVerdicts(t *testing.T, bin string, c *cluster.Cluster, dir string, corpus []*sample, nss corpusNamespaces, label string) {
	out, code := runCheckRaw(t, bin, c.Kubeconfig(), "check", "-f", filepath.Join(dir, "manifests"), "-n", nss.helm,
		"--policy", filepath.Join(dir, "policy.yaml"), "--nodes", filepath.Join(dir, "nodes.yaml"), "-o", "json")
	var rep struct {
		report
		Mutations []struct {
			Object struct{ Kind, Namespace, Name string }
			Field  string
			Value  string
		} `json:"mutations"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check -f: exit %d, not a JSON report: %v\n%s", code, err, out)
	}
	if code != 1 {
		t.Errorf("check -f: exit %d, want 1 (some objects are denied)", code)
	}
	if rep.Summary.Objects != len(corpus) {
		t.Errorf("check -f: %d objects checked, want %d", rep.Summary.Objects, len(corpus))
	}
	byKey := index(corpus)
	for _, s := range corpus {
		s.offline.set = true
		s.offlineDC = templateDC(s.obj, label)
	}
	for _, r := range rep.Results {
		s := byKey[r.Object.Kind+"/"+r.Object.Namespace+"/"+r.Object.Name]
		if s == nil {
			t.Errorf("check -f: a result about an object not in the corpus: %s", dump([]result{r}))
			continue
		}
		if r.Action != "Deny" {
			t.Errorf("check -f: a %s result, the rules deny: %s", r.Action, dump([]result{r}))
			continue
		}
		s.offline.denied = true
		s.offline.messages = append(s.offline.messages, r.Rule+" "+r.Field+": "+r.Message)
	}
	for _, m := range rep.Mutations {
		if s := byKey[m.Object.Kind+"/"+m.Object.Namespace+"/"+m.Object.Name]; s != nil && strings.HasSuffix(m.Field, "nodeSelector["+label+"]") {
			s.offlineDC = m.Value
		}
	}
}

// dryRunVerdicts creates every object with a server-side dry run, through
// the API server and the webhook's mutation and validation.
func dryRunVerdicts(ctx context.Context, t *testing.T, dyn dynamic.Interface, corpus []*sample, label string) {
	each(corpus, func(s *sample) {
		got, err := createObject(ctx, dyn, s.obj, true)
		switch {
		case err == nil:
			s.dryRun = verdict{set: true}
			s.admittedDC = templateDC(got, label)
		case strings.Contains(err.Error(), "denied the request"):
			s.dryRun = verdict{set: true, denied: true, messages: []string{err.Error()}}
		default:
			t.Errorf("%s: dry run failed, not by a denial: %v", s.key(), err)
		}
	})
}

// liveVerdicts switches every rule to Audit, creates the corpus for real
// (everything is admitted) and runs kubectl dc check --live.
func liveVerdicts(ctx context.Context, t *testing.T, bin string, c *cluster.Cluster, dyn dynamic.Interface, corpus []*sample, policies []*v1alpha1.PlacementPolicy) {
	for _, p := range policies {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			u, err := dyn.Resource(policyResource).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			setActions(t, u, "Audit")
			_, err = dyn.Resource(policyResource).Update(ctx, u, metav1.UpdateOptions{})
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("switch policy %s to Audit: %v", p.Name, err)
		}
	}
	// The webhook has the Audit policies when it admits an object each
	// rule denied.
	var probes []runtime.Object
	probed := map[string]bool{}
	for _, s := range corpus {
		if s.dryRun.denied && !probed[s.rule] {
			probed[s.rule] = true
			probes = append(probes, s.obj)
		}
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, p := range probes {
			if _, err := createObject(ctx, dyn, p, true); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the webhook still denies with every rule in Audit: %v", err)
	}
	var mu sync.Mutex
	var failed []string
	each(corpus, func(s *sample) {
		if _, err := createObject(ctx, dyn, s.obj, false); err != nil {
			mu.Lock()
			failed = append(failed, s.key()+": "+err.Error())
			mu.Unlock()
		}
	})
	if len(failed) > 0 {
		sort.Strings(failed)
		t.Fatalf("%d objects not created with every rule in Audit:\n%s", len(failed), strings.Join(failed, "\n"))
	}

	rep, code := runCheck(t, bin, c.Kubeconfig(), "check", "--live", "-o", "json")
	if code != 0 {
		t.Errorf("check --live: exit %d, want 0 (Audit never fails)", code)
	}
	byKey := index(corpus)
	for _, s := range corpus {
		s.live.set = true
	}
	for _, r := range rep.Results {
		s := byKey[r.Object.Kind+"/"+r.Object.Namespace+"/"+r.Object.Name]
		if s == nil {
			// The pods and ReplicaSets the corpus's controllers made.
			continue
		}
		if r.Action != "Audit" {
			t.Errorf("check --live: a %s result, every rule audits: %s", r.Action, dump([]result{r}))
		}
		s.live.denied = true
		s.live.messages = append(s.live.messages, r.Rule+" "+r.Field+": "+r.Message)
	}
}

// createObject creates obj through the dynamic client, as a server-side
// dry run when dry, and returns what the API server stored (or would
// have). Calls that do not reach the webhook in time are retried.
func createObject(ctx context.Context, dyn dynamic.Interface, obj runtime.Object, dry bool) (runtime.Object, error) {
	k, ok := policy.JudgedKindOf(obj)
	if !ok {
		return nil, fmt.Errorf("%T is not a judged kind", obj)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	opts := metav1.CreateOptions{}
	if dry {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var got *unstructured.Unstructured
	for attempt := 0; ; attempt++ {
		got, err = dyn.Resource(k.GVR()).Namespace(u.GetNamespace()).Create(ctx, u.DeepCopy(), opts)
		if err == nil || attempt == 3 || (!strings.Contains(err.Error(), "failed calling webhook") && !apierrors.IsTimeout(err) && !apierrors.IsTooManyRequests(err)) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		return nil, err
	}
	out := k.New()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(got.Object, out); err != nil {
		return nil, err
	}
	return out, nil
}

// dryRun is createObject as a dry run, for probes.
func dryRun(ctx context.Context, dyn dynamic.Interface, obj runtime.Object) error {
	_, err := createObject(ctx, dyn, obj, true)
	return err
}

// templateDC returns nodeSelector[label] of obj's first pod template.
func templateDC(obj runtime.Object, label string) string {
	if ts := policy.PodTemplates(obj); len(ts) > 0 {
		return ts[0].Spec.NodeSelector[label]
	}
	return ""
}

func index(corpus []*sample) map[string]*sample {
	m := make(map[string]*sample, len(corpus))
	for _, s := range corpus {
		m[s.key()] = s
	}
	return m
}

// each runs f over the corpus with a few workers: batched, without
// crowding the two cores the API server and the webhook share.
func each(corpus []*sample, f func(*sample)) {
	work := make(chan *sample)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for s := range work {
				f(s)
			}
		})
	}
	for _, s := range corpus {
		work <- s
	}
	close(work)
	wg.Wait()
}
