// Package status is `kubectl dc status`: datacenters, etcd voters, API
// servers and whether the cluster survives the loss of each datacenter.
package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/check"
	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// Exit codes of `kubectl dc status`.
const (
	// ExitRisk means the cluster cannot survive the loss of some datacenter
	// (or of the --lose datacenters); only with --fail-on-risk.
	ExitRisk = 3
	// ExitQuorumLost means etcd has lost quorum or cannot be reached.
	ExitQuorumLost = 4
)

const statusExample = `  # Where are my etcd voters and API servers, and can I lose each datacenter?
  kubectl dc status

  # The same with every node and member per datacenter
  kubectl dc status -o wide

  # What if pod-2 went dark: quorum, workloads that lose every replica, PDBs
  kubectl dc status --lose pod-2

  # The HAProxy in front of the API servers runs in pod-1: account for it
  kubectl dc status --endpoint-datacenter pod-1 --lose pod-1

  # In CI or a cron job: exit 3 when some datacenter cannot be lost
  kubectl dc status --fail-on-risk -o json

  # External etcd on hosts that are not nodes: say where each member runs
  kubectl dc status --etcd-cacert ca.crt --etcd-cert client.crt --etcd-key client.key \
    --etcd-datacenters etcd-a=pod-1,etcd-b=pod-2,10.0.3.10=pod-3

  # kine over PostgreSQL: where is the primary, is the replica streaming?
  kubectl dc status --datastore-dsn postgres://kubectl-dc-ro@10.0.1.20,10.0.2.20/kine

  # The API server is down: read etcd directly
  kubectl dc status --etcd-endpoints https://10.0.1.10:2379,https://10.0.2.10:2379 \
    --etcd-cacert ca.crt --etcd-cert client.crt --etcd-key client.key`

// Options holds the flags and clients of `kubectl dc status`.
type Options struct {
	genericiooptions.IOStreams

	config  *genericclioptions.ConfigFlags
	factory *cmdutil.Factory

	Output          string
	NoHeaders       bool
	Watch           bool
	DatacenterLabel string
	labelSet        bool
	Lose            []string
	FailOnRisk      bool
	// EndpointDatacenter is where the operator says the control-plane
	// endpoint's load balancer runs, "" when not said.
	EndpointDatacenter string

	// EtcdFlags say how to read etcd and where its members run, as on
	// every verb that judges quorum.
	cluster.EtcdFlags
	MaxReplayLag time.Duration

	client kubernetes.Interface
	// watchClient has no request timeout, for -w.
	watchClient kubernetes.Interface
	dynamic     dynamic.Interface
	server      string
	cacheDir    string
	// configErr is why no API client could be built; status then reads etcd
	// alone when it has endpoints.
	configErr error
	podExec   cluster.PodExecFunc
	// lookupHost resolves the control-plane endpoint's name; nil is the
	// system resolver.
	lookupHost cluster.LookupHostFunc
}

