package policy

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// spreadRule is a compiled SpreadRule: members are kept apart over nodes
// and datacenters so that losing one datacenter never loses quorum.
type spreadRule struct {
	ruleMeta
	rule    *v1alpha1.SpreadRule
	index   int
	podSel  labels.Selector
	nodeSel labels.Selector
}

func (r *spreadRule) evaluate(c *evalContext) {
	switch o := c.req.Object.(type) {
	case *corev1.Binding:
		if ns, name, node, _, ok := r.placement(c); ok {
			r.checkPlacement(c, ns, name, r.expectedForPod(c.state, c.state.Pod(ns, o.Name)), node, pathBindingTarget)
		}
	case *corev1.Pod:
		if ns, name, node, _, ok := r.placement(c); ok {
			r.checkPlacement(c, ns, name, r.expectedForPod(c.state, o), node, pathNodeName)
		}
	case *corev1.Node:
		r.evaluateNode(c, o)
		r.evaluateNodeMove(c, o)
	default:
		if r.podSel != nil {
			r.evaluateTemplates(c)
		}
	}
}

// placement returns the member pod the request puts on a node: a binding of
// a member, a member created with spec.nodeName, a pod relabelled into the
// members, or a learner promoted to voter. ok is false for anything else.
func (r *spreadRule) placement(c *evalContext) (namespace, name, node string, podLabels map[string]string, ok bool) {
	if r.podSel == nil || c.state == nil {
		return "", "", "", nil, false
	}
	switch o := c.req.Object.(type) {
	case *corev1.Binding:
		ns := c.req.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		pod := c.state.Pod(ns, o.Name)
		if pod == nil || !r.isMemberPod(pod.Namespace, pod.Labels) || isLearner(pod) {
			return "", "", "", nil, false
		}
		return pod.Namespace, pod.Name, o.Target.Name, pod.Labels, true
	case *corev1.Pod:
		if o.Spec.NodeName == "" {
			return "", "", "", nil, false
		}
		ns := o.Namespace
		if ns == "" {
			ns = c.req.Namespace
		}
		if !r.isMemberPod(ns, o.Labels) || isLearner(o) {
			return "", "", "", nil, false
		}
		if c.req.Operation == OperationUpdate {
			// Placement is immutable; only a pod relabelled into the
			// members, or a learner promoted to voter, joins the voters
			// now.
			if old, ok := c.req.OldObject.(*corev1.Pod); ok && r.isMemberPod(ns, old.Labels) && !isLearner(old) {
				return "", "", "", nil, false
			}
		}
		return ns, o.Name, o.Spec.NodeName, o.Labels, true
	}
	return "", "", "", nil, false
}

func (r *spreadRule) isMemberPod(namespace string, podLabels map[string]string) bool {
	if ns := r.rule.Pods.Namespaces; len(ns) > 0 && !contains(ns, namespace) {
		return false
	}
	return r.podSel.Matches(labels.Set(podLabels))
}

// expected returns N, the number of voting members: expectedMembers, else
// the given fallback.
func (r *spreadRule) expected(fallback int) int {
	if r.rule.ExpectedMembers > 0 {
		return int(r.rule.ExpectedMembers)
	}
	return fallback
}

// isLearner reports whether a member pod is a learner that does not vote.
// Only a mirror pod may say so: its static pod is the kubelet's, while any
// pod creator could annotate its own pod to be counted for nothing and
// placed next to a voter.
func isLearner(pod *corev1.Pod) bool { return IsLearner(pod) && IsMirrorPod(pod) }

