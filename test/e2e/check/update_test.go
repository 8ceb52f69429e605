package check

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

// ruleQuorum is the spread rule of the UPDATE and spread differentials:
// pods labelled role=quorum in one namespace, N from the owning
// StatefulSet, else inferred.
const ruleQuorum = "diff-quorum/quorum"

// neverKey keeps the pods of the UPDATE corpus pending: no node carries
// it, and it is not the datacenter label, so no rule reads it.
const neverKey = "e2e.kubectl-dc.io/never"

func quorumPolicy(label, ns string) *v1alpha1.PlacementPolicy {
	return testutil.Policy("diff-quorum").Label(label).Datacenters("pod-1", "pod-2", "pod-3").
		Spread(testutil.SpreadPods("quorum", []string{ns}, "role", "quorum")).Obj()
}

// updateBase is an object the webhook admits at create, the start of
// every change of the UPDATE corpus.
type updateBase struct {
	name string
	// ns picks the namespace: prod, dev or plain.
	ns    func(corpusNamespaces) string
	build func(b *testutil.ObjectBuilder, label string)
	// kinds limits the base to some kinds; nil means every judged kind.
	kinds []string
}

// updateChange is one change of a stored object; applies says whether the
// API server lets it be made to an object of the kind (a pod's spec is
// immutable but for images, a Job's image too).
type updateChange struct {
	name    string
	applies func(kind string, obj runtime.Object) bool
	apply   func(obj runtime.Object, label string)
}

// updateSample is one change of one base object and its two verdicts.
type updateSample struct {
	base, change   string
	kind, ns, name string
	// obj is the changed object, as sent in the UPDATE.
	obj  runtime.Object
	file string
	// webhook is the API server's answer to the dry-run UPDATE, check the
	// answer of kubectl dc check -f on the changed object.
	webhook, check verdict
	// admittedDC and checkDC are the template's nodeSelector[label] after
	// admission and after check's mutation.
	admittedDC, checkDC string
}

func (s *updateSample) key() string {
	return s.kind + "/" + s.ns + "/" + s.name + " " + s.change
}

func updateBases() []updateBase {
	dev := func(n corpusNamespaces) string { return n.dev }
	prod := func(n corpusNamespaces) string { return n.prod }
	plain := func(n corpusNamespaces) string { return n.plain }
	return []updateBase{
		// Mutated at create: the datacenter label gives the nodeSelector.
		{name: "worker-from-label", ns: dev, build: func(b *testutil.ObjectBuilder, _ string) {
			b.Labels("app", "worker").ObjectLabels(fromLabel, "pod-1")
		}},
		{name: "brain-selector", ns: dev, build: func(b *testutil.ObjectBuilder, label string) {
			b.Labels("app", "brain").NodeSelector(label, "pod-2")
		}},
		{name: "edge-affinity", ns: plain, build: func(b *testutil.ObjectBuilder, label string) {
			b.Labels("app", "edge").RequiredAffinity(testutil.Term(testutil.In(label, "pod-3")))
		}},
		{name: "prod-pinned", ns: prod, build: func(b *testutil.ObjectBuilder, label string) {
			b.Labels("app", "web", "tier", "pinned").ObjectLabels(fromLabel, "pod-2").NodeSelector(label, "pod-2")
		}},
		{name: "canary", ns: plain, build: func(b *testutil.ObjectBuilder, label string) {
			b.Labels("app", "web", "track", "canary").NodeSelector(label, "pod-1")
		}},
		// No rule selects them; the second carries a datacenter label, so
		// that a change into the workers rule is mutated.
		{name: "web-free", ns: dev, build: func(b *testutil.ObjectBuilder, _ string) {
			b.Labels("app", "web")
		}},
		{name: "web-labelled", ns: dev, build: func(b *testutil.ObjectBuilder, _ string) {
			b.Labels("app", "web").ObjectLabels(fromLabel, "pod-2")
		}},
		// Quorum members, kept apart by the scheduler: three over three
		// datacenters.
		{name: "quorum-members", ns: plain, kinds: []string{"StatefulSet", "Deployment"}, build: func(b *testutil.ObjectBuilder, label string) {
			b.Labels("role", "quorum").TopologySpread(label, corev1.DoNotSchedule).Replicas(3)
		}},
	}
}

