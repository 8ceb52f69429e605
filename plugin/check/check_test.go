package check

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

const td = "testdata/check/"

// checkRun is the outcome of one `kubectl dc check`.
type checkRun struct {
	code        int
	out, errOut string
}

// runCheck runs `kubectl dc check args...` under a root with the kubeconfig
// flags, with stdin as standard input. setup may set fake clients. The
// kubeconfig points at a file that does not exist so that an offline check
// never reads the developer's cluster.
func runCheck(t *testing.T, stdin string, setup func(*Options), args ...string) checkRun {
	t.Helper()
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(stdin)
	config := genericclioptions.NewConfigFlags(false)
	root := &cobra.Command{Use: "kubectl-dc", SilenceErrors: true}
	config.AddFlags(root.PersistentFlags())
	o := NewOptions(config, streams)
	if setup != nil {
		setup(o)
	}
	root.AddCommand(newCmdCheck(o))
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetArgs(append([]string{"check", "--kubeconfig", filepath.Join(t.TempDir(), "no-kubeconfig")}, args...))
	code := cmdutil.Execute(root, streams)
	return checkRun{code: code, out: out.String(), errOut: errOut.String()}
}

func TestCheckFiles(t *testing.T) {
	emptyDir := t.TempDir()
	deny, err := os.ReadFile(td + "deny.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		stdin   string
		code    int
		out     string // exact, when set
		outHas  []string
		errOut  string // exact
		errHas  []string
		noStdin bool
	}{
		{
			name: "good object passes",
			args: []string{"-f", td + "good.yaml", "--policy", td + "policy.yaml"},
			code: cmdutil.ExitOK,
			out:  "1 object checked, 0 denied, 0 warnings, 0 audit\n",
		},
		{
			name: "deny exits 1 with exact JSON",
			args: []string{"-f", td + "deny.yaml", "--policy", td + "policy.yaml", "-o", "json"},
			code: cmdutil.ExitFindings,
			out: `{
  "results": [
    {
      "object": {
        "kind": "Deployment",
        "namespace": "team-a",
        "name": "worker"
      },
      "source": {
        "file": "testdata/check/deny.yaml",
        "document": 1,
        "line": 2
      },
      "rule": "macstadium/workers",
      "action": "Deny",
      "field": "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]",
      "message": "Required value: pods must select exactly one datacenter: set nodeSelector[topology.kubernetes.io/zone] to one of: pod-1, pod-2, pod-3"
    }
  ],
  "summary": {
    "objects": 1,
    "denied": 1,
    "warnings": 0,
    "audit": 0
  }
}
`,
		},
		{
			name: "deny as table",
			args: []string{"-f", td + "deny.yaml", "--policy", td + "policy.yaml"},
			code: cmdutil.ExitFindings,
			outHas: []string{
				"OBJECT", "RULE", "ACTION", "FIELD", "MESSAGE",
				"OBJECT", "SOURCE", "RULE", "ACTION", "FIELD", "MESSAGE",
				"Deployment/team-a/worker   " + td + "deny.yaml#1:2   macstadium/workers   Deny     nodeSelector[topology.kubernetes.io/zone]   Required value",
				"\n1 object checked, 1 denied, 0 warnings, 0 audit\n",
			},
		},
		{
			name: "deny as yaml",
			args: []string{"-f", td + "deny.yaml", "--policy", td + "policy.yaml", "-o", "yaml"},
			code: cmdutil.ExitFindings,
			outHas: []string{
				"results:\n- action: Deny\n  field: spec.template.spec.nodeSelector[topology.kubernetes.io/zone]\n",
				"  object:\n    kind: Deployment\n    name: worker\n    namespace: team-a\n  rule: macstadium/workers\n",
				"summary:\n  audit: 0\n  denied: 1\n  objects: 1\n  warnings: 0\n",
			},
		},
		{
			name:   "malformed YAML names file, document and line",
			args:   []string{"-f", td + "malformed.yaml", "--policy", td + "policy.yaml"},
			code:   cmdutil.ExitUsage,
			errOut: "error: " + td + "malformed.yaml: document 2, line 10: did not find expected ',' or '}'\n",
		},
		{
			name:   "invalid policy names the field",
			args:   []string{"-f", td + "deny.yaml", "--policy", td + "invalid-policy.yaml"},
			code:   cmdutil.ExitUsage,
			errOut: "error: " + td + `invalid-policy.yaml: document 1: placementpolicy "broken": spec.pinned[0].action: Unsupported value: "Block": supported values: "Deny", "Warn", "Audit"` + "\n",
		},
		{
			name:   "misspelt policy field is an error",
			args:   []string{"-f", td + "deny.yaml", "--policy", td + "misspelt-policy.yaml"},
			code:   cmdutil.ExitUsage,
			errOut: "error: " + td + `misspelt-policy.yaml: document 1: placementpolicy "misspelt": unknown field "spec.pinned[0].datacenterFromLable": fix or remove the field` + "\n",
		},
		{
			name:   "unknown kinds are skipped with a note",
			args:   []string{"-f", td + "mixed.yaml", "--policy", td + "policy.yaml"},
			code:   cmdutil.ExitOK,
			out:    "1 object checked, 0 denied, 0 warnings, 0 audit\n",
			errOut: "note: skipped 2 objects of 2 kinds that have no pod template; --verbose lists them\n",
		},
		{
			name: "--verbose lists the skipped objects",
			args: []string{"-f", td + "mixed.yaml", "--policy", td + "policy.yaml", "--verbose"},
			code: cmdutil.ExitOK,
			out:  "1 object checked, 0 denied, 0 warnings, 0 audit\n",
			errOut: "note: " + td + "mixed.yaml: document 1: v1 Service team-a/web: skipped: no pod template\n" +
				"note: " + td + "mixed.yaml: document 2: example.com/v1 Widget gadget: skipped: no pod template\n",
		},
		{
			name:   "empty directory is an error",
			args:   []string{"-f", emptyDir, "--policy", td + "policy.yaml"},
			code:   cmdutil.ExitUsage,
			errOut: "error: -f " + emptyDir + ": directory has no .yaml, .yml, .json files\n",
		},
		{
			name:   "directory without manifests is an error",
			args:   []string{"-f", td + "empty", "--policy", td + "policy.yaml"},
			code:   cmdutil.ExitUsage,
			errOut: "error: -f " + td + "empty: directory has no .yaml, .yml, .json files\n",
		},
		{
			name:   "input with only skipped kinds is an error",
			args:   []string{"-f", td + "nodes.yaml", "--policy", td + "policy.yaml"},
			code:   cmdutil.ExitUsage,
			errHas: []string{"error: -f " + td + "nodes.yaml: no objects to check"},
		},
		{
			name:   "missing file is named",
			args:   []string{"-f", td + "nope.yaml", "--policy", td + "policy.yaml"},
			code:   cmdutil.ExitUsage,
			errOut: "error: -f " + td + "nope.yaml: no such file or directory: check the path\n",
		},
		{
			name: "List items are expanded, Warn and Audit pass",
			args: []string{"-f", td + "list.json", "--policy", td + "policy.yaml", "-o", "json"},
			code: cmdutil.ExitOK,
			outHas: []string{
				`"kind": "Job",` + "\n        \"namespace\": \"team-b\",\n        \"name\": \"nightly\"",
				`"action": "Audit",`,
				`"message": "Invalid value: \"pod-9\": unknown datacenter \"pod-9\": did you mean pod-1? known datacenters: pod-1, pod-2, pod-3"`,
				`"kind": "StatefulSet",` + "\n        \"namespace\": \"team-b\",\n        \"name\": \"web\"",
				`"action": "Warn",`,
				`"summary": {` + "\n    \"objects\": 2,\n    \"denied\": 0,\n    \"warnings\": 1,\n    \"audit\": 1\n  }",
			},
		},
		{
			name: "directory without -R reads only its own files",
			args: []string{"-f", td + "dir", "--policy", td + "policy.yaml"},
			code: cmdutil.ExitOK,
			out:  "1 object checked, 0 denied, 0 warnings, 0 audit\n",
		},
		{
			name: "recursive directory",
			args: []string{"-f", td + "dir", "-R", "--policy", td + "policy.yaml"},
			code: cmdutil.ExitFindings,
			outHas: []string{
				"CronJob/team-c/brain", td + "dir/sub/b.yml#1:1", "macstadium/workers", "   nodeSelector[topology.kubernetes.io/zone]   ",
				`Invalid value: "pod-2": the object's label placement.kubectl-dc.io/datacenter=pod-1 says datacenter "pod-1" but the pods select "pod-2": make them agree`,
				"\n2 objects checked, 1 denied, 0 warnings, 0 audit\n",
			},
		},
		{
			name:   "stdin",
			args:   []string{"-f", "-", "--policy", td + "policy.yaml", "-o", "json"},
			stdin:  string(deny),
			code:   cmdutil.ExitFindings,
			outHas: []string{`"name": "worker"`, `"action": "Deny"`},
		},
		{
			name:   "stdin syntax error is named",
			args:   []string{"-f", "-", "--policy", td + "policy.yaml"},
			stdin:  "kind: Pod\napiVersion: v1\nmetadata: {name: x\n",
			code:   cmdutil.ExitUsage,
			errOut: "error: <stdin>: document 1, line 3: did not find expected ',' or '}'\n",
		},
		{
			name:   "policy in -f input is used",
			args:   []string{"-f", td + "policy.yaml", "-f", td + "deny.yaml"},
			code:   cmdutil.ExitFindings,
			outHas: []string{"Deployment/team-a/worker", "macstadium/workers"},
		},
		{
			name:   "known datacenters from --nodes",
			args:   []string{"-f", td + "deny.yaml", "--policy", td + "policy-no-dcs.yaml", "--nodes", td + "nodes.yaml", "-o", "json"},
			code:   cmdutil.ExitFindings,
			outHas: []string{`"message": "Required value: pods must select exactly one datacenter: set nodeSelector[topology.kubernetes.io/zone] to one of: pod-1, pod-2"`},
		},
		{
			name:   "duplicate policy",
			args:   []string{"-f", td + "policy.yaml", "-f", td + "deny.yaml", "--policy", td + "policy.yaml"},
			code:   cmdutil.ExitUsage,
			errOut: "error: " + td + `policy.yaml: document 1: placementpolicy "macstadium" is also defined at ` + td + "policy.yaml: document 1: keep one\n",
		},
		{
			name:   "no policy and no cluster",
			args:   []string{"-f", td + "deny.yaml"},
			code:   cmdutil.ExitUsage,
			errHas: []string{"error: kubeconfig not found: ", "no-kubeconfig", "to check offline instead, pass --policy FILE"},
		},
		{
			name:   "nothing to check is usage",
			args:   nil,
			code:   cmdutil.ExitUsage,
			errHas: []string{"error: nothing to check: pass -f FILE|DIR (or - for stdin), or --live for the live objects"},
		},
		{
			name:   "-f and --live exclude each other",
			args:   []string{"-f", td + "deny.yaml", "--live"},
			code:   cmdutil.ExitUsage,
			errHas: []string{"-f and --live exclude each other"},
		},
		{
			name:   "stdin read once",
			args:   []string{"-f", "-", "--policy", "-"},
			code:   cmdutil.ExitUsage,
			errHas: []string{"error: standard input (-) can be read once: give - to only one of -f, --policy and --nodes"},
		},
		{
			name:   "unknown output",
			args:   []string{"-f", td + "deny.yaml", "-o", "name"},
			code:   cmdutil.ExitUsage,
			errHas: []string{`unknown output format "name" for --output: use one of table, wide, json, yaml`},
		},
		{
			name:   "wide shows the whole field",
			args:   []string{"-f", td + "deny.yaml", "--policy", td + "policy.yaml", "-o", "wide"},
			code:   cmdutil.ExitFindings,
			outHas: []string{"   spec.template.spec.nodeSelector[topology.kubernetes.io/zone]   "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCheck(t, tt.stdin, nil, tt.args...)
			if got.code != tt.code {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, tt.code, got.out, got.errOut)
			}
			if tt.out != "" && got.out != tt.out {
				t.Errorf("stdout:\n%s\nwant:\n%s", got.out, tt.out)
			}
			for _, s := range tt.outHas {
				if !strings.Contains(got.out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, got.out)
				}
			}
			if tt.errOut != "" && !strings.HasPrefix(got.errOut, tt.errOut) {
				t.Errorf("stderr:\n%s\nwant:\n%s", got.errOut, tt.errOut)
			}
			if tt.errOut != "" && tt.code != cmdutil.ExitUsage && got.errOut != tt.errOut {
				t.Errorf("stderr:\n%s\nwant exactly:\n%s", got.errOut, tt.errOut)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(got.errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, got.errOut)
				}
			}
		})
	}
}

