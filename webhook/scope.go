package webhook

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
)

// Names in the validating webhook configuration that ScopeNodes edits.
const (
	nodesWebhook         = "nodes.placement.kubectl-dc.io"
	nodesLabelsCondition = "create-or-labels-change"
	selectedCondition    = "selected-by-a-rule"
	fromLabelCondition   = "has-datacenter-label"
)

// workloadWebhooks are the webhooks whose selected-by-a-rule condition
// ScopeNodes keeps in step with the rules' selectors.
var workloadWebhooks = []string{"workloads.placement.kubectl-dc.io", "kube-system.placement.kubectl-dc.io"}

// builtinResources is the CEL expression that the request's resource is
// one of the judged kinds' (policy.JudgedKinds), whose template paths
// templateLabels knows: by group and resource, so that a custom resource
// of the same name in another group (a declared kind) is not taken for
// the built-in one.
var builtinResources = resourceIn(policy.JudgedKinds())

// podsResource is the CEL expression that the request's resource is the
// judged kind Pod's.
var podsResource = func() string {
	k, _ := policy.JudgedKindFor(schema.GroupKind{Kind: "Pod"})
	return resourceIn([]policy.Kind{k})
}()

// resourceIn returns the CEL expression that the request's resource is
// the group and resource of one of kinds, group by group in the order
// kinds first name them.
func resourceIn(kinds []policy.Kind) string {
	var groups []string
	resources := map[string][]string{}
	for _, k := range kinds {
		if _, seen := resources[k.Group]; !seen {
			groups = append(groups, k.Group)
		}
		resources[k.Group] = append(resources[k.Group], strconv.Quote(k.Resource))
	}
	terms := make([]string, len(groups))
	for i, g := range groups {
		rs := resources[g]
		if len(rs) == 1 {
			terms[i] = "request.resource.group == " + strconv.Quote(g) + " && request.resource.resource == " + rs[0]
		} else {
			terms[i] = "request.resource.group == " + strconv.Quote(g) + " && request.resource.resource in [" + strings.Join(rs, ", ") + "]"
		}
	}
	if len(terms) == 1 {
		return "(" + terms[0] + ")"
	}
	return "((" + strings.Join(terms, ") || (") + "))"
}

// templateLabels is the CEL expression of the pod template labels of the
// object of a workload request, read where policy.JudgedKinds says each
// kind keeps its template ({} for a Pod, whose template is itself, and for
// any other kind, a custom resource of a judged kind's name among them).
var templateLabels = func() string {
	var paths []string
	kinds := map[string][]policy.Kind{}
	for _, k := range policy.JudgedKinds() {
		spec := k.TemplatePaths[0].String()
		tmpl, ok := strings.CutSuffix(spec, ".spec")
		if !ok {
			continue // a Pod: its labels are the object's own
		}
		if _, seen := kinds[tmpl]; !seen {
			paths = append(paths, tmpl)
		}
		kinds[tmpl] = append(kinds[tmpl], k)
	}
	expr := "{}"
	for i := len(paths) - 1; i >= 0; i-- {
		expr = resourceIn(kinds[paths[i]]) + " ? object.?" +
			strings.ReplaceAll(paths[i], ".", ".?") + ".?metadata.?labels.orValue({}) : " + expr
	}
	return "(" + expr + ")"
}()

// SelectedCondition returns the CEL expression of the workload webhooks'
// selected-by-a-rule condition: a request is sent when the object's own
// labels or its pod template's labels match one of selectors (the rules'),
// and always for a scale or a binding, which carry no labels, and for any
// kind but the built-in workloads. Namespaces
// are not narrowed: namespaceSelectors are left to the engine. An empty
// selector matches everything; no selector at all, nothing.
func SelectedCondition(selectors []metav1.LabelSelector) string {
	return SelectedConditionCEL(selectors, nil)
}

