package policy

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
		if r.podSel == nil || c.state == nil {
			return
		}
		ns := c.req.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		pod := c.state.Pod(ns, o.Name)
		if pod == nil || !r.isMemberPod(pod.Namespace, pod.Labels) || IsLearner(pod) {
			return
		}
		r.checkPlacement(c, pod.Namespace, pod.Name, r.expectedForPod(c.state, pod), o.Target.Name, pathBindingTarget)
	case *corev1.Pod:
		if r.podSel == nil || o.Spec.NodeName == "" || c.state == nil {
			return
		}
		ns := o.Namespace
		if ns == "" {
			ns = c.req.Namespace
		}
		if !r.isMemberPod(ns, o.Labels) || IsLearner(o) {
			return
		}
		if c.req.Operation == OperationUpdate {
			// Placement is immutable; only a pod relabelled into the
			// members joins them now.
			if old, ok := c.req.OldObject.(*corev1.Pod); !ok || r.isMemberPod(ns, old.Labels) {
				return
			}
		}
		r.checkPlacement(c, ns, o.Name, r.expectedForPod(c.state, o), o.Spec.NodeName, pathNodeName)
	case *corev1.Node:
		r.evaluateNode(c, o)
	default:
		if r.podSel != nil {
			r.evaluateTemplates(c)
		}
	}
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

// expectedForPod returns N for a member pod: expectedMembers, else its
// owning StatefulSet's replicas, else 0 (current members + 1).
func (r *spreadRule) expectedForPod(state State, pod *corev1.Pod) int {
	if r.rule.ExpectedMembers > 0 {
		return int(r.rule.ExpectedMembers)
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil && ref.Kind == "StatefulSet" {
		if sts := state.StatefulSet(pod.Namespace, ref.Name); sts != nil {
			if sts.Spec.Replicas == nil {
				return 1
			}
			return int(*sts.Spec.Replicas)
		}
	}
	return 0
}

// census counts the current voting members per node and datacenter.
type census struct {
	perNode map[string]int
	perDC   map[string]int
	total   int
}

// podCensus counts member pods that hold a place (scheduled, not finished,
// not being deleted, not learners), leaving out namespace/name.
func (r *spreadRule) podCensus(state State, namespace, name string) census {
	cs := census{perNode: map[string]int{}, perDC: map[string]int{}}
	count := func(ns string) {
		for _, p := range state.Pods(ns, r.podSel) {
			if p.Spec.NodeName == "" || PodTerminal(p) || IsLearner(p) || (p.Namespace == namespace && p.Name == name) {
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
// (0: current members + 1). For a node member, node is the member itself
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
	if n <= 0 {
		n = cs.total + 1
	}
	limit := MaxPerDatacenter(n)
	if after := before + 1; after > limit {
		detail := "datacenter " + dc + " would hold " + strconv.Itoa(after) + " of N=" + strconv.Itoa(n) +
			" voting members, more than floor((N-1)/2)=" + strconv.Itoa(limit) + ": losing " + dc + " would leave " +
			strconv.Itoa(n-after) + ", below the quorum of " + strconv.Itoa(Quorum(n))
		detail += r.survivalAdvice(n, len(eligible))
		c.add(&r.ruleMeta, field.Invalid(path, value, detail))
	}
}

// survivalAdvice says what would make N members survive the loss of a
// datacenter, given d datacenters.
func (r *spreadRule) survivalAdvice(n, d int) string {
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

// evaluateTemplates checks the pod templates of a workload whose pods are
// members: they must carry a DoNotSchedule topology spread constraint or a
// required pod anti-affinity term on the datacenter label, and the replica
// count must be able to survive a datacenter loss.
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
	ns := namespaceOf(m, c.req.Namespace)
	label := r.cp.label
	for i := range templates {
		t := &templates[i]
		if !r.isMemberPod(ns, t.Meta.Labels) {
			continue
		}
		r.checkTemplateSpread(c, t, label)
		if !r.rule.SurvivesDatacenterLoss() || c.state == nil {
			continue
		}
		replicas, ok := replicasOf(obj)
		if !ok && r.rule.ExpectedMembers == 0 {
			continue
		}
		n := r.expected(replicas)
		d := len(r.eligibleDatacenters(c.state, ""))
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
			detail += r.survivalAdvice(n, d)
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

func (r *spreadRule) checkTemplateSpread(c *evalContext, t *PodTemplate, label string) {
	tl := labels.Set(t.Meta.Labels)
	anyway := -1
	for i := range t.Spec.TopologySpreadConstraints {
		tsc := &t.Spec.TopologySpreadConstraints[i]
		if tsc.TopologyKey != label || !selectorMatches(tsc.LabelSelector, tl) {
			continue
		}
		if tsc.WhenUnsatisfiable == corev1.DoNotSchedule {
			return
		}
		if anyway < 0 {
			anyway = i
		}
	}
	if a := t.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for i := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			term := &a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[i]
			if term.TopologyKey == label && selectorMatches(term.LabelSelector, tl) {
				return
			}
		}
	}
	if anyway >= 0 {
		c.add(&r.ruleMeta, field.Invalid(t.Path.Child("topologySpreadConstraints").Index(anyway).Child("whenUnsatisfiable"), corev1.ScheduleAnyway,
			"ScheduleAnyway lets the scheduler stack quorum members in one datacenter: use DoNotSchedule"))
		return
	}
	c.add(&r.ruleMeta, field.Required(t.Path.Child("topologySpreadConstraints"),
		"quorum members must be spread over datacenters: add {maxSkew: 1, topologyKey: "+label+", whenUnsatisfiable: DoNotSchedule, labelSelector: <the pod labels>}, or a required podAntiAffinity term with topologyKey "+label))
}

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
