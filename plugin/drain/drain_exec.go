package drain

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
)

// Annotations `kubectl dc drain` puts on the nodes it cordons, so that
// `kubectl dc uncordon` reverts only its own cordons.
const (
	AnnotationCordonedBy = "drain.kubectl-dc.io/cordoned-by"
	AnnotationCordonedAt = "drain.kubectl-dc.io/cordoned-at"
)

// evictTarget is one pod to evict.
type evictTarget struct {
	Namespace, Name, Node string
	UID                   types.UID
	// PDBs are "namespace/name" of the budgets that cover the pod.
	PDBs []string
	// NotReady is true when the pod's node is not Ready: no kubelet
	// confirms that it terminates.
	NotReady bool
	// Delete deletes the pod instead of evicting it (--disable-eviction);
	// Force deletes it with grace period 0 (--force-delete-unreachable on a
	// pod of a NotReady node).
	Delete, Force bool
	// Deletion is the pod's deletionTimestamp when the plan was made, with
	// its grace period: a pod already terminating sends no event.
	Deletion *metav1.Time
	Grace    int64
}

func (t evictTarget) key() string { return t.Namespace + "/" + t.Name }

// evictor evicts pods through the policy/v1 Eviction API with at most
// Concurrency calls in flight, backing off per PDB on 429 TooManyRequests.
type evictor struct {
	Client kubernetes.Interface
	// Concurrency bounds eviction calls in flight across all nodes; a pod
	// waiting out a backoff holds no slot.
	Concurrency int
	// InitialBackoff is the first wait after a 429; it doubles per refusal
	// up to MaxBackoff and resets after a successful eviction.
	InitialBackoff, MaxBackoff time.Duration
	// Now and Sleep are the clock; tests replace them. Sleep returns the
	// context's error when it ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// OnWait is called on every 429 with the PDB that refused ("" when the
	// API server throttled without naming one), the pod and the reason,
	// and when a paced pod starts waiting for its PDB's status.
	OnWait func(t evictTarget, pdb, message string)
	// OnGiveUp is called when a pod's eviction is refused for good (RBAC,
	// an API server without the Eviction API): nothing will evict it.
	OnGiveUp func(t evictTarget, why string)
	// OnEvicted is called when the API server accepted an eviction, or the
	// pod was already gone.
	OnEvicted func(t evictTarget)
	// OnForced is called, before OnEvicted, after each force deletion the
	// API server accepted, and after one whose answer was lost (lost is
	// that attempt's error) when the next attempt found the pod gone.
	OnForced func(t evictTarget, lost string)
	// OnAlreadyGone is called, before OnEvicted, when the pod was gone
	// (404) or replaced by a pod of the same name (409 on its UID) at the
	// first answer of its eviction or deletion: this drain removed
	// nothing, and says so.
	OnAlreadyGone func(t evictTarget, why string)
	// GracePeriod, when not nil, overrides the pods' termination grace
	// period (--grace-period).
	GracePeriod *int64
	// CallTimeout bounds each eviction or deletion call; 0 leaves it to
	// Client.
	CallTimeout time.Duration
	// Budgets, when not nil, paces the pods behind a PDB by its status
	// instead of a timer: they are tried while it allows a disruption.
	Budgets *budgets
	// Stop is closed when the drain waits for no target any more (every
	// pod gone or not waited for). The calls in flight are not cut off,
	// and a target not yet answered for is tried once more at once and
	// never again, so that what became of every pod is said: an answer
	// cut off by the end of the wait would leave a force deletion
	// unsaid. nil means never.
	Stop <-chan struct{}

	mu      sync.Mutex
	backoff map[string]*backoffState
	lastErr map[string]string
}

