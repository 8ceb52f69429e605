// Package drain is `kubectl dc drain` and `kubectl dc uncordon`: the plan
// (ComputePlan), the cordon, the parallel evictions and the wait for the
// evicted pods, for a whole datacenter.
package drain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// Exit codes of `kubectl dc drain` above the shared ones.
const (
	// ExitDrainRefused means the drain refused before touching anything: it
	// would lose quorum (without --allow-quorum-loss), or a blocker needs
	// --force or --delete-emptydir-data. With --dry-run it means the drain
	// would refuse.
	ExitDrainRefused = 3
)

var drainOutputs = []string{cmdutil.OutputTable, cmdutil.OutputJSON, cmdutil.OutputYAML}

// Options holds the flags and argument of `kubectl dc drain`.
type Options struct {
	// Target is the datacenter to drain and the clients.
	Target
	// EtcdFlags say how to read etcd and where its members run, as status
	// reads them.
	cluster.EtcdFlags
	// DryRun is --dry-run: none, client (plan only) or server (plan, then
	// the cordons and evictions sent as server-side dry runs).
	DryRun             string
	Force              bool
	DeleteEmptyDirData bool
	AllowQuorumLoss    bool
	// Concurrency bounds eviction calls in flight across all nodes.
	Concurrency int
	// Timeout bounds the evictions and the wait for pods to go; 0 means no
	// limit.
	Timeout time.Duration
	Output  string
	// GracePeriod overrides the pods' termination grace period; negative
	// means each pod's own.
	GracePeriod int
	// PodSelector limits the pods to evict, as kubectl drain's.
	PodSelector string
	// DisableEviction deletes pods instead of evicting them: PDBs are not
	// honoured.
	DisableEviction bool
	// SkipWaitForDeleteTimeout: pods whose deletionTimestamp is older than
	// this many seconds are not waited for. Unset, pods of NotReady nodes
	// are not waited for NotReadyWait after their deletion was requested,
	// and others are waited for; set, it applies to every pod (0: wait).
	SkipWaitForDeleteTimeout int
	skipWaitSet              bool
	// watchPDBs is whether the preflight found the caller may watch
	// PodDisruptionBudgets.
	watchPDBs bool
	// ForceDeleteUnreachable deletes the pods of NotReady nodes with grace
	// period 0 instead of evicting them.
	ForceDeleteUnreachable bool
	// ChunkSize is the page size of every LIST the drain makes (the
	// snapshot's and the relists of the wait); 0 means no paging.
	ChunkSize int64
	// IgnoreDaemonSets is accepted for kubectl drain scripts: DaemonSet
	// pods are always skipped.
	IgnoreDaemonSets bool

	// who is written into the cordoned-by annotation: user@host.
	who string
	// now is the clock of the cordoned-at annotation and elapsed time.
	now func() time.Time
	// notReadyWait is NotReadyWait, and stallEvery how often stalled pods
	// are reported; tests shorten them.
	notReadyWait, stallEvery time.Duration

	genericiooptions.IOStreams
}

// defaultConcurrency is --concurrency's default. On the 500-pod bench
// (test/bench/drain, 10 nodes, no PDB) the API server paces the
// evictions, faster the more are in flight: this drain took 10.5-13 s with
// 20, 6.4-10.4 s with 100; the bench's reference evictor 11-15 s with 20
// workers, 5-8 s with 100. kubectl drain evicts every pod of a node at
// once.
const defaultConcurrency = 100

// callTimeout bounds each eviction call: the user's --request-timeout when
// given, else evictCallTimeout (above the server's own conflict retries).
func (o *Options) callTimeout() time.Duration {
	if f := o.config; f != nil && f.Timeout != nil {
		// clientcmd reads the flag as kubectl does: bare seconds or a
		// duration; "0" means none.
		if d, err := clientcmd.ParseTimeout(*f.Timeout); err == nil && d > 0 {
			return d
		}
	}
	return evictCallTimeout
}

