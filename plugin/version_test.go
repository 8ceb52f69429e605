package plugin

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"
)

// setLinkerVars sets the link-time build variables for one test.
func setLinkerVars(t *testing.T, v, c, d string) {
	t.Helper()
	oldV, oldC, oldD := version, commit, date
	version, commit, date = v, c, d
	t.Cleanup(func() { version, commit, date = oldV, oldC, oldD })
}

// runDC runs `kubectl dc args...` in-process and returns the exit code,
// stdout and stderr.
func runDC(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	cmd := NewCmdDC(streams)
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	code := Execute(cmd, streams)
	return code, out.String(), errOut.String()
}

func TestVersionStructured(t *testing.T) {
	setLinkerVars(t, "v1.2.3", "0123abc", "2026-01-02T03:04:05Z")
	want := VersionInfo{
		Version:   "v1.2.3",
		Commit:    "0123abc",
		Date:      "2026-01-02T03:04:05Z",
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			code, out, errOut := runDC(t, "version", "--client", "-o", format)
			if code != cmdutil.ExitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			data := []byte(out)
			if format == "yaml" {
				var err error
				if data, err = yaml.YAMLToJSON(data); err != nil {
					t.Fatalf("output is not YAML: %v\n%s", err, out)
				}
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			var got VersionInfo
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("decode %s: %v\n%s", format, err, out)
			}
			if got != want {
				t.Errorf("version -o %s = %+v, want %+v", format, got, want)
			}
		})
	}
}

func TestVersionJSONKeys(t *testing.T) {
	setLinkerVars(t, "v1.2.3", "0123abc", "2026-01-02T03:04:05Z")
	_, out, _ := runDC(t, "version", "--client", "-o", "json")
	var m map[string]string
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	for _, key := range []string{"version", "commit", "date", "goVersion", "platform"} {
		if m[key] == "" {
			t.Errorf("key %q missing or empty in %s", key, out)
		}
	}
	if len(m) != 5 {
		t.Errorf("got %d keys, want 5: %s", len(m), out)
	}
}

func TestVersionText(t *testing.T) {
	setLinkerVars(t, "v1.2.3", "0123abc", "2026-01-02T03:04:05Z")
	code, out, _ := runDC(t, "version", "--client")
	if code != cmdutil.ExitOK {
		t.Fatalf("exit %d", code)
	}
	want := "kubectl-dc v1.2.3\n" +
		"  commit:   0123abc\n" +
		"  built:    2026-01-02T03:04:05Z\n" +
		"  go:       " + runtime.Version() + "\n" +
		"  platform: " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if out != want {
		t.Errorf("version =\n%s\nwant\n%s", out, want)
	}
}

func TestVersionUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad output", []string{"version", "-o", "xml"}, `error: unknown output format "xml" for --output: use one of json, yaml`},
		{"extra argument", []string{"version", "now"}, `error: unknown command "now" for "kubectl dc version"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runDC(t, tt.args...)
			if code != cmdutil.ExitUsage {
				t.Errorf("exit %d, want %d", code, cmdutil.ExitUsage)
			}
			// As kubectl: the error, then one line pointing to the help,
			// not the whole usage text burying the error.
			if want := tt.wantErr + "\nSee 'kubectl dc version --help' for usage.\n"; errOut != want {
				t.Errorf("stderr = %q, want %q", errOut, want)
			}
			if strings.Contains(errOut+out, "Usage:") {
				t.Errorf("a usage error printed the usage text; stdout %q stderr %q", out, errOut)
			}
		})
	}
}

func TestFillFromBuildInfo(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		name string
		in   VersionInfo
		bi   debug.BuildInfo
		want VersionInfo
	}{
		{
			name: "go install of a tag",
			bi:   debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"}},
			want: VersionInfo{Version: "v0.3.0"},
		},
		{
			name: "build in a clean checkout",
			bi: debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
				Settings: settings("vcs.revision", "abc", "vcs.time", "2026-01-01T00:00:00Z", "vcs.modified", "false")},
			want: VersionInfo{Commit: "abc", Date: "2026-01-01T00:00:00Z"},
		},
		{
			name: "build in a modified checkout",
			bi:   debug.BuildInfo{Settings: settings("vcs.revision", "abc", "vcs.modified", "true")},
			want: VersionInfo{Commit: "abc-dirty"},
		},
		{
			name: "linker flags win",
			in:   VersionInfo{Version: "v1.0.0", Commit: "fff", Date: "d"},
			bi: debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"},
				Settings: settings("vcs.revision", "abc", "vcs.time", "t", "vcs.modified", "true")},
			want: VersionInfo{Version: "v1.0.0", Commit: "fff", Date: "d"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			fillFromBuildInfo(&got, &tt.bi)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVersionUnsetIsUnknown(t *testing.T) {
	setLinkerVars(t, "", "", "")
	info := GetVersionInfo()
	// A test binary records "(devel)" or nothing as its version.
	if info.Version != unknown {
		t.Errorf("Version = %q, want %q", info.Version, unknown)
	}
	if info.Commit == "" || info.Date == "" {
		t.Errorf("empty fields in %+v: unset ones must read %q", info, unknown)
	}
}

// TestVersionWithoutCluster: without --client, version asks the cluster,
// and a cluster it cannot reach is said in the report, with exit 0.
func TestVersionWithoutCluster(t *testing.T) {
	setLinkerVars(t, "v1.2.3", "0123abc", "2026-01-02T03:04:05Z")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", empty)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	code, out, errOut := runDC(t, "version")
	if code != cmdutil.ExitOK || !strings.HasPrefix(out, "kubectl-dc v1.2.3\n") || !strings.Contains(out, "API server unknown (no kubeconfig found") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, _ = runDC(t, "version", "-o", "json")
	var v Versions
	if err := json.Unmarshal([]byte(out), &v); code != cmdutil.ExitOK || err != nil || v.Version != "v1.2.3" || !strings.HasPrefix(v.ServerError, "no kubeconfig found") {
		t.Errorf("exit %d, %v: %+v", code, err, v)
	}
}