func notKinds(kinds ...string) func(string, runtime.Object) bool {
	return func(kind string, _ runtime.Object) bool {
		for _, k := range kinds {
			if k == kind {
				return false
			}
		}
		return true
	}
}

func scalable(kind string, _ runtime.Object) bool {
	switch kind {
	case "Deployment", "ReplicaSet", "StatefulSet", "ReplicationController":
		return true
	}
	return false
}

// otherDC returns a known datacenter other than dc.
func otherDC(dc string) string {
	if dc == "pod-3" {
		return "pod-1"
	}
	return "pod-3"
}

func objectMeta(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(err)
	}
	return m
}

func setObjectLabel(obj runtime.Object, key, value string) {
	m := objectMeta(obj)
	l := m.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	if value == "" {
		delete(l, key)
	} else {
		l[key] = value
	}
	m.SetLabels(l)
}

// eachTemplate calls f with every pod template of obj (the pod itself for
// a Pod).
func eachTemplate(obj runtime.Object, f func(m *metav1.ObjectMeta, spec *corev1.PodSpec)) {
	for _, t := range policy.PodTemplates(obj) {
		f(t.Meta, t.Spec)
	}
}

func setTemplateLabel(obj runtime.Object, key, value string) {
	eachTemplate(obj, func(m *metav1.ObjectMeta, _ *corev1.PodSpec) {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		if value == "" {
			delete(m.Labels, key)
		} else {
			m.Labels[key] = value
		}
	})
}

func replicasOf(obj runtime.Object) **int32 {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Replicas
	case *appsv1.ReplicaSet:
		return &o.Spec.Replicas
	case *appsv1.StatefulSet:
		return &o.Spec.Replicas
	case *corev1.ReplicationController:
		return &o.Spec.Replicas
	}
	return nil
}

func scaleBy(obj runtime.Object, d int32) {
	p := replicasOf(obj)
	n := int32(1)
	if *p != nil {
		n = **p
	}
	n += d
	*p = &n
}

func updateChanges() []updateChange {
	notPod := notKinds("Pod")
	every := func(string, runtime.Object) bool { return true }
	return []updateChange{
		{"image only", notKinds("Job"), func(obj runtime.Object, _ string) {
			eachTemplate(obj, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) { s.Containers[0].Image = "registry.example/app:2" })
		}},
		{"unrelated object label", every, func(obj runtime.Object, _ string) { setObjectLabel(obj, "note", "changed") }},
		{"unrelated template label", every, func(obj runtime.Object, _ string) { setTemplateLabel(obj, "note", "changed") }},
		{"nodeSelector to another datacenter", notPod, func(obj runtime.Object, label string) {
			eachTemplate(obj, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) { s.NodeSelector[label] = otherDC(s.NodeSelector[label]) })
		}},
		{"nodeSelector to an unknown datacenter", notPod, func(obj runtime.Object, label string) {
			eachTemplate(obj, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) { s.NodeSelector[label] = "pod-9" })
		}},
		{"nodeSelector removed", notPod, func(obj runtime.Object, label string) {
			eachTemplate(obj, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) { delete(s.NodeSelector, label) })
		}},
		{"datacenter label to another datacenter", every, func(obj runtime.Object, _ string) {
			setObjectLabel(obj, fromLabel, otherDC(objectMeta(obj).GetLabels()[fromLabel]))
		}},
		{"datacenter label and nodeSelector to another datacenter", notPod, func(obj runtime.Object, label string) {
			dc := otherDC(objectMeta(obj).GetLabels()[fromLabel])
			setObjectLabel(obj, fromLabel, dc)
			eachTemplate(obj, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) { s.NodeSelector[label] = dc })
		}},
		{"datacenter label to an unknown datacenter", every, func(obj runtime.Object, _ string) { setObjectLabel(obj, fromLabel, "pod-9") }},
		{"datacenter label removed", every, func(obj runtime.Object, _ string) { setObjectLabel(obj, fromLabel, "") }},
		{"object labels into the workers rule", every, func(obj runtime.Object, _ string) { setObjectLabel(obj, "app", "worker") }},
		{"template labels into the brains rule", every, func(obj runtime.Object, _ string) { setTemplateLabel(obj, "app", "brain") }},
		{"out of every rule", every, func(obj runtime.Object, _ string) {
			for _, k := range []string{"tier", "track", "role"} {
				setObjectLabel(obj, k, "")
				setTemplateLabel(obj, k, "")
			}
			setObjectLabel(obj, "app", "web")
			setTemplateLabel(obj, "app", "web")
		}},
		{"permissive affinity term", notPod, func(obj runtime.Object, _ string) {
			eachTemplate(obj, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) {
				if s.Affinity == nil {
					s.Affinity = &corev1.Affinity{}
				}
				if s.Affinity.NodeAffinity == nil {
					s.Affinity.NodeAffinity = &corev1.NodeAffinity{}
				}
				na := s.Affinity.NodeAffinity
				if na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
					na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
				}
				na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms,
					testutil.Term(testutil.Expr("kubernetes.io/os", corev1.NodeSelectorOpIn, "linux")))
			})
		}},
		{"replicas up by two", scalable, func(obj runtime.Object, _ string) { scaleBy(obj, 2) }},
		{"replicas down by one", scalable, func(obj runtime.Object, _ string) { scaleBy(obj, -1) }},
		{"spread constraint removed", func(_ string, obj runtime.Object) bool {
			ts := policy.PodTemplates(obj)
			return len(ts) > 0 && len(ts[0].Spec.TopologySpreadConstraints) > 0
		}, func(obj runtime.Object, _ string) {
			eachTemplate(obj, func(_ *metav1.ObjectMeta, s *corev1.PodSpec) { s.TopologySpreadConstraints = nil })
		}},
	}
}

