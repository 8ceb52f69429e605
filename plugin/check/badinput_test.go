package check

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
)

// writeFiles writes name → content under a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(td + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// aliasBomb is a billion-laughs document: nine aliases of nine aliases ...
const aliasBomb = `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

const helmTemplate = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "web.fullname" . }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  template:
    spec:
      containers: [{name: web, image: "{{ .Values.image }}"}]
`

// TestBadInput: every kind of bad input is one line that names the file
// (and document and line) and says what to do, with no Go type in it; the
// check exits 2.
func TestBadInput(t *testing.T) {
	big := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  blob: " + strings.Repeat("x", 50<<20) + "\n"
	tests := []struct {
		name    string
		file    string
		content string
		want    []string // parts of the one error line, after "error: <file>"
	}{
		{"unrendered Helm template", "templates/deployment.yaml", helmTemplate,
			[]string{": document 1, line 4: an unrendered Helm template ({{ include \"web.fullname\" . }}): render the chart first, for example helm template"}},
		{"text file", "README.yaml", "This chart deploys the web tier.\nSee values.yaml.\n",
			[]string{": document 1, line 1: not a Kubernetes object: the document is a string, not a mapping with apiVersion and kind; is this a manifest? leave it out of -f"}},
		{"a YAML list", "list.yaml", "- a\n- b\n",
			[]string{": document 1, line 1: not a Kubernetes object: the document is a list"}},
		{"binary file", "image.yaml", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
			[]string{": not a text file (binary data): manifests are YAML or JSON; leave it out of -f or rename it"}},
		{"YAML alias bomb", "bomb.yaml", aliasBomb,
			[]string{": document 1, line 1: the document expands YAML aliases (*name) far beyond its size, as an alias bomb does: write the values out or remove the aliases"}},
		{"50 MB document", "big.yaml", big,
			[]string{": document 1, line 1: the document is 50.0 MiB, more than the 3.0 MiB the API server takes per object: split it, or leave it out of -f"}},
		{"wrong type of a field", "replicas.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: a}\nspec: {replicas: three}\n",
			[]string{": document 1, line 1: Deployment a/web: ", "spec.replicas: a string where a number is expected"}},
		{"extensions/v1beta1 Deployment", "old.yaml", "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: web, namespace: a}\n",
			[]string{": document 1, line 1: extensions/v1beta1 Deployment a/web: the API server no longer serves Deployment in extensions/v1beta1: set apiVersion: apps/v1"}},
		{"apps/v1beta2 DaemonSet", "old.yaml", "apiVersion: apps/v1beta2\nkind: DaemonSet\nmetadata: {name: agent, namespace: a}\n",
			[]string{": document 1, line 1: apps/v1beta2 DaemonSet a/agent: the API server no longer serves DaemonSet in apps/v1beta2: set apiVersion: apps/v1"}},
		{"batch/v1beta1 CronJob", "old.yaml", "---\napiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly, namespace: a}\n",
			[]string{": document 1, line 2: batch/v1beta1 CronJob a/nightly: the API server no longer serves CronJob in batch/v1beta1: set apiVersion: batch/v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{tt.file: tt.content})
			path := filepath.Join(dir, tt.file)
			got := runCheck(t, "", nil, "-f", path, "--policy", td+"policy.yaml")
			if got.code != cmdutil.ExitUsage {
				t.Errorf("exit code = %d, want 2\n%s%s", got.code, got.out, got.errOut)
			}
			lines := strings.Split(strings.TrimSuffix(got.errOut, "\n"), "\n")
			var errLine string
			for _, l := range lines {
				if strings.HasPrefix(l, "error: ") {
					if errLine != "" {
						t.Errorf("more than one error line:\n%s", got.errOut)
					}
					errLine = l
				}
			}
			if !strings.HasPrefix(errLine, "error: "+path) {
				t.Fatalf("the error does not name the file %s:\n%s", path, got.errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errLine, w) {
					t.Errorf("error line lacks %q:\n%s", w, errLine)
				}
			}
			if strings.Contains(errLine, "Go ") || strings.Contains(errLine, "interface {}") || strings.Contains(errLine, "check.") {
				t.Errorf("error line shows Go types:\n%s", errLine)
			}
			if len(errLine) > 400 {
				t.Errorf("error line is %d characters long", len(errLine))
			}
		})
	}
}

// TestBadFilesInADirectory: a directory reports every bad file and still
// judges the good ones; the exit code is 2.
func TestBadFilesInADirectory(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a-good.yaml":            readTestdata(t, "good.yaml"),
		"b-deny.yaml":            readTestdata(t, "deny.yaml"),
		"c-chart/templates.yaml": helmTemplate,
		"d-notes.yaml":           "just some notes\n",
		"e-bomb.yaml":            aliasBomb,
		"f-old.yaml":             "apiVersion: extensions/v1beta1\nkind: DaemonSet\nmetadata: {name: agent, namespace: a}\n",
	})
	got := runCheck(t, "", nil, "-f", dir, "-R", "--policy", td+"policy.yaml")
	if got.code != cmdutil.ExitUsage {
		t.Errorf("exit code = %d, want 2", got.code)
	}
	for _, f := range []string{"c-chart/templates.yaml", "d-notes.yaml", "e-bomb.yaml", "f-old.yaml"} {
		if !strings.Contains(got.errOut, "error: "+filepath.Join(dir, f)+": ") {
			t.Errorf("stderr does not name %s:\n%s", f, got.errOut)
		}
	}
	if n := strings.Count(got.errOut, "error: "); n != 4 {
		t.Errorf("%d error lines, want 4:\n%s", n, got.errOut)
	}
	if !strings.Contains(got.out, "Deployment/team-a/worker   "+filepath.Join(dir, "b-deny.yaml")+"#1:2") ||
		!strings.Contains(got.out, "2 objects checked, 1 denied, 0 warnings, 0 audit; 4 files or documents not judged (bad input)\n") {
		t.Errorf("the good files were not judged:\n%s", got.out)
	}
}

// TestDecodeErrorsHaveNoGoTypes runs the decoder over inputs that make the
// JSON decoder speak of Go types.
func TestDecodeErrorsHaveNoGoTypes(t *testing.T) {
	inputs := []string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: {name: c}}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: [p]\n",
		"apiVersion: [v1]\nkind: Pod\n",
		"apiVersion: v1\nkind: List\nitems: [1, 2]\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {nodeSelector: {zone: [a]}}}}\n",
		"\"just a string\"\n",
		"42\n",
		"true\n",
	}
	for _, in := range inputs {
		_, err := decodeFile(inputFile{name: "f.yaml", data: []byte(in)})
		if err == nil {
			t.Errorf("no error for %q", in)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "f.yaml: ") || strings.Contains(msg, "Go ") || strings.Contains(msg, "listHeader") || bytes.Contains([]byte(msg), []byte("interface {}")) {
			t.Errorf("%q: %s", in, msg)
		}
	}
}
