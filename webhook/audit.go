package webhook

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	apiadmission "k8s.io/apiserver/pkg/admission"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
)

// PinnedAuditor keeps, on every replica, what the handlers need to leave
// the pinned rules of the policies in cel or both mode to their compiled
// admission policies, and to audit those of the policies in both mode:
// those policies compiled as the writer
// (AdmissionPolicies) compiles them, and evaluated in-process
// (celpolicy.Evaluator), so that a request's verdict from the compiled
// policies is known without asking the API server. It compiles again on
// every Kick (a new engine, a Node change) and builds a new Evaluator only
// when the compilation changed.
type PinnedAuditor struct {
	// Mode is the default enforcement (--pinned-enforcement).
	Mode PinnedMode
	// Rights, when set, says whether policies may ask for cel or both.
	Rights *CompileRights
	// Engines gives the live policies.
	Engines *EngineStore
	// Nodes is the Node cache: the known datacenters.
	Nodes toolscache.Store
	// Options are the compiler's, as for AdmissionPolicies.
	Options celpolicy.Options
	Log     interface {
		Info(msg string, kv ...any)
		Error(err error, msg string, kv ...any)
	}

	kicker
	// seen tells the reinvocations of the mutating webhook from the
	// requests of their own, so that each request is audited once.
	seen auditLedger
	view atomic.Pointer[pinnedView]
	mu   sync.Mutex // serialises builds; guards hash
	hash string
}

// pinnedView is what the handlers read of one engine.
type pinnedView struct {
	engine *policy.Engine
	// modes is the enforcement of every policy of engine, by name.
	modes map[string]PinnedMode
	// compiled are the pinned rules ("<policy>/<rule>") of the policies in
	// cel or both mode: their compiled policies judge what they cover, and
	// the validating handler leaves it to them (stepAside).
	compiled map[string]bool
	// audited are the pinned rules of the policies in both mode;
	// selectors their selectors.
	audited   map[string]bool
	selectors []labels.Selector
	// keys are the label keys the audited rules read: their selectors'
	// and their datacenterFromLabel.
	keys map[string]bool
	// injector is the engine the mutating webhook injects into the
	// built-in kinds with: engine itself when the webhook enforces every
	// policy, else an engine of the policies it enforces (nil for none), so
	// that it never injects what a compiled MutatingAdmissionPolicy should
	// have (it would hide a difference). The declared kinds, which no
	// compiled policy knows, are injected with engine (mutateDeclared).
	injector *policy.Engine
	// eval runs the compiled policies of audited, nil when there are none;
	// rules maps their ValidatingAdmissionPolicies to the rules.
	eval  *celpolicy.Evaluator
	rules map[string]string
}

// NeedLeaderElection is false: every replica audits what it is sent.
func (a *PinnedAuditor) NeedLeaderElection() bool { return false }

// Start builds the view on every kick until ctx ends.
func (a *PinnedAuditor) Start(ctx context.Context) error {
	a.Kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.kicks():
		}
		if err := a.Build(); err != nil {
			a.Log.Error(err, "auditing the compiled admission policies with the previous compilation; retrying on the next change")
		}
	}
}

// Build compiles the live policies in both mode and publishes the view.
func (a *PinnedAuditor) Build() error {
	return a.BuildFor(a.Engines.Load())
}

