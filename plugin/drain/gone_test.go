package drain

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
)

// errLostAnswer is what the client sees when its request timeout ends a
// request the API server carries out anyway.
var errLostAnswer = errors.New(`Delete "https://127.0.0.1:6443/api/v1/namespaces/apps/pods/w-1": net/http: request canceled (Client.Timeout exceeded while awaiting headers)`)

// dUIDPrecondition is the 409 of a deletion whose UID precondition names a
// pod that was replaced by another of the same name.
func dUIDPrecondition() error {
	return apierrors.NewConflict(dPodsGVR.GroupResource(), "w-1", errors.New("Precondition failed: UID in precondition: uid-1, UID in object meta: uid-2"))
}

// TestEvictorSaysWhoRemovedThePod: every target ends in exactly one
// account of what became of it. A force deletion accepted is said as
// such; a pod found gone is said "already gone", never counted silently;
// and a pod found gone after an attempt whose answer was lost (the
// request timed out on the client while the API server deleted the pod)
// is said force-deleted with the lost answer, not taken for a pod that
// left by itself.
func TestEvictorSaysWhoRemovedThePod(t *testing.T) {
	tests := []struct {
		name string
		// force deletes with grace period 0; else the pod is evicted.
		force bool
		// script answers each call in turn; nil removes the pod and
		// accepts, errLostAnswer removes the pod and loses the answer.
		script     []error
		wantForced []string
		wantGone   []string
	}{
		{name: "force deletion accepted", force: true, script: []error{nil}, wantForced: []string{""}},
		{name: "answer lost, the retry finds the pod gone", force: true, script: []error{errLostAnswer, apierrors.NewNotFound(dPodsGVR.GroupResource(), "w-1")},
			wantForced: []string{errLostAnswer.Error()}},
		{name: "gone before the force deletion", force: true, script: []error{apierrors.NewNotFound(dPodsGVR.GroupResource(), "w-1")},
			wantGone: []string{"its force deletion found no pod: it was removed before the request reached it"}},
		{name: "replaced before the force deletion", force: true, script: []error{dUIDPrecondition()},
			wantGone: []string{"its force deletion found a new pod of that name (another UID), left alone"}},
		{name: "gone before the eviction", script: []error{apierrors.NewNotFound(dPodsGVR.GroupResource(), "w-1")},
			wantGone: []string{"its eviction found no pod"}},
		{name: "eviction answer lost, then not found", script: []error{apierrors.NewServerTimeout(dPodsGVR.GroupResource(), "create", 2), apierrors.NewNotFound(dPodsGVR.GroupResource(), "w-1")},
			wantGone: []string{"not found after a eviction whose answer was lost ("}},
		{name: "a PDB refusal after a lost answer: the pod was there", script: []error{apierrors.NewServerTimeout(dPodsGVR.GroupResource(), "create", 2), dPDBRefusal("web-pdb"), apierrors.NewNotFound(dPodsGVR.GroupResource(), "w-1")},
			wantGone: []string{"its eviction found no pod"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset(dPod("apps", "w-1", "n1", "x").Obj())
			var mu sync.Mutex
			calls := 0
			answer := func(a k8stesting.Action) (bool, runtime.Object, error) {
				mu.Lock()
				defer mu.Unlock()
				if calls >= len(tt.script) {
					t.Errorf("call %d not scripted", calls+1)
					return true, nil, errors.New("not scripted")
				}
				err := tt.script[calls]
				calls++
				if err == nil || errors.Is(err, errLostAnswer) {
					if derr := cs.Tracker().Delete(dPodsGVR, "apps", "w-1"); derr != nil {
						return true, nil, derr
					}
				}
				return true, nil, err
			}
			if tt.force {
				cs.PrependReactor("delete", "pods", answer)
			} else {
				cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
					if a.GetSubresource() != "eviction" {
						return false, nil, nil
					}
					return answer(a)
				})
			}
			ev, _, evicted := newDTestEvictor(cs, newDFakeClock())
			var forced, gone []string
			ev.OnForced = func(_ evictTarget, lost string) { forced = append(forced, lost) }
			ev.OnAlreadyGone = func(_ evictTarget, why string) { gone = append(gone, why) }
			ev.Run(context.Background(), []evictTarget{{Namespace: "apps", Name: "w-1", Node: "n1", UID: "uid-1", NotReady: tt.force, Force: tt.force}})
			if len(*evicted) != 1 {
				t.Errorf("evicted = %v, want the pod counted once", *evicted)
			}
			if calls != len(tt.script) {
				t.Errorf("%d calls, want %d", calls, len(tt.script))
			}
			if strings.Join(forced, "|") != strings.Join(tt.wantForced, "|") {
				t.Errorf("OnForced(lost) = %q, want %q", forced, tt.wantForced)
			}
			if len(gone) != len(tt.wantGone) {
				t.Fatalf("OnAlreadyGone = %q, want %q", gone, tt.wantGone)
			}
			for i, w := range tt.wantGone {
				if !strings.Contains(gone[i], w) {
					t.Errorf("OnAlreadyGone = %q, want %q", gone[i], w)
				}
			}
		})
	}
}