// ownedBy makes obj controlled by the named owner.
func ownedBy(obj runtime.Object, kind, name string) runtime.Object {
	m := obj.(metav1.Object)
	yes := true
	m.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: &yes}})
	return obj
}

// liveCluster returns fake clients holding objs and the policies.
func liveCluster(t *testing.T, policies []*v1alpha1.PlacementPolicy, objs ...runtime.Object) func(*Options) {
	t.Helper()
	var dyn []runtime.Object
	for _, p := range policies {
		dyn = append(dyn, p)
	}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(policy.Scheme,
		map[schema.GroupVersionResource]string{cluster.PolicyGVR: "PlacementPolicyList"}, dyn...)
	cs := fake.NewClientset(objs...)
	return func(o *Options) {
		o.clientset = cs
		o.dynamicClient = dc
	}
}

func TestCheckCluster(t *testing.T) {
	pol := testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").
		Pinned(testutil.PinnedRule("workers").In("app", "worker", "jupiter-brain").FromLabel("placement.kubectl-dc.io/datacenter").Action(v1alpha1.ActionAudit)).Obj()
	nodes := []runtime.Object{
		testutil.Node("pod-1-worker-1").InDC("pod-1").Obj(),
		testutil.Node("pod-2-worker-1").InDC("pod-2").Obj(),
		testutil.Node("pod-3-worker-1").InDC("pod-3").Obj(),
		testutil.Namespace("team-a"), testutil.Namespace("team-b"),
	}
	workload := []runtime.Object{
		// A Deployment without a datacenter, its ReplicaSet and pod: one
		// violation, shown on the Deployment only.
		testutil.Deployment("team-a", "worker").Labels("app", "worker").Obj(),
		ownedBy(testutil.ReplicaSet("team-a", "worker-5d8f").Labels("app", "worker").Obj(), "Deployment", "worker"),
		ownedBy(testutil.Pod("team-a", "worker-5d8f-x1").Labels("app", "worker").NodeName("pod-1-worker-1").Obj(), "ReplicaSet", "worker-5d8f"),
		// A good one.
		testutil.Deployment("team-b", "brain").Labels("app", "jupiter-brain").InDC("pod-2").Obj(),
		// A bare pod in the wrong datacenter.
		testutil.Pod("team-b", "stray").Labels("app", "worker").ObjectLabels("placement.kubectl-dc.io/datacenter", "pod-3").InDC("pod-1").Obj(),
	}

	t.Run("all namespaces, Audit passes", func(t *testing.T) {
		got := runCheck(t, "", liveCluster(t, []*v1alpha1.PlacementPolicy{pol}, append(nodes, workload...)...), "--live", "-o", "json")
		if got.code != cmdutil.ExitOK {
			t.Fatalf("exit code = %d, want 0\n%s%s", got.code, got.out, got.errOut)
		}
		var rep checkReport
		if err := json.Unmarshal([]byte(got.out), &rep); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, got.out)
		}
		want := []checkResult{
			{Object: policy.ObjectRef{Kind: "Deployment", Namespace: "team-a", Name: "worker"}, Source: source{File: "-"}, Rule: "macstadium/workers", Action: v1alpha1.ActionAudit,
				Field: "spec.template.spec.nodeSelector[topology.kubernetes.io/zone]", Message: "Required value: pods must select exactly one datacenter: set nodeSelector[topology.kubernetes.io/zone] to one of: pod-1, pod-2, pod-3"},
			{Object: policy.ObjectRef{Kind: "Pod", Namespace: "team-b", Name: "stray"}, Source: source{File: "-"}, Rule: "macstadium/workers", Action: v1alpha1.ActionAudit,
				Field: "spec.nodeSelector[topology.kubernetes.io/zone]", Message: `Invalid value: "pod-1": the object's label placement.kubectl-dc.io/datacenter=pod-3 says datacenter "pod-3" but the pods select "pod-1": make them agree`},
		}
		assertResults(t, rep.Results, want)
		if rep.Summary != (checkSummary{Objects: 5, Audit: 2}) {
			t.Errorf("summary = %+v, want 5 objects, 2 audit", rep.Summary)
		}
	})

	t.Run("one namespace, Deny fails", func(t *testing.T) {
		deny := pol.DeepCopy()
		deny.Spec.Pinned[0].Action = v1alpha1.ActionDeny
		got := runCheck(t, "", liveCluster(t, []*v1alpha1.PlacementPolicy{deny}, append(nodes, workload...)...), "--live", "-n", "team-a")
		if got.code != cmdutil.ExitFindings {
			t.Fatalf("exit code = %d, want 1\n%s%s", got.code, got.out, got.errOut)
		}
		if strings.Contains(got.out, "stray") || strings.Contains(got.out, "worker-5d8f") {
			t.Errorf("output shows objects outside team-a or duplicates:\n%s", got.out)
		}
		if !strings.Contains(got.out, "Deployment/team-a/worker") || !strings.HasSuffix(got.out, "\n3 objects checked, 1 denied, 0 warnings, 0 audit\n") {
			t.Errorf("output:\n%s", got.out)
		}
	})

	t.Run("policy file against live objects", func(t *testing.T) {
		got := runCheck(t, "", liveCluster(t, nil, append(nodes, workload...)...), "--live", "--policy", td+"policy.yaml")
		if got.code != cmdutil.ExitFindings || !strings.Contains(got.out, "2 denied") {
			t.Errorf("exit code = %d, want 1 with 2 denied\n%s%s", got.code, got.out, got.errOut)
		}
	})

	t.Run("-n lists the member pods of other namespaces by selector", func(t *testing.T) {
		withEtcd := pol.DeepCopy()
		withEtcd.Spec.Spread = append(withEtcd.Spec.Spread, testutil.Etcd().Rule())
		var lists []string
		setup := liveCluster(t, []*v1alpha1.PlacementPolicy{withEtcd}, append(nodes, workload...)...)
		got := runCheck(t, "", func(o *Options) {
			setup(o)
			o.clientset.(*fake.Clientset).PrependReactor("list", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
				l := a.(clienttesting.ListActionImpl)
				if l.ListOptions.Limit != cluster.PageSize {
					t.Errorf("LIST %s limit = %d, want %d", l.Resource.Resource, l.ListOptions.Limit, cluster.PageSize)
				}
				lists = append(lists, l.Resource.Resource+" "+l.Namespace+" "+l.ListOptions.LabelSelector)
				return false, nil, nil
			})
		}, "--live", "-n", "team-a")
		if got.code != cmdutil.ExitOK {
			t.Fatalf("exit code = %d\n%s", got.code, got.errOut)
		}
		// Nodes, Namespaces, the judged kinds in team-a, and the etcd
		// members of every namespace by selector.
		want := "cronjobs team-a ,daemonsets team-a ,deployments team-a ,jobs team-a ,namespaces  ,nodes  ,pods kube-system component=etcd,pods team-a ,podtemplates team-a ,replicasets team-a ,replicationcontrollers team-a ,statefulsets team-a "
		sort.Strings(lists)
		if strings.Join(lists, ",") != want {
			t.Errorf("LIST calls:\n%s\nwant:\n%s", strings.Join(lists, ","), want)
		}
	})

	t.Run("no policy in the cluster", func(t *testing.T) {
		got := runCheck(t, "", liveCluster(t, nil, nodes...), "--live")
		if got.code != cmdutil.ExitUsage || got.errOut != "error: the cluster has no PlacementPolicy: create one (the MacStadium example is in the kubectl-dc README) or pass --policy FILE\n" {
			t.Errorf("exit code = %d\n%s", got.code, got.errOut)
		}
	})

	t.Run("LISTs are paginated", func(t *testing.T) {
		var limits []int64
		setup := liveCluster(t, []*v1alpha1.PlacementPolicy{pol}, append(nodes, workload...)...)
		got := runCheck(t, "", func(o *Options) {
			setup(o)
			o.clientset.(*fake.Clientset).PrependReactor("list", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
				limits = append(limits, a.(clienttesting.ListActionImpl).ListOptions.Limit)
				return false, nil, nil
			})
		}, "--live")
		if got.code != cmdutil.ExitOK {
			t.Fatalf("exit code = %d\n%s", got.code, got.errOut)
		}
		// Nodes, Namespaces and the nine kinds: one LIST each on this small cluster.
		if len(limits) != 11 {
			t.Errorf("%d LIST calls, want 11", len(limits))
		}
		for _, l := range limits {
			if l != cluster.PageSize {
				t.Errorf("LIST limit = %d, want %d", l, cluster.PageSize)
			}
		}
	})
}

