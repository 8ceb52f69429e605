package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
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
	// Engine returns the engine built from the current PlacementPolicies;
	// nil means no policy is loaded and everything is allowed.
	Engine func() *policy.Engine
	// State is the cluster as cached; it must not call the API server.
	State policy.State
	// AllowedLabelGroups may add, change or remove a Node's datacenter
	// label; any other requester is denied.
	AllowedLabelGroups sets.Set[string]
	// Metrics may be nil.
	Metrics *Metrics
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

func decode(raw runtime.RawExtension) (runtime.Object, error) {
	if len(raw.Raw) == 0 {
		if raw.Object != nil {
			return raw.Object, nil
		}
		return nil, fmt.Errorf("request carries no object")
	}
	obj, _, err := decoder.Decode(raw.Raw, nil, nil)
	return obj, err
}

// judged reports whether the engine judges objects of this type.
func judged(obj runtime.Object) bool {
	switch obj.(type) {
	case *corev1.Pod, *appsv1.Deployment, *appsv1.ReplicaSet, *appsv1.StatefulSet, *appsv1.DaemonSet,
		*batchv1.Job, *batchv1.CronJob, *corev1.ReplicationController, *corev1.PodTemplate,
		*corev1.Node, *corev1.Binding:
		return true
	}
	return false
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

func (h *Handler) validate(_ context.Context, req admission.Request) (resp admission.Response) {
	start := time.Now()
	kind := req.Kind.Kind
	defer h.Metrics.observe("validate", kind, start)
	defer h.recovered(&req, &resp)

	op, ok := operation(req.Operation)
	if !ok {
		return admission.Allowed(fmt.Sprintf("operation %s is not judged", req.Operation))
	}
	obj, err := decode(req.Object)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("dc-webhook cannot decode %s %s/%s: %w", kind, req.Namespace, req.Name, err))
	}

	if p, ok := obj.(*v1alpha1.PlacementPolicy); ok {
		if errs := policy.ValidatePolicy(p); len(errs) > 0 {
			h.Metrics.decision("validation", string(v1alpha1.ActionDeny), kind, string(op))
			return invalid(gkPolicy, p.Name, errs)
		}
		h.Metrics.decision("", "Allow", kind, string(op))
		return admission.Allowed("").WithWarnings(append(policy.Advice(p), mutationLabelWarnings(p)...)...)
	}
	if !judged(obj) {
		return admission.Allowed(fmt.Sprintf("%s is not judged by placement policies", kind))
	}

	var oldObj runtime.Object
	if op == policy.OperationUpdate && len(req.OldObject.Raw) > 0 {
		if oldObj, err = decode(req.OldObject); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("dc-webhook cannot decode the old %s %s/%s: %w", kind, req.Namespace, req.Name, err))
		}
	}
	eng := h.Engine()
	var guard field.ErrorList
	if n, ok := obj.(*corev1.Node); ok && eng != nil {
		old, _ := oldObj.(*corev1.Node)
		guard = h.labelGuard(eng.Labels(), n, old, req.UserInfo)
		for range guard {
			h.Metrics.decision(RuleLabelGuard, string(v1alpha1.ActionDeny), kind, string(op))
		}
	}
	if eng == nil {
		h.Metrics.decision("", "Allow", kind, string(op))
		return admission.Allowed("no PlacementPolicy is loaded")
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
	results := eng.Evaluate(preq, h.State)
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

// MutationLabel is the only datacenterFromLabel the deployed mutating
// webhook configuration forwards (its has-datacenter-label matchCondition).
const MutationLabel = "placement.kubectl-dc.io/datacenter"

// mutationLabelWarnings warns about pinned rules whose datacenterFromLabel
// the deployed mutating webhook does not forward, so that their nodeSelector
// would never be injected.
func mutationLabelWarnings(p *v1alpha1.PlacementPolicy) []string {
	var out []string
	for i, r := range p.Spec.Pinned {
		if r.DatacenterFromLabel != "" && r.DatacenterFromLabel != MutationLabel {
			out = append(out, fmt.Sprintf("spec.pinned[%d].datacenterFromLabel: the mutating webhook of manifests/ only receives objects labelled %s; add %q to its has-datacenter-label matchCondition or the nodeSelector will not be injected",
				i, MutationLabel, r.DatacenterFromLabel))
		}
	}
	return out
}

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

func (h *Handler) mutate(_ context.Context, req admission.Request) (resp admission.Response) {
	start := time.Now()
	kind := req.Kind.Kind
	defer h.Metrics.observe("mutate", kind, start)
	defer h.recovered(&req, &resp)

	if _, ok := operation(req.Operation); !ok {
		return admission.Allowed(fmt.Sprintf("operation %s is not mutated", req.Operation))
	}
	eng := h.Engine()
	if eng == nil {
		return admission.Allowed("no PlacementPolicy is loaded")
	}
	obj, err := decode(req.Object)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("dc-webhook cannot decode %s %s/%s: %w", kind, req.Namespace, req.Name, err))
	}
	if len(policy.PodTemplates(obj)) == 0 {
		return admission.Allowed(fmt.Sprintf("%s has no pod template", kind))
	}
	if !eng.Mutate(obj, req.Namespace, h.State) {
		return admission.Allowed("")
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("dc-webhook cannot encode the mutated %s: %w", kind, err))
	}
	resp = admission.PatchResponseFromRaw(req.Object.Raw, out)
	resp.Patches = slices.DeleteFunc(resp.Patches, func(p jsonpatch.JsonPatchOperation) bool { return spurious(p.Operation, p.Value) })
	if len(resp.Patches) == 0 {
		return admission.Allowed("")
	}
	if h.Metrics != nil {
		h.Metrics.Mutations.WithLabelValues(kind).Inc()
	}
	return resp
}

// spurious reports whether a patch operation only adds what re-encoding a
// typed object adds by itself (creationTimestamp: null, status: {}), which
// the mutation never means to change.
func spurious(op string, value any) bool {
	if op != "add" {
		return false
	}
	switch v := value.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	}
	return false
}
