package drain

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
)

// dTerminateOnEvict makes evictions of pods on the given nodes set a
// deletionTimestamp and leave the pod, as the API server does when no
// kubelet answers; other evictions delete the pod.
func dTerminateOnEvict(t *testing.T, cs interface {
	PrependReactor(verb, resource string, reaction k8stesting.ReactionFunc)
	Tracker() k8stesting.ObjectTracker
}, watching *atomic.Bool, stuck map[string]bool) {
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		// The fake watch replays nothing: a pod deleted between the
		// waiter's LIST and its watch would never be seen to go. Refuse
		// (as a PDB would) until the watch is open.
		if !watching.Load() {
			return true, nil, apierrors.NewTooManyRequests("not watching yet", 0)
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		obj, err := cs.Tracker().Get(dPodsGVR, ev.Namespace, ev.Name)
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		if !stuck[pod.Spec.NodeName] {
			return true, nil, cs.Tracker().Delete(dPodsGVR, ev.Namespace, ev.Name)
		}
		now, zero := metav1.Now(), int64(0)
		pod.DeletionTimestamp, pod.DeletionGracePeriodSeconds = &now, &zero
		return true, nil, cs.Tracker().Update(dPodsGVR, pod, ev.Namespace)
	})
}

// TestDrainRunDatacenterDown: the pods of NotReady nodes are named in the
// plan, evicted and not waited for, and the drain ends Done at once, not
// at --timeout; with --force-delete-unreachable they are deleted with
// grace period 0 and said so per pod.
func TestDrainRunDatacenterDown(t *testing.T) {
	tests := []struct {
		name string
		// terminating: web-1 has been terminating for a minute, since an
		// earlier drain.
		terminating   bool
		force         bool
		wantEvicted   int
		wantGone      int
		wantNotWaited int
		wantErr       []string
	}{
		{name: "not waited for", wantEvicted: 2, wantGone: 1, wantNotWaited: 1, wantErr: []string{"not waiting for apps/web-1: node pod-2-worker-1 is not Ready"}},
		{name: "force-deleted", force: true, wantEvicted: 2, wantGone: 2, wantErr: []string{"force-deleted apps/web-1 on pod-2-worker-1 (node not Ready, grace period 0)"}},
		{name: "terminating since an earlier drain: not waited for", terminating: true, wantEvicted: 1, wantGone: 1, wantNotWaited: 1, wantErr: []string{"not waiting for apps/web-1"}},
		{name: "terminating since an earlier drain: force-deleted", terminating: true, force: true, wantEvicted: 2, wantGone: 2, wantErr: []string{"force-deleted apps/web-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := dFixture()
			for i, o := range objs {
				if n, ok := o.(*corev1.Node); ok && n.Name == "pod-2-worker-1" {
					objs[i] = dNode("pod-2-worker-1", "pod-2").NotReady().Obj()
				}
				if p, ok := o.(*corev1.Pod); ok && p.Name == "web-1" && tt.terminating {
					since, grace := metav1.NewTime(time.Now().Add(-time.Minute)), int64(30)
					p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &since, &grace
				}
			}
			cs, watching := dWatchedClientset(objs...)
			dEvictWhenWatched(cs, watching, nil)
			dTerminateOnEvict(t, cs, watching, map[string]bool{"pod-2-worker-1": true})
			dDeleteWhenWatched(cs, watching)
			o, out, errOut := newDTestDrain(cs)
			o.Timeout, o.notReadyWait, o.ForceDeleteUnreachable = time.Hour, 300*time.Millisecond, tt.force
			done := make(chan error, 1)
			go func() { done <- o.Run(context.Background()) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v\n%s\n%s", err, out, errOut)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("drain of a NotReady node still waiting\n%s", errOut)
			}
			if !strings.Contains(out.String(), "Not Ready: 1 of 3 node(s) are not Ready (pod-2-worker-1)") {
				t.Errorf("plan does not name the NotReady node:\n%s", out)
			}
			if !regexp.MustCompile(`pod-2-worker-1 +NotReady`).MatchString(out.String()) {
				t.Errorf("plan table does not say NotReady:\n%s", out)
			}
			want := regexp.MustCompile(`Drain of pod-2: Done in [0-9.]+s: evicted ` + itoa(tt.wantEvicted) + `/2, ` + itoa(tt.wantGone) + ` gone, ` + itoa(tt.wantNotWaited) + ` not waited for, 0 remaining`)
			if !want.MatchString(out.String()) {
				t.Errorf("summary does not match %s:\n%s", want, out)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if !strings.Contains(out.String(), "undo with: kubectl dc uncordon pod-2") {
				t.Errorf("summary does not say how to undo the cordons:\n%s", out)
			}
		})
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

// TestDrainRunReportsStalledPods: while a pod is stalled, stderr says what
// it waits on every stallEvery, and the summary's counts are the last
// progress line's.
func TestDrainRunReportsStalledPods(t *testing.T) {
	cs, watching := dWatchedClientset(dFixture()...)
	dEvictWhenWatched(cs, watching, map[string]bool{"web-1": true})
	o, out, errOut := newDTestDrain(cs)
	o.Timeout, o.stallEvery = 2*time.Second, 200*time.Millisecond
	var exit *cmdutil.ExitError
	if err := o.Run(context.Background()); !errors.As(err, &exit) || exit.Code != cmdutil.ExitFindings {
		t.Fatalf("Run = %v, want exit %d", err, cmdutil.ExitFindings)
	}
	stall := regexp.MustCompile(`(?m)^  1 pod\(s\) eviction refused, retrying: PDB apps/web-pdb: The disruption budget web-pdb needs 2 healthy pods and has 2 currently: apps/web-1$`)
	if n := len(stall.FindAllString(errOut.String(), -1)); n < 3 {
		t.Errorf("%d stall reports naming what apps/web-1 waits on, want one per 200ms over 2s:\n%s", n, errOut)
	}
	total := regexp.MustCompile(`total: (evicted \d+/\d+, \d+ gone, \d+ not waited for, \d+ remaining)`).FindStringSubmatch(errOut.String())
	if total == nil {
		t.Fatalf("stderr lacks the total line:\n%s", errOut)
	}
	if !strings.Contains(out.String(), "TimedOut") || !strings.Contains(out.String(), total[1]+"; 2 skipped") {
		t.Errorf("summary does not agree with the progress %q:\n%s", total[1], out)
	}
}

// TestDrainPreflight: a caller RBAC refuses is told before anything is
// touched: --dry-run reports the blocker and exits 3, the drain refuses
// without cordoning.
func TestDrainPreflight(t *testing.T) {
	tests := []struct {
		name    string
		dryRun  string
		disable bool
		refuse  string
		want    string
	}{
		{name: "dry run, no evictions", dryRun: dryRunClient, refuse: "create pods/eviction apps", want: "you may not evict its pods: the API server refuses create pods/eviction in namespace apps"},
		{name: "drain, no evictions", dryRun: dryRunNone, refuse: "create pods/eviction apps", want: "you may not evict its pods"},
		{name: "drain, no cordon", dryRun: dryRunNone, refuse: "patch nodes", want: "you may not cordon the datacenter's nodes: the API server refuses patch nodes cluster-wide"},
		{name: "disable-eviction needs delete", dryRun: dryRunClient, disable: true, refuse: "delete pods apps", want: "you may not delete its pods (--disable-eviction)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, watching := dWatchedClientset(dFixture()...)
			dEvictWhenWatched(cs, watching, nil)
			o, out, _ := newDTestDrain(cs)
			dAllowAll(cs, tt.refuse)
			o.DryRun, o.DisableEviction = tt.dryRun, tt.disable
			err := o.Run(context.Background())
			var exit *cmdutil.ExitError
			if !errors.As(err, &exit) || exit.Code != ExitDrainRefused {
				t.Fatalf("Run = %v, want exit %d\n%s", err, ExitDrainRefused, out)
			}
			if !strings.Contains(out.String(), "RBAC: "+tt.want) {
				t.Errorf("plan lacks the RBAC blocker %q:\n%s", tt.want, out)
			}
			for _, a := range cs.Actions() {
				if a.GetVerb() == "patch" || a.GetSubresource() == "eviction" || a.GetVerb() == "delete" {
					t.Errorf("refused drain made %s %s/%s", a.GetVerb(), a.GetResource().Resource, a.GetSubresource())
				}
			}
		})
	}
}

// TestDrainServerDryRunAnswers: with --dry-run=server only a refusal of
// the caller refuses the drain. An eviction in a namespace being deleted
// (the API refuses every one there; CI met it when another test's namespace
// was going) or a server error is no RBAC refusal: the first says nothing,
// the second is a warning.
func TestDrainServerDryRunAnswers(t *testing.T) {
	tests := []struct {
		name     string
		answer   error
		refused  bool
		warning  string
		noAnswer string
	}{
		{name: "namespace being deleted", answer: terminatingNamespace("apps")},
		{name: "server error", answer: apierrors.NewInternalError(errors.New("etcdserver: leader changed")),
			warning: "could not check whether you may evict its pods: the server dry run of pod apps/web-1 failed"},
		{name: "refused by RBAC", answer: apierrors.NewForbidden(dPodsGVR.GroupResource(), "web-1", errors.New(`User "tester" cannot create resource "pods/eviction"`)),
			refused: true},
		{name: "a PDB of the moment", answer: dPDBRefusal("web-pdb")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, _ := dWatchedClientset(dFixture()...)
			cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "eviction" {
					return false, nil, nil
				}
				return true, nil, tt.answer
			})
			cs.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, &corev1.Node{}, nil
			})
			o, out, errOut := newDTestDrain(cs)
			o.DryRun = dryRunServer
			err := o.Run(context.Background())
			var exit *cmdutil.ExitError
			switch {
			case tt.refused && (!errors.As(err, &exit) || exit.Code != ExitDrainRefused):
				t.Fatalf("Run = %v, want exit %d\n%s", err, ExitDrainRefused, out)
			case !tt.refused && err != nil:
				t.Fatalf("Run = %v, want the plan approved\n%s\n%s", err, out, errOut)
			}
			if got := strings.Contains(out.String(), "you may not evict its pods"); got != tt.refused {
				t.Errorf("RBAC blocker in the plan: %v, want %v\n%s", got, tt.refused, out)
			}
			if tt.warning != "" && !strings.Contains(errOut.String(), tt.warning) {
				t.Errorf("stderr lacks %q:\n%s", tt.warning, errOut)
			}
			if tt.warning == "" && strings.Contains(errOut.String(), "could not check") {
				t.Errorf("unexpected warning:\n%s", errOut)
			}
		})
	}
}