// BuildFor publishes the view of eng. EngineStore.Rebuild calls it before
// it puts eng in use, so that the handlers never judge with an engine
// whose view is missing.
func (a *PinnedAuditor) BuildFor(eng *policy.Engine) error {
	if a == nil || eng == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	v := &pinnedView{engine: eng, modes: map[string]PinnedMode{}, compiled: map[string]bool{}, audited: map[string]bool{}, rules: map[string]string{}, keys: map[string]bool{}}
	var both, webhookOnly []v1alpha1.PlacementPolicy
	def := a.Rights.mode(a.Mode)
	for _, p := range eng.Policies() {
		mode := def.For(&p)
		v.modes[p.Name] = mode
		for i := range p.Spec.Pinned {
			r := &p.Spec.Pinned[i]
			if mode.compiles() {
				v.compiled[p.Name+"/"+r.Name] = true
			}
			switch mode {
			case PinnedBoth:
				sel, err := metav1.LabelSelectorAsSelector(&r.Selector)
				if err != nil {
					return fmt.Errorf("placementpolicy %q: pinned rule %s: %w", p.Name, r.Name, err)
				}
				v.audited[p.Name+"/"+r.Name] = true
				v.selectors = append(v.selectors, sel)
				for k := range r.Selector.MatchLabels {
					v.keys[k] = true
				}
				for _, e := range r.Selector.MatchExpressions {
					v.keys[e.Key] = true
				}
				if r.DatacenterFromLabel != "" {
					v.keys[r.DatacenterFromLabel] = true
				}
				v.rules[celpolicy.ValidatingName(p.Name, r.Name)] = p.Name + "/" + r.Name
			}
		}
		switch mode {
		case PinnedBoth:
			both = append(both, p)
		case PinnedWebhook:
			webhookOnly = append(webhookOnly, p)
		}
	}
	v.injector = eng
	if n := len(eng.Policies()); len(webhookOnly) == 0 {
		v.injector = nil
	} else if len(webhookOnly) < n {
		injector, err := policy.NewEngine(webhookOnly)
		if err != nil {
			return fmt.Errorf("building the engine of the policies the webhook enforces: %w", err)
		}
		v.injector = injector
	}
	if len(both) == 0 {
		a.hash = ""
		a.view.Store(v)
		return nil
	}
	set, err := celpolicy.Compile(both, compileOptions(a.Options, a.Nodes, v1alpha1.PinnedEnforcementBoth))
	if err != nil {
		return fmt.Errorf("compiling the pinned rules in both mode: %w", err)
	}
	h, err := hashOf(set)
	if err != nil {
		return err
	}
	if old := a.view.Load(); old != nil && old.eval != nil && h == a.hash {
		v.eval = old.eval
	} else {
		if v.eval, err = celpolicy.NewEvaluator(set); err != nil {
			return fmt.Errorf("evaluating the compiled admission policies in-process: %w", err)
		}
		a.Log.Info("auditing the compiled admission policies", "rules", len(v.audited))
	}
	a.hash = h
	a.view.Store(v)
	return nil
}

// current returns the view of eng, nil when there is none yet.
func (a *PinnedAuditor) current(eng *policy.Engine) *pinnedView {
	if a == nil {
		return nil
	}
	if v := a.view.Load(); v != nil && v.engine == eng {
		return v
	}
	return nil
}

// covers reports whether the compiled policies judge what the engine's
// result r on obj says: pinned rules of a policy in cel or both mode on a
// built-in kind, but not a mirror pod (never denied, only warned about)
// nor a pod's spec.nodeName (it needs the Node).
func (v *pinnedView) covers(obj runtime.Object, r *policy.Result) bool {
	if !v.compiled[r.Rule] || r.Field() == "spec.nodeName" {
		return false
	}
	if _, ok := policy.JudgedKindOf(obj); !ok {
		return false
	}
	if pod, ok := obj.(*corev1.Pod); ok && policy.IsMirrorPod(pod) {
		return false
	}
	return true
}

// stepAside removes from results what the compiled policies of the
// policies in cel or both mode judge: the webhook never refuses nor warns
// for it, since the API server has already answered for it (a refusal
// twice, a warning twice). In cel mode the webhook is still sent some of
// those policies' objects, for what it alone judges: pods on a named
// node, objects a spread rule also selects.
func (v *pinnedView) stepAside(obj runtime.Object, results policy.Results) policy.Results {
	if v == nil || len(v.compiled) == 0 || len(results) == 0 {
		return results
	}
	out := results[:0:0]
	for i := range results {
		if !v.covers(obj, &results[i]) {
			out = append(out, results[i])
		}
	}
	return out
}

