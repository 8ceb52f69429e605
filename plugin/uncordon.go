package plugin

import (
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmdUncordon is a placeholder until the uncordon verb lands.
func NewCmdUncordon(_ *genericclioptions.ConfigFlags, _ genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{Use: "uncordon", Hidden: true, RunE: func(*cobra.Command, []string) error {
		return errors.New("uncordon is not implemented yet")
	}}
}