// NewOptions returns the options with their defaults.
func NewOptions(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *Options {
	return &Options{
		IOStreams:       streams,
		config:          config,
		factory:         cmdutil.NewFactory(config),
		DatacenterLabel: v1alpha1.DefaultDatacenterLabel,
		EtcdFlags:       cluster.NewEtcdFlags(),
		MaxReplayLag:    DefaultMaxReplayLag,
	}
}

// NewCmdStatus returns `kubectl dc status`.
func NewCmdStatus(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(config, streams)
	cmd := &cobra.Command{
		Use:   "status [--lose DC[,DC...]] [-w] [-o table|wide|json|yaml|jsonpath=...|go-template=...]",
		Short: "Show datacenters, etcd voters and API servers, and whether each datacenter can be lost",
		Long: `Show the datacenters of the cluster, where the etcd voters and API servers
run, and whether the cluster survives the loss of each datacenter right now.
It also says what the control-plane endpoint that kubelets dial is (an API
server, a load balancer in front of them, or unknown) and where it runs.

The verdict line comes first, then one row per datacenter: nodes
(total/ready/cordoned), control-plane nodes, etcd voters (healthy/total, the
leader marked *, learners apart), API servers and pinned workloads, then the
findings, each with what to do.

etcd is read, in order: directly from --etcd-endpoints; directly from the
client URLs kubeadm advertises on the etcd pods; by running etcdctl inside an
etcd pod (kubeadm certificate paths, see --etcd-exec-*); else from the
readiness of the etcd pods alone; etcd.source in -o json says which. With
no etcd pods (external etcd) the --etcd-servers of the kube-apiserver pods
are dialled.

A member is placed in the datacenter of the node it runs on (by name, by
the etcd pod advertising its URL, or by the node's InternalIP). Members on
hosts that are no node take theirs from --etcd-datacenters (by member name,
URL, host:port or host); a member placed by neither is reported as in an
unknown datacenter, and the loss of a datacenter whose verdict depends on
where it is shows as unknown.

A cluster whose API servers store in kine (the datastore answers the etcd
API as kine does, or kine pods run where no etcd does) gets no etcd quorum
arithmetic. With --datastore-dsn (PostgreSQL; a read-only role, see
docs/database.md) status asks every host of the DSN, within --etcd-timeout,
whether it is in recovery and what streams from it, places each in the
datacenter of the node with its address or by --datastore-datacenters, and
says which datacenter's loss needs a failover, which replica lags, and when
two servers accept writes (split brain, exit 4). The password is never
printed.

Every etcd call has a short deadline (--etcd-timeout), and API requests
time out after 5s unless --request-timeout says otherwise, so status never
hangs when quorum is lost. The last good run is remembered under
--cache-dir, so that while the API server is down status still knows where
each member runs.

The datacenter label is the live PlacementPolicy's, else --datacenter-label.

The control-plane endpoint is read, in order, from controlPlaneEndpoint in
kube-system/kubeadm-config, the server of kube-public/cluster-info, the server
of kube-system/kube-proxy's kubeconfig, else the kubeconfig in use. An address
that is a node's places a load balancer in that node's datacenter; otherwise
--endpoint-datacenter says where it runs.

Exit codes:
  0  the command ran (and, with --fail-on-risk, every datacenter can be lost)
  1  status could not be read (no kubeconfig, API server unreachable and no
     etcd endpoints known)
  2  bad flags
  3  with --fail-on-risk: the cluster cannot survive the loss of some
     datacenter, or with --lose, of the datacenters named
  4  etcd has lost quorum or cannot be reached; kine: no database server, or
     more than one, accepts writes`,
		Example: statusExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.labelSet = cmd.Flags().Changed("datacenter-label")
			cmdutil.WarnIgnoredNamespace(cmd, o.IOStreams)
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return cmdutil.UsageError(err)
			}
			cmd.SilenceUsage = true
			ctx, stop := signal.NotifyContext(cmdutil.Context(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.Run(ctx)
		},
	}
	cmdutil.AddPrintFlags(cmd, &o.Output, &o.NoHeaders, statusTables...)
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "After the first report, watch the cluster and print a new one whenever it changes (a datacenter going down or coming back); Ctrl-C ends it.")
	f := cmd.Flags()
	f.StringVar(&o.DatacenterLabel, "datacenter-label", o.DatacenterLabel, "Node label that names a node's datacenter. A live PlacementPolicy's spec.datacenterLabel wins.")
	f.StringSliceVar(&o.Lose, "lose", nil, "What-if: compute everything as if these datacenters (comma-separated) were gone.")
	f.StringVar(&o.EndpointDatacenter, "endpoint-datacenter", "", "Datacenter the control-plane endpoint's load balancer runs in, when its address is no node's.")
	f.BoolVar(&o.FailOnRisk, "fail-on-risk", false, "Exit 3 when the cluster cannot survive the loss of some datacenter (with --lose: of those datacenters).")
	f.StringSliceVar(&o.EtcdEndpoints, "etcd-endpoints", nil, "etcd client URLs to read directly (comma-separated). Default: the URLs advertised on the etcd pods.")
	o.AddFlags(f)
	f.DurationVar(&o.MaxReplayLag, "datastore-max-lag", o.MaxReplayLag, "Replay lag beyond which a database replica is reported.")
	_ = cmd.RegisterFlagCompletionFunc("lose", cluster.CompleteDatacenters(config, false))
	_ = cmd.RegisterFlagCompletionFunc("endpoint-datacenter", cluster.CompleteDatacenters(config, false))
	return cmd
}