// selectByName makes a workload select its pods by the corpus label alone,
// so that changes of the other template labels keep its (immutable)
// selector valid.
func selectByName(obj runtime.Object, name string) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"corpus": name}}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Selector = sel
	case *appsv1.ReplicaSet:
		o.Spec.Selector = sel
	case *appsv1.StatefulSet:
		o.Spec.Selector = sel
	case *appsv1.DaemonSet:
		o.Spec.Selector = sel
	case *corev1.ReplicationController:
		o.Spec.Selector = map[string]string{"corpus": name}
	}
}

// buildUpdateBases makes every base of every kind it applies to, each
// pending (neverKey) and quiet.
func buildUpdateBases(label string, nss corpusNamespaces) (objs []runtime.Object, names []string) {
	for bi, base := range updateBases() {
		for ki, b := range testutil.Kinds("", "") {
			kind := b.Kind()
			if len(base.kinds) > 0 && !slices.Contains(base.kinds, kind) {
				continue
			}
			name := fmt.Sprintf("u%d-%s", bi, strings.ToLower(kind))
			b = testutil.Kinds(base.ns(nss), name)[ki]
			b.TemplateLabels("corpus", name)
			base.build(b, label)
			b.NodeSelector(neverKey, "true")
			obj := quiet(b.Obj())
			selectByName(obj, name)
			objs = append(objs, obj)
			names = append(names, base.name)
		}
	}
	return objs, names
}

