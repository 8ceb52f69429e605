package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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

// envCountRequests, when set to a non-empty value, makes status print the
// number of API requests it made to ErrOut (benchmarks read it).
const envCountRequests = "KUBECTL_DC_COUNT_REQUESTS"

// defaultAPITimeout bounds each API request unless --request-timeout says
// otherwise, so that a server without etcd quorum fails fast instead of
// hanging.
const defaultAPITimeout = 5 * time.Second

const statusExample = `  # Where are my etcd voters and API servers, and can I lose each datacenter?
  kubectl dc status

  # The same with every node and member per datacenter
  kubectl dc status -o wide

  # What if pod-2 went dark: quorum, workloads that lose every replica, PDBs
  kubectl dc status --lose pod-2

  # In CI or a cron job: exit 3 when some datacenter cannot be lost
  kubectl dc status --fail-on-risk -o json

  # The API server is down: read etcd directly
  kubectl dc status --etcd-endpoints https://10.0.1.10:2379,https://10.0.2.10:2379 \
    --etcd-cacert ca.crt --etcd-cert client.crt --etcd-key client.key`

// StatusOptions holds the flags and clients of `kubectl dc status`.
type StatusOptions struct {
	genericiooptions.IOStreams

	config *genericclioptions.ConfigFlags

	Output          string
	DatacenterLabel string
	labelSet        bool
	Lose            []string
	FailOnRisk      bool

	EtcdEndpoints []string
	EtcdTLS       etcdTLSFiles
	EtcdTimeout   time.Duration
	Exec          bool
	ExecTLS       etcdExecTLS

	restConfig *rest.Config
	client     kubernetes.Interface
	dynamic    dynamic.Interface
	server     string
	cacheDir   string
	// configErr is why no API client could be built; status then reads etcd
	// alone when it has endpoints.
	configErr error
	requests  atomic.Int64
	countReqs bool
	podExec   podExecFunc
}

// NewStatusOptions returns the options with their defaults.
func NewStatusOptions(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *StatusOptions {
	return &StatusOptions{
		IOStreams:       streams,
		config:          config,
		DatacenterLabel: policyDefaultLabel,
		EtcdTimeout:     2 * time.Second,
		Exec:            true,
		ExecTLS:         etcdExecTLS{CACert: defaultExecCACert, Cert: defaultExecCert, Key: defaultExecKey},
	}
}

// policyDefaultLabel is the default datacenter label.
const policyDefaultLabel = "topology.kubernetes.io/zone"

// NewCmdStatus returns `kubectl dc status`.
func NewCmdStatus(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewStatusOptions(config, streams)
	cmd := &cobra.Command{
		Use:   "status [--lose DC[,DC...]] [-o table|wide|json|yaml]",
		Short: "Show datacenters, etcd voters and API servers, and whether each datacenter can be lost",
		Long: `Show the datacenters of the cluster, where the etcd voters and API servers
run, and whether the cluster survives the loss of each datacenter right now.

The verdict line comes first, then one row per datacenter: nodes
(total/ready/cordoned), control-plane nodes, etcd voters (healthy/total, the
leader marked *, learners apart), API servers and pinned workloads, then the
findings, each with what to do.

etcd is read, in order: directly from --etcd-endpoints; directly from the
client URLs kubeadm advertises on the etcd pods; by running etcdctl inside an
etcd pod (kubeadm certificate paths, see --etcd-exec-*); else from the
readiness of the etcd pods alone. etcd.source in -o json says which. Every
etcd call has a short deadline (--etcd-timeout), and API requests time out
after 5s unless --request-timeout says otherwise, so status never hangs when
quorum is lost. The last good run is remembered under --cache-dir, so that
while the API server is down status still knows where each member runs.

The datacenter label is the live PlacementPolicy's, else --datacenter-label.

Exit codes:
  0  the command ran (and, with --fail-on-risk, every datacenter can be lost)
  1  status could not be read (no kubeconfig, API server unreachable and no
     etcd endpoints known)
  2  bad flags
  3  with --fail-on-risk: the cluster cannot survive the loss of some
     datacenter, or with --lose, of the datacenters named
  4  etcd has lost quorum or cannot be reached`,
		Example: statusExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.labelSet = cmd.Flags().Changed("datacenter-label")
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return usageError(err)
			}
			cmd.SilenceUsage = true
			return o.Run(cmd.Context())
		},
	}
	addOutputFlag(cmd, &o.Output, outputTable, outputWide, outputJSON, outputYAML)
	f := cmd.Flags()
	f.StringVar(&o.DatacenterLabel, "datacenter-label", o.DatacenterLabel, "Node label that names a node's datacenter. A live PlacementPolicy's spec.datacenterLabel wins.")
	f.StringSliceVar(&o.Lose, "lose", nil, "What-if: compute everything as if these datacenters (comma-separated) were gone.")
	f.BoolVar(&o.FailOnRisk, "fail-on-risk", false, "Exit 3 when the cluster cannot survive the loss of some datacenter (with --lose: of those datacenters).")
	f.StringSliceVar(&o.EtcdEndpoints, "etcd-endpoints", nil, "etcd client URLs to read directly (comma-separated). Default: the URLs advertised on the etcd pods.")
	f.StringVar(&o.EtcdTLS.CACert, "etcd-cacert", "", "CA bundle to verify etcd's serving certificate (local file).")
	f.StringVar(&o.EtcdTLS.Cert, "etcd-cert", "", "Client certificate for etcd (local file).")
	f.StringVar(&o.EtcdTLS.Key, "etcd-key", "", "Client key for etcd (local file).")
	f.DurationVar(&o.EtcdTimeout, "etcd-timeout", o.EtcdTimeout, "Deadline of each etcd call.")
	f.BoolVar(&o.Exec, "etcd-exec", o.Exec, "When etcd cannot be dialled, run etcdctl inside an etcd pod.")
	f.StringVar(&o.ExecTLS.CACert, "etcd-exec-cacert", o.ExecTLS.CACert, "CA path inside the etcd pod for --etcd-exec.")
	f.StringVar(&o.ExecTLS.Cert, "etcd-exec-cert", o.ExecTLS.Cert, "Client certificate path inside the etcd pod for --etcd-exec.")
	f.StringVar(&o.ExecTLS.Key, "etcd-exec-key", o.ExecTLS.Key, "Client key path inside the etcd pod for --etcd-exec.")
	_ = cmd.RegisterFlagCompletionFunc("lose", func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return o.completeDatacenters(toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
	return cmd
}

// completeDatacenters offers the datacenter label values of live nodes for
// the last item of a comma-separated --lose value.
func (o *StatusOptions) completeDatacenters(toComplete string) []string {
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = defaultAPITimeout
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil
	}
	nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: o.DatacenterLabel})
	if err != nil {
		return nil
	}
	return datacenterCompletions(nodes.Items, o.DatacenterLabel, toComplete)
}

