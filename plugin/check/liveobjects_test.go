package check

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// yamlStream writes objs as one YAML stream.
func yamlStream(t *testing.T, objs ...runtime.Object) string {
	t.Helper()
	var docs []string
	for _, o := range objs {
		data, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(data))
	}
	return strings.Join(docs, "---\n")
}

// TestCheckFilesUpdateLiveObjects: -f objects checked against the live
// cluster that already exist there are judged as dc-webhook judges their
// UPDATE: a scale-down of quorum members is admitted, and a pod relabelled
// into a datacenterFromLabel rule gets no nodeSelector (an existing pod's
// is immutable) and is denied; a new object is still judged as a create.
func TestCheckFilesUpdateLiveObjects(t *testing.T) {
	const dcLabel = "placement.kubectl-dc.io/datacenter"
	pol := testutil.Policy("live").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(testutil.PinnedRule("workers").MatchLabels("app", "worker").FromLabel(dcLabel)).
		Spread(testutil.SpreadPods("quorum", []string{"db"}, "role", "quorum")).Obj()
	members := func(name string, replicas int32) *testutil.ObjectBuilder {
		return testutil.StatefulSet("db", name).Labels("role", "quorum").TopologySpread(testutil.Zone, corev1.DoNotSchedule).Replicas(replicas)
	}
	loner := func(app string) *testutil.ObjectBuilder {
		return testutil.Pod("travis", "loner").Labels("app", app).ObjectLabels(dcLabel, "pod-2").NodeName("pod-2-1")
	}
	live := append(testutil.Nodes(1, "pod-1", "pod-2", "pod-3"), members("members", 3).Obj(), loner("web").Obj())
	setup := liveCluster(t, []*v1alpha1.PlacementPolicy{pol}, live...)
	stdin := yamlStream(t, members("members", 2).Obj(), loner("worker").Obj(), members("fresh", 2).Obj())

	got := runCheck(t, stdin, setup, "-f", "-", "-o", "json")
	if got.code != cmdutil.ExitFindings {
		t.Fatalf("exit code = %d, want %d\n%s%s", got.code, cmdutil.ExitFindings, got.out, got.errOut)
	}
	var rep checkReport
	if err := json.Unmarshal([]byte(got.out), &rep); err != nil {
		t.Fatalf("not a JSON report: %v\n%s", err, got.out)
	}
	want := []struct{ kind, name, field, message string }{
		{"StatefulSet", "fresh", "spec.replicas", "2 voting members over 3 datacenter(s) put at least 1 in one"},
		{"Pod", "loner", "spec.nodeSelector[" + testutil.Zone + "]", "pods must select exactly one datacenter: set nodeSelector[" + testutil.Zone + "] to pod-2"},
	}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d:\n%s", len(rep.Results), len(want), got.out)
	}
	for i, w := range want {
		r := rep.Results[i]
		if r.Object.Kind != w.kind || r.Object.Name != w.name || r.Field != w.field || r.Action != v1alpha1.ActionDeny || !strings.Contains(r.Message, w.message) {
			t.Errorf("result %d = %+v, want a Deny of %s %s on %s saying %q", i, r, w.kind, w.name, w.field, w.message)
		}
	}
	if len(rep.Mutations) != 0 {
		t.Errorf("mutations %+v, want none: an existing pod's nodeSelector cannot be set", rep.Mutations)
	}
	if note := "note: 2 objects already in the cluster: judged as updates of the live objects"; !strings.Contains(got.errOut, note) {
		t.Errorf("stderr lacks %q:\n%s", note, got.errOut)
	}

	// Offline, with the policy from a file, every object is a create.
	offline := runCheck(t, stdin+"---\n"+yamlStream(t, append(testutil.Nodes(1, "pod-1", "pod-2", "pod-3"), pol)...), nil, "-f", "-", "-o", "json")
	if err := json.Unmarshal([]byte(offline.out), &rep); err != nil {
		t.Fatalf("not a JSON report: %v\n%s", err, offline.out)
	}
	if offline.code != cmdutil.ExitFindings || len(rep.Results) != 2 || rep.Results[0].Object.Name != "fresh" || rep.Results[1].Object.Name != "members" || len(rep.Mutations) != 1 {
		t.Errorf("offline: exit %d, want 1 with the two StatefulSets denied and the pod mutated:\n%s", offline.code, offline.out)
	}
}

