// Package plugin is the root of `kubectl dc`: the root command, version
// and completion. Each verb lives in its own package (status, check,
// drain), over one snapshot of the cluster (cluster) and the client
// factory, exit codes and printers every verb shares (cmdutil).
package plugin

import (
	goflag "flag"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"

	"github.com/kubectl-dc/kubectl-dc/plugin/check"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/plugin/drain"
	"github.com/kubectl-dc/kubectl-dc/plugin/status"
)

// NewCmdDC returns the root command of `kubectl dc` with every verb.
func NewCmdDC(streams genericiooptions.IOStreams) *cobra.Command {
	config := genericclioptions.NewConfigFlags(true)
	cmd := &cobra.Command{
		Use:   "kubectl-dc",
		Short: "See and keep a Kubernetes cluster that spans several datacenters",
		Long: `kubectl dc answers the questions of a cluster spread over several
datacenters: which datacenters exist, where the etcd voters and API servers
live, whether the cluster survives the loss of each datacenter right now, and
what draining one would do. It checks workloads against PlacementPolicies,
offline or live, with the same rules as the dc-webhook admission webhook.`,
		SilenceErrors: true,
		// Execute prints a usage error with one line pointing to --help.
		SilenceUsage: true,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl dc",
		},
	}
	config.AddFlags(cmd.PersistentFlags())
	addVerbosityFlag(cmd)
	cmdutil.RegisterGlobalCompletions(cmd, config)
	cmd.AddCommand(
		status.NewCmdStatus(config, streams),
		check.NewCmdCheck(config, streams),
		drain.NewCmdDrain(config, streams),
		drain.NewCmdUncordon(config, streams),
		NewCmdVersion(config, streams),
		NewCmdCompletion(streams),
	)
	return cmd
}

// addVerbosityFlag adds kubectl's -v/--v: at 6 and above client-go logs
// every request with its latency, at 8 the bodies, on stderr.
func addVerbosityFlag(cmd *cobra.Command) {
	var fs goflag.FlagSet
	klog.InitFlags(&fs)
	v := fs.Lookup("v")
	v.Usage = "Log level: 6 logs every API request with its latency, 8 their bodies (on stderr)."
	cmd.PersistentFlags().AddGoFlag(v)
}

// Execute runs cmd and returns the process exit code; see cmdutil.Execute.
func Execute(cmd *cobra.Command, streams genericiooptions.IOStreams) int {
	return cmdutil.Execute(cmd, streams)
}
