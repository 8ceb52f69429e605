package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	jsonpatch5 "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// RuleLabelGuard names the datacenter-label guard in metrics.
const RuleLabelGuard = "label-guard"

// Handler judges admission requests with the policy engine. Validate and
// Mutate return the two admission.Handlers the server mounts on /validate
// and /mutate. A Handler is safe for concurrent use.
type Handler struct {
	// Engine returns the engine built from the current PlacementPolicies
	// (an engine of no policies allows everything). nil means no engine is
	// built yet: requests are then answered with an error, never allowed,
	// so that the failure policy decides as if the webhook were down.
	Engine func() *policy.Engine
	// State is the cluster as cached; it must not call the API server.
	State policy.State
	// AllowedLabelGroups may add, change or remove a Node's datacenter
	// label; any other requester is denied.
	AllowedLabelGroups sets.Set[string]
	// Metrics may be nil.
	Metrics *Metrics
	// heavy admits the large requests (HeavyRequestBytes and up) judged at
	// once; nil means DefaultHeavyRequests.
	heavyOnce sync.Once
	heavy     chan struct{}

	// Audit, when set, knows which policies' pinned rules are enforced in
	// cel or both mode: the validating handler never refuses nor warns for
	// what their compiled admission policies judge, the mutating handler
	// audits those in both mode (PinnedAuditor), and it injects only for
	// the policies the webhook enforces, but into the kinds the policies
	// declare (spec.workloadKinds), which no compiled policy knows, for
	// every policy.
	Audit *PinnedAuditor

	// Placements, when set, serialises member placements across replicas
	// (see PlacementLedger); nil judges each placement alone, from the
	// caches, so that concurrent ones can together exceed a limit.
	Placements *PlacementLedger

	// Stopping, when set, ends when the replica starts shutting down:
	// from then on every answer closes its connection (see Register).
	Stopping context.Context
}

// Large requests: decoding one costs milliseconds of CPU, so a burst of
// them could starve every other admission. At most DefaultHeavyRequests of
// HeavyRequestBytes or more are judged at once; another waits up to
// heavyWait and is then refused (429, retry), never admitted unjudged.
const (
	HeavyRequestBytes    = 256 << 10
	DefaultHeavyRequests = 2
	heavyWait            = time.Second
)

// acquireHeavy reserves a slot for a large request; release frees it.
func (h *Handler) acquireHeavy(ctx context.Context, req admission.Request) (release func(), resp *admission.Response) {
	if len(req.Object.Raw)+len(req.OldObject.Raw) < HeavyRequestBytes {
		return func() {}, nil
	}
	h.heavyOnce.Do(func() { h.heavy = make(chan struct{}, DefaultHeavyRequests) })
	t := time.NewTimer(heavyWait)
	defer t.Stop()
	select {
	case h.heavy <- struct{}{}:
		return func() { <-h.heavy }, nil
	case <-ctx.Done():
		r := cutShort(ctx.Err())
		return nil, &r
	case <-t.C:
		r := admission.Errored(http.StatusTooManyRequests, fmt.Errorf("dc-webhook is judging %d large objects already; %s is refused rather than admitted unjudged: retry", DefaultHeavyRequests, subject(req)))
		return nil, &r
	}
}

// decoder turns admission objects into the typed objects the engine judges.
var decoder = policy.Codecs.UniversalDeserializer()

// podRememberer is implemented by states that can hold a member pod admitted
// moments ago (CacheState).
type podRememberer interface {
	RememberPod(*corev1.Pod)
}

// Validate returns the validating handler.
func (h *Handler) Validate() admission.Handler {
	return admission.HandlerFunc(h.validate)
}

// Mutate returns the mutating handler.
func (h *Handler) Mutate() admission.Handler {
	return admission.HandlerFunc(h.mutate)
}

var (
	gkPolicy = v1alpha1.GroupVersion.WithKind("PlacementPolicy").GroupKind()
)

