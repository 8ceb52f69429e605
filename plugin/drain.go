package plugin

import (
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmdDrain is a placeholder until the drain verb lands.
func NewCmdDrain(_ *genericclioptions.ConfigFlags, _ genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{Use: "drain", Hidden: true, RunE: func(*cobra.Command, []string) error {
		return errors.New("drain is not implemented yet")
	}}
}
