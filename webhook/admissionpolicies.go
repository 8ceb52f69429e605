package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
)

// PinnedMode says who enforces the pinned rules: a PlacementPolicy's
// spec.pinnedEnforcement values (v1alpha1.PinnedEnforcement), which
// --pinned-enforcement takes as the default, and pinnedWebhookOnly.
type PinnedMode string

// The pinned enforcement modes (--pinned-enforcement), one per
// v1alpha1.PinnedEnforcement value.
const (
	// PinnedWebhook: the webhook judges and injects, as it always did; no
	// admission policies are compiled (those compiled before are deleted).
	PinnedWebhook = PinnedMode(v1alpha1.PinnedEnforcementWebhook)
	// PinnedCEL: the compiled admission policies judge and inject inside
	// the API server; the webhook configurations no longer send what they
	// cover, so pinned enforcement holds with every replica down.
	PinnedCEL = PinnedMode(v1alpha1.PinnedEnforcementCEL)
	// PinnedBoth: the compiled admission policies enforce and inject; the
	// webhook audits them: it judges the pinned rules' objects with the
	// policy engine, never refuses or patches them for what the compiled
	// policies cover, and counts every verdict that differs from theirs
	// (Metrics.PinnedDifferences), evaluated in-process (PinnedAuditor).
	PinnedBoth = PinnedMode(v1alpha1.PinnedEnforcementBoth)
)

// pinnedWebhookOnly is PinnedWebhook where the webhook may not write
// admission policies (it lacks the RBAC of manifests/overlays/cel): the
// policies' spec.pinnedEnforcement is then ignored, since a policy left
// to compiled policies no one can write would be enforced by no one.
const pinnedWebhookOnly PinnedMode = "webhook-only"

// PinnedModes are the valid modes, for flags and messages: the policy
// field's values, in its order.
var PinnedModes = func() []PinnedMode {
	out := make([]PinnedMode, 0, len(v1alpha1.PinnedEnforcements))
	for _, e := range v1alpha1.PinnedEnforcements {
		out = append(out, PinnedMode(e))
	}
	return out
}()

// CELEnforces reports whether the compiled admission policies enforce the
// pinned rules and the webhook steps aside.
func (m PinnedMode) CELEnforces() bool { return m == PinnedCEL }

// compiles reports whether the mode compiles admission policies, as the
// policy field's value does (v1alpha1.PinnedEnforcement.Compiles).
func (m PinnedMode) compiles() bool { return v1alpha1.PinnedEnforcement(m).Compiles() }

// For returns who enforces the pinned rules of p: its
// spec.pinnedEnforcement when set, else m ("" is PinnedWebhook).
func (m PinnedMode) For(p *v1alpha1.PlacementPolicy) PinnedMode {
	switch m {
	case "":
		m = PinnedWebhook
	case pinnedWebhookOnly:
		return PinnedWebhook
	}
	return PinnedMode(p.Spec.EffectivePinnedEnforcement(v1alpha1.PinnedEnforcement(m)))
}