func TestCheckFilesAgainstLivePolicies(t *testing.T) {
	pol := testutil.Policy("live").Pinned(testutil.PinnedRule("workers").MatchLabels("app", "worker")).Obj()
	setup := liveCluster(t, []*v1alpha1.PlacementPolicy{pol},
		testutil.Node("a").InDC("east").Obj(), testutil.Node("b").InDC("west").Obj())
	got := runCheck(t, "", setup, "-f", td+"deny.yaml", "-o", "json")
	if got.code != cmdutil.ExitFindings {
		t.Fatalf("exit code = %d\n%s%s", got.code, got.out, got.errOut)
	}
	if !strings.Contains(got.out, `"message": "Required value: pods must select exactly one datacenter: set nodeSelector[topology.kubernetes.io/zone] to one of: east, west"`) {
		t.Errorf("known datacenters do not come from the live nodes:\n%s", got.out)
	}
}

func assertResults(t *testing.T, got, want []checkResult) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("result %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestCheckHelp(t *testing.T) {
	got := runCheck(t, "", nil, "--help")
	for _, s := range []string{"kubectl dc check -f deploy/ -R --policy policy.yaml", "kubectl dc check --live -o json", "Exit status: 0"} {
		if !strings.Contains(got.out, s) {
			t.Errorf("help lacks %q:\n%s", s, got.out)
		}
	}
}