// NewOptions returns Options with the flag defaults.
func NewOptions(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *Options {
	return &Options{
		Concurrency: defaultConcurrency, Timeout: 5 * time.Minute, Output: cmdutil.OutputTable, DryRun: dryRunNone, GracePeriod: -1, ChunkSize: 500,
		Target: Target{config: config}, EtcdFlags: cluster.NewEtcdFlags(), IOStreams: streams, now: time.Now,
		notReadyWait: NotReadyWait, stallEvery: 5 * time.Second,
	}
}

// NewCmdDrain returns `kubectl dc drain DC`.
func NewCmdDrain(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdDrain(NewOptions(config, streams))
}

// newCmdDrain binds the command's flags to o; tests give o fake clients.
func newCmdDrain(o *Options) *cobra.Command {
	config := o.config
	cmd := &cobra.Command{
		Use:   "drain DATACENTER",
		Short: "Plan, then cordon and evict a whole datacenter in parallel",
		Long: `Drain a datacenter for maintenance: plan first, then cordon every node and
evict every evictable pod of the datacenter in parallel.

The plan is always printed first. It lists the datacenter's nodes, the pods to
evict, what is skipped (DaemonSet pods and mirror pods such as etcd keep
running until the machines go down), blockers with their remedies (pods no
controller recreates need --force, emptyDir data needs
--delete-emptydir-data, a PodDisruptionBudget that can never be satisfied),
workloads pinned to the datacenter (their pods go Pending; with a PDB they
block), whether the other datacenters have the CPU, memory and pod slots for
the evicted pods, and the quorum effect of powering the datacenter off: the
etcd voters and API servers that go with it.

If powering the datacenter off would lose etcd quorum, leave no API server,
take the only control-plane endpoint, or (kine over PostgreSQL, read with
--datastore-dsn) take the database's primary, the drain refuses with the
arithmetic unless --allow-quorum-loss is given.

Then every node is cordoned (annotated drain.kubectl-dc.io/cordoned-by and
drain.kubectl-dc.io/cordoned-at; nodes already cordoned are left as they
are), and pods are evicted through the Eviction API with at most
--concurrency calls in flight across all nodes. A refusal by a
PodDisruptionBudget (429) is retried with backoff and reported per PDB on
stderr; the drain waits for evicted pods to be gone by watching them, and
stops at --timeout. Progress per node goes to stderr, a summary to stdout.
Interrupting (Ctrl-C) is safe: running the same command again keeps the
cordons and carries on with the pods that are left.

With -o json or -o yaml, --dry-run prints the plan; a drain prints one
document {"plan": ..., "summary": ...} at the end.

Exit status:
  0  the plan is acceptable (--dry-run), or every evictable pod is gone
  1  the drain timed out or was interrupted with pods left (the summary says
     which and why), or an API call failed
  2  usage: a bad flag, or a datacenter that matches no node
  3  refused before touching anything: quorum loss without
     --allow-quorum-loss, or a blocker that needs --force or
     --delete-emptydir-data (with --dry-run: the drain would refuse)`,
		Example: `  # See what draining pod-1 would do, change nothing
  kubectl dc drain pod-1 --dry-run

  # The plan as JSON, for scripts
  kubectl dc drain pod-1 --dry-run -o json

  # Drain pod-2, evicting unmanaged pods and emptyDir data too, 10 minutes at most
  kubectl dc drain pod-2 --force --delete-emptydir-data --timeout 10m

  # Datacenters named by another node label
  kubectl dc drain dc-east --datacenter-label example.com/datacenter

  # Make pod-2's nodes schedulable again
  kubectl dc uncordon pod-2`,
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
			ctx, stop := signal.NotifyContext(cmdutil.Context(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Label, "datacenter-label", o.Label, "Node label whose value names a node's datacenter. Default: the live PlacementPolicy's spec.datacenterLabel, else "+v1alpha1.DefaultDatacenterLabel+".")
	f.Var(&dryRunValue{&o.DryRun}, "dry-run", `"none", "client" or "server". client (or the bare --dry-run): print the plan and stop; server: also check the RBAC of every call and send the cordons and evictions as server-side dry runs. Nothing changes.`)
	f.Lookup("dry-run").NoOptDefVal = dryRunClient
	f.IntVar(&o.GracePeriod, "grace-period", o.GracePeriod, "Seconds each pod is given to terminate; negative means the pod's own terminationGracePeriodSeconds.")
	f.StringVar(&o.PodSelector, "pod-selector", o.PodSelector, "Label selector: evict only the datacenter's pods it matches.")
	f.BoolVar(&o.DisableEviction, "disable-eviction", o.DisableEviction, "Delete pods instead of evicting them: PodDisruptionBudgets are NOT honoured.")
	f.IntVar(&o.SkipWaitForDeleteTimeout, "skip-wait-for-delete-timeout", o.SkipWaitForDeleteTimeout, fmt.Sprintf("Do not wait for pods whose deletionTimestamp is older than this many seconds (0: wait). Unset: pods of NotReady nodes are not waited for %s after their deletion, others are.", NotReadyWait))
	f.BoolVar(&o.ForceDeleteUnreachable, "force-delete-unreachable", o.ForceDeleteUnreachable, "Delete the pods of NotReady nodes at once (grace period 0) instead of evicting them; their containers may still run if a node is only cut off.")
	f.Int64Var(&o.ChunkSize, "chunk-size", o.ChunkSize, "Return large lists in chunks of this many items: the page size of every LIST the drain makes; 0 means no paging.")
	f.BoolVar(&o.IgnoreDaemonSets, "ignore-daemonsets", o.IgnoreDaemonSets, "Accepted for kubectl drain scripts; DaemonSet pods are always skipped.")
	f.BoolVar(&o.Force, "force", o.Force, "Evict pods that no controller recreates; they are gone for good.")
	f.BoolVar(&o.DeleteEmptyDirData, "delete-emptydir-data", o.DeleteEmptyDirData, "Evict pods with emptyDir volumes; their data is deleted.")
	f.BoolVar(&o.AllowQuorumLoss, "allow-quorum-loss", o.AllowQuorumLoss, "Drain even if powering the datacenter off would lose etcd quorum, every API server, the control-plane endpoint every kubelet dials, or kine's database primary.")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "Most eviction calls in flight at once, across all nodes of the datacenter.")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "Give up after this long with the pods that are left (exit 1); 0 means no limit.")
	o.AddFlags(f)
	cmdutil.AddOutputFlag(cmd, &o.Output, drainOutputs...)
	return cmd
}

// Complete takes the datacenter from args and builds the clients.
func (o *Options) Complete(cmd *cobra.Command, args []string) error {
	o.skipWaitSet = cmd.Flags().Changed("skip-wait-for-delete-timeout")
	if cmd.Flags().Changed("ignore-daemonsets") {
		fmt.Fprintln(o.ErrOut, "note: --ignore-daemonsets changes nothing: kubectl dc drain always leaves DaemonSet pods running")
	}
	return o.complete(cmd, args)
}

// Validate checks the flags.
func (o *Options) Validate() error {
	var errs field.ErrorList
	if strings.TrimSpace(o.Datacenter) == "" {
		errs = append(errs, field.Required(field.NewPath("DATACENTER"), "name the datacenter to drain, e.g. kubectl dc drain pod-1"))
	}
	if o.Concurrency < 1 {
		errs = append(errs, field.Invalid(field.NewPath("--concurrency"), o.Concurrency, "must be at least 1"))
	}
	if o.Timeout < 0 {
		errs = append(errs, field.Invalid(field.NewPath("--timeout"), o.Timeout.String(), "must be 0 (no limit) or positive, e.g. 5m"))
	}
	if err := cmdutil.ValidateOutput(o.Output, drainOutputs...); err != nil {
		errs = append(errs, field.NotSupported(field.NewPath("--output"), o.Output, drainOutputs))
	}
	if o.SkipWaitForDeleteTimeout < 0 {
		errs = append(errs, field.Invalid(field.NewPath("--skip-wait-for-delete-timeout"), o.SkipWaitForDeleteTimeout, "must be 0 (wait) or a number of seconds"))
	}
	if o.ChunkSize < 0 {
		errs = append(errs, field.Invalid(field.NewPath("--chunk-size"), o.ChunkSize, "must be 0 (no paging) or positive"))
	}
	if _, err := labels.Parse(o.PodSelector); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("--pod-selector"), o.PodSelector, err.Error()))
	}
	return errors.Join(errs.ToAggregate(), o.EtcdFlags.Validate())
}