// datacenterCompletions completes the last item of a comma-separated list
// of datacenters with the label values of nodes not listed yet.
func datacenterCompletions(nodes []corev1.Node, label, toComplete string) []string {
	done := ""
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		done = toComplete[:i+1]
	}
	already := sets.New(strings.Split(done, ",")...)
	dcs := sets.New[string]()
	for i := range nodes {
		if dc := nodes[i].Labels[label]; dc != "" && !already.Has(dc) {
			dcs.Insert(done + dc)
		}
	}
	return sets.List(dcs)
}

// Complete builds the clients. A missing kubeconfig is not an error yet:
// with --etcd-endpoints status can still read etcd.
func (o *StatusOptions) Complete() error {
	o.countReqs = os.Getenv(envCountRequests) != ""
	if o.config.CacheDir != nil {
		o.cacheDir = *o.config.CacheDir
	}
	cfg, err := restConfigFor(o.config)
	if errors.Is(err, errNoKubeconfig) {
		err = fmt.Errorf("%w; with the API server unreachable, --etcd-endpoints still reads etcd", err)
	}
	if err != nil {
		o.configErr = err
		return nil
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultAPITimeout
	}
	// A handful of LIST pages in parallel: no client-side throttling.
	cfg.QPS, cfg.Burst = 100, 200
	if o.countReqs {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, n: &o.requests} })
	}
	o.restConfig = cfg
	o.server = cfg.Host
	// Protobuf for the built-in kinds: big node and pod lists decode
	// several times faster. The dynamic client (PlacementPolicy) stays JSON.
	pb := rest.CopyConfig(cfg)
	pb.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	pb.ContentType = "application/vnd.kubernetes.protobuf"
	if o.client, err = kubernetes.NewForConfig(pb); err != nil {
		return err
	}
	if o.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	o.podExec = newPodExec(cfg, o.client)
	return nil
}

