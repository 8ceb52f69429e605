package plugin

import (
	"strings"
	"testing"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
)

func TestCompletionScripts(t *testing.T) {
	tests := []struct {
		shell string
		want  []string // substrings the script must hold
	}{
		{"bash", []string{"# bash completion V2 for kubectl-dc", "__start_kubectl-dc()", "complete -o default -F __start_kubectl-dc kubectl-dc", "__complete"}},
		{"zsh", []string{"#compdef kubectl-dc", "compdef _kubectl-dc kubectl-dc", "__complete "}},
		{"fish", []string{"complete -c kubectl-dc", "__complete"}},
		{"powershell", []string{"Register-ArgumentCompleter", "kubectl-dc", "__complete"}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			code, out, errOut := runDC(t, "completion", tt.shell)
			if code != cmdutil.ExitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("completion %s lacks %q", tt.shell, w)
				}
			}
		})
	}
}

func TestCompletionUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no shell", []string{"completion"}, "error: completion needs exactly one shell argument, got 0: use one of bash, zsh, fish, powershell"},
		{"two shells", []string{"completion", "bash", "zsh"}, "error: completion needs exactly one shell argument, got 2: use one of bash, zsh, fish, powershell"},
		{"unknown shell", []string{"completion", "tcsh"}, `error: unsupported shell "tcsh": use one of bash, zsh, fish, powershell`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runDC(t, tt.args...)
			if code != cmdutil.ExitUsage {
				t.Errorf("exit %d, want %d", code, cmdutil.ExitUsage)
			}
			if !strings.HasPrefix(errOut, tt.wantErr+"\n") {
				t.Errorf("stderr = %q, want it to start with %q", errOut, tt.wantErr)
			}
			if out != "" && !strings.Contains(out, "Usage:") {
				t.Errorf("stdout = %q, want nothing or usage", out)
			}
		})
	}
}

// TestDynamicCompletion exercises what kubectl_complete-dc runs:
// `kubectl-dc __complete ARGS... TOCOMPLETE`.
func TestDynamicCompletion(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		want      []string // completions (the word before any tab description)
		directive string
	}{
		{"verbs", []string{"__complete", ""}, []string{"completion", "version"}, ":4"},
		{"shells", []string{"__complete", "completion", ""}, []string{"bash", "fish", "powershell", "zsh"}, ":4"},
		{"version output", []string{"__complete", "version", "-o", ""}, []string{"json", "yaml"}, ":4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runDC(t, tt.args...)
			if code != cmdutil.ExitOK {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if got := lines[len(lines)-1]; got != tt.directive {
				t.Errorf("directive = %q, want %q\n%s", got, tt.directive, out)
			}
			got := map[string]bool{}
			for _, l := range lines[:len(lines)-1] {
				got[strings.SplitN(l, "\t", 2)[0]] = true
			}
			for _, w := range tt.want {
				if !got[w] {
					t.Errorf("completions lack %q:\n%s", w, out)
				}
			}
		})
	}
}
