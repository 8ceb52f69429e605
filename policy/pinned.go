package policy

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// pinnedRule is a compiled PinnedRule: every pod template of a matching
// object must select exactly one known datacenter.
type pinnedRule struct {
	ruleMeta
	rule  *v1alpha1.PinnedRule
	sel   labels.Selector
	nsSel labels.Selector // nil: every namespace
}

// matches reports whether the rule applies to an object with these labels
// in namespace. A namespace the state does not know (not yet in the
// webhook's cache) cannot be judged by the namespaceSelector: the rule is
// taken to apply, never skipped, and unknownNS says so.
func (r *pinnedRule) matches(objLabels map[string]string, namespace string, state State) (ok, unknownNS bool) {
	if !r.sel.Matches(labels.Set(objLabels)) {
		return false, false
	}
	if r.nsSel == nil {
		return true, false
	}
	if state == nil {
		return r.nsSel.Matches(labels.Set(nil)), false
	}
	nsLabels, known := state.NamespaceLabels(namespace)
	if !known {
		return true, true
	}
	return r.nsSel.Matches(nsLabels), false
}

// judgesUpdate reports whether an UPDATE changes anything the rule judges:
// an object relabelled into the rule, a new datacenterFromLabel value, or,
// for workloads, the placement of a pod template. Pods are judged on
// labels only, since their placement cannot change after create.
func (r *pinnedRule) judgesUpdate(c *evalContext, objLabels map[string]string, ns string) bool {
	m, err := meta.Accessor(c.req.OldObject)
	if c.req.OldObject == nil || err != nil {
		return true
	}
	oldLabels := m.GetLabels()
	if was, _ := r.matchesWorkload(c.req.OldObject, oldLabels, ns, c.state); !was {
		return true
	}
	if l := r.rule.DatacenterFromLabel; l != "" {
		ov, oldHas := oldLabels[l]
		nv, newHas := objLabels[l]
		if oldHas != newHas || ov != nv {
			return true
		}
	}
	if _, isPod := c.req.Object.(*corev1.Pod); isPod {
		return false
	}
	return c.updateChanges().templates
}

// namespaceOf returns the object's namespace, else the request's (objects
// in a CREATE may leave it to the request).
func namespaceOf(m metav1Object, fallback string) string {
	if ns := m.GetNamespace(); ns != "" {
		return ns
	}
	return fallback
}

type metav1Object interface {
	GetNamespace() string
	GetLabels() map[string]string
}

