package krew

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"
)

// Plugin mirrors krew's v1alpha2 Plugin manifest. Decoding is strict, so a
// field krew does not know fails the test as it would fail krew's index.
type Plugin struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   Metadata   `json:"metadata"`
	Spec       PluginSpec `json:"spec"`
}

// Metadata is the part of ObjectMeta a plugin manifest uses.
type Metadata struct {
	Name string `json:"name"`
}

// PluginSpec mirrors krew's PluginSpec.
type PluginSpec struct {
	Version          string     `json:"version"`
	ShortDescription string     `json:"shortDescription"`
	Description      string     `json:"description"`
	Caveats          string     `json:"caveats"`
	Homepage         string     `json:"homepage"`
	Platforms        []Platform `json:"platforms"`
}

// Platform mirrors krew's Platform: one archive and how to install it.
type Platform struct {
	URI      string                `json:"uri"`
	Sha256   string                `json:"sha256"`
	Selector *metav1.LabelSelector `json:"selector"`
	Files    []FileOperation       `json:"files"`
	License  string                `json:"license,omitempty"`
	// Bin is the executable's path relative to the installation directory.
	Bin string `json:"bin"`
}

// FileOperation mirrors krew's FileOperation: files matching the From glob
// in the unpacked archive go to To in the installation directory.
type FileOperation struct {
	From string `json:"from"`
	To   string `json:"to"`
}

const (
	krewAPIVersion = "krew.googlecontainertools.github.com/v1alpha2"
	releaseURL     = "https://github.com/kubectl-dc/kubectl-dc/releases/download"
)

var (
	safePluginName = regexp.MustCompile(`^[\w-]+$`)
	validSHA256    = regexp.MustCompile(`^[a-f0-9]{64}$`)
	// knownPlatforms are the os/arch pairs krew users run; no two platforms
	// of a manifest may match the same one.
	knownPlatforms = []string{
		"darwin/amd64", "darwin/arm64", "linux/386", "linux/amd64", "linux/arm",
		"linux/arm64", "linux/ppc64le", "linux/s390x", "windows/386",
		"windows/amd64", "windows/arm64",
	}
)

// loadManifest strictly decodes the manifest at file.
func loadManifest(file string) (*Plugin, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var p Plugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("%s: strict decoding: %w", file, err)
	}
	return &p, nil
}

// validateStructure checks what krew's validator checks on a manifest named
// file, plus the release conventions of kubectl-dc, and returns every
// problem found.
func validateStructure(file string, p *Plugin) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.APIVersion != krewAPIVersion {
		add("apiVersion is %q, want %q", p.APIVersion, krewAPIVersion)
	}
	if p.Kind != "Plugin" {
		add("kind is %q, want Plugin", p.Kind)
	}
	name := strings.TrimSuffix(filepath.Base(file), ".yaml")
	if !safePluginName.MatchString(name) {
		add("plugin name %q from the file name is not safe: must match %s", name, safePluginName)
	}
	if p.Metadata.Name != name {
		add("metadata.name is %q but the file is %s: they must match", p.Metadata.Name, filepath.Base(file))
	}
	if p.Spec.ShortDescription == "" {
		add("spec.shortDescription is empty")
	}
	if p.Spec.Description == "" || p.Spec.Homepage == "" || p.Spec.Caveats == "" {
		add("spec.description, spec.homepage and spec.caveats must all be set")
	}
	if err := validateVersion(p.Spec.Version); err != nil {
		add("spec.version: %v", err)
	}
	if len(p.Spec.Platforms) == 0 {
		add("spec.platforms is empty")
	}
	for i, pl := range p.Spec.Platforms {
		for _, err := range validatePlatform(pl) {
			add("spec.platforms[%d]: %v", i, err)
		}
	}
	for _, osArch := range knownPlatforms {
		if matched := matchingPlatforms(p, osArch); len(matched) > 1 {
			add("platforms %v all match %s: selectors must not overlap", matched, osArch)
		}
	}
	return errs
}

// validateVersion accepts vX.Y.Z and vX.Y.Z-pre, as krew does.
func validateVersion(v string) error {
	if !strings.HasPrefix(v, "v") {
		return fmt.Errorf("%q must start with v", v)
	}
	if _, err := utilversion.ParseSemantic(strings.TrimPrefix(v, "v")); err != nil {
		return fmt.Errorf("%q is not semver: %w", v, err)
	}
	return nil
}

