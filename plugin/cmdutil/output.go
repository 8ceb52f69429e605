package cmdutil

import (
	"context"
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
	OutputTable = "table"
	OutputWide  = "wide"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// AddOutputFlag binds -o/--output to *format with shell completion of the
// allowed values; the first one is the default.
func AddOutputFlag(cmd *cobra.Command, format *string, allowed ...string) {
	*format = allowed[0]
	cmd.Flags().StringVarP(format, "output", "o", *format, "Output format. One of: "+strings.Join(allowed, "|")+".")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return allowed, cobra.ShellCompDirectiveNoFileComp
	})
}

// ValidateOutput returns a usage error when format is not one of allowed.
func ValidateOutput(format string, allowed ...string) error {
	if slices.Contains(allowed, format) {
		return nil
	}
	return fmt.Errorf("unknown output format %q for --output: use one of %s", format, strings.Join(allowed, ", "))
}

// PrintStructured writes v as indented JSON or as YAML. v is a report type
// with json tags, not a Kubernetes object.
func PrintStructured(out io.Writer, format string, v any) error {
	switch format {
	case OutputJSON:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case OutputYAML:
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = out.Write(data)
		return err
	}
	return fmt.Errorf("format %q is not structured", format)
}

// NewTabWriter returns kubectl's table writer; callers must Flush it.
func NewTabWriter(out io.Writer) *tabwriter.Writer { return printers.GetNewTabWriter(out) }

// Dash stands in for an empty table cell.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Plural picks the word for n.
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Context returns the command's context, or Background when it was run
// without one.
func Context(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