// TestCheckFilesReadOwners: a -f member pod owned by a StatefulSet of the
// cluster takes N from the owner's replicas, as dc-webhook does: with
// members placed 1/1/1, a fourth in pod-1 is allowed when the owner has 5
// replicas, and refused when its owner is not in the cluster (N inferred
// as 4).
func TestCheckFilesReadOwners(t *testing.T) {
	pol := testutil.Policy("live").Datacenters("pod-1", "pod-2", "pod-3").
		Spread(testutil.SpreadPods("quorum", []string{"db"}, "role", "quorum")).Obj()
	owner := testutil.StatefulSet("db", "members").Labels("role", "quorum").TopologySpread(testutil.Zone, corev1.DoNotSchedule).Replicas(5).StatefulSet()
	owner.UID = "uid-members"
	member := func(name, node string) *testutil.ObjectBuilder {
		return testutil.Pod("db", name).Labels("role", "quorum").NodeName(node)
	}
	live := append(testutil.Nodes(2, "pod-1", "pod-2", "pod-3"), owner,
		member("m-0", "pod-1-1").Obj(), member("m-1", "pod-2-1").Obj(), member("m-2", "pod-3-1").Obj())
	setup := liveCluster(t, []*v1alpha1.PlacementPolicy{pol}, live...)
	for _, tc := range []struct {
		owner  string
		denied bool
	}{{"members", false}, {"gone", true}} {
		t.Run(tc.owner, func(t *testing.T) {
			stdin := yamlStream(t, ownedBy(member("m-3", "pod-1-2").Obj(), "StatefulSet", tc.owner))
			got := runCheck(t, stdin, setup, "-f", "-", "-o", "json")
			var rep checkReport
			if err := json.Unmarshal([]byte(got.out), &rep); err != nil {
				t.Fatalf("not a JSON report: %v\n%s", err, got.out)
			}
			denied := got.code == cmdutil.ExitFindings && len(rep.Results) == 1 && strings.Contains(rep.Results[0].Message, "datacenter pod-1 would hold 2 of N=4")
			if denied != tc.denied || !denied && (got.code != 0 || len(rep.Results) != 0) {
				t.Errorf("exit %d, results %+v; want denied=%v", got.code, rep.Results, tc.denied)
			}
		})
	}
}

// TestCheckFilesLiveObjectsForbidden: when the live objects of a kind
// cannot be listed, a -f object of that kind is judged as a create, which
// judges everything, and a note says so: the scale-down is refused.
func TestCheckFilesLiveObjectsForbidden(t *testing.T) {
	pol := testutil.Policy("live").Datacenters("pod-1", "pod-2", "pod-3").
		Spread(testutil.SpreadPods("quorum", []string{"db"}, "role", "quorum")).Obj()
	members := func(replicas int32) runtime.Object {
		return testutil.StatefulSet("db", "members").Labels("role", "quorum").TopologySpread(testutil.Zone, corev1.DoNotSchedule).Replicas(replicas).Obj()
	}
	live := liveCluster(t, []*v1alpha1.PlacementPolicy{pol}, append(testutil.Nodes(1, "pod-1", "pod-2", "pod-3"), members(3))...)
	setup := func(o *Options) {
		live(o)
		o.clientset.(*fake.Clientset).PrependReactor("list", "statefulsets", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "statefulsets"}, "", errors.New("no list"))
		})
	}
	got := runCheck(t, yamlStream(t, members(2)), setup, "-f", "-", "-o", "json")
	var rep checkReport
	if err := json.Unmarshal([]byte(got.out), &rep); err != nil {
		t.Fatalf("not a JSON report: %v\n%s", err, got.out)
	}
	if got.code != cmdutil.ExitFindings || len(rep.Results) != 1 || rep.Results[0].Field != "spec.replicas" {
		t.Errorf("exit %d, results %+v; want 1 with the scale-down judged as a create and refused", got.code, rep.Results)
	}
	if note := "note: the live statefulsets.apps cannot be read"; !strings.Contains(got.errOut, note) || strings.Contains(got.errOut, "already in the cluster") {
		t.Errorf("stderr does not say the StatefulSets could not be read:\n%s", got.errOut)
	}
}

