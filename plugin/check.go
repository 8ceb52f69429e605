package plugin

import (
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmdCheck is a placeholder until the check verb lands.
func NewCmdCheck(_ *genericclioptions.ConfigFlags, _ genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{Use: "check", Hidden: true, RunE: func(*cobra.Command, []string) error {
		return errors.New("check is not implemented yet")
	}}
}
