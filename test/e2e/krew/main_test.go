// Package krew tests the release of kubectl-dc as krew users get it: the
// archives and manifest hack/dist.sh (make dist) produces are validated the
// way krew validates a manifest, then installed the way krew installs one,
// and the installed plugin is run through the real kubectl. No cluster.
package krew

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// testVersion is the release version the test builds with.
const testVersion = "v0.1.0-e2e.1"

// allPlatforms are the platforms every real release ships.
var allPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"}

// release is what dist.sh produced: where, with which version and platforms.
type release struct {
	// root is the repository root.
	root string
	// distDir holds the archives and checksums.txt.
	distDir string
	// manifest is the rendered krew manifest, named dc.yaml.
	manifest string
	// version is spec.version the manifest must carry.
	version string
	// platforms are the GOOS/GOARCH pairs built; a real release has all five.
	platforms []string
	// built is true when TestMain built the release from the checkout.
	built bool
}

// rel is the release every test checks, built or found by TestMain.
var rel release

// TestMain builds the release once for the package. By default it runs
// hack/dist.sh into a temporary directory for this platform and
// windows/amd64 (the zip path): building all five platforms costs minutes of
// CPU on a small machine, and every check is per platform, so two platforms
// exercise both archive formats and the install. Set DIST_PLATFORMS (as for
// dist.sh) to build others, or point DC_DIST_DIR and DC_KREW_MANIFEST at the
// output of `make dist` to check a real release (then all five are required):
//
//	make dist && DC_DIST_DIR=$PWD/dist DC_KREW_MANIFEST=$PWD/krew/dc.yaml go test ./test/e2e/krew
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping test/e2e/krew in -short mode: it builds release archives")
		os.Exit(0)
	}
	code, err := setup(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "test/e2e/krew: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	root, err := moduleRoot()
	if err != nil {
		return 0, err
	}
	rel.root = root
	if dir := os.Getenv("DC_DIST_DIR"); dir != "" {
		rel.distDir = dir
		rel.manifest = os.Getenv("DC_KREW_MANIFEST")
		if rel.manifest == "" {
			rel.manifest = filepath.Join(root, "krew", "dc.yaml")
		}
		rel.platforms = allPlatforms
		// The version is whatever make dist used; the manifest says which,
		// and the checks below hold it to semver and to the archive names.
		return m.Run(), nil
	}

	tmp, err := os.MkdirTemp("", "dc-krew-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	rel.distDir = filepath.Join(tmp, "dist")
	rel.manifest = filepath.Join(tmp, "krew", "dc.yaml")
	rel.version = testVersion
	rel.built = true
	rel.platforms = defaultPlatforms()
	if env := os.Getenv("DIST_PLATFORMS"); env != "" {
		rel.platforms = strings.Fields(env)
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack", "dist.sh"), testVersion)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"DIST_DIR="+rel.distDir,
		"KREW_MANIFEST="+rel.manifest,
		"DIST_PLATFORMS="+strings.Join(rel.platforms, " "),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("hack/dist.sh %s: %w\n%s", testVersion, err, out.String())
	}
	return m.Run(), nil
}

// defaultPlatforms is this platform plus one that uses the other archive
// format.
func defaultPlatforms() []string {
	host := runtime.GOOS + "/" + runtime.GOARCH
	if runtime.GOOS == "windows" {
		return []string{host, "linux/amd64"}
	}
	return []string{host, "windows/amd64"}
}

// moduleRoot is the directory of the main module's go.mod above this package.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/kubectl-dc/kubectl-dc\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of github.com/kubectl-dc/kubectl-dc above the test directory")
		}
		dir = parent
	}
}