// judgedKinds maps the group and kind of every object the webhook judges or
// mutates to the one version it understands, the version the webhook
// configurations ask for (matchPolicy Equivalent converts the others).
var judgedKinds = func() map[schema.GroupKind]schema.GroupVersionKind {
	m := map[schema.GroupKind]schema.GroupVersionKind{}
	for _, gvk := range policy.WorkloadKinds {
		m[gvk.GroupKind()] = gvk
	}
	for _, o := range []runtime.Object{&corev1.Node{}, &corev1.Binding{}, &v1alpha1.PlacementPolicy{}} {
		gvks, _, err := policy.Scheme.ObjectKinds(o)
		if err != nil {
			panic(err)
		}
		m[gvks[0].GroupKind()] = gvks[0]
	}
	return m
}()

// decode returns the typed object of raw, or a nil object and a nil error
// when its kind is not one the webhook judges: such objects are admitted
// unchanged whether or not Scheme knows their kind. A judged kind in
// another version is an error rather than an object waved through.
func decode(raw runtime.RawExtension) (runtime.Object, schema.GroupVersionKind, error) {
	obj, gvk, err := decodeAny(raw)
	if err != nil && !runtime.IsNotRegisteredError(err) {
		return nil, gvk, err
	}
	want, ok := judgedKinds[gvk.GroupKind()]
	switch {
	case !ok:
		return nil, gvk, nil
	case gvk != want:
		return nil, gvk, fmt.Errorf("%s is judged as %s only, not %s", gvk.Kind, want.GroupVersion(), gvk.GroupVersion())
	}
	return obj, gvk, err
}

// decodeAny decodes raw and reports the kind it names, also when Scheme
// does not know that kind (the error is then a NotRegisteredError).
func decodeAny(raw runtime.RawExtension) (runtime.Object, schema.GroupVersionKind, error) {
	switch {
	case len(raw.Raw) > 0:
		obj, gvk, err := decoder.Decode(raw.Raw, nil, nil)
		if gvk == nil {
			return obj, schema.GroupVersionKind{}, err
		}
		return obj, *gvk, err
	case raw.Object != nil:
		gvks, _, err := policy.Scheme.ObjectKinds(raw.Object)
		if err != nil {
			return nil, schema.GroupVersionKind{}, err
		}
		return raw.Object, gvks[0], nil
	}
	return nil, schema.GroupVersionKind{}, errors.New("request carries no object")
}

// decodeDeclared returns the object of raw as an Unstructured when eng's
// policies declare its kind in spec.workloadKinds (the engine reads its
// template at the declared path: EvaluateDeclared, MutateDeclared), and
// nil for any other kind.
func decodeDeclared(eng *policy.Engine, raw runtime.RawExtension, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	if eng == nil || gvk.Kind == "" {
		return nil, nil
	}
	if _, ok := eng.DeclaredKindFor(gvk.GroupKind()); !ok {
		return nil, nil
	}
	u := &unstructured.Unstructured{}
	switch {
	case len(raw.Raw) > 0:
		if err := u.UnmarshalJSON(raw.Raw); err != nil {
			return nil, err
		}
	case raw.Object != nil:
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(raw.Object)
		if err != nil {
			return nil, err
		}
		u.Object = m
	default:
		return nil, errors.New("request carries no object")
	}
	return u, nil
}

// decodeOld decodes the old object of an UPDATE of obj: an Unstructured
// when obj is one (a declared kind), else as decode does.
func decodeOld(eng *policy.Engine, raw runtime.RawExtension, obj runtime.Object) (runtime.Object, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		old, err := decodeDeclared(eng, raw, u.GroupVersionKind())
		if old == nil || err != nil {
			return nil, err
		}
		return old, nil
	}
	old, _, err := decode(raw)
	return old, err
}