// dSlowDeletes answers pod deletions late: the pod is gone (the watch
// sees it) delay before the answer reaches the client, as on a loaded API
// server, and a context ended meanwhile cuts the answer off, as client-go
// does.
type dSlowDeletes struct {
	kubernetes.Interface
	delay time.Duration
}

func (c dSlowDeletes) CoreV1() corev1client.CoreV1Interface {
	return dSlowCore{c.Interface.CoreV1(), c.delay}
}

type dSlowCore struct {
	corev1client.CoreV1Interface
	delay time.Duration
}

func (c dSlowCore) Pods(ns string) corev1client.PodInterface {
	return dSlowPods{c.CoreV1Interface.Pods(ns), c.delay}
}

type dSlowPods struct {
	corev1client.PodInterface
	delay time.Duration
}

func (p dSlowPods) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	if err := p.PodInterface.Delete(ctx, name, opts); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("delete pod %s: %w", name, ctx.Err())
	case <-time.After(p.delay):
		return nil
	}
}

// dTerminatingOnNotReady is pod-2 with its worker NotReady and three pods
// of apps terminating there for 20s (an earlier drain evicted them).
func dTerminatingOnNotReady() []runtime.Object {
	objs := []runtime.Object{
		dCP("pod-1-cp-1", "pod-1").Obj(), dNode("pod-1-worker-1", "pod-1").Obj(),
		dCP("pod-2-cp-1", "pod-2").Obj(), dNode("pod-2-worker-1", "pod-2").NotReady().Obj(),
		dCP("pod-3-cp-1", "pod-3").Obj(),
		dEtcdPod("pod-1-cp-1").Obj(), dEtcdPod("pod-2-cp-1").Obj(), dEtcdPod("pod-3-cp-1").Obj(),
	}
	since, grace := metav1.NewTime(time.Now().Add(-20*time.Second)), int64(30)
	for _, name := range []string{"edge-1", "edge-2", "edge-3"} {
		p := dPod("apps", name, "pod-2-worker-1", "edge").Obj()
		p.(*corev1.Pod).DeletionTimestamp, p.(*corev1.Pod).DeletionGracePeriodSeconds = &since, &grace
		objs = append(objs, p)
	}
	return objs
}

// dDeleteWhenWatched refuses pod deletions until a watch is open: the fake
// tracker, unlike the API server, replays nothing to a watch that starts
// after the deletion. Prepend it last, so that it runs first.
func dDeleteWhenWatched(cs *fake.Clientset, watching *atomic.Bool) {
	cs.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		// Never block here: the fake clientset runs reactors under its
		// lock, and the watch could then never open. Refuse until it has.
		if !watching.Load() {
			return true, nil, apierrors.NewTooManyRequests("not watching yet", 0)
		}
		return false, nil, nil
	})
}

