package check

import (
	"context"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/policy"
)

// item is one object to judge with where it comes from.
type item struct {
	obj runtime.Object
	src source
	// defaulted: the object named no namespace and took the check's.
	defaulted bool
	// old is the object of the same identity in the cluster, when the
	// check runs against it and finds one: obj is judged as its UPDATE.
	old runtime.Object
}

// sourcedResult is a result with the document it is about.
type sourcedResult struct {
	policy.Result
	src source
	// short is the field relative to the pod template's spec
	// ("nodeSelector[...]" for spec.template.spec.nodeSelector[...]), the
	// full field when it lies outside the template.
	short string
}

// hasDeny reports whether some result is a Deny.
func hasDeny(rs []sourcedResult) bool {
	for i := range rs {
		if rs[i].Action == "Deny" {
			return true
		}
	}
	return false
}

// evaluate judges one item: a built-in kind with Evaluate, a declared kind
// with EvaluateDeclared.
func evaluate(ctx context.Context, engine *policy.Engine, it item, state policy.State) (policy.Results, error) {
	m, err := meta.Accessor(it.obj)
	if err != nil {
		return nil, nil
	}
	req := policy.Request{Operation: policy.OperationCheck, Object: it.obj, Namespace: m.GetNamespace()}
	if it.old != nil {
		req.Operation, req.OldObject = policy.OperationUpdate, it.old
	}
	if _, ok := it.obj.(*unstructured.Unstructured); ok {
		rs, _, err := engine.EvaluateDeclared(ctx, req, state)
		return rs, err
	}
	return engine.EvaluateContext(ctx, req, state)
}

// judge evaluates every item, each document on its own, and drops what a
// checked controller up its chain already shows (ownerOf, live only);
// results come sorted by object, then source. errs name the items that
// could not be judged (a declared kind without its template).
func judge(ctx context.Context, engine *policy.Engine, items []item, state *policy.StaticState, ownerOf map[objectKey]objectKey) ([]sourcedResult, []error) {
	per := make([]policy.Results, len(items))
	index := make(map[objectKey]int, len(ownerOf))
	var errs []error
	for i, it := range items {
		rs, err := evaluate(ctx, engine, it, state)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s%s: %w", whereOf(it.src), kindName(it.obj), objectName(it.obj), err))
			continue
		}
		per[i] = rs
		if ownerOf != nil {
			index[keyOf(it.obj)] = i
		}
	}
	var out []sourcedResult
	for i, it := range items {
		key := keyOf(it.obj)
		prefix := templatePrefix(engine, it.obj)
		for _, r := range per[i] {
			if ownerOf != nil && shownByController(engine, key, r, prefix, ownerOf, index, items, per) {
				continue
			}
			out = append(out, sourcedResult{Result: r, src: it.src, short: cutPrefix(r.Field(), prefix)})
		}
	}
	sortResults(out)
	return out, errs
}

// whereOf is "FILE: document N" of a source, for messages.
func whereOf(s source) string {
	if s.File == "" {
		return "the cluster"
	}
	w := fmt.Sprintf("%s: document %d", s.File, s.Document)
	if s.Item != "" {
		w += ", item " + s.Item
	}
	return fmt.Sprintf("%s, line %d", w, s.Line)
}

// shownByController reports whether result r of the object key is also
// shown by a checked controller up its chain (Pod → ReplicaSet →
// Deployment) for the same rule and the same field of the pod template.
func shownByController(engine *policy.Engine, key objectKey, r policy.Result, prefix string, ownerOf map[objectKey]objectKey, index map[objectKey]int, items []item, per []policy.Results) bool {
	field := cutPrefix(r.Field(), prefix)
	seen := map[objectKey]bool{key: true}
	for owner, ok := ownerOf[key]; ok && !seen[owner]; owner, ok = ownerOf[owner] {
		seen[owner] = true
		i, found := index[owner]
		if !found {
			continue
		}
		op := templatePrefix(engine, items[i].obj)
		for _, or := range per[i] {
			if or.Rule == r.Rule && or.Action == r.Action && cutPrefix(or.Field(), op) == field {
				return true
			}
		}
	}
	return false
}

