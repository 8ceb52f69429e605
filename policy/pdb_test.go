package policy_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// budget is the expected exported counts of a PDBBudget.
type budget struct {
	matched, live, expected, desired, healthy, allowed int
	fromStatus, selectsNothing                         bool
}

func countsOf(b policy.PDBBudget) budget {
	return budget{
		matched: b.Matched, live: b.Live, expected: b.Expected, desired: b.DesiredHealthy,
		healthy: b.CurrentHealthy, allowed: b.DisruptionsAllowed,
		fromStatus: b.ExpectedFromStatus, selectsNothing: b.SelectsNothing,
	}
}

// pods joins pod lists.
func pods(lists ...[]*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func web(n int) []*corev1.Pod { return testutil.ReadyPods("shop", "web", n, "app", "web") }

func TestPDBBudgetOf(t *testing.T) {
	pdb := func() *testutil.PDBBuilder { return testutil.PDB("shop", "web").MatchLabels("app", "web") }
	unready := testutil.Pod("shop", "web-unready").Labels("app", "web").Ready(false).Pod()
	pending := testutil.Pod("shop", "web-pending").Labels("app", "web").Pod()
	terminating := testutil.Pod("shop", "web-terminating").Labels("app", "web").Ready(true).Deleting().Pod()
	failed := testutil.Pod("shop", "web-failed").Labels("app", "web").Phase(corev1.PodFailed).Pod()
	otherNS := testutil.ReadyPods("other", "web", 2, "app", "web")
	otherApp := testutil.ReadyPods("shop", "db", 2, "app", "db")

	for _, tc := range []struct {
		name string
		pdb  *testutil.PDBBuilder
		pods []*corev1.Pod
		want budget
	}{
		// The example: the percentage is of the controllers' scale
		// (3, from the status), not of the 5 pods found.
		{"minAvailable 50% of status.expectedPods", pdb().MinAvailable("50%").Synced(3), web(5),
			budget{matched: 5, live: 5, expected: 3, desired: 2, healthy: 5, allowed: 3, fromStatus: true}},
		{"minAvailable 50% without a status", pdb().MinAvailable("50%"), web(5),
			budget{matched: 5, live: 5, expected: 5, desired: 3, healthy: 5, allowed: 2}},
		{"minAvailable 50% with a stale status", pdb().MinAvailable("50%").Stale(3), web(5),
			budget{matched: 5, live: 5, expected: 5, desired: 3, healthy: 5, allowed: 2}},
		{"minAvailable 50% with expectedPods 0", pdb().MinAvailable("50%").Synced(0), web(5),
			budget{matched: 5, live: 5, expected: 5, desired: 3, healthy: 5, allowed: 2}},
		{"maxUnavailable 10% of 200 pods", pdb().MaxUnavailable("10%").Synced(200), web(200),
			budget{matched: 200, live: 200, expected: 200, desired: 180, healthy: 200, allowed: 20, fromStatus: true}},
		{"maxUnavailable 10% rounds the pods allowed down up", pdb().MaxUnavailable("10%").Synced(195), web(195),
			budget{matched: 195, live: 195, expected: 195, desired: 175, healthy: 195, allowed: 20, fromStatus: true}},
		{"maxUnavailable 1 of the status", pdb().MaxUnavailable("1").Synced(4), web(3),
			budget{matched: 3, live: 3, expected: 4, desired: 3, healthy: 3, allowed: 0, fromStatus: true}},
		{"maxUnavailable 0", pdb().MaxUnavailable("0").Synced(3), web(3),
			budget{matched: 3, live: 3, expected: 3, desired: 3, healthy: 3, allowed: 0, fromStatus: true}},
		{"maxUnavailable above the pods", pdb().MaxUnavailable("5").Synced(3), web(3),
			budget{matched: 3, live: 3, expected: 3, desired: 0, healthy: 3, allowed: 3, fromStatus: true}},
		// An integer minAvailable counts the matched pods, whatever the
		// status says.
		{"minAvailable 2 ignores the status", pdb().MinAvailable("2").Synced(10), web(3),
			budget{matched: 3, live: 3, expected: 3, desired: 2, healthy: 3, allowed: 1}},
		{"minAvailable 100%", pdb().MinAvailable("100%").Synced(3), web(3),
			budget{matched: 3, live: 3, expected: 3, desired: 3, healthy: 3, allowed: 0, fromStatus: true}},
		// Neither field: the disruption controller expects no pod and
		// allows no disruption.
		{"neither minAvailable nor maxUnavailable", pdb().Synced(3), web(3),
			budget{matched: 3, live: 3, expected: 0, desired: 0, healthy: 3, allowed: 0}},
		{"unhealthy pods", pdb().MinAvailable("2"), pods(web(2), []*corev1.Pod{unready, pending}),
			budget{matched: 4, live: 4, expected: 4, desired: 2, healthy: 2, allowed: 0}},
		{"terminating and failed pods", pdb().MinAvailable("2"), pods(web(2), []*corev1.Pod{terminating, failed}),
			budget{matched: 4, live: 2, expected: 4, desired: 2, healthy: 2, allowed: 0}},
		{"terminating pods do not count to the scale", pdb().MaxUnavailable("1"), pods(web(3), []*corev1.Pod{terminating}),
			budget{matched: 4, live: 3, expected: 3, desired: 2, healthy: 3, allowed: 1}},
		{"evicted pods are not healthy", pdb().MinAvailable("2").Disrupted("web-1"), web(3),
			budget{matched: 3, live: 3, expected: 3, desired: 2, healthy: 2, allowed: 0}},
		{"other namespaces and labels", pdb().MinAvailable("1"), pods(web(2), otherNS, otherApp),
			budget{matched: 2, live: 2, expected: 2, desired: 1, healthy: 2, allowed: 1}},
		{"empty selector: every pod of the namespace", testutil.PDB("shop", "all").MatchLabels().MinAvailable("1"), pods(web(2), otherNS, otherApp),
			budget{matched: 4, live: 4, expected: 4, desired: 1, healthy: 4, allowed: 3}},
		{"no selector: no pod", testutil.PDB("shop", "none").MinAvailable("1"), web(2),
			budget{selectsNothing: true, desired: 1}},
		{"no pods", pdb().MinAvailable("1"), nil, budget{desired: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := policy.PDBBudgetOf(tc.pdb.Obj(), tc.pods)
			if got := countsOf(b); got != tc.want {
				t.Errorf("PDBBudgetOf =\n%+v\nwant\n%+v", got, tc.want)
			}
			if b.SelectorError != "" || b.SpecError != "" {
				t.Errorf("errors %q, %q", b.SelectorError, b.SpecError)
			}
		})
	}
}

func TestPDBBudgetErrors(t *testing.T) {
	bad := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}
	b := policy.PDBBudgetOf(testutil.PDB("shop", "web").Selector(bad).MinAvailable("1").Obj(), web(3))
	if !b.SelectsNothing || b.SelectorError == "" || b.Matched != 0 || b.Covers(web(1)[0]) {
		t.Errorf("invalid selector: %+v", countsOf(b))
	}

	// A percentage that does not parse: the controller fails safe and allows
	// no disruption; losing any healthy pod breaks the budget.
	b = policy.PDBBudgetOf(testutil.PDB("shop", "web").MatchLabels("app", "web").MaxUnavailable("ten%").Synced(3).Obj(), web(3))
	if b.SpecError == "" || b.DisruptionsAllowed != 0 || b.AllowedAtFullHealth() != 0 {
		t.Errorf("bad percentage: SpecError %q, %+v", b.SpecError, countsOf(b))
	}
	if !b.ViolatedBy(named("web-1")) {
		t.Error("bad percentage: losing a healthy pod does not break the budget")
	}
}

