package drain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	policyv1client "k8s.io/client-go/kubernetes/typed/policy/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

var dPodsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// pdbRefusal is the 429 the eviction API returns when PDB name refuses.
func dPDBRefusal(name string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: 429, Reason: metav1.StatusReasonTooManyRequests,
		Message: "Cannot evict pod as it would violate the pod's disruption budget.",
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type: policyv1.DisruptionBudgetCause, Message: "The disruption budget " + name + " needs 2 healthy pods and has 2 currently",
		}}},
	}}
}

// dFakeClock is a clock whose Sleep advances time at once and records how
// long it was asked to sleep.
type dFakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	// onSleep, when set, runs after each sleep with the number of sleeps
	// so far.
	onSleep func(n int)
}

func newDFakeClock() *dFakeClock {
	return &dFakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *dFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *dFakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	n := len(c.sleeps)
	hook := c.onSleep
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return ctx.Err()
}

type dWaitCall struct{ pdb, pod, message string }

// evictionScript makes the fake clientset answer evictions of each pod
// with the scripted errors in order, then accept and delete the pod.
func dEvictionScript(cs *fake.Clientset, script map[string][]error) *atomic.Int32 {
	var calls atomic.Int32
	var mu sync.Mutex
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		calls.Add(1)
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		key := ev.Namespace + "/" + ev.Name
		mu.Lock()
		errs := script[key]
		if len(errs) > 0 {
			script[key] = errs[1:]
		}
		mu.Unlock()
		if len(errs) > 0 && errs[0] != nil {
			return true, nil, errs[0]
		}
		return true, nil, cs.Tracker().Delete(dPodsGVR, ev.Namespace, ev.Name)
	})
	return &calls
}

func newDTestEvictor(cs *fake.Clientset, clock *dFakeClock) (*evictor, *[]dWaitCall, *[]string) {
	var mu sync.Mutex
	waits := &[]dWaitCall{}
	evicted := &[]string{}
	return &evictor{
		Client: cs, Concurrency: 4, InitialBackoff: time.Second, MaxBackoff: 10 * time.Second,
		Now: clock.Now, Sleep: clock.Sleep,
		OnWait: func(t evictTarget, pdb, msg string) {
			mu.Lock()
			defer mu.Unlock()
			*waits = append(*waits, dWaitCall{pdb, t.key(), msg})
		},
		OnEvicted: func(t evictTarget) {
			mu.Lock()
			defer mu.Unlock()
			*evicted = append(*evicted, t.key())
		},
	}, waits, evicted
}

func TestEvictorBacksOffOn429(t *testing.T) {
	cs := fake.NewClientset(dPod("apps", "web-1", "n1", "web").Obj())
	calls := dEvictionScript(cs, map[string][]error{"apps/web-1": {dPDBRefusal("web-pdb"), dPDBRefusal("web-pdb")}})
	clock := newDFakeClock()
	ev, waits, evicted := newDTestEvictor(cs, clock)

	lastErr := ev.Run(context.Background(), []evictTarget{{Namespace: "apps", Name: "web-1", Node: "n1", PDBs: []string{"apps/web-pdb"}}})

	if len(lastErr) != 0 {
		t.Errorf("lastErr = %v, want none", lastErr)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("eviction calls = %d, want 3", got)
	}
	if want := []time.Duration{time.Second, 2 * time.Second}; !reflect.DeepEqual(clock.sleeps, want) {
		t.Errorf("backoff = %v, want %v (doubling per refusal)", clock.sleeps, want)
	}
	msg := "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"
	if want := []dWaitCall{{"apps/web-pdb", "apps/web-1", msg}, {"apps/web-pdb", "apps/web-1", msg}}; !reflect.DeepEqual(*waits, want) {
		t.Errorf("waits = %+v, want %+v", *waits, want)
	}
	if want := []string{"apps/web-1"}; !reflect.DeepEqual(*evicted, want) {
		t.Errorf("evicted = %v, want %v", *evicted, want)
	}
	if _, err := cs.CoreV1().Pods("apps").Get(context.Background(), "web-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod still there after eviction: %v", err)
	}
}

