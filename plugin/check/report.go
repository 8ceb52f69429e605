package check

import (
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// checkReport is the -o json|yaml document.
type checkReport struct {
	Results []checkResult `json:"results"`
	// Mutations are what dc-webhook's mutation injected before the
	// objects were judged, offline.
	Mutations []mutation   `json:"mutations,omitempty"`
	Summary   checkSummary `json:"summary"`
}

// checkResult is one violation.
type checkResult struct {
	Object policy.ObjectRef `json:"object"`
	// Source is the document the object comes from; its file is "-" for
	// a live object.
	Source  source          `json:"source"`
	Rule    string          `json:"rule"`
	Action  v1alpha1.Action `json:"action"`
	Field   string          `json:"field"`
	Message string          `json:"message"`

	// short is the field under the pod spec, for the table.
	short string
}

// checkSummary counts the objects checked and the violations per action.
type checkSummary struct {
	Objects  int `json:"objects"`
	Denied   int `json:"denied"`
	Warnings int `json:"warnings"`
	Audit    int `json:"audit"`
	// Namespace is the namespace objects without one were judged in, and
	// where it came from; nil when every object named its own.
	Namespace *defaultNamespace `json:"defaultNamespace,omitempty"`
	// BadInputs counts the files and documents that could not be judged.
	BadInputs int `json:"badInputs,omitempty"`
}

// defaultNamespace is the namespace objects that name none are judged in.
type defaultNamespace struct {
	Name string `json:"name"`
	// From is "-n", "the kubeconfig context" or "default".
	From    string `json:"from"`
	Objects int    `json:"objects"`
}

func (o *Options) newCheckReport(out *outcome) checkReport {
	rep := checkReport{Results: make([]checkResult, 0, len(out.results)), Mutations: out.mutations,
		Summary: checkSummary{Objects: out.checked, BadInputs: len(out.bad)}}
	if out.defaulted > 0 {
		rep.Summary.Namespace = &defaultNamespace{Name: o.namespace, From: o.nsFrom, Objects: out.defaulted}
	}
	for _, r := range out.results {
		src := r.src
		if src.File == "" {
			src.File = "-"
		}
		rep.Results = append(rep.Results, checkResult{Object: r.Object, Source: src, Rule: r.Rule, Action: r.Action, Field: r.Field(), Message: resultMessage(r.Result), short: r.short})
		switch r.Action {
		case v1alpha1.ActionDeny:
			rep.Summary.Denied++
		case v1alpha1.ActionWarn:
			rep.Summary.Warnings++
		case v1alpha1.ActionAudit:
			rep.Summary.Audit++
		}
	}
	return rep
}

// resultMessage is the field error without its field path: the kind of
// error, the offending value and how to fix it.
func resultMessage(r policy.Result) string {
	if r.Error == nil {
		return ""
	}
	return r.Error.ErrorBody()
}

func (o *Options) print(rep checkReport) error {
	switch o.Output {
	case cmdutil.OutputTable, cmdutil.OutputWide:
		return printCheckTable(o.Out, rep, o.Output == cmdutil.OutputWide)
	}
	return cmdutil.PrintStructured(o.Out, o.Output, rep)
}

// printCheckTable writes the results as a table and the summary line. The
// FIELD column is the part under the pod spec, the whole path when wide.
func printCheckTable(out io.Writer, rep checkReport, wide bool) error {
	if len(rep.Results) > 0 {
		w := cmdutil.NewTabWriter(out)
		// The tab writer keeps the first write error and Flush returns it.
		_, _ = fmt.Fprintln(w, "OBJECT\tSOURCE\tRULE\tACTION\tFIELD\tMESSAGE")
		for _, r := range rep.Results {
			f := r.short
			if wide || f == "" {
				f = r.Field
			}
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", refString(r.Object), r.Source.String(), r.Rule, r.Action, cmdutil.Dash(f), oneLine(r.Message))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	s := rep.Summary
	line := fmt.Sprintf("%s checked, %d denied, %s, %d audit",
		plural(s.Objects, "object", "objects"), s.Denied, plural(s.Warnings, "warning", "warnings"), s.Audit)
	if ns := s.Namespace; ns != nil {
		from := "from " + ns.From
		if ns.From == "default" {
			from = "the default"
		}
		line += fmt.Sprintf("; %s without a namespace judged in %s (%s)", plural(ns.Objects, "object", "objects"), ns.Name, from)
	}
	if s.BadInputs > 0 {
		line += fmt.Sprintf("; %s not judged (bad input)", plural(s.BadInputs, "file or document", "files or documents"))
	}
	_, err := fmt.Fprintln(out, line)
	return err
}

// refString is "Kind/namespace/name", or "Kind/name" when cluster-scoped.
func refString(r policy.ObjectRef) string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// oneLine keeps a table row on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// plural is n and the word for n.
func plural(n int, one, many string) string {
	return fmt.Sprintf("%d %s", n, cmdutil.Plural(n, one, many))
}

// judged reports whether obj is one of the built-in kinds check judges.
func judged(obj runtime.Object) bool {
	_, ok := policy.JudgedKindOf(obj)
	return ok
}

// kindName returns "apiVersion Kind" of a decoded object.
func kindName(obj runtime.Object) string {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" {
		if gvks, _, err := policy.Scheme.ObjectKinds(obj); err == nil && len(gvks) > 0 {
			gvk = gvks[0]
		}
	}
	return gvk.GroupVersion().String() + " " + gvk.Kind
}

// objectName returns " <namespace>/<name>" or " <name>" of obj.
func objectName(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetName() == "" {
		return ""
	}
	if m.GetNamespace() != "" {
		return " " + m.GetNamespace() + "/" + m.GetName()
	}
	return " " + m.GetName()
}
