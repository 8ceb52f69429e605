package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// DeclaredKind is a workload kind a policy declares in spec.workloadKinds:
// objects of Group and Kind, in any version, carry a pod template at
// TemplatePath.
type DeclaredKind struct {
	Group, Kind string
	// TemplatePath is the path of the PodTemplateSpec, for example
	// spec.template.
	TemplatePath *field.Path
	// Policy names the (first) policy that declares it.
	Policy string
}

// GroupKind returns the declared group and kind.
func (k DeclaredKind) GroupKind() schema.GroupKind {
	return schema.GroupKind{Group: k.Group, Kind: k.Kind}
}

// DeclaredKinds returns the workload kinds the engine's policies declare,
// in policy order, one per group and kind (the first declaration wins).
// A declaration of a built-in kind is ignored: JudgedKinds already reads it.
func (e *Engine) DeclaredKinds() []DeclaredKind {
	var out []DeclaredKind
	seen := map[schema.GroupKind]bool{}
	for i := range e.policies {
		p := &e.policies[i]
		for _, wk := range p.Spec.WorkloadKinds {
			gk := schema.GroupKind{Group: wk.Group, Kind: wk.Kind}
			if _, builtin := JudgedKindFor(gk); builtin || seen[gk] {
				continue
			}
			seen[gk] = true
			out = append(out, DeclaredKind{Group: wk.Group, Kind: wk.Kind, TemplatePath: dottedPath(wk.TemplatePath), Policy: p.Name})
		}
	}
	return out
}

// DeclaredKindFor returns the declared kind of gk, false when no policy
// declares it.
func (e *Engine) DeclaredKindFor(gk schema.GroupKind) (DeclaredKind, bool) {
	for _, k := range e.DeclaredKinds() {
		if k.GroupKind() == gk {
			return k, true
		}
	}
	return DeclaredKind{}, false
}

func dottedPath(s string) *field.Path {
	parts := strings.Split(s, ".")
	return field.NewPath(parts[0], parts[1:]...)
}

// builtinGroups are the API groups of the judged kinds (policy.JudgedKinds),
// in the order JudgedKinds first names them: "", apps, batch.
var builtinGroups = func() []string {
	var groups []string
	for _, k := range judgedKinds {
		if !slices.Contains(groups, k.Group) {
			groups = append(groups, k.Group)
		}
	}
	return groups
}()

// validateWorkloadKinds checks spec.workloadKinds: a kind and a dotted
// template path each, no group and kind twice, no kind of a built-in
// group but the built-in kinds. No custom resource lives in those groups
// (a CustomResourceDefinition's group has a dot), and their kinds with a
// pod template are all judged without a declaration: any other is a
// mistaken group, which dc-webhook would resolve to no resource, or to one
// its workload webhooks' rules for declared kinds cannot tell apart from
// the manifests' rules for the built-in kinds.
func validateWorkloadKinds(p *v1alpha1.PlacementPolicy) field.ErrorList {
	var errs field.ErrorList
	seen := map[schema.GroupKind]bool{}
	for i, wk := range p.Spec.WorkloadKinds {
		path := field.NewPath("spec", "workloadKinds").Index(i)
		gk := schema.GroupKind{Group: wk.Group, Kind: wk.Kind}
		_, judged := JudgedKindFor(gk)
		switch {
		case wk.Kind == "":
			errs = append(errs, field.Required(path.Child("kind"), "name the kind, for example Rollout"))
		case seen[gk]:
			errs = append(errs, field.Duplicate(path, gk.String()))
		case !judged && slices.Contains(builtinGroups, wk.Group):
			errs = append(errs, field.Invalid(path.Child("group"), wk.Group, fmt.Sprintf(
				"%s is no kind of the built-in API groups (%s), where no custom resource lives: set group to the API group of %s as kubectl api-resources shows it (for example argoproj.io for an Argo Rollout)",
				wk.Kind, quotedGroups(), wk.Kind)))
		}
		seen[gk] = true
		if wk.TemplatePath == "" {
			errs = append(errs, field.Required(path.Child("templatePath"), "give the dotted path of the pod template, for example spec.template"))
			continue
		}
		for _, part := range strings.Split(wk.TemplatePath, ".") {
			if part == "" || strings.ContainsAny(part, "[]/ ") {
				errs = append(errs, field.Invalid(path.Child("templatePath"), wk.TemplatePath, "a dotted path of field names, for example spec.template"))
				break
			}
		}
	}
	return errs
}

// quotedGroups lists builtinGroups for a message: "" (core), apps, batch.
func quotedGroups() string {
	names := make([]string, len(builtinGroups))
	for i, g := range builtinGroups {
		names[i] = g
		if g == "" {
			names[i] = `"" (core)`
		}
	}
	return strings.Join(names, ", ")
}

// declaredProxy is an object of a declared kind seen as a PodTemplate: the
// object's metadata, and its pod template at the declared path. Results
// on the proxy are renamed to the object and its path.
type declaredProxy struct {
	kind  DeclaredKind
	obj   *unstructured.Unstructured
	proxy *corev1.PodTemplate
}

