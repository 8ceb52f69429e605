package check

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

func TestSplitDocuments(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		lines []int // start line of each document
	}{
		{name: "single", data: "kind: Pod\n", lines: []int{1}},
		{name: "leading separator and comments", data: "---\n# a pod\n\nkind: Pod\n---\nkind: Node\n", lines: []int{4, 6}},
		{name: "empty documents are dropped", data: "kind: Pod\n---\n---\n# nothing\n---\nkind: Node\n...\n", lines: []int{1, 6}},
		{name: "separator with comment", data: "kind: Pod\n--- # next\nkind: Node\n", lines: []int{1, 3}},
		{name: "json stream", data: "{\"kind\": \"Pod\"}\n\n{\n \"kind\": \"Node\"}\n", lines: []int{1, 3}},
		{name: "dashes inside a value are not a separator", data: "kind: Pod\nmetadata:\n  name: a---b\n", lines: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := splitDocuments("f.yaml", []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			var lines []int
			for i, d := range docs {
				if d.index != i+1 {
					t.Errorf("document %d has index %d", i+1, d.index)
				}
				lines = append(lines, d.line)
			}
			if len(lines) != len(tt.lines) {
				t.Fatalf("start lines %v, want %v", lines, tt.lines)
			}
			for i := range lines {
				if lines[i] != tt.lines[i] {
					t.Errorf("start lines %v, want %v", lines, tt.lines)
				}
			}
		})
	}
}

func TestDecodeFile(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		kinds     []string // Go types of the decoded objects; "skipped" for notes
		wheres    []string
		unknown   string // unknownFields of the first object
		errString string
	}{
		{
			name:   "typed list items take their kind from the list",
			data:   `{"apiVersion":"apps/v1","kind":"DeploymentList","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}`,
			kinds:  []string{"*v1.Deployment", "*v1.Deployment"},
			wheres: []string{"f.json: document 1, item 1", "f.json: document 1, item 2"},
		},
		{
			name:   "nested v1 List",
			data:   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - {apiVersion: v1, kind: Node, metadata: {name: node-1}}\n",
			kinds:  []string{"*v1.Node"},
			wheres: []string{"f.json: document 1, item 1, item 1"},
		},
		{
			name:   "policy and unknown kind",
			data:   "apiVersion: placement.kubectl-dc.io/v1alpha1\nkind: PlacementPolicy\nmetadata: {name: p}\nspec: {}\n---\napiVersion: x.io/v1\nkind: Thing\nmetadata: {name: t}\n",
			kinds:  []string{"*v1alpha1.PlacementPolicy", "skipped"},
			wheres: []string{"f.json: document 1", "f.json: document 2"},
		},
		{
			name:    "unknown field is kept with the object",
			data:    "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  nodeSelectr: {a: b}\n",
			kinds:   []string{"*v1.Pod"},
			wheres:  []string{"f.json: document 1"},
			unknown: `unknown field "spec.nodeSelectr"`,
		},
		{
			name:      "missing kind",
			data:      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n\napiVersion: v1\nmetadata: {name: q}\n",
			errString: "f.json: document 2, line 6: object has no kind: set kind (and apiVersion), for example kind: Deployment",
		},
		{
			name:      "missing apiVersion",
			data:      "kind: Deployment\nmetadata: {name: p}\n",
			errString: "f.json: document 1, line 1: Deployment has no apiVersion: set apiVersion, for example apps/v1",
		},
		{
			name:      "wrong type names the object",
			data:      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: three}\n",
			errString: "f.json: document 1, line 1: Deployment web: ",
		},
		{
			name:      "yaml syntax error after comments counts file lines",
			data:      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n# the second\n\napiVersion: v1\nkind: Pod\nmetadata: {name: q\n",
			errString: "f.json: document 2, line 9: did not find expected ',' or '}'",
		},
		{
			name:      "json syntax error line",
			data:      "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\"\n  \"metadata\": {}\n}\n",
			errString: "f.json: document 1, line 4: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := decodeFile(inputFile{name: "f.json", data: []byte(tt.data)})
			if tt.errString != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.errString) {
					t.Fatalf("error = %v, want prefix %q", err, tt.errString)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != len(tt.kinds) {
				t.Fatalf("%d objects, want %d", len(objs), len(tt.kinds))
			}
			for i, d := range objs {
				kind := "skipped"
				if d.obj != nil {
					kind = typeName(d.obj)
				}
				if kind != tt.kinds[i] || d.where != tt.wheres[i] {
					t.Errorf("object %d: %s at %q, want %s at %q", i, kind, d.where, tt.kinds[i], tt.wheres[i])
				}
			}
			if objs[0].unknownFields != tt.unknown {
				t.Errorf("unknown fields %q, want %q", objs[0].unknownFields, tt.unknown)
			}
		})
	}
}

func typeName(obj any) string {
	switch obj.(type) {
	case *appsv1.Deployment:
		return "*v1.Deployment"
	case *corev1.Node:
		return "*v1.Node"
	case *corev1.Pod:
		return "*v1.Pod"
	case *v1alpha1.PlacementPolicy:
		return "*v1alpha1.PlacementPolicy"
	}
	return "other"
}

func TestUnknownFieldOfWorkloadIsAWarning(t *testing.T) {
	got := runCheck(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns, labels: {app: worker}}\nspec:\n  nodeSelectr: {a: b}\n  containers: [{name: c, image: i}]\n",
		nil, "-f", "-", "--policy", td+"policy.yaml")
	if got.code != cmdutil.ExitFindings {
		t.Errorf("exit code = %d, want 1", got.code)
	}
	if got.errOut != "warning: <stdin>: document 1: v1 Pod ns/p: unknown field \"spec.nodeSelectr\"\n" {
		t.Errorf("stderr = %q", got.errOut)
	}
}

// FuzzDecodeFile feeds arbitrary bytes to the decoder: it never panics, and
// every error names the file.
func FuzzDecodeFile(f *testing.F) {
	for _, name := range []string{"deny.yaml", "malformed.yaml", "mixed.yaml", "list.json", "policy.yaml", "nodes.yaml"} {
		data, err := os.ReadFile(td + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[null,{}]}"))
	f.Add([]byte("---\n---\nkind: DeploymentList\napiVersion: apps/v1\nitems: [{}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := decodeFile(inputFile{name: "fuzz.yaml", data: data})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, d := range objs {
			if d.obj == nil && d.skipped == "" {
				t.Fatalf("%s: neither an object nor a note", d.where)
			}
		}
	})
}

// BenchmarkCheckFiles checks 500 Deployments in one multi-document file
// against the test policy, offline: decoding, evaluation and JSON output.
func BenchmarkCheckFiles(b *testing.B) {
	deny, err := os.ReadFile(td + "deny.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for i := range 500 {
		sb.WriteString(strings.Replace(string(deny), "name: worker\n", "name: worker-"+strconv.Itoa(i)+"\n", 1))
		sb.WriteString("---\n")
	}
	path := filepath.Join(b.TempDir(), "many.yaml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		streams, _, _, _ := genericiooptions.NewTestIOStreams()
		o := NewOptions(nil, streams)
		o.Filenames, o.PolicyFiles, o.Output, o.namespace = []string{path}, []string{td + "policy.yaml"}, cmdutil.OutputJSON, "default"
		var exit *cmdutil.ExitError
		if err := o.Run(context.Background()); !errors.As(err, &exit) || exit.Code != cmdutil.ExitFindings {
			b.Fatalf("Run = %v, want exit 1", err)
		}
	}
}