// TestDrainParityFlags: the kubectl drain flags change what they name.
func TestDrainParityFlags(t *testing.T) {
	tests := []struct {
		name  string
		set   func(o *Options)
		check func(t *testing.T, actions []k8stesting.Action, out, errOut string)
	}{
		{
			name: "--pod-selector limits the evictions",
			set:  func(o *Options) { o.PodSelector = "app=other" },
			check: func(t *testing.T, actions []k8stesting.Action, out, _ string) {
				if n := countActions(actions, "create", "eviction"); n != 0 {
					t.Errorf("%d evictions, want 0", n)
				}
				if !strings.Contains(out, "2 pod(s) of the datacenter do not match --pod-selector") {
					t.Errorf("plan does not say what the selector leaves:\n%s", out)
				}
			},
		},
		{
			name: "--disable-eviction deletes, with a warning",
			set:  func(o *Options) { o.DisableEviction = true },
			check: func(t *testing.T, actions []k8stesting.Action, out, errOut string) {
				if e, d := countActions(actions, "create", "eviction"), countActions(actions, "delete", ""); e != 0 || d != 2 {
					t.Errorf("%d evictions, %d deletions; want 0 and 2", e, d)
				}
				if !strings.Contains(errOut, "Warning: --disable-eviction deletes pods") {
					t.Errorf("no warning:\n%s", errOut)
				}
			},
		},
		{
			name: "--grace-period is sent with each eviction",
			set:  func(o *Options) { o.GracePeriod = 7 },
			check: func(t *testing.T, actions []k8stesting.Action, _, _ string) {
				n := 0
				for _, a := range actions {
					if a.GetSubresource() != "eviction" {
						continue
					}
					ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
					if ev.DeleteOptions == nil || ev.DeleteOptions.GracePeriodSeconds == nil || *ev.DeleteOptions.GracePeriodSeconds != 7 {
						t.Errorf("eviction of %s: delete options %+v, want grace period 7", ev.Name, ev.DeleteOptions)
					}
					n++
				}
				if n == 0 {
					t.Error("no eviction")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, watching := dWatchedClientset(dFixture()...)
			dEvictWhenWatched(cs, watching, nil)
			o, out, errOut := newDTestDrain(cs)
			o.Timeout = 20 * time.Second
			tt.set(o)
			if err := o.Run(context.Background()); err != nil {
				t.Fatalf("Run = %v\n%s\n%s", err, out, errOut)
			}
			tt.check(t, cs.Actions(), out.String(), errOut.String())
		})
	}
}

func countActions(actions []k8stesting.Action, verb, sub string) int {
	n := 0
	for _, a := range actions {
		if a.GetVerb() == verb && a.GetSubresource() == sub && a.GetResource().Resource == "pods" {
			n++
		}
	}
	return n
}

func TestDryRunFlag(t *testing.T) {
	for in, want := range map[string]string{"": dryRunClient, "true": dryRunClient, "false": dryRunNone, "none": dryRunNone, "client": dryRunClient, "server": dryRunServer} {
		v := dryRunNone
		if err := (&dryRunValue{&v}).Set(in); err != nil || v != want {
			t.Errorf("--dry-run=%s: %q, %v; want %q", in, v, err, want)
		}
	}
	v := dryRunNone
	if err := (&dryRunValue{&v}).Set("sever"); err == nil {
		t.Error("--dry-run=sever accepted")
	}
}
