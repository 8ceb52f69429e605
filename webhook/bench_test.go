package webhook

import (
	"context"
	"sort"
	"strconv"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// names returns n distinct names with prefix.
func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// worstCaseAffinity gives b policy.MaxNodeSelectorTerms required node
// affinity terms, each of two In lists on the datacenter key that share
// only pod-1 and hold policy.MaxDatacenterValues values together.
func worstCaseAffinity(b *tu.ObjectBuilder) *tu.ObjectBuilder {
	half := policy.MaxDatacenterValues / 2
	terms := make([]corev1.NodeSelectorTerm, policy.MaxNodeSelectorTerms)
	for i := range terms {
		terms[i] = tu.Term(tu.In(tu.Zone, append(names("a-", half-1), "pod-1")...), tu.In(tu.Zone, append(names("b-", half-1), "pod-1")...))
	}
	return b.RequiredAffinity(terms...)
}

// BenchmarkHandler measures the in-process handler, decoding included, over
// a cluster of 300 nodes in three datacenters and a three-member etcd. It
// reports the p50 and p99 latency of single requests besides ns/op.
func BenchmarkHandler(b *testing.B) {
	eng, err := policy.NewEngine([]v1alpha1.PlacementPolicy{macstadium(v1alpha1.ActionDeny)})
	if err != nil {
		b.Fatal(err)
	}
	objs := tu.Nodes(100, "pod-1", "pod-2", "pod-3")
	objs = append(objs, tu.Namespace("kube-system"), tu.Namespace("apps"),
		tu.Pod("kube-system", "etcd-1").Labels("component", "etcd").NodeName("pod-1-1").Phase(corev1.PodRunning).Obj(),
		tu.Pod("kube-system", "etcd-2").Labels("component", "etcd").NodeName("pod-2-1").Phase(corev1.PodRunning).Obj(),
		tu.Pod("kube-system", "etcd-new").Labels("component", "etcd").Phase(corev1.PodPending).Obj())
	h := &Handler{
		Engine:             func() *policy.Engine { return eng },
		State:              policy.NewStaticState(objs...),
		AllowedLabelGroups: sets.New("system:masters"),
		Metrics:            NewMetrics(nil),
	}
	cases := []struct {
		name    string
		handler admission.Handler
		req     admission.Request
	}{
		{"validate/deployment-allowed", h.Validate(), request(b, admissionv1.Create, tu.Deployment("apps", "worker").Labels("app", "worker").InDC("pod-1").Obj(), nil, admin)},
		{"validate/deployment-denied", h.Validate(), request(b, admissionv1.Create, tu.Deployment("apps", "worker").Labels("app", "worker").Obj(), nil, admin)},
		{"validate/pod-unselected", h.Validate(), request(b, admissionv1.Create, tu.Pod("apps", "web-1").Labels("app", "web").Obj(), nil, admin)},
		{"validate/binding-non-member", h.Validate(), request(b, admissionv1.Create, tu.Binding("apps", "web-1", "pod-1-2"), nil, admin)},
		{"validate/binding-member", h.Validate(), request(b, admissionv1.Create, tu.Binding("kube-system", "etcd-new", "pod-3-1"), nil, admin)},
		{"validate/node-label-change", h.Validate(), request(b, admissionv1.Update, tu.Node("pod-1-1").InDC("pod-2").Obj(), tu.Node("pod-1-1").InDC("pod-1").Obj(), kubelet)},
		{"mutate/deployment-inject", h.Mutate(), request(b, admissionv1.Create, tu.Deployment("apps", "worker").Labels("app", "worker").ObjectLabels(dcLabel, "pod-2").Obj(), nil, admin)},
		// The worst case the limits let through: every term at the limit of
		// values on the datacenter key, two In lists intersecting in one.
		{"validate/affinity-worst-case", h.Validate(), request(b, admissionv1.Create, worstCaseAffinity(tu.Pod("apps", "worker").Labels("app", "worker")).Obj(), nil, admin)},
		{"validate/member-template-worst-case", h.Validate(), request(b, admissionv1.Create,
			worstCaseAffinity(tu.StatefulSet("kube-system", "etcd").Labels("component", "etcd").Replicas(3).TopologySpread(tu.Zone, corev1.DoNotSchedule)).Obj(), nil, admin)},
		// Beyond the limits: two In lists of 60k values in one term, refused
		// without being evaluated (decoding 1.6 MB is most of the cost).
		{"validate/affinity-beyond-limits", h.Validate(), request(b, admissionv1.Create, tu.Pod("apps", "worker").Labels("app", "worker").
			RequiredAffinity(tu.Term(tu.In(tu.Zone, names("dc-", 60000)...), tu.In(tu.Zone, names("dc-", 60000)...))).Obj(), nil, admin)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				c.handler.Handle(ctx, c.req)
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds()), "p99-µs")
		})
	}
}
