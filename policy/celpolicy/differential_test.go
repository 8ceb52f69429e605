package celpolicy_test

import (
	"maps"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy/celtest"
)

// TestDifferential runs a corpus of creates and updates of every judged
// kind, selector, placement, datacenterFromLabel and namespace shape
// through the policy engine (as dc-webhook runs it) and through the
// compiled policies (as kube-apiserver runs them), and fails on any
// object whose injected nodeSelector, broken rules or actions differ.
func TestDifferential(t *testing.T) {
	policies := celtest.Policies()
	nodes := celtest.Nodes()
	set, err := celpolicy.Compile(policies, celpolicy.Options{Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	api := newAPIServer(t, set)
	engine, err := policy.NewEngine(policies)
	if err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	for _, n := range nodes {
		objs = append(objs, n)
	}
	for _, ns := range celtest.Namespaces() {
		objs = append(objs, ns)
	}
	state := policy.NewStaticState(objs...)
	rules := celtest.RuleOf(policies)

	corpus := celtest.Corpus(18, 1800, celtest.Namespaces())
	seeds, skipped, err := celtest.Seeds(filepath.Join("..", ".."), celtest.Namespaces())
	if err != nil {
		t.Fatal(err)
	}
	corpus = append(corpus, seeds...)
	counts := map[string]int{}
	differ := 0
	for _, req := range corpus {
		eObj, rs, skipped := celtest.EngineJudged(engine, state, req)
		if skipped > 0 {
			counts["left to the webhook"] += skipped
		}
		if strings.HasPrefix(req.What, "seed ") {
			counts["seeds"]++
			for _, r := range rs {
				counts["seed "+string(r.Action)]++
			}
		}
		cObj, vs := api.admit(t, req.Op, req.Obj, req.Old, req.NS)
		want := map[string]bool{}
		for _, r := range rs {
			want[r.Rule+" "+string(r.Action)] = true
		}
		got := map[string]bool{}
		for _, v := range vs {
			got[rules[v.Policy]+" "+actionOf(v)] = true
		}
		ref := policy.ObjectRefOf(req.Obj)
		if !maps.Equal(want, got) {
			differ++
			t.Errorf("%s %s/%s (%s, %s): engine %v, compiled policies %v\nengine: %s\ncompiled: %s", req.Op, ref.Kind, ref.Namespace+"/"+ref.Name, req.NS.Name, req.What,
				sortedKeys(want), sortedKeys(got), messages(rs), verdictMessages(vs))
		}
		if e, c := celtest.NodeSelectorOf(eObj), celtest.NodeSelectorOf(cObj); !maps.Equal(e, c) {
			differ++
			t.Errorf("%s %s/%s (%s): engine injects nodeSelector %v, compiled policies %v", req.Op, ref.Kind, ref.Name, req.What, e, c)
		}
		counts[string(req.Op)]++
		if len(rs) == 0 {
			counts["admitted"]++
		}
		for _, r := range rs {
			counts[string(r.Action)]++
		}
		if !maps.Equal(celtest.NodeSelectorOf(req.Obj), celtest.NodeSelectorOf(eObj)) {
			counts["mutated"]++
		}
	}
	t.Logf("%d requests (%d of them from the fuzz targets' seed corpora, %d seeds of no judged object left out), %d differences; %v", len(corpus), len(seeds), skipped, differ, counts)
	if len(seeds) < 40 {
		t.Errorf("only %d requests from the seed corpora %v", len(seeds), celtest.SeedCorpora)
	}
	// The corpus must exercise every verdict, or agreement proves little.
	for _, k := range []string{"CREATE", "UPDATE", "admitted", "Deny", "Warn", "Audit", "mutated"} {
		if counts[k] < 20 {
			t.Errorf("only %d requests with %s in the corpus", counts[k], k)
		}
	}
}

func actionOf(v verdict) string {
	switch v.Action {
	case "Warn":
		return string(v1alpha1.ActionWarn)
	case "Audit":
		return string(v1alpha1.ActionAudit)
	}
	return string(v1alpha1.ActionDeny)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func messages(rs policy.Results) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Rule+": "+r.Error.Error())
	}
	return strings.Join(out, "; ")
}

func verdictMessages(vs []verdict) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Message)
	}
	return strings.Join(out, "; ")
}
