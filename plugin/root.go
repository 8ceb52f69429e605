// Package plugin holds the cobra commands of `kubectl dc`, one Options
// struct per verb.
package plugin

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
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
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl dc",
		},
	}
	config.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(
		NewCmdStatus(config, streams),
		NewCmdCheck(config, streams),
		NewCmdDrain(config, streams),
		NewCmdUncordon(config, streams),
		NewCmdVersion(streams),
		NewCmdCompletion(streams),
	)
	return cmd
}