func validatePlatform(pl Platform) []error {
	var errs []error
	if pl.URI == "" {
		errs = append(errs, fmt.Errorf("uri is empty"))
	}
	if !validSHA256.MatchString(pl.Sha256) {
		errs = append(errs, fmt.Errorf("sha256 %q is not 64 lowercase hex digits", pl.Sha256))
	}
	if pl.Bin == "" {
		errs = append(errs, fmt.Errorf("bin is empty"))
	}
	if len(pl.Files) == 0 {
		errs = append(errs, fmt.Errorf("files is empty"))
	}
	for j, f := range pl.Files {
		if f.From == "" || f.To == "" {
			errs = append(errs, fmt.Errorf("files[%d]: from and to must both be set", j))
		}
	}
	sel := pl.Selector
	switch {
	case sel == nil:
		errs = append(errs, fmt.Errorf("selector is missing"))
	case len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0:
		errs = append(errs, fmt.Errorf("selector is empty"))
	default:
		for k := range sel.MatchLabels {
			if k != "os" && k != "arch" {
				errs = append(errs, fmt.Errorf("selector key %q: only os and arch are supported", k))
			}
		}
		for _, e := range sel.MatchExpressions {
			if e.Key != "os" && e.Key != "arch" {
				errs = append(errs, fmt.Errorf("selector key %q: only os and arch are supported", e.Key))
			}
		}
		if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
			errs = append(errs, fmt.Errorf("selector: %w", err))
		}
	}
	return errs
}

// matchingPlatforms returns the indexes of the platforms whose selector
// matches osArch ("linux/amd64").
func matchingPlatforms(p *Plugin, osArch string) []int {
	goos, goarch, _ := strings.Cut(osArch, "/")
	set := labels.Set{"os": goos, "arch": goarch}
	var matched []int
	for i, pl := range p.Spec.Platforms {
		if pl.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pl.Selector)
		if err == nil && sel.Matches(set) {
			matched = append(matched, i)
		}
	}
	return matched
}

// archiveEntry is one regular file of an archive.
type archiveEntry struct {
	Mode fs.FileMode
	Size int64
}

// walkArchive calls fn for every regular file of the .tar.gz or .zip at file.
func walkArchive(file string, fn func(name string, mode fs.FileMode, r io.Reader) error) error {
	if strings.HasSuffix(file, ".zip") {
		zr, err := zip.OpenReader(file)
		if err != nil {
			return err
		}
		defer zr.Close()
		for _, f := range zr.File {
			if f.FileInfo().IsDir() {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return err
			}
			err = fn(f.Name, f.Mode(), rc)
			rc.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if !strings.HasSuffix(file, ".tar.gz") {
		return fmt.Errorf("%s: not a .tar.gz or .zip", file)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := fn(h.Name, h.FileInfo().Mode(), tr); err != nil {
			return err
		}
	}
}

// archiveContents lists the regular files of an archive.
func archiveContents(file string) (map[string]archiveEntry, error) {
	entries := map[string]archiveEntry{}
	err := walkArchive(file, func(name string, mode fs.FileMode, r io.Reader) error {
		n, err := io.Copy(io.Discard, r)
		entries[path.Clean(name)] = archiveEntry{Mode: mode, Size: n}
		return err
	})
	return entries, err
}

func sha256File(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readChecksums parses checksums.txt ("<sha256>  <file>" lines).
func readChecksums(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s: bad line %q: want \"<sha256>  <file>\"", file, sc.Text())
		}
		sums[fields[1]] = fields[0]
	}
	return sums, sc.Err()
}

// archiveName is the file name of the archive of osArch in release version.
func archiveName(version, osArch string) string {
	goos, goarch, _ := strings.Cut(osArch, "/")
	ext := ".tar.gz"
	if goos == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("kubectl-dc_%s_%s_%s%s", version, goos, goarch, ext)
}

// releaseVersion is the version the release under test must carry.
func releaseVersion(t *testing.T, p *Plugin) string {
	t.Helper()
	if rel.version != "" {
		return rel.version
	}
	return p.Spec.Version
}