// Complete builds the clients. A missing kubeconfig is not an error yet:
// with --etcd-endpoints status can still read etcd.
func (o *Options) Complete() error {
	if o.config.CacheDir != nil {
		o.cacheDir = *o.config.CacheDir
	}
	c, err := o.factory.Clients()
	if errors.Is(err, cmdutil.ErrNoKubeconfig) {
		err = fmt.Errorf("%w; with the API server unreachable, --etcd-endpoints still reads etcd", err)
	}
	if err != nil {
		o.configErr = err
		return nil
	}
	o.server, o.client, o.watchClient, o.dynamic = c.Server, c.Kube, c.Watch, c.Dynamic
	o.podExec = cluster.NewPodExec(c.Config, c.Kube)
	return nil
}

// Validate checks the flags.
func (o *Options) Validate() error {
	if err := cmdutil.ValidatePrintFormat(o.Output, statusTables...); err != nil {
		return err
	}
	if o.DatacenterLabel == "" {
		return errors.New("--datacenter-label must not be empty: use the node label that names datacenters, e.g. topology.kubernetes.io/zone")
	}
	for _, d := range o.Lose {
		if strings.TrimSpace(d) == "" {
			return errors.New("--lose has an empty datacenter name: use --lose pod-2 or --lose pod-2,pod-3")
		}
	}
	if err := o.EtcdFlags.Validate(); err != nil {
		return err
	}
	if o.MaxReplayLag <= 0 {
		return errors.New("--datastore-max-lag must be positive, e.g. 10s")
	}
	return nil
}

// Run gathers, builds and prints the report, then maps it to the exit code.
func (o *Options) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.factory.CountsRequests() {
		defer func() { fmt.Fprintf(o.ErrOut, "api-requests: %d\n", o.factory.Requests.Load()) }()
	}
	if o.Watch {
		return o.watch(ctx)
	}
	report, err := o.report(ctx)
	if err != nil {
		return err
	}
	if err := o.print(report); err != nil {
		return err
	}
	return statusExit(report, o.FailOnRisk)
}

