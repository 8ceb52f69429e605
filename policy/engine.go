package policy

import (
	"context"
	"fmt"
	"maps"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// Engine evaluates a set of PlacementPolicies. Build it with NewEngine once
// per policy change; it is safe for concurrent use.
type Engine struct {
	policies []v1alpha1.PlacementPolicy
	compiled []*compiledPolicy
	// rules is the chain: every rule of every policy, in policy then
	// declaration order.
	rules  []rule
	labels []string
}

// MemberSelector selects the member pods of one spread rule, so that the
// webhook can cache only those.
type MemberSelector struct {
	// Rule is "<policy>/<rule name>".
	Rule string
	// Namespaces the members live in; empty means every namespace.
	Namespaces []string
	// Selector selects the member pods.
	Selector labels.Selector
}

// NewEngine validates and compiles policies (sorted by name). The error
// aggregates every problem ValidatePolicy finds, each prefixed with the
// policy name.
func NewEngine(policies []v1alpha1.PlacementPolicy) (*Engine, error) {
	ps := make([]v1alpha1.PlacementPolicy, len(policies))
	for i := range policies {
		policies[i].DeepCopyInto(&ps[i])
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	var errs []error
	for i := range ps {
		for _, e := range ValidatePolicy(&ps[i]) {
			errs = append(errs, fmt.Errorf("placementpolicy %q: %w", ps[i].Name, e))
		}
	}
	if len(errs) > 0 {
		return nil, utilerrors.NewAggregate(errs)
	}
	e := &Engine{policies: ps}
	seen := map[string]bool{}
	for i := range ps {
		cp := compilePolicy(&ps[i])
		e.compiled = append(e.compiled, cp)
		e.rules = append(e.rules, cp.rules...)
		if !seen[cp.label] {
			seen[cp.label] = true
			e.labels = append(e.labels, cp.label)
		}
	}
	sort.Strings(e.labels)
	return e, nil
}

// Policies returns the policies the engine runs, sorted by name. Callers
// must not modify them.
func (e *Engine) Policies() []v1alpha1.PlacementPolicy { return e.policies }

// Labels returns the datacenter labels the policies use, sorted and
// deduplicated.
func (e *Engine) Labels() []string { return e.labels }

// Datacenters returns the sorted union of the datacenters every policy
// knows: its spec.datacenters, else the values of its label on Nodes.
func (e *Engine) Datacenters(state State) []string {
	set := map[string]struct{}{}
	for _, cp := range e.compiled {
		for _, dc := range cp.knownDatacenters(state) {
			set[dc] = struct{}{}
		}
	}
	return sortedKeys(set)
}

// NodeLabelKeys returns, sorted, the Node label keys a change of which the
// rules judge: the datacenter labels, and the keys the member selectors of
// nodes spread rules read. A Node update that changes none of them is
// admitted whatever the rules say.
func (e *Engine) NodeLabelKeys() []string {
	set := map[string]struct{}{}
	for _, l := range e.labels {
		set[l] = struct{}{}
	}
	for _, r := range e.rules {
		s, ok := r.(*spreadRule)
		if !ok || s.rule.Nodes == nil {
			continue
		}
		for k := range s.rule.Nodes.Selector.MatchLabels {
			set[k] = struct{}{}
		}
		for _, x := range s.rule.Nodes.Selector.MatchExpressions {
			set[x.Key] = struct{}{}
		}
	}
	return sortedKeys(set)
}

// ObjectSelectors returns the label selectors of every pinned rule and
// every pods spread rule: an object (or pod template) whose labels none of
// them matches is never judged by any rule, whatever its namespace.
func (e *Engine) ObjectSelectors() []metav1.LabelSelector {
	var out []metav1.LabelSelector
	for _, r := range e.rules {
		switch x := r.(type) {
		case *pinnedRule:
			out = append(out, x.rule.Selector)
		case *spreadRule:
			if x.rule.Pods != nil {
				out = append(out, x.rule.Pods.Selector)
			}
		}
	}
	return out
}

// MemberPodSelectors returns the member selectors of every pods spread rule.
func (e *Engine) MemberPodSelectors() []MemberSelector {
	var out []MemberSelector
	for _, r := range e.rules {
		if s, ok := r.(*spreadRule); ok && s.podSel != nil {
			out = append(out, MemberSelector{Rule: s.name, Namespaces: s.rule.Pods.Namespaces, Selector: s.podSel})
		}
	}
	return out
}

// Placement is a member pod put on a node by a request, for a Deny spread
// rule: what must be serialised across webhook replicas.
type Placement struct {
	// Rule is "<policy>/<rule name>".
	Rule string
	// Pod is the member as placed: namespace, name, labels and nodeName.
	Pod *corev1.Pod
}

// MemberPlacements returns the member placements req makes for Deny spread
// rules of pods: a pods/binding of a member, a member created with
// spec.nodeName, a pod relabelled into the members or a learner promoted
// to voter. Mirror pods are never denied, so they are left out.
func (e *Engine) MemberPlacements(req Request, state State) []Placement {
	if req.Object == nil || beingDeleted(req.Object) || state == nil || mirrorPodOf(req, state) {
		return nil
	}
	c := evalContext{req: req, state: state}
	var out []Placement
	for _, r := range e.rules {
		s, ok := r.(*spreadRule)
		if !ok || s.action != v1alpha1.ActionDeny {
			continue
		}
		if ns, name, node, lbls, ok := s.placement(&c); ok {
			out = append(out, Placement{Rule: s.name, Pod: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
				Spec:       corev1.PodSpec{NodeName: node},
			}})
		}
	}
	return out
}

// rule is one link of the chain: it appends its verdicts on the request to
// the context.
type rule interface {
	evaluate(c *evalContext)
}

// evalContext is one request being judged.
type evalContext struct {
	req     Request
	state   State
	ref     ObjectRef
	refDone bool
	results Results

	// templates and meta are computed once per request, on first use.
	templatesDone bool
	templates     []PodTemplate
	meta          metav1.Object

	// changes is what an UPDATE of a workload changes, computed once.
	changesDone bool
	changes     updateChanges
}

// updateChanges is what an UPDATE changes of what the rules judge. A rule
// judges an UPDATE only on what it changes, as a create of that: an update
// that changes none of it (a scale-down, a status report, a new image) is
// admitted whatever the policy says, so that no rule can freeze a
// controller that was admitted before the rule applied.
type updateChanges struct {
	// update is false for CREATE and CHECK: everything is judged.
	update bool
	// templates: the placement of some pod template changed (labels, the
	// learner annotation, nodeSelector, affinity, topology spread
	// constraints, nodeName), or the number of templates.
	templates bool
	// labels: the object's own labels changed.
	labels bool
	// replicasUp: the member count grew. A decrease is never judged.
	replicasUp bool
}

// updateChanges returns what the request changes; for anything but an
// UPDATE with an old object of the same kind, everything counts as changed.
func (c *evalContext) updateChanges() updateChanges {
	if c.changesDone {
		return c.changes
	}
	c.changesDone = true
	all := updateChanges{templates: true, labels: true, replicasUp: true}
	if c.req.Operation != OperationUpdate || c.req.OldObject == nil || kindOf(c.req.OldObject) != kindOf(c.req.Object) {
		c.changes = all
		return all
	}
	oldMeta, err1 := meta.Accessor(c.req.OldObject)
	m := c.objectMeta()
	if err1 != nil || m == nil {
		c.changes = all
		return all
	}
	ch := updateChanges{update: true}
	ch.labels = !maps.Equal(oldMeta.GetLabels(), m.GetLabels())
	oldT, newT := PodTemplates(c.req.OldObject), c.podTemplates()
	if len(oldT) != len(newT) {
		ch.templates = true
	} else {
		for i := range newT {
			if !samePlacement(&oldT[i], &newT[i]) {
				ch.templates = true
				break
			}
		}
	}
	oldN, ok1 := replicasOf(c.req.OldObject)
	newN, ok2 := replicasOf(c.req.Object)
	ch.replicasUp = ok1 && ok2 && newN > oldN
	c.changes = ch
	return ch
}

// samePlacement reports whether two pod templates place their pods alike:
// the same labels and learner annotation, nodeSelector, affinity, topology
// spread constraints and nodeName. Images, resources, env and the rest do
// not matter to any rule.
func samePlacement(a, b *PodTemplate) bool {
	return maps.Equal(a.Meta.Labels, b.Meta.Labels) &&
		a.Meta.Annotations[AnnotationLearner] == b.Meta.Annotations[AnnotationLearner] &&
		a.Spec.NodeName == b.Spec.NodeName &&
		maps.Equal(a.Spec.NodeSelector, b.Spec.NodeSelector) &&
		equality.Semantic.DeepEqual(a.Spec.Affinity, b.Spec.Affinity) &&
		equality.Semantic.DeepEqual(a.Spec.TopologySpreadConstraints, b.Spec.TopologySpreadConstraints)
}

// podTemplates returns PodTemplates(req.Object), computed once.
func (c *evalContext) podTemplates() []PodTemplate {
	if !c.templatesDone {
		c.templates, c.templatesDone = PodTemplates(c.req.Object), true
	}
	return c.templates
}

// objectMeta returns the request object's metadata, nil when it has none.
func (c *evalContext) objectMeta() metav1.Object {
	if c.meta == nil {
		if m, err := meta.Accessor(c.req.Object); err == nil {
			c.meta = m
		}
	}
	return c.meta
}

func (c *evalContext) add(r *ruleMeta, err *field.Error) {
	if !c.refDone {
		c.ref, c.refDone = ObjectRefOf(c.req.Object), true
	}
	c.results = append(c.results, Result{Object: c.ref, Policy: r.policy, Rule: r.name, Action: r.action, Error: err})
}

// ruleMeta is what every compiled rule carries.
type ruleMeta struct {
	policy string
	// name is "<policy>/<rule>".
	name   string
	action v1alpha1.Action
	cp     *compiledPolicy
}

// compiledPolicy is a policy with its selectors parsed.
type compiledPolicy struct {
	p     *v1alpha1.PlacementPolicy
	label string
	// known is spec.datacenters as a set, nil when unset (then Nodes say).
	known map[string]struct{}
	rules []rule
}

func (cp *compiledPolicy) knownDatacenters(state State) []string {
	if cp.known != nil {
		return sortedKeys(cp.known)
	}
	set := map[string]struct{}{}
	if state != nil {
		for _, n := range state.Nodes() {
			if dc := n.Labels[cp.label]; dc != "" {
				set[dc] = struct{}{}
			}
		}
	}
	return sortedKeys(set)
}

func compilePolicy(p *v1alpha1.PlacementPolicy) *compiledPolicy {
	cp := &compiledPolicy{p: p, label: p.Spec.Label()}
	if len(p.Spec.Datacenters) > 0 {
		cp.known = make(map[string]struct{}, len(p.Spec.Datacenters))
		for _, dc := range p.Spec.Datacenters {
			cp.known[dc] = struct{}{}
		}
	}
	for i := range p.Spec.Pinned {
		r := &p.Spec.Pinned[i]
		pr := &pinnedRule{ruleMeta: ruleMeta{policy: p.Name, name: p.Name + "/" + r.Name, action: r.EffectiveAction(), cp: cp}, rule: r}
		pr.sel = mustSelector(&r.Selector)
		if r.NamespaceSelector != nil && !isEmptySelector(r.NamespaceSelector) {
			pr.nsSel = mustSelector(r.NamespaceSelector)
		}
		cp.rules = append(cp.rules, pr)
	}
	for i := range p.Spec.Spread {
		r := &p.Spec.Spread[i]
		sr := &spreadRule{ruleMeta: ruleMeta{policy: p.Name, name: p.Name + "/" + r.Name, action: r.EffectiveAction(), cp: cp}, rule: r, index: i}
		if r.Pods != nil {
			sr.podSel = mustSelector(&r.Pods.Selector)
		}
		if r.Nodes != nil {
			sr.nodeSel = mustSelector(&r.Nodes.Selector)
		}
		cp.rules = append(cp.rules, sr)
	}
	return cp
}

// mustSelector converts a selector ValidatePolicy has already accepted.
func mustSelector(s *metav1.LabelSelector) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return labels.Nothing()
	}
	return sel
}

