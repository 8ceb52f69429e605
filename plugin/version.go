package plugin

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
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
	// Client prints the plugin's version alone, without asking the cluster.
	Client bool

	config *genericclioptions.ConfigFlags
	genericiooptions.IOStreams
}

// Versions is what `kubectl dc version` reports: the plugin's build (at the
// top level, as before), and unless --client the API server's and the
// running dc-webhook's.
type Versions struct {
	VersionInfo `json:",inline"`
	// ServerVersion is the API server's gitVersion; ServerError says why
	// it is unknown.
	ServerVersion string `json:"serverVersion,omitempty"`
	ServerError   string `json:"serverError,omitempty"`
	// Webhook is the dc-webhook Deployment's version, from its image tag.
	Webhook *WebhookVersion `json:"webhook,omitempty"`
}

// WebhookVersion is the running dc-webhook as its Deployment shows it.
type WebhookVersion struct {
	// Version is the tag of the dc-webhook image, "" when unknown; Error
	// says why.
	Version string `json:"version,omitempty"`
	Image   string `json:"image,omitempty"`
	// Ready and Replicas are the Deployment's ready and desired replicas.
	Ready    int32  `json:"ready"`
	Replicas int32  `json:"replicas"`
	Error    string `json:"error,omitempty"`
}

// webhookDeployment is where manifests/ installs dc-webhook.
const webhookNamespace, webhookDeployment = "dc-system", "dc-webhook"

// NewVersionOptions returns VersionOptions with the defaults of the flags.
func NewVersionOptions(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *VersionOptions {
	return &VersionOptions{config: config, IOStreams: streams}
}

// NewCmdVersion returns `kubectl dc version`.
func NewCmdVersion(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewVersionOptions(config, streams)
	cmd := &cobra.Command{
		Use:   "version [--client]",
		Short: "Print the versions of kubectl dc, the API server and the running dc-webhook",
		Long: `Print what was set when kubectl dc was built (the release version, the git
commit, the build date, the Go version and the platform), and, as kubectl
version does, the API server's version and the running dc-webhook's (the tag
of the image of Deployment dc-system/dc-webhook). With --client it needs no
cluster; without, a cluster that cannot be reached is said, not an error.`,
		Example: `  # Human-readable
  kubectl dc version

  # The plugin alone, no cluster needed
  kubectl dc version --client

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
			return o.Run(cmdutil.Context(cmd))
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "Output format. One of: json|yaml. Empty prints text.")
	cmd.Flags().BoolVar(&o.Client, "client", o.Client, "Print the plugin's version only, without asking the cluster.")
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

// Run prints the versions.
func (o *VersionOptions) Run(ctx context.Context) error {
	v := Versions{VersionInfo: GetVersionInfo()}
	if !o.Client && o.config != nil {
		o.ask(ctx, &v)
	}
	if o.Output != "" {
		return cmdutil.PrintStructured(o.Out, o.Output, v)
	}
	info := v.VersionInfo
	_, err := fmt.Fprintf(o.Out, "kubectl-dc %s\n  commit:   %s\n  built:    %s\n  go:       %s\n  platform: %s\n",
		info.Version, info.Commit, info.Date, info.GoVersion, info.Platform)
	if err != nil || o.Client || o.config == nil {
		return err
	}
	server := v.ServerVersion
	if server == "" {
		server = "unknown (" + v.ServerError + ")"
	}
	fmt.Fprintf(o.Out, "API server %s\n", server)
	if w := v.Webhook; w != nil {
		switch {
		case w.Error != "":
			fmt.Fprintf(o.Out, "dc-webhook unknown (%s)\n", w.Error)
		default:
			fmt.Fprintf(o.Out, "dc-webhook %s (%d/%d ready, image %s)\n", cmdutil.Dash(w.Version), w.Ready, w.Replicas, w.Image)
		}
	}
	return nil
}

// ask fills in the API server's and the dc-webhook's versions; each failure
// is said in the report, never an error: version must work against a
// cluster that is down.
func (o *VersionOptions) ask(ctx context.Context, v *Versions) {
	c, err := cmdutil.NewFactory(o.config).Clients()
	if err != nil {
		v.ServerError = err.Error()
		return
	}
	sv, err := c.Kube.Discovery().ServerVersion()
	if err != nil {
		v.ServerError = err.Error()
		return
	}
	v.ServerVersion = sv.GitVersion
	w := &WebhookVersion{}
	v.Webhook = w
	d, err := c.Kube.AppsV1().Deployments(webhookNamespace).Get(ctx, webhookDeployment, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		w.Error = "no Deployment " + webhookNamespace + "/" + webhookDeployment + ": not installed, or run outside the cluster"
		return
	case err != nil:
		w.Error = err.Error()
		return
	}
	for _, ctr := range d.Spec.Template.Spec.Containers {
		if ctr.Name == webhookDeployment || len(d.Spec.Template.Spec.Containers) == 1 {
			w.Image = ctr.Image
		}
	}
	if i := strings.LastIndex(w.Image, ":"); i >= 0 && !strings.Contains(w.Image[i:], "/") {
		w.Version = w.Image[i+1:]
	}
	w.Ready, w.Replicas = d.Status.ReadyReplicas, ptr.Deref(d.Spec.Replicas, 1)
}
