package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
)

// APIVersion is the apiVersion of every report kubectl dc prints with -o
// json, yaml, jsonpath or go-template.
const APIVersion = "kubectl-dc.io/v1alpha1"

// structuredFormats are the -o values every verb accepts besides its
// tables, as kubectl's printers take them; the template ones carry their
// argument after "=".
var structuredFormats = []string{"json", "yaml", "jsonpath=...", "jsonpath-file=...", "go-template=...", "go-template-file=..."}

// AddPrintFlags binds -o/--output to *format, its default the first of
// tables (or json when a verb has none), and --no-headers to *noHeaders
// when the verb prints tables.
func AddPrintFlags(cmd *cobra.Command, format *string, noHeaders *bool, tables ...string) {
	allowed := append(append([]string{}, tables...), structuredFormats...)
	*format = allowed[0]
	cmd.Flags().StringVarP(format, "output", "o", *format, "Output format. One of: "+strings.Join(allowed, "|")+".")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		out := make([]string, len(allowed))
		for i, a := range allowed {
			out[i] = strings.TrimSuffix(a, "...")
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
	if noHeaders != nil && len(tables) > 0 {
		cmd.Flags().BoolVar(noHeaders, "no-headers", false, "When using the table output, don't print headers.")
	}
}

// ValidatePrintFormat returns an error naming the allowed formats when
// format is neither one of tables nor a structured format.
func ValidatePrintFormat(format string, tables ...string) error {
	if slices.Contains(tables, format) || IsStructured(format) {
		return nil
	}
	return fmt.Errorf("unknown output format %q for --output: use one of %s", format, strings.Join(append(append([]string{}, tables...), structuredFormats...), ", "))
}

// IsStructured reports whether format is one the printers of Print write.
func IsStructured(format string) bool {
	name, _, _ := strings.Cut(format, "=")
	switch name {
	case OutputJSON, OutputYAML:
		return !strings.Contains(format, "=")
	case "jsonpath", "jsonpath-file", "go-template", "go-template-file":
		return strings.Contains(format, "=")
	}
	return false
}

// Print writes the report v, of kind, with kubectl's printers: json, yaml,
// jsonpath=..., go-template=... (and the -file forms). The output carries
// apiVersion and kind, so that scripts can tell one report from another.
func Print(out io.Writer, format, kind string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{}
	if err := json.Unmarshal(data, &obj.Object); err != nil {
		return err
	}
	obj.SetAPIVersion(APIVersion)
	obj.SetKind(kind)
	p, err := printerFor(format)
	if err != nil {
		return err
	}
	return p.PrintObj(obj, out)
}

func printerFor(format string) (printers.ResourcePrinter, error) {
	name, arg, hasArg := strings.Cut(format, "=")
	if !hasArg {
		return genericclioptions.NewJSONYamlPrintFlags().ToPrinter(name)
	}
	t := genericclioptions.NewKubeTemplatePrintFlags()
	t.TemplateArgument = &arg
	p, err := t.ToPrinter(name)
	if err != nil {
		return nil, fmt.Errorf("-o %s: %w", name, err)
	}
	return p, nil
}