type backoffState struct {
	failures int
	next     time.Time
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (e *evictor) defaults() {
	if e.Concurrency <= 0 {
		e.Concurrency = 1
	}
	if e.InitialBackoff <= 0 {
		e.InitialBackoff = time.Second
	}
	if e.MaxBackoff < e.InitialBackoff {
		e.MaxBackoff = e.InitialBackoff
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Sleep == nil {
		e.Sleep = sleepCtx
	}
	if e.OnWait == nil {
		e.OnWait = func(evictTarget, string, string) {}
	}
	if e.OnEvicted == nil {
		e.OnEvicted = func(evictTarget) {}
	}
	if e.OnGiveUp == nil {
		e.OnGiveUp = func(evictTarget, string) {}
	}
	if e.OnForced == nil {
		e.OnForced = func(evictTarget, string) {}
	}
	if e.OnAlreadyGone == nil {
		e.OnAlreadyGone = func(evictTarget, string) {}
	}
	e.backoff = map[string]*backoffState{}
	e.lastErr = map[string]string{}
}

// Run evicts every target and returns when all evictions were accepted,
// ctx ended (calls in flight are cut off), or Stop was closed and every
// target not yet answered for had its last attempt. It returns the last
// error of every pod not evicted, by "namespace/name".
func (e *evictor) Run(ctx context.Context, targets []evictTarget) map[string]string {
	e.defaults()
	// retry ends the backoffs: when ctx ends, or when the drain waits for
	// nothing any more.
	retry, stopRetries := context.WithCancel(ctx)
	defer stopRetries()
	if e.Stop != nil {
		go func() {
			select {
			case <-e.Stop:
				stopRetries()
			case <-retry.Done():
			}
		}()
	}
	sem := make(chan struct{}, e.Concurrency)
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.evictOne(ctx, retry, sem, t)
		}()
	}
	wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]string, len(e.lastErr))
	for k, v := range e.lastErr {
		out[k] = v
	}
	return out
}

// pdbNameRE finds the budget named in the cause of a 429 from the eviction
// API ("The disruption budget web needs 3 healthy pods ...").
var pdbNameRE = regexp.MustCompile(`disruption budget ([a-z0-9]([-a-z0-9.]*[a-z0-9])?)`)

// refusingPDB returns which PDB refused the eviction, preferring the one the
// API server names.
func refusingPDB(t evictTarget, err error) (pdb, message string) {
	message = err.Error()
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Details != nil {
		for _, c := range status.Status().Details.Causes {
			if c.Type == policyv1.DisruptionBudgetCause {
				message = c.Message
				if m := pdbNameRE.FindStringSubmatch(c.Message); m != nil {
					return t.Namespace + "/" + m[1], message
				}
			}
		}
	}
	if len(t.PDBs) > 0 {
		return t.PDBs[0], message
	}
	return "", message
}

func (e *evictor) setErr(t evictTarget, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if msg == "" {
		delete(e.lastErr, t.key())
		return
	}
	e.lastErr[t.key()] = msg
}

// replaceErr sets t's last error to msg when it has none or still has old,
// the one a wait of its own set: an attempt's answer is never replaced.
func (e *evictor) replaceErr(t evictTarget, old, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur, ok := e.lastErr[t.key()]; !ok || (old != "" && cur == old) {
		e.lastErr[t.key()] = msg
	}
}

// wait returns how long a pod must wait before its next attempt on key, and
// after a refusal (refused) moves key's next attempt out: all pods behind
// one PDB share one schedule, so a round of refusals counts once.
func (e *evictor) wait(key string, refused bool) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.backoff[key]
	if s == nil {
		s = &backoffState{}
		e.backoff[key] = s
	}
	now := e.Now()
	if refused && !now.Before(s.next) {
		s.failures++
		d := e.InitialBackoff << (s.failures - 1)
		if d > e.MaxBackoff || d <= 0 {
			d = e.MaxBackoff
		}
		s.next = now.Add(d)
	}
	return s.next.Sub(now)
}

func (e *evictor) reset(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.backoff, key)
}