// NotReadyWait is how long, unless --skip-wait-for-delete-timeout is
// given, the drain waits for a pod of a NotReady node after its deletion:
// no kubelet will confirm it, so waiting longer cannot help.
const NotReadyWait = 10 * time.Second

// --dry-run values.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
)

// dryRunValue is --dry-run: none, client or server, and the bool form
// (--dry-run, --dry-run=true, --dry-run=false) kept.
type dryRunValue struct{ v *string }

func (d *dryRunValue) String() string { return *d.v }
func (d *dryRunValue) Type() string   { return "string" }
func (d *dryRunValue) Set(s string) error {
	switch s {
	case dryRunNone, dryRunClient, dryRunServer:
		*d.v = s
	case "true", "":
		*d.v = dryRunClient
	case "false":
		*d.v = dryRunNone
	default:
		return fmt.Errorf(`must be "none", "client", or "server", not %q`, s)
	}
	return nil
}

// readInput reads the snapshot every verb reads, with the pods, PDBs and
// workloads, and etcd through the same source chain as kubectl dc status,
// and returns the plan's input and the pods' resourceVersion for the
// watch.
func (o *Options) readInput(ctx context.Context) (PlanInput, string, error) {
	snap, err := o.lister().Read(ctx, o.dynamic, cluster.Options{
		ControlPlane: true, Pods: true, PDBs: true, ReplicaSets: true, LabelFlag: o.Label, LabelFlagSet: o.labelSet,
		Endpoint: true, KubeconfigServer: o.server,
	})
	if err != nil {
		return PlanInput{}, "", fmt.Errorf("reading the cluster: %w", err)
	}
	for _, w := range snap.Warnings() {
		fmt.Fprintf(o.ErrOut, "Warning: %s\n", w)
	}
	for _, f := range []string{"pods", "poddisruptionbudgets"} {
		if slices.Contains(snap.Forbidden, f) {
			return PlanInput{}, "", fmt.Errorf("listing %s is forbidden: kubectl dc drain needs the permissions of manifests/rbac/drain.yaml (docs/rbac.md)", f)
		}
	}
	o.Label = snap.Label.Label
	in := planInputFrom(snap, o.Datacenter)
	in.Etcd = cluster.ReadEtcd(ctx, snap.EtcdPods, o.Options(o.podExec, snap.APIServerPods))
	in.MemberDatacenters, in.MemberSources = snap.EtcdMemberDatacenters(o.MemberDCs)
	if in.Kine = cluster.DetectKine(in.Etcd, cluster.KinePods(snap.Pods), snap.EtcdPods); len(in.Kine) > 0 {
		var notes []string
		in.Database, notes = o.ReadDatastore(ctx)
		in.DatabaseDatacenters = o.DatabaseDCs
		for _, n := range notes {
			fmt.Fprintf(o.ErrOut, "Warning: %s\n", n)
		}
	}
	in.Endpoint = snap.Endpoint
	return in, snap.PodsResourceVersion, nil
}