// evaluate judges req with the engine's function for its object: a
// declared kind's (an Unstructured) with EvaluateDeclared, any other with
// EvaluateContext.
func evaluate(ctx context.Context, eng *policy.Engine, req policy.Request, state policy.State) (policy.Results, error) {
	if _, ok := req.Object.(*unstructured.Unstructured); ok {
		rs, _, err := eng.EvaluateDeclared(ctx, req, state)
		return rs, err
	}
	return eng.EvaluateContext(ctx, req, state)
}

// kindName names gvk in messages: "Widget.example.com", "ConfigMap".
func kindName(gvk schema.GroupVersionKind) string {
	if gvk.Kind == "" {
		return "an object without a kind"
	}
	return gvk.GroupKind().String()
}

// subject names the object of req in messages: "Deployment apps/worker".
func subject(req admission.Request) string {
	s := req.Kind.Kind
	if s == "" {
		s = "object"
	}
	switch {
	case req.Namespace != "" && req.Name != "":
		s += " " + req.Namespace + "/" + req.Name
	case req.Name != "":
		s += " " + req.Name
	}
	return s
}

// recovered turns a panic into an admitted response with a warning: a bug
// in the rules must never block the cluster, and the panic is counted and
// logged so that it does not go unnoticed.
func (h *Handler) recovered(req *admission.Request, resp *admission.Response) {
	r := recover()
	if r == nil {
		return
	}
	if h.Metrics != nil {
		h.Metrics.Panics.Inc()
	}
	ctrl.Log.WithName("admission").Error(fmt.Errorf("panic: %v", r), "handler panicked; admitting unchecked",
		"kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "stack", string(debug.Stack()))
	*resp = admission.Allowed("dc-webhook: internal error").WithWarnings(
		fmt.Sprintf("dc-webhook: internal error while judging %s %s/%s; admitted unchecked, run `kubectl dc check` on it", req.Kind.Kind, req.Namespace, req.Name))
}

func operation(op admissionv1.Operation) (policy.Operation, bool) {
	switch op {
	case admissionv1.Create:
		return policy.OperationCreate, true
	case admissionv1.Update:
		return policy.OperationUpdate, true
	}
	return "", false
}

// notReady is the answer while no engine is built: a refusal (the API
// server reads an answer as a verdict, so even an Ignore webhook refuses
// here), never an admission of something never judged. Behind the Service
// a replica is not routed to before its first sync (readyz); only the URL
// layout (render-local, the demo) can be asked this early, and callers
// retry.
func notReady() admission.Response {
	return admission.Errored(http.StatusServiceUnavailable, errors.New("dc-webhook is not ready: its PlacementPolicies are not loaded yet; retry in a moment"))
}

// unjudged is the answer to a request the engine could not judge: cut
// short when the request's time ran out; otherwise a declared kind
// without its pod template at the declared path, refused, as kubectl dc
// check refuses the input, rather than admitted unjudged.
func unjudged(ctx context.Context, err error, req admission.Request) admission.Response {
	if ctx.Err() != nil {
		return cutShort(err)
	}
	return admission.Errored(http.StatusUnprocessableEntity, fmt.Errorf("dc-webhook cannot judge %s: %w", subject(req), err))
}

// cutShort is the answer when the request's context ends during the
// evaluation: an error, never an admission.
func cutShort(err error) admission.Response {
	return admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("dc-webhook gave up judging the request: %w", err))
}

// gvrStatefulSets is the resource whose scale subresource is judged: a
// StatefulSet's replicas are the N of its members.
var grStatefulSets = schema.GroupResource{Group: "apps", Resource: "statefulsets"}

