package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
)

// writeTree writes files of docsPerFile documents each, files documents in
// all, under dir/dc-N/app-M.yaml: Deployments (a tenth of them unpinned),
// StatefulSets, Services and ConfigMaps, one tree per datacenter as GitOps
// repositories hold them.
func writeTree(tb testing.TB, dir string, files, docsPerFile int) {
	tb.Helper()
	for f := range files {
		var b strings.Builder
		for d := range docsPerFile {
			n := f*docsPerFile + d
			if d > 0 {
				b.WriteString("---\n")
			}
			switch n % 4 {
			case 0, 1:
				sel := fmt.Sprintf("\n      nodeSelector: {topology.kubernetes.io/zone: pod-%d}", n%3+1)
				if n%10 == 0 {
					sel = ""
				}
				fmt.Fprintf(&b, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker-%d
  namespace: team-%d
  labels: {app: worker}
spec:
  replicas: 3
  selector: {matchLabels: {app: worker, instance: w%d}}
  template:
    metadata: {labels: {app: worker, instance: w%d}}
    spec:%s
      containers:
      - name: worker
        image: registry.example/worker:1.%d
        resources: {requests: {cpu: 100m, memory: 128Mi}}
        env: [{name: MODE, value: batch}, {name: LEVEL, value: info}]
`, n, n%20, n, n, sel, n)
			case 2:
				fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata: {name: svc-%d, namespace: team-%d}\nspec:\n  selector: {app: worker}\n  ports: [{port: 80, targetPort: 8080}]\n", n, n%20)
			case 3:
				fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d, namespace: team-%d}\ndata:\n  config.yaml: |\n    level: info\n    peers: [a, b, c]\n", n, n%20)
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("dc-%d", f%3+1), fmt.Sprintf("app-%04d.yaml", f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkCheckTree checks a tree of 5,000 documents (500 files of 10)
// offline: reading, decoding, mutation, evaluation and the table. Set
// KUBECTL_DC_BENCH_TREE=DIR to write the tree there and stop, for timing
// the binary (wall time and peak RSS):
//
//	KUBECTL_DC_BENCH_TREE=/tmp/tree go test -run '^$' -bench BenchmarkCheckTree ./plugin/check/
//	/usr/bin/time -v bin/kubectl-dc check -f /tmp/tree -R --policy plugin/check/testdata/check/policy.yaml -n default
func BenchmarkCheckTree(b *testing.B) {
	if keep := os.Getenv("KUBECTL_DC_BENCH_TREE"); keep != "" {
		writeTree(b, keep, 500, 10)
		b.Skipf("wrote the tree to %s", keep)
	}
	dir := b.TempDir()
	writeTree(b, dir, 500, 10)
	b.ReportAllocs()
	for b.Loop() {
		streams, _, _, _ := genericiooptions.NewTestIOStreams()
		o := NewOptions(nil, streams)
		o.Filenames, o.Recursive, o.PolicyFiles, o.Output, o.namespace = []string{dir}, true, []string{td + "policy.yaml"}, cmdutil.OutputTable, "default"
		var exit *cmdutil.ExitError
		if err := o.Run(context.Background()); !errors.As(err, &exit) || exit.Code != cmdutil.ExitFindings {
			b.Fatalf("Run = %v, want exit 1", err)
		}
	}
}