// lister is the one Lister of every LIST the drain makes: --chunk-size is
// its page size.
func (o *Options) lister() cluster.Lister {
	return cluster.Lister{Client: o.client, PageSize: cluster.PageSizeFromChunkSize(o.ChunkSize)}
}

// planInputFrom takes the plan's input from a snapshot.
func planInputFrom(snap *cluster.Snapshot, dc string) PlanInput {
	in := PlanInput{Datacenter: dc, Label: snap.Label.Label, EtcdPods: snap.EtcdPods, APIServerPods: snap.APIServerPods, APIAddresses: snap.APIAddresses}
	for _, n := range snap.Nodes {
		in.Nodes = append(in.Nodes, *n)
	}
	for _, p := range snap.Pods {
		in.Pods = append(in.Pods, *p)
	}
	for _, p := range snap.PDBs {
		in.PDBs = append(in.PDBs, *p)
	}
	for _, w := range snap.Workloads {
		if rs, ok := w.(*appsv1.ReplicaSet); ok {
			in.ReplicaSets = append(in.ReplicaSets, *rs)
		}
	}
	return in
}

// Summary is the outcome of a drain.
type Summary struct {
	Datacenter string `json:"datacenter"`
	// Result is Done, TimedOut, Interrupted, Blocked (every pod left was
	// refused for good) or Failed (the pods could not be followed).
	Result string `json:"result"`
	// Cordoned are the nodes this run cordoned; AlreadyCordoned were
	// unschedulable before it and were left alone.
	Cordoned        []string `json:"cordoned"`
	AlreadyCordoned []string `json:"alreadyCordoned"`
	// LeftCordoned are the datacenter's nodes the drain leaves
	// unschedulable, whatever stopped it; Undo is the command that
	// reverts the cordons.
	LeftCordoned []string `json:"leftCordoned"`
	Undo         string   `json:"undo,omitempty"`
	// ToEvict is how many pods the drain set out to evict.
	ToEvict int `json:"toEvict"`
	// Evicted is how many evictions (or deletions) the API server
	// accepted; a 409 or a 429 is not one.
	Evicted int `json:"evicted"`
	// Gone is how many of them are confirmed gone.
	Gone int `json:"gone"`
	// NotWaited are the pods evicted but not waited for: their node is
	// not Ready, or their deletion is older than
	// --skip-wait-for-delete-timeout.
	NotWaited []BlockedPod `json:"notWaited"`
	// Skipped is how many pods stay (DaemonSet, mirror, finished).
	Skipped int `json:"skipped"`
	// Blocked are the pods still in the datacenter and waited for, with
	// why.
	Blocked        []BlockedPod `json:"blocked"`
	ElapsedSeconds float64      `json:"elapsedSeconds"`
}