func TestCheckOutputCompletion(t *testing.T) {
	cmd := NewCmdCheck(genericclioptions.NewConfigFlags(false), genericiooptions.IOStreams{})
	fn, ok := cmd.GetFlagCompletionFunc("output")
	if !ok {
		t.Fatal("no completion for -o")
	}
	got, _ := fn(cmd, nil, "")
	if strings.Join(got, ",") != "table,wide,json,yaml" {
		t.Errorf("completion = %v", got)
	}
}

// TestCheckNodesFileKinds checks that --nodes needs Node objects.
func TestCheckNodesFileKinds(t *testing.T) {
	got := runCheck(t, "", nil, "-f", td+"deny.yaml", "--policy", td+"policy-no-dcs.yaml", "--nodes", td+"good.yaml")
	if got.code != cmdutil.ExitUsage || !strings.Contains(got.errOut, "error: --nodes "+td+"good.yaml: no Node in the file: save them with kubectl get nodes -o yaml\n") {
		t.Errorf("exit code = %d\n%s", got.code, got.errOut)
	}
}

// TestCheckOldVersionOfJudgedKind: a judged kind in a version the engine
// does not judge is bad input, as dc-webhook denies it, not a skipped object.
func TestCheckOldVersionOfJudgedKind(t *testing.T) {
	old := `apiVersion: apps/v1beta2
kind: Deployment
metadata: {name: worker, namespace: ci}
spec:
  template:
    metadata: {labels: {app: worker}}
    spec: {containers: [{name: w, image: x}]}
`
	got := runCheck(t, old, nil, "-f", "-", "--policy", td+"policy.yaml")
	if got.code != cmdutil.ExitUsage || !strings.Contains(got.errOut, "error: <stdin>: document 1, line 1: apps/v1beta2 Deployment ci/worker: the API server no longer serves Deployment in apps/v1beta2: set apiVersion: apps/v1") {
		t.Errorf("exit %d, stderr:\n%s", got.code, got.errOut)
	}
}