// scaleAsUpdate turns an UPDATE of statefulsets/scale into the UPDATE of the
// StatefulSet it makes, from the cached StatefulSet, so that a scale-up of
// members is judged as a patch of spec.replicas is. ok is false when the
// request is no such scale, or the StatefulSet is not cached (then there is
// nothing to judge it against, and it is admitted as before).
func (h *Handler) scaleAsUpdate(req admission.Request) (obj, old runtime.Object, ok bool, err error) {
	if req.SubResource != "scale" || req.Resource.Group != grStatefulSets.Group || req.Resource.Resource != grStatefulSets.Resource {
		return nil, nil, false, nil
	}
	var scale autoscalingv1.Scale
	if err := json.Unmarshal(req.Object.Raw, &scale); err != nil {
		return nil, nil, false, err
	}
	cached := h.State.StatefulSet(req.Namespace, req.Name)
	if cached == nil {
		return nil, nil, false, nil
	}
	updated := cached.DeepCopy()
	replicas := scale.Spec.Replicas
	updated.Spec.Replicas = &replicas
	return updated, cached, true, nil
}

func (h *Handler) validate(ctx context.Context, req admission.Request) (resp admission.Response) {
	start := time.Now()
	kind := req.Kind.Kind
	defer h.Metrics.observe("validate", kind, start)
	defer h.recovered(&req, &resp)

	op, ok := operation(req.Operation)
	if !ok {
		return admission.Allowed(fmt.Sprintf("operation %q is not judged", req.Operation))
	}
	if err := ctx.Err(); err != nil {
		return cutShort(err)
	}
	release, busy := h.acquireHeavy(ctx, req)
	if busy != nil {
		return *busy
	}
	defer release()
	var oldObj runtime.Object
	obj, oldScaled, scaled, err := h.scaleAsUpdate(req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("dc-webhook cannot decode %s: %w", subject(req), err))
	}
	gvk := schema.GroupVersionKind{}
	if scaled {
		oldObj = oldScaled
	} else if obj, gvk, err = decode(req.Object); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("dc-webhook cannot decode %s: %w", subject(req), err))
	}
	eng := h.Engine()
	if obj == nil {
		u, err := decodeDeclared(eng, req.Object, gvk)
		if err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("dc-webhook cannot decode %s: %w", subject(req), err))
		}
		if u == nil {
			return admission.Allowed(fmt.Sprintf("%s is not judged by placement policies", kindName(gvk)))
		}
		obj = u
	}

	if p, ok := obj.(*v1alpha1.PlacementPolicy); ok {
		if errs := policy.ValidatePolicy(p); len(errs) > 0 {
			h.Metrics.decision("validation", string(v1alpha1.ActionDeny), kind, string(op))
			return invalid(gkPolicy, p.Name, errs)
		}
		h.Metrics.decision("", "Allow", kind, string(op))
		return admission.Allowed("").WithWarnings(policy.Advice(p)...)
	}

	if !scaled && op == policy.OperationUpdate && len(req.OldObject.Raw) > 0 {
		if oldObj, err = decodeOld(eng, req.OldObject, obj); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("dc-webhook cannot decode the old %s: %w", subject(req), err))
		}
	}
	var guard field.ErrorList
	if n, ok := obj.(*corev1.Node); ok && eng != nil {
		old, _ := oldObj.(*corev1.Node)
		guard = h.labelGuard(eng.Labels(), n, old, req.UserInfo)
		for range guard {
			h.Metrics.decision(RuleLabelGuard, string(v1alpha1.ActionDeny), kind, string(op))
		}
	}
	if eng == nil {
		return notReady()
	}

	namespace := req.Namespace
	if b, ok := obj.(*corev1.Binding); ok {
		// A binding of a pod that is no member of any spread rule cannot
		// break one: answer at once.
		if h.State.Pod(namespace, b.Name) == nil {
			h.Metrics.decision("", "Allow", kind, string(op))
			return admission.Allowed("not a member pod")
		}
	}
	preq := policy.Request{Operation: op, Object: obj, OldObject: oldObj, Namespace: namespace, UserInfo: req.UserInfo}
	var places []policy.Placement
	if h.Placements != nil && len(guard) == 0 {
		places = eng.MemberPlacements(preq, h.State)
	}
	var results policy.Results
	if len(places) > 0 {
		// A member placement is judged once, with the placements every
		// replica admitted lately counted, whatever this replica's caches
		// say: they may lag, and a member missing from them makes a
		// balanced placement look unbalanced as surely as it makes an
		// unbalanced one look balanced.
		judged, failed := h.serialise(ctx, eng, preq, places, req)
		if failed != nil {
			return *failed
		}
		results = judged
	} else {
		judged, err := evaluate(ctx, eng, preq, h.State)
		if err != nil {
			return unjudged(ctx, err, req)
		}
		// What the compiled policies judge is their verdict, not this
		// webhook's: left out before it is counted as one.
		results = h.Audit.current(eng).stepAside(obj, judged)
	}
	for i := range results {
		h.Metrics.decision(results[i].Rule, string(results[i].Action), kind, string(op))
	}
	if len(results) == 0 && len(guard) == 0 {
		h.Metrics.decision("", "Allow", kind, string(op))
	}

	denied := append(guard, results.Denied()...)
	warnings := results.Warnings()
	if len(denied) > 0 {
		resp = invalid(schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}, objectName(obj, req), denied)
		resp.Warnings = warnings
		return resp
	}
	if pod, ok := obj.(*corev1.Pod); ok && op == policy.OperationCreate && !dryRun(req) {
		h.rememberMember(eng, pod, namespace)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// MutationLabel is the datacenterFromLabel of the example policy, the one
// the mutating webhook configuration of manifests/ forwards until a
// replica first scopes it to the live policies' keys (ScopeNodes).
const MutationLabel = "placement.kubectl-dc.io/datacenter"

// rememberMember keeps an admitted member pod in the state until the member
// informer sees it.
func (h *Handler) rememberMember(eng *policy.Engine, pod *corev1.Pod, namespace string) {
	r, ok := h.State.(podRememberer)
	if !ok {
		return
	}
	set := labels.Set(pod.Labels)
	for _, ms := range eng.MemberPodSelectors() {
		if (len(ms.Namespaces) == 0 || slices.Contains(ms.Namespaces, namespace)) && ms.Selector.Matches(set) {
			if pod.Namespace == "" {
				pod = pod.DeepCopy()
				pod.Namespace = namespace
			}
			r.RememberPod(pod)
			return
		}
	}
}

func dryRun(req admission.Request) bool { return req.DryRun != nil && *req.DryRun }

// invalid is a denial carrying an Invalid status with one cause per field
// error, as the API server's own validation answers, so that kubectl prints
// the field paths and fix hints.
func invalid(gk schema.GroupKind, name string, errs field.ErrorList) admission.Response {
	status := apierrors.NewInvalid(gk, name, errs)
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &status.ErrStatus,
	}}
}