// named selects the pods of those names.
func named(names ...string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		for _, n := range names {
			if p.Name == n {
				return true
			}
		}
		return false
	}
}

func TestPDBBudgetViolatedBy(t *testing.T) {
	unready := testutil.Pod("shop", "web-unready").Labels("app", "web").Ready(false).Pod()
	for _, tc := range []struct {
		name     string
		pdb      *testutil.PDBBuilder
		pods     []*corev1.Pod
		gone     []string
		left     int
		violated bool
	}{
		{"nothing gone", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("2"), web(3), nil, 3, false},
		{"within the budget", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("2"), web(3), []string{"web-1"}, 2, false},
		{"beyond the budget", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("2"), web(3), []string{"web-1", "web-2"}, 1, true},
		{"the issue's example keeps 2 of 5", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("50%").Synced(3), web(5),
			[]string{"web-1", "web-2", "web-3"}, 2, false},
		{"the issue's example loses 4 of 5", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("50%").Synced(3), web(5),
			[]string{"web-1", "web-2", "web-3", "web-4"}, 1, true},
		{"maxUnavailable 10% of 200 loses 21", testutil.PDB("shop", "web").MatchLabels("app", "web").MaxUnavailable("10%").Synced(200), web(200),
			[]string{"web-1", "web-2", "web-3", "web-4", "web-5", "web-6", "web-7", "web-8", "web-9", "web-10",
				"web-11", "web-12", "web-13", "web-14", "web-15", "web-16", "web-17", "web-18", "web-19", "web-20", "web-21"}, 179, true},
		{"already broken, losing an unhealthy pod", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("3"),
			pods(web(2), []*corev1.Pod{unready}), []string{"web-unready"}, 2, false},
		{"already broken, losing a healthy pod", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("3"),
			pods(web(2), []*corev1.Pod{unready}), []string{"web-1"}, 1, true},
		{"pods of another namespace", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("2"),
			pods(web(2), testutil.ReadyPods("other", "web", 2, "app", "web")), []string{"web-1"}, 1, true},
		{"neither field never breaks", testutil.PDB("shop", "web").MatchLabels("app", "web"), web(3), []string{"web-1", "web-2", "web-3"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := policy.PDBBudgetOf(tc.pdb.Obj(), tc.pods)
			if got := b.HealthyLeft(named(tc.gone...)); got != tc.left {
				t.Errorf("HealthyLeft = %d, want %d", got, tc.left)
			}
			if got := b.ViolatedBy(named(tc.gone...)); got != tc.violated {
				t.Errorf("ViolatedBy = %v, want %v (%+v)", got, tc.violated, countsOf(b))
			}
		})
	}
}

