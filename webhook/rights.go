package webhook

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// DefaultRightsInterval is the least time between two questions of
// CompileRights.Recheck.
const DefaultRightsInterval = 30 * time.Second

// CompileRights knows whether this replica may write admission policies
// (the RBAC of manifests/overlays/cel), under --pinned-enforcement=webhook,
// where only a policy's spec.pinnedEnforcement asks for them. Without that
// right the field is ignored (pinnedWebhookOnly) and the webhook keeps
// enforcing those policies' pinned rules: left to compiled policies no
// one can write, they would be enforced by no one.
//
// It asks the API server at startup (Check) and, while the answer is no
// and some policy asks for cel or both, again at most every Interval
// (Recheck), so that the RBAC applied after the replicas started is
// honoured without restarting them. A yes is kept: with the RBAC revoked
// the compiled policies already written stay, and keep enforcing, since
// the webhook could not delete them either; the writer then logs every
// write it is refused.
//
// A nil CompileRights always may: the flag itself asks for cel or both,
// and the deployment has the RBAC.
type CompileRights struct {
	Client kubernetes.Interface
	Log    interface {
		Info(msg string, kv ...any)
		Error(err error, msg string, kv ...any)
	}
	// Interval is the least time between two questions; 0 is
	// DefaultRightsInterval.
	Interval time.Duration

	allowed atomic.Bool
	mu      sync.Mutex // serialises questions; guards asked
	asked   time.Time
	// now is time.Now; tests set it.
	now func() time.Time
}

// mode returns who enforces the pinned rules of the policies without
// spec.pinnedEnforcement, def being the flag: def itself, unless this
// replica may not write admission policies (then pinnedWebhookOnly).
func (r *CompileRights) mode(def PinnedMode) PinnedMode {
	if r == nil || def.compiles() || def == pinnedWebhookOnly || r.allowed.Load() {
		return def
	}
	return pinnedWebhookOnly
}

func (r *CompileRights) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// Check asks the API server, and says so in the log when the answer is no.
func (r *CompileRights) Check(ctx context.Context) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok, err := r.ask(ctx)
	if !ok {
		r.Log.Info("the webhook enforces every policy's pinned rules, whatever their spec.pinnedEnforcement says: it may not write admission policies (apply the RBAC of manifests/overlays/cel: it asks again while some policy asks for cel or both)", "error", err, "every", r.interval())
	}
	return ok
}

// Recheck asks again when the last answer was no, some policy of eng
// asks for cel or both and the last question is Interval old, and
// reports whether the answer turned to yes: the caller then rebuilds what
// follows the policies' enforcement (the scope, the audit view, the
// writer).
func (r *CompileRights) Recheck(ctx context.Context, eng *policy.Engine) bool {
	if r == nil || r.allowed.Load() || eng == nil {
		return false
	}
	var asking []string
	for _, p := range eng.Policies() {
		if PinnedWebhook.For(&p).compiles() {
			asking = append(asking, p.Name)
		}
	}
	if len(asking) == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.allowed.Load() || r.clock().Sub(r.asked) < r.interval() {
		return false
	}
	ok, err := r.ask(ctx)
	if err != nil {
		r.Log.Error(err, "asking whether the webhook may write admission policies; the webhook keeps enforcing every policy's pinned rules", "policies", asking, "again in", r.interval())
	}
	if ok {
		r.Log.Info("the webhook may write admission policies now: it honours the policies' spec.pinnedEnforcement", "policies", asking)
	}
	return ok
}

// ask asks the API server and records the answer; r.mu is held.
func (r *CompileRights) ask(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, scopeTimeout)
	defer cancel()
	r.asked = r.clock()
	ok, err := canWriteAdmissionPolicies(ctx, r.Client)
	r.allowed.Store(ok)
	return ok, err
}

func (r *CompileRights) interval() time.Duration {
	if r.Interval > 0 {
		return r.Interval
	}
	return DefaultRightsInterval
}