// BlockedPod is a pod the drain could not get rid of.
type BlockedPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Node      string `json:"node"`
	Reason    string `json:"reason"`
}

// Drain results.
const (
	resultDone        = "Done"
	resultTimedOut    = "TimedOut"
	resultInterrupted = "Interrupted"
	// resultBlocked: every pod left was refused for good (RBAC, an API
	// server without evictions); waiting longer could not help.
	resultBlocked = "Blocked"
	// resultFailed: the drain could not follow the pods (watching them is
	// forbidden, say).
	resultFailed = "Failed"
)

// Run plans and, unless --dry-run or refused, drains.
func (o *Options) Run(ctx context.Context) error {
	start := o.now()
	in, rv, err := o.readInput(ctx)
	if err != nil {
		return err
	}
	in.Force, in.DeleteEmptyDirData, in.AllowQuorumLoss = o.Force, o.DeleteEmptyDirData, o.AllowQuorumLoss
	in.DisableEviction, in.ForceDeleteUnreachable = o.DisableEviction, o.ForceDeleteUnreachable
	if o.PodSelector != "" {
		if in.PodSelector, err = labels.Parse(o.PodSelector); err != nil {
			return cmdutil.UsageError(fmt.Errorf("--pod-selector: %w", err))
		}
	}
	plan, err := ComputePlan(in)
	if err != nil {
		var unknown *UnknownDatacenterError
		if errors.As(err, &unknown) {
			return cmdutil.UsageError(err)
		}
		return err
	}
	if o.DisableEviction {
		fmt.Fprintln(o.ErrOut, "Warning: --disable-eviction deletes pods instead of evicting them: PodDisruptionBudgets are not honoured")
	}
	for _, w := range o.preflight(ctx, plan) {
		fmt.Fprintf(o.ErrOut, "Warning: %s\n", w)
	}
	structured := o.Output != cmdutil.OutputTable
	if !structured {
		printPlan(o.Out, plan)
	}
	if o.DryRun != dryRunNone {
		if structured {
			if err := cmdutil.PrintStructured(o.Out, o.Output, plan); err != nil {
				return err
			}
		}
		if plan.Refused {
			return &cmdutil.ExitError{Code: ExitDrainRefused}
		}
		return nil
	}
	if plan.Refused {
		if structured {
			if err := cmdutil.PrintStructured(o.Out, o.Output, plan); err != nil {
				return err
			}
		}
		return &cmdutil.ExitError{Code: ExitDrainRefused, Err: fmt.Errorf("refusing to drain %s: %s", o.Datacenter, strings.Join(plan.Reasons, "; "))}
	}

	summary, err := o.execute(ctx, plan, rv)
	if summary != nil {
		summary.LeftCordoned = append(append([]string{}, summary.Cordoned...), summary.AlreadyCordoned...)
		sort.Strings(summary.LeftCordoned)
		if len(summary.LeftCordoned) > 0 {
			summary.Undo = "kubectl dc uncordon " + o.Datacenter
		}
		summary.ElapsedSeconds = o.now().Sub(start).Seconds()
		if structured {
			if perr := cmdutil.PrintStructured(o.Out, o.Output, struct {
				Plan    *Plan    `json:"plan"`
				Summary *Summary `json:"summary"`
			}{plan, summary}); perr != nil {
				return perr
			}
		} else {
			printSummary(o.Out, summary)
		}
	}
	if err != nil {
		return err
	}
	if summary.Result != resultDone {
		return &cmdutil.ExitError{Code: cmdutil.ExitFindings}
	}
	return nil
}

