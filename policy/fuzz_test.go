package policy_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// fuzzValues are the values fuzz objects draw from.
var fuzzValues = testutil.FuzzValues

// fuzzObject builds one of the nine kinds with a pod template chosen by data.
func fuzzObject(data []byte) (*testutil.ObjectBuilder, bool) {
	return testutil.FuzzPinnedObject(data)
}

// nodeMatches is an oracle for the scheduler's node selection, independent of
// the engine: nodeSelector entries must all be present, and some required
// term (an empty or malformed term matches nothing) must match.
func nodeMatches(spec *corev1.PodSpec, nodeLabels labels.Set) bool {
	for k, v := range spec.NodeSelector {
		if got, ok := nodeLabels[k]; !ok || got != v {
			return false
		}
	}
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	ops := map[corev1.NodeSelectorOperator]selection.Operator{
		corev1.NodeSelectorOpIn: selection.In, corev1.NodeSelectorOpNotIn: selection.NotIn, corev1.NodeSelectorOpExists: selection.Exists,
		corev1.NodeSelectorOpDoesNotExist: selection.DoesNotExist, corev1.NodeSelectorOpGt: selection.GreaterThan, corev1.NodeSelectorOpLt: selection.LessThan,
	}
	for _, term := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if len(term.MatchExpressions) == 0 {
			continue
		}
		sel, ok := labels.NewSelector(), true
		for _, e := range term.MatchExpressions {
			r, err := labels.NewRequirement(e.Key, ops[e.Operator], e.Values)
			if err != nil {
				ok = false
				break
			}
			sel = sel.Add(*r)
		}
		if ok && sel.Matches(nodeLabels) {
			return true
		}
	}
	return false
}

// FuzzEvaluatePinned builds random pod templates of every kind: the engine
// never panics, Mutate is idempotent, and any matched template it admits
// selects exactly one known datacenter, by the engine's own reading and by
// an independent oracle over every combination of node labels.
func FuzzEvaluatePinned(f *testing.F) {
	for _, seed := range [][]byte{
		{1, 1, 2, 1, 0, 0}, // Deployment, nodeSelector zone=pod-1
		{6, 1, 2, 0, 1, 0, 0, 0, 2, 1, 0, 0, 1, 2, 0, 1, 1, 1, 0, 1, 6}, // CronJob, ORed permissive term
		{0, 1, 0, 0, 1, 1, 2, 1, 0},                                     // Pod with nodeName
		{3, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1},                               // StatefulSet, affinity pin
	} {
		f.Add(seed)
	}
	p := testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(testutil.PinnedRule("workers").MatchLabels("app", "worker").FromLabel("placement.kubectl-dc.io/datacenter"))
	e, err := policy.NewEngine([]v1alpha1.PlacementPolicy{p.Value()})
	if err != nil {
		f.Fatal(err)
	}
	state := policy.NewStaticState(testutil.Nodes(1, "pod-1", "pod-2", "pod-3")...)
	known := map[string]bool{"pod-1": true, "pod-2": true, "pod-3": true}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, matched := fuzzObject(data)
		obj := b.Obj()
		rs := e.Evaluate(create(obj, "travis"), state)
		if !matched {
			if len(rs) != 0 {
				t.Fatalf("unmatched object judged:\n%s", dump(rs))
			}
			return
		}
		for _, r := range rs {
			if r.Rule != "macstadium/workers" || r.Action != v1alpha1.ActionDeny || r.Field() == "" || r.Message() == "" {
				t.Fatalf("malformed result %+v", r)
			}
		}
		mutated := e.Mutate(obj, "travis", state)
		if mutated && e.Mutate(obj, "travis", state) {
			t.Fatal("Mutate is not idempotent")
		}
		if mutated {
			rs = e.Evaluate(create(obj, "travis"), state)
		}
		if rs.HasDeny() {
			return
		}
		spec := b.Spec()
		dc, ok := policy.SelectedDatacenter(spec, zone)
		if !ok || !known[dc] {
			t.Fatalf("admitted template selects %q (ok=%v): %+v", dc, ok, spec)
		}
		zones := append(append([]string{}, fuzzValues...), "absent", "pod-9")
		for _, z := range zones {
			for _, d := range append(append([]string{}, fuzzValues...), "absent") {
				for _, h := range []string{"pod-1-1", "absent"} {
					l := labels.Set{}
					for k, v := range map[string]string{zone: z, "disk": d, "kubernetes.io/hostname": h} {
						if v != "absent" {
							l[k] = v
						}
					}
					if nodeMatches(spec, l) && (z != dc) {
						t.Fatalf("admitted template selecting %s also matches a node labeled %v: %+v", dc, l, spec)
					}
				}
			}
		}
	})
}
