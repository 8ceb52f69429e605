package webhook

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// recordingLog keeps the messages logged.
type recordingLog struct {
	mu       sync.Mutex
	messages []string
}

func (l *recordingLog) Info(msg string, _ ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messages = append(l.messages, msg)
}

func (l *recordingLog) Error(_ error, msg string, _ ...any) { l.Info(msg) }

func (l *recordingLog) said(part string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.messages {
		if strings.Contains(m, part) {
			return true
		}
	}
	return false
}

// TestPolicyFieldHonouredOnceTheRightIsGranted: under
// --pinned-enforcement=webhook without the cel overlay's RBAC a policy's
// spec.pinnedEnforcement is ignored. Once the RBAC is applied the replica
// notices it without a restart: it asks again, only while some policy
// asks for cel or both and at most every Interval, says so in its log,
// and leaves that policy's pinned rules to the compiled policies (the
// validating webhook is no longer sent its workloads and steps aside for
// them, the writer is kicked). A yes is not asked again.
func TestPolicyFieldHonouredOnceTheRightIsGranted(t *testing.T) {
	ctx := context.Background()
	v, m, err := Configurations("../manifests", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(v, m)
	var granted atomic.Bool
	var asked atomic.Int32
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		asked.Add(1)
		r := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = granted.Load()
		return true, r, nil
	})
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	log := &recordingLog{}
	rights := &CompileRights{Client: cs, Log: log, Interval: time.Minute, now: func() time.Time { return clock }}
	if rights.Check(ctx) {
		t.Fatal("Check: allowed before the RBAC is granted")
	}
	auditor := &PinnedAuditor{Mode: PinnedWebhook, Rights: rights, Log: discardLog{}}
	kicks := 0
	s := &EngineStore{Log: log, Rights: rights, Audit: auditor, OnRebuild: func() { kicks++ },
		Scope: &ScopeNodes{Client: cs, Name: v.Name, Pinned: PinnedWebhook, Rights: rights}}
	f := newFixture(t)
	f.h.Engine, f.h.Audit = s.Load, auditor
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	rebuild := func(p *v1alpha1.PlacementPolicy) {
		t.Helper()
		if err := store.Add(p); err != nil {
			t.Fatal(err)
		}
		s.Rebuild(ctx, store)
	}
	sendsWorkloads := func() bool {
		t.Helper()
		live, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, v.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conditionsOf(t, live.Webhooks, "workloads.placement.kubectl-dc.io") {
			if c.Name == selectedCondition {
				return strings.Contains(strings.Split(c.Expression, "nodeName")[0], `"in-cel"`)
			}
		}
		t.Fatal("no selected-by-a-rule condition")
		return false
	}
	worker := tu.Deployment("apps", "w").Labels("app", "in-cel").Obj()
	deniedByWebhook := func() bool {
		return !f.h.Validate().Handle(ctx, request(t, admissionv1.Create, worker, nil, admin)).Allowed
	}

	// No policy asks for cel: nothing to ask.
	rebuild(tu.Policy("plain").Datacenters("pod-1").Pinned(tu.PinnedRule("r").MatchLabels("app", "plain")).Obj())
	clock = clock.Add(2 * time.Minute)
	s.Resync(ctx)
	if n := asked.Load(); n != 1 {
		t.Errorf("%d questions with no policy asking for cel, want the one at startup", n)
	}
	// One does, without the right: asked again, and ignored.
	rebuild(tu.Policy("a").Datacenters("pod-1").Pinned(tu.PinnedRule("r").MatchLabels("app", "in-cel")).
		Edit(func(p *v1alpha1.PlacementPolicy) { p.Spec.PinnedEnforcement = v1alpha1.PinnedEnforcementCEL }).Obj())
	if n := asked.Load(); n != 2 {
		t.Errorf("%d questions once a policy asks for cel, want 2", n)
	}
	if !sendsWorkloads() || !deniedByWebhook() {
		t.Errorf("without the right: the webhook must keep enforcing the policy asking for cel (sent %v, denied %v)", sendsWorkloads(), deniedByWebhook())
	}

	// The RBAC is applied: noticed at the first question an Interval on.
	granted.Store(true)
	clock = clock.Add(30 * time.Second)
	s.Resync(ctx)
	if n := asked.Load(); n != 2 {
		t.Errorf("%d questions within the interval, want 2", n)
	}
	kicksBefore := kicks
	clock = clock.Add(31 * time.Second)
	s.Resync(ctx)
	if n := asked.Load(); n != 3 {
		t.Errorf("%d questions an interval on, want 3", n)
	}
	if !log.said("may write admission policies now") {
		t.Errorf("the change is not logged: %q", log.messages)
	}
	if sendsWorkloads() || deniedByWebhook() {
		t.Errorf("with the right: the policy's workloads are still judged by the webhook (sent %v, denied %v)", sendsWorkloads(), deniedByWebhook())
	}
	if kicks == kicksBefore {
		t.Errorf("the writer is not kicked when the right is granted")
	}
	clock = clock.Add(time.Hour)
	s.Resync(ctx)
	if n := asked.Load(); n != 3 {
		t.Errorf("%d questions after a yes, want 3", n)
	}
}
