package check

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func decodeReport(t *testing.T, got checkRun) checkReport {
	t.Helper()
	var rep checkReport
	if err := json.Unmarshal([]byte(got.out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s\n%s", err, got.out, got.errOut)
	}
	return rep
}

// TestSharedIdentityEachJudged: two documents of Deployment team-a/worker
// in two files (one tree per datacenter), one wrong: one Deny naming the
// wrong file and line, exit 1, and a note that they share an identity.
func TestSharedIdentityEachJudged(t *testing.T) {
	good := readTestdata(t, "good.yaml")
	dir := writeFiles(t, map[string]string{
		"pod-1/worker.yaml": good,
		"pod-2/worker.yaml": "# pod-2's overlay\n---\n" + readTestdata(t, "deny.yaml"),
		"pod-3/worker.yaml": good,
	})
	got := runCheck(t, "", nil, "-f", dir, "-R", "--policy", td+"policy.yaml", "-o", "json")
	if got.code != cmdutil.ExitFindings {
		t.Fatalf("exit code = %d, want 1\n%s%s", got.code, got.out, got.errOut)
	}
	rep := decodeReport(t, got)
	wrong := filepath.Join(dir, "pod-2/worker.yaml")
	if len(rep.Results) != 1 || rep.Results[0].Source != (source{File: wrong, Document: 1, Line: 4}) || rep.Results[0].Action != v1alpha1.ActionDeny {
		t.Errorf("results = %+v, want one Deny from %s document 1 line 4", rep.Results, wrong)
	}
	if rep.Summary.Objects != 3 {
		t.Errorf("%d objects checked, want 3", rep.Summary.Objects)
	}
	want := "note: Deployment/team-a/worker is defined by 3 documents (" + filepath.Join(dir, "pod-1/worker.yaml") + "#1:1, " + wrong + "#1:4, " + filepath.Join(dir, "pod-3/worker.yaml") + "#1:1): each is judged on its own\n"
	if !strings.Contains(got.errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, got.errOut)
	}
}

// TestListItemSource: an item of a List is named by its document and
// item.
func TestListItemSource(t *testing.T) {
	got := runCheck(t, "", nil, "-f", td+"list.json", "--policy", td+"policy.yaml", "-o", "json")
	rep := decodeReport(t, got)
	for _, r := range rep.Results {
		if r.Source.File != td+"list.json" || r.Source.Document != 1 || r.Source.Item == "" {
			t.Errorf("source %+v names no item", r.Source)
		}
	}
}

const fromLabelOnly = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: team-a
  labels: {app: worker, placement.kubectl-dc.io/datacenter: pod-2}
spec:
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers: [{name: worker, image: worker:1}]
`

// TestOfflineMutation: a Deployment carrying only the datacenter label is
// admitted offline as the webhook admits it: the mutation injects the
// nodeSelector first, and check shows it.
func TestOfflineMutation(t *testing.T) {
	got := runCheck(t, fromLabelOnly, nil, "-f", "-", "--policy", td+"policy.yaml", "-o", "json")
	if got.code != cmdutil.ExitOK {
		t.Fatalf("exit code = %d, want 0\n%s%s", got.code, got.out, got.errOut)
	}
	rep := decodeReport(t, got)
	want := mutation{Object: policy.ObjectRef{Kind: "Deployment", Namespace: "team-a", Name: "worker"}, Source: "<stdin>#1:1",
		Field: "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]", Value: "pod-2"}
	if len(rep.Mutations) != 1 || rep.Mutations[0] != want || len(rep.Results) != 0 {
		t.Errorf("mutations %+v results %+v, want %+v and no result", rep.Mutations, rep.Results, want)
	}
	if !strings.Contains(got.errOut, "mutated: <stdin>#1:1 Deployment/team-a/worker: spec.template.spec.nodeSelector[topology.kubernetes.io/zone]=pod-2, as dc-webhook's mutation injects it\n") {
		t.Errorf("stderr does not show the mutation:\n%s", got.errOut)
	}
}

// TestTemplateLabelsMatch: a ReplicationController whose template carries
// app: worker while its own metadata does not is judged: its pods would be.
func TestTemplateLabelsMatch(t *testing.T) {
	rc := `apiVersion: v1
kind: ReplicationController
metadata: {name: legacy, namespace: team-a, labels: {tier: backend}}
spec:
  selector: {app: worker}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers: [{name: w, image: w:1}]
`
	got := runCheck(t, rc, nil, "-f", "-", "--policy", td+"policy.yaml")
	if got.code != cmdutil.ExitFindings || !strings.Contains(got.out, "ReplicationController/team-a/legacy   <stdin>#1:1   macstadium/workers   Deny") {
		t.Errorf("exit code = %d\n%s%s", got.code, got.out, got.errOut)
	}
}

const nsPolicy = `apiVersion: placement.kubectl-dc.io/v1alpha1
kind: PlacementPolicy
metadata: {name: prod}
spec:
  datacenters: [pod-1, pod-2, pod-3]
  pinned:
  - name: prod-workers
    namespaceSelector: {matchLabels: {env: prod}}
    selector: {matchLabels: {app: worker}}
