package policy_test

import (
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// twentyRules is a policy of 16 pinned and 4 spread rules, one pinned rule
// matching the "worker" Deployment.
func twentyRules() *testutil.PolicyBuilder {
	p := testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3")
	for i := 0; i < 15; i++ {
		p.Pinned(testutil.PinnedRule("svc-"+strconv.Itoa(i)).In("app", "svc-"+strconv.Itoa(i), "other-"+strconv.Itoa(i)))
	}
	p.Pinned(testutil.PinnedRule("workers").In("app", "worker", "jupiter-brain").FromLabel("placement.kubectl-dc.io/datacenter"))
	for i := 0; i < 4; i++ {
		p.Spread(testutil.SpreadPods("quorum-"+strconv.Itoa(i), []string{"kube-system"}, "component", "quorum-"+strconv.Itoa(i)))
	}
	return p
}

func benchEvaluate(b *testing.B, obj *testutil.ObjectBuilder) {
	e := engine(b, twentyRules())
	state := policy.NewStaticState(testutil.Nodes(10, "pod-1", "pod-2", "pod-3")...)
	req := create(obj.Obj(), "travis")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = e.Evaluate(req, state)
	}
}

// BenchmarkEvaluateDeployment is the admission hot path: an admitted
// Deployment against 20 rules.
func BenchmarkEvaluateDeployment(b *testing.B) {
	benchEvaluate(b, testutil.Deployment("travis", "worker").Labels("app", "worker", "placement.kubectl-dc.io/datacenter", "pod-1").
		InDC("pod-1").RequiredAffinity(testutil.Term(testutil.In("disk", "ssd"))))
}

// BenchmarkEvaluateDeploymentDenied is the same Deployment without a
// datacenter: the path that builds a message.
func BenchmarkEvaluateDeploymentDenied(b *testing.B) {
	benchEvaluate(b, testutil.Deployment("travis", "worker").Labels("app", "worker"))
}

// BenchmarkEvaluateBinding binds an etcd member with 5 members and 30 nodes
// in the cache.
func BenchmarkEvaluateBinding(b *testing.B) {
	e := engine(b, etcdPolicy(testutil.Etcd().Expected(5)))
	nodes := testutil.Nodes(10, "pod-1", "pod-2", "pod-3")
	state := policy.NewStaticState(nodes...)
	for i, n := range []string{"pod-1-1", "pod-2-1", "pod-3-1", "pod-1-2"} {
		state.Add(member("etcd-"+strconv.Itoa(i), n).Obj())
	}
	state.Add(member("etcd-new", "").Obj())
	req := bind("etcd-new", "pod-2-2")
	b.ReportAllocs()
	for b.Loop() {
		if rs := e.Evaluate(req, state); rs != nil {
			b.Fatal(rs)
		}
	}
}

// BenchmarkEvaluateWorstCaseAffinity is the evaluation alone (no decoding)
// of the largest affinity the limits let through: MaxNodeSelectorTerms
// terms, each of two In lists on the datacenter key that share only pod-1
// and hold MaxDatacenterValues values together.
func BenchmarkEvaluateWorstCaseAffinity(b *testing.B) {
	half := policy.MaxDatacenterValues / 2
	terms := make([]corev1.NodeSelectorTerm, policy.MaxNodeSelectorTerms)
	for i := range terms {
		terms[i] = testutil.Term(testutil.In(zone, append(hugeValues(half-1), "pod-1")...), testutil.In(zone, append(hugeValues(half-1), "pod-1")...))
		for j := range terms[i].MatchExpressions[1].Values[:half-1] {
			terms[i].MatchExpressions[1].Values[j] = "other-" + strconv.Itoa(j)
		}
	}
	benchEvaluate(b, testutil.Deployment("travis", "worker").Labels("app", "worker").RequiredAffinity(terms...))
}

// BenchmarkEvaluateBeyondLimits is two In lists of 60,000 values: refused
// by the limits without being evaluated.
func BenchmarkEvaluateBeyondLimits(b *testing.B) {
	benchEvaluate(b, testutil.Deployment("travis", "worker").Labels("app", "worker").
		RequiredAffinity(testutil.Term(testutil.In(zone, hugeValues(60000)...), testutil.In(zone, hugeValues(60000)...))))
}