// TestCheckIgnoresPinnedEnforcement: who enforces a policy's pinned rules
// at admission (spec.pinnedEnforcement) changes nothing offline: the same
// rules judge the same objects the same way.
func TestCheckIgnoresPinnedEnforcement(t *testing.T) {
	pol, err := os.ReadFile(td + "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := runCheck(t, "", nil, "-f", td+"deny.yaml", "--policy", td+"policy.yaml", "-o", "json")
	if want.code != cmdutil.ExitFindings {
		t.Fatalf("without the field: exit %d, want %d\n%s", want.code, cmdutil.ExitFindings, want.errOut)
	}
	for _, mode := range v1alpha1.PinnedEnforcements {
		text := strings.Replace(string(pol), "\nspec:\n", "\nspec:\n  pinnedEnforcement: "+string(mode)+"\n", 1)
		if text == string(pol) {
			t.Fatal("the policy has no spec to add the field to")
		}
		path := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		got := runCheck(t, "", nil, "-f", td+"deny.yaml", "--policy", path, "-o", "json")
		if got.code != want.code || got.out != want.out {
			t.Errorf("spec.pinnedEnforcement %s: exit %d\n%s\nwant exit %d\n%s%s", mode, got.code, got.out, want.code, want.out, got.errOut)
		}
	}
}
