package drain

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
)

// Target is what drain and uncordon act on: a datacenter, named by a node
// label, and the clients that reach it.
type Target struct {
	// Datacenter is the DATACENTER argument.
	Datacenter string
	// Label is --datacenter-label; policy.ResolveDatacenterLabel weighs it
	// against the live policies' label. After Run it is the label used.
	Label    string
	labelSet bool

	config *genericclioptions.ConfigFlags
	client kubernetes.Interface
	// watchClient has no request timeout, for the watch of evicted pods.
	watchClient kubernetes.Interface
	dynamic     dynamic.Interface
	podExec     cluster.PodExecFunc
	// server is the kubeconfig's API server, the endpoint of last resort.
	server string
}

// complete takes the datacenter from args and builds the clients, unless
// a test set them.
func (t *Target) complete(cmd *cobra.Command, args []string) error {
	t.Datacenter = args[0]
	t.labelSet = cmd.Flags().Changed("datacenter-label")
	if t.client != nil {
		return nil
	}
	c, err := cmdutil.NewFactory(t.config).Clients()
	if err != nil {
		return err
	}
	t.client, t.watchClient, t.dynamic, t.server = c.Kube, c.Watch, c.Dynamic, c.Server
	t.podExec = cluster.NewPodExec(c.Config, c.Kube)
	return nil
}

// watchFor returns the client for the watch of evicted pods: one without
// the request timeout, which would cut every watch short.
func (t *Target) watchFor() kubernetes.Interface {
	if t.watchClient != nil {
		return t.watchClient
	}
	return t.client
}
