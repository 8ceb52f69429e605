package drain

import (
	"context"
	"strconv"
	"sync"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// budgets paces the evictions behind each PodDisruptionBudget by the
// status the disruption controller (and every accepted eviction) writes
// to it. A pod behind a PDB is tried only while the latest status allows
// a disruption that no attempt of this drain has taken yet, and otherwise
// waits for the next status.
//
// Without it, every pod refused by a PDB retries on a timer: after each
// wave hundreds of pods ask again, take the eviction slots, and all but a
// few are refused; the next wave waits for them.
//
// At most inflightPerPDB attempts per PDB are in flight: the API server
// writes the PDB's status with every accepted eviction, so concurrent
// evictions under one PDB conflict, and the server retries each conflict
// after half a second, 20 times (evictCallTimeout leaves it the time).
type budgets struct {
	mu sync.Mutex
	m  map[string]*budget
}

type budget struct {
	// status is the disruptions the latest status allows; inflight the
	// attempts taken and not yet answered. An answer comes after the
	// status write of an accepted eviction, so status - inflight is what
	// is left to take.
	status, inflight int
	// unpaced: the PDB is gone, nothing refuses its pods.
	unpaced bool
	// changed is closed when a status or an answer arrives; heard is when
	// the last one did.
	changed chan struct{}
	heard   time.Time
}

// inflightPerPDB bounds the attempts in flight under one PDB. Under one
// PDB the server's status writes, not the budget, set the pace: on the
// 500-pod bench (test/bench/drain, maxUnavailable 10%) the PDB never fell
// below 33 disruptions allowed. Measured there with the 5 s request
// timeout: 1 in flight 123-132 s, 2: 104 s, 4: 97 s, 20: 103 s with 161
// requests cut off by the timeout. Later, with 4 in flight, 52-92 s, the
// bench's reference evictor (no timeout) 53-80 s with 20 in flight, 69 s
// with 4. With evictCallTimeout above the server's retries and 20 in
// flight, 45-49 s where the same run took 52-60 s with 4 and the timeout.
const inflightPerPDB = 20

func newBudgets() *budgets { return &budgets{m: map[string]*budget{}} }

// with runs f on key's budget under the lock.
func (b *budgets) with(key string, f func(s *budget)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.m[key]
	if s == nil {
		s = &budget{changed: make(chan struct{})}
		b.m[key] = s
	}
	f(s)
}

// wake wakes the pods waiting on s.
func (s *budget) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
	s.heard = time.Now()
}

// observe records a PDB's status and wakes the pods waiting for it.
func (b *budgets) observe(p *policyv1.PodDisruptionBudget) {
	b.with(p.Namespace+"/"+p.Name, func(s *budget) {
		s.status, s.unpaced = int(p.Status.DisruptionsAllowed), false
		s.wake()
	})
}

// forget unpaces a deleted PDB's pods: nothing refuses them any more.
func (b *budgets) forget(namespace, name string) {
	b.with(namespace+"/"+name, func(s *budget) {
		s.unpaced = true
		s.wake()
	})
}

// take reserves an attempt under the PDB key (reserved; done returns it)
// when the latest status allows a disruption no attempt in flight holds
// and fewer than inflightPerPDB are in flight, or says the PDB is gone
// (unpaced). Otherwise it returns a channel closed at the next status or
// answer, and whether the attempts in flight (full), not the status, hold
// the pod back.
func (b *budgets) take(key string) (reserved, unpaced, full bool, changed <-chan struct{}) {
	b.with(key, func(s *budget) {
		switch {
		case s.unpaced:
			unpaced = true
		case s.inflight < inflightPerPDB && s.status-s.inflight > 0:
			s.inflight++
			reserved = true
		default:
			full = s.inflight >= inflightPerPDB && s.status-s.inflight > 0
			changed = s.changed
		}
	})
	return reserved, unpaced, full, changed
}