func TestPDBBudgetAllowedAtFullHealth(t *testing.T) {
	unready := testutil.Pod("shop", "web-unready").Labels("app", "web").Ready(false).Pod()
	failed := testutil.Pod("shop", "web-failed").Labels("app", "web").Phase(corev1.PodFailed).Pod()
	for _, tc := range []struct {
		name string
		pdb  *testutil.PDBBuilder
		pods []*corev1.Pod
		want int
	}{
		{"minAvailable 2 of 3", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("2"), web(3), 1},
		{"an unready pod may still become healthy", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("2"),
			pods(web(2), []*corev1.Pod{unready}), 1},
		{"a failed pod never will", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("2"),
			pods(web(2), []*corev1.Pod{failed}), 0},
		{"minAvailable equal to the pods", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("3"), web(3), 0},
		{"maxUnavailable 1 of the status", testutil.PDB("shop", "web").MatchLabels("app", "web").MaxUnavailable("1").Synced(5), web(3), 1},
		{"maxUnavailable 0", testutil.PDB("shop", "web").MatchLabels("app", "web").MaxUnavailable("0").Synced(3), web(3), 0},
		{"minAvailable 50% of status.expectedPods", testutil.PDB("shop", "web").MatchLabels("app", "web").MinAvailable("50%").Synced(3), web(5), 1},
		{"neither field", testutil.PDB("shop", "web").MatchLabels("app", "web").Synced(3), web(3), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := policy.PDBBudgetOf(tc.pdb.Obj(), tc.pods).AllowedAtFullHealth(); got != tc.want {
				t.Errorf("AllowedAtFullHealth = %d, want %d", got, tc.want)
			}
		})
	}
}