// templatePrefix is the path of obj's (first) pod spec followed by a dot:
// "spec.template.spec." for a Deployment, "spec." for a Pod, the declared
// path's for a declared kind; "" when obj has none.
func templatePrefix(engine *policy.Engine, obj runtime.Object) string {
	if k, ok := policy.JudgedKindOf(obj); ok && len(k.TemplatePaths) > 0 {
		return k.TemplatePaths[0].String() + "."
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if k, ok := engine.DeclaredKindFor(u.GroupVersionKind().GroupKind()); ok {
			return k.TemplatePath.Child("spec").String() + "."
		}
	}
	return ""
}

// cutPrefix cuts the pod spec path off field; a field outside the pod
// spec (spec.replicas of a StatefulSet) stays whole.
func cutPrefix(field, prefix string) string {
	if prefix != "" && strings.HasPrefix(field, prefix) {
		return strings.TrimPrefix(field, prefix)
	}
	return field
}

// sortResults orders results by object (namespace, kind, name), then by
// source, keeping the engine's order within a document.
func sortResults(rs []sourcedResult) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i].Object, rs[j].Object
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		sa, sb := rs[i].src, rs[j].src
		if sa.File != sb.File {
			return sa.File < sb.File
		}
		if sa.Document != sb.Document {
			return sa.Document < sb.Document
		}
		return sa.Item < sb.Item
	})
}

// mutation is one field the webhook's mutation set on an object offline.
type mutation struct {
	Object policy.ObjectRef `json:"object"`
	Source string           `json:"source"`
	Field  string           `json:"field"`
	Value  string           `json:"value"`
}

// mutate applies dc-webhook's mutation (Engine.Mutate, MutateUpdate for an
// object that exists in the cluster, MutateDeclaredUpdate for declared
// kinds, with no old object for a create) to every item, as the API server
// would before the validating webhook judges it, and returns what it set.
func mutate(engine *policy.Engine, items []item, state policy.State) []mutation {
	var out []mutation
	for _, it := range items {
		m, err := meta.Accessor(it.obj)
		if err != nil {
			continue
		}
		ns := m.GetNamespace()
		if u, ok := it.obj.(*unstructured.Unstructured); ok {
			k, _ := engine.DeclaredKindFor(u.GroupVersionKind().GroupKind())
			path := append(strings.Split(k.TemplatePath.String(), "."), "spec", "nodeSelector")
			before, _, _ := unstructured.NestedStringMap(u.Object, path...)
			// As dc-webhook mutates the UPDATE of a live object: one that
			// leaves its labels and its template alone is not filled in.
			old, _ := it.old.(*unstructured.Unstructured)
			if changed, err := engine.MutateDeclaredUpdate(u, old, ns, state); err != nil || !changed {
				continue
			}
			after, _, _ := unstructured.NestedStringMap(u.Object, path...)
			out = append(out, diffSelectors(it, k.TemplatePath.Child("spec", "nodeSelector").String(), before, after)...)
			continue
		}
		templates := policy.PodTemplates(it.obj)
		before := make([]map[string]string, len(templates))
		for i := range templates {
			before[i] = maps.Clone(templates[i].Spec.NodeSelector)
		}
		changed := false
		if it.old != nil {
			changed = engine.MutateUpdate(it.obj, it.old, ns, state)
		} else {
			changed = engine.Mutate(it.obj, ns, state)
		}
		if !changed {
			continue
		}
		for i := range templates {
			out = append(out, diffSelectors(it, templates[i].Path.Child("nodeSelector").String(), before[i], templates[i].Spec.NodeSelector)...)
		}
	}
	return out
}