func objectName(obj runtime.Object, req admission.Request) string {
	if req.Name != "" {
		return req.Name
	}
	if m, err := meta.Accessor(obj); err == nil {
		if m.GetName() != "" {
			return m.GetName()
		}
		if m.GetGenerateName() != "" {
			return m.GetGenerateName()
		}
	}
	return ""
}

// labelGuard denies adding, changing or removing a datacenter label of a
// Node unless the requester belongs to an allowed group: a kubelet
// (system:node:<name>, group system:nodes) may edit its own Node, and must
// not be able to move it into another datacenter.
func (h *Handler) labelGuard(dcLabels []string, n, old *corev1.Node, user authenticationv1.UserInfo) field.ErrorList {
	for _, g := range user.Groups {
		if h.AllowedLabelGroups.Has(g) {
			return nil
		}
	}
	var errs field.ErrorList
	for _, l := range dcLabels {
		nv, nok := n.Labels[l]
		var ov string
		var ook bool
		if old != nil {
			ov, ook = old.Labels[l]
		}
		if nok == ook && nv == ov {
			continue
		}
		verb := "set"
		switch {
		case ook && !nok:
			verb = "remove"
		case ook:
			verb = fmt.Sprintf("change %q to", ov)
		}
		errs = append(errs, field.Forbidden(field.NewPath("metadata", "labels").Key(l),
			fmt.Sprintf("%s: %s may not %s %q on node %s: the datacenter label decides where quorum members may run, so only members of %v may set it; ask a cluster administrator to label the node",
				RuleLabelGuard, user.Username, verb, nv, n.Name, sets.List(h.AllowedLabelGroups))))
	}
	return errs
}