// TestDifferentialUpdates: objects of every judged kind, admitted at
// create, are changed one way at a time (placement, datacenter label,
// selection by a rule, spread constraints, replicas, image only). The API
// server with dc-webhook judges each change as a server-side dry-run
// UPDATE of the stored object; kubectl dc check -f judges the changed
// object against the live policies and cluster. The two verdicts must
// agree, and an admitted change must carry the same datacenter after
// admission as after check's mutation.
func TestDifferentialUpdates(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin := kubectlDC(t)
	label := c.Label()
	nss := corpusNamespaces{
		prod:  differentialNamespace(ctx, t, c, "upd-prod", "env", "prod"),
		dev:   differentialNamespace(ctx, t, c, "upd-dev", "env", "dev"),
		plain: differentialNamespace(ctx, t, c, "upd-plain"),
	}
	policies := append(differentialPolicies(label), quorumPolicy(label, nss.plain))
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	startWebhookWith(ctx, t, c, policies, differentialReady(dyn, nss, label))

	bases, baseNames := buildUpdateBases(label, nss)
	stored := make([]runtime.Object, len(bases))
	forEach(indexes(len(bases)), func(i int) {
		got, err := createObject(ctx, dyn, bases[i], false)
		if err != nil {
			t.Errorf("base %s %s: not admitted at create: %v", baseNames[i], policy.ObjectRefOf(bases[i]), err)
			return
		}
		stored[i] = got
	})
	if t.Failed() {
		t.FailNow()
	}

	var samples []*updateSample
	for i, obj := range stored {
		k, _ := policy.JudgedKindOf(obj)
		for _, ch := range updateChanges() {
			if !ch.applies(k.Kind, obj) {
				continue
			}
			m := objectMeta(obj)
			samples = append(samples, &updateSample{base: baseNames[i], change: ch.name, kind: k.Kind, ns: m.GetNamespace(), name: m.GetName()})
		}
	}
	changes := map[string]updateChange{}
	for _, ch := range updateChanges() {
		changes[ch.name] = ch
	}
	t.Logf("%d base objects, %d updates", len(stored), len(samples))

	// The webhook's verdict: a dry-run UPDATE of the object as stored now,
	// with the change made.
	forEach(samples, func(s *updateSample) {
		ch := changes[s.change]
		got, obj, err := dryRunUpdate(ctx, dyn, s.kind, s.ns, s.name, func(obj runtime.Object) { ch.apply(obj, label) })
		s.obj = obj
		switch {
		case err == nil:
			s.webhook = verdict{set: true}
			s.admittedDC = templateDC(got, label)
		case strings.Contains(err.Error(), "denied the request"):
			s.webhook = verdict{set: true, denied: true, messages: []string{err.Error()}}
		default:
			t.Errorf("%s: the dry-run update failed, not by a denial: %v", s.key(), err)
		}
	})

	// check's verdict: every changed object in a file of its own, one run.
	dir := t.TempDir()
	for i, s := range samples {
		if s.obj == nil {
			continue
		}
		s.file = writeYAML(t, filepath.Join(dir, "updates"), fmt.Sprintf("%04d.yaml", i), manifestOf(s.obj))
	}
	checkUpdates(t, bin, c, filepath.Join(dir, "updates"), samples, label)

	var differ []*updateSample
	denied := 0
	for _, s := range samples {
		if s.webhook.denied {
			denied++
		}
		if !s.webhook.set || !s.check.set || s.webhook.denied != s.check.denied || (!s.webhook.denied && s.admittedDC != s.checkDC) {
			differ = append(differ, s)
		}
	}
	t.Logf("%d updates: %d denied, %d admitted by the webhook", len(samples), denied, len(samples)-denied)
	for _, s := range sortedSamples(differ) {
		data, _ := yaml.Marshal(manifestOf(s.obj))
		t.Errorf("%s (base %s): the answers differ\n  webhook: %s\n  check:   %s\n  datacenter after admission %q, after check's mutation %q\n%s",
			s.key(), s.base, s.webhook, s.check, s.admittedDC, s.checkDC, data)
	}
	if len(differ) > 0 {
		t.Errorf("%d of %d updates got different answers", len(differ), len(samples))
	}
}

// differentialReady is ready when the webhook denies a pinned Deployment
// in the env=prod namespace, admits it in the dev one (it knows the
// namespaces), and denies a quorum StatefulSet without a spread
// constraint in the plain one (it runs the spread policy).
func differentialReady(dyn dynamic.Interface, nss corpusNamespaces, label string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		err := dryRun(ctx, dyn, testutil.Deployment(nss.prod, "probe").Labels("tier", "pinned").Obj())
		if err == nil || !strings.Contains(err.Error(), ruleProd) {
			return false, nil
		}
		if err := dryRun(ctx, dyn, testutil.Deployment(nss.dev, "probe").Labels("tier", "pinned").Obj()); err != nil {
			return false, nil
		}
		err = dryRun(ctx, dyn, testutil.StatefulSet(nss.plain, "probe").Labels("role", "quorum").Replicas(0).Obj())
		return err != nil && strings.Contains(err.Error(), ruleQuorum), nil
	}
}