func (e *evictor) evictOne(ctx, retry context.Context, sem chan struct{}, t evictTarget) {
	// Pods behind a PDB share its schedule; others back off alone.
	key, pdb := "pod:"+t.key(), ""
	if len(t.PDBs) > 0 {
		pdb = t.PDBs[0]
		key = "pdb:" + pdb
	}
	paced := e.Budgets != nil && pdb != "" && !t.Delete && !t.Force
	// lost is the error of an earlier attempt whose answer was lost (a
	// timeout, a 5xx, a broken connection): the API server may have
	// carried it out, so a 404 after it is no proof the pod was gone
	// before this drain.
	lost := ""
	// pause waits d; false means give up: ctx ended, or the drain stopped
	// waiting and this was the last attempt.
	pause := func(d time.Duration, last bool) bool {
		if last {
			return false
		}
		return e.Sleep(retry, d) == nil || ctx.Err() == nil
	}
	for {
		if ctx.Err() != nil {
			return
		}
		// Once the drain waits for nothing, a pod not yet answered for is
		// tried once more at once: its answer says what became of it.
		last, took := retry.Err() != nil, false
		switch d := e.wait(key, false); {
		case last:
		case paced:
			var proceed bool
			if proceed, took = e.awaitBudget(retry, t, pdb); !proceed && ctx.Err() != nil {
				return
			}
			last = retry.Err() != nil
		case d > 0:
			if !pause(d, false) {
				return
			}
			last = retry.Err() != nil
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		err := e.call(ctx, t)
		<-sem
		if took {
			e.Budgets.done(pdb)
		}
		switch {
		case err == nil, apierrors.IsNotFound(err), preconditionFailed(err),
			apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
			// Accepted, already gone, replaced by a pod of the same name, or
			// in a namespace being deleted, whose controller removes the pod
			// (the API refuses evictions there): the watch waits for it.
			e.reset(key)
			e.setErr(t, "")
			gone := apierrors.IsNotFound(err) || preconditionFailed(err)
			switch {
			case t.Force && (err == nil || gone && lost != ""):
				e.OnForced(t, lost)
			case gone && lost != "":
				e.OnAlreadyGone(t, fmt.Sprintf("not found after a %s whose answer was lost (%s), which may have removed it", t.what(), lost))
			case apierrors.IsNotFound(err):
				e.OnAlreadyGone(t, "its "+t.what()+" found no pod: it was removed before the request reached it")
			case gone:
				e.OnAlreadyGone(t, "its "+t.what()+" found a new pod of that name (another UID), left alone: ours was removed before the request reached it")
			}
			e.OnEvicted(t)
			return
		case ctx.Err() != nil:
			return
		case apierrors.IsConflict(err):
			// Concurrent evictions under one PDB race on its status: the
			// eviction was not accepted. Retry on the PDB's schedule. The
			// refusal found the pod: an earlier lost answer removed nothing.
			lost = ""
			msg := "conflict, retrying: " + err.Error()
			e.setErr(t, msg)
			e.OnWait(t, pdb, msg)
			if !e.refused(key, pdb, paced, last, pause) {
				return
			}
		case apierrors.IsTooManyRequests(err):
			if apierrors.HasStatusCause(err, policyv1.DisruptionBudgetCause) {
				// A PDB's refusal found the pod: an earlier lost answer
				// removed nothing. (The API server's own throttling
				// proves nothing.)
				lost = ""
			}
			by, msg := refusingPDB(t, err)
			if by != "" {
				e.setErr(t, fmt.Sprintf("PDB %s refuses: %s", by, msg))
			} else {
				e.setErr(t, msg)
			}
			e.OnWait(t, by, msg)
			if !e.refused(key, pdb, paced, last, pause) {
				return
			}
		case apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err):
			// Retrying cannot help: RBAC or an API server without evictions.
			e.setErr(t, err.Error())
			e.OnGiveUp(t, err.Error())
			return
		default:
			lost = err.Error()
			e.setErr(t, err.Error())
			if !pause(e.wait("pod:"+t.key(), true), last) {
				return
			}
		}
	}
}

// refused handles a refusal of the pod's attempt on key: paced, the PDB's
// status is spent and the next attempt waits for a new one; else the pod
// waits out key's backoff. false: give up (last attempt, or ctx ended).
func (e *evictor) refused(key, pdb string, paced, last bool, pause func(time.Duration, bool) bool) bool {
	if paced {
		e.Budgets.refused(pdb)
		return !last
	}
	return pause(e.wait(key, true), last)
}

// what names what the drain does to the target's pod.
func (t evictTarget) what() string {
	switch {
	case t.Force:
		return "force deletion"
	case t.Delete:
		return "deletion"
	}
	return "eviction"
}

// evictCallTimeout bounds each eviction call of a drain. The API server
// retries an eviction whose write of the PDB's status conflicts with
// another's 20 times, 500 ms apart: the request timeout (5 s unless
// --request-timeout) would cut off evictions it was about to accept, and
// the retry would queue behind them again.
const evictCallTimeout = 15 * time.Second