// SelectedConditionCEL is SelectedCondition for a webhook that leaves the
// pinned rules to the compiled admission policies (celpolicy): objects
// matched by selectors (the spread rules') are sent as before, and of the
// objects matched by pinned (the pinned rules' selectors) only pods with
// spec.nodeName, whose node the compiled policies cannot see (mirror pods
// among them).
func SelectedConditionCEL(selectors, pinned []metav1.LabelSelector) string {
	spread, all := disjunction(selectors)
	if all {
		return "true"
	}
	cond := "request.?subResource.orValue('') in ['scale', 'binding'] || " +
		// Kinds whose template paths this expression does not know (kinds a
		// policy declares) are always sent.
		"!" + builtinResources + " || " +
		"[object.?metadata.?labels.orValue({}), " + templateLabels + "].exists(m, " + spread + ")"
	if len(pinned) > 0 {
		p, _ := disjunction(pinned)
		cond += " || (" + podsResource + " && object.?spec.?nodeName.orValue('') != '' && [object.?metadata.?labels.orValue({})].exists(m, " + p + "))"
	}
	return cond
}

// DeclaredUpdateCondition returns the CEL expression that sends the
// workload webhooks an UPDATE of an object of one of kinds (the kinds the
// policies declare in spec.workloadKinds, Engine.DeclaredKinds) only when
// it changes the object's labels or its pod template at the kind's
// declared path: the engine judges nothing else of such an object, nor
// mutates an update that changes neither (MutateDeclaredUpdate), so that
// with every replica down their other updates (a change of replicas) still
// succeed. Any other request is sent; "true" for no kinds.
//
// Objects of a declared kind carry no schema the expression can rely on:
// it reads the template through map keys, each level only once the one
// above is a map, so that no object makes it fail (a failed condition
// refuses the request with failurePolicy Fail).
//
// The API server compiles the expression on every write of the webhook
// configurations, and its type checker spends on each generic call (==,
// in, [], ?:, map) time in proportion to the generic calls before it: the
// kinds are one map literal from "group/Kind" to the keys of their path,
// and a single walk of as many levels as the longest path reads the
// template of whichever kind the request is of (templateChanged). The
// expression grows linearly with the kinds and the depth of the longest
// path, and so does compiling it with the kinds; with the depth it grows
// as its square, but the longest path a policy may give (128 fields)
// compiles in a third of a second (BenchmarkDeclaredConditions).
func DeclaredUpdateCondition(kinds []policy.DeclaredKind) string {
	if len(kinds) == 0 {
		return "true"
	}
	entries := make([]string, len(kinds))
	shortest, longest := -1, 0
	for i, k := range kinds {
		keys := strings.Split(k.TemplatePath.String(), ".")
		quoted := make([]string, len(keys))
		for j, key := range keys {
			quoted[j] = strconv.Quote(key)
		}
		entries[i] = strconv.Quote(k.Group+"/"+k.Kind) + ": [" + strings.Join(quoted, ", ") + "]"
		if shortest < 0 || len(keys) < shortest {
			shortest = len(keys)
		}
		longest = max(longest, len(keys))
	}
	const gk = "(request.kind.group + '/' + request.kind.kind)"
	return "request.operation != 'UPDATE' || [{" + strings.Join(entries, ", ") + "}].exists(kinds, !(" + gk + " in kinds) || " +
		"object.?metadata.?labels.orValue({}) != oldObject.?metadata.?labels.orValue({}) || " +
		"[kinds[" + gk + "]].exists(path, " + templateChanged(shortest, longest) + "))"
}

// templateChanged returns the CEL expression that the value at path (a
// variable: the list of keys, shortest to longest of them) under the
// object differs from the one under the old object, each null when some
// level is missing or not a map. It walks the two together, one map over
// the pair per level, a value whose path ended before the level kept as
// it is, so that the walk nests no deeper than the longest path is long
// (the parser's recursion limit, 250, is well above the 128 fields of the
// longest template path a policy may give).
func templateChanged(shortest, longest int) string {
	var b strings.Builder
	b.WriteString("[[object, oldObject]")
	for i := range longest {
		step := "type(v) == map && path[" + strconv.Itoa(i) + "] in v ? v[path[" + strconv.Itoa(i) + "]] : null"
		if i >= shortest {
			step = "size(path) > " + strconv.Itoa(i) + " ? (" + step + ") : v"
		}
		b.WriteString(".map(v, " + step + ")")
	}
	b.WriteString("].exists(pair, pair[0] != pair[1])")
	return b.String()
}