// newDeclaredProxy reads the pod template of obj at k's path. found is
// false when obj has nothing at the path; err when it is not a pod
// template there.
func newDeclaredProxy(k DeclaredKind, obj *unstructured.Unstructured) (p *declaredProxy, found bool, err error) {
	path := strings.Split(k.TemplatePath.String(), ".")
	raw, found, err := unstructured.NestedMap(obj.Object, path...)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %s is not an object: it must be a pod template (metadata and spec)", k.TemplatePath, k.Kind)
	}
	if !found {
		return nil, false, nil
	}
	var t corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &t); err != nil {
		return nil, true, fmt.Errorf("%s: not a pod template (metadata and spec) as spec.workloadKinds of policy %s declares: %s", k.TemplatePath, k.Policy, trimGoTypes(err.Error()))
	}
	pt := &corev1.PodTemplate{Template: t}
	pt.Name, pt.Namespace, pt.Labels, pt.Annotations = obj.GetName(), obj.GetNamespace(), obj.GetLabels(), obj.GetAnnotations()
	pt.UID, pt.DeletionTimestamp, pt.OwnerReferences = obj.GetUID(), obj.GetDeletionTimestamp(), obj.GetOwnerReferences()
	return &declaredProxy{kind: k, obj: obj, proxy: pt}, true, nil
}

// trimGoTypes drops the Go type names a converter error carries.
func trimGoTypes(msg string) string {
	if i := strings.Index(msg, " into Go "); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimPrefix(msg, "json: ")
}

// rename gives results on the proxy the object's kind and field paths.
func (p *declaredProxy) rename(rs Results) Results {
	prefix := pathPodTemplateSpec.String() // "template.spec"
	to := p.kind.TemplatePath.Child("spec").String()
	for i := range rs {
		rs[i].Object.Kind = p.kind.Kind
		if rs[i].Error != nil {
			e := *rs[i].Error
			if e.Field == prefix || strings.HasPrefix(e.Field, prefix+".") || strings.HasPrefix(e.Field, prefix+"[") {
				e.Field = to + strings.TrimPrefix(e.Field, prefix)
			}
			rs[i].Error = &e
		}
	}
	return rs
}

// EvaluateDeclared judges an object of a kind a policy declares (req.Object
// an *unstructured.Unstructured, req.OldObject too on UPDATE) as Evaluate
// judges a built-in workload: its pod template at the declared path. ok is
// false when the kind is not declared; err when the object has no pod
// template at the path (nothing judged) or a malformed one.
func (e *Engine) EvaluateDeclared(ctx context.Context, req Request, state State) (rs Results, ok bool, err error) {
	u, isU := req.Object.(*unstructured.Unstructured)
	if !isU {
		return nil, false, nil
	}
	k, ok := e.DeclaredKindFor(u.GroupVersionKind().GroupKind())
	if !ok {
		return nil, false, nil
	}
	p, found, err := newDeclaredProxy(k, u)
	if err != nil || !found {
		if err == nil {
			err = fmt.Errorf("%s %s has no pod template at %s, the path spec.workloadKinds of policy %s declares: fix the path or the object", k.Kind, u.GetName(), k.TemplatePath, k.Policy)
		}
		return nil, true, err
	}
	preq := req
	preq.Object = p.proxy
	if old, isOld := req.OldObject.(*unstructured.Unstructured); isOld {
		if op, oldFound, oldErr := newDeclaredProxy(k, old); oldErr == nil && oldFound {
			preq.OldObject = op.proxy
		} else {
			preq.OldObject = nil
		}
	}
	rs, err = e.EvaluateContext(ctx, preq, state)
	if err != nil {
		return nil, true, err
	}
	return p.rename(rs), true, nil
}

// MutateDeclaredUpdate is MutateUpdate for an UPDATE of old into obj,
// objects of a declared kind: obj is mutated as MutateDeclared mutates it
// unless the update leaves its labels and its pod template at the declared
// path as they were (SameTemplatesAndLabels of the two seen as pod
// templates): filling in a template admitted before the policy would roll
// the workload out on a change of its replicas. An old object with no pod
// template at the path is no reason to leave obj alone.
func (e *Engine) MutateDeclaredUpdate(obj, old *unstructured.Unstructured, namespace string, state State) (changed bool, err error) {
	return e.mutateDeclared(obj, old, namespace, state)
}

// MutateDeclared is Mutate for an object of a declared kind: it injects the
// nodeSelector into the pod template at the declared path and reports the
// fields it set ("spec.template.spec.nodeSelector[label]" and the value).
func (e *Engine) MutateDeclared(obj *unstructured.Unstructured, namespace string, state State) (changed bool, err error) {
	return e.mutateDeclared(obj, nil, namespace, state)
}

// mutateDeclared is MutateDeclaredUpdate, and MutateDeclared when old is
// nil.
func (e *Engine) mutateDeclared(obj, old *unstructured.Unstructured, namespace string, state State) (changed bool, err error) {
	k, ok := e.DeclaredKindFor(obj.GroupVersionKind().GroupKind())
	if !ok {
		return false, nil
	}
	p, found, err := newDeclaredProxy(k, obj)
	if err != nil || !found {
		return false, err
	}
	if old != nil {
		if op, oldFound, oldErr := newDeclaredProxy(k, old); oldErr == nil && oldFound && SameTemplatesAndLabels(op.proxy, p.proxy) {
			return false, nil
		}
	}
	if !e.Mutate(p.proxy, namespace, state) {
		return false, nil
	}
	sel := map[string]any{}
	for key, v := range p.proxy.Template.Spec.NodeSelector {
		sel[key] = v
	}
	path := append(strings.Split(k.TemplatePath.String(), "."), "spec", "nodeSelector")
	if err := unstructured.SetNestedMap(obj.Object, sel, path...); err != nil {
		return false, fmt.Errorf("%s: %w", k.TemplatePath, err)
	}
	return true, nil
}
