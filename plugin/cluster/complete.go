package cluster

import (
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
)

// CompleteDatacenters completes a DATACENTER argument, or the last item of
// a comma-separated list of them, from the datacenters the cluster knows
// under the label that applies (the command's --datacenter-label, else
// the policies', else the default). A positional completion completes
// the first argument only.
func CompleteDatacenters(flags *genericclioptions.ConfigFlags, positional bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if positional && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := cmdutil.NewFactory(flags).Clients()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		label, _ := cmd.Flags().GetString("datacenter-label")
		snap, err := Read(cmdutil.Context(cmd), c.Kube, c.Dynamic, Options{LabelFlag: label, LabelFlagSet: cmd.Flags().Changed("datacenter-label")})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return CompleteList(snap.Datacenters(), toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}

// CompleteList completes the last item of a comma-separated list from
// candidates not listed yet.
func CompleteList(candidates []string, toComplete string) []string {
	done := ""
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		done = toComplete[:i+1]
	}
	already := map[string]bool{}
	for _, d := range strings.Split(done, ",") {
		already[d] = true
	}
	var out []string
	for _, c := range candidates {
		if !already[c] && strings.HasPrefix(done+c, toComplete) {
			out = append(out, done+c)
		}
	}
	return out
}