// anyOf returns the CEL disjunction of exprs, leaving out those that are
// "false"; "true" when one of them is.
func anyOf(exprs ...string) string { return junction("||", "false", "true", exprs) }

// allOf returns the CEL conjunction of exprs, leaving out those that are
// "true"; "false" when one of them is.
func allOf(exprs ...string) string { return junction("&&", "true", "false", exprs) }

// junction joins exprs with op, leaving out the operator's identity and
// returning its absorbing element when one of them is it.
func junction(op, identity, absorbing string, exprs []string) string {
	var terms []string
	for _, e := range exprs {
		switch e {
		case absorbing:
			return absorbing
		case identity:
			continue
		}
		terms = append(terms, e)
	}
	switch len(terms) {
	case 0:
		return identity
	case 1:
		return terms[0]
	}
	return "(" + strings.Join(terms, ") "+op+" (") + ")"
}

// disjunction returns the CEL expression that the labels m match one of
// selectors ("false" for none), and all=true when one of them matches
// everything or cannot be expressed (send everything rather than guess).
func disjunction(selectors []metav1.LabelSelector) (expr string, all bool) {
	var terms []string
	for i := range selectors {
		s := &selectors[i]
		if len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
			return "true", true
		}
		e, ok := celpolicy.SelectorExpr(s, "m")
		if !ok {
			// A selector ValidatePolicy refused never reaches an engine.
			return "true", true
		}
		terms = append(terms, e)
	}
	if len(terms) == 0 {
		return "false", false
	}
	return strings.Join(terms, " || "), false
}

// FromLabelCondition returns the CEL expression of the mutating webhooks'
// has-datacenter-label condition: the object carries one of keys, the
// datacenterFromLabel keys of the live policies (Engine.FromLabelKeys);
// "false" for none, since then the mutation changes nothing.
func FromLabelCondition(keys []string) string {
	if len(keys) == 0 {
		return "false"
	}
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = strconv.Quote(k)
	}
	return "[" + strings.Join(quoted, ", ") + "].exists(k, k in object.?metadata.?labels.orValue({}))"
}

// NodeLabelsCondition returns the CEL expression of the nodes webhook's
// create-or-labels-change condition for keys: a Node creation, or an update
// that adds, removes or changes one of keys. The nodes webhook fails
// closed, so every label change it is sent is refused while no replica
// answers: sending only the changes the rules judge keeps the others
// (roles, taints' labels, anything a node agent sets) working then. Sync
// writes "true" instead when it is too long for a match condition
// (fitOrAll).
func NodeLabelsCondition(keys []string) string {
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = strconv.Quote(k)
	}
	return "request.operation == 'CREATE' || [" + strings.Join(quoted, ", ") + "].exists(k, " +
		"(has(object.metadata.labels) && k in object.metadata.labels) != (has(oldObject.metadata.labels) && k in oldObject.metadata.labels) || " +
		"(has(object.metadata.labels) && k in object.metadata.labels && object.metadata.labels[k] != oldObject.metadata.labels[k]))"
}

// ScopeNodes keeps the webhook configurations named Name in step with the
// live policies: the nodes webhook's create-or-labels-change condition
// sends only changes of the label keys the engine judges
// (Engine.NodeLabelKeys), the workload webhooks' selected-by-a-rule
// condition only objects some rule's selector matches
// (Engine.ObjectSelectors; with Pinned enforced by the compiled admission
// policies, pinned rules only for pods with spec.nodeName), and the
// mutating webhooks' has-datacenter-label condition only objects that
// carry a datacenterFromLabel key of some rule, and both only those
// updates of a declared kind that change its labels or its template
// (DeclaredUpdateCondition), so that with every replica down nothing
// outside the policies' reach is refused. It reads the
// configurations by list (the webhook's RBAC has no get on them) and
// writes them with Update, by name, as the certificate rotator does;
// conflicts are retried.
type ScopeNodes struct {
	Client kubernetes.Interface
	Name   string
	// Pinned says who enforces the pinned rules.
	Pinned PinnedMode
	// Rights, when set, says whether policies may ask for cel or both.
	Rights *CompileRights
	// Mapper resolves the kinds the policies declare in spec.workloadKinds
	// to the resources the workload webhooks' rules name (DeclaredRules);
	// nil sends no declared kind.
	Mapper meta.ResettableRESTMapper
}

