package cmdutil

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// RegisterGlobalCompletions completes kubectl's connection flags as
// kubectl does: --context, --cluster and --user from the kubeconfig, and
// --namespace from the cluster's namespaces.
func RegisterGlobalCompletions(cmd *cobra.Command, flags *genericclioptions.ConfigFlags) {
	fromKubeconfig := func(names func(raw kubeconfigNames) []string) cobra.CompletionFunc {
		return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			raw, err := flags.ToRawKubeConfigLoader().RawConfig()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var k kubeconfigNames
			for n := range raw.Contexts {
				k.contexts = append(k.contexts, n)
			}
			for n := range raw.Clusters {
				k.clusters = append(k.clusters, n)
			}
			for n := range raw.AuthInfos {
				k.users = append(k.users, n)
			}
			return withPrefix(names(k), toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = cmd.RegisterFlagCompletionFunc("context", fromKubeconfig(func(k kubeconfigNames) []string { return k.contexts }))
	_ = cmd.RegisterFlagCompletionFunc("cluster", fromKubeconfig(func(k kubeconfigNames) []string { return k.clusters }))
	_ = cmd.RegisterFlagCompletionFunc("user", fromKubeconfig(func(k kubeconfigNames) []string { return k.users }))
	_ = cmd.RegisterFlagCompletionFunc("namespace", func(c *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		clients, err := NewFactory(flags).Clients()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := clients.Kube.CoreV1().Namespaces().List(Context(c), metav1.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for i := range list.Items {
			names = append(names, list.Items[i].Name)
		}
		return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
	})
}

type kubeconfigNames struct{ contexts, clusters, users []string }

func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// WarnIgnoredNamespace says so when -n was given to a verb that works on
// every namespace (a datacenter spans namespaces), instead of ignoring it
// silently; a verb with --pod-selector is told how to narrow its pods.
func WarnIgnoredNamespace(cmd *cobra.Command, streams genericiooptions.IOStreams) {
	f := cmd.Flags().Lookup("namespace")
	if f == nil || !f.Changed {
		return
	}
	msg := "Warning: -n/--namespace is ignored: " + cmd.CommandPath() + " works on every namespace (a datacenter spans namespaces)"
	if cmd.Flags().Lookup("pod-selector") != nil {
		msg += "; --pod-selector limits the pods"
	}
	_, _ = streams.ErrOut.Write([]byte(msg + "\n"))
}