`

const helmOutput = `apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, labels: {app: worker}}
spec:
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers: [{name: worker, image: worker:1}]
`

// TestNamespaces: objects without a namespace take -n, else the kubeconfig
// context's, else default, and the summary says which; a namespaceSelector
// is evaluated against Namespace documents, else --namespace-labels, and
// when neither knows the namespace each rule is warned about.
func TestNamespaces(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"policy.yaml": nsPolicy,
		"kubeconfig": `apiVersion: v1
kind: Config
current-context: ci
contexts:
- name: ci
  context: {cluster: ci, namespace: team-ci}
clusters:
- name: ci
  cluster: {server: "https://127.0.0.1:1"}
`,
		"ns-prod.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {env: prod}}\n",
		"ns-dev.yaml":  "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {env: dev}}\n",
	})
	pol := filepath.Join(dir, "policy.yaml")
	tests := []struct {
		name   string
		args   []string
		code   int
		outHas string
		errHas string
		errNot string
	}{
		{"-n and a Namespace document that matches", []string{"-n", "team-a", "-f", filepath.Join(dir, "ns-prod.yaml")}, cmdutil.ExitFindings,
			"1 object checked, 1 denied, 0 warnings, 0 audit; 1 object without a namespace judged in team-a (from -n)\n", "", "warning"},
		{"a Namespace document that does not match", []string{"-n", "team-a", "-f", filepath.Join(dir, "ns-dev.yaml")}, cmdutil.ExitOK,
			"1 object checked, 0 denied", "", "warning"},
		{"--namespace-labels", []string{"-n", "team-a", "--namespace-labels", "team-a=env=prod,tier=web"}, cmdutil.ExitFindings,
			"1 denied", "", "warning"},
		{"--namespace-labels that do not match", []string{"-n", "team-a", "--namespace-labels", "team-a=env=dev"}, cmdutil.ExitOK,
			"0 denied", "", "warning"},
		{"the kubeconfig context's namespace, unknown labels", []string{"--kubeconfig", filepath.Join(dir, "kubeconfig")}, cmdutil.ExitFindings,
			"1 object without a namespace judged in team-ci (from the kubeconfig context)\n",
			"warning: rule prod/prod-workers has a namespaceSelector, and the labels of namespace team-ci are unknown: the rule was applied there as if it matched; add the Namespace to -f, or pass --namespace-labels team-ci=KEY=VALUE,...\n", ""},
		{"default", nil, cmdutil.ExitFindings,
			"1 object without a namespace judged in default (the default)\n", "warning: rule prod/prod-workers has a namespaceSelector, and the labels of namespace default are unknown", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-f", "-", "--policy", pol}, tt.args...)
			got := runCheck(t, helmOutput, nil, args...)
			if got.code != tt.code || !strings.Contains(got.out, tt.outHas) || !strings.Contains(got.errOut, tt.errHas) || (tt.errNot != "" && strings.Contains(got.errOut, tt.errNot)) {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, tt.code, got.out, got.errOut)
			}
		})
	}
	t.Run("bad --namespace-labels", func(t *testing.T) {
		got := runCheck(t, helmOutput, nil, "-f", "-", "--policy", pol, "--namespace-labels", "team-a")
		if got.code != cmdutil.ExitUsage || !strings.Contains(got.errOut, `--namespace-labels "team-a": `) {
			t.Errorf("exit code = %d\n%s", got.code, got.errOut)
		}
	})
}

const rolloutPolicy = `apiVersion: placement.kubectl-dc.io/v1alpha1
kind: PlacementPolicy
metadata: {name: macstadium}
spec:
  datacenters: [pod-1, pod-2, pod-3]
  workloadKinds:
  - {group: argoproj.io, kind: Rollout, templatePath: spec.template}
  pinned:
  - name: workers
    selector: {matchLabels: {app: worker}}
    datacenterFromLabel: placement.kubectl-dc.io/datacenter
