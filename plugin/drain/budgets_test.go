package drain

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
)

func pdbAllowing(ns, name string, allowed int32) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
	}
}

// TestBudgets: attempts under a PDB are reserved while the latest status
// allows a disruption no attempt in flight holds, at most inflightPerPDB
// at a time; a refusal spends the status; a deleted PDB paces nothing;
// every status and answer wakes the waiting pods.
func TestBudgets(t *testing.T) {
	b := newBudgets()
	const key = "apps/web"
	if reserved, unpaced, _, changed := b.take(key); reserved || unpaced || changed == nil {
		t.Fatalf("before any status: take = %v, %v; want a wait", reserved, unpaced)
	}
	_, _, _, changed := b.take(key)
	b.observe(pdbAllowing("apps", "web", 2))
	select {
	case <-changed:
	default:
		t.Fatal("a status did not wake the waiting pods")
	}
	for i := range 2 {
		if reserved, _, _, _ := b.take(key); !reserved {
			t.Fatalf("take %d of the 2 allowed refused", i+1)
		}
	}
	reserved, _, _, changed := b.take(key)
	if reserved {
		t.Fatal("a third attempt was reserved while two are in flight and the status allows 2")
	}
	if reserved, _, _, _ := b.take("apps/other-pdb"); reserved {
		t.Fatal("a PDB with no status yet reserved an attempt")
	}
	// The accepted eviction's status write, then its answer.
	b.observe(pdbAllowing("apps", "web", 1))
	b.done(key)
	select {
	case <-changed:
	default:
		t.Fatal("an answer did not wake the waiting pods")
	}
	if reserved, _, _, _ := b.take(key); reserved {
		t.Fatal("the status allows 1, held by the attempt in flight; take reserved another")
	}
	b.done(key)
	if reserved, _, _, _ := b.take(key); !reserved {
		t.Fatal("the status allows 1 and nothing is in flight; take refused")
	}
	b.refused(key)
	b.done(key)
	if reserved, _, _, _ := b.take(key); reserved {
		t.Error("after a refusal the spent status still reserved an attempt")
	}
	// A large budget: no more than inflightPerPDB at once.
	b.observe(pdbAllowing("apps", "web", 50))
	for i := range inflightPerPDB {
		if reserved, _, _, _ := b.take(key); !reserved {
			t.Fatalf("take %d of %d refused with 50 allowed", i+1, inflightPerPDB)
		}
	}
	if reserved, _, full, _ := b.take(key); reserved || !full {
		t.Errorf("%d attempts in flight under one PDB allowing 50: take = reserved %v, full %v; want held back by the attempts in flight, at most %d: they conflict on its status", inflightPerPDB+1, reserved, full, inflightPerPDB)
	}
	b.forget("apps", "web")
	if reserved, unpaced, _, _ := b.take(key); reserved || !unpaced {
		t.Errorf("deleted PDB: take = %v, %v; want unpaced", reserved, unpaced)
	}
}

// pdbServer is a fake API server's eviction subresource under one PDB, and
// its disruption controller: an accepted eviction writes the PDB's status
// (allowed - 1) before it answers, as the API server does; a disruption
// heals heal after acceptance (the replacement is healthy) and the status
// says so.
type pdbServer struct {
	mu        sync.Mutex
	allowed   int32
	budgets   *budgets
	heal      time.Duration
	accepted  atomic.Int32
	refusals  atomic.Int32
	healing   sync.WaitGroup
	namespace string
}

func (s *pdbServer) install(cs *fake.Clientset) {
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.allowed <= 0 {
			s.refusals.Add(1)
			return true, nil, dPDBRefusal("web")
		}
		s.allowed--
		s.accepted.Add(1)
		s.publish()
		s.healing.Add(1)
		time.AfterFunc(s.heal, func() {
			defer s.healing.Done()
			s.mu.Lock()
			defer s.mu.Unlock()
			s.allowed++
			s.publish()
		})
		return true, nil, nil
	})
}

