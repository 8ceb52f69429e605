package plugin

import (
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmdVersion is a placeholder until the version verb lands.
func NewCmdVersion(_ genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{Use: "version", Hidden: true, RunE: func(*cobra.Command, []string) error {
		return errors.New("version is not implemented yet")
	}}
}