func (h *Handler) mutate(ctx context.Context, req admission.Request) (resp admission.Response) {
	start := time.Now()
	kind := req.Kind.Kind
	defer h.Metrics.observe("mutate", kind, start)
	defer h.recovered(&req, &resp)

	if _, ok := operation(req.Operation); !ok {
		return admission.Allowed(fmt.Sprintf("operation %q is not mutated", req.Operation))
	}
	if err := ctx.Err(); err != nil {
		return cutShort(err)
	}
	release, busy := h.acquireHeavy(ctx, req)
	if busy != nil {
		return *busy
	}
	defer release()
	eng := h.Engine()
	if eng == nil {
		return notReady()
	}
	obj, gvk, err := decode(req.Object)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("dc-webhook cannot decode %s: %w", subject(req), err))
	}
	if obj == nil {
		u, err := decodeDeclared(eng, req.Object, gvk)
		if err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("dc-webhook cannot decode %s: %w", subject(req), err))
		}
		if u != nil {
			return h.mutateDeclared(eng, req, u)
		}
	}
	templates := policy.PodTemplates(obj)
	if len(templates) == 0 {
		return admission.Allowed(fmt.Sprintf("%s has no pod template", kindName(gvk)))
	}
	var old runtime.Object
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		// A template admitted before the policy is left alone until an
		// update changes it or the labels: filling it in on a scale-down
		// would roll the workload out.
		//
		// Nor is such an update audited, though the compiled validating
		// policies run on it (the configuration's
		// update-changes-templates-or-labels condition does not even send
		// it): neither they nor the engine judge an update that changes no
		// label and no pod template, so their verdicts cannot differ on it
		// (TestBothModeFilteredUpdatesCannotDiffer).
		if o, _, err := decode(req.OldObject); err == nil && o != nil {
			if policy.SameTemplatesAndLabels(o, obj) {
				return admission.Allowed("the update changes no pod template and no label")
			}
			old = o
		}
	}
	injector := eng
	v := h.Audit.current(eng)
	var audited *auditRecord
	if v != nil && v.eval != nil && v.selects(obj) {
		audited = h.audit(ctx, eng, v, req, obj)
	}
	if _, isPod := obj.(*corev1.Pod); isPod && req.Operation == admissionv1.Update {
		// A pod relabelled (through the pod or pods/status) is sent for
		// the audit alone: its nodeSelector cannot change after creation,
		// so an injection would only make the update invalid.
		return admission.Allowed("")
	}
	if v != nil {
		// The compiled mutating policies, called before this webhook,
		// inject for the policies whose pinned rules are compiled.
		if injector = v.injector; injector == nil {
			return admission.Allowed("")
		}
	}
	before := make([]map[string]string, len(templates))
	for i := range templates {
		before[i] = maps.Clone(templates[i].Spec.NodeSelector)
	}
	changed := false
	if old != nil {
		changed = injector.MutateUpdate(obj, old, req.Namespace, h.State)
	} else {
		changed = injector.Mutate(obj, req.Namespace, h.State)
	}
	if !changed {
		return admission.Allowed("")
	}
	if audited != nil {
		// A reinvocation carries the object as patched here.
		h.Audit.seen.answered(audited, judgedHash(req, obj, v.keys))
	}
	sets := make([]selectorSet, len(templates))
	for i, t := range templates {
		sets[i] = selectorSet{path: t.Path, before: before[i], after: t.Spec.NodeSelector}
	}
	patches, err := mutationPatch(req.Object.Raw, sets)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("dc-webhook cannot patch %s: %w", subject(req), err))
	}
	if len(patches) == 0 {
		return admission.Allowed("")
	}
	if h.Metrics != nil {
		h.Metrics.Mutations.WithLabelValues(kind).Inc()
	}
	return admission.Patched("", patches...)
}