// publish is the status write the watch delivers; s.mu is held.
func (s *pdbServer) publish() {
	if s.budgets != nil {
		s.budgets.observe(pdbAllowing(s.namespace, "web", s.allowed))
	}
}

// TestEvictorPacedByBudget: 30 pods behind a PDB that allows 3 disruptions
// at a time. Paced by the PDB's status, the drain asks exactly once per
// pod and is never refused; on its timer (the drain without the watch)
// the same drain is refused again and again.
func TestEvictorPacedByBudget(t *testing.T) {
	run := func(paced bool) *pdbServer {
		cs := fake.NewClientset()
		s := &pdbServer{allowed: 3, heal: 5 * time.Millisecond, namespace: "apps"}
		if paced {
			s.budgets = newBudgets()
			s.budgets.observe(pdbAllowing("apps", "web", 3))
		}
		s.install(cs)
		var targets []evictTarget
		for i := range 30 {
			targets = append(targets, evictTarget{Namespace: "apps", Name: fmt.Sprintf("web-%d", i), PDBs: []string{"apps/web"}})
		}
		var evicted []string
		var mu sync.Mutex
		ev := &evictor{
			Client: cs, Concurrency: 8, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
			Budgets:   s.budgets,
			OnEvicted: func(t evictTarget) { mu.Lock(); evicted = append(evicted, t.key()); mu.Unlock() },
		}
		if paced {
			// The watch never misses a status here: a timer that fired
			// would be an attempt the budget did not allow.
			ev.MaxBackoff = time.Minute
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if lastErr := ev.Run(ctx, targets); len(lastErr) != 0 {
			t.Fatalf("paced %v: not evicted: %v", paced, lastErr)
		}
		s.healing.Wait()
		sort.Strings(evicted)
		if len(evicted) != 30 {
			t.Fatalf("paced %v: %d evicted, want 30", paced, len(evicted))
		}
		return s
	}
	if s := run(true); s.refusals.Load() != 0 || s.accepted.Load() != 30 {
		t.Errorf("paced: %d refusals and %d accepted; want 0 and 30", s.refusals.Load(), s.accepted.Load())
	}
	if s := run(false); s.refusals.Load() == 0 {
		t.Errorf("on the timer: no refusal; the test no longer shows what pacing saves")
	}
}

// TestEvictorProbesOncePerPDB: 30 pods wait on a PDB that allows no
// disruption for 20 of the drain's MaxBackoff, and no status comes (as
// when the watch missed one). One pod at a time asks the server when the
// wait times out, so the refusals are at most one per MaxBackoff, not one
// per pod; once the PDB allows them, every pod is evicted.
func TestEvictorProbesOncePerPDB(t *testing.T) {
	const backoff, windows = 5 * time.Millisecond, 20
	cs := fake.NewClientset()
	s := &pdbServer{allowed: 0, heal: time.Millisecond, namespace: "apps"}
	s.install(cs)
	b := newBudgets()
	b.observe(pdbAllowing("apps", "web", 0))
	// The PDB allows the pods after windows x backoff, and no status says
	// so: only a probe can find out.
	time.AfterFunc(windows*backoff, func() { s.mu.Lock(); s.allowed = 30; s.mu.Unlock() })
	var targets []evictTarget
	for i := range 30 {
		targets = append(targets, evictTarget{Namespace: "apps", Name: fmt.Sprintf("web-%d", i), PDBs: []string{"apps/web"}})
	}
	ev := &evictor{Client: cs, Concurrency: 8, InitialBackoff: time.Millisecond, MaxBackoff: backoff, Budgets: b}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if lastErr := ev.Run(ctx, targets); len(lastErr) != 0 {
		t.Fatalf("not evicted: %v", lastErr)
	}
	s.healing.Wait()
	// Each probe follows a full MaxBackoff without an answer, so the
	// windows bound the probes; one more may start as the PDB heals.
	t.Logf("%d refusals while the PDB allowed nothing for %d x MaxBackoff", s.refusals.Load(), windows)
	if got := s.refusals.Load(); got > windows+1 {
		t.Errorf("%d refusals in %d waits of MaxBackoff; want at most one per wait (the pods waiting on one PDB probe it one at a time)", got, windows)
	}
	if got := s.accepted.Load(); got != 30 {
		t.Errorf("%d evictions accepted, want 30", got)
	}
}

// TestWatchBudgets: the pacer follows the PDBs' statuses through a watch,
// and is off (nil) when the caller may not watch PDBs.
func TestWatchBudgets(t *testing.T) {
	t.Run("watched", func(t *testing.T) {
		cs := fake.NewClientset(pdbAllowing("apps", "web", 0))
		dAllowAll(cs)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b, stop := watchBudgets(ctx, cs)
		defer stop()
		if b == nil {
			t.Fatal("no pacer though the watch is allowed")
		}
		_, _, _, changed := b.take("apps/web")
		if changed == nil {
			t.Fatal("the listed status (0 allowed) reserved an attempt")
		}
		if _, err := cs.PolicyV1().PodDisruptionBudgets("apps").UpdateStatus(ctx, pdbAllowing("apps", "web", 1), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-time.After(30 * time.Second):
			t.Fatal("the new status never reached the pacer")
		}
		if reserved, _, _, _ := b.take("apps/web"); !reserved {
			t.Error("the status allows 1; take refused")
		}
	})
}

// TestPreflightPDBWatch: when pods to evict have a PDB, the preflight asks
// whether the caller may watch PDBs, among its other reviews. Allowed, the
// drain paces by their status; refused, nothing is blocked or warned and
// the drain makes no PDB watch (the evictor retries on its timer).
func TestPreflightPDBWatch(t *testing.T) {
	for _, allowed := range []bool{true, false} {
		cs := fake.NewClientset()
		o, _, _ := newDTestDrain(cs)
		if !allowed {
			dAllowAll(cs, "watch poddisruptionbudgets")
		}
		plan := &Plan{PDBs: []cluster.PDBVerdict{{}}}
		warnings := o.preflight(context.Background(), plan)
		if len(warnings) > 0 || plan.Refused || len(plan.Blockers) > 0 {
			t.Errorf("watch allowed %v: warnings %q, refused %v, blockers %+v; want none", allowed, warnings, plan.Refused, plan.Blockers)
		}
		if o.watchPDBs != allowed {
			t.Errorf("watch allowed %v: watchPDBs = %v", allowed, o.watchPDBs)
		}
		reviews := pdbReviews(cs)
		if len(reviews) != 1 {
			t.Fatalf("watch allowed %v: %d reviews of the PDB watch, want 1", allowed, len(reviews))
		}
		if ra := reviews[0].Spec.ResourceAttributes; ra.Group != policyv1.GroupName || ra.Verb != "watch" {
			t.Errorf("asked %+v, want watch of policy poddisruptionbudgets", ra)
		}
	}
	cs := fake.NewClientset()
	o, _, _ := newDTestDrain(cs)
	o.preflight(context.Background(), &Plan{})
	if len(pdbReviews(cs)) > 0 {
		t.Error("asked to watch PDBs with no pod behind one")
	}
}

// pdbReviews are the SelfSubjectAccessReviews of PDBs cs was sent.
func pdbReviews(cs *fake.Clientset) []*authorizationv1.SelfSubjectAccessReview {
	var out []*authorizationv1.SelfSubjectAccessReview
	for _, a := range cs.Actions() {
		c, ok := a.(k8stesting.CreateAction)
		if !ok {
			continue
		}
		if r, ok := c.GetObject().(*authorizationv1.SelfSubjectAccessReview); ok && r.Spec.ResourceAttributes.Resource == "poddisruptionbudgets" {
			out = append(out, r)
		}
	}
	return out

}

// TestEvictorNamesPDBItWaitedOn: pods that wait on a PDB allowing nothing
// without ever asking the server (one probe speaks for all of them) are
// reported, when the drain ends, as held by that PDB, not as untried.
func TestEvictorNamesPDBItWaitedOn(t *testing.T) {
	cs := fake.NewClientset()
	s := &pdbServer{allowed: 0, namespace: "apps"}
	s.install(cs)
	b := newBudgets()
	b.observe(pdbAllowing("apps", "web", 0))
	var targets []evictTarget
	for i := range 4 {
		targets = append(targets, evictTarget{Namespace: "apps", Name: fmt.Sprintf("web-%d", i), PDBs: []string{"apps/web"}})
	}
	// MaxBackoff outlasts the drain: no pod probes, none is refused.
	ev := &evictor{Client: cs, Concurrency: 4, InitialBackoff: time.Millisecond, MaxBackoff: time.Hour, Budgets: b}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	lastErr := ev.Run(ctx, targets)
	for _, tg := range targets {
		if got := lastErr[tg.key()]; !strings.Contains(got, "PDB apps/web") {
			t.Errorf("%s: last error %q does not name the PDB it waited on", tg.Name, got)
		}
	}
	if got := s.refusals.Load(); got != 0 {
		t.Errorf("%d refusals; the pods should have waited for a status", got)
	}
}

// TestAwaitBudgetSaysWhatHoldsThePod: a pod held back by the evictions in
// flight under a PDB that still allows more is told so, not that the PDB
// allows no more disruptions; once the status allows none, it is told that,
// and the summary's reason follows.
func TestAwaitBudgetSaysWhatHoldsThePod(t *testing.T) {
	b := newBudgets()
	const key = "apps/web"
	b.observe(pdbAllowing("apps", "web", 50))
	for range inflightPerPDB {
		if reserved, _, _, _ := b.take(key); !reserved {
			t.Fatal("the status allows 50; take refused")
		}
	}
	var mu sync.Mutex
	var said []string
	ev := &evictor{Client: fake.NewClientset(), Concurrency: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Hour, Budgets: b,
		OnWait: func(_ evictTarget, pdb, msg string) {
			mu.Lock()
			defer mu.Unlock()
			said = append(said, pdb+" "+msg)
		}}
	ev.defaults()
	target := evictTarget{Namespace: "apps", Name: "web-0", PDBs: []string{key}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() {
		proceed, _ := ev.awaitBudget(ctx, target, key)
		done <- proceed
	}()
	waitSaid := func(n int) string {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			mu.Lock()
			if len(said) >= n {
				s := said[n-1]
				mu.Unlock()
				return s
			}
			mu.Unlock()
		}
		t.Fatalf("the pod said %d thing(s), want %d", len(said), n)
		return ""
	}
	if got := waitSaid(1); !strings.Contains(got, "evictions under it are in flight") || strings.Contains(got, "no more disruptions") {
		t.Errorf("held by the attempts in flight, the pod said %q", got)
	}
	ev.mu.Lock()
	reason := ev.lastErr[target.key()]
	ev.mu.Unlock()
	if got := reason; !strings.Contains(got, "evictions in flight") {
		t.Errorf("reason while held by the attempts in flight: %q", got)
	}
	b.observe(pdbAllowing("apps", "web", 0))
	if got := waitSaid(2); !strings.Contains(got, "allows no more disruptions") {
		t.Errorf("with the status at 0, the pod said %q", got)
	}
	cancel()
	if <-done {
		t.Error("the pod proceeded though nothing allowed it")
	}
	mu.Lock()
	defer mu.Unlock()
	if got := ev.lastErr[target.key()]; !strings.Contains(got, "PDB apps/web allows no more disruptions") {
		t.Errorf("reason after the status fell to 0: %q", got)
	}
	if len(said) != 2 {
		t.Errorf("the pod said %d things, want one per reason: %q", len(said), said)
	}
}