func (r *pinnedRule) evaluate(c *evalContext) {
	obj := c.req.Object
	pod, isPod := obj.(*corev1.Pod)
	m := c.objectMeta()
	if m == nil {
		return
	}
	objLabels := m.GetLabels()
	ns := namespaceOf(m, c.req.Namespace)
	match, unknownNS := r.matchesWorkload(obj, objLabels, ns, c.state)
	if !match {
		return
	}
	// An UPDATE is judged on what it changes, as a create of that. A pod's
	// placement is immutable and was judged at create: only a pod
	// relabelled into the rule, or given another datacenterFromLabel
	// value, is new to it, or it would serve the other datacenter.
	if c.req.Operation == OperationUpdate && !r.judgesUpdate(c, objLabels, ns) {
		return
	}
	if unknownNS {
		start := len(c.results)
		defer func() {
			for i := start; i < len(c.results); i++ {
				e := *c.results[i].Error
				e.Detail += " (namespace " + ns + " is not known yet, so the rule's namespaceSelector could not be evaluated and the rule was applied)"
				c.results[i].Error = &e
			}
		}()
	}
	templates := c.podTemplates()
	if len(templates) == 0 {
		return
	}
	label := r.cp.label
	want, hasWant := "", false
	if r.rule.DatacenterFromLabel != "" {
		want, hasWant = objLabels[r.rule.DatacenterFromLabel]
	}
	for i := range templates {
		t := &templates[i]
		s := selectionOf(t.Spec, label)
		if e := limitError(&s, t.Path, label); e != nil {
			c.add(&r.ruleMeta, e)
			continue
		}
		switch s.problem {
		case selNone:
			detail := "pods must select exactly one datacenter: set nodeSelector[" + label + "] to "
			if hasWant && want != "" {
				detail += want + " (from label " + r.rule.DatacenterFromLabel + " of the object; the mutating webhook injects it when it runs)"
			} else {
				detail += "one of: " + joinOr(r.cp.knownDatacenters(c.state), "a datacenter")
			}
			c.add(&r.ruleMeta, field.Required(t.Path.Child("nodeSelector").Key(label), detail))
			continue
		case selPermissive:
			c.add(&r.ruleMeta, &field.Error{Type: field.ErrorTypeInvalid, Field: termsPath(t.Path).Index(s.badTerm).String(), BadValue: field.OmitValueType{},
				Detail: "required node affinity terms are ORed and this term does not pin " + label + " to one datacenter, so pods may run in any datacenter: add {key: " + label + ", operator: In, values: [<datacenter>]} to every term, or set nodeSelector[" + label + "]"})
			continue
		case selTermsDisagree:
			c.add(&r.ruleMeta, field.Invalid(termsPath(t.Path).Index(s.badTerm), s.otherDC,
				"required node affinity terms are ORed: term 0 pins "+label+" to "+s.dc+" but this term pins "+s.otherDC+", so pods may run in either; pin every term to the same datacenter"))
			continue
		case selConflict:
			detail := "nodeSelector[" + label + "] pins " + s.dc + " but this required node affinity term "
			if s.otherDC != "" {
				detail += "pins " + s.otherDC
			} else {
				detail += "excludes it"
			}
			c.add(&r.ruleMeta, &field.Error{Type: field.ErrorTypeInvalid, Field: termsPath(t.Path).Index(s.badTerm).String(), BadValue: field.OmitValueType{},
				Detail: detail + ", so pods can never be scheduled: make them agree"})
			continue
		}
		if !r.cp.isKnown(s.dc, c.state) {
			c.add(&r.ruleMeta, field.Invalid(s.path(t.Path, label), s.dc, unknownDatacenterDetail(s.dc, r.cp.knownDatacenters(c.state), r.policy, label)))
			continue
		}
		if hasWant && want != s.dc {
			c.add(&r.ruleMeta, field.Invalid(s.path(t.Path, label), s.dc,
				"the object's label "+r.rule.DatacenterFromLabel+"="+want+" says datacenter "+strconv.Quote(want)+" but the pods select "+strconv.Quote(s.dc)+": make them agree"))
			continue
		}
		if isPod && pod.Spec.NodeName != "" && c.state != nil {
			if node := c.state.Node(pod.Spec.NodeName); node != nil {
				if got := DatacenterOf(node, label); got != s.dc {
					detail := "node " + node.Name + " is in datacenter " + strconv.Quote(got) + " but the pod selects " + strconv.Quote(s.dc) + ": name a node in " + s.dc + " or leave spec.nodeName empty"
					if got == "" {
						detail = "node " + node.Name + " has no " + label + " label but the pod selects " + strconv.Quote(s.dc) + ": name a node in " + s.dc + " or leave spec.nodeName empty"
					}
					c.add(&r.ruleMeta, field.Invalid(pathNodeName, pod.Spec.NodeName, detail))
				}
			}
		}
	}
}

// mutate injects nodeSelector[label]=<datacenterFromLabel value> into every
// template of obj without a selection on label.
func (r *pinnedRule) mutate(obj runtime.Object, namespace string, state State) bool {
	if r.rule.DatacenterFromLabel == "" {
		return false
	}
	if pod, ok := obj.(*corev1.Pod); ok && IsMirrorPod(pod) {
		return false
	}
	templates := PodTemplates(obj)
	if len(templates) == 0 {
		return false
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	want := m.GetLabels()[r.rule.DatacenterFromLabel]
	if want == "" {
		return false
	}
	if match, _ := r.matchesWorkload(obj, m.GetLabels(), namespaceOf(m, namespace), state); !match {
		return false
	}
	changed := false
	label := r.cp.label
	for i := range templates {
		spec := templates[i].Spec
		if _, has := spec.NodeSelector[label]; has {
			continue
		}
		if _, ok := SelectedDatacenter(spec, label); ok {
			continue
		}
		if spec.NodeSelector == nil {
			spec.NodeSelector = map[string]string{}
		}
		spec.NodeSelector[label] = want
		changed = true
	}
	return changed
}

// isKnown reports whether dc is one of the policy's datacenters: its
// spec.datacenters, else a value of its label on some node.
func (cp *compiledPolicy) isKnown(dc string, state State) bool {
	if dc == "" {
		return false
	}
	if cp.known != nil {
		_, ok := cp.known[dc]
		return ok
	}
	if state == nil {
		return false
	}
	for _, n := range state.Nodes() {
		if n.Labels[cp.label] == dc {
			return true
		}
	}
	return false
}

func joinOr(list []string, none string) string {
	if len(list) == 0 {
		return none
	}
	out := list[0]
	for _, s := range list[1:] {
		out += ", " + s
	}
	return out
}
