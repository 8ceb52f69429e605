package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"

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

// TestGlobalFlagCompletion: --context and --cluster complete from the
// kubeconfig, as in kubectl.
func TestGlobalFlagCompletion(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: east, cluster: {server: "https://127.0.0.1:1"}}, {name: west, cluster: {server: "https://127.0.0.1:2"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: prod-east, context: {cluster: east, user: u}}, {name: prod-west, context: {cluster: west, user: u}}, {name: dev, context: {cluster: east, user: u}}]
current-context: dev
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "--kubeconfig", kc, "status", "--context", "prod"}, "prod-east\nprod-west\n:4\n"},
		{[]string{"__complete", "--kubeconfig", kc, "status", "--cluster", ""}, "east\nwest\n:4\n"},
	} {
		streams, _, out, errOut := genericiooptions.NewTestIOStreams()
		cmd := NewCmdDC(streams)
		cmd.SetOut(out)
		cmd.SetErr(errOut)
		cmd.SetArgs(tc.args)
		if code := Execute(cmd, streams); code != 0 || out.String() != tc.want {
			t.Errorf("%v: exit %d\n%q\nwant %q", tc.args, code, out.String(), tc.want)
		}
	}
}

// TestIgnoredNamespaceIsSaid: -n on the verbs that work on every
// namespace (status, drain, uncordon) is warned about, not ignored
// silently, also when the verb fails at once (no kubeconfig here).
func TestIgnoredNamespaceIsSaid(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", empty)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "-n", "team-a"}, "Warning: -n/--namespace is ignored: kubectl dc status works on every namespace (a datacenter spans namespaces)\n"},
		{[]string{"drain", "pod-1", "-n", "team-a"}, "Warning: -n/--namespace is ignored: kubectl dc drain works on every namespace (a datacenter spans namespaces); --pod-selector limits the pods\n"},
		{[]string{"uncordon", "pod-1", "--namespace", "team-a"}, "Warning: -n/--namespace is ignored: kubectl dc uncordon works on every namespace (a datacenter spans namespaces)\n"},
	} {
		streams, _, _, errOut := genericiooptions.NewTestIOStreams()
		cmd := NewCmdDC(streams)
		cmd.SetArgs(tc.args)
		_ = Execute(cmd, streams)
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, tc.want, errOut)
		}
	}
}

// TestVerbosityFlag: kubectl's -v and --v set the log level, so that
// -v=6 shows every API request with its latency, as kubectl does.
func TestVerbosityFlag(t *testing.T) {
	for _, arg := range []string{"-v=7", "--v=7", "-v7"} {
		t.Run(arg, func(t *testing.T) {
			streams, _, _, errOut := genericiooptions.NewTestIOStreams()
			cmd := NewCmdDC(streams)
			cmd.SetArgs([]string{"completion", "bash", arg})
			if code := Execute(cmd, streams); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !klog.V(7).Enabled() || klog.V(8).Enabled() {
				t.Errorf("%s: log level not 7", arg)
			}
			cmd = NewCmdDC(streams)
			cmd.SetArgs([]string{"completion", "bash", "--v=0"})
			if code := Execute(cmd, streams); code != 0 || klog.V(1).Enabled() {
				t.Fatalf("--v=0 did not reset the log level (exit %d)", code)
			}
		})
	}
}
