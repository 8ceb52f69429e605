// Package plugin holds the cobra commands of `kubectl dc`, one Options
// struct per verb.
package plugin

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
)

// Client rate limits of every verb. client-go's defaults (5 QPS, burst 10)
// would throttle a drain's parallel evictions to a crawl; the API server's
// own priority and fairness protects it from a busy client.
const (
	clientQPS   = 100
	clientBurst = 200
)

// raiseClientLimits sets the client rate limits where the kubeconfig left
// them unset.
func raiseClientLimits(c *rest.Config) *rest.Config {
	if c.QPS == 0 {
		c.QPS, c.Burst = clientQPS, clientBurst
	}
	return c
}

// NewCmdDC returns the root command of `kubectl dc` with every verb.
func NewCmdDC(streams genericiooptions.IOStreams) *cobra.Command {
	config := genericclioptions.NewConfigFlags(true)
	config.WrapConfigFn = raiseClientLimits
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
