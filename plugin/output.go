package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/liggitt/tabwriter"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"
)

// Output formats the verbs accept with -o. Table is the human default.
const (
	outputTable = "table"
	outputWide  = "wide"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// addOutputFlag binds -o/--output to *format with shell completion of the
// allowed values; the first one is the default.
func addOutputFlag(cmd *cobra.Command, format *string, allowed ...string) {
	*format = allowed[0]
	cmd.Flags().StringVarP(format, "output", "o", *format, "Output format. One of: "+strings.Join(allowed, "|")+".")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return allowed, cobra.ShellCompDirectiveNoFileComp
	})
}

// validateOutput returns a usage error when format is not one of allowed.
func validateOutput(format string, allowed ...string) error {
	if slices.Contains(allowed, format) {
		return nil
	}
	return fmt.Errorf("unknown output format %q for --output: use one of %s", format, strings.Join(allowed, ", "))
}

// printStructured writes v as indented JSON or as YAML. v is a report type
// of this package with json tags, not a Kubernetes object.
func printStructured(out io.Writer, format string, v any) error {
	switch format {
	case outputJSON:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case outputYAML:
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = out.Write(data)
		return err
	}
	return fmt.Errorf("printStructured: format %q is not structured", format)
}

// newTabWriter returns kubectl's table writer; callers must Flush it.
func newTabWriter(out io.Writer) *tabwriter.Writer { return printers.GetNewTabWriter(out) }
