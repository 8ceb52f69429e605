package policy_test

import (
	"testing"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// TestPinnedMatchesTemplateLabels: a workload whose pod template carries
// the selected labels while its own metadata does not is judged (its pods
// would all be denied), and the mutation applies to it too.
func TestPinnedMatchesTemplateLabels(t *testing.T) {
	e := engine(t, workersPolicy())
	state := policy.NewStaticState(threeDCs()...)
	for _, b := range testutil.Kinds("travis", "worker") {
		if b.Kind() == "Pod" {
			continue
		}
		t.Run(b.Kind(), func(t *testing.T) {
			obj := b.ObjectLabels("app", "web").TemplateLabels("app", "worker").Obj()
			path := policy.PodTemplates(obj)[0].Path.String()
			assertResults(t, e.Evaluate(create(obj, "travis"), state),
				[]want{deny(path+nsPath, "pods must select exactly one datacenter")})
		})
	}
	t.Run("neither object nor template labels", func(t *testing.T) {
		obj := testutil.Deployment("travis", "web").ObjectLabels("app", "web").TemplateLabels("app", "web").Obj()
		assertResults(t, e.Evaluate(create(obj, "travis"), state), nil)
	})
	t.Run("mutation by template labels", func(t *testing.T) {
		me := engine(t, testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
			Pinned(testutil.PinnedRule("workers").In("app", "worker").FromLabel("dc")))
		obj := testutil.Deployment("travis", "w").ObjectLabels("dc", "pod-2").TemplateLabels("app", "worker").Obj()
		if !me.Mutate(obj, "travis", state) {
			t.Fatal("Mutate changed nothing")
		}
		assertResults(t, me.Evaluate(create(obj, "travis"), state), nil)
	})
}