// canWriteAdmissionPolicies asks the API server whether this webhook may
// create ValidatingAdmissionPolicies (the RBAC of manifests/overlays/cel).
func canWriteAdmissionPolicies(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: admissionregistrationv1.GroupName, Resource: "validatingadmissionpolicies", Verb: "create"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

// anyCompiles reports whether some policy of eng has its pinned rules
// compiled under the default m.
func (m PinnedMode) anyCompiles(eng *policy.Engine) bool {
	if m.compiles() {
		return true
	}
	if eng == nil {
		return false
	}
	for _, p := range eng.Policies() {
		if m.For(&p).compiles() {
			return true
		}
	}
	return false
}

// annotationSpecHash records the hash of the spec an object was written
// with, so that an unchanged compilation writes nothing (the API server
// fills defaults in, so the live spec never equals the compiled one).
const annotationSpecHash = "placement.kubectl-dc.io/spec-hash"

// AdmissionPolicies keeps the compiled admission policies of the pinned
// rules (celpolicy) in step with the live PlacementPolicies and Nodes: one
// replica, elected through Lease, compiles and writes them; the others
// stand by. Mode is the default of policies without
// spec.pinnedEnforcement: with PinnedWebhook it waits, never touching the
// Lease, until some policy asks for cel or both, and it deletes what it
// wrote once none does.
type AdmissionPolicies struct {
	Client kubernetes.Interface
	Mode   PinnedMode
	// Rights, when set, says whether policies may ask for cel or both.
	Rights *CompileRights
	// Engines gives the live, validated policies.
	Engines *EngineStore
	// Nodes is the Node cache: the known datacenters of policies without
	// spec.datacenters.
	Nodes toolscache.Store
	// Options give the namespaces the webhook configurations exclude.
	Options celpolicy.Options
	// Lease is the leader election Lease; Identity this replica.
	Lease    types.NamespacedName
	Identity string
	Log      interface {
		Info(msg string, kv ...any)
		Error(err error, msg string, kv ...any)
	}

	kicker
	// applied is the hash of the last compilation written, "" for none.
	applied string
}

// Timing of AdmissionPolicies: how often the written objects are checked
// against the compilation besides every change (someone may delete or
// edit them), and the leader election's durations.
const (
	admissionPolicyResync = time.Minute
	leaseDuration         = 15 * time.Second
	renewDeadline         = 10 * time.Second
	retryPeriod           = 2 * time.Second
)

// NeedLeaderElection is false: AdmissionPolicies elects its own leader,
// so that the webhook's manager runs without leader election.
func (a *AdmissionPolicies) NeedLeaderElection() bool { return false }

// Start runs the leader election and, while leading, keeps the admission
// policies current until ctx ends.
func (a *AdmissionPolicies) Start(ctx context.Context) error {
	// Nothing to write until some policy is compiled: a webhook-only
	// deployment needs neither the Lease nor the RBAC of the cel overlay.
	for !a.Rights.mode(a.Mode).anyCompiles(a.Engines.Load()) {
		select {
		case <-ctx.Done():
			return nil
		case <-a.kicks():
		}
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: a.Lease.Namespace, Name: a.Lease.Name},
		Client:     a.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: a.Identity},
	}
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   leaseDuration,
			RenewDeadline:   renewDeadline,
			RetryPeriod:     retryPeriod,
			ReleaseOnCancel: true,
			Name:            "dc-webhook admission policies",
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: a.lead,
				OnStoppedLeading: func() {},
			},
		})
	}
	return nil
}

// lead compiles on every kick and every resync until ctx ends.
func (a *AdmissionPolicies) lead(ctx context.Context) {
	a.Log.Info("leading the admission policies", "mode", a.Mode, "lease", a.Lease.String())
	a.applied = ""
	t := time.NewTicker(admissionPolicyResync)
	defer t.Stop()
	a.Kick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kicks():
		case <-t.C:
			// Check the written objects again, whatever changed.
			a.applied = ""
		}
		if err := a.Reconcile(ctx); err != nil {
			a.Log.Error(err, "keeping the admission policies as they are; retrying on the next change or in a minute")
			a.applied = ""
		}
	}
}

