package plugin

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Build information set at link time by `make build` and `make dist`:
//
//	-X github.com/kubectl-dc/kubectl-dc/plugin.version=v0.1.0
//	-X github.com/kubectl-dc/kubectl-dc/plugin.commit=0123abc
//	-X github.com/kubectl-dc/kubectl-dc/plugin.date=2026-01-02T03:04:05Z
//
// Empty means not set: GetVersionInfo then falls back to what the Go
// toolchain recorded (the module version of `go install ...@vX.Y.Z`, the VCS
// revision and time of a build inside a git checkout).
var (
	version string
	commit  string
	date    string
)

// unknown stands for build information that neither the linker flags nor the
// Go toolchain recorded.
const unknown = "unknown"

// VersionInfo is what `kubectl dc version` reports.
type VersionInfo struct {
	// Version is the release, vX.Y.Z for builds of a tag.
	Version string `json:"version"`
	// Commit is the git revision the binary was built from.
	Commit string `json:"commit"`
	// Date is the build (or commit) time, RFC 3339 in UTC.
	Date string `json:"date"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH of the binary.
	Platform string `json:"platform"`
}

// GetVersionInfo returns the build information of the running binary.
func GetVersionInfo() VersionInfo {
	info := VersionInfo{
		Version:   version,
		Commit:    commit,
		Date:      date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		fillFromBuildInfo(&info, bi)
	}
	for _, s := range []*string{&info.Version, &info.Commit, &info.Date} {
		if *s == "" {
			*s = unknown
		}
	}
	return info
}

// fillFromBuildInfo fills the fields the linker left empty from what the Go
// toolchain recorded in bi. Linker flags always win.
func fillFromBuildInfo(info *VersionInfo, bi *debug.BuildInfo) {
	// "(devel)" is what a build inside the main module records: no version.
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	revisionFromVCS, modified := false, false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if info.Commit == "" {
				info.Commit, revisionFromVCS = s.Value, true
			}
		case "vcs.time":
			if info.Date == "" {
				info.Date = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revisionFromVCS && modified {
		info.Commit += "-dirty"
	}
}

// VersionOptions holds the flags of `kubectl dc version`.
type VersionOptions struct {
	// Output is "" for human-readable text, or json or yaml.
	Output string

	genericiooptions.IOStreams
}

// NewVersionOptions returns VersionOptions with the defaults of the flags.
func NewVersionOptions(streams genericiooptions.IOStreams) *VersionOptions {
	return &VersionOptions{IOStreams: streams}
}

// NewCmdVersion returns `kubectl dc version`.
func NewCmdVersion(streams genericiooptions.IOStreams) *cobra.Command {
	o := NewVersionOptions(streams)
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date of kubectl dc",
		Long: `Print what was set when kubectl dc was built: the release version, the git
commit, the build date, the Go version and the platform. It needs no cluster.`,
		Example: `  # Human-readable
  kubectl dc version

  # For scripts and bug reports
  kubectl dc version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run()
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format. One of: json|yaml. Empty prints text.")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{cmdutil.OutputJSON, cmdutil.OutputYAML}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// Complete has nothing to fill in; it is here so every verb has the same shape.
func (o *VersionOptions) Complete() error { return nil }

// Validate checks the output format.
func (o *VersionOptions) Validate() error {
	if o.Output == "" {
		return nil
	}
	return cmdutil.ValidateOutput(o.Output, cmdutil.OutputJSON, cmdutil.OutputYAML)
}

// Run prints the build information.
func (o *VersionOptions) Run() error {
	info := GetVersionInfo()
	if o.Output != "" {
		return cmdutil.PrintStructured(o.Out, o.Output, info)
	}
	_, err := fmt.Fprintf(o.Out, "kubectl-dc %s\n  commit:   %s\n  built:    %s\n  go:       %s\n  platform: %s\n",
		info.Version, info.Commit, info.Date, info.GoVersion, info.Platform)
	return err
}
