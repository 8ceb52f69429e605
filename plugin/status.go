package plugin

import (
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmdStatus is a placeholder until the status verb lands.
func NewCmdStatus(_ *genericclioptions.ConfigFlags, _ genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{Use: "status", Hidden: true, RunE: func(*cobra.Command, []string) error {
		return errors.New("status is not implemented yet")
	}}
}