// Reconcile compiles the live policies and writes the result: creates
// and updates what differs, deletes what is no longer compiled. It writes
// nothing when the compilation is the one it last wrote.
func (a *AdmissionPolicies) Reconcile(ctx context.Context) error {
	set := &celpolicy.Set{}
	if a.Rights.mode(a.Mode).anyCompiles(a.Engines.Load()) {
		eng := a.Engines.Load()
		if eng == nil {
			return nil
		}
		opts := compileOptions(a.Options, a.Nodes, v1alpha1.PinnedEnforcement(a.Mode))
		if a.Mode == "" {
			opts.Enforcement = v1alpha1.PinnedEnforcementWebhook
		}
		compiled, err := celpolicy.Compile(eng.Policies(), opts)
		if err != nil {
			return fmt.Errorf("compiling the pinned rules into admission policies: %w", err)
		}
		set = compiled
	}
	h, err := hashOf(set)
	if err != nil {
		return err
	}
	if h == a.applied {
		return nil
	}
	ar := a.Client.AdmissionregistrationV1()
	listVAP := func(ctx context.Context, o metav1.ListOptions) ([]admissionregistrationv1.ValidatingAdmissionPolicy, error) {
		l, err := ar.ValidatingAdmissionPolicies().List(ctx, o)
		return itemsOf(l, err, func(l *admissionregistrationv1.ValidatingAdmissionPolicyList) []admissionregistrationv1.ValidatingAdmissionPolicy {
			return l.Items
		})
	}
	listMAP := func(ctx context.Context, o metav1.ListOptions) ([]admissionregistrationv1.MutatingAdmissionPolicy, error) {
		l, err := ar.MutatingAdmissionPolicies().List(ctx, o)
		return itemsOf(l, err, func(l *admissionregistrationv1.MutatingAdmissionPolicyList) []admissionregistrationv1.MutatingAdmissionPolicy {
			return l.Items
		})
	}
	var errs []error
	// Policies before their bindings; bindings deleted before their
	// policies.
	errs = append(errs, apply(ctx, set.Validating,
		listVAP,
		func(ctx context.Context, x *admissionregistrationv1.ValidatingAdmissionPolicy) error {
			_, err := ar.ValidatingAdmissionPolicies().Create(ctx, x, metav1.CreateOptions{FieldManager: "dc-webhook"})
			return err
		},
		func(ctx context.Context, x *admissionregistrationv1.ValidatingAdmissionPolicy) error {
			_, err := ar.ValidatingAdmissionPolicies().Update(ctx, x, metav1.UpdateOptions{FieldManager: "dc-webhook"})
			return err
		},
		nil)...)
	errs = append(errs, apply(ctx, set.ValidatingBindings,
		func(ctx context.Context, o metav1.ListOptions) ([]admissionregistrationv1.ValidatingAdmissionPolicyBinding, error) {
			l, err := ar.ValidatingAdmissionPolicyBindings().List(ctx, o)
			return itemsOf(l, err, func(l *admissionregistrationv1.ValidatingAdmissionPolicyBindingList) []admissionregistrationv1.ValidatingAdmissionPolicyBinding {
				return l.Items
			})
		},
		func(ctx context.Context, x *admissionregistrationv1.ValidatingAdmissionPolicyBinding) error {
			_, err := ar.ValidatingAdmissionPolicyBindings().Create(ctx, x, metav1.CreateOptions{FieldManager: "dc-webhook"})
			return err
		},
		func(ctx context.Context, x *admissionregistrationv1.ValidatingAdmissionPolicyBinding) error {
			_, err := ar.ValidatingAdmissionPolicyBindings().Update(ctx, x, metav1.UpdateOptions{FieldManager: "dc-webhook"})
			return err
		},
		func(ctx context.Context, name string) error {
			return ar.ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
		})...)
	errs = append(errs, apply(ctx, set.Mutating,
		listMAP,
		func(ctx context.Context, x *admissionregistrationv1.MutatingAdmissionPolicy) error {
			_, err := ar.MutatingAdmissionPolicies().Create(ctx, x, metav1.CreateOptions{FieldManager: "dc-webhook"})
			return err
		},
		func(ctx context.Context, x *admissionregistrationv1.MutatingAdmissionPolicy) error {
			_, err := ar.MutatingAdmissionPolicies().Update(ctx, x, metav1.UpdateOptions{FieldManager: "dc-webhook"})
			return err
		},
		nil)...)
	errs = append(errs, apply(ctx, set.MutatingBindings,
		func(ctx context.Context, o metav1.ListOptions) ([]admissionregistrationv1.MutatingAdmissionPolicyBinding, error) {
			l, err := ar.MutatingAdmissionPolicyBindings().List(ctx, o)
			return itemsOf(l, err, func(l *admissionregistrationv1.MutatingAdmissionPolicyBindingList) []admissionregistrationv1.MutatingAdmissionPolicyBinding {
				return l.Items
			})
		},
		func(ctx context.Context, x *admissionregistrationv1.MutatingAdmissionPolicyBinding) error {
			_, err := ar.MutatingAdmissionPolicyBindings().Create(ctx, x, metav1.CreateOptions{FieldManager: "dc-webhook"})
			return err
		},
		func(ctx context.Context, x *admissionregistrationv1.MutatingAdmissionPolicyBinding) error {
			_, err := ar.MutatingAdmissionPolicyBindings().Update(ctx, x, metav1.UpdateOptions{FieldManager: "dc-webhook"})
			return err
		},
		func(ctx context.Context, name string) error {
			return ar.MutatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
		})...)
	// Policies no longer compiled, now that their bindings are gone.
	errs = append(errs, prune(ctx, set.Validating,
		listVAP,
		func(ctx context.Context, name string) error {
			return ar.ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
		}))
	errs = append(errs, prune(ctx, set.Mutating,
		listMAP,
		func(ctx context.Context, name string) error {
			return ar.MutatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
		}))
	if err := utilerrors.NewAggregate(errs); err != nil {
		return err
	}
	a.applied = h
	a.Log.Info("admission policies written", "mode", a.Mode, "validating", len(set.Validating), "mutating", len(set.Mutating))
	return nil
}

