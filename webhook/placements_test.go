package webhook

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// leaseServer is a fake API server holding one Lease, with the optimistic
// concurrency of the real one: an update at a stale resourceVersion is a
// 409 Conflict.
func leaseServer() *fake.Clientset {
	var mu sync.Mutex
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "dc-system", Name: "dc-webhook-placements", ResourceVersion: "1"}}
	cs := fake.NewClientset()
	cs.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		return true, lease.DeepCopy(), nil
	})
	cs.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		got := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		if got.ResourceVersion != lease.ResourceVersion {
			return true, nil, apierrors.NewConflict(coordinationv1.Resource("leases"), got.Name, nil)
		}
		n, _ := strconv.Atoi(lease.ResourceVersion)
		lease = got.DeepCopy()
		lease.ResourceVersion = strconv.Itoa(n + 1)
		return true, lease.DeepCopy(), nil
	})
	return cs
}

// replicas returns n Handlers over one placement Lease, each with a cache
// of its own that never sees the others' placements: the worst case of the
// informers' lag.
func replicas(t testing.TB, n int, cs *fake.Clientset, ledger bool) []*Handler {
	t.Helper()
	eng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{tu.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").Spread(tu.Etcd()).Value()})
	if err != nil {
		t.Fatal(err)
	}
	var out []*Handler
	for i := 0; i < n; i++ {
		h := &Handler{
			Engine:             func() *policy.Engine { return eng },
			State:              policy.NewStaticState(append(tu.Nodes(2, "pod-1", "pod-2", "pod-3"), tu.Namespace("kube-system"))...),
			AllowedLabelGroups: sets.New("system:masters"),
		}
		if ledger {
			h.Placements = &PlacementLedger{Client: cs, Namespace: "dc-system", Name: "dc-webhook-placements"}
		}
		out = append(out, h)
	}
	return out
}

// placeConcurrently creates the member pods at once, spread over the
// replicas, and returns the nodes of those admitted.
func placeConcurrently(t *testing.T, hs []*Handler, round int, nodes []string) []string {
	t.Helper()
	var mu sync.Mutex
	var admitted []string
	var wg sync.WaitGroup
	for i, node := range nodes {
		req := request(t, admissionv1.Create, tu.Pod("kube-system", "etcd-"+strconv.Itoa(round)+"-"+strconv.Itoa(i)).Labels("component", "etcd").NodeName(node).Obj(), nil, admin)
		h := hs[i%len(hs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp := h.Validate().Handle(context.Background(), req); resp.Allowed {
				mu.Lock()
				admitted = append(admitted, node)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return admitted
}

// TestPlacementsSerialised: 5 member pods created at once with
// spec.nodeName over three replicas are decided as if one after the other:
// 50 rounds, never more than a limit allows.
func TestPlacementsSerialised(t *testing.T) {
	sameNode := []string{"pod-1-1", "pod-1-1", "pod-1-1", "pod-1-1", "pod-1-1"}
	spread := []string{"pod-1-1", "pod-1-2", "pod-2-1", "pod-2-2", "pod-3-1"}
	for round := 0; round < 50; round++ {
		hs := replicas(t, 3, leaseServer(), true)
		if got := placeConcurrently(t, hs, round, sameNode); len(got) != 1 {
			t.Fatalf("round %d: %d of 5 members admitted on one node (maxPerNode 1): %v", round, len(got), got)
		}
		hs = replicas(t, 3, leaseServer(), true)
		got := placeConcurrently(t, hs, round, spread)
		perDC := map[string]int{}
		for _, n := range got {
			perDC[n[:5]]++
		}
		for dc, c := range perDC {
			if c > policy.MaxPerDatacenter(max(len(got), 3)) {
				t.Fatalf("round %d: %d members admitted in %s: %v", round, c, dc, got)
			}
		}
	}
}

// TestPlacementsRaceWithoutLedger shows the race the ledger closes: without
// it, replicas that do not see each other's placements admit all five.
func TestPlacementsRaceWithoutLedger(t *testing.T) {
	hs := replicas(t, 3, nil, false)
	if got := placeConcurrently(t, hs, 0, []string{"pod-1-1", "pod-1-1", "pod-1-1"}); len(got) != 3 {
		t.Fatalf("without the ledger %d of 3 admitted; the fixture no longer shows the race", len(got))
	}
}

// TestPlacementLedgerFailsClosed: a placement the ledger cannot record is
// not admitted, and a dry run records nothing.
func TestPlacementLedgerFailsClosed(t *testing.T) {
	hs := replicas(t, 1, fake.NewClientset(), true) // no Lease
	req := request(t, admissionv1.Create, tu.Pod("kube-system", "etcd-a").Labels("component", "etcd").NodeName("pod-1-1").Obj(), nil, admin)
	if resp := hs[0].Validate().Handle(context.Background(), req); resp.Allowed {
		t.Fatal("placement admitted without its ledger")
	}
	cs := leaseServer()
	hs = replicas(t, 1, cs, true)
	yes := true
	req.DryRun = &yes
	if resp := hs[0].Validate().Handle(context.Background(), req); !resp.Allowed {
		t.Fatalf("dry run denied: %+v", resp.Result)
	}
	lease, _ := cs.CoordinationV1().Leases("dc-system").Get(context.Background(), "dc-webhook-placements", metav1.GetOptions{})
	if lease.Annotations[AnnotationPlacements] != "" {
		t.Errorf("a dry run was recorded: %s", lease.Annotations[AnnotationPlacements])
	}
	// A pod no spread rule counts never touches the ledger.
	other := request(t, admissionv1.Create, tu.Pod("apps", "web").Labels("app", "web").NodeName("pod-1-1").Obj(), nil, admin)
	if resp := replicas(t, 1, fake.NewClientset(), true)[0].Validate().Handle(context.Background(), other); !resp.Allowed {
		t.Errorf("non-member denied: %+v", resp.Result)
	}
}

// TestLaggingCacheDoesNotRefuseABalancedPlacement: a replica whose member
// cache has not yet seen a member another replica admitted counts one
// member fewer. Placing the next member then looks unbalanced (pod-1=1,
// pod-2=2, pod-3=0) although the members are pod-1=1, pod-2=2, pod-3=1; the
// ledger holds the missing one, and the placement is admitted. A member the
// ledger does not hold either still makes the same placement refused.
func TestLaggingCacheDoesNotRefuseABalancedPlacement(t *testing.T) {
	member := func(name, node string) *tu.ObjectBuilder {
		return tu.Pod("kube-system", name).Labels("component", "etcd").NodeName(node)
	}
	// Five members expected: two in a datacenter is no quorum risk.
	eng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{tu.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").Spread(tu.Etcd().Expected(5)).Value()})
	if err != nil {
		t.Fatal(err)
	}
	replica := func(cs *fake.Clientset) *Handler {
		h := replicas(t, 1, cs, true)[0]
		h.Engine = func() *policy.Engine { return eng }
		return h
	}
	cs := leaseServer()
	admitter := replica(cs)
	for i, node := range []string{"pod-1-1", "pod-2-1", "pod-3-1"} {
		req := request(t, admissionv1.Create, member("etcd-"+strconv.Itoa(i), node).Obj(), nil, admin)
		if resp := admitter.Validate().Handle(context.Background(), req); !resp.Allowed {
			t.Fatalf("member %d on %s refused: %+v", i, node, resp.Result)
		}
	}
	// The lagging replica's informers have seen the first two members only.
	lagging := func(cs *fake.Clientset) *Handler {
		h := replica(cs)
		objs := append(tu.Nodes(2, "pod-1", "pod-2", "pod-3"), tu.Namespace("kube-system"),
			member("etcd-0", "pod-1-1").Pod(), member("etcd-1", "pod-2-1").Pod())
		h.State = policy.NewStaticState(objs...)
		return h
	}
	next := request(t, admissionv1.Create, member("etcd-3", "pod-2-2").Obj(), nil, admin)
	if resp := lagging(cs).Validate().Handle(context.Background(), next); !resp.Allowed {
		t.Errorf("a balanced placement was refused on a lagging cache: %+v", resp.Result)
	}
	resp := lagging(leaseServer()).Validate().Handle(context.Background(), next)
	if resp.Allowed || !strings.Contains(resp.Result.Message, "pod-1=1, pod-2=2, pod-3=0") {
		t.Errorf("with pod-3's member nowhere, want the placement refused as unbalanced (pod-1=1, pod-2=2, pod-3=0), got allowed=%v: %+v", resp.Allowed, resp.Result)
	}
}

// countingState counts the census reads (Pods) an evaluation makes.
type countingState struct {
	policy.State
	pods int
}

func (s *countingState) Pods(namespace string, selector labels.Selector) []*corev1.Pod {
	s.pods++
	return s.State.Pods(namespace, selector)
}

// TestMemberPlacementJudgedOnce: with the ledger, a member placement is
// judged once, with the ledger counted, not first from the caches alone
// and then again.
func TestMemberPlacementJudgedOnce(t *testing.T) {
	member := tu.Pod("kube-system", "etcd-0").Labels("component", "etcd").NodeName("pod-1-1").Obj()
	census := func(ledger bool) int {
		h := replicas(t, 1, leaseServer(), ledger)[0]
		st := &countingState{State: h.State}
		h.State = st
		if resp := h.Validate().Handle(context.Background(), request(t, admissionv1.Create, member, nil, admin)); !resp.Allowed {
			t.Fatalf("member refused: %+v", resp.Result)
		}
		return st.pods
	}
	// What finding the placements costs, apart from judging them.
	h := replicas(t, 1, leaseServer(), true)[0]
	st := &countingState{State: h.State}
	places := h.Engine().MemberPlacements(policy.Request{Operation: policy.OperationCreate, Object: member, Namespace: "kube-system"}, st)
	if len(places) == 0 {
		t.Fatal("the etcd pod is no member placement")
	}
	once := census(false)
	if once == 0 {
		t.Fatal("an evaluation reads no census: the count proves nothing")
	}
	if got, want := census(true), once+st.pods; got != want {
		t.Errorf("with the ledger the placement read the census %d times, want %d (one evaluation, %d, plus finding the placements, %d)", got, want, once, st.pods)
	}
}
