package drain

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// UncordonOptions holds the flags and argument of `kubectl dc uncordon`.
type UncordonOptions struct {
	// Target is the datacenter whose nodes are made schedulable again.
	Target
	// All uncordons every node of the datacenter, not only the ones
	// `kubectl dc drain` cordoned.
	All bool

	genericiooptions.IOStreams
}

// NewUncordonOptions returns UncordonOptions with the flag defaults.
func NewUncordonOptions(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *UncordonOptions {
	return &UncordonOptions{Target: Target{config: config}, IOStreams: streams}
}

// NewCmdUncordon returns `kubectl dc uncordon DC`.
func NewCmdUncordon(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdUncordon(NewUncordonOptions(config, streams))
}

// newCmdUncordon binds the command's flags to o; tests give o fake
// clients.
func newCmdUncordon(o *UncordonOptions) *cobra.Command {
	config := o.config
	cmd := &cobra.Command{
		Use:   "uncordon DATACENTER",
		Short: "Make the nodes that kubectl dc drain cordoned schedulable again",
		Long: `Revert the cordons of "kubectl dc drain": every node of the datacenter that
carries the drain.kubectl-dc.io/cordoned-by annotation is made schedulable
and loses the drain.kubectl-dc.io/cordoned-by and cordoned-at annotations.
Nodes cordoned by someone else stay cordoned unless --all is given.

Exit status: 0 done (the nodes left cordoned are listed), 1 an API call
failed, 2 usage: a bad flag, or a datacenter that matches no node.`,
		Example: `  # Undo what "kubectl dc drain pod-2" cordoned
  kubectl dc uncordon pod-2

  # Make every node of pod-2 schedulable, whoever cordoned it
  kubectl dc uncordon pod-2 --all`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cluster.CompleteDatacenters(config, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmdutil.WarnIgnoredNamespace(cmd, o.IOStreams)
			if err := o.Complete(cmd, args); err != nil {
				return cmdutil.KubeconfigFailure(cmd, err)
			}
			if err := o.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run(cmdutil.Context(cmd))
		},
	}
	cmd.Flags().StringVar(&o.Label, "datacenter-label", o.Label, "Node label whose value names a node's datacenter. Default: the live PlacementPolicy's spec.datacenterLabel, else topology.kubernetes.io/zone.")
	cmd.Flags().BoolVar(&o.All, "all", o.All, "Uncordon every node of the datacenter, also those kubectl dc drain did not cordon.")
	return cmd
}

// Complete takes the datacenter from args and builds the clients.
func (o *UncordonOptions) Complete(cmd *cobra.Command, args []string) error {
	return o.complete(cmd, args)
}

// Validate checks the argument.
func (o *UncordonOptions) Validate() error {
	if strings.TrimSpace(o.Datacenter) == "" {
		return field.ErrorList{field.Required(field.NewPath("DATACENTER"), "name the datacenter to uncordon, e.g. kubectl dc uncordon pod-1")}.ToAggregate()
	}
	return nil
}

// Run uncordons the nodes.
func (o *UncordonOptions) Run(ctx context.Context) error {
	snap, err := cluster.Read(ctx, o.client, o.dynamic, cluster.Options{LabelFlag: o.Label, LabelFlagSet: o.labelSet})
	if err != nil {
		return fmt.Errorf("reading the cluster: %w", err)
	}
	for _, w := range snap.Warnings() {
		fmt.Fprintf(o.ErrOut, "Warning: %s\n", w)
	}
	label := snap.Label.Label
	matched := 0
	var revert, others []string
	wasCordoned := map[string]bool{}
	for _, n := range snap.Nodes {
		if n.Labels[label] != o.Datacenter {
			continue
		}
		matched++
		_, ours := n.Annotations[AnnotationCordonedBy]
		// Ours to revert: cordoned by this tool, or by anyone with --all.
		if !ours && (!o.All || !n.Spec.Unschedulable) {
			if n.Spec.Unschedulable {
				others = append(others, n.Name)
			}
			continue
		}
		revert = append(revert, n.Name)
		wasCordoned[n.Name] = n.Spec.Unschedulable
	}
	// A merge patch with null removes the annotations; unschedulable
	// false is the API default and clears the cordon.
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null,%q:null}},"spec":{"unschedulable":false}}`, AnnotationCordonedBy, AnnotationCordonedAt)
	errs := patchNodes(ctx, o.client, revert, []byte(patch), "uncordon")
	var uncordoned []string
	for i, name := range revert {
		if errs[i] == nil && wasCordoned[name] {
			uncordoned = append(uncordoned, name)
		}
	}
	if matched == 0 {
		return cmdutil.UsageError(&UnknownDatacenterError{Datacenter: o.Datacenter, Label: label, Known: snap.Datacenters()})
	}
	for _, name := range uncordoned {
		fmt.Fprintf(o.Out, "node/%s uncordoned\n", name)
	}
	if len(uncordoned) == 0 {
		fmt.Fprintf(o.Out, "no node of %s was cordoned by kubectl dc drain\n", o.Datacenter)
	}
	if len(others) > 0 {
		fmt.Fprintf(o.ErrOut, "left cordoned (not cordoned by kubectl dc drain; use --all): %s\n", strings.Join(others, ", "))
	}
	return errors.Join(errs...)
}