// TestRenderedManifest validates the manifest dist.sh rendered as krew's
// validator would, and every archive it points at.
func TestRenderedManifest(t *testing.T) {
	if filepath.Base(rel.manifest) != "dc.yaml" {
		t.Fatalf("manifest %s must be named dc.yaml", rel.manifest)
	}
	p, err := loadManifest(rel.manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range validateStructure(rel.manifest, p) {
		t.Error(err)
	}
	version := releaseVersion(t, p)
	if p.Spec.Version != version {
		t.Errorf("spec.version = %q, want %q", p.Spec.Version, version)
	}
	sums, err := readChecksums(filepath.Join(rel.distDir, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}

	// Exactly the platforms built, each matched by exactly one entry.
	if len(p.Spec.Platforms) != len(rel.platforms) {
		t.Errorf("manifest lists %d platforms, want %d (%v)", len(p.Spec.Platforms), len(rel.platforms), rel.platforms)
	}
	if len(sums) != len(rel.platforms) {
		t.Errorf("checksums.txt lists %d archives, want %d: %v", len(sums), len(rel.platforms), sums)
	}
	for _, osArch := range rel.platforms {
		matched := matchingPlatforms(p, osArch)
		if len(matched) != 1 {
			t.Errorf("%s is matched by platforms %v, want exactly one", osArch, matched)
			continue
		}
		pl := p.Spec.Platforms[matched[0]]
		t.Run(strings.ReplaceAll(osArch, "/", "_"), func(t *testing.T) {
			checkPlatform(t, pl, osArch, version, sums)
		})
	}
}

// checkPlatform checks that pl's uri names the archive dist.sh produced for
// osArch, with the recorded sha256, holding the bin, a license and every
// file the file operations take.
func checkPlatform(t *testing.T, pl Platform, osArch, version string, sums map[string]string) {
	name := archiveName(version, osArch)
	wantURI := releaseURL + "/" + version + "/" + name
	if pl.URI != wantURI {
		t.Errorf("uri = %q, want %q", pl.URI, wantURI)
	}
	archive := filepath.Join(rel.distDir, path.Base(pl.URI))
	got, err := sha256File(archive)
	if err != nil {
		t.Fatalf("uri %s does not resolve to an archive of make dist: %v", pl.URI, err)
	}
	if got != pl.Sha256 {
		t.Errorf("sha256 of %s is %s, manifest records %s", archive, got, pl.Sha256)
	}
	if sums[name] != got {
		t.Errorf("checksums.txt records %q for %s, the file has %s", sums[name], name, got)
	}

	entries, err := archiveContents(archive)
	if err != nil {
		t.Fatalf("reading %s: %v", archive, err)
	}
	wantBin := "kubectl-dc"
	if strings.HasPrefix(osArch, "windows/") {
		wantBin = "kubectl-dc.exe"
	}
	if pl.Bin != wantBin {
		t.Errorf("bin = %q, want %q", pl.Bin, wantBin)
	}
	// All file operations here copy to ".", so bin's path in the
	// installation directory is its path in the archive.
	bin, ok := entries[pl.Bin]
	switch {
	case !ok:
		t.Errorf("archive %s lacks bin %q; it holds %v", name, pl.Bin, keys(entries))
	case !strings.HasPrefix(osArch, "windows/") && bin.Mode&0o111 == 0:
		t.Errorf("bin %q in %s is not executable: mode %v", pl.Bin, name, bin.Mode)
	case bin.Size < 1<<20:
		t.Errorf("bin %q in %s is only %d bytes", pl.Bin, name, bin.Size)
	}
	if !slices.ContainsFunc(keys(entries), func(n string) bool { return strings.HasPrefix(strings.ToUpper(n), "LICENSE") }) {
		t.Errorf("archive %s holds no license file: %v", name, keys(entries))
	}
	for _, op := range pl.Files {
		if op.To != "." {
			t.Errorf("files: from %q goes to %q; this release installs everything to \".\"", op.From, op.To)
		}
		matched := false
		for n := range entries {
			if ok, _ := path.Match(op.From, n); ok {
				matched = true
			}
		}
		if !matched {
			t.Errorf("files: from %q matches nothing in %s (%v)", op.From, name, keys(entries))
		}
	}
	helper := "kubectl_complete-dc"
	if strings.HasPrefix(osArch, "windows/") {
		helper += ".cmd"
	}
	if _, ok := entries[helper]; !ok {
		t.Errorf("archive %s lacks the completion helper %s", name, helper)
	}
}

func keys(m map[string]archiveEntry) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestCommittedManifest checks krew/dc.yaml in the repository, the one
// users install with --manifest: valid for krew and listing all five
// release platforms. Its archives belong to the last `make dist`, so only
// their names are checked here.
func TestCommittedManifest(t *testing.T) {
	file := filepath.Join(rel.root, "krew", "dc.yaml")
	p, err := loadManifest(file)
	if err != nil {
		t.Fatalf("%v (run make dist to render it)", err)
	}
	for _, err := range validateStructure(file, p) {
		t.Error(err)
	}
	for _, osArch := range allPlatforms {
		matched := matchingPlatforms(p, osArch)
		if len(matched) != 1 {
			t.Errorf("%s is matched by platforms %v, want exactly one", osArch, matched)
			continue
		}
		want := releaseURL + "/" + p.Spec.Version + "/" + archiveName(p.Spec.Version, osArch)
		if got := p.Spec.Platforms[matched[0]].URI; got != want {
			t.Errorf("%s: uri = %q, want %q", osArch, got, want)
		}
	}
	if len(p.Spec.Platforms) != len(allPlatforms) {
		t.Errorf("krew/dc.yaml lists %d platforms, want %d", len(p.Spec.Platforms), len(allPlatforms))
	}
}

// TestDescriptionNamesPermissions keeps the promise of the issue: the
// description says which permissions each command needs.
func TestDescriptionNamesPermissions(t *testing.T) {
	p, err := loadManifest(rel.manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kubectl dc status", "pods/exec", "endpointslices", "poddisruptionbudgets", "placementpolicies",
		"kubectl dc check --cluster", "kubectl dc drain", "pods/eviction", "patch on nodes", "kubectl dc uncordon",
	} {
		if !strings.Contains(p.Spec.Description, want) {
			t.Errorf("spec.description does not mention %q", want)
		}
	}
	if !strings.Contains(p.Spec.Caveats, "manifests/") {
		t.Errorf("spec.caveats does not point at the webhook manifests")
	}
}

// TestValidatorRejects shows the validator above catches what krew rejects.
func TestValidatorRejects(t *testing.T) {
	good := func() *Plugin {
		return &Plugin{
			APIVersion: krewAPIVersion, Kind: "Plugin", Metadata: Metadata{Name: "dc"},
			Spec: PluginSpec{
				Version: "v1.0.0", ShortDescription: "s", Description: "d", Homepage: "h", Caveats: "c",
				Platforms: []Platform{
					{URI: "u", Sha256: strings.Repeat("a", 64), Bin: "kubectl-dc", Files: []FileOperation{{From: "*", To: "."}},
						Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"os": "linux", "arch": "amd64"}}},
					{URI: "u", Sha256: strings.Repeat("b", 64), Bin: "kubectl-dc", Files: []FileOperation{{From: "*", To: "."}},
						Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"os": "darwin"}}},
				},
			},
		}
	}
	if errs := validateStructure("dc.yaml", good()); len(errs) != 0 {
		t.Fatalf("good manifest rejected: %v", errs)
	}
	tests := []struct {
		name    string
		file    string
		mutate  func(p *Plugin)
		wantErr string
	}{
		{"name differs from file", "other.yaml", func(*Plugin) {}, `metadata.name is "dc" but the file is other.yaml`},
		{"no v", "dc.yaml", func(p *Plugin) { p.Spec.Version = "1.0.0" }, `spec.version: "1.0.0" must start with v`},
		{"not semver", "dc.yaml", func(p *Plugin) { p.Spec.Version = "v1.0" }, `spec.version: "v1.0" is not semver`},
		{"bad sha", "dc.yaml", func(p *Plugin) { p.Spec.Platforms[0].Sha256 = "ABC" }, `spec.platforms[0]: sha256 "ABC" is not 64 lowercase hex digits`},
		{"overlap", "dc.yaml", func(p *Plugin) { p.Spec.Platforms[1].Selector.MatchLabels = map[string]string{"os": "linux"} }, "platforms [0 1] all match linux/amd64"},
		{"unknown selector key", "dc.yaml", func(p *Plugin) { p.Spec.Platforms[1].Selector.MatchLabels["distro"] = "x" }, `spec.platforms[1]: selector key "distro"`},
		{"no files", "dc.yaml", func(p *Plugin) { p.Spec.Platforms[0].Files = nil }, "spec.platforms[0]: files is empty"},
		{"wrong api", "dc.yaml", func(p *Plugin) { p.APIVersion = "krew.googlecontainertools.github.com/v1alpha1" }, "apiVersion is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good()
			tt.mutate(p)
			errs := validateStructure(tt.file, p)
			found := false
			for _, err := range errs {
				found = found || strings.Contains(err.Error(), tt.wantErr)
			}
			if !found {
				t.Errorf("errors %v lack %q", errs, tt.wantErr)
			}
		})
	}
	t.Run("unknown field", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "dc.yaml")
		data := "apiVersion: " + krewAPIVersion + "\nkind: Plugin\nmetadata: {name: dc}\nspec:\n  version: v1.0.0\n  shortDescrption: typo\n"
		if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadManifest(file); err == nil || !strings.Contains(err.Error(), "shortDescrption") {
			t.Errorf("loadManifest = %v, want an unknown field error naming shortDescrption", err)
		}
	})
}