// builtinGroups are the API groups of the judged kinds
// (policy.JudgedKinds): a workload webhook's rule for any other group is a
// declared kind's, which DeclaredRules decides.
var builtinGroups = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range policy.JudgedKinds() {
		m[k.Group] = true
	}
	return m
}()

// DeclaredRules returns the rules that send the workload webhooks the
// objects of every kind eng's policies declare in spec.workloadKinds
// (Engine.DeclaredKinds), CREATE and UPDATE of the resource of the kind's
// preferred version, sorted by group and resource; and an error for each
// kind the Mapper cannot resolve (its CRD not installed, say), whose
// objects are then not sent. A kind the mapper does not know makes it
// read discovery again once.
func (s *ScopeNodes) DeclaredRules(eng *policy.Engine) (rules []admissionregistrationv1.RuleWithOperations, unresolved []error) {
	kinds := eng.DeclaredKinds()
	if len(kinds) == 0 {
		return nil, nil
	}
	if s.Mapper == nil {
		for _, k := range kinds {
			unresolved = append(unresolved, fmt.Errorf("kind %s, which policy %s declares in spec.workloadKinds, is not sent to dc-webhook: this replica resolves no kinds to resources", k.GroupKind(), k.Policy))
		}
		return nil, unresolved
	}
	reset := false
	for _, k := range kinds {
		m, err := s.Mapper.RESTMapping(k.GroupKind())
		if meta.IsNoMatchError(err) && !reset {
			s.Mapper.Reset()
			reset = true
			m, err = s.Mapper.RESTMapping(k.GroupKind())
		}
		if err != nil {
			unresolved = append(unresolved, fmt.Errorf("kind %s, which policy %s declares in spec.workloadKinds, cannot be resolved to a resource (is its CustomResourceDefinition installed? kubectl api-resources --api-group=%s); its objects are admitted unjudged until it is: %w",
				k.GroupKind(), k.Policy, k.Group, err))
			continue
		}
		scope := admissionregistrationv1.NamespacedScope
		if m.Scope.Name() != meta.RESTScopeNameNamespace {
			scope = admissionregistrationv1.ClusterScope
		}
		rules = append(rules, admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{m.Resource.Group}, APIVersions: []string{m.Resource.Version},
				Resources: []string{m.Resource.Resource}, Scope: ptrTo(scope)},
		})
	}
	sort.Slice(rules, func(i, j int) bool {
		a, b := rules[i].Rule, rules[j].Rule
		if a.APIGroups[0] != b.APIGroups[0] {
			return a.APIGroups[0] < b.APIGroups[0]
		}
		return a.Resources[0] < b.Resources[0]
	})
	return rules, unresolved
}

// isDeclaredRule reports whether r names groups of no judged kind only: a
// rule DeclaredRules made. Policy validation refuses to declare a kind in
// the group of a judged kind (validateWorkloadKinds), so every rule
// DeclaredRules makes is told apart from the manifests' rules.
func isDeclaredRule(r admissionregistrationv1.RuleWithOperations) bool {
	for _, g := range r.APIGroups {
		if builtinGroups[g] || g == "*" {
			return false
		}
	}
	return len(r.APIGroups) > 0
}

// setDeclaredRules makes the declared kinds' rules among *rules (those of
// no judged kind's group) want, leaving every other rule as it is, and
// reports whether it changed them.
func setDeclaredRules(rules *[]admissionregistrationv1.RuleWithOperations, want []admissionregistrationv1.RuleWithOperations) bool {
	var have, keep []admissionregistrationv1.RuleWithOperations
	for _, r := range *rules {
		if isDeclaredRule(r) {
			have = append(have, r)
		} else {
			keep = append(keep, r)
		}
	}
	if len(have) == len(want) && (len(want) == 0 || equality.Semantic.DeepEqual(have, want)) {
		return false
	}
	for _, r := range want {
		keep = append(keep, *r.DeepCopy())
	}
	*rules = keep
	return true
}