func TestEvictorBackoffIsCapped(t *testing.T) {
	cs := fake.NewClientset(dPod("apps", "web-1", "n1", "web").Obj())
	refusals := make([]error, 6)
	for i := range refusals {
		refusals[i] = dPDBRefusal("web-pdb")
	}
	dEvictionScript(cs, map[string][]error{"apps/web-1": refusals})
	clock := newDFakeClock()
	ev, _, _ := newDTestEvictor(cs, clock)
	ev.MaxBackoff = 5 * time.Second
	ev.Run(context.Background(), []evictTarget{{Namespace: "apps", Name: "web-1", PDBs: []string{"apps/web-pdb"}}})
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
	if !reflect.DeepEqual(clock.sleeps, want) {
		t.Errorf("backoff = %v, want %v", clock.sleeps, want)
	}
}

func TestEvictorReportsPerPDB(t *testing.T) {
	cs := fake.NewClientset(
		dPod("apps", "a-1", "n1", "a").Obj(), dPod("apps", "b-1", "n1", "b").Obj(), dPod("apps", "c-1", "n2", "c").Obj(),
	)
	dEvictionScript(cs, map[string][]error{
		"apps/a-1": {dPDBRefusal("a-pdb")},
		// The target does not know its PDB: the name comes from the cause.
		"apps/b-1": {dPDBRefusal("b-pdb")},
		// API priority and fairness throttling names no PDB.
		"apps/c-1": {apierrors.NewTooManyRequests("too many requests, please try again later", 1)},
	})
	clock := newDFakeClock()
	ev, waits, evicted := newDTestEvictor(cs, clock)
	lastErr := ev.Run(context.Background(), []evictTarget{
		{Namespace: "apps", Name: "a-1", PDBs: []string{"apps/a-pdb"}},
		{Namespace: "apps", Name: "b-1"},
		{Namespace: "apps", Name: "c-1"},
	})
	if len(lastErr) != 0 {
		t.Errorf("lastErr = %v, want none", lastErr)
	}
	got := map[string]string{}
	for _, w := range *waits {
		got[w.pod] = w.pdb
	}
	if want := map[string]string{"apps/a-1": "apps/a-pdb", "apps/b-1": "apps/b-pdb", "apps/c-1": ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("PDB per waiting pod = %v, want %v", got, want)
	}
	sort.Strings(*evicted)
	if want := []string{"apps/a-1", "apps/b-1", "apps/c-1"}; !reflect.DeepEqual(*evicted, want) {
		t.Errorf("evicted = %v, want %v", *evicted, want)
	}
}

func TestEvictorSharesBackoffPerPDB(t *testing.T) {
	// Pods behind one PDB share its schedule: refusals in the same round
	// (before the next attempt is due) count once.
	clock := newDFakeClock()
	ev, _, _ := newDTestEvictor(fake.NewClientset(), clock)
	ev.defaults()
	key := "pdb:apps/w-pdb"
	if d := ev.wait(key, true); d != time.Second {
		t.Errorf("first refusal waits %v, want 1s", d)
	}
	clock.now = clock.now.Add(300 * time.Millisecond)
	if d := ev.wait(key, true); d != 700*time.Millisecond {
		t.Errorf("second pod refused in the same round waits %v, want the rest of the round, 700ms", d)
	}
	if d := ev.wait(key, false); d != 700*time.Millisecond {
		t.Errorf("a third pod waits %v before trying, want 700ms", d)
	}
	clock.now = clock.now.Add(700 * time.Millisecond)
	if d := ev.wait(key, true); d != 2*time.Second {
		t.Errorf("refusal in the next round waits %v, want 2s", d)
	}
	if d := ev.wait("pdb:apps/other", false); d > 0 {
		t.Errorf("another PDB waits %v, want 0: backoff is per PDB", d)
	}
	ev.reset(key)
	if d := ev.wait(key, true); d != time.Second {
		t.Errorf("after a success the backoff restarts at %v, want 1s", d)
	}
}

func TestEvictorStopsAtDeadline(t *testing.T) {
	cs := fake.NewClientset(dPod("apps", "w-1", "n1", "w").Obj())
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return a.GetSubresource() == "eviction", nil, dPDBRefusal("w-pdb")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := newDFakeClock()
	clock.onSleep = func(n int) {
		if n == 3 {
			cancel()
		}
	}
	ev, _, evicted := newDTestEvictor(cs, clock)
	lastErr := ev.Run(ctx, []evictTarget{{Namespace: "apps", Name: "w-1", PDBs: []string{"apps/w-pdb"}}})
	want := map[string]string{"apps/w-1": "PDB apps/w-pdb refuses: The disruption budget w-pdb needs 2 healthy pods and has 2 currently"}
	if !reflect.DeepEqual(lastErr, want) {
		t.Errorf("lastErr = %q, want %q", lastErr, want)
	}
	if len(*evicted) != 0 {
		t.Errorf("evicted = %v, want none", *evicted)
	}
}

func TestEvictorOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantEvicted bool
		wantErr     string
		wantSleeps  int
	}{
		{name: "already gone", err: apierrors.NewNotFound(dPodsGVR.GroupResource(), "w-1"), wantEvicted: true},
		{name: "replaced by a pod of the same name", err: apierrors.NewConflict(dPodsGVR.GroupResource(), "w-1", errors.New("the UID in the precondition (uid-1) does not match the UID in record (uid-2). The object might have been deleted and then recreated")), wantEvicted: true},
		{name: "forbidden is final", err: apierrors.NewForbidden(dPodsGVR.GroupResource(), "w-1", nil), wantErr: `pods "w-1" is forbidden: <nil>`},
		{name: "namespace terminating: its controller deletes the pod", err: terminatingNamespace("apps"), wantEvicted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset()
			cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				return a.GetSubresource() == "eviction", nil, tt.err
			})
			clock := newDFakeClock()
			ev, _, evicted := newDTestEvictor(cs, clock)
			lastErr := ev.Run(context.Background(), []evictTarget{{Namespace: "apps", Name: "w-1", UID: "uid-1"}})
			if got := len(*evicted) == 1; got != tt.wantEvicted {
				t.Errorf("evicted = %v, want %v", *evicted, tt.wantEvicted)
			}
			if lastErr["apps/w-1"] != tt.wantErr {
				t.Errorf("lastErr = %q, want %q", lastErr["apps/w-1"], tt.wantErr)
			}
			if len(clock.sleeps) != tt.wantSleeps {
				t.Errorf("sleeps = %v, want %d", clock.sleeps, tt.wantSleeps)
			}
		})
	}
}

// dPDBConflict is the 409 of concurrent evictions under one PDB.
func dPDBConflict(name string) error {
	return apierrors.NewConflict(schema.GroupResource{Group: "policy", Resource: "poddisruptionbudgets"}, name,
		errors.New("the object has been modified; please apply your changes to the latest version and try again"))
}

// TestEvictorRetriesConflicts: a 409 on the PDB is not an accepted
// eviction; it is retried on the PDB's backoff until accepted.
func TestEvictorRetriesConflicts(t *testing.T) {
	tests := []struct {
		name       string
		script     []error
		wantCalls  int32
		wantWaits  int
		wantSleeps int
	}{
		{name: "one conflict", script: []error{dPDBConflict("bulk")}, wantCalls: 2, wantWaits: 1, wantSleeps: 1},
		{name: "conflicts then a 429 then accepted", script: []error{dPDBConflict("bulk"), dPDBConflict("bulk"), dPDBRefusal("bulk")}, wantCalls: 4, wantWaits: 3, wantSleeps: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset(testutil.Pod("apps", "w-1").Obj())
			calls := dEvictionScript(cs, map[string][]error{"apps/w-1": slices.Clone(tt.script)})
			clock := newDFakeClock()
			ev, waits, evicted := newDTestEvictor(cs, clock)
			var evictedAtCall []int32
			ev.OnEvicted = func(evictTarget) { evictedAtCall = append(evictedAtCall, calls.Load()) }
			lastErr := ev.Run(context.Background(), []evictTarget{{Namespace: "apps", Name: "w-1", PDBs: []string{"apps/bulk"}}})
			if calls.Load() != tt.wantCalls || len(evictedAtCall) != 1 || evictedAtCall[0] != tt.wantCalls {
				t.Errorf("calls = %d, evicted at calls %v; want %d calls, evicted once, after the last", calls.Load(), evictedAtCall, tt.wantCalls)
			}
			if len(*evicted) != 0 {
				t.Errorf("evicted = %v", *evicted)
			}
			if len(*waits) != tt.wantWaits || (*waits)[0].pdb != "apps/bulk" || !strings.Contains((*waits)[0].message, "conflict") {
				t.Errorf("waits = %+v, want %d, the first a conflict on apps/bulk", *waits, tt.wantWaits)
			}
			if len(clock.sleeps) != tt.wantSleeps || len(lastErr) != 0 {
				t.Errorf("sleeps = %v, lastErr = %v; want %d sleeps, no error left", clock.sleeps, lastErr, tt.wantSleeps)
			}
		})
	}
}