`

const rollout = `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: worker, namespace: team-a}
spec:
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers: [{name: w, image: w:1}]
`

// TestDeclaredKinds: a kind the policy declares is judged at its template
// path, offline (with the mutation) and live; a kind that only looks like
// a workload is named with the hint to declare it; the rest is one line.
func TestDeclaredKinds(t *testing.T) {
	dir := writeFiles(t, map[string]string{"policy.yaml": rolloutPolicy})
	pol := filepath.Join(dir, "policy.yaml")
	clone := strings.ReplaceAll(strings.ReplaceAll(rollout, "argoproj.io/v1alpha1", "apps.kruise.io/v1alpha1"), "Rollout", "CloneSet")
	configs := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: team-a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: team-a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team-a}\n"

	t.Run("offline", func(t *testing.T) {
		got := runCheck(t, rollout+"---\n"+clone+"---\n"+clone+"---\n"+configs, nil, "-f", "-", "--policy", pol, "-o", "wide")
		if got.code != cmdutil.ExitFindings || !strings.Contains(got.out, "Rollout/team-a/worker   <stdin>#1:1   macstadium/workers   Deny     spec.template.spec.nodeSelector[topology.kubernetes.io/zone]") {
			t.Errorf("exit code = %d\n%s%s", got.code, got.out, got.errOut)
		}
		wantErr := "warning: 2 objects of kind apps.kruise.io/v1alpha1 CloneSet look like workloads (a pod template at spec.template) but no policy declares the kind: they are not judged; declare it in a policy's spec.workloadKinds: {group: \"apps.kruise.io\", kind: CloneSet, templatePath: spec.template}\n" +
			"note: skipped 3 objects of 2 kinds that have no pod template; --verbose lists them\n"
		if got.errOut != wantErr {
			t.Errorf("stderr:\n%s\nwant:\n%s", got.errOut, wantErr)
		}
	})
	t.Run("offline mutation", func(t *testing.T) {
		labelled := strings.Replace(rollout, "namespace: team-a}", "namespace: team-a, labels: {placement.kubectl-dc.io/datacenter: pod-3}}", 1)
		got := runCheck(t, labelled, nil, "-f", "-", "--policy", pol)
		if got.code != cmdutil.ExitOK || !strings.Contains(got.errOut, "mutated: <stdin>#1:1 Rollout/team-a/worker: spec.template.spec.nodeSelector[topology.kubernetes.io/zone]=pod-3") {
			t.Errorf("exit code = %d\n%s%s", got.code, got.out, got.errOut)
		}
	})
	t.Run("live", func(t *testing.T) {
		var p v1alpha1.PlacementPolicy
		if err := runtimeDecode(rolloutPolicy, &p); err != nil {
			t.Fatal(err)
		}
		gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}
		var u unstructured.Unstructured
		if err := runtimeDecode(rollout, &u.Object); err != nil {
			t.Fatal(err)
		}
		dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
			map[schema.GroupVersionResource]string{cluster.PolicyGVR: "PlacementPolicyList", gvr: "RolloutList"})
		if _, err := dc.Resource(cluster.PolicyGVR).Create(t.Context(), toUnstructured(t, &p), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := dc.Resource(gvr).Namespace("team-a").Create(t.Context(), &u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cs := fake.NewClientset(testutil.Node("n1").InDC("pod-1").Obj(), testutil.Namespace("team-a"))
		cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{
			{GroupVersion: "argoproj.io/v1alpha1", APIResources: []metav1.APIResource{{Name: "rollouts", Kind: "Rollout", Namespaced: true}}},
		}
		got := runCheck(t, "", func(o *Options) { o.clientset, o.dynamicClient = cs, dc }, "--live", "-o", "json")
		if got.code != cmdutil.ExitFindings {
			t.Fatalf("exit code = %d\n%s%s", got.code, got.out, got.errOut)
		}
		rep := decodeReport(t, got)
		if len(rep.Results) != 1 || rep.Results[0].Object.Kind != "Rollout" || rep.Results[0].Source.File != "-" || rep.Results[0].Field != "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]" {
			t.Errorf("results = %+v", rep.Results)
		}
	})
}

// TestClusterFlag: --live is the live mode; a bare --cluster is its
// deprecated alias and warns; --cluster NAME and --cluster=NAME are
// kubectl's kubeconfig cluster.
func TestClusterFlag(t *testing.T) {
	pol := testutil.Policy("macstadium").Datacenters("pod-1").Pinned(testutil.PinnedRule("w").MatchLabels("app", "worker")).Obj()
	t.Run("bare --cluster is --live, with a warning", func(t *testing.T) {
		got := runCheck(t, "", liveCluster(t, []*v1alpha1.PlacementPolicy{pol}), "--cluster")
		if got.code != cmdutil.ExitOK || !strings.HasPrefix(got.errOut, "Warning: check --cluster without a value is deprecated: use --live") {
			t.Errorf("exit code = %d\n%s%s", got.code, got.out, got.errOut)
		}
	})
	for _, args := range [][]string{{"--cluster", "prod"}, {"--cluster=prod"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var o *Options
			got := runCheck(t, "", func(opts *Options) { o = opts }, append(args, "-f", td+"deny.yaml", "--policy", td+"policy.yaml")...)
			if got.code != cmdutil.ExitFindings || strings.Contains(got.errOut, "deprecated") {
				t.Errorf("exit code = %d\n%s%s", got.code, got.out, got.errOut)
			}
			if *o.config.ClusterName != "prod" || o.Live {
				t.Errorf("cluster = %q, live = %v; want the kubeconfig cluster prod, offline", *o.config.ClusterName, o.Live)
			}
		})
	}
	t.Run("a stray argument", func(t *testing.T) {
		got := runCheck(t, "", nil, "-f", td+"deny.yaml", "prod")
		if got.code != cmdutil.ExitUsage || !strings.Contains(got.errOut, `unexpected argument "prod"`) {
			t.Errorf("exit code = %d\n%s", got.code, got.errOut)
		}
	})
}

func runtimeDecode(y string, into any) error {
	js, err := yamlToJSON(y)
	if err != nil {
		return err
	}
	return json.Unmarshal(js, into)
}

func toUnstructured(t *testing.T, obj runtime.Object) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func yamlToJSON(y string) ([]byte, error) { return yaml.YAMLToJSON([]byte(y)) }