// dryRunUpdate reads the stored object, changes it and sends it as a
// dry-run UPDATE; it returns what the API server would store and the
// object sent. A conflict (a controller wrote meanwhile) reads again.
func dryRunUpdate(ctx context.Context, dyn dynamic.Interface, kind, ns, name string, change func(runtime.Object)) (got, sent runtime.Object, err error) {
	k, ok := judgedKindNamed(kind)
	if !ok {
		return nil, nil, fmt.Errorf("%s is not a judged kind", kind)
	}
	ri := dyn.Resource(k.GVR()).Namespace(ns)
	for attempt := 0; ; attempt++ {
		u, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, err
		}
		obj := k.New()
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
			return nil, nil, err
		}
		obj.GetObjectKind().SetGroupVersionKind(k.GVK())
		change(obj)
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, nil, err
		}
		res, err := ri.Update(ctx, &unstructured.Unstructured{Object: m}, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		retry := err != nil && (apierrors.IsConflict(err) || strings.Contains(err.Error(), "failed calling webhook") || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err))
		if retry && attempt < 5 {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, obj, err
		}
		out := k.New()
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(res.Object, out); err != nil {
			return nil, obj, err
		}
		return out, obj, nil
	}
}

// manifestOf is obj as a user would keep it: TypeMeta set, no status, no
// server-written metadata.
func manifestOf(obj runtime.Object) runtime.Object {
	obj = obj.DeepCopyObject()
	if k, ok := policy.JudgedKindOf(obj); ok {
		obj.GetObjectKind().SetGroupVersionKind(k.GVK())
	}
	m := objectMeta(obj)
	m.SetManagedFields(nil)
	m.SetResourceVersion("")
	m.SetUID("")
	m.SetCreationTimestamp(metav1.Time{})
	m.SetGeneration(0)
	switch o := obj.(type) {
	case *corev1.Pod:
		o.Status = corev1.PodStatus{}
	case *appsv1.Deployment:
		o.Status = appsv1.DeploymentStatus{}
	case *appsv1.ReplicaSet:
		o.Status = appsv1.ReplicaSetStatus{}
	case *appsv1.StatefulSet:
		o.Status = appsv1.StatefulSetStatus{}
	case *appsv1.DaemonSet:
		o.Status = appsv1.DaemonSetStatus{}
	case *batchv1.Job:
		o.Status = batchv1.JobStatus{}
	case *batchv1.CronJob:
		o.Status = batchv1.CronJobStatus{}
	case *corev1.ReplicationController:
		o.Status = corev1.ReplicationControllerStatus{}
	}
	return obj
}

// checkUpdates runs kubectl dc check -f over dir against the live
// policies, and files each result and mutation under its sample by file.
func checkUpdates(t *testing.T, bin string, c *cluster.Cluster, dir string, samples []*updateSample, label string) {
	t.Helper()
	out, code := runCheckRaw(t, bin, c.Kubeconfig(), "check", "-f", dir, "-o", "json")
	var rep struct {
		report
		Mutations []struct {
			Source string `json:"source"`
			Field  string `json:"field"`
			Value  string `json:"value"`
		} `json:"mutations"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check -f: exit %d, not a JSON report: %v\n%s", code, err, out)
	}
	byFile := map[string]*updateSample{}
	want := 0
	for _, s := range samples {
		if s.file == "" {
			continue
		}
		byFile[s.file] = s
		s.check.set = true
		s.checkDC = templateDC(s.obj, label)
		want++
	}
	if rep.Summary.Objects != want {
		t.Errorf("check -f: %d objects checked, want %d", rep.Summary.Objects, want)
	}
	for _, r := range rep.Results {
		s := byFile[r.Source.File]
		if s == nil {
			t.Errorf("check -f: a result about no file of the corpus: %s", dump([]result{r}))
			continue
		}
		if r.Action != "Deny" {
			t.Errorf("check -f: a %s result, the rules deny: %s", r.Action, dump([]result{r}))
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

// judgedKindNamed returns the judged kind called kind.
func judgedKindNamed(kind string) (policy.Kind, bool) {
	for _, k := range policy.JudgedKinds() {
		if k.Kind == kind {
			return k, true
		}
	}
	return policy.Kind{}, false
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// forEach runs f over items with a few workers, as each does.
func forEach[T any](items []T, f func(T)) {
	work := make(chan T)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for x := range work {
				f(x)
			}
		})
	}
	for _, x := range items {
		work <- x
	}
	close(work)
	wg.Wait()
}

// sortedSamples orders samples by key, for stable output.
func sortedSamples(samples []*updateSample) []*updateSample {
	out := append([]*updateSample(nil), samples...)
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}