// Conditions returns the conditions for eng: the nodes webhook's label
// keys, the workload webhooks' selected-by-a-rule expression, the
// mutating webhooks' has-datacenter-label expression, and whether the
// mutating webhooks are sent pod relabels (podRelabels, podRelabelRule).
// Both expressions send an UPDATE of a declared kind only when it changes
// what the engine reads of it (DeclaredUpdateCondition): the manifests'
// update conditions know the template paths of the built-in kinds alone,
// and the replicas write these two.
//
// Each policy's pinned rules go where its enforcement (Pinned.For) says:
// webhook, to both webhooks as before; cel, to neither, but for pods on a
// named node; both, to the validating webhooks for pods on a named node
// only (the webhook refuses nothing else of theirs) and to the mutating
// webhooks, which audit them before the API server's validation runs (a
// refusal by a ValidatingAdmissionPolicy ends the request before any
// validating webhook is called). The compiled policies judge a pod
// relabelled into a rule (an UPDATE of pods or pods/status), which the
// manifests' mutating webhooks are not sent (a pod's nodeSelector cannot
// change, so there is nothing to inject): with some rule in both mode
// they are sent those too, for the audit alone.
//
// The kinds the policies declare (spec.workloadKinds), which no compiled
// policy knows, are the webhook's to judge and to inject whatever the
// mode: the validating webhooks are sent them as any kind but the built-in
// ones (SelectedConditionCEL), the mutating webhooks when they carry the
// datacenterFromLabel key of any live policy (DeclaredFromLabelCondition).
//
// A condition longer than a match condition may be (too many selectors,
// say) is "true" instead (fitOrAll): the webhooks are sent everything
// their rules name rather than the configuration refused.
func (s *ScopeNodes) Conditions(eng *policy.Engine) (keys []string, selected, mutate string, podRelabels bool) {
	declared := DeclaredUpdateCondition(eng.DeclaredKinds())
	keys, selected, mutate, podRelabels = s.conditions(eng)
	return keys, withDeclared(declared, fitOrAll(selected)), withDeclared(declared, fitOrAll(mutate)), podRelabels
}

// fitOrAll returns cond when it fits in one match condition
// (maxConditionCodePoints), else "true", which sends every request the
// webhook's rules name. The API server would refuse the longer
// expression, and the replicas would keep the previous conditions, which
// may leave out what the policies now select; sending more only costs
// calls, and refusals of what the webhook does not judge while no replica
// answers (failurePolicy Fail).
func fitOrAll(cond string) string {
	if utf8.RuneCountInString(cond) <= maxConditionCodePoints {
		return cond
	}
	return "true"
}

// maxConditionCodePoints is the length of the longest CEL expression the
// API server accepts in a match condition: the code point limit of the
// CEL parser, which the API server leaves at its default.
const maxConditionCodePoints = 100_000

// withDeclared returns cond narrowed by declared (DeclaredUpdateCondition)
// when the two fit in one match condition (maxConditionCodePoints), else
// cond alone, which sends every update of a declared kind. The API server
// would refuse the longer expression, and the replicas would keep the
// previous conditions, which may leave out what the policies now select.
// Sixty-four declared kinds, the most one policy may declare, fit, also
// each at a path of its own as long as a policy may give (128 fields:
// TestDeclaredConditionsWithinAPILimits); three policies' worth of such
// kinds do not (TestDeclaredConditionTooLong).
func withDeclared(declared, cond string) string {
	if e := allOf(declared, cond); utf8.RuneCountInString(e) <= maxConditionCodePoints {
		return e
	}
	return cond
}