// whoAmI names the user for the cordoned-by annotation: the API server's
// view of the user (SelfSubjectReview), else the kubeconfig user, and the
// local host name.
func (o *Options) whoAmI(ctx context.Context) string {
	if o.who != "" {
		return o.who
	}
	user := ""
	if r, err := o.client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err == nil {
		user = r.Status.UserInfo.Username
	}
	if user == "" && o.config != nil {
		if raw, err := o.config.ToRawKubeConfigLoader().RawConfig(); err == nil {
			if c, ok := raw.Contexts[raw.CurrentContext]; ok {
				user = c.AuthInfo
			}
		}
	}
	if user == "" {
		user = "unknown"
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	o.who = user + "@" + host
	return o.who
}

// cordon makes every node of the plan unschedulable, annotating the ones it
// changes. Nodes already unschedulable keep their state and annotations.
func cordon(ctx context.Context, c kubernetes.Interface, plan *Plan, who string, at time.Time) (cordoned, already []string, err error) {
	cordoned, already = []string{}, []string{}
	var names []string
	for _, n := range plan.Nodes {
		if n.Unschedulable {
			already = append(already, n.Name)
		} else {
			names = append(names, n.Name)
		}
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:%q}},"spec":{"unschedulable":true}}`,
		AnnotationCordonedBy, who, AnnotationCordonedAt, at.UTC().Format(time.RFC3339))
	errs := patchNodes(ctx, c, names, []byte(patch), "cordon")
	for i, name := range names {
		if errs[i] == nil {
			cordoned = append(cordoned, name)
		}
	}
	return cordoned, already, errors.Join(errs...)
}

func (o *Options) execute(ctx context.Context, plan *Plan, rv string) (*Summary, error) {
	s := &Summary{Datacenter: plan.Datacenter, Skipped: len(plan.Skipped), Blocked: []BlockedPod{}, NotWaited: []BlockedPod{}, ToEvict: len(plan.Evict)}
	var err error
	s.Cordoned, s.AlreadyCordoned, err = cordon(ctx, o.client, plan, o.whoAmI(ctx), o.now())
	if len(s.Cordoned) > 0 {
		fmt.Fprintf(o.ErrOut, "cordoned %d node(s): %s\n", len(s.Cordoned), strings.Join(s.Cordoned, ", "))
	}
	if len(s.AlreadyCordoned) > 0 {
		fmt.Fprintf(o.ErrOut, "already cordoned, left as they are: %s\n", strings.Join(s.AlreadyCordoned, ", "))
	}
	if err != nil {
		s.Result = resultFailed
		fmt.Fprintf(o.ErrOut, "error: %v\n", err)
		return s, nil
	}

	runCtx := ctx
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	runCtx, cancel := context.WithCancel(runCtx)
	defer cancel()

	targets := o.targets(plan)
	prog := newProgress(o.ErrOut, plan, targets)
	prog.concurrency, prog.stallEvery = o.Concurrency, o.stallEvery
	prog.start(runCtx)
	defer prog.stop()

	// Pods whose eviction is refused for good are not waited for.
	abandoned := make(chan string, len(targets))
	// Evictions go through the client without the request timeout, bounded
	// by evictCallTimeout instead (the server's own conflict retries).
	ev := &evictor{
		Client: o.watchFor(), CallTimeout: o.callTimeout(), Concurrency: o.Concurrency,
		InitialBackoff: 500 * time.Millisecond, MaxBackoff: 10 * time.Second,
		OnWait:    prog.pdbWait,
		OnEvicted: prog.evicted,
		OnForced:  prog.forced, OnAlreadyGone: prog.alreadyGone,
		OnGiveUp: func(t evictTarget, why string) {
			prog.gaveUp(t, why)
			abandoned <- t.key()
		},
	}
	if o.GracePeriod >= 0 {
		g := int64(o.GracePeriod)
		ev.GracePeriod = &g
	}
	if !o.DisableEviction && o.watchPDBs && hasPDBs(targets) {
		var stopWatch context.CancelFunc
		ev.Budgets, stopWatch = watchBudgets(runCtx, o.watchFor())
		defer stopWatch()
	}
	waiter := &goneWaiter{Client: o.watchFor(), Lister: o.lister(), Abandoned: abandoned, OnGone: prog.gone, OnNotWaited: prog.notWaited}
	if o.skipWaitSet {
		waiter.SkipAfter = time.Duration(o.SkipWaitForDeleteTimeout) * time.Second
		waiter.NotReadyAfter = waiter.SkipAfter
	} else {
		waiter.NotReadyAfter = o.notReadyWait
	}
	evictDone := make(chan map[string]string, 1)
	stopEvicting := make(chan struct{})
	ev.Stop = stopEvicting
	go func() { evictDone <- ev.Run(runCtx, targets) }()
	waitErr := waiter.Wait(runCtx, rv, targets)
	// Every pod is gone or not waited for: the watch often sees a pod go
	// before its deletion's answer arrives. Let the evictor have its
	// answers, so that each pod's fate is said, then stop.
	close(stopEvicting)
	if waitErr != nil {
		cancel()
	}
	lastErr := <-evictDone
	cancel()
	prog.stop()

	states := prog.states()
	s.Evicted, s.Gone, _ = prog.counts()
	left := 0
	for _, t := range targets {
		st := states[t.key()]
		switch st.state {
		case stateGone:
			continue
		case stateNotWaited:
			s.NotWaited = append(s.NotWaited, BlockedPod{Namespace: t.Namespace, Name: t.Name, Node: t.Node, Reason: st.why})
			continue
		}
		left++
		reason := lastErr[t.key()]
		switch {
		case st.state == stateEvicted && t.NotReady:
			reason = "evicted; node " + t.Node + " is not Ready, no kubelet confirms the pod terminates"
		case st.state == stateEvicted:
			reason = "eviction accepted; the pod has not gone yet"
		case reason == "":
			reason = "not evicted: the drain stopped first"
		}
		s.Blocked = append(s.Blocked, BlockedPod{Namespace: t.Namespace, Name: t.Name, Node: t.Node, Reason: reason})
	}
	fmt.Fprintf(o.ErrOut, "total: evicted %d/%d, %d gone, %d not waited for, %d remaining\n", s.Evicted, len(targets), s.Gone, len(s.NotWaited), left)
	s.Result = resultDone
	switch {
	case waitErr == nil && left > 0:
		s.Result = resultBlocked
	case waitErr == nil:
	case ctx.Err() != nil:
		s.Result = resultInterrupted
	case runCtx.Err() != nil && !errors.Is(waitErr, errWaitFailed):
		s.Result = resultTimedOut
	default:
		s.Result = resultFailed
		fmt.Fprintf(o.ErrOut, "error: %v\n", waitErr)
	}
	return s, nil
}

// hasPDBs reports whether a PDB covers any target.
func hasPDBs(targets []evictTarget) bool {
	for _, t := range targets {
		if len(t.PDBs) > 0 {
			return true
		}
	}
	return false
}

// targets turns the plan's pods into the evictor's targets.
func (o *Options) targets(plan *Plan) []evictTarget {
	targets := make([]evictTarget, 0, len(plan.Evict))
	for _, p := range plan.Evict {
		t := evictTarget{
			Namespace: p.Namespace, Name: p.Name, Node: p.Node, UID: p.uid, PDBs: plan.pdbsOf[p.Namespace+"/"+p.Name],
			NotReady: p.NotReadyNode, Delete: o.DisableEviction, Force: o.ForceDeleteUnreachable && p.NotReadyNode,
			Deletion: p.deletion, Grace: p.grace,
		}
		targets = append(targets, t)
	}
	return targets
}