// callContext bounds one call by CallTimeout.
func (e *evictor) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if e.CallTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, e.CallTimeout)
}

// call evicts or deletes the pod, as the target says.
func (e *evictor) call(ctx context.Context, t evictTarget) error {
	ctx, cancel := e.callContext(ctx)
	defer cancel()
	opts := &metav1.DeleteOptions{GracePeriodSeconds: e.GracePeriod}
	if t.UID != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &t.UID}
	}
	switch {
	case t.Force:
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
		return e.Client.CoreV1().Pods(t.Namespace).Delete(ctx, t.Name, *opts)
	case t.Delete:
		return e.Client.CoreV1().Pods(t.Namespace).Delete(ctx, t.Name, *opts)
	}
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: t.Name}}
	if opts.Preconditions != nil || opts.GracePeriodSeconds != nil {
		ev.DeleteOptions = opts
	}
	return e.Client.PolicyV1().Evictions(t.Namespace).Evict(ctx, ev)
}

// preconditionFailed reports whether err is the 409 of a UID precondition
// on the pod: the pod of that name is another one, ours is gone. A 409 on
// anything else (the PDB's status, raced by concurrent evictions) is not.
func preconditionFailed(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsConflict(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	// "Precondition failed: UID in precondition ..." (delete) or "the UID
	// in the precondition ... does not match" (eviction).
	return d != nil && d.Kind == "pods" && d.Group == "" && strings.Contains(strings.ToLower(status.Status().Message), "uid")
}

// goneWaiter waits by watch for pods to disappear: deleted, or replaced by a
// pod of the same name with another UID.
type goneWaiter struct {
	Client kubernetes.Interface
	// OnGone is called once per target that disappeared.
	OnGone func(t evictTarget)
	// Abandoned delivers the keys of targets nobody will evict: the wait
	// stops waiting for them. nil means none.
	Abandoned <-chan string
	// SkipAfter, when positive, stops waiting for a pod whose
	// deletionTimestamp is older than it (--skip-wait-for-delete-timeout,
	// as kubectl drain).
	SkipAfter time.Duration
	// NotReadyAfter, when positive, stops waiting for a pod of a NotReady
	// node this long after its deletion was requested: no kubelet will
	// confirm it.
	NotReadyAfter time.Duration
	// OnNotWaited is called once per target the wait gives up on.
	OnNotWaited func(t evictTarget, why string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Lister makes the relists, with its page size; without a Client it
	// lists through Client.
	Lister cluster.Lister

	deadlines map[string]deadline
}

type deadline struct {
	at  time.Time
	why string
}

// noteDeletion records when the wait gives up on a terminating target.
func (w *goneWaiter) noteDeletion(t evictTarget, ts *metav1.Time, grace int64) {
	// A force-deleted pod goes at once: wait for it.
	if ts == nil || w.deadlines == nil || t.Force {
		return
	}
	if _, ok := w.deadlines[t.key()]; ok {
		return
	}
	var d deadline
	if w.SkipAfter > 0 {
		d = deadline{at: ts.Add(w.SkipAfter), why: fmt.Sprintf("deletion older than --skip-wait-for-delete-timeout=%s: not waited for", w.SkipAfter)}
	}
	if t.NotReady && w.NotReadyAfter > 0 {
		requested := ts.Add(-time.Duration(grace) * time.Second)
		if at := requested.Add(w.NotReadyAfter); d.at.IsZero() || at.Before(d.at) {
			d = deadline{at: at, why: fmt.Sprintf("node %s is not Ready: no kubelet confirms the pod terminates; not waited for after %s (it stays Terminating until the node returns or is deleted; --force-delete-unreachable removes it)", t.Node, w.NotReadyAfter)}
		}
	}
	if !d.at.IsZero() {
		w.deadlines[t.key()] = d
	}
}

// expire stops waiting for the targets whose deadline passed.
func (w *goneWaiter) expire(pending map[string]evictTarget) {
	now := w.Now()
	for k, d := range w.deadlines {
		t, ok := pending[k]
		if !ok {
			delete(w.deadlines, k)
			continue
		}
		if now.Before(d.at) {
			continue
		}
		delete(pending, k)
		delete(w.deadlines, k)
		if w.OnNotWaited != nil {
			w.OnNotWaited(t, d.why)
		}
	}
}

// errWaitFailed marks a wait that cannot go on: following the pods is
// forbidden.
var errWaitFailed = errors.New("cannot follow the evicted pods")

// Wait returns nil when every target is gone, or ctx's error. rv is the
// resourceVersion of the LIST the targets came from; "" lists first.
func (w *goneWaiter) Wait(ctx context.Context, rv string, targets []evictTarget) error {
	if w.Now == nil {
		w.Now = time.Now
	}
	w.deadlines = map[string]deadline{}
	pending := make(map[string]evictTarget, len(targets))
	for _, t := range targets {
		pending[t.key()] = t
		w.noteDeletion(t, t.Deletion, t.Grace)
	}
	gone := func(k string) {
		if t, ok := pending[k]; ok {
			delete(pending, k)
			if w.OnGone != nil {
				w.OnGone(t)
			}
		}
	}
	drain := func() {
		w.expire(pending)
		for {
			select {
			case k := <-w.Abandoned:
				delete(pending, k)
			default:
				return
			}
		}
	}
	for drain(); len(pending) > 0; drain() {
		if rv == "" {
			var err error
			if rv, err = w.relist(ctx, pending, gone); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if apierrors.IsForbidden(err) {
					return fmt.Errorf("%w: listing pods: %w (drain needs list and watch on pods, see docs/rbac.md)", errWaitFailed, err)
				}
				if sleepCtx(ctx, time.Second) != nil {
					return ctx.Err()
				}
				continue
			}
			if drain(); len(pending) == 0 {
				return nil
			}
		}
		watcher, err := w.Client.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if apierrors.IsForbidden(err) {
				return fmt.Errorf("%w: watching pods: %w (drain needs list and watch on pods, see docs/rbac.md)", errWaitFailed, err)
			}
			// Relist after a pause, not at once: a failing watch must not
			// turn into a hot loop against the API server.
			if sleepCtx(ctx, time.Second) != nil {
				return ctx.Err()
			}
			rv = ""
			continue
		}
		rv = w.consume(ctx, watcher, pending, gone)
		watcher.Stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// consume reads events until the watch ends and returns the resourceVersion
// to resume from, "" when a relist is needed.
func (w *goneWaiter) consume(ctx context.Context, watcher watch.Interface, pending map[string]evictTarget, gone func(string)) string {
	rv := ""
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for len(pending) > 0 {
		select {
		case <-tick.C:
			w.expire(pending)
		case <-ctx.Done():
			return rv
		case k := <-w.Abandoned:
			delete(pending, k)
		case ev, ok := <-watcher.ResultChan():
			if !ok {
				return rv
			}
			if ev.Type == watch.Error {
				return ""
			}
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			rv = pod.ResourceVersion
			k := pod.Namespace + "/" + pod.Name
			t, ok := pending[k]
			if !ok {
				continue
			}
			if ev.Type == watch.Deleted || (t.UID != "" && pod.UID != t.UID) {
				gone(k)
				continue
			}
			grace := int64(0)
			if pod.DeletionGracePeriodSeconds != nil {
				grace = *pod.DeletionGracePeriodSeconds
			}
			w.noteDeletion(t, pod.DeletionTimestamp, grace)
			w.expire(pending)
		}
	}
	return rv
}

func (w *goneWaiter) relist(ctx context.Context, pending map[string]evictTarget, gone func(string)) (string, error) {
	present := map[string]*corev1.Pod{}
	l := w.Lister
	if l.Client == nil {
		l.Client = w.Client
	}
	rv, err := l.Each(ctx, cluster.GVRPods, metav1.NamespaceAll, metav1.ListOptions{}, func(obj runtime.Object) {
		p := obj.(*corev1.Pod)
		present[p.Namespace+"/"+p.Name] = p
	})
	if err != nil {
		return "", err
	}
	keys := make([]string, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p, ok := present[k]
		if !ok || (pending[k].UID != "" && p.UID != pending[k].UID) {
			gone(k)
			continue
		}
		grace := int64(0)
		if p.DeletionGracePeriodSeconds != nil {
			grace = *p.DeletionGracePeriodSeconds
		}
		w.noteDeletion(pending[k], p.DeletionTimestamp, grace)
	}
	return rv, nil
}