// conditions is Conditions without DeclaredUpdateCondition.
func (s *ScopeNodes) conditions(eng *policy.Engine) (keys []string, selected, mutate string, podRelabels bool) {
	pinned := s.Rights.mode(s.Pinned)
	if !pinned.anyCompiles(eng) {
		return eng.NodeLabelKeys(), SelectedCondition(eng.ObjectSelectors()), FromLabelCondition(eng.FromLabelKeys()), false
	}
	sent := eng.SpreadPodSelectors()
	var compiled, audited []metav1.LabelSelector
	fromKeys := map[string]bool{}
	var keysOfWebhook []string
	compiledKeys := map[string]bool{}
	for _, p := range eng.Policies() {
		mode := pinned.For(&p)
		for i := range p.Spec.Pinned {
			r := &p.Spec.Pinned[i]
			switch mode {
			case PinnedCEL:
				compiled = append(compiled, r.Selector)
			case PinnedBoth:
				compiled = append(compiled, r.Selector)
				audited = append(audited, r.Selector)
			default:
				sent = append(sent, r.Selector)
				if k := r.DatacenterFromLabel; k != "" && !fromKeys[k] {
					fromKeys[k] = true
					keysOfWebhook = append(keysOfWebhook, k)
				}
			}
			if k := r.DatacenterFromLabel; k != "" && mode.compiles() {
				compiledKeys[k] = true
			}
		}
	}
	sort.Strings(keysOfWebhook)
	mutate = MutateCondition(keysOfWebhook, audited)
	if len(eng.DeclaredKinds()) > 0 {
		// The webhook injects into the declared kinds for the policies
		// whose pinned rules are compiled too (mutateDeclared); the keys
		// it injects for everywhere are sent already.
		var keysOfDeclared []string
		for k := range compiledKeys {
			if !fromKeys[k] {
				keysOfDeclared = append(keysOfDeclared, k)
			}
		}
		sort.Strings(keysOfDeclared)
		mutate = anyOf(mutate, DeclaredFromLabelCondition(keysOfDeclared))
	}
	return eng.NodeLabelKeys(), SelectedConditionCEL(sent, compiled), mutate, len(audited) > 0
}

// DeclaredFromLabelCondition returns the CEL expression that the object
// is of no built-in kind (a kind a policy declares, the mutating webhooks'
// rules naming no other) and carries one of keys; "false" for no keys.
func DeclaredFromLabelCondition(keys []string) string {
	if len(keys) == 0 {
		return "false"
	}
	return "(!" + builtinResources + " && " + FromLabelCondition(keys) + ")"
}

// MutateCondition returns the CEL expression of the mutating webhooks'
// has-datacenter-label condition: the object carries one of keys (the
// datacenterFromLabel keys the webhook injects), or its labels or its pod
// template's match one of audited (the selectors of the pinned rules the
// webhook audits in both mode). A pod update (sent while some rule is
// audited, podRelabelRule) is sent for the audit only: nothing can be
// injected into a pod after its creation.
func MutateCondition(keys []string, audited []metav1.LabelSelector) string {
	inject := FromLabelCondition(keys)
	if len(audited) == 0 {
		return inject
	}
	sel, all := disjunction(audited)
	if all {
		return "true"
	}
	audit := "(" + builtinResources + " && " +
		"[object.?metadata.?labels.orValue({}), " + templateLabels + "].exists(m, " + sel + "))"
	if inject == "false" {
		return audit
	}
	return "((!" + podsResource + " || request.operation == 'CREATE') && " + inject + ") || " + audit
}

// podRelabelRule is the rule the mutating webhooks have while some pinned
// rule is audited (both mode): pod updates, through the pod or its status
// (which keeps label changes). Their update-changes-templates-or-labels
// condition sends only those that change the labels, and
// has-datacenter-label only those the audited rules then select, so a
// kubelet's status reports never reach them.
var podRelabelRule = admissionregistrationv1.RuleWithOperations{
	Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
	Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods", "pods/status"},
		Scope: ptrTo(admissionregistrationv1.NamespacedScope)},
}

func ptrTo[T any](x T) *T { return &x }

// setPodRelabelRule adds podRelabelRule to w's rules when want, else
// removes it, and reports whether it changed them.
func setPodRelabelRule(w *admissionregistrationv1.MutatingWebhook, want bool) bool {
	at := slices.IndexFunc(w.Rules, func(r admissionregistrationv1.RuleWithOperations) bool {
		return equality.Semantic.DeepEqual(r, podRelabelRule)
	})
	switch {
	case want && at < 0:
		w.Rules = append(w.Rules, *podRelabelRule.DeepCopy())
		return true
	case !want && at >= 0:
		w.Rules = slices.Delete(w.Rules, at, at+1)
		return true
	}
	return false
}