func diffSelectors(it item, path string, before, after map[string]string) []mutation {
	var out []mutation
	for _, k := range sortedKeys(after) {
		if _, had := before[k]; had {
			continue
		}
		out = append(out, mutation{Object: policy.ObjectRefOf(it.obj), Source: it.src.String(), Field: path + "[" + k + "]", Value: after[k]})
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// noteSharedIdentities says which documents share a kind, namespace and
// name: each is judged, while kubectl apply would keep only the last.
func noteSharedIdentities(w io.Writer, items []item) {
	byKey := map[objectKey][]source{}
	var order []objectKey
	for _, it := range items {
		k := keyOf(it.obj)
		if len(byKey[k]) == 0 {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], it.src)
	}
	for _, k := range order {
		srcs := byKey[k]
		if len(srcs) < 2 {
			continue
		}
		names := make([]string, len(srcs))
		for i, s := range srcs {
			names[i] = s.String()
		}
		_, _ = fmt.Fprintf(w, "note: %s is defined by %d documents (%s): each is judged on its own\n",
			refString(policy.ObjectRef{Kind: k.kind, Namespace: k.namespace, Name: k.name}), len(srcs), strings.Join(names, ", "))
	}
}

// oldVersion returns the apiVersion to use when gvk is a judged kind in a
// version the engine does not judge, and the API server no longer serves:
// extensions/v1beta1 and apps/v1beta1 Deployments, batch/v1beta1 CronJobs.
func oldVersion(gvk schema.GroupVersionKind) (string, bool) {
	gk := gvk.GroupKind()
	if gk.Group == "extensions" {
		// Deployment, DaemonSet and ReplicaSet moved from extensions to apps.
		gk.Group = "apps"
	}
	k, ok := policy.JudgedKindFor(gk)
	if !ok || (gvk.Group == k.Group && gvk.Version == k.Version) {
		return "", false
	}
	return k.GVK().GroupVersion().String(), true
}

func oldVersionError(d decodedObject, use string) error {
	return fmt.Errorf("%s, line %d: %s %s%s: the API server no longer serves %s in %s: set apiVersion: %s, as dc-webhook judges it only there",
		d.where, d.src.Line, d.gvk.GroupVersion(), d.gvk.Kind, objectNameOf(d), d.gvk.Kind, d.gvk.GroupVersion(), use)
}

func objectNameOf(d decodedObject) string {
	if d.obj != nil {
		return objectName(d.obj)
	}
	if d.unregistered != nil {
		return objectName(d.unregistered)
	}
	return ""
}

// skippedKinds counts the documents of kinds without a pod template, and
// names the kinds that look like workloads.
type skippedKinds struct {
	count int
	kinds map[string]int
	// workloads are the unjudged kinds whose objects carry a pod template
	// (spec.template.spec.containers) or a job template (spec.jobTemplate),
	// with their count and the template path seen.
	workloads map[schema.GroupVersionKind]*lookalike
	order     []schema.GroupVersionKind
	listed    []string
}

type lookalike struct {
	count int
	path  string
}

func (s *skippedKinds) add(d decodedObject, verbose bool) {
	if s.kinds == nil {
		s.kinds = map[string]int{}
		s.workloads = map[schema.GroupVersionKind]*lookalike{}
	}
	if d.unregistered != nil {
		if path, ok := templateOf(d.unregistered); ok {
			l := s.workloads[d.gvk]
			if l == nil {
				l = &lookalike{path: path}
				s.workloads[d.gvk] = l
				s.order = append(s.order, d.gvk)
			}
			l.count++
			return
		}
	}
	s.count++
	s.kinds[d.gvk.GroupVersion().String()+" "+d.gvk.Kind]++
	if verbose {
		s.listed = append(s.listed, d.where+": "+d.gvk.GroupVersion().String()+" "+d.gvk.Kind+objectNameOf(d))
	}
}

// templateOf reports whether u looks like a workload, and the path of its
// pod template.
func templateOf(u *unstructured.Unstructured) (string, bool) {
	if c, found, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers"); found && len(c) > 0 {
		return "spec.template", true
	}
	if _, found, _ := unstructured.NestedMap(u.Object, "spec", "jobTemplate", "spec", "template"); found {
		return "spec.jobTemplate.spec.template", true
	}
	if _, found, _ := unstructured.NestedMap(u.Object, "spec", "jobTemplate"); found {
		return "spec.jobTemplate", true
	}
	return "", false
}

