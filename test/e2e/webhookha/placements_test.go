package webhookha_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

const (
	stressNS     = "e2e-ha-quorum"
	stressPolicy = "e2e-ha-quorum"
	stressRounds = 50
	stressWidth  = 5
)

// TestConcurrentPlacementsSerialised: 50 rounds of 5 member pods created at
// once with spec.nodeName, through the Service, so over the three replicas.
// Each round has a spread rule of its own (round=r<i>, no expectedMembers,
// maxPerNode 1) so that no round sees another's members. Even rounds put
// all five on one node, odd rounds spread them over the three
// datacenters: not one admitted placement may exceed a limit.
func TestConcurrentPlacementsSerialised(t *testing.T) {
	c, f := env(t)
	ctx := context.Background()
	cs := loadClient(c)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, tu.Namespace(stressNS), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), stressNS, metav1.DeleteOptions{}) })
	rules := []*tu.SpreadBuilder{tu.SpreadPods("probe", []string{stressNS}, "round", "probe").Expected(1)}
	for i := 0; i < stressRounds; i++ {
		rules = append(rules, tu.SpreadPods("r"+strconv.Itoa(i), []string{stressNS}, "round", "r"+strconv.Itoa(i)))
	}
	p := tu.Policy(stressPolicy).Datacenters("pod-1", "pod-2", "pod-3").Spread(rules...).Obj()
	createPolicy(ctx, t, c, p)
	// A probe member: N=1 can never survive, so every replica that runs
	// the policy denies it.
	everyReplicaDecides(ctx, t, f, tu.Pod(stressNS, "probe").Labels("round", "probe").NodeName(c.Nodes("pod-1")[1]).Pod(), false)

	attempts := func() []float64 {
		out := make([]float64, len(f.Replicas))
		for i, r := range f.Replicas {
			n, err := r.MetricSum(ctx, "dc_webhook_placement_attempts_count")
			if err != nil {
				t.Fatal(err)
			}
			out[i] = n
		}
		return out
	}
	sums := func() float64 {
		total := 0.0
		for _, r := range f.Replicas {
			n, err := r.MetricSum(ctx, "dc_webhook_placement_attempts_sum")
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		return total
	}
	before, sumBefore := attempts(), sums()

	oneNode := make([]string, stressWidth)
	for i := range oneNode {
		oneNode[i] = c.Nodes("pod-1")[1]
	}
	spread := []string{c.Nodes("pod-1")[1], c.Nodes("pod-1")[2], c.Nodes("pod-2")[1], c.Nodes("pod-2")[2], c.Nodes("pod-3")[1]}
	dcOf := map[string]string{}
	for _, dc := range []string{"pod-1", "pod-2", "pod-3"} {
		for _, n := range c.Nodes(dc) {
			dcOf[n] = dc
		}
	}
	beyond, admittedTotal, errs := 0, 0, 0
	for round := 0; round < stressRounds; round++ {
		nodes := oneNode
		if round%2 == 1 {
			nodes = spread
		}
		var mu sync.Mutex
		var admitted []string
		var wg sync.WaitGroup
		for j, node := range nodes {
			pod := tu.Pod(stressNS, "r"+strconv.Itoa(round)+"-"+strconv.Itoa(j)).Labels("round", "r"+strconv.Itoa(round)).NodeName(node).Pod()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := cs.CoreV1().Pods(stressNS).Create(ctx, pod, metav1.CreateOptions{})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					admitted = append(admitted, node)
				case !apierrors.IsInvalid(err):
					errs++
					t.Logf("round %d: %s: %v", round, pod.Name, err)
				}
			}()
		}
		wg.Wait()
		admittedTotal += len(admitted)
		perNode, perDC := map[string]int{}, map[string]int{}
		for _, n := range admitted {
			perNode[n]++
			perDC[dcOf[n]]++
		}
		limit := policy.MaxPerDatacenter(max(len(admitted), 3))
		over := 0
		for _, k := range perNode {
			over += max(k-1, 0)
		}
		for _, k := range perDC {
			over += max(k-limit, 0)
		}
		if over > 0 {
			t.Logf("round %d: admitted on %v: %d beyond a limit", round, admitted, over)
		}
		beyond += over
		if len(admitted) == 0 {
			t.Errorf("round %d: no placement admitted", round)
		}
	}
	after, sumAfter := attempts(), sums()
	recorded := 0.0
	for i := range after {
		d := after[i] - before[i]
		recorded += d
		t.Logf("replica %d recorded %.0f placements", i+1, d)
		if d == 0 {
			t.Errorf("replica %d recorded no placement: the placements did not spread over the replicas", i+1)
		}
	}
	t.Logf("%d rounds of %d concurrent placements: %d admitted, %d beyond a limit, %d other errors; %.0f judgements for %.0f recorded placements (%.0f lost a race and were judged again)",
		stressRounds, stressWidth, admittedTotal, beyond, errs, sumAfter-sumBefore, recorded, sumAfter-sumBefore-recorded)
	if beyond > 0 {
		t.Errorf("%d placements admitted beyond a limit", beyond)
	}
}