// TestCheckFilesUpdateLiveDeclared: a -f object of a declared kind that
// exists in the cluster is mutated as dc-webhook mutates its UPDATE
// (MutateDeclaredUpdate): a change of replicas that leaves the labels and
// the template alone gets no nodeSelector, as a template relabelled into
// the rule and a new object do.
func TestCheckFilesUpdateLiveDeclared(t *testing.T) {
	var pol v1alpha1.PlacementPolicy
	if err := runtimeDecode(rolloutPolicy, &pol); err != nil {
		t.Fatal(err)
	}
	// rolloutOf is the Rollout name of team-a, in pod-3 by its label, with
	// replicas and its template labelled app.
	rolloutOf := func(name string, replicas int, app string) string {
		return "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\n" +
			"metadata: {name: " + name + ", namespace: team-a, labels: {placement.kubectl-dc.io/datacenter: pod-3}}\n" +
			"spec:\n  replicas: " + strconv.Itoa(replicas) + "\n  template:\n    metadata: {labels: {app: " + app + "}}\n" +
			"    spec:\n      containers: [{name: w, image: w:1}]\n"
	}
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{cluster.PolicyGVR: "PlacementPolicyList", gvr: "RolloutList"})
	if _, err := dc.Resource(cluster.PolicyGVR).Create(t.Context(), toUnstructured(t, &pol), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, live := range []string{rolloutOf("scaled", 3, "worker"), rolloutOf("relabelled", 3, "web")} {
		var u unstructured.Unstructured
		if err := runtimeDecode(live, &u.Object); err != nil {
			t.Fatal(err)
		}
		if _, err := dc.Resource(gvr).Namespace("team-a").Create(t.Context(), &u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cs := fake.NewClientset(append(testutil.Nodes(1, "pod-1", "pod-2", "pod-3"), testutil.Namespace("team-a"))...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{
		{GroupVersion: "argoproj.io/v1alpha1", APIResources: []metav1.APIResource{{Name: "rollouts", Kind: "Rollout", Namespaced: true}}},
	}
	stdin := rolloutOf("scaled", 5, "worker") + "---\n" + rolloutOf("relabelled", 3, "worker") + "---\n" + rolloutOf("fresh", 3, "worker")

	got := runCheck(t, stdin, func(o *Options) { o.clientset, o.dynamicClient = cs, dc }, "-f", "-", "-o", "json")
	rep := decodeReport(t, got)
	var mutated []string
	for _, m := range rep.Mutations {
		mutated = append(mutated, m.Object.Name+" "+m.Field+"="+m.Value)
	}
	sel := " spec.template.spec.nodeSelector[" + testutil.Zone + "]=pod-3"
	if want := []string{"relabelled" + sel, "fresh" + sel}; !slices.Equal(mutated, want) {
		t.Errorf("mutations %q, want %q (exit %d)\n%s%s", mutated, want, got.code, got.out, got.errOut)
	}
	if note := "note: 2 objects already in the cluster: judged as updates of the live objects"; !strings.Contains(got.errOut, note) {
		t.Errorf("stderr lacks %q:\n%s", note, got.errOut)
	}
}