// Sync sets the nodes condition for keys, the workload webhooks'
// selected-by-a-rule condition to selected and their rules for declared
// kinds to declared (DeclaredRules) and, unless mutate is empty, the
// mutating webhooks' has-datacenter-label condition to mutate and their
// podRelabelRule as podRelabels says, their rules for declared kinds to
// declared too, and reports whether it
// changed a configuration. Webhooks or conditions the configurations lack
// (a local layout, an edited manifest) are left alone.
func (s *ScopeNodes) Sync(ctx context.Context, keys []string, selected, mutate string, podRelabels bool, declared []admissionregistrationv1.RuleWithOperations) (changed bool, err error) {
	want := fitOrAll(NodeLabelsCondition(keys))
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		changed = false
		list, err := s.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", s.Name).String(),
		})
		if err != nil {
			return err
		}
		var cfg *admissionregistrationv1.ValidatingWebhookConfiguration
		for i := range list.Items {
			if list.Items[i].Name == s.Name {
				cfg = list.Items[i].DeepCopy()
			}
		}
		if cfg == nil {
			return nil
		}
		edited := setCondition(cfg.Webhooks, nodesWebhook, nodesLabelsCondition, want)
		for _, w := range workloadWebhooks {
			edited = setCondition(cfg.Webhooks, w, selectedCondition, selected) || edited
		}
		for i := range cfg.Webhooks {
			if slices.Contains(workloadWebhooks, cfg.Webhooks[i].Name) {
				edited = setDeclaredRules(&cfg.Webhooks[i].Rules, declared) || edited
			}
		}
		if !edited {
			return nil
		}
		if _, err := s.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, cfg, metav1.UpdateOptions{FieldManager: "dc-webhook"}); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("scoping the webhooks of ValidatingWebhookConfiguration %s: %w", s.Name, err)
	}
	if mutate == "" {
		return changed, nil
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		list, err := s.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", s.Name).String(),
		})
		if err != nil {
			return err
		}
		for i := range list.Items {
			cfg := list.Items[i].DeepCopy()
			if cfg.Name != s.Name {
				continue
			}
			edited := false
			for j := range cfg.Webhooks {
				w := &cfg.Webhooks[j]
				if !slices.ContainsFunc(w.MatchConditions, func(c admissionregistrationv1.MatchCondition) bool { return c.Name == fromLabelCondition }) {
					continue
				}
				edited = setCondition(cfg.Webhooks[j:j+1], w.Name, fromLabelCondition, mutate) || edited
				edited = setPodRelabelRule(w, podRelabels) || edited
				edited = setDeclaredRules(&w.Rules, declared) || edited
			}
			if !edited {
				return nil
			}
			if _, err := s.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, cfg, metav1.UpdateOptions{FieldManager: "dc-webhook"}); err != nil {
				return err
			}
			changed = true
		}
		return nil
	})
	if err != nil {
		return changed, fmt.Errorf("scoping the webhooks of MutatingWebhookConfiguration %s: %w", s.Name, err)
	}
	return changed, nil
}

// webhookConditions are the validating and mutating webhooks, seen by
// their names and match conditions.
type webhookConditions interface {
	admissionregistrationv1.ValidatingWebhook | admissionregistrationv1.MutatingWebhook
}

// setCondition sets the condition named cond of the webhook named webhook
// among webhooks to expr and reports whether it changed anything.
func setCondition[W webhookConditions](webhooks []W, webhook, cond, expr string) bool {
	for i := range webhooks {
		name, conds := nameAndConditions(&webhooks[i])
		if name != webhook {
			continue
		}
		for j := range conds {
			if c := &conds[j]; c.Name == cond && c.Expression != expr {
				c.Expression = expr
				return true
			}
		}
	}
	return false
}

func nameAndConditions[W webhookConditions](w *W) (string, []admissionregistrationv1.MatchCondition) {
	switch x := any(w).(type) {
	case *admissionregistrationv1.ValidatingWebhook:
		return x.Name, x.MatchConditions
	case *admissionregistrationv1.MutatingWebhook:
		return x.Name, x.MatchConditions
	}
	return "", nil
}
