package webhookha_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/ha"
)

const (
	downNS     = "e2e-ha-dc-down"
	downPolicy = "e2e-ha-dc-down"
	downDC     = "pod-2"
	// roleLabel names the rule a member pod belongs to.
	roleLabel = "quorum"
)

// attempt is one member placement of the race and its answer.
type attempt struct {
	rule, dc, node, name string
	err                  error
	// retries counts the answers that asked to retry (the placement Lease
	// lost too often, or unreachable): the scheduler retries those.
	retries int
}

// TestSpreadLimitsDatacenterDown powers pod-2 off (its etcd member, API
// server, kwok, and the webhook replica that reaches that API server),
// then races eleven member placements (pods created with spec.nodeName)
// through the Service, over the two replicas left, for two spread rules
// of expectedMembers 5 (at most 2 per datacenter):
//
//   - members, placed 1/2/1 before the outage: one more is admitted in
//     pod-1 and one in pod-3 whatever the order, and none in pod-2, whose
//     two members still count although it is down;
//   - spare, placed 1/0/1: one more in pod-1 and one in pod-3, since the
//     balance is kept over the datacenters with a Ready node and pod-2,
//     empty and down, would otherwise refuse both.
//
// Every refusal is the rule's, naming the datacenter that would exceed
// its share, and pod-2 as down rather than asking for a third datacenter.
// Meanwhile pods of the example policy pinned to every
// datacenter, pod-2 included, and workloads pinned to pod-2 are admitted
// as before the outage: nothing else is refused because pod-2 is down.
func TestSpreadLimitsDatacenterDown(t *testing.T) {
	c, f := env(t)
	ctx := context.Background()
	cs := loadClient(c)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, tu.Namespace(downNS), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client().CoreV1().Namespaces().Delete(context.Background(), downNS, metav1.DeleteOptions{})
	})
	p := tu.Policy(downPolicy).Datacenters("pod-1", "pod-2", "pod-3").Spread(
		tu.SpreadPods("members", []string{downNS}, roleLabel, "members").Expected(5),
		tu.SpreadPods("spare", []string{downNS}, roleLabel, "spare").Expected(5),
		// probe: N=1 never survives, so a replica that runs the policy
		// refuses any member.
		tu.SpreadPods("probe", []string{downNS}, roleLabel, "probe").Expected(1),
		// seen-down: a StatefulSet of 3 members spread by the scheduler is
		// refused while a datacenter has no Ready node (3 over 2).
		tu.SpreadPods("seen-down", []string{downNS}, roleLabel, "seen-down"),
	).Obj()
	createPolicy(ctx, t, c, p)
	n1, n2, n3 := c.Nodes("pod-1"), c.Nodes("pod-2"), c.Nodes("pod-3")
	everyReplicaDecides(ctx, t, f, tu.Pod(downNS, "probe").Labels(roleLabel, "probe").NodeName(n1[1]).Pod(), false)

	// The members before the outage, one after the other.
	before := []struct{ rule, node string }{
		{"members", n1[1]}, {"members", n2[1]}, {"members", n3[1]}, {"members", n2[2]},
		{"spare", n1[1]}, {"spare", n3[1]},
	}
	for i, m := range before {
		pod := tu.Pod(downNS, fmt.Sprintf("%s-before-%d", m.rule, i)).Labels(roleLabel, m.rule).NodeName(m.node).Pod()
		// The replica asked may not have seen the member created just
		// before (its informer lags); the placement ledger counts it.
		_, err := cs.CoreV1().Pods(downNS).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("member %s on %s before the outage: %v", pod.Name, m.node, err)
		}
	}

	// Power pod-2 off, and the replica living there with it.
	gone := replicaOf(c, f, downDC)
	if err := c.DatacenterDown(ctx, downDC); err != nil {
		t.Fatal(err)
	}
	if err := gone.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.DatacenterUp(context.Background(), downDC); err != nil {
			t.Errorf("powering %s on again: %v", downDC, err)
		}
		restart(context.Background(), t, f, gone)
		if err := ha.WaitEnforced(context.Background(), c.Client(), "default"); err != nil {
			t.Error(err)
		}
	}()
	if err := gone.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.WaitListed(ctx, len(f.Replicas)-1); err != nil {
		t.Fatal(err)
	}
	cs = loadClient(c) // a running API server
	waitSeenDown(ctx, t, f, gone)

	// Unrelated traffic for the whole race: the example policy's pods,
	// pinned in turn to pod-1, pod-2 and pod-3.
	loadNS := cluster.Namespace(t, c)
	loadCtx, stopLoad := context.WithCancel(ctx)
	loaded := make(chan *ha.Result, 1)
	go func() {
		loaded <- ha.Load{Client: cs, Namespace: loadNS, Clients: 8, Enforced: true}.Run(loadCtx, time.Hour)
	}()
	settle(time.Second)

	attempts := []*attempt{
		{rule: "members", dc: "pod-1", node: n1[0]}, {rule: "members", dc: "pod-1", node: n1[2]}, {rule: "members", dc: "pod-1", node: n1[3]},
		{rule: "members", dc: "pod-3", node: n3[0]}, {rule: "members", dc: "pod-3", node: n3[0]},
		{rule: "members", dc: downDC, node: n2[0]}, {rule: "members", dc: downDC, node: n2[3]},
		{rule: "spare", dc: "pod-1", node: n1[0]}, {rule: "spare", dc: "pod-1", node: n1[2]},
		{rule: "spare", dc: "pod-3", node: n3[0]}, {rule: "spare", dc: "pod-3", node: n3[0]},
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, a := range attempts {
		a.name = fmt.Sprintf("%s-race-%d", a.rule, i)
		wg.Go(func() {
			<-start
			place(ctx, cs, a)
		})
	}
	close(start)
	wg.Wait()

	// Workloads pinned to the datacenter that is down are admitted.
	for _, d := range []*tu.ObjectBuilder{
		tu.Deployment(downNS, "pinned-to-down").Labels("app", "worker").InDC(downDC),
		tu.Deployment(downNS, "labelled-down").Labels("app", "worker", "placement.kubectl-dc.io/datacenter", downDC),
	} {
		got, err := cs.AppsV1().Deployments(downNS).Create(ctx, d.Deployment(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Errorf("Deployment %s with %s down: %v, want admitted", d.Deployment().Name, downDC, err)
		} else if dc := got.Spec.Template.Spec.NodeSelector[tu.Zone]; dc != downDC {
			t.Errorf("Deployment %s admitted with nodeSelector %q, want %s", got.Name, dc, downDC)
		}
	}
	stopLoad()
	res := <-loaded
	t.Log("unrelated load during the race: " + res.Summary())
	wantNoUnexpected(t, res, downDC+" down")

	// The outcome: admitted per rule and datacenter, every refusal the
	// rule's, and the members now in the cluster.
	type rd struct{ rule, dc string }
	admitted := map[rd]int{}
	retries := 0
	for _, a := range attempts {
		retries += a.retries
		if a.err == nil {
			admitted[rd{a.rule, a.dc}]++
			continue
		}
		// Refused in pod-2 itself, another datacenter is the advice; in
		// pod-1 or pod-3, that pod-2 is down (not a third datacenter).
		advice := "place it in another datacenter"
		if a.dc != downDC {
			advice = "datacenter " + downDC + " has no Ready schedulable node now (down, or cordoned): members can be spread over pod-1, pod-3 only until it has one again"
		}
		if msg := a.err.Error(); !apierrors.IsInvalid(a.err) || !strings.Contains(msg, downPolicy+"/"+a.rule+": datacenter "+a.dc+" would hold 3 of N=5 voting members") ||
			!strings.Contains(msg, advice) || strings.Contains(msg, "witness") {
			t.Errorf("%s on %s (%s): %v; want admitted, or refused by %s/%s as %s would hold 3 of N=5, saying %q", a.name, a.node, a.dc, a.err, downPolicy, a.rule, a.dc, advice)
		}
	}
	want := map[rd]int{{"members", "pod-1"}: 1, {"members", "pod-3"}: 1, {"members", downDC}: 0, {"spare", "pod-1"}: 1, {"spare", "pod-3"}: 1}
	for k, w := range want {
		if admitted[k] != w {
			t.Errorf("rule %s, %s: %d placements admitted, want %d", k.rule, k.dc, admitted[k], w)
		}
	}
	t.Logf("%d placements raced with %s down: admitted %v; %d answers asked to retry", len(attempts), downDC, admitted, retries)

	pods, err := cs.CoreV1().Pods(downNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dcOf := map[string]string{}
	for _, dc := range []string{"pod-1", "pod-2", "pod-3"} {
		for _, n := range c.Nodes(dc) {
			dcOf[n] = dc
		}
	}
	census := map[rd]int{}
	for _, pod := range pods.Items {
		census[rd{pod.Labels[roleLabel], dcOf[pod.Spec.NodeName]}]++
	}
	wantCensus := map[rd]int{
		{"members", "pod-1"}: 2, {"members", "pod-2"}: 2, {"members", "pod-3"}: 2,
		{"spare", "pod-1"}: 2, {"spare", "pod-2"}: 0, {"spare", "pod-3"}: 2,
	}
	for k, w := range wantCensus {
		if census[k] != w {
			t.Errorf("rule %s: %d members in %s, want %d (at most floor((5-1)/2)=2)", k.rule, census[k], k.dc, w)
		}
	}
}

// place creates the member pod of a, retrying the answers that say to
// (the placement Lease lost too many times in a row, or not reachable),
// as the scheduler retries a binding.
func place(ctx context.Context, cs kubernetes.Interface, a *attempt) {
	pod := tu.Pod(downNS, a.name).Labels(roleLabel, a.rule).NodeName(a.node).Pod()
	for {
		_, a.err = cs.CoreV1().Pods(downNS).Create(ctx, pod, metav1.CreateOptions{})
		if a.err == nil || a.retries >= 10 {
			return
		}
		msg := a.err.Error()
		if !strings.Contains(msg, "too many member placements at once") && !strings.Contains(msg, "cannot serialise member placements") {
			return
		}
		a.retries++
		time.Sleep(100 * time.Millisecond)
	}
}

// replicaOf returns the replica that reaches the API server of dc: the
// fleet gives replica i the i-th API server (modulo their number).
func replicaOf(c *cluster.Cluster, f *ha.Fleet, dc string) *ha.Replica {
	apis := c.APIServerList()
	for i, r := range f.Replicas {
		if apis[i%len(apis)].Datacenter == dc {
			return r
		}
	}
	panic("no replica reaches an API server of " + dc)
}

// waitSeenDown waits until every replica but gone, asked directly,
// refuses a StatefulSet of three seen-down members spread by the
// scheduler: its caches show pod-2's nodes NotReady (three members over the
// two datacenters left).
func waitSeenDown(ctx context.Context, t *testing.T, f *ha.Fleet, gone *ha.Replica) {
	t.Helper()
	sts := tu.StatefulSet(downNS, "seen-down").Labels(roleLabel, "seen-down").TopologySpread(tu.Zone, corev1.DoNotSchedule).Replicas(3).StatefulSet()
	review := objectReview(t, sts, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"})
	for _, r := range f.Replicas {
		if r == gone {
			continue
		}
		var last string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			resp, err := r.Ask(ctx, f.CA(), "/validate", review)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			last = fmt.Sprintf("allowed=%v %v", resp.Allowed, resp.Result)
			return !resp.Allowed && resp.Result != nil && strings.Contains(resp.Result.Message, "3 voting members over 2 datacenter(s)"), nil
		})
		if err != nil {
			t.Fatalf("replica %d never saw %s down: last answer %s", r.Index+1, downDC, last)
		}
	}
}

// objectReview is an AdmissionReview of creating obj.
func objectReview(t *testing.T, obj runtime.Object, kind metav1.GroupVersionKind, resource metav1.GroupVersionResource) *admissionv1.AdmissionReview {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	m := obj.(metav1.Object)
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:  types.UID("e2e-" + m.GetName()),
			Kind: kind, Resource: resource,
			Namespace: m.GetNamespace(), Name: m.GetName(),
			Operation: admissionv1.Create,
			UserInfo:  authenticationv1.UserInfo{Username: "e2e"},
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
}