// noteSkipped writes one line for the skipped objects (every one with --verbose)
// and one per kind that looks like a workload.
func (o *Options) noteSkipped(s *skippedKinds) {
	for _, gvk := range s.order {
		l := s.workloads[gvk]
		o.notef("warning: %s of kind %s %s look like workloads (a pod template at %s) but no policy declares the kind: they are not judged; declare it in a policy's spec.workloadKinds: {group: %q, kind: %s, templatePath: %s}\n",
			plural(l.count, "object", "objects"), gvk.GroupVersion(), gvk.Kind, l.path, gvk.Group, gvk.Kind, l.path)
	}
	if s.count == 0 {
		return
	}
	if o.Verbose {
		for _, l := range s.listed {
			o.notef("note: %s: skipped: no pod template\n", l)
		}
		return
	}
	o.notef("note: skipped %s of %s that have no pod template; --verbose lists them\n",
		plural(s.count, "object", "objects"), plural(len(s.kinds), "kind", "kinds"))
}

// completeNamespaces adds, offline, the live namespaces of the judged
// objects that neither a Namespace document nor --namespace-labels
// describes, when a rule has a namespaceSelector and a cluster answers.
// Nothing is said when none does: warnUnknownNamespaces will.
func (o *Options) completeNamespaces(ctx context.Context, engine *policy.Engine, state *policy.StaticState, items []item) {
	if len(nsSelectorRules(engine)) == 0 || len(unknownNamespaces(state, items)) == 0 || o.config == nil {
		return
	}
	if err := o.completeClients(); err != nil {
		return
	}
	l := cluster.Lister{Client: o.clientset}
	_, err := l.Each(ctx, schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "", metav1.ListOptions{}, func(obj runtime.Object) {
		if _, known := state.NamespaceLabels(obj.(metav1.Object).GetName()); !known {
			state.Add(obj)
		}
	})
	if err != nil {
		o.notef("note: the live namespaces could not be read (%v): namespaceSelectors are judged without them\n", err)
	}
}

// nsSelectorRules names the pinned rules with a namespaceSelector.
func nsSelectorRules(engine *policy.Engine) []string {
	var out []string
	for _, p := range engine.Policies() {
		for _, r := range p.Spec.Pinned {
			if s := r.NamespaceSelector; s != nil && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0) {
				out = append(out, p.Name+"/"+r.Name)
			}
		}
	}
	return out
}

// unknownNamespaces returns, sorted, the namespaces of items whose labels
// state does not know.
func unknownNamespaces(state *policy.StaticState, items []item) []string {
	set := map[string]string{}
	for _, it := range items {
		m, err := meta.Accessor(it.obj)
		if err != nil || m.GetNamespace() == "" {
			continue
		}
		if _, known := state.NamespaceLabels(m.GetNamespace()); !known {
			set[m.GetNamespace()] = ""
		}
	}
	return sortedKeys(set)
}

// warnUnknownNamespaces warns once per rule with a namespaceSelector that
// could not be evaluated for some namespace: the rule was applied there,
// never silently passed.
func (o *Options) warnUnknownNamespaces(engine *policy.Engine, state *policy.StaticState, items []item) {
	rules := nsSelectorRules(engine)
	unknown := unknownNamespaces(state, items)
	if len(rules) == 0 || len(unknown) == 0 {
		return
	}
	example := unknown[0]
	for _, r := range rules {
		o.notef("warning: rule %s has a namespaceSelector, and the labels of namespace %s are unknown: the rule was applied there as if it matched; add the Namespace to -f, or pass --namespace-labels %s=KEY=VALUE,...\n",
			r, strings.Join(unknown, ", "), example)
	}
}
