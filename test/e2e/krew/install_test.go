package krew

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// krewRoot is a krew installation directory ($KREW_ROOT) in a test.
type krewRoot struct {
	Dir string
}

// BinDir is where krew links plugin executables; users put it on PATH.
func (k krewRoot) BinDir() string { return filepath.Join(k.Dir, "bin") }

// StoreDir is where a plugin version's files live.
func (k krewRoot) StoreDir(name, version string) string {
	return filepath.Join(k.Dir, "store", name, version)
}

// install does what `kubectl krew install --manifest=M --archive=A` does:
// pick the platform matching this machine, verify the archive's sha256,
// unpack it, apply the file operations into store/NAME/VERSION, link bin as
// kubectl-NAME into bin/, and write the receipt.
func (k krewRoot) install(p *Plugin, manifestFile, archive string) error {
	osArch := runtime.GOOS + "/" + runtime.GOARCH
	matched := matchingPlatforms(p, osArch)
	if len(matched) != 1 {
		return fmt.Errorf("plugin %q: %d platforms match %s, want one", p.Metadata.Name, len(matched), osArch)
	}
	pl := p.Spec.Platforms[matched[0]]
	sum, err := sha256File(archive)
	if err != nil {
		return err
	}
	if sum != pl.Sha256 {
		return fmt.Errorf("checksum of %s is %s, manifest wants %s", archive, sum, pl.Sha256)
	}

	unpacked, err := os.MkdirTemp(k.Dir, "unpack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(unpacked)
	err = walkArchive(archive, func(name string, mode fs.FileMode, r io.Reader) error {
		clean := path.Clean(name)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("archive entry %q leaves the archive", name)
		}
		dst := filepath.Join(unpacked, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", archive, err)
	}

	store := k.StoreDir(p.Metadata.Name, p.Spec.Version)
	if err := os.MkdirAll(store, 0o755); err != nil {
		return err
	}
	for _, op := range pl.Files {
		matches, err := filepath.Glob(filepath.Join(unpacked, filepath.FromSlash(op.From)))
		if err != nil {
			return err
		}
		if len(matches) == 0 {
			return fmt.Errorf("files: from %q matches nothing in the archive", op.From)
		}
		to := filepath.Join(store, filepath.FromSlash(op.To))
		if err := os.MkdirAll(to, 0o755); err != nil {
			return err
		}
		for _, m := range matches {
			if err := os.Rename(m, filepath.Join(to, filepath.Base(m))); err != nil {
				return err
			}
		}
	}
	bin := filepath.Join(store, filepath.FromSlash(pl.Bin))
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("bin %q is not in the installation directory: %w", pl.Bin, err)
	}
	if err := os.MkdirAll(k.BinDir(), 0o755); err != nil {
		return err
	}
	link := filepath.Join(k.BinDir(), "kubectl-"+p.Metadata.Name)
	if runtime.GOOS == "windows" {
		// krew copies on Windows instead of linking.
		data, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		if err := os.WriteFile(link+".exe", data, 0o755); err != nil {
			return err
		}
	} else if err := os.Symlink(bin, link); err != nil {
		return err
	}

	receipts := filepath.Join(k.Dir, "receipts")
	if err := os.MkdirAll(receipts, 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(manifestFile)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(receipts, p.Metadata.Name+".yaml"), data, 0o644)
}

// kubectlEnv runs the real kubectl with binDir first on PATH, a home and
// kubeconfig of its own, and no cluster.
type kubectlEnv struct {
	kubectl string
	env     []string
}

func newKubectlEnv(t *testing.T, binDir string) kubectlEnv {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skipf("the install test runs the real kubectl, and none is on PATH: %v", err)
	}
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "HOME", "KUBECONFIG", "KREW_ROOT":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+home,
		"KUBECONFIG="+filepath.Join(home, "no-cluster.kubeconfig"),
	)
	return kubectlEnv{kubectl: kubectl, env: env}
}

// run runs kubectl args... and returns stdout; it fails the test on a
// non-zero exit.
func (k kubectlEnv) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(k.kubectl, args...)
	cmd.Env = k.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// TestInstallLikeKrew installs this platform's archive from the manifest