// report reads the cluster and etcd and builds the report.
func (o *Options) report(ctx context.Context) (*Report, error) {
	// Known endpoints (the flag's, else the last run's) are read while the
	// API is listed, so a dead API server costs no extra time and a live
	// one usually advertises the same endpoints.
	cache := readStatusCache(o.cacheDir, o.server)
	early := o.prefetch(ctx, o.EtcdEndpoints)
	var speculative <-chan *cluster.Prefetched
	if early == nil && cache != nil {
		speculative = o.prefetch(ctx, cache.Endpoints)
	}

	var snap *cluster.Snapshot
	apiErr := o.configErr
	if o.client != nil {
		snap, apiErr = cluster.Read(ctx, o.client, o.dynamic, cluster.Options{
			ControlPlane: true, Namespaces: true, Pods: true, Workloads: true, PDBs: len(o.Lose) > 0,
			LabelFlag: o.DatacenterLabel, LabelFlagSet: o.labelSet,
			Endpoint: true, KubeconfigServer: o.server, LookupHost: o.lookupHost,
		})
	}
	if apiErr != nil && (apierrors.IsForbidden(apiErr) || apierrors.IsUnauthorized(apiErr)) {
		// The API server answers: reading etcd around it would hide that
		// this user may not see the cluster.
		return nil, fmt.Errorf("the API server at %s refuses: %w; kubectl dc status needs the permissions of manifests/rbac/status.yaml (docs/rbac.md)", o.server, apiErr)
	}
	if apiErr != nil {
		if early == nil && speculative == nil {
			if o.configErr != nil {
				return nil, o.configErr
			}
			return nil, fmt.Errorf("cannot read the API server at %s: %w; if its etcd is down, pass --etcd-endpoints to read etcd directly", o.server, apiErr)
		}
		fmt.Fprintf(o.ErrOut, "warning: cannot read the API server (%v); reporting from etcd directly\n", apiErr)
	}

	in := &statusInput{Lose: o.Lose, EndpointDatacenter: o.EndpointDatacenter, MemberDatacenters: maps.Clone(o.MemberDCs),
		DatabaseDatacenters: o.DatabaseDCs, MaxReplayLag: o.MaxReplayLag}
	switch {
	case snap != nil:
		for _, w := range snap.Warnings() {
			fmt.Fprintf(o.ErrOut, "Warning: %s\n", w)
		}
		in.Endpoint = snap.Endpoint
		if err := fromSnapshot(in, snap); err != nil {
			in.PolicyError = err.Error()
		}
	case cache != nil:
		in.Label, in.LabelSource = cache.Label, "cache"
		in.CachedDatacenters = cache.Datacenters
	default:
		c := policy.ResolveDatacenterLabel(o.DatacenterLabel, o.labelSet, nil)
		in.Label, in.LabelSource = c.Label, c.Source
	}

	// etcd, in order: flag endpoints, then (API up) the source chain every
	// verb uses, else (API down) the cached endpoints.
	switch {
	case early != nil:
		res := <-early
		in.Etcd = res.View
		if res.Err != nil {
			in.Etcd = &cluster.EtcdView{Source: cluster.EtcdSourceUnknown, Endpoints: o.EtcdEndpoints, Notes: []string{fmt.Sprintf("reading etcd at --etcd-endpoints failed: %v", res.Err)}}
			in.EtcdPods = nil
		}
	case snap == nil:
		res := <-speculative
		in.Etcd = res.View
		if res.Err != nil {
			in.Etcd = &cluster.EtcdView{Source: cluster.EtcdSourceUnknown, Endpoints: cache.Endpoints, Notes: []string{fmt.Sprintf("reading etcd at the cached endpoints failed: %v", res.Err)}}
		}
	default:
		eo := o.etcdOptions()
		eo.APIServerPods = snap.APIServerPods
		if speculative != nil {
			eo.Prefetched = <-speculative
		}
		in.Etcd = cluster.ReadEtcd(ctx, snap.EtcdPods, eo)
	}

	if o.DSN != nil && len(isKine(in)) > 0 {
		in.DatastoreDSN = o.DSN.String()
		in.Database, in.DatabaseNotes = o.ReadDatastore(ctx)
	}
	for _, name := range sets.List(sets.KeySet(o.DatabaseDCs)) {
		if err := unknownDatacenterIn("--datastore-datacenters "+name+"="+o.DatabaseDCs[name], o.DatabaseDCs[name], in); err != nil {
			return nil, cmdutil.UsageError(err)
		}
	}
	if err := checkLose(o.Lose, in); err != nil {
		return nil, cmdutil.UsageError(err)
	}
	for _, name := range sets.List(sets.KeySet(o.MemberDCs)) {
		if err := unknownDatacenterIn("--etcd-datacenters "+name+"="+o.MemberDCs[name], o.MemberDCs[name], in); err != nil {
			return nil, cmdutil.UsageError(err)
		}
	}
	if err := checkEndpointDatacenter(o.EndpointDatacenter, in); err != nil {
		return nil, cmdutil.UsageError(err)
	}
	report := buildReport(in)
	if snap != nil {
		writeStatusCache(o.cacheDir, cacheFromReport(o.server, report))
	}
	return report, nil
}

// etcdOptions are the flags' ways to read etcd.
func (o *Options) etcdOptions() cluster.EtcdOptions {
	return o.Options(o.podExec, nil)
}