// TestDrainRunForceDeleteAnswerAfterTheWatch is the flake of
// TestDrainDatacenterDown ("2 force-deletions said, want 3" with "evicted
// 3/3, 3 gone"): the watch sees the last pod go before the answer to its
// force deletion arrives. The wait, with nothing left to wait for, must
// not cut that answer off: every force deletion is said.
func TestDrainRunForceDeleteAnswerAfterTheWatch(t *testing.T) {
	cs, watching := dWatchedClientset(dTerminatingOnNotReady()...)
	dDeleteWhenWatched(cs, watching)
	o, out, errOut := newDTestDrain(cs)
	o.client = dSlowDeletes{cs, 300 * time.Millisecond}
	o.Timeout, o.ForceDeleteUnreachable = time.Minute, true
	if err := o.Run(context.Background()); err != nil {
		t.Fatalf("Run = %v\n%s\n%s", err, out, errOut)
	}
	for _, name := range []string{"edge-1", "edge-2", "edge-3"} {
		if n := strings.Count(errOut.String(), "force-deleted apps/"+name+" on pod-2-worker-1 (node not Ready, grace period 0)"); n != 1 {
			t.Errorf("apps/%s said force-deleted %d times, want once:\n%s", name, n, errOut)
		}
	}
	if !strings.Contains(errOut.String(), "total: evicted 3/3, 3 gone, 0 not waited for, 0 remaining") {
		t.Errorf("progress total:\n%s", errOut)
	}
	if !regexp.MustCompile(`Drain of pod-2: Done in [0-9.]+s: evicted 3/3, 3 gone, 0 not waited for, 0 remaining`).MatchString(out.String()) {
		t.Errorf("summary:\n%s", out)
	}
}

// TestDrainRunForceDeleteAnswerLost is the other road to the same flake:
// three pods terminating on a NotReady node, force-deleted; the API server
// deletes one but its answer is lost (the 5 s request timeout of a loaded
// API server), and the retry finds the pod gone. The output still
// accounts for every pod: three force deletions said, the lost answer
// named, the summary's counts those of the progress lines.
func TestDrainRunForceDeleteAnswerLost(t *testing.T) {
	cs, watching := dWatchedClientset(dTerminatingOnNotReady()...)
	var mu sync.Mutex
	lostOnce := false
	cs.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		name := a.(k8stesting.DeleteAction).GetName()
		if name != "edge-2" || lostOnce {
			return false, nil, nil
		}
		lostOnce = true
		if err := cs.Tracker().Delete(dPodsGVR, "apps", name); err != nil {
			return true, nil, err
		}
		return true, nil, errLostAnswer
	})
	dDeleteWhenWatched(cs, watching)
	o, out, errOut := newDTestDrain(cs)
	o.Timeout, o.ForceDeleteUnreachable = time.Minute, true
	if err := o.Run(context.Background()); err != nil {
		t.Fatalf("Run = %v\n%s\n%s", err, out, errOut)
	}
	if n := strings.Count(errOut.String(), "force-deleted apps/"); n != 3 {
		t.Errorf("%d force deletions said, want 3:\n%s", n, errOut)
	}
	for _, name := range []string{"edge-1", "edge-2", "edge-3"} {
		if !strings.Contains(errOut.String(), "force-deleted apps/"+name+" on pod-2-worker-1") {
			t.Errorf("stderr does not say apps/%s was force-deleted:\n%s", name, errOut)
		}
	}
	if !strings.Contains(errOut.String(), "force-deleted apps/edge-2 on pod-2-worker-1 (node not Ready, grace period 0; the answer was lost ("+errLostAnswer.Error()+") and the retry found the pod gone)") {
		t.Errorf("stderr does not name the lost answer:\n%s", errOut)
	}
	if strings.Contains(errOut.String(), "already gone") {
		t.Errorf("a pod this drain force-deleted is said already gone:\n%s", errOut)
	}
	if !strings.Contains(errOut.String(), "total: evicted 3/3, 3 gone, 0 not waited for, 0 remaining") {
		t.Errorf("progress total:\n%s", errOut)
	}
	if !regexp.MustCompile(`Drain of pod-2: Done in [0-9.]+s: evicted 3/3, 3 gone, 0 not waited for, 0 remaining`).MatchString(out.String()) {
		t.Errorf("summary:\n%s", out)
	}
}
