package cmdutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/utils/ptr"
)

func TestRestConfigForErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withCtx := filepath.Join(dir, "with-context")
	if err := os.WriteFile(withCtx, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: pod-1
  context: {cluster: c, user: u}
current-context: pod-1
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	for _, tc := range []struct {
		name       string
		kubeconfig string
		context    string
		want       []string
		noConfig   bool
	}{
		{name: "empty kubeconfig", kubeconfig: empty, want: []string{"no kubeconfig found", "KUBECONFIG", "--kubeconfig"}, noConfig: true},
		{name: "missing file", kubeconfig: filepath.Join(dir, "absent"), want: []string{"kubeconfig not found", "absent"}},
		{name: "unknown context", kubeconfig: withCtx, context: "pod-9", want: []string{`context "pod-9" is not in the kubeconfig`, "use one of pod-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := genericclioptions.NewConfigFlags(false)
			f.KubeConfig = ptr.To(tc.kubeconfig)
			if tc.context != "" {
				f.Context = ptr.To(tc.context)
			}
			_, err := NewFactory(f).ToRESTConfig()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if errors.Is(err, ErrNoKubeconfig) != tc.noConfig {
				t.Errorf("errors.Is(err, ErrNoKubeconfig) = %v, want %v", !tc.noConfig, tc.noConfig)
			}
		})
	}
	f := genericclioptions.NewConfigFlags(false)
	f.KubeConfig = ptr.To(withCtx)
	cfg, err := NewFactory(f).ToRESTConfig()
	if err != nil || cfg.Host != "https://127.0.0.1:6443" {
		t.Fatalf("a valid kubeconfig: host %v, err %v", cfg, err)
	}
}