// prefetch reads etcd directly at endpoints in the background; nil when
// there are none.
func (o *Options) prefetch(ctx context.Context, endpoints []string) <-chan *cluster.Prefetched {
	if len(endpoints) == 0 {
		return nil
	}
	ch := make(chan *cluster.Prefetched, 1)
	go func() {
		v, err := cluster.ReadEtcdDirect(ctx, endpoints, o.EtcdTLS, o.EtcdTimeout)
		ch <- &cluster.Prefetched{Endpoints: endpoints, View: v, Err: err}
	}()
	return ch
}

// fromSnapshot fills the report's input from the snapshot every verb
// reads; the violation counts are kubectl dc check --live's results.
func fromSnapshot(in *statusInput, snap *cluster.Snapshot) error {
	in.APIAvailable = true
	in.Label, in.LabelSource = snap.Label.Label, snap.Label.Source
	in.PolicyDatacenters = snap.PolicyDatacenters()
	in.Nodes, in.EtcdPods, in.APIServerPods, in.APIAddresses = snap.Nodes, snap.EtcdPods, snap.APIServerPods, snap.APIAddresses
	in.Pods, in.PDBs, in.Forbidden = snap.Pods, snap.PDBs, snap.Forbidden
	in.KinePods = cluster.KinePods(snap.Pods)
	// The policies' spec.etcdMembers place members the flag does not.
	in.MemberDatacenters, in.MemberSources = snap.EtcdMemberDatacenters(in.MemberDatacenters)
	for _, obj := range snap.Workloads {
		if w, ok := workloadOf(obj, in.Label); ok {
			in.Workloads = append(in.Workloads, w)
		}
	}
	if len(snap.Policies.Items) == 0 {
		return nil
	}
	results, err := check.LiveResults(snap)
	if err != nil {
		return err
	}
	in.Violations = violationsPerDatacenter(results, snap, in.Label)
	return nil
}