// Validate checks the flags.
func (o *StatusOptions) Validate() error {
	if err := validateOutput(o.Output, outputTable, outputWide, outputJSON, outputYAML); err != nil {
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
	if (o.EtcdTLS.Cert == "") != (o.EtcdTLS.Key == "") {
		return errors.New("--etcd-cert and --etcd-key must be given together")
	}
	if o.EtcdTimeout <= 0 {
		return errors.New("--etcd-timeout must be positive, e.g. 2s")
	}
	return nil
}

// Run gathers, builds and prints the report, then maps it to the exit code.
func (o *StatusOptions) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.countReqs {
		defer func() { fmt.Fprintf(o.ErrOut, "api-requests: %d\n", o.requests.Load()) }()
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
func (o *StatusOptions) report(ctx context.Context) (*StatusReport, error) {
	type etcdResult struct {
		view *etcdView
		err  error
	}
	var early chan etcdResult
	if len(o.EtcdEndpoints) > 0 {
		// Known endpoints: read etcd while the API is listed, so a dead API
		// server costs no extra time.
		early = make(chan etcdResult, 1)
		go func() {
			v, err := readEtcdDirect(ctx, o.EtcdEndpoints, o.EtcdTLS, o.EtcdTimeout)
			early <- etcdResult{v, err}
		}()
	}

	// With the endpoints of the last run cached, read etcd at them while
	// the API is listed too: a dead API server then costs no extra time,
	// and a live one usually advertises the same endpoints.
	cache := readStatusCache(o.cacheDir, o.server)
	var speculative chan etcdResult
	if early == nil && cache != nil && len(cache.Endpoints) > 0 {
		speculative = make(chan etcdResult, 1)
		go func() {
			v, err := readEtcdDirect(ctx, cache.Endpoints, o.EtcdTLS, o.EtcdTimeout)
			speculative <- etcdResult{v, err}
		}()
	}

	in := &statusInput{Lose: o.Lose}
	var g *gathered
	apiErr := o.configErr
	if o.client != nil {
		g, apiErr = gatherObjects(ctx, o.client, o.dynamic, len(o.Lose) > 0)
	}
	if apiErr != nil && (apierrors.IsForbidden(apiErr) || apierrors.IsUnauthorized(apiErr)) {
		// The API server answers: reading etcd around it would hide that
		// this user may not see the cluster.
		return nil, fmt.Errorf("the API server at %s refuses: %w; kubectl dc status needs the permissions of manifests/rbac/status.yaml (docs/rbac.md)", o.server, apiErr)
	}
	if apiErr != nil {
		if early == nil && (cache == nil || len(cache.Endpoints) == 0) {
			if o.configErr != nil {
				return nil, o.configErr
			}
			return nil, fmt.Errorf("cannot read the API server at %s: %w; if its etcd is down, pass --etcd-endpoints to read etcd directly", o.server, apiErr)
		}
		fmt.Fprintf(o.ErrOut, "warning: cannot read the API server (%v); reporting from etcd directly\n", apiErr)
	}

	if g != nil {
		in.APIAvailable = true
		in.Label, in.LabelSource = datacenterLabelFrom(g.Policies, o.DatacenterLabel, o.labelSet)
		dcs := sets.New[string]()
		for _, p := range g.Policies {
			dcs.Insert(p.Spec.Datacenters...)
		}
		in.PolicyDatacenters = sets.List(dcs)
		in.Nodes, in.EtcdPods, in.APIServerPods, in.APIAddresses = g.Nodes, g.EtcdPods, g.APIServerPods, g.APIAddresses
		in.Pods, in.PDBs, in.Forbidden = g.Pods, g.PDBs, g.Forbidden
		pinned := map[*statusWorkloadObj]string{}
		for _, w := range g.Workloads {
			sw := statusWorkload{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
			if sel, err := metav1.LabelSelectorAsSelector(w.Selector); err == nil && w.Selector != nil {
				sw.Selector = sel
			}
			if w.Template != nil {
				if dc, ok := policy.SelectedDatacenter(&w.Template.Spec, in.Label); ok {
					sw.Pinned = dc
					pinned[w] = dc
				}
			}
			in.Workloads = append(in.Workloads, sw)
		}
		if len(g.Policies) > 0 {
			v, err := policyViolations(g, in.Label, pinned)
			if err != nil {
				in.PolicyError = err.Error()
			}
			in.Violations = v
		}
	} else {
		in.Label, in.LabelSource = o.DatacenterLabel, "flag"
		if !o.labelSet {
			in.LabelSource = "default"
		}
		if cache != nil {
			in.Label, in.LabelSource = cache.Label, "cache"
			in.CachedDatacenters = cache.Datacenters
		}
	}

	// etcd, in order: flag endpoints, advertised endpoints, exec, pods.
	var notes []string
	switch {
	case early != nil:
		res := <-early
		if res.err != nil {
			notes = append(notes, fmt.Sprintf("reading etcd at --etcd-endpoints failed: %v", res.err))
			in.Etcd = &etcdView{Source: etcdSourceUnknown, Endpoints: o.EtcdEndpoints, Notes: notes}
			in.EtcdPods = nil
		} else {
			in.Etcd = res.view
		}
	case g == nil:
		res := <-speculative
		v, err := res.view, res.err
		if err != nil {
			notes = append(notes, fmt.Sprintf("reading etcd at the cached endpoints failed: %v", err))
			in.Etcd = &etcdView{Source: etcdSourceUnknown, Endpoints: cache.Endpoints, Notes: notes}
		} else {
			in.Etcd = v
		}
	default:
		if eps := etcdEndpointsFromPods(g.EtcdPods); len(eps) > 0 {
			var v *etcdView
			var err error
			if speculative != nil && sameEndpointSet(eps, cache.Endpoints) {
				res := <-speculative
				v, err = res.view, res.err
				if v != nil {
					v.Endpoints = eps
				}
			} else {
				v, err = readEtcdDirect(ctx, eps, o.EtcdTLS, o.EtcdTimeout)
			}
			if err == nil {
				in.Etcd = v
				break
			}
			notes = append(notes, fmt.Sprintf("dialling the advertised etcd client URLs failed: %v", err))
		}
		if o.Exec && len(g.EtcdPods) > 0 && o.podExec != nil {
			v, err := readEtcdExec(ctx, o.podExec, g.EtcdPods, o.ExecTLS, o.EtcdTimeout)
			if err == nil {
				v.Notes = notes
				in.Etcd = v
				break
			}
			notes = append(notes, err.Error())
		}
		in.Etcd = &etcdView{Notes: notes}
	}

	if err := checkLose(o.Lose, in); err != nil {
		return nil, usageError(err)
	}
	report := buildReport(in)
	if g != nil {
		writeStatusCache(o.cacheDir, cacheFromReport(o.server, report))
	}
	return report, nil
}

// sameEndpointSet reports whether a and b hold the same URLs.
func sameEndpointSet(a, b []string) bool {
	norm := func(l []string) sets.Set[string] {
		out := sets.New[string]()
		for _, u := range l {
			out.Insert(strings.TrimRight(u, "/"))
		}
		return out
	}
	return norm(a).Equal(norm(b))
}

// checkLose rejects --lose values that name no known datacenter.
func checkLose(lose []string, in *statusInput) error {
	if len(lose) == 0 {
		return nil
	}
	known := sets.New(in.PolicyDatacenters...)
	for _, n := range in.Nodes {
		if dc := policy.DatacenterOf(n, in.Label); dc != "" {
			known.Insert(dc)
		}
	}
	for _, dc := range in.CachedDatacenters {
		known.Insert(dc)
	}
	if known.Len() == 0 {
		return nil
	}
	for _, d := range lose {
		if !known.Has(d) {
			return fmt.Errorf("--lose %s: no node has %s=%s; known datacenters: %s", d, in.Label, d, strings.Join(sets.List(known), ", "))
		}
	}
	return nil
}

// cacheFromReport keeps what a later run needs when the API is down.
func cacheFromReport(server string, r *StatusReport) *statusCache {
	c := &statusCache{Server: server, Label: r.DatacenterLabel, Datacenters: map[string]string{}}
	for _, m := range r.Etcd.Members {
		c.Endpoints = append(c.Endpoints, m.ClientURLs...)
		if m.Datacenter != "" && m.Datacenter != unlabeledDC {
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
func statusExit(r *StatusReport, failOnRisk bool) error {
	if r.Etcd.Source != etcdSourceUnknown && r.Etcd.Size > 0 && !r.Etcd.HasQuorum && len(r.Lose) == 0 {
		return &ExitError{Code: ExitQuorumLost}
	}
	if r.Etcd.Source == etcdSourceUnknown && len(r.Etcd.Endpoints) > 0 {
		// Endpoints were given or known but none answered.
		return &ExitError{Code: ExitQuorumLost}
	}
	if !failOnRisk {
		return nil
	}
	if len(r.Lose) > 0 {
		if !r.Etcd.HasQuorum {
			return &ExitError{Code: ExitRisk}
		}
		return nil
	}
	for _, d := range r.Datacenters {
		if d.SurvivesLoss == nil && d.Name != unlabeledDC {
			return &ExitError{Code: ExitRisk}
		}
		if d.SurvivesLoss != nil && !*d.SurvivesLoss {
			return &ExitError{Code: ExitRisk}
		}
	}
	return nil
}

func (o *StatusOptions) print(r *StatusReport) error {
	switch o.Output {
	case outputJSON, outputYAML:
		return printStructured(o.Out, o.Output, r)
	}
	return printStatusTable(o.Out, r, o.Output == outputWide)
}

// verdictLine is the first line of the table.
func verdictLine(r *StatusReport) string {
	e := r.Etcd
	var b strings.Builder
	if len(r.Lose) > 0 {
		fmt.Fprintf(&b, "as if %s were lost: ", strings.Join(r.Lose, ", "))
	}
	switch {
	case e.Source == etcdSourceUnknown || e.Size == 0:
		b.WriteString("etcd: unknown (no members could be read)")
		return b.String()
	default:
		fmt.Fprintf(&b, "etcd %d voters", e.Size)
		if e.Learners > 0 {
			fmt.Fprintf(&b, " (+%d learners)", e.Learners)
		}
		fmt.Fprintf(&b, ", quorum %d, tolerates %d %s", e.Quorum, e.FaultTolerance, statusPlural(e.FaultTolerance, "failure", "failures"))
	}
	if e.Healthy < e.Size {
		fmt.Fprintf(&b, ", %d healthy", e.Healthy)
	}
	if !e.HasQuorum {
		b.WriteString(", QUORUM LOST")
	}
	var parts []string
	for _, d := range r.Datacenters {
		if d.Name == unlabeledDC || d.Lost {
			continue
		}
		parts = append(parts, d.Name+" "+yesNo(d.SurvivesLoss))
	}
	if len(parts) > 0 {
		b.WriteString("; survives loss of: " + strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, " [source: %s]", e.Source)
	return b.String()
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

func printStatusTable(out io.Writer, r *StatusReport, wide bool) error {
	fmt.Fprintln(out, verdictLine(r))
	fmt.Fprintln(out)
	w := newTabWriter(out)
	header := "DATACENTER\tSURVIVES LOSS\tNODES\tCONTROL-PLANE\tETCD\tAPI SERVERS\tPINNED\tVIOLATIONS"
	if wide {
		header += "\tMEMBERS\tNODE NAMES"
	}
	fmt.Fprintln(w, header)
	for _, d := range r.Datacenters {
		name := d.Name
		if d.Lost {
			name += " (lost)"
		}
		etcd := fmt.Sprintf("%d/%d", d.HealthyVoters, d.Voters)
		if d.Leader {
			etcd += "*"
		}
		if d.Learners > 0 {
			etcd += fmt.Sprintf(" +%dL", d.Learners)
		}
		survives := yesNo(d.SurvivesLoss)
		if d.Name == unlabeledDC || d.Lost {
			// Already gone in the what-if: there is nothing left to lose.
			survives = "-"
		}
		violations := "-"
		if d.Violations != nil {
			violations = fmt.Sprint(*d.Violations)
		}
		fmt.Fprintf(w, "%s\t%s\t%d/%d/%d\t%d\t%s\t%d/%d\t%d\t%s", name, survives, d.Nodes.Total, d.Nodes.Ready, d.Nodes.Cordoned, d.ControlPlane, etcd, d.APIServersUp, d.APIServers, d.Pinned, violations)
		if wide {
			fmt.Fprintf(w, "\t%s\t%s", dash(strings.Join(d.Members, ",")), dash(joinSome(d.NodeNames, 12)))
		}
		fmt.Fprintln(w)
	}
	if err := w.Flush(); err != nil {
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
	if wi := r.WhatIf; wi != nil {
		fmt.Fprintf(out, "\nWhat if %s were lost: etcd %s (%d voters left, quorum %d), %d API servers and %d ready nodes left, %d workloads lose every replica, %d PDBs violated.\n",
			strings.Join(wi.Lose, ", "), map[bool]string{true: "keeps quorum", false: "LOSES QUORUM"}[wi.HasQuorum], wi.VotersLeft, r.Etcd.Quorum,
			wi.APIServersLeft, wi.NodesLeft, len(wi.LostWorkloads), len(wi.ViolatedPDBs))
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
	if len(r.Etcd.Notes) > 0 && wide {
		fmt.Fprintln(out, "\netcd notes:")
		for _, n := range r.Etcd.Notes {
			fmt.Fprintf(out, "  %s\n", n)
		}
	}
	return nil
}

func sumRows(r *StatusReport) int {
	n := 0
	for _, d := range r.Datacenters {
		if d.Violations != nil {
			n += *d.Violations
		}
	}
	return n
}

func statusPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// joinSome joins the first n names and says how many more there are.
func joinSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ",")
	}
	return strings.Join(names[:n], ",") + fmt.Sprintf(",... (%d more)", len(names)-n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