func itemsOf[L any, T any](l *L, err error, items func(*L) []T) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return items(l), nil
}

// managedSelector lists the objects AdmissionPolicies wrote.
var managedSelector = labels.SelectorFromSet(labels.Set{celpolicy.LabelManagedBy: celpolicy.ManagedBy}).String()

// apply creates or updates every object of want whose spec hash differs
// from the live one's, and, when del is set, deletes the managed objects
// want no longer holds.
func apply[T any](ctx context.Context, want []T,
	list func(context.Context, metav1.ListOptions) ([]T, error),
	create, update func(context.Context, *T) error,
	del func(context.Context, string) error,
) []error {
	live, err := list(ctx, metav1.ListOptions{LabelSelector: managedSelector})
	if err != nil {
		return []error{err}
	}
	byName := map[string]metav1.Object{}
	for i := range live {
		m := any(&live[i]).(metav1.Object)
		byName[m.GetName()] = m
	}
	var errs []error
	keep := map[string]bool{}
	for i := range want {
		x := &want[i]
		m := any(x).(metav1.Object)
		keep[m.GetName()] = true
		h, err := hashOf(specOf(x))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ann := map[string]string{annotationSpecHash: h}
		m.SetAnnotations(ann)
		cur, exists := byName[m.GetName()]
		switch {
		case !exists:
			if err := create(ctx, x); err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("creating %s: %w", m.GetName(), err))
			}
		case cur.GetAnnotations()[annotationSpecHash] != h:
			m.SetResourceVersion(cur.GetResourceVersion())
			if err := update(ctx, x); err != nil {
				errs = append(errs, fmt.Errorf("updating %s: %w", m.GetName(), err))
			}
		}
	}
	if del != nil {
		for name := range byName {
			if !keep[name] {
				if err := del(ctx, name); err != nil && !apierrors.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("deleting %s: %w", name, err))
				}
			}
		}
	}
	return errs
}

// prune deletes the managed objects want no longer holds.
func prune[T any](ctx context.Context, want []T, list func(context.Context, metav1.ListOptions) ([]T, error), del func(context.Context, string) error) error {
	live, err := list(ctx, metav1.ListOptions{LabelSelector: managedSelector})
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for i := range want {
		keep[any(&want[i]).(metav1.Object).GetName()] = true
	}
	var errs []error
	for i := range live {
		name := any(&live[i]).(metav1.Object).GetName()
		if !keep[name] {
			if err := del(ctx, name); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting %s: %w", name, err))
			}
		}
	}
	return utilerrors.NewAggregate(errs)
}

// specOf returns the spec of a compiled object, what its hash covers.
func specOf(x any) any {
	switch o := x.(type) {
	case *admissionregistrationv1.ValidatingAdmissionPolicy:
		return o.Spec
	case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
		return o.Spec
	case *admissionregistrationv1.MutatingAdmissionPolicy:
		return o.Spec
	case *admissionregistrationv1.MutatingAdmissionPolicyBinding:
		return o.Spec
	}
	return x
}

func hashOf(x any) (string, error) {
	data, err := json.Marshal(x)
	if err != nil {
		return "", errors.New("hashing a compiled admission policy: " + err.Error())
	}
	h := fnv.New64a()
	_, _ = h.Write(data)
	return strconv.FormatUint(h.Sum64(), 16), nil
}

// compileOptions are base with the cached Nodes (the known datacenters of
// policies without spec.datacenters; nodes may be nil) and enforcement as
// the default of policies without spec.pinnedEnforcement: what the writer
// and the both-mode auditor compile with.
func compileOptions(base celpolicy.Options, nodes toolscache.Store, enforcement v1alpha1.PinnedEnforcement) celpolicy.Options {
	opts := base
	opts.Nodes = nil
	if nodes != nil {
		for _, o := range nodes.List() {
			if n, ok := o.(*corev1.Node); ok {
				opts.Nodes = append(opts.Nodes, n)
			}
		}
	}
	opts.Enforcement = enforcement
	return opts
}
