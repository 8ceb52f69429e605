package cmdutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/clientcmd"
)

// ErrNoKubeconfig marks the error of Factory.ToRESTConfig when there is no
// kubeconfig at all.
var ErrNoKubeconfig = errors.New("no kubeconfig found: set KUBECONFIG or pass --kubeconfig (kubectl config view shows what kubectl uses)")

// KubeconfigFailure reports a Complete that could not build its clients:
// bad input (exit 2), but not a flag mistake, so without the usage text
// that would bury the one line that says what to do.
func KubeconfigFailure(cmd *cobra.Command, err error) error {
	cmd.SilenceUsage = true
	return UsageError(err)
}

// noKubeconfig reports whether there is no kubeconfig, no --server and no
// in-cluster service account to talk to.
func noKubeconfig(config *genericclioptions.ConfigFlags) bool {
	if config.APIServer != nil && *config.APIServer != "" {
		return false
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return false
	}
	raw, err := config.ToRawKubeConfigLoader().RawConfig()
	return err == nil && len(raw.Clusters) == 0
}

// explainConfigError turns kubeconfig errors into what to do.
func explainConfigError(config *genericclioptions.ConfigFlags, err error) error {
	if clientcmd.IsEmptyConfig(err) {
		return ErrNoKubeconfig
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kubeconfig not found: check --kubeconfig and KUBECONFIG (kubectl config view shows what kubectl uses): %w", err)
	}
	if config.Context != nil && *config.Context != "" {
		if raw, rerr := config.ToRawKubeConfigLoader().RawConfig(); rerr == nil {
			if _, ok := raw.Contexts[*config.Context]; !ok {
				names := make([]string, 0, len(raw.Contexts))
				for n := range raw.Contexts {
					names = append(names, n)
				}
				sort.Strings(names)
				if len(names) == 0 {
					return fmt.Errorf("context %q is not in the kubeconfig, which has no contexts: set KUBECONFIG or pass --kubeconfig", *config.Context)
				}
				return fmt.Errorf("context %q is not in the kubeconfig: use one of %s (kubectl config get-contexts)", *config.Context, strings.Join(names, ", "))
			}
		}
	}
	return fmt.Errorf("loading the kubeconfig: %w", err)
}