func isEmptySelector(s *metav1.LabelSelector) bool {
	return s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0)
}

// Evaluate runs every rule of every policy on req and gathers all their
// results in a deterministic order. Objects being deleted are not judged.
// Mirror pods are never denied: their Deny results become Warn with a note,
// since rejecting a mirror pod only hides the static pod.
func (e *Engine) Evaluate(req Request, state State) Results {
	rs, _ := e.EvaluateContext(context.Background(), req, state)
	return rs
}

// EvaluateContext is Evaluate that gives up when ctx ends: it checks ctx
// between rules and returns ctx's error, with no results, so that a caller
// never mistakes an evaluation cut short for an admission.
func (e *Engine) EvaluateContext(ctx context.Context, req Request, state State) (Results, error) {
	if req.Object == nil || beingDeleted(req.Object) {
		return nil, ctx.Err()
	}
	c := evalContext{req: req, state: state}
	for _, r := range e.rules {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.evaluate(&c)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(c.results) == 0 {
		return nil, nil
	}
	if mirror := mirrorPodOf(req, state); mirror {
		for i := range c.results {
			if c.results[i].Action == v1alpha1.ActionDeny {
				c.results[i].Action = v1alpha1.ActionWarn
				err := *c.results[i].Error
				err.Detail += " (not denied: this is the mirror of a static pod; rejecting it would only hide it, fix the manifest on the node instead)"
				c.results[i].Error = &err
			}
		}
	}
	c.results.sort()
	return c.results, nil
}

// MutateUpdate is Mutate for an UPDATE of old into obj, as dc-webhook's
// mutation makes it: a Pod is never mutated, since its nodeSelector is
// immutable once created (the webhook configurations send no pod UPDATE to
// /mutate, and the API server would refuse the change), nor is an object
// whose labels and pod templates the update leaves as they were: filling
// in a template admitted before the policy would roll the workload out on
// a scale-down. kubectl dc check mutates what exists in the cluster with it.
func (e *Engine) MutateUpdate(obj, old runtime.Object, namespace string, state State) (changed bool) {
	if _, isPod := obj.(*corev1.Pod); isPod || SameTemplatesAndLabels(old, obj) {
		return false
	}
	return e.Mutate(obj, namespace, state)
}

// SameTemplatesAndLabels reports whether a and b carry the same labels and
// the same pod templates, metadata and spec; false when either is no
// object of a judged kind.
func SameTemplatesAndLabels(a, b runtime.Object) bool {
	ma, err1 := meta.Accessor(a)
	mb, err2 := meta.Accessor(b)
	if err1 != nil || err2 != nil || !maps.Equal(ma.GetLabels(), mb.GetLabels()) {
		return false
	}
	ta, tb := PodTemplates(a), PodTemplates(b)
	if len(ta) == 0 || len(ta) != len(tb) {
		return false
	}
	for i := range ta {
		if !equality.Semantic.DeepEqual(ta[i].Meta, tb[i].Meta) || !equality.Semantic.DeepEqual(ta[i].Spec, tb[i].Spec) {
			return false
		}
	}
	return true
}

// Mutate injects nodeSelector[label]=value into every pod template of obj
// that lacks a selection on label, for every pinned rule that matches obj
// and whose datacenterFromLabel label obj carries. It is idempotent, never
// touches mirror pods or objects being deleted, and reports whether it
// changed obj.
func (e *Engine) Mutate(obj runtime.Object, namespace string, state State) (changed bool) {
	if obj == nil || beingDeleted(obj) {
		return false
	}
	for _, r := range e.rules {
		if p, ok := r.(*pinnedRule); ok && p.mutate(obj, namespace, state) {
			changed = true
		}
	}
	return changed
}