// done records the answer to an attempt take reserved.
func (b *budgets) done(key string) {
	b.with(key, func(s *budget) {
		s.inflight--
		s.wake()
	})
}

// probe reserves an attempt under the PDB key whatever its status says,
// when no attempt is in flight there and nothing was heard of it (a status
// or an answer) for quiet: a pod whose wait for a status timed out asks
// the server once for all the pods waiting on that PDB, so a PDB that
// stays at zero costs one refused call per quiet, not one per waiting pod.
func (b *budgets) probe(key string, now time.Time, quiet time.Duration) (reserved bool) {
	b.with(key, func(s *budget) {
		if s.inflight == 0 && !now.Before(s.heard.Add(quiet)) {
			s.inflight++
			reserved = true
		}
	})
	return reserved
}

// refused records that the API server refused an attempt on the PDB key:
// the status the attempt was taken on is spent, whatever it said.
func (b *budgets) refused(key string) {
	b.with(key, func(s *budget) { s.status = 0 })
}

// budgetSyncTimeout bounds the wait for the PDB watch's first list.
const budgetSyncTimeout = 10 * time.Second

// watchBudgets watches every PodDisruptionBudget (through watchClient,
// which has no request timeout) and returns the pacer and the function
// that ends the watch, or nil when the watch does not start: the evictor
// then retries refused pods on its timer. The preflight has asked whether
// the caller may watch them.
func watchBudgets(ctx context.Context, watchClient kubernetes.Interface) (*budgets, context.CancelFunc) {
	b := newBudgets()
	watchCtx, stop := context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactory(watchClient, 0)
	inf := factory.Policy().V1().PodDisruptionBudgets().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*policyv1.PodDisruptionBudget); ok {
				b.observe(p)
			}
		},
		UpdateFunc: func(_, obj any) {
			if p, ok := obj.(*policyv1.PodDisruptionBudget); ok {
				b.observe(p)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*policyv1.PodDisruptionBudget); ok {
				b.forget(p.Namespace, p.Name)
			}
		},
	})
	if err != nil {
		stop()
		return nil, func() {}
	}
	factory.Start(watchCtx.Done())
	syncCtx, cancel := context.WithTimeout(watchCtx, budgetSyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		stop()
		return nil, func() {}
	}
	return b, stop
}

// awaitBudget waits until the PDB pdb allows an attempt (took: one was
// reserved, for budgets.done). A status the watch missed must not stall
// the drain: after MaxBackoff without one, the pod probes the server if no
// attempt under pdb is in flight, else it waits for that attempt's answer.
// proceed is false when retry ended first.
func (e *evictor) awaitBudget(retry context.Context, t evictTarget, pdb string) (proceed, took bool) {
	said, saidErr := "", ""
	for {
		reserved, unpaced, full, changed := e.Budgets.take(pdb)
		if reserved || unpaced {
			return true, reserved
		}
		// A pod that waits without asking the server has no refusal of its
		// own: the drain's summary names the PDB it waited on, and what
		// held it back, said again when that changes.
		why, wait := "allows no more disruptions now; the pod is evicted when its status allows one",
			"PDB "+pdb+" allows no more disruptions; the pod waited for its status to allow one"
		if full {
			why, wait = "allows more disruptions, but "+strconv.Itoa(inflightPerPDB)+" evictions under it are in flight (the API server writes its status with each); the pod is evicted when one is answered",
				"PDB "+pdb+" had "+strconv.Itoa(inflightPerPDB)+" evictions in flight; the pod waited for one to be answered"
		}
		if why != said {
			e.replaceErr(t, saidErr, wait)
			e.OnWait(t, pdb, "it "+why)
			said, saidErr = why, wait
		}
		timer := time.NewTimer(e.MaxBackoff)
		select {
		case <-changed:
			timer.Stop()
		case <-timer.C:
			if e.Budgets.probe(pdb, time.Now(), e.MaxBackoff) {
				return true, true
			}
		case <-retry.Done():
			timer.Stop()
			return false, false
		}
	}
}