// holdsPlace reports whether a member pod counts: scheduled and not
// finished. A terminating member still runs, and votes, until it is gone.
func holdsPlace(p *corev1.Pod) bool {
	return p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// expectedForPod returns N for a member pod: expectedMembers, else the
// replicas of its owning StatefulSet, else 0 (inferred from the census).
// The owner is trusted only when it is verified: an apps StatefulSet the
// state knows, with the UID the pod names, whose selector selects the pod.
// Anyone may name a decoy of 101 replicas as controller otherwise.
func (r *spreadRule) expectedForPod(state State, pod *corev1.Pod) int {
	if r.rule.ExpectedMembers > 0 {
		return int(r.rule.ExpectedMembers)
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "StatefulSet" {
		return 0
	}
	if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != appsv1.GroupName {
		return 0
	}
	sts := state.StatefulSet(pod.Namespace, ref.Name)
	if sts == nil || sts.UID == "" || sts.UID != ref.UID || sts.Spec.Selector == nil {
		return 0
	}
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
		return 0
	}
	if sts.Spec.Replicas == nil {
		return 1
	}
	return int(*sts.Spec.Replicas)
}

// inferredMembers is N when neither expectedMembers nor a verified owner
// says: the current members plus the one being placed, and at least 3, the
// smallest set that survives the loss of a datacenter, so that members can
// be added one at a time up to one per datacenter.
func inferredMembers(current int) int { return max(current+1, 3) }

// census counts the current voting members per node and datacenter.
type census struct {
	perNode map[string]int
	perDC   map[string]int
	total   int
}

// podCensus counts member pods that hold a place (scheduled, not finished,
// not learners; terminating members count until gone), leaving out
// namespace/name.
func (r *spreadRule) podCensus(state State, namespace, name string) census {
	cs := census{perNode: map[string]int{}, perDC: map[string]int{}}
	count := func(ns string) {
		for _, p := range state.Pods(ns, r.podSel) {
			if !holdsPlace(p) || isLearner(p) || (p.Namespace == namespace && p.Name == name) {
				continue
			}
			if !r.isMemberPod(p.Namespace, p.Labels) {
				continue
			}
			cs.perNode[p.Spec.NodeName]++
			cs.perDC[DatacenterOf(state.Node(p.Spec.NodeName), r.cp.label)]++
			cs.total++
		}
	}
	if len(r.rule.Pods.Namespaces) == 0 {
		count("")
	} else {
		for _, ns := range r.rule.Pods.Namespaces {
			count(ns)
		}
	}
	return cs
}

// eligibleDatacenters returns the datacenters that have a Ready schedulable
// node (limited to spec.datacenters when set), plus extra.
func (r *spreadRule) eligibleDatacenters(state State, extra string) []string {
	set := map[string]struct{}{}
	for _, n := range state.Nodes() {
		dc := n.Labels[r.cp.label]
		if dc == "" || !NodeSchedulable(n) {
			continue
		}
		if r.cp.known != nil {
			if _, ok := r.cp.known[dc]; !ok {
				continue
			}
		}
		set[dc] = struct{}{}
	}
	if extra != "" {
		set[extra] = struct{}{}
	}
	return sortedKeys(set)
}

// checkPlacement judges putting member namespace/name on node. n is N
// (0: inferredMembers). For a node member, node is the member itself
// and maxPerNode does not apply (namespace is "").
func (r *spreadRule) checkPlacement(c *evalContext, namespace, name string, n int, nodeName string, path *field.Path) {
	node := c.state.Node(nodeName)
	if node == nil {
		// The scheduler and kubelet refuse unknown nodes; nothing to judge.
		return
	}
	label := r.cp.label
	dc := DatacenterOf(node, label)
	if dc == "" {
		c.add(&r.ruleMeta, field.Invalid(path, nodeName, "node "+nodeName+" has no "+label+" label, so quorum safety cannot be judged: label it with its datacenter, or place the member on a labeled node"))
		return
	}
	cs := r.podCensus(c.state, namespace, name)
	if limit := r.rule.EffectiveMaxPerNode(); cs.perNode[nodeName] >= limit {
		c.add(&r.ruleMeta, field.Invalid(path, nodeName, "node "+nodeName+" already holds "+strconv.Itoa(cs.perNode[nodeName])+" member(s), and maxPerNode is "+strconv.Itoa(limit)+": place the member on another node"))
	}
	r.checkDatacenters(c, cs, n, dc, path, nodeName)
}

// checkDatacenters judges adding one member in dc to the census: balance
// over eligible datacenters, and survival of a datacenter loss.
func (r *spreadRule) checkDatacenters(c *evalContext, cs census, n int, dc string, path *field.Path, value string) {
	eligible := r.eligibleDatacenters(c.state, dc)
	// Balance: counts after placement may differ by at most one. A
	// placement into a least-loaded datacenter is always allowed, since it
	// is how an unbalanced set is repaired.
	before := cs.perDC[dc]
	minBefore, maxAfter, minAfter := -1, 0, -1
	for _, d := range eligible {
		cnt := cs.perDC[d]
		if minBefore < 0 || cnt < minBefore {
			minBefore = cnt
		}
		if d == dc {
			cnt++
		}
		if cnt > maxAfter {
			maxAfter = cnt
		}
		if minAfter < 0 || cnt < minAfter {
			minAfter = cnt
		}
	}
	if maxAfter-minAfter > 1 && before > minBefore {
		var least []string
		parts := make([]string, 0, len(eligible))
		for _, d := range eligible {
			cnt := cs.perDC[d]
			if cnt == minBefore {
				least = append(least, d)
			}
			if d == dc {
				cnt++
			}
			parts = append(parts, d+"="+strconv.Itoa(cnt))
		}
		c.add(&r.ruleMeta, field.Invalid(path, value, "placing the member in datacenter "+dc+" leaves the members unbalanced ("+strings.Join(parts, ", ")+"; counts over datacenters with a Ready schedulable node may differ by at most one): place it in "+strings.Join(least, " or ")))
	}
	if !r.rule.SurvivesDatacenterLoss() {
		return
	}
	inferred := n <= 0
	if inferred {
		n = inferredMembers(cs.total)
	}
	limit := MaxPerDatacenter(n)
	if after := before + 1; after > limit {
		detail := "datacenter " + dc + " would hold " + strconv.Itoa(after) + " of N=" + strconv.Itoa(n) +
			" voting members, more than floor((N-1)/2)=" + strconv.Itoa(limit) + ": losing " + dc + " would leave " +
			strconv.Itoa(n-after) + ", below the quorum of " + strconv.Itoa(Quorum(n))
		room := false
		for _, d := range eligible {
			room = room || (d != dc && cs.perDC[d] < limit)
		}
		if inferred && !room && len(eligible) >= 3 {
			detail += "; every datacenter holds its share of N=" + strconv.Itoa(n) + ", inferred as the current members plus one (at least 3) since the rule sets no expectedMembers and no verified owning StatefulSet gives the size: set spec.spread[" + strconv.Itoa(r.index) + "].expectedMembers to the final size (5 for two per datacenter)"
		} else {
			detail += r.survivalAdvice(c.state, n, eligible)
		}
		c.add(&r.ruleMeta, field.Invalid(path, value, detail))
	}
}

// survivalAdvice says what would make N members survive the loss of a
// datacenter, given the eligible datacenters (those with a Ready
// schedulable node). When fewer than three are eligible only because known
// datacenters have Nodes but none Ready and schedulable (powered off,
// partitioned, or cordoned for a drain), it names them: asking for a third
// datacenter would be wrong advice.
func (r *spreadRule) survivalAdvice(state State, n int, eligible []string) string {
	d := len(eligible)
	if idle := r.idleDatacenters(state, eligible); d < 3 && d+len(idle) >= 3 {
		has, until := "datacenter "+idle[0]+" has", "it has"
		if len(idle) > 1 {
			has, until = "datacenters "+strings.Join(idle, ", ")+" have", "they have"
		}
		return "; " + has + " no Ready schedulable node now (down, or cordoned): members can be spread over " + joinOr(eligible, "no datacenter") + " only until " + until + " one again"
	}
	switch {
	case d < 2:
		return "; with a single datacenter nothing survives its loss: add datacenters (at least three)"
	case d == 2:
		return "; two datacenters can never survive the loss of either (3 members split 2+1, 5 split 3+2, 4 split 2+2 all fail): add a third (witness) datacenter holding at least one member"
	case n < 3:
		return "; fewer than 3 voting members never survive the loss of one: set expectedMembers (spec.spread[" + strconv.Itoa(r.index) + "].expectedMembers) to the final size, at least 3"
	}
	return "; place it in another datacenter"
}

// idleDatacenters returns, sorted, the known datacenters outside eligible
// that have Nodes, none of them Ready and schedulable.
func (r *spreadRule) idleDatacenters(state State, eligible []string) []string {
	if state == nil {
		return nil
	}
	withNodes := map[string]struct{}{}
	for _, n := range state.Nodes() {
		if dc := n.Labels[r.cp.label]; dc != "" {
			withNodes[dc] = struct{}{}
		}
	}
	var out []string
	for _, dc := range r.cp.knownDatacenters(state) {
		if _, ok := withNodes[dc]; ok && !contains(eligible, dc) {
			out = append(out, dc)
		}
	}
	return out
}

// evaluateTemplates checks the pod templates of a workload whose pods are
// members: the scheduler must keep them apart (checkTemplateSpread), and
// the replica count must be able to survive a datacenter loss. An UPDATE is
// judged on what it changes: the templates, or a member count that grows.
func (r *spreadRule) evaluateTemplates(c *evalContext) {
	obj := c.req.Object
	templates := c.podTemplates()
	if len(templates) == 0 {
		return
	}
	m := c.objectMeta()
	if m == nil {
		return
	}
	ch := c.updateChanges()
	if !ch.templates && !ch.replicasUp {
		return
	}
	ns := namespaceOf(m, c.req.Namespace)
	label := r.cp.label
	for i := range templates {
		t := &templates[i]
		if !r.isMemberPod(ns, t.Meta.Labels) {
			continue
		}
		if ch.templates {
			if _, ok := obj.(*appsv1.DaemonSet); ok {
				c.add(&r.ruleMeta, field.Forbidden(pathDaemonSetTemplate,
					"a DaemonSet runs one pod on every node, so its pods can never be kept to floor((N-1)/2) per datacenter: run quorum members as a StatefulSet (or static pods), or change the template labels so that rule "+r.name+" does not select them"))
				continue
			}
			r.checkTemplateSpread(c, t, ns, label)
		}
		if !r.rule.SurvivesDatacenterLoss() || c.state == nil {
			continue
		}
		replicas, ok := replicasOf(obj)
		if !ok && r.rule.ExpectedMembers == 0 {
			continue
		}
		n := r.expected(replicas)
		eligible := r.eligibleDatacenters(c.state, "")
		d := len(eligible)
		if n <= 0 || d == 0 {
			continue
		}
		perDC := (n + d - 1) / d
		if perDC <= MaxPerDatacenter(n) {
			continue
		}
		path := pathReplicas
		if r.rule.ExpectedMembers > 0 {
			path = field.NewPath("spec", "spread").Index(r.index).Child("expectedMembers")
		}
		detail := strconv.Itoa(n) + " voting members over " + strconv.Itoa(d) + " datacenter(s) put at least " + strconv.Itoa(perDC) +
			" in one, more than floor((N-1)/2)=" + strconv.Itoa(MaxPerDatacenter(n)) + ": losing it would lose quorum"
		if d >= 3 {
			detail += "; use " + strconv.Itoa(survivableSize(n, d)) + " members instead"
		} else {
			detail += r.survivalAdvice(c.state, n, eligible)
		}
		c.add(&r.ruleMeta, field.Invalid(path, n, detail))
	}
}

// survivableSize returns the smallest size >= 3 and >= n whose even spread
// over d datacenters survives the loss of any one.
func survivableSize(n, d int) int {
	for k := max(n, 3); ; k++ {
		if (k+d-1)/d <= MaxPerDatacenter(k) {
			return k
		}
	}
}

func replicasOf(obj any) (int, bool) {
	var p *int32
	switch o := obj.(type) {
	case *appsv1.StatefulSet:
		p = o.Spec.Replicas
	case *appsv1.Deployment:
		p = o.Spec.Replicas
	case *appsv1.ReplicaSet:
		p = o.Spec.Replicas
	case *corev1.ReplicationController:
		p = o.Spec.Replicas
	default:
		return 0, false
	}
	if p == nil {
		return 1, true
	}
	return int(*p), true
}

// checkTemplateSpread requires a template whose pods the scheduler itself
// keeps apart over datacenters, since the binding check fails open: a
// topology spread constraint with maxSkew 1, DoNotSchedule, the datacenter
// label as key and a labelSelector that selects the members, with no
// matchLabelKeys that split them; or a required pod anti-affinity term on
// the datacenter label over the members' own namespace. Either is void
// when the template confines its pods to fewer datacenters than there are.
func (r *spreadRule) checkTemplateSpread(c *evalContext, t *PodTemplate, ns, label string) {
	if s := checkLimits(requiredTerms(t.Spec), label); s.problem != selOK {
		c.add(&r.ruleMeta, limitError(&s, t.Path, label))
		return
	}
	tl := labels.Set(t.Meta.Labels)
	tscPath := t.Path.Child("topologySpreadConstraints")
	var problems field.ErrorList
	spread := false
	for i := range t.Spec.TopologySpreadConstraints {
		tsc := &t.Spec.TopologySpreadConstraints[i]
		if tsc.TopologyKey != label || !selectorMatches(tsc.LabelSelector, tl) {
			continue
		}
		p := tscPath.Index(i)
		ok := true
		if tsc.WhenUnsatisfiable != corev1.DoNotSchedule {
			problems = append(problems, field.Invalid(p.Child("whenUnsatisfiable"), tsc.WhenUnsatisfiable,
				"ScheduleAnyway lets the scheduler stack quorum members in one datacenter: use DoNotSchedule"))
			ok = false
		}
		if tsc.MaxSkew != 1 {
			problems = append(problems, field.Invalid(p.Child("maxSkew"), tsc.MaxSkew,
				"a skew above 1 lets the scheduler put several quorum members in one datacenter while another has none: use maxSkew 1"))
			ok = false
		}
		if j, key := splittingKey(tsc.MatchLabelKeys, tl); j >= 0 {
			problems = append(problems, field.Invalid(p.Child("matchLabelKeys").Index(j), key,
				"matchLabelKeys narrows the constraint to pods sharing this label's value, and the members do not all share it (it is not a label of the pod template), so the constraint no longer sees the other members: remove it"))
			ok = false
		}
		spread = spread || ok
	}
	if a := t.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		terms := a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		p := t.Path.Child("affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
		for i := range terms {
			term := &terms[i]
			if term.TopologyKey != label || !selectorMatches(term.LabelSelector, tl) {
				continue
			}
			ok := true
			if !r.termCoversNamespace(c, term, ns) {
				problems = append(problems, field.Invalid(p.Index(i).Child("namespaces"), term.Namespaces,
					"the term's namespaces and namespaceSelector leave out the members' own namespace "+ns+", so the scheduler keeps them away from nothing: drop both fields (the pod's own namespace), or include "+ns))
				ok = false
			}
			if j, key := splittingKey(term.MatchLabelKeys, tl); j >= 0 {
				problems = append(problems, field.Invalid(p.Index(i).Child("matchLabelKeys").Index(j), key,
					"matchLabelKeys narrows the term to pods sharing this label's value, and the members do not all share it: remove it"))
				ok = false
			}
			if len(term.MismatchLabelKeys) > 0 {
				problems = append(problems, field.Invalid(p.Index(i).Child("mismatchLabelKeys"), term.MismatchLabelKeys,
					"mismatchLabelKeys narrows the term to pods with another value of the label, so members alike are not kept apart: remove it"))
				ok = false
			}
			spread = spread || ok
		}
	}
	if spread {
		if dcs, excluded := r.confinedTo(c, t.Spec, label); len(excluded) > 0 {
			detail := "nodeSelector or required node affinity on " + label + " lets the pods run only in " + joinOr(dcs, "no datacenter") + " and never in " + joinOr(excluded, "") + ", so no spread constraint can keep quorum members apart: drop the selection on " + label
			where := t.Path.Child("nodeSelector").Key(label)
			if _, has := t.Spec.NodeSelector[label]; !has {
				where = termsPath(t.Path)
			}
			c.add(&r.ruleMeta, &field.Error{Type: field.ErrorTypeInvalid, Field: where.String(), BadValue: field.OmitValueType{}, Detail: detail})
		}
		return
	}
	if len(problems) > 0 {
		for _, e := range problems {
			c.add(&r.ruleMeta, e)
		}
		return
	}
	c.add(&r.ruleMeta, field.Required(tscPath,
		"quorum members must be spread over datacenters: add {maxSkew: 1, topologyKey: "+label+", whenUnsatisfiable: DoNotSchedule, labelSelector: <the pod labels>}, or a required podAntiAffinity term with topologyKey "+label))
}

var pathDaemonSetTemplate = field.NewPath("spec", "template")

func selectorMatches(s *metav1.LabelSelector, set labels.Set) bool {
	if s == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil || sel.Empty() {
		return false
	}
	return sel.Matches(set)
}

// splittingKey returns the first key of matchLabelKeys that is not a label
// of the template, with its index, or -1. A template label has one value
// for every pod of the template; any other label (a pod name, a revision
// hash) is set per pod or per revision and splits the members into groups
// the scheduler keeps apart only from themselves.
func splittingKey(keys []string, templateLabels labels.Set) (int, string) {
	for i, k := range keys {
		if _, ok := templateLabels[k]; !ok {
			return i, k
		}
	}
	return -1, ""
}

// termCoversNamespace reports whether a pod affinity term considers pods of
// namespace ns: no namespaces and no namespaceSelector mean the pod's own;
// otherwise ns must be listed or selected (an empty namespaceSelector
// selects every namespace). A namespaceSelector over a namespace the state
// does not know cannot be shown to cover it.
func (r *spreadRule) termCoversNamespace(c *evalContext, term *corev1.PodAffinityTerm, ns string) bool {
	if len(term.Namespaces) == 0 && term.NamespaceSelector == nil {
		return true
	}
	if contains(term.Namespaces, ns) {
		return true
	}
	if term.NamespaceSelector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(term.NamespaceSelector)
	if err != nil {
		return false
	}
	if sel.Empty() {
		return true
	}
	if c.state == nil {
		return false
	}
	nsLabels, ok := c.state.NamespaceLabels(ns)
	return ok && sel.Matches(nsLabels)
}

// confinedTo returns the datacenters the template's nodeSelector and
// required node affinity let its pods run in, and the known datacenters
// they leave out (none when they do not name label). Terms are ORed.
func (r *spreadRule) confinedTo(c *evalContext, spec *corev1.PodSpec, label string) (allowed, excluded []string) {
	known := r.cp.knownDatacenters(c.state)
	if len(known) == 0 {
		return nil, nil
	}
	terms := requiredTerms(spec)
	nsDC, hasNS := spec.NodeSelector[label]
	for _, dc := range known {
		ok := !hasNS || nsDC == dc
		if ok && len(terms) > 0 {
			ok = false
			for i := range terms {
				if termAllows(&terms[i], label, dc) {
					ok = true
					break
				}
			}
		}
		if ok {
			allowed = append(allowed, dc)
		} else {
			excluded = append(excluded, dc)
		}
	}
	return allowed, excluded
}

// evaluateNodeMove judges a relabel of a Node that holds member pods into
// another datacenter, as if its members were placed there one by one: an
// administrator moving nodes must not move quorum into one datacenter.
func (r *spreadRule) evaluateNodeMove(c *evalContext, node *corev1.Node) {
	if r.podSel == nil || c.state == nil || c.req.Operation != OperationUpdate {
		return
	}
	old, ok := c.req.OldObject.(*corev1.Node)
	label := r.cp.label
	if !ok || node.Labels[label] == "" || node.Labels[label] == old.Labels[label] {
		return
	}
	dc, from := node.Labels[label], DatacenterOf(c.state.Node(node.Name), label)
	var moving []*corev1.Pod
	for _, p := range r.memberPods(c.state) {
		if p.Spec.NodeName == node.Name && holdsPlace(p) && !isLearner(p) {
			moving = append(moving, p)
		}
	}
	if len(moving) == 0 {
		return
	}
	cs := r.podCensus(c.state, "", "")
	cs.perDC[from] -= len(moving)
	cs.total -= len(moving)
	path := pathMetadataLabels.Key(label)
	for _, p := range moving {
		before := len(c.results)
		r.checkDatacenters(c, cs, r.expectedForPod(c.state, p), dc, path, dc)
		if len(c.results) > before {
			for i := before; i < len(c.results); i++ {
				e := *c.results[i].Error
				e.Detail = "node " + node.Name + " holds member " + p.Namespace + "/" + p.Name + ": " + e.Detail
				c.results[i].Error = &e
			}
			return
		}
		cs.perDC[dc]++
		cs.total++
	}
}

// memberPods returns the pods of the rule's namespaces its selector selects.
func (r *spreadRule) memberPods(state State) []*corev1.Pod {
	if len(r.rule.Pods.Namespaces) == 0 {
		return state.Pods("", r.podSel)
	}
	var out []*corev1.Pod
	for _, ns := range r.rule.Pods.Namespaces {
		out = append(out, state.Pods(ns, r.podSel)...)
	}
	return out
}

// evaluateNode judges a member node joining a datacenter: on create, and on
// update when it becomes a member or its datacenter label changes.
func (r *spreadRule) evaluateNode(c *evalContext, node *corev1.Node) {
	if r.nodeSel == nil || c.state == nil || !r.nodeSel.Matches(labels.Set(node.Labels)) {
		return
	}
	label := r.cp.label
	dc := node.Labels[label]
	if c.req.Operation == OperationUpdate {
		if old, ok := c.req.OldObject.(*corev1.Node); ok && r.nodeSel.Matches(labels.Set(old.Labels)) && old.Labels[label] == dc {
			return
		}
	}
	path := pathMetadataLabels.Key(label)
	if dc == "" {
		c.add(&r.ruleMeta, field.Required(path, "member node "+node.Name+" has no datacenter label "+label+", so quorum safety cannot be judged: label it with its datacenter"))
		return
	}
	cs := census{perNode: nil, perDC: map[string]int{}}
	for _, n := range c.state.Nodes() {
		if n.Name == node.Name || n.DeletionTimestamp != nil || !r.nodeSel.Matches(labels.Set(n.Labels)) {
			continue
		}
		cs.perDC[n.Labels[label]]++
		cs.total++
	}
	r.checkDatacenters(c, cs, r.expected(0), dc, path, dc)
}