func TestEvictorSendsUIDPrecondition(t *testing.T) {
	cs := fake.NewClientset()
	var got *policyv1.Eviction
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		got = a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		return true, nil, nil
	})
	ev, _, _ := newDTestEvictor(cs, newDFakeClock())
	ev.Run(context.Background(), []evictTarget{{Namespace: "apps", Name: "w-1", UID: "uid-1"}})
	if got == nil || got.DeleteOptions == nil || got.DeleteOptions.Preconditions == nil || *got.DeleteOptions.Preconditions.UID != "uid-1" {
		t.Fatalf("eviction = %+v, want a UID precondition uid-1", got)
	}
}

// watchedClientset returns a fake clientset whose pod watches are served
// by its tracker, and a flag set once a watch is open.
func dWatchedClientset(objs ...runtime.Object) (*fake.Clientset, *atomic.Bool) {
	cs := fake.NewClientset(objs...)
	var watching atomic.Bool
	cs.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := cs.Tracker().Watch(dPodsGVR, a.GetNamespace())
		watching.Store(true)
		return true, w, err
	})
	return cs, &watching
}

func TestGoneWaiter(t *testing.T) {
	cs, watching := dWatchedClientset(
		dPod("apps", "a", "n1", "x").Obj(), dPod("apps", "b", "n1", "x").Obj(), dPod("apps", "c", "n2", "x").Obj(),
	)
	// Gone before the wait starts: found by the first LIST.
	if err := cs.Tracker().Delete(dPodsGVR, "apps", "a"); err != nil {
		t.Fatal(err)
	}
	// Replaced by a pod of the same name: a new UID.
	var mu sync.Mutex
	var gone []string
	w := &goneWaiter{Client: cs, OnGone: func(t evictTarget) {
		mu.Lock()
		defer mu.Unlock()
		gone = append(gone, t.key())
	}}
	done := make(chan error, 1)
	go func() {
		done <- w.Wait(context.Background(), "", []evictTarget{
			{Namespace: "apps", Name: "a", UID: "uid-apps-a"},
			{Namespace: "apps", Name: "b", UID: "uid-apps-b"},
			{Namespace: "apps", Name: "c", UID: "uid-apps-c"},
		})
	}()
	for !watching.Load() {
		time.Sleep(time.Millisecond)
	}
	if err := cs.Tracker().Delete(dPodsGVR, "apps", "b"); err != nil {
		t.Fatal(err)
	}
	replaced := dPod("apps", "c", "n3", "x").Pod()
	replaced.UID = "uid-new"
	if err := cs.Tracker().Update(dPodsGVR, replaced, "apps"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after every pod went")
	}
	if want := []string{"apps/a", "apps/b", "apps/c"}; !reflect.DeepEqual(gone, want) {
		t.Errorf("gone = %v, want %v", gone, want)
	}
}

func TestGoneWaiterStopsWithContext(t *testing.T) {
	cs, _ := dWatchedClientset(dPod("apps", "a", "n1", "x").Obj())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &goneWaiter{Client: cs}
	if err := w.Wait(ctx, "", []evictTarget{{Namespace: "apps", Name: "a", UID: "uid-apps-a"}}); err == nil {
		t.Fatal("Wait = nil with a cancelled context and a pod left")
	}
}

// drainFixture is a small cluster for Run: pod-2 has two workers, one
// already cordoned by someone else; pod-1 and pod-3 hold the other voters.
func dFixture(extra ...runtime.Object) []runtime.Object {
	objs := []runtime.Object{
		dCP("pod-1-cp-1", "pod-1").Obj(), dNode("pod-1-worker-1", "pod-1").Obj(),
		dCP("pod-2-cp-1", "pod-2").Obj(), dNode("pod-2-worker-1", "pod-2").Obj(), dNode("pod-2-worker-2", "pod-2").Cordoned().Obj(),
		dCP("pod-3-cp-1", "pod-3").Obj(),
		dEtcdPod("pod-1-cp-1").Obj(), dEtcdPod("pod-2-cp-1").Obj(), dEtcdPod("pod-3-cp-1").Obj(),
		dPod("apps", "web-1", "pod-2-worker-1", "web").Obj(),
		dPod("apps", "web-2", "pod-2-worker-2", "web").Obj(),
		dPod("apps", "web-3", "pod-1-worker-1", "web").Obj(),
		testutil.Pod("apps", "agent-1").NodeName("pod-2-worker-1").OwnedBy("DaemonSet", "agent").Phase(corev1.PodRunning).Obj(),
	}
	return append(objs, extra...)
}

