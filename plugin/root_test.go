package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
)

// TestVerbsWithoutKubeconfig: every verb that needs the cluster says how to
// point it at one, in one line, without burying it under the usage text.
func TestVerbsWithoutKubeconfig(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", empty)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"drain", "pod-1"}, cmdutil.ExitUsage},
		{[]string{"uncordon", "pod-1"}, cmdutil.ExitUsage},
		{[]string{"check", "--cluster"}, cmdutil.ExitUsage},
		{[]string{"status"}, cmdutil.ExitFindings},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			cmd := NewCmdDC(streams)
			// Capture what cobra would print to the terminal.
			cmd.SetOut(out)
			cmd.SetErr(errOut)
			cmd.SetArgs(tc.args)
			code := Execute(cmd, streams)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut)
			}
			if !strings.Contains(errOut.String(), "error: no kubeconfig found: set KUBECONFIG or pass --kubeconfig") {
				t.Errorf("stderr does not say how to point at a cluster:\n%s", errOut)
			}
			if strings.Contains(out.String()+errOut.String(), "Usage:") {
				t.Errorf("usage printed for a missing kubeconfig:\n%s%s", out, errOut)
			}
		})
	}
}