// selects reports whether an audited rule's selector matches obj's labels
// or its pod templates'.
func (v *pinnedView) selects(obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	sets := []labels.Set{m.GetLabels()}
	for _, t := range policy.PodTemplates(obj) {
		sets = append(sets, t.Meta.Labels)
	}
	for _, sel := range v.selectors {
		for _, l := range sets {
			if sel.Matches(l) {
				return true
			}
		}
	}
	return false
}

// audit judges obj, as the mutating webhook receives it (after the
// compiled mutating policies, before any validation), with the engine and
// with the compiled validating policies of the policies in both mode, and
// counts and logs every rule whose verdicts differ. It never changes the
// answer. A reinvocation of a request it audited is not audited again
// (auditLedger); it returns the record of the request it audited, nil
// when it audited none.
func (h *Handler) audit(ctx context.Context, eng *policy.Engine, v *pinnedView, req admission.Request, obj runtime.Object) *auditRecord {
	var op apiadmission.Operation
	preq := policy.Request{Object: obj, Namespace: req.Namespace, UserInfo: req.UserInfo}
	switch req.Operation {
	case admissionv1.Create:
		op, preq.Operation = apiadmission.Create, policy.OperationCreate
	case admissionv1.Update:
		op, preq.Operation = apiadmission.Update, policy.OperationUpdate
		old, _, err := decode(req.OldObject)
		if err != nil || old == nil {
			return nil
		}
		preq.OldObject = old
	default:
		return nil
	}
	nsLabels, known := h.State.NamespaceLabels(req.Namespace)
	if !known {
		// The API server knows the namespace; the engine would take every
		// namespaceSelector to apply. Nothing to compare.
		return nil
	}
	rec, first := h.Audit.seen.first(requestIdentity(req, obj, preq.OldObject), hashBytes(req.Object.Raw), judgedHash(req, obj, v.keys))
	if !first {
		return nil
	}
	results, err := eng.EvaluateContext(ctx, preq, h.State)
	if err != nil {
		return rec
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: req.Namespace, Labels: nsLabels}}
	verdicts, cerr := v.eval.Validate(ctx, op, obj, preq.OldObject, ns)
	engine, compiled := map[string]string{}, map[string]string{}
	messages := map[string][2]string{}
	for i := range results {
		r := &results[i]
		if v.audited[r.Rule] && v.covers(obj, r) {
			engine[r.Rule] = string(r.Action)
			m := messages[r.Rule]
			m[0] = r.Field() + ": " + r.Message()
			messages[r.Rule] = m
		}
	}
	for _, x := range verdicts {
		rule := v.rules[x.Policy]
		compiled[rule] = string(x.Action)
		m := messages[rule]
		m[1] = x.Message
		messages[rule] = m
	}
	if h.Metrics != nil {
		h.Metrics.PinnedAudits.Inc()
	}
	for rule := range v.audited {
		if engine[rule] == compiled[rule] {
			continue
		}
		if h.Metrics != nil {
			h.Metrics.PinnedDifferences.WithLabelValues(rule).Inc()
		}
		kv := []any{"rule", rule, "kind", req.Kind.Kind, "namespace", req.Namespace, "name", objectName(obj, req), "operation", req.Operation,
			"engine", verdictOrAdmit(engine[rule]), "compiledPolicy", verdictOrAdmit(compiled[rule]),
			"engineMessage", messages[rule][0], "compiledPolicyMessage", messages[rule][1]}
		if cerr != nil {
			kv = append(kv, "evaluationError", cerr.Error())
		}
		ctrl.Log.WithName("audit").Info("the compiled admission policy and the policy engine disagree", kv...)
	}
	return rec
}

func verdictOrAdmit(a string) string {
	if a == "" {
		return "Admit"
	}
	return a
}