// evictWhenWatched deletes evicted pods once a watch is open, and answers
// 429 before: the fake tracker, unlike the API server, replays nothing.
func dEvictWhenWatched(cs *fake.Clientset, watching *atomic.Bool, refuse map[string]bool) {
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		if refuse[ev.Name] {
			return true, nil, dPDBRefusal("web-pdb")
		}
		if !watching.Load() {
			return true, nil, apierrors.NewTooManyRequests("not watching yet", 0)
		}
		return true, nil, cs.Tracker().Delete(dPodsGVR, ev.Namespace, ev.Name)
	})
}

func newDTestDrain(cs *fake.Clientset) (*Options, *bytes.Buffer, *bytes.Buffer) {
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	o := NewOptions(nil, streams)
	o.client = cs
	dAllowAll(cs)
	o.who = "tester@host"
	o.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	o.Datacenter = "pod-2"
	return o, out, errOut
}

func TestDrainRun(t *testing.T) {
	cs, watching := dWatchedClientset(dFixture()...)
	dEvictWhenWatched(cs, watching, nil)
	o, out, errOut := newDTestDrain(cs)
	o.Output = cmdutil.OutputJSON
	if err := o.Run(context.Background()); err != nil {
		t.Fatalf("Run = %v\nstderr:\n%s", err, errOut)
	}
	var got struct {
		Plan    Plan    `json:"plan"`
		Summary Summary `json:"summary"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not the JSON document: %v\n%s", err, out)
	}
	s := got.Summary
	if s.Result != resultDone || s.Evicted != 2 || s.Skipped != 2 || len(s.Blocked) != 0 {
		t.Errorf("summary = %+v, want Done, 2 evicted, 2 skipped", s)
	}
	if !reflect.DeepEqual(s.Cordoned, []string{"pod-2-cp-1", "pod-2-worker-1"}) || !reflect.DeepEqual(s.AlreadyCordoned, []string{"pod-2-worker-2"}) {
		t.Errorf("cordoned = %v, already = %v", s.Cordoned, s.AlreadyCordoned)
	}
	for name, wantBy := range map[string]string{"pod-2-cp-1": "tester@host", "pod-2-worker-1": "tester@host", "pod-2-worker-2": ""} {
		n, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !n.Spec.Unschedulable {
			t.Errorf("node %s schedulable after drain", name)
		}
		if got := n.Annotations[AnnotationCordonedBy]; got != wantBy {
			t.Errorf("node %s cordoned-by = %q, want %q", name, got, wantBy)
		}
		if wantBy != "" && n.Annotations[AnnotationCordonedAt] != "2026-01-02T03:04:05Z" {
			t.Errorf("node %s cordoned-at = %q", name, n.Annotations[AnnotationCordonedAt])
		}
	}
	pods, _ := cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	left := []string{}
	for _, p := range pods.Items {
		left = append(left, p.Name)
	}
	sort.Strings(left)
	if want := []string{"agent-1", "etcd-pod-1-cp-1", "etcd-pod-2-cp-1", "etcd-pod-3-cp-1", "web-3"}; !reflect.DeepEqual(left, want) {
		t.Errorf("pods left = %v, want %v", left, want)
	}
	if !strings.Contains(errOut.String(), "pod-2-worker-2: drained, 1 pod(s) gone") {
		t.Errorf("stderr lacks per-node progress:\n%s", errOut)
	}
}

func TestDrainRunTimesOutOnBlockedPods(t *testing.T) {
	cs, watching := dWatchedClientset(dFixture()...)
	dEvictWhenWatched(cs, watching, map[string]bool{"web-1": true})
	o, out, errOut := newDTestDrain(cs)
	o.Timeout = 2 * time.Second
	err := o.Run(context.Background())
	var exit *cmdutil.ExitError
	ok := errors.As(err, &exit)
	if !ok || exit.Code != cmdutil.ExitFindings {
		t.Fatalf("Run = %v, want exit %d", err, cmdutil.ExitFindings)
	}
	if !strings.Contains(out.String(), "Drain of pod-2: TimedOut") || !strings.Contains(out.String(), "evicted 1/2, 1 gone, 0 not waited for, 1 remaining; 2 skipped") {
		t.Errorf("summary:\n%s", out)
	}
	if !regexp.MustCompile(`apps +web-1 +pod-2-worker-1 +remaining +PDB apps/web-pdb refuses: The disruption budget web-pdb needs 2 healthy pods`).MatchString(out.String()) {
		t.Errorf("summary does not say why web-1 is left:\n%s", out)
	}
	if !strings.Contains(errOut.String(), "waiting for PDB apps/web-pdb: The disruption budget web-pdb needs 2 healthy pods and has 2 currently (pod apps/web-1)") {
		t.Errorf("stderr lacks the PDB wait:\n%s", errOut)
	}
}

// TestDrainRunForbiddenEvictions: evictions RBAC refuses are final, so the
// drain ends Blocked as soon as the others are gone, not at --timeout.
func TestDrainRunForbiddenEvictions(t *testing.T) {
	cs, watching := dWatchedClientset(dFixture()...)
	dEvictWhenWatched(cs, watching, nil)
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" || a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction).Name != "web-1" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods/eviction"}, "web-1", errors.New("RBAC: not allowed"))
	})
	o, out, errOut := newDTestDrain(cs)
	o.Timeout = time.Hour // a run that waited for web-1 would never end
	done := make(chan error, 1)
	go func() { done <- o.Run(context.Background()) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("drain still waiting for a pod whose eviction is forbidden\nstderr:\n%s", errOut)
	}
	var exit *cmdutil.ExitError
	if !errors.As(err, &exit) || exit.Code != cmdutil.ExitFindings {
		t.Fatalf("Run = %v, want exit %d", err, cmdutil.ExitFindings)
	}
	if !strings.Contains(out.String(), "Drain of pod-2: Blocked") || !strings.Contains(out.String(), "evicted 1/2, 1 gone, 0 not waited for, 1 remaining; 2 skipped") {
		t.Errorf("summary:\n%s", out)
	}
	if !strings.Contains(out.String(), "pods/eviction") {
		t.Errorf("summary does not say the eviction of web-1 is forbidden:\n%s", out)
	}
}

// TestGoneWaiterForbiddenWatch: a forbidden watch ends the wait with an
// error that names the permission, instead of retrying until the timeout.
func TestGoneWaiterForbiddenWatch(t *testing.T) {
	cs := fake.NewClientset(dPod("apps", "a", "n1", "x").Obj())
	var watches atomic.Int32
	cs.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		watches.Add(1)
		return true, nil, apierrors.NewForbidden(dPodsGVR.GroupResource(), "", errors.New("RBAC: not allowed"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := (&goneWaiter{Client: cs}).Wait(ctx, "", []evictTarget{{Namespace: "apps", Name: "a", UID: "uid-apps-a"}})
	if !errors.Is(err, errWaitFailed) || !strings.Contains(err.Error(), "list and watch on pods") {
		t.Fatalf("Wait = %v, want a failure naming the permission", err)
	}
	if n := watches.Load(); n != 1 {
		t.Errorf("%d watches: a forbidden watch must not be retried", n)
	}
}

func TestDrainRunRefuses(t *testing.T) {
	tests := []struct {
		name    string
		dryRun  bool
		wantErr string
	}{
		{name: "drain", wantErr: "refusing to drain pod-2: 1 pod(s) have no controller: evicted, they are gone for good: pass --force to evict them anyway, or delete or re-create them under a controller"},
		{name: "dry run", dryRun: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, _ := dWatchedClientset(dFixture(testutil.Pod("apps", "debug").NodeName("pod-2-worker-1").Phase(corev1.PodRunning).Obj())...)
			o, out, _ := newDTestDrain(cs)
			if tt.dryRun {
				o.DryRun = dryRunClient
			}
			err := o.Run(context.Background())
			var exit *cmdutil.ExitError
			ok := errors.As(err, &exit)
			if !ok || exit.Code != ExitDrainRefused {
				t.Fatalf("Run = %v, want exit %d", err, ExitDrainRefused)
			}
			if got := ""; exit.Err != nil {
				got = exit.Err.Error()
				if got != tt.wantErr {
					t.Errorf("error = %q, want %q", got, tt.wantErr)
				}
			} else if tt.wantErr != "" {
				t.Errorf("no error message, want %q", tt.wantErr)
			}
			if !strings.Contains(out.String(), "REFUSED:") {
				t.Errorf("plan does not say REFUSED:\n%s", out)
			}
			n, _ := cs.CoreV1().Nodes().Get(context.Background(), "pod-2-worker-1", metav1.GetOptions{})
			if n.Spec.Unschedulable {
				t.Errorf("a refused drain cordoned a node")
			}
		})
	}
}

func TestDrainRunUnknownDatacenter(t *testing.T) {
	cs, _ := dWatchedClientset(dFixture()...)
	o, _, _ := newDTestDrain(cs)
	o.Datacenter = "pod-9"
	err := o.Run(context.Background())
	var exit *cmdutil.ExitError
	ok := errors.As(err, &exit)
	if !ok || exit.Code != cmdutil.ExitUsage {
		t.Fatalf("Run = %v, want exit %d", err, cmdutil.ExitUsage)
	}
	if !strings.Contains(err.Error(), "known datacenters: pod-1, pod-2, pod-3") {
		t.Errorf("error = %q, want the known datacenters", err)
	}
}

func TestUncordon(t *testing.T) {
	ours := dNode("pod-2-worker-1", "pod-2").Cordoned().Obj()
	ours.Annotations = map[string]string{AnnotationCordonedBy: "tester@host", AnnotationCordonedAt: "2026-01-02T03:04:05Z", "keep": "me"}
	theirs := dNode("pod-2-worker-2", "pod-2").Cordoned().Obj()
	other := dNode("pod-1-worker-1", "pod-1").Cordoned().Obj()
	other.Annotations = map[string]string{AnnotationCordonedBy: "tester@host"}
	tests := []struct {
		name          string
		all           bool
		wantSched     map[string]bool
		wantOut       string
		wantErrOutHas string
	}{
		{
			name:          "only our cordons",
			wantSched:     map[string]bool{"pod-2-worker-1": true, "pod-2-worker-2": false, "pod-1-worker-1": false},
			wantOut:       "node/pod-2-worker-1 uncordoned\n",
			wantErrOutHas: "left cordoned (not cordoned by kubectl dc drain; use --all): pod-2-worker-2",
		},
		{
			name:      "all",
			all:       true,
			wantSched: map[string]bool{"pod-2-worker-1": true, "pod-2-worker-2": true, "pod-1-worker-1": false},
			wantOut:   "node/pod-2-worker-1 uncordoned\nnode/pod-2-worker-2 uncordoned\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset(ours.DeepCopy(), theirs.DeepCopy(), other.DeepCopy())
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			o := NewUncordonOptions(nil, streams)
			o.client, o.Datacenter, o.All = cs, "pod-2", tt.all
			if err := o.Run(context.Background()); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout = %q, want %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut.String(), tt.wantErrOutHas) {
				t.Errorf("stderr = %q, want %q", errOut, tt.wantErrOutHas)
			}
			for name, sched := range tt.wantSched {
				n, _ := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
				if got := !n.Spec.Unschedulable; got != sched {
					t.Errorf("node %s schedulable = %v, want %v", name, got, sched)
				}
			}
			n, _ := cs.CoreV1().Nodes().Get(context.Background(), "pod-2-worker-1", metav1.GetOptions{})
			if want := map[string]string{"keep": "me"}; !reflect.DeepEqual(n.Annotations, want) {
				t.Errorf("annotations = %v, want %v", n.Annotations, want)
			}
		})
	}
	t.Run("unknown datacenter", func(t *testing.T) {
		cs := fake.NewClientset(ours.DeepCopy())
		streams, _, _, _ := genericiooptions.NewTestIOStreams()
		o := NewUncordonOptions(nil, streams)
		o.client, o.Datacenter = cs, "pod-9"
		err := o.Run(context.Background())
		if exit := (*cmdutil.ExitError)(nil); !errors.As(err, &exit) || exit.Code != cmdutil.ExitUsage {
			t.Fatalf("Run = %v, want exit %d", err, cmdutil.ExitUsage)
		}
	})
}

// terminatingNamespace is the API's answer to an eviction in a namespace
// being deleted.
func terminatingNamespace(ns string) error {
	err := apierrors.NewForbidden(dPodsGVR.GroupResource(), "w-1", fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type: corev1.NamespaceTerminatingCause, Message: "namespace " + ns + " is being terminated", Field: "metadata.namespace",
	})
	return err
}

// dAllowAll makes the fake API server allow every SelfSubjectAccessReview
// unless refuse names the check ("verb resource[/sub] namespace").
func dAllowAll(cs *fake.Clientset, refuse ...string) {
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		ra := r.Spec.ResourceAttributes
		name := ra.Verb + " " + ra.Resource
		if ra.Subresource != "" {
			name += "/" + ra.Subresource
		}
		name += " " + ra.Namespace
		r.Status.Allowed = !slices.Contains(refuse, strings.TrimSpace(name))
		return true, r, nil
	})
}

// dDeadlineClient records whether each eviction call's context has a
// deadline, and how far off: the fake clientset ignores contexts.
type dDeadlineClient struct {
	kubernetes.Interface
	mu        sync.Mutex
	deadlines []time.Duration // -1: none
}

func (c *dDeadlineClient) PolicyV1() policyv1client.PolicyV1Interface {
	return dDeadlinePolicy{c.Interface.PolicyV1(), c}
}

type dDeadlinePolicy struct {
	policyv1client.PolicyV1Interface
	c *dDeadlineClient
}

func (p dDeadlinePolicy) Evictions(ns string) policyv1client.EvictionInterface {
	return dDeadlineEvictions{p.PolicyV1Interface.Evictions(ns), p.c}
}

type dDeadlineEvictions struct {
	policyv1client.EvictionInterface
	c *dDeadlineClient
}

func (e dDeadlineEvictions) Evict(ctx context.Context, ev *policyv1.Eviction) error {
	d := time.Duration(-1)
	if at, ok := ctx.Deadline(); ok {
		d = time.Until(at)
	}
	e.c.mu.Lock()
	e.c.deadlines = append(e.c.deadlines, d)
	e.c.mu.Unlock()
	return e.EvictionInterface.Evict(ctx, ev)
}

// TestEvictorCallTimeout: CallTimeout bounds each eviction call (the
// drain's is above the API server's 10 s of conflict retries under a PDB,
// where the 5 s request timeout cut evictions off); 0 leaves the call to
// the client's own timeout.
func TestEvictorCallTimeout(t *testing.T) {
	if evictCallTimeout <= 10*time.Second {
		t.Errorf("evictCallTimeout = %s: the API server retries a PDB conflict for up to 10 s", evictCallTimeout)
	}
	for _, timeout := range []time.Duration{0, evictCallTimeout} {
		c := &dDeadlineClient{Interface: fake.NewClientset(testutil.Pod("apps", "w-1").Obj())}
		ev := &evictor{Client: c, CallTimeout: timeout}
		if lastErr := ev.Run(context.Background(), []evictTarget{{Namespace: "apps", Name: "w-1"}}); len(lastErr) != 0 {
			t.Fatalf("CallTimeout %s: %v", timeout, lastErr)
		}
		if len(c.deadlines) != 1 {
			t.Fatalf("CallTimeout %s: %d eviction calls, want 1", timeout, len(c.deadlines))
		}
		switch d := c.deadlines[0]; {
		case timeout == 0 && d != -1:
			t.Errorf("CallTimeout 0: the call has a deadline %s away, want none", d)
		case timeout > 0 && (d < 0 || d > timeout):
			t.Errorf("CallTimeout %s: the call's deadline is %s away, want one within it", timeout, d)
		}
	}
}

// TestCallTimeoutHonoursRequestTimeout: an eviction call is bounded by the
// user's --request-timeout when given (a duration or bare seconds), else by
// evictCallTimeout, which outlasts the server's own conflict retries.
func TestCallTimeoutHonoursRequestTimeout(t *testing.T) {
	for _, c := range []struct {
		flag string
		want time.Duration
	}{{"", evictCallTimeout}, {"0", evictCallTimeout}, {"2s", 2 * time.Second}, {"30", 30 * time.Second}, {"nonsense", evictCallTimeout}} {
		flags := genericclioptions.NewConfigFlags(false)
		flags.Timeout = &c.flag
		o := NewOptions(flags, genericiooptions.NewTestIOStreamsDiscard())
		if got := o.callTimeout(); got != c.want {
			t.Errorf("--request-timeout %q: eviction calls bounded by %s, want %s", c.flag, got, c.want)
		}
	}
}
