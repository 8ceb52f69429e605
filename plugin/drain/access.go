package drain

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// accessCheck is one call the drain will make, asked of the API server
// with a SelfSubjectAccessReview before anything is touched.
type accessCheck struct {
	verb, group, resource, subresource, namespace string
	// why says what the drain needs it for.
	why string
	// optional checks refuse nothing: without them the drain does less
	// well, not less.
	optional bool
}

func (c accessCheck) String() string {
	r := c.resource
	if c.group != "" {
		r += "." + c.group
	}
	if c.subresource != "" {
		r += "/" + c.subresource
	}
	where := "cluster-wide"
	if c.namespace != "" {
		where = "in namespace " + c.namespace
	}
	return fmt.Sprintf("%s %s %s", c.verb, r, where)
}

// accessChecks lists the calls the drain of plan makes: cordon every
// node, evict (or delete) in every namespace concerned, watch pods, and
// (optional) watch PodDisruptionBudgets to pace evictions behind them.
func (o *Options) accessChecks(plan *Plan) []accessCheck {
	checks := []accessCheck{
		{verb: "patch", resource: "nodes", why: "cordon the datacenter's nodes"},
		{verb: "watch", resource: "pods", why: "wait for the evicted pods to be gone"},
	}
	if !o.DisableEviction && len(plan.PDBs) > 0 {
		checks = append(checks, accessCheck{verb: "watch", group: policyv1.GroupName, resource: "poddisruptionbudgets", optional: true,
			why: "pace the evictions behind a PodDisruptionBudget by its status (without it they are retried on a timer)"})
	}
	evictNS, deleteNS := map[string]bool{}, map[string]bool{}
	for _, p := range plan.Evict {
		switch {
		case o.DisableEviction || (o.ForceDeleteUnreachable && p.NotReadyNode):
			deleteNS[p.Namespace] = true
		default:
			evictNS[p.Namespace] = true
		}
	}
	for _, ns := range sortedMapKeys(evictNS) {
		checks = append(checks, accessCheck{verb: "create", resource: "pods", subresource: "eviction", namespace: ns, why: "evict its pods"})
	}
	for _, ns := range sortedMapKeys(deleteNS) {
		why := "delete its pods (--disable-eviction)"
		if !o.DisableEviction {
			why = "force-delete the pods of NotReady nodes (--force-delete-unreachable)"
		}
		checks = append(checks, accessCheck{verb: "delete", resource: "pods", namespace: ns, why: why})
	}
	return checks
}

// preflight asks the API server, before anything is touched, whether the
// caller may make every call of the drain. A refusal becomes a fatal
// blocker: --dry-run reports it, the drain refuses before cordoning; an
// optional call allowed is recorded (watchPDBs), refused is left out. With
// --dry-run=server the cordons and one eviction per namespace are also
// sent as server-side dry runs. It returns warnings for checks that could
// not be made.
func (o *Options) preflight(ctx context.Context, plan *Plan) []string {
	checks := o.accessChecks(plan)
	type result struct {
		check   accessCheck
		allowed bool
		reason  string
		err     error
	}
	results := make([]result, len(checks))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: c.verb, Group: c.group, Resource: c.resource, Subresource: c.subresource, Namespace: c.namespace},
			}}
			got, err := o.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, r, metav1.CreateOptions{})
			results[i] = result{check: c, err: err}
			if err == nil {
				results[i].allowed, results[i].reason = got.Status.Allowed, got.Status.Reason
			}
		}()
	}
	wg.Wait()
	var warnings []string
	denied := map[string][]string{}
	o.watchPDBs = false
	for _, r := range results {
		switch {
		case r.check.optional:
			if r.check.resource == "poddisruptionbudgets" {
				o.watchPDBs = r.err == nil && r.allowed
			}
		case r.err != nil:
			warnings = append(warnings, fmt.Sprintf("could not check whether you may %s: %v", r.check, r.err))
		case !r.allowed:
			denied[r.check.why] = append(denied[r.check.why], r.check.String())
		}
	}
	if o.DryRun == dryRunServer {
		refused, unsure := o.serverDryRun(ctx, plan)
		for why, calls := range refused {
			denied[why] = append(denied[why], calls...)
		}
		warnings = append(warnings, unsure...)
	}
	for _, why := range sortedMapKeys(denied) {
		calls := denied[why]
		sort.Strings(calls)
		b := Blocker{
			Kind: blockForbidden, Object: strings.Join(calls, "; "), Pods: []string{}, Fatal: true,
			Message: fmt.Sprintf("you may not %s: the API server refuses %s", why, strings.Join(calls, "; ")),
			Remedy:  "bind the kubectl-dc-drain ClusterRole (manifests/rbac/drain.yaml, docs/rbac.md) to your user or group",
		}
		plan.Blockers = append(plan.Blockers, b)
		plan.Refused = true
		plan.Reasons = append(plan.Reasons, b.Message+": "+b.Remedy)
	}
	return warnings
}

// serverDryRun sends the cordons and one eviction (or deletion) per
// namespace as server-side dry runs. It returns the refusals by purpose and
// warnings for dry runs whose answer says nothing about the caller's rights.
func (o *Options) serverDryRun(ctx context.Context, plan *Plan) (map[string][]string, []string) {
	out := map[string][]string{}
	var warnings []string
	judge := func(why, call string, err error) {
		switch {
		case err == nil || dryRunSaysNothing(err):
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			out[why] = append(out[why], fmt.Sprintf("%s (server dry run: %v)", call, err))
		default:
			warnings = append(warnings, fmt.Sprintf("could not check whether you may %s: the server dry run of %s failed: %v", why, call, err))
		}
	}
	dry := []string{metav1.DryRunAll}
	for _, n := range plan.Nodes {
		if n.Unschedulable {
			continue
		}
		_, err := o.client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{DryRun: dry})
		judge("cordon the datacenter's nodes", "patch node "+n.Name, err)
	}
	seen := map[string]bool{}
	for _, p := range plan.Evict {
		if seen[p.Namespace] {
			continue
		}
		seen[p.Namespace] = true
		var err error
		why := "evict its pods"
		if o.DisableEviction || (o.ForceDeleteUnreachable && p.NotReadyNode) {
			why = "delete its pods"
			err = o.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{DryRun: dry})
		} else {
			err = o.client.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{
				ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}, DeleteOptions: &metav1.DeleteOptions{DryRun: dry},
			})
		}
		judge(why, "pod "+p.Namespace+"/"+p.Name, err)
	}
	return out, warnings
}

// dryRunSaysNothing: answers of a server dry run that are no refusal of the
// caller: the object is already gone, a PDB allows no disruption at this
// moment (429), or its namespace is being deleted (the API refuses every
// eviction there, and the pod goes with its namespace).
func dryRunSaysNothing(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}
