package policy_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

const zone = testutil.Zone

// want is one expected result: exact field and action, and a message that
// contains msg (or equals it when exact is set).
type want struct {
	field  string
	action v1alpha1.Action
	msg    string
	exact  bool
}

func deny(field, msg string) want { return want{field: field, action: v1alpha1.ActionDeny, msg: msg} }

func engine(t testing.TB, ps ...*testutil.PolicyBuilder) *policy.Engine {
	t.Helper()
	var list []v1alpha1.PlacementPolicy
	for _, p := range ps {
		list = append(list, p.Value())
	}
	e, err := policy.NewEngine(list)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

func create(obj runtime.Object, ns string) policy.Request {
	return policy.Request{Operation: policy.OperationCreate, Object: obj, Namespace: ns}
}

func assertResults(t *testing.T, got policy.Results, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d results, want %d:\n%s", len(got), len(wants), dump(got))
	}
	for i, w := range wants {
		g := got[i]
		if g.Field() != w.field || g.Action != w.action {
			t.Errorf("result %d: got field %q action %s, want field %q action %s\n%s", i, g.Field(), g.Action, w.field, w.action, dump(got))
		}
		if w.exact && g.Message() != w.msg || !w.exact && !strings.Contains(g.Message(), w.msg) {
			t.Errorf("result %d: message %q does not match %q", i, g.Message(), w.msg)
		}
	}
}

func dump(rs policy.Results) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString("  " + r.Rule + " " + string(r.Action) + " " + r.Field() + ": " + r.Message() + "\n")
	}
	return b.String()
}

// threeDCs is two Ready nodes in each of pod-1, pod-2, pod-3.
func threeDCs() []runtime.Object { return testutil.Nodes(2, "pod-1", "pod-2", "pod-3") }