// workloadOf returns the controller obj as status sees it: a top-level
// controller (no controller of its own) with a pod template, selecting
// the pods that carry its template's labels.
func workloadOf(obj runtime.Object, label string) (statusWorkload, bool) {
	m, err := meta.Accessor(obj)
	if err != nil || metav1.GetControllerOfNoCopy(m) != nil {
		return statusWorkload{}, false
	}
	ts := policy.PodTemplates(obj)
	if len(ts) == 0 {
		return statusWorkload{}, false
	}
	ref := policy.ObjectRefOf(obj)
	w := statusWorkload{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
	if len(ts[0].Meta.Labels) > 0 {
		w.Selector = labels.SelectorFromSet(ts[0].Meta.Labels)
	}
	if dc, ok := policy.SelectedDatacenter(ts[0].Spec, label); ok {
		w.Pinned = dc
	}
	return w, true
}

// violationsPerDatacenter counts results per datacenter: a pod's node's
// datacenter (the one it selects while unscheduled), a controller's
// selected datacenter, else "" (unattributed).
func violationsPerDatacenter(results policy.Results, snap *cluster.Snapshot, label string) map[string]int {
	dcOf := map[policy.ObjectRef]string{}
	for _, p := range snap.Pods {
		dc := ""
		if p.Spec.NodeName != "" {
			dc = snap.DatacenterOfNode(p.Spec.NodeName)
		} else if sel, ok := policy.SelectedDatacenter(&p.Spec, label); ok {
			dc = sel
		}
		dcOf[policy.ObjectRefOf(p)] = dc
	}
	for _, w := range snap.Workloads {
		if ts := policy.PodTemplates(w); len(ts) > 0 {
			if dc, ok := policy.SelectedDatacenter(ts[0].Spec, label); ok {
				dcOf[policy.ObjectRefOf(w)] = dc
			}
		}
	}
	out := map[string]int{}
	for _, r := range results {
		out[dcOf[r.Object]]++
	}
	return out
}

// checkLose rejects --lose values that name no known datacenter.
func checkLose(lose []string, in *statusInput) error {
	if len(lose) == 0 {
		return nil
	}
	for _, d := range lose {
		if err := unknownDatacenter("--lose", d, in); err != nil {
			return err
		}
	}
	return nil
}

// unknownDatacenter is the error of a flag that names dc when no node or
// policy knows it, with the nearest known name; nil when it is known, or
// when nothing is known to compare with.
func unknownDatacenter(flag, dc string, in *statusInput) error {
	return unknownDatacenterIn(flag+" "+dc, dc, in)
}

// unknownDatacenterIn is unknownDatacenter with the whole subject of the
// message given (a flag and its value).
func unknownDatacenterIn(subject, dc string, in *statusInput) error {
	known := knownDatacenters(in)
	if known.Len() == 0 || known.Has(dc) {
		return nil
	}
	list := sets.List(known)
	return fmt.Errorf("%s: no node has %s=%s; %sknown datacenters: %s", subject, in.Label, dc, policy.DidYouMean(dc, list), strings.Join(list, ", "))
}

// knownDatacenters are the datacenters flags may name: the policies',
// the nodes' and, with the API down, the cached ones.
func knownDatacenters(in *statusInput) sets.Set[string] {
	known := sets.New(in.PolicyDatacenters...)
	for _, n := range in.Nodes {
		if dc := policy.DatacenterOf(n, in.Label); dc != "" {
			known.Insert(dc)
		}
	}
	for _, dc := range in.CachedDatacenters {
		known.Insert(dc)
	}
	return known
}

// cacheFromReport keeps what a later run needs when the API is down.
func cacheFromReport(server string, r *Report) *statusCache {
	c := &statusCache{Server: server, Label: r.DatacenterLabel, Datacenters: map[string]string{}}
	for _, m := range r.Etcd.Members {
		c.Endpoints = append(c.Endpoints, m.ClientURLs...)
		if m.Datacenter != "" && m.Datacenter != cluster.Unlabeled {
			c.Datacenters[m.Name] = m.Datacenter
			if m.Node != "" {
				c.Datacenters[m.Node] = m.Datacenter
			}
		}
	}
	if len(c.Endpoints) == 0 {
		c.Endpoints = r.Etcd.Endpoints
	}
	return c
}

// statusExit maps a report to the documented exit code.
func statusExit(r *Report, failOnRisk bool) error {
	if d := r.Datastore; d != nil {
		return datastoreExit(r, failOnRisk)
	}
	if r.Etcd.Source != cluster.EtcdSourceUnknown && r.Etcd.Size > 0 && !r.Etcd.HasQuorum && len(r.Lose) == 0 {
		return &cmdutil.ExitError{Code: ExitQuorumLost}
	}
	if r.Etcd.Source == cluster.EtcdSourceUnknown && len(r.Etcd.Endpoints) > 0 {
		// Endpoints were given or known but none answered.
		return &cmdutil.ExitError{Code: ExitQuorumLost}
	}
	if !failOnRisk {
		return nil
	}
	if len(r.Lose) > 0 {
		if !r.Etcd.HasQuorum {
			return &cmdutil.ExitError{Code: ExitRisk}
		}
		return nil
	}
	for _, d := range r.Datacenters {
		if d.SurvivesLoss == nil && d.Name != cluster.Unlabeled {
			return &cmdutil.ExitError{Code: ExitRisk}
		}
		if d.SurvivesLoss != nil && !*d.SurvivesLoss {
			return &cmdutil.ExitError{Code: ExitRisk}
		}
	}
	return nil
}

// statusTables are the table formats of status; -o also takes kubectl's
// json, yaml, jsonpath and go-template.
var statusTables = []string{cmdutil.OutputTable, cmdutil.OutputWide}

// ReportKind is the kind of the report in structured output.
const ReportKind = "StatusReport"

func (o *Options) print(r *Report) error {
	if cmdutil.IsStructured(o.Output) {
		return cmdutil.Print(o.Out, o.Output, ReportKind, r)
	}
	return printStatusTable(o.Out, r, o.Output == cmdutil.OutputWide, o.NoHeaders)
}

// verdictLine is the first line of the table.
func verdictLine(r *Report) string {
	e := r.Etcd
	var b strings.Builder
	for _, dc := range r.DownDatacenters() {
		fmt.Fprintf(&b, "DATACENTER %s IS DOWN; ", dc)
	}
	if len(r.Lose) > 0 {
		fmt.Fprintf(&b, "as if %s were lost: ", strings.Join(r.Lose, ", "))
	}
	switch {
	case r.Datastore != nil:
		b.WriteString(datastoreLine(r))
		b.WriteString(survivalList(r))
		return b.String()
	case e.Source == cluster.EtcdSourceUnknown || e.Size == 0:
		b.WriteString("etcd: unknown (no members could be read)")
		return b.String()
	default:
		fmt.Fprintf(&b, "etcd %d voters", e.Size)
		if e.Learners > 0 {
			fmt.Fprintf(&b, " (+%d learners)", e.Learners)
		}
		fmt.Fprintf(&b, ", quorum %d, tolerates %d %s", e.Quorum, e.FaultTolerance, cmdutil.Plural(e.FaultTolerance, "failure", "failures"))
		if n := len(policy.UnknownVoters(cluster.Voters(e.Members))); n > 0 {
			fmt.Fprintf(&b, ", %d in no known datacenter", n)
		}
	}
	if e.Healthy < e.Size {
		fmt.Fprintf(&b, ", %d healthy", e.Healthy)
	}
	if !e.HasQuorum {
		b.WriteString(", QUORUM LOST")
	}
	b.WriteString(survivalList(r))
	fmt.Fprintf(&b, " [source: %s]", e.Source)
	return b.String()
}

// survivalList is the verdict line's "; survives loss of: ..." over the
// datacenters not already lost, "" when there are none.
func survivalList(r *Report) string {
	var parts []string
	for _, d := range r.Datacenters {
		if d.Name == cluster.Unlabeled || d.Lost {
			continue
		}
		parts = append(parts, d.Name+" "+yesNo(d.SurvivesLoss))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; survives loss of: " + strings.Join(parts, ", ")
}

func yesNo(b *bool) string {
	switch {
	case b == nil:
		return "unknown"
	case *b:
		return "yes"
	}
	return "NO"
}

// printStatusTable prints the verdict line, one row per datacenter, the
// legend and the findings; with noHeaders the rows alone, for scripts.
func printStatusTable(out io.Writer, r *Report, wide, noHeaders bool) error {
	w := cmdutil.NewTabWriter(out)
	if !noHeaders {
		fmt.Fprintln(out, verdictLine(r))
		fmt.Fprintln(out)
		store := "ETCD"
		if r.Datastore != nil {
			store = "DATASTORE"
		}
		header := "DATACENTER\tSURVIVES LOSS\tNODES\tCONTROL-PLANE\t" + store + "\tAPI SERVERS\tPINNED\tVIOLATIONS"
		if wide {
			header += "\tMEMBERS\tNODE NAMES"
		}
		fmt.Fprintln(w, header)
	}
	for _, d := range r.Datacenters {
		name := d.Name
		switch {
		case d.Lost:
			name += " (lost)"
		case d.Down:
			name += " (DOWN)"
		}
		etcd := fmt.Sprintf("%d/%d", d.HealthyVoters, d.Voters)
		if d.Leader {
			etcd += "*"
		}
		if d.Learners > 0 {
			etcd += fmt.Sprintf(" +%dL", d.Learners)
		}
		if r.Datastore != nil {
			etcd = datastoreCell(d)
		}
		survives := yesNo(d.SurvivesLoss)
		if d.Name == cluster.Unlabeled || d.Lost {
			// Already gone in the what-if: there is nothing left to lose.
			survives = "-"
		}
		violations := "-"
		if d.Violations != nil {
			violations = fmt.Sprint(*d.Violations)
		}
		nodes := "unknown"
		if d.Nodes != nil {
			nodes = fmt.Sprintf("%d/%d/%d", d.Nodes.Total, d.Nodes.Ready, d.Nodes.Cordoned)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d/%d\t%d\t%s", name, survives, nodes, d.ControlPlane, etcd, d.APIServersUp, d.APIServers, d.Pinned, violations)
		if wide {
			fmt.Fprintf(w, "\t%s\t%s", cmdutil.Dash(strings.Join(d.memberLabels, ",")), cmdutil.Dash(joinSome(d.NodeNames, 12)))
		}
		fmt.Fprintln(w)
	}
	if err := w.Flush(); err != nil || noHeaders {
		return err
	}
	fmt.Fprintln(out, "\nNODES is total/ready/cordoned; ETCD is healthy/total voters, * marks the leader, +NL learners;\nAPI SERVERS is ready/total; VIOLATIONS counts PlacementPolicy results (kubectl dc check --cluster lists them), - without policies.")
	if r.Violations != nil && *r.Violations > 0 {
		fmt.Fprintf(out, "%d PlacementPolicy results in all, %d in no datacenter.\n", *r.Violations, *r.Violations-sumRows(r))
	}
	if len(r.APIServers) > 0 {
		var unmapped []string
		for _, a := range r.APIServers {
			if !a.Mapped {
				unmapped = append(unmapped, a.Address)
			}
		}
		if len(unmapped) > 0 {
			fmt.Fprintf(out, "API servers in no known datacenter (unmapped): %s\n", strings.Join(unmapped, ", "))
		}
	}
	if ep := r.ControlPlaneEndpoint; ep != nil {
		fmt.Fprintln(out, endpointLine(ep))
	}
	if wi := r.WhatIf; wi != nil {
		fmt.Fprintf(out, "\nWhat if %s were lost: etcd %s (%d voters left, quorum %d), %d API servers and %d ready nodes left, %d workloads lose every replica, %d PDBs violated.\n",
			strings.Join(wi.Lose, ", "), map[bool]string{true: "keeps quorum", false: "LOSES QUORUM"}[wi.HasQuorum], wi.VotersLeft, r.Etcd.Quorum,
			wi.APIServersLeft, wi.NodesLeft, len(wi.LostWorkloads), len(wi.ViolatedPDBs))
		if r.ControlPlaneEndpoint != nil {
			fmt.Fprintln(out, apiReachableLine(wi))
		}
	}
	if len(r.Findings) > 0 {
		fmt.Fprintln(out, "\nFindings:")
		for _, f := range r.Findings {
			fmt.Fprintf(out, "  [%s] %s\n", f.Severity, f.Message)
			if f.Remedy != "" {
				fmt.Fprintf(out, "      fix: %s\n", f.Remedy)
			}
		}
	}
	if ep := r.ControlPlaneEndpoint; ep != nil && len(ep.Notes) > 0 && wide {
		fmt.Fprintln(out, "\ncontrol-plane endpoint notes:")
		for _, n := range ep.Notes {
			fmt.Fprintf(out, "  %s\n", n)
		}
	}
	if d := r.Datastore; d != nil && len(d.Notes) > 0 && wide {
		fmt.Fprintln(out, "\ndatastore notes:")
		for _, n := range d.Notes {
			fmt.Fprintf(out, "  %s\n", n)
		}
	}
	if len(r.Etcd.Notes) > 0 && wide {
		fmt.Fprintln(out, "\netcd notes:")
		for _, n := range r.Etcd.Notes {
			fmt.Fprintf(out, "  %s\n", n)
		}
	}
	return nil
}

func sumRows(r *Report) int {
	n := 0
	for _, d := range r.Datacenters {
		if d.Violations != nil {
			n += *d.Violations
		}
	}
	return n
}

// joinSome joins the first n names and says how many more there are.
func joinSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ",")
	}
	return strings.Join(names[:n], ",") + fmt.Sprintf(",... (%d more)", len(names)-n)
}
