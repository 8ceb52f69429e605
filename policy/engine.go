package policy

import (
	"fmt"
	"sort"

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
	if req.Object == nil || beingDeleted(req.Object) {
		return nil
	}
	c := evalContext{req: req, state: state}
	for _, r := range e.rules {
		r.evaluate(&c)
	}
	if len(c.results) == 0 {
		return nil
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
	return c.results
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