// mutateDeclared injects the nodeSelector into the pod template of u, an
// object of a kind a policy declares, with the engine's
// MutateDeclaredUpdate (a create has no old object). The compiled
// admission policies know no declared kind (celpolicy judges the built-in
// kinds alone), so the webhook injects for every live policy whatever the
// enforcement of its pinned rules: leaving a policy in cel or both mode to
// them would leave its declared kinds without a nodeSelector.
func (h *Handler) mutateDeclared(eng *policy.Engine, req admission.Request, u *unstructured.Unstructured) admission.Response {
	k, ok := eng.DeclaredKindFor(u.GroupVersionKind().GroupKind())
	if !ok {
		return admission.Allowed("")
	}
	at := k.TemplatePath.Child("spec")
	path := append(strings.Split(at.String(), "."), "nodeSelector")
	before, _, _ := unstructured.NestedStringMap(u.Object, path...)
	var old *unstructured.Unstructured
	if req.Operation == admissionv1.Update {
		// As for the built-in kinds: an update that leaves the labels and
		// the template alone does not fill in a template admitted before
		// the policy. An old object that cannot be read is no reason to.
		old, _ = decodeDeclared(eng, req.OldObject, u.GroupVersionKind())
	}
	changed, err := eng.MutateDeclaredUpdate(u, old, req.Namespace, h.State)
	if err != nil {
		// No template at the declared path: the validating webhook says so.
		return admission.Allowed("")
	}
	if !changed {
		return admission.Allowed("")
	}
	after, _, _ := unstructured.NestedStringMap(u.Object, path...)
	patches, err := mutationPatch(req.Object.Raw, []selectorSet{{path: at, before: before, after: after}})
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("dc-webhook cannot patch %s: %w", subject(req), err))
	}
	if len(patches) == 0 {
		return admission.Allowed("")
	}
	if h.Metrics != nil {
		h.Metrics.Mutations.WithLabelValues(req.Kind.Kind).Inc()
	}
	return admission.Patched("", patches...)
}

// ensureParents lets a patch add a nodeSelector to an object that lacks
// the maps above it.
var ensureParents = func() *jsonpatch5.ApplyOptions {
	o := jsonpatch5.NewApplyOptions()
	o.EnsurePathExistsOnAdd = true
	return o
}()

// pointerEscaper escapes a JSON pointer segment.
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// selectorSet is the nodeSelector of the pod spec at path before and after
// the mutation.
type selectorSet struct {
	path          *field.Path
	before, after map[string]string
}

// mutationPatch returns the JSON patch that adds to raw, the object as the
// API server sent it, the nodeSelector entries the mutation set in the pod
// specs of sets. It patches
// raw rather than diffing raw against the re-encoded typed object, which
// would also remove every field this build's API types do not know (fields
// of a newer API server) and rewrite values they normalise ("1000m" to "1").
func mutationPatch(raw []byte, sets []selectorSet) ([]jsonpatch.JsonPatchOperation, error) {
	var set []jsonpatch.JsonPatchOperation
	for _, t := range sets {
		at := "/" + strings.ReplaceAll(t.path.String(), ".", "/") + "/nodeSelector/"
		for k, v := range t.after {
			if old, ok := t.before[k]; !ok || old != v {
				set = append(set, jsonpatch.NewOperation("add", at+pointerEscaper.Replace(k), v))
			}
		}
	}
	if len(set) == 0 {
		return nil, nil
	}
	// raw may lack the nodeSelector or the maps above it, or hold null
	// there: apply creating them, then diff, for a patch that applies as is.
	ops, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatch5.DecodePatch(ops)
	if err != nil {
		return nil, err
	}
	patched, err := p.ApplyWithOptions(raw, ensureParents)
	if err != nil {
		return nil, err
	}
	return jsonpatch.CreatePatch(raw, patched)
}