// into a temporary krew root and runs the plugin through the real kubectl.
func TestInstallLikeKrew(t *testing.T) {
	p, err := loadManifest(rel.manifest)
	if err != nil {
		t.Fatal(err)
	}
	version := releaseVersion(t, p)
	osArch := runtime.GOOS + "/" + runtime.GOARCH
	archive := filepath.Join(rel.distDir, archiveName(version, osArch))
	if _, err := os.Stat(archive); err != nil {
		t.Fatalf("no archive for this platform %s: %v (DIST_PLATFORMS must include it)", osArch, err)
	}
	root := krewRoot{Dir: t.TempDir()}
	if err := root.install(p, rel.manifest, archive); err != nil {
		t.Fatalf("install: %v", err)
	}
	store := root.StoreDir("dc", version)
	for _, f := range []string{"LICENSE", "kubectl_complete-dc"} {
		if runtime.GOOS == "windows" && f == "kubectl_complete-dc" {
			f += ".cmd"
		}
		if _, err := os.Stat(filepath.Join(store, f)); err != nil {
			t.Errorf("%s was not installed into %s: %v", f, store, err)
		}
	}
	k := newKubectlEnv(t, root.BinDir())

	t.Run("version", func(t *testing.T) {
		out := k.run(t, "dc", "version", "-o", "json")
		var info map[string]string
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatalf("kubectl dc version -o json: %v\n%s", err, out)
		}
		if info["version"] != version {
			t.Errorf("version = %q, want %q", info["version"], version)
		}
		if info["platform"] != osArch {
			t.Errorf("platform = %q, want %q", info["platform"], osArch)
		}
		// dist.sh stamps the checkout's commit, "unknown" outside git. A
		// release from DC_DIST_DIR may predate HEAD.
		wantCommit := "unknown"
		if head, err := exec.Command("git", "-C", rel.root, "rev-parse", "--short", "HEAD").Output(); err == nil {
			wantCommit = strings.TrimSpace(string(head))
		}
		if c := info["commit"]; c == "" {
			t.Errorf("commit is empty: %s", out)
		} else if rel.built && c != wantCommit && c != wantCommit+"-dirty" {
			t.Errorf("commit = %q, want %q or %q", c, wantCommit, wantCommit+"-dirty")
		}
		if _, err := time.Parse(time.RFC3339, info["date"]); err != nil {
			t.Errorf("date = %q, want an RFC 3339 time set at link time: %v", info["date"], err)
		}
		yamlOut := k.run(t, "dc", "version", "-o", "yaml")
		var fromYAML map[string]string
		if err := yaml.Unmarshal([]byte(yamlOut), &fromYAML); err != nil || fromYAML["version"] != version {
			t.Errorf("kubectl dc version -o yaml = %q (%v), want version %s", yamlOut, err, version)
		}
		text := k.run(t, "dc", "version")
		if !strings.HasPrefix(text, "kubectl-dc "+version+"\n") {
			t.Errorf("kubectl dc version = %q, want it to start with %q", text, "kubectl-dc "+version)
		}
	})

	t.Run("plugin list", func(t *testing.T) {
		out := k.run(t, "plugin", "list")
		want := filepath.Join(root.BinDir(), "kubectl-dc")
		if runtime.GOOS == "windows" {
			want += ".exe"
		}
		found := false
		for _, line := range strings.Split(out, "\n") {
			found = found || strings.TrimSpace(line) == want
		}
		if !found {
			t.Errorf("kubectl plugin list does not list %s:\n%s", want, out)
		}
	})

	t.Run("status help", func(t *testing.T) {
		out := k.run(t, "dc", "status", "--help")
		if !strings.Contains(out, "kubectl dc status") {
			t.Errorf("kubectl dc status --help does not show its usage as kubectl dc status:\n%s", out)
		}
	})

	t.Run("completion through kubectl", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("the helper is a .cmd file on Windows")
		}
		// As the manifest's caveats tell users: link the helper next to the
		// plugin. kubectl then runs it for `kubectl dc <TAB>`.
		helper := filepath.Join(store, "kubectl_complete-dc")
		if err := os.Symlink(helper, filepath.Join(root.BinDir(), "kubectl_complete-dc")); err != nil {
			t.Fatal(err)
		}
		out := k.run(t, "__complete", "dc", "")
		for _, want := range []string{"version\t", "completion\t"} {
			if !strings.Contains(out, "\n"+want) && !strings.HasPrefix(out, want) {
				t.Errorf("kubectl __complete dc \"\" lacks %q:\n%s", strings.TrimSpace(want), out)
			}
		}
		out = k.run(t, "__complete", "dc", "version", "-o", "")
		if !strings.HasPrefix(out, "json\nyaml\n") {
			t.Errorf("kubectl __complete dc version -o \"\" = %q, want json and yaml first", out)
		}
	})
}
