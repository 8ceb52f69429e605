// Package check is `kubectl dc check`: the PlacementPolicy rules of
// dc-webhook run over manifests offline, or over the live objects of the
// cluster (LiveResults, which kubectl dc status counts too).
package check

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// checkOutputs are the formats of `kubectl dc check -o`.
var checkOutputs = []string{cmdutil.OutputTable, cmdutil.OutputWide, cmdutil.OutputJSON, cmdutil.OutputYAML}

var checkLong = `Check workloads against PlacementPolicies with the same rules as the
dc-webhook admission webhook, offline from files or live in the cluster.

Objects judged: Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
CronJob, ReplicationController, PodTemplate, and the kinds a policy declares
in spec.workloadKinds with the path of their pod template. A rule selects a
workload by its own labels or the labels of any of its pod templates. In -f
inputs, PlacementPolicy documents are used as policies, Node and Namespace
documents as the known cluster, and other kinds are counted in one note
(--verbose lists them); kinds that look like workloads are named, with the hint to
declare them. Lists (kind List, or DeploymentList and the like) are expanded.

Offline, every object first gets the mutation of dc-webhook's /mutate (the
nodeSelector of a datacenterFromLabel rule), which is shown, so that an
object is denied offline exactly when it is denied at admission. Every
result names its source: FILE#DOCUMENT:LINE ("-" for live objects).
Documents that share a kind, namespace and name are each judged.

Objects without a namespace take -n, else the namespace of the kubeconfig
context, else default. A rule's namespaceSelector is evaluated against the
Namespace documents of the input, else --namespace-labels, else the live
namespace when a cluster is reachable; when none says, the rule is applied
and a warning names it.

Policies come from --policy files and PlacementPolicy documents in -f inputs;
when neither gives one, they are listed from the cluster. When the policy does
not list its datacenters, the known datacenters are the values of its
datacenter label on the Nodes of --nodes FILE (offline) or of the cluster.

Checked against the cluster, an object that already exists there is judged
as dc-webhook judges its update (kubectl apply, replace): on what it changes,
so that a scale-down or an image change of a workload admitted before a rule
passes, and a pod relabelled into a datacenterFromLabel rule gets no
nodeSelector (an existing pod's cannot change). A member pod takes the N of a
spread rule from its owning StatefulSet in the cluster.

With --live, the live objects of every namespace (or of -n NAMESPACE) are
judged against the live Nodes, Namespaces, Pods and StatefulSets. A violation
of a pod that its controller (ReplicaSet, Deployment, Job, ...) already shows
for the same rule and field is reported once, on the controller. --cluster
NAME is kubectl's: the kubeconfig cluster to talk to.

Exit status: 0 when no Deny rule is broken (Warn and Audit violations are
listed but pass), 1 when at least one is, 2 on bad input or usage (each bad
file is named with what to do, and the good ones are still judged) or when
the check could not run (cluster unreachable).`

var checkExample = `  # Check the manifests of a directory tree against a policy file, offline
  kubectl dc check -f deploy/ -R --policy policy.yaml

  # Check one manifest against the policies installed in the cluster
  kubectl dc check -f deployment.yaml

  # Check rendered manifests from standard input, with the known nodes saved earlier
  helm template web ./chart | kubectl dc check -f - --policy policy.yaml --nodes nodes.yaml

  # Check Helm output for namespace team-a, whose labels the rules select on
  helm template web ./chart | kubectl dc check -f - -n team-a --namespace-labels team-a=env=prod --policy policy.yaml

  # Check every live workload against the live policies, as JSON
  kubectl dc check --live -o json

  # Check the live workloads of one namespace of the kubeconfig cluster prod against a candidate policy
  kubectl dc check --live --cluster prod -n team-a --policy new-policy.yaml`

// Options are the options of `kubectl dc check`.
type Options struct {
	genericiooptions.IOStreams

	// Filenames are the -f arguments: files, directories or "-".
	Filenames []string
	// Recursive reads the subdirectories of directories in Filenames.
	Recursive bool
	// PolicyFiles are the --policy files; empty means the policies of -f
	// inputs, else the live ones.
	PolicyFiles []string
	// NodesFile is the --nodes file of Node objects known offline.
	NodesFile string
	// NamespaceLabels are the --namespace-labels values,
	// "NAMESPACE=KEY=VALUE,KEY=VALUE": the labels of namespaces the input
	// has no Namespace document for.
	NamespaceLabels []string
	// Live judges the live objects instead of files.
	Live bool
	// AllNamespaces makes --live explicit about every namespace (the
	// default); it excludes -n.
	AllNamespaces bool
	// Verbose lists every skipped object instead of a count.
	Verbose bool
	// Output is table, wide, json or yaml.
	Output string

	config *genericclioptions.ConfigFlags
	// clusterAlias is set by --cluster given without a value: the
	// deprecated spelling of --live.
	clusterAlias bool
	// namespace is -n for --live ("" = all) or, for -f, the namespace
	// of objects that name none; nsFrom says where it came from.
	namespace string
	nsFrom    string
	// clientset and dynamicClient talk to the cluster; Complete builds them
	// when nil and the check needs the cluster. Tests set fakes.
	clientset     kubernetes.Interface
	dynamicClient dynamic.Interface
}

// NewOptions returns Options with the defaults of the flags.
func NewOptions(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *Options {
	return &Options{IOStreams: streams, config: config, Output: cmdutil.OutputTable}
}

// NewCmdCheck returns `kubectl dc check`.
func NewCmdCheck(config *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdCheck(NewOptions(config, streams))
}

// liveAlias is the value --cluster takes when given without one.
const liveAlias = "(live)"

// clusterFlag is check's --cluster. With a value it is kubectl's --cluster
// NAME, the kubeconfig cluster; without, the deprecated spelling of --live.
// check must own the flag to tell the two apart: pflag gives a flag without
// a value its NoOptDefVal.
type clusterFlag struct{ o *Options }

func (f clusterFlag) String() string {
	if f.o.config != nil && f.o.config.ClusterName != nil {
		return *f.o.config.ClusterName
	}
	return ""
}

func (f clusterFlag) Set(v string) error {
	if v == liveAlias {
		f.o.clusterAlias = true
		return nil
	}
	if f.o.config != nil && f.o.config.ClusterName != nil {
		*f.o.config.ClusterName = v
	}
	return nil
}

func (f clusterFlag) Type() string { return "string" }

// newCmdCheck binds the flags of check to o, whose clients tests may set.
func newCmdCheck(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "check (-f FILE|DIR ... | --live) [--policy FILE] [-o table|wide|json|yaml]",
		Short:   "Check workloads against PlacementPolicies, offline or live",
		Long:    checkLong,
		Example: checkExample,
		// One argument is allowed only after a bare --cluster: the
		// kubeconfig cluster written as --cluster NAME.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.completeArgs(args); err != nil {
				return err
			}
			if err := o.Complete(cmd); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.Filenames, "filename", "f", nil, "File, directory or - (stdin) of manifests to check; repeatable. Directories yield their .yaml, .yml and .json files.")
	f.BoolVarP(&o.Recursive, "recursive", "R", false, "Read the subdirectories of -f directories too.")
	f.StringArrayVar(&o.PolicyFiles, "policy", nil, "PlacementPolicy file to check against instead of the cluster's policies; repeatable.")
	f.StringVar(&o.NodesFile, "nodes", "", "File of Node objects (kubectl get nodes -o yaml) whose datacenter labels are the known datacenters when a policy lists none.")
	f.StringArrayVar(&o.NamespaceLabels, "namespace-labels", nil, "Labels of a namespace the input has no Namespace document for, as NAMESPACE=KEY=VALUE,KEY=VALUE; repeatable. Rules with a namespaceSelector read them.")
	f.BoolVar(&o.Live, "live", false, "Check the live objects of the cluster instead of files.")
	cf := f.VarPF(clusterFlag{o}, "cluster", "", "The `NAME` of the kubeconfig cluster to use, as in every kubectl verb. Without a value: deprecated spelling of --live.")
	cf.NoOptDefVal = liveAlias
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "With --live, check every namespace (the default unless -n is given).")
	f.BoolVar(&o.Verbose, "verbose", false, "List every skipped object, not only their count.")
	cmdutil.AddOutputFlag(cmd, &o.Output, checkOutputs...)
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	_ = cmd.MarkFlagFilename("policy", "yaml", "yml", "json")
	_ = cmd.MarkFlagFilename("nodes", "yaml", "yml", "json")
	return cmd
}

// completeArgs reads `--cluster NAME` written with a space: pflag leaves
// NAME as an argument after a flag that may go without a value.
func (o *Options) completeArgs(args []string) error {
	switch {
	case len(args) == 0:
	case len(args) == 1 && o.clusterAlias:
		o.clusterAlias = false
		return clusterFlag{o}.Set(args[0])
	default:
		return cmdutil.UsageError(fmt.Errorf("unexpected argument %q: check takes files with -f FILE, or --live", args[0]))
	}
	if o.clusterAlias {
		o.clusterAlias = false
		o.Live = true
		o.notef("Warning: check --cluster without a value is deprecated: use --live (--cluster NAME is kubectl's kubeconfig cluster)\n")
	}
	return nil
}

// Complete fills what the flags leave open: the namespace.
func (o *Options) Complete(_ *cobra.Command) error {
	nsFlag := ""
	if o.config != nil && o.config.Namespace != nil {
		nsFlag = *o.config.Namespace
	}
	switch {
	case o.Live:
		o.namespace = nsFlag
	case nsFlag != "":
		o.namespace, o.nsFrom = nsFlag, "-n"
	default:
		o.namespace, o.nsFrom = metav1.NamespaceDefault, "default"
		if o.config != nil {
			// A missing or broken kubeconfig must not stop an offline check.
			if ns, _, err := o.config.ToRawKubeConfigLoader().Namespace(); err == nil && ns != "" && contextNamesNamespace(o.config) {
				o.namespace, o.nsFrom = ns, "the kubeconfig context"
			}
		}
	}
	return nil
}

// contextNamesNamespace reports whether the kubeconfig's current context
// sets a namespace (default included).
func contextNamesNamespace(config *genericclioptions.ConfigFlags) bool {
	raw, err := config.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return false
	}
	name := raw.CurrentContext
	if config.Context != nil && *config.Context != "" {
		name = *config.Context
	}
	ctx := raw.Contexts[name]
	return ctx != nil && ctx.Namespace != ""
}

// Validate checks the flags, which together must name one kind of input.
func (o *Options) Validate() error {
	var errs []error
	switch {
	case len(o.Filenames) == 0 && !o.Live:
		errs = append(errs, errors.New("nothing to check: pass -f FILE|DIR (or - for stdin), or --live for the live objects"))
	case len(o.Filenames) > 0 && o.Live:
		errs = append(errs, errors.New("-f and --live exclude each other: check files or the live cluster, not both"))
	}
	if o.Recursive && len(o.Filenames) == 0 {
		errs = append(errs, errors.New("-R/--recursive applies to -f directories: add -f DIR"))
	}
	if o.Live && o.NodesFile != "" {
		errs = append(errs, errors.New("--nodes is for offline checks: --live reads the live Nodes; drop --nodes"))
	}
	if o.Live && len(o.NamespaceLabels) > 0 {
		errs = append(errs, errors.New("--namespace-labels is for offline checks: --live reads the live Namespaces; drop --namespace-labels"))
	}
	if o.AllNamespaces && !o.Live {
		errs = append(errs, errors.New("-A/--all-namespaces applies to --live: objects of -f files keep their own namespaces"))
	}
	if o.AllNamespaces && o.Live && o.namespace != "" {
		errs = append(errs, fmt.Errorf("-A and -n %s exclude each other: drop one", o.namespace))
	}
	for _, v := range o.NamespaceLabels {
		if _, err := parseNamespaceLabels(v); err != nil {
			errs = append(errs, err)
		}
	}
	stdin := 0
	for _, f := range append(append([]string{o.NodesFile}, o.Filenames...), o.PolicyFiles...) {
		if f == "-" {
			stdin++
		}
	}
	if stdin > 1 {
		errs = append(errs, errors.New("standard input (-) can be read once: give - to only one of -f, --policy and --nodes"))
	}
	if err := cmdutil.ValidateOutput(o.Output, checkOutputs...); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return cmdutil.UsageError(utilerrors.NewAggregate(errs))
	}
	return nil
}

// parseNamespaceLabels reads "NAMESPACE=KEY=VALUE,KEY=VALUE" into a
// Namespace.
func parseNamespaceLabels(v string) (*corev1.Namespace, error) {
	name, rest, ok := strings.Cut(v, "=")
	bad := func(why string) error {
		return fmt.Errorf("--namespace-labels %q: %s: write NAMESPACE=KEY=VALUE,KEY=VALUE, for example team-a=env=prod,tier=web", v, why)
	}
	if !ok || name == "" {
		return nil, bad("no namespace")
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return nil, bad("namespace " + strconv.Quote(name) + ": " + errs[0])
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelMetadataName: name}}}
	if rest == "" {
		return ns, nil
	}
	for _, kv := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, bad(strconv.Quote(kv) + " is not KEY=VALUE")
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, bad("label key " + strconv.Quote(k) + ": " + errs[0])
		}
		if errs := validation.IsValidLabelValue(val); len(errs) > 0 {
			return nil, bad("label value " + strconv.Quote(val) + ": " + errs[0])
		}
		ns.Labels[k] = val
	}
	return ns, nil
}

// sourcedPolicy is a policy with where it came from.
type sourcedPolicy struct {
	policy v1alpha1.PlacementPolicy
	where  string
}

// checkInputs is what the files hold, sorted by role.
type checkInputs struct {
	// decoded are the documents of -f, in input order, sorted into
	// workloads once the policies (and their declared kinds) are known.
	decoded []decodedObject
	// items are the objects to judge, in input order.
	items []item
	// policies are the PlacementPolicies found.
	policies []sourcedPolicy
	// state are the Nodes, Namespaces (and, for lookups by the rules, the
	// Pods and StatefulSets among objects).
	state []runtime.Object
	// hasNodes reports whether the files held any Node.
	hasNodes bool
	// namespaces are the names of the Namespace documents and
	// --namespace-labels.
	namespaces map[string]bool
	// bad are the bad files and documents: each is reported, the rest
	// judged, and the check exits 2.
	bad []error
	// skipped counts the objects of kinds without a pod template.
	skipped skippedKinds
}

// outcome is what a check found.
type outcome struct {
	results []sourcedResult
	checked int
	// mutations are what the webhook's mutation injected offline.
	mutations []mutation
	// defaulted counts the objects that named no namespace and took
	// o.namespace.
	defaulted int
	bad       []error
}

// Run checks and prints. Its error is an *cmdutil.ExitError: code 1 after printing
// when a Deny rule is broken, 2 on bad input or when the check cannot run.
func (o *Options) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	out, err := o.check(ctx)
	if err != nil {
		var exit *cmdutil.ExitError
		if errors.As(err, &exit) {
			return err
		}
		return cmdutil.UsageError(err)
	}
	report := o.newCheckReport(out)
	if err := o.print(report); err != nil {
		return cmdutil.UsageError(fmt.Errorf("writing the report: %w", err))
	}
	if len(out.bad) > 0 {
		for _, e := range out.bad[:len(out.bad)-1] {
			o.notef("error: %v\n", e)
		}
		return cmdutil.UsageError(out.bad[len(out.bad)-1])
	}
	if hasDeny(out.results) {
		return &cmdutil.ExitError{Code: cmdutil.ExitFindings}
	}
	return nil
}

// check gathers policies, objects and state, and judges every object.
func (o *Options) check(ctx context.Context) (*outcome, error) {
	in := checkInputs{namespaces: map[string]bool{}}
	if len(o.Filenames) > 0 {
		files, err := readInputs(o.Filenames, o.Recursive, o.In)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			objs, err := decodeFile(f)
			if err != nil {
				in.bad = append(in.bad, err)
				continue
			}
			in.decoded = append(in.decoded, objs...)
		}
		var err2 error
		if in.decoded, err2 = o.sortState(in.decoded, &in); err2 != nil {
			return nil, err2
		}
	}
	for _, p := range o.PolicyFiles {
		if err := o.readPolicies(p, &in); err != nil {
			return nil, err
		}
	}
	if o.NodesFile != "" {
		if err := o.readNodes(&in); err != nil {
			return nil, err
		}
	}
	for _, v := range o.NamespaceLabels {
		ns, _ := parseNamespaceLabels(v) // Validate has parsed it
		if !in.namespaces[ns.Name] {
			in.state = append(in.state, ns)
			in.namespaces[ns.Name] = true
		}
	}
	policies, err := validatePolicies(in.policies)
	if err != nil {
		return nil, err
	}
	// Policies given by file make the check offline, except for --live.
	live := o.Live || len(policies) == 0
	if live {
		if err := o.completeClients(); err != nil {
			return nil, err
		}
	}
	if len(policies) == 0 {
		if policies, err = o.livePolicies(ctx); err != nil {
			return nil, err
		}
	}
	engine, err := newEngine(policies)
	if err != nil {
		return nil, err
	}
	out := &outcome{}
	if !o.Live {
		for _, d := range in.decoded {
			o.sortWorkload(d, engine, &in)
		}
		for _, it := range in.items {
			if it.defaulted {
				out.defaulted++
			}
		}
		o.noteSkipped(&in.skipped)
		noteSharedIdentities(o.ErrOut, in.items)
		if len(in.items) == 0 {
			if len(in.bad) > 0 {
				out.bad = in.bad
				return out, nil
			}
			return nil, fmt.Errorf("-f %s: no objects to check: the input holds no %s, and no kind a policy declares", strings.Join(o.Filenames, ", "), judgedKinds)
		}
	}

	var state *policy.StaticState
	var ownerOf map[objectKey]objectKey
	switch {
	case o.Live:
		l, err := o.readLive(ctx, engine)
		if err != nil {
			return nil, err
		}
		in.items = nil
		for _, obj := range l.Objects {
			in.items = append(in.items, item{obj: obj})
		}
		ownerOf = l.owners
		state = policy.NewStaticState(l.State...)
		if len(in.items) == 0 {
			where := "the cluster"
			if o.namespace != "" {
				where = "namespace " + o.namespace
			}
			o.notef("note: %s has no %s to check\n", where, judgedKinds)
		}
	case live:
		// -f against the live policies: the live cluster is the known
		// state, with the Nodes of --nodes instead of the live ones if given.
		st, err := o.listLiveState(ctx, engine, !in.hasNodes)
		if err != nil {
			return nil, err
		}
		owners, err := o.liveOwners(ctx, in.items)
		if err != nil {
			return nil, err
		}
		// The file's own StatefulSets come last and replace the live ones.
		state = policy.NewStaticState(append(append(st, owners...), in.state...)...)
		if err := o.readLiveVersions(ctx, engine, in.items); err != nil {
			return nil, err
		}
		if n := countUpdates(in.items); n > 0 {
			o.notef("note: %s already in the cluster: judged as updates of the live objects, on what they change, as dc-webhook judges kubectl apply\n", plural(n, "object", "objects"))
		}
	default:
		state = policy.NewStaticState(in.state...)
		o.completeNamespaces(ctx, engine, state, in.items)
	}
	if !o.Live {
		o.warnUnknownNamespaces(engine, state, in.items)
		out.mutations = mutate(engine, in.items, state)
		for _, m := range out.mutations {
			o.notef("mutated: %s %s: %s=%s, as dc-webhook's mutation injects it\n", m.Source, refString(m.Object), m.Field, m.Value)
		}
	}
	results, errs := judge(ctx, engine, in.items, state, ownerOf)
	out.results, out.checked = results, len(in.items)
	for _, e := range errs {
		if o.Live {
			o.notef("warning: %v\n", e)
			continue
		}
		in.bad = append(in.bad, e)
	}
	out.bad = in.bad
	return out, nil
}

// countUpdates counts the items judged as updates of a live object.
func countUpdates(items []item) int {
	n := 0
	for _, it := range items {
		if it.old != nil {
			n++
		}
	}
	return n
}

// readLive reads the snapshot --live judges: the judged kinds in the
// namespace scope, and with -n the member pods of other namespaces, and
// the objects of the kinds the policies declare.
func (o *Options) readLive(ctx context.Context, engine *policy.Engine) (*Live, error) {
	snap, err := cluster.Read(ctx, o.clientset, nil, cluster.Options{Namespaces: true, Namespace: o.namespace, Pods: true, Workloads: true})
	if err != nil {
		return nil, fmt.Errorf("reading the cluster: %w", err)
	}
	if len(snap.Forbidden) > 0 {
		return nil, fmt.Errorf("%w; kubectl dc check needs the permissions of manifests/rbac/check.yaml (docs/rbac.md)", snap.ForbiddenError())
	}
	var extra []*corev1.Pod
	if o.namespace != "" {
		members, err := listMemberPods(ctx, o.clientset, engine)
		if err != nil {
			return nil, err
		}
		for _, p := range members {
			if p.Namespace != o.namespace {
				extra = append(extra, p)
			}
		}
	}
	l := LiveObjects(snap, extra)
	declared, err := o.listDeclared(ctx, engine)
	if err != nil {
		return nil, err
	}
	l.Objects = append(l.Objects, declared...)
	return l, nil
}

// notef writes a note or warning to ErrOut; a failed write to stderr has
// nowhere to be reported.
func (o *Options) notef(format string, args ...any) {
	_, _ = fmt.Fprintf(o.ErrOut, format, args...)
}

// judgedKinds names the kinds check judges, for messages: "Pod,
// Deployment, ... or PodTemplate", from policy's kind table.
var judgedKinds = func() string {
	ks := policy.JudgedKinds()
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = k.Kind
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}()

// sortState files the policies, Nodes and Namespaces of decoded into in
// and returns the rest, the would-be workloads.
func (o *Options) sortState(decoded []decodedObject, in *checkInputs) ([]decodedObject, error) {
	var rest []decodedObject
	for _, d := range decoded {
		switch obj := d.obj.(type) {
		case *v1alpha1.PlacementPolicy:
			if d.unknownFields != "" {
				// A misspelt field would silently drop a rule.
				return nil, fmt.Errorf("%s: placementpolicy %q: %s: fix or remove the field", d.where, obj.Name, d.unknownFields)
			}
			in.policies = append(in.policies, sourcedPolicy{policy: *obj, where: d.where})
		case *v1alpha1.PlacementPolicyList:
			if d.unknownFields != "" {
				return nil, fmt.Errorf("%s: %s: fix or remove the field", d.where, d.unknownFields)
			}
			for i := range obj.Items {
				in.policies = append(in.policies, sourcedPolicy{policy: obj.Items[i], where: fmt.Sprintf("%s, item %d", d.where, i+1)})
			}
		case *corev1.Node:
			o.warnUnknownFields(d)
			in.state = append(in.state, obj)
			in.hasNodes = true
		case *corev1.Namespace:
			o.warnUnknownFields(d)
			in.state = append(in.state, obj)
			in.namespaces[obj.Name] = true
		default:
			rest = append(rest, d)
		}
	}
	return rest, nil
}

func (o *Options) warnUnknownFields(d decodedObject) {
	if d.unknownFields != "" && d.obj != nil {
		o.notef("warning: %s: %s%s: %s\n", d.where, kindName(d.obj), objectName(d.obj), d.unknownFields)
	}
}

// sortWorkload files one document that is neither a policy nor cluster
// state: a judged kind or a declared one becomes an item; an old version
// of a judged kind is bad input; anything else is counted as skipped.
func (o *Options) sortWorkload(d decodedObject, engine *policy.Engine, in *checkInputs) {
	if d.obj == nil {
		u := d.unregistered
		if u == nil {
			in.skipped.add(d, o.Verbose)
			return
		}
		if use, old := oldVersion(d.gvk); old {
			in.bad = append(in.bad, oldVersionError(d, use))
			return
		}
		if _, ok := engine.DeclaredKindFor(d.gvk.GroupKind()); ok {
			in.items = append(in.items, o.newItem(u, d))
			return
		}
		in.skipped.add(d, o.Verbose)
		return
	}
	obj := d.obj
	if !judged(obj) {
		if use, old := oldVersion(d.gvk); old {
			in.bad = append(in.bad, oldVersionError(d, use))
			return
		}
		in.skipped.add(d, o.Verbose)
		return
	}
	o.warnUnknownFields(d)
	in.items = append(in.items, o.newItem(obj, d))
	switch obj.(type) {
	case *corev1.Pod, *appsv1.StatefulSet:
		// Spread rules count member pods and read StatefulSet replicas.
		in.state = append(in.state, obj)
	}
}

// newItem is the item of a decoded object, in o.namespace when it names
// none.
func (o *Options) newItem(obj runtime.Object, d decodedObject) item {
	it := item{obj: obj, src: d.src}
	if m, err := meta.Accessor(obj); err == nil && m.GetNamespace() == "" {
		m.SetNamespace(o.namespace)
		it.defaulted = true
	}
	return it
}

// readPolicies reads one --policy file.
func (o *Options) readPolicies(path string, in *checkInputs) error {
	files, err := readInputs([]string{path}, false, o.In)
	if err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	before := len(in.policies)
	if err := o.readStateFiles(files, in); err != nil {
		return err
	}
	if len(in.policies) == before {
		return fmt.Errorf("--policy %s: no PlacementPolicy in the file: it needs apiVersion: %s and kind: PlacementPolicy", path, v1alpha1.GroupVersion)
	}
	return nil
}

// readStateFiles decodes --policy and --nodes files into in; their
// workloads are skipped with a note.
func (o *Options) readStateFiles(files []inputFile, in *checkInputs) error {
	for _, f := range files {
		objs, err := decodeFile(f)
		if err != nil {
			return err
		}
		rest, err := o.sortState(objs, in)
		if err != nil {
			return err
		}
		for _, d := range rest {
			if d.obj != nil && judged(d.obj) {
				o.notef("note: %s: skipped %s%s: workloads are checked from -f, not from this file\n", d.where, kindName(d.obj), objectName(d.obj))
			}
		}
	}
	return nil
}

// validatePolicies validates every policy given by file, naming the file
// and field of each problem, and refuses two policies of the same name.
func validatePolicies(sps []sourcedPolicy) ([]v1alpha1.PlacementPolicy, error) {
	var errs []error
	seen := map[string]string{}
	out := make([]v1alpha1.PlacementPolicy, 0, len(sps))
	for _, sp := range sps {
		if sp.policy.Name == "" {
			errs = append(errs, fmt.Errorf("%s: placementpolicy has no metadata.name: name it", sp.where))
			continue
		}
		if prev, ok := seen[sp.policy.Name]; ok {
			errs = append(errs, fmt.Errorf("%s: placementpolicy %q is also defined at %s: keep one", sp.where, sp.policy.Name, prev))
			continue
		}
		seen[sp.policy.Name] = sp.where
		for _, e := range policy.ValidatePolicy(&sp.policy) {
			errs = append(errs, fmt.Errorf("%s: placementpolicy %q: %s", sp.where, sp.policy.Name, e.Error()))
		}
		out = append(out, sp.policy)
	}
	if len(errs) > 0 {
		return nil, utilerrors.NewAggregate(errs)
	}
	return out, nil
}

// readNodes adds the Nodes (and Namespaces) of --nodes to the state.
func (o *Options) readNodes(in *checkInputs) error {
	files, err := readInputs([]string{o.NodesFile}, false, o.In)
	if err != nil {
		return fmt.Errorf("--nodes: %w", err)
	}
	nin := checkInputs{namespaces: in.namespaces}
	if err := o.readStateFiles(files, &nin); err != nil {
		return err
	}
	if !nin.hasNodes {
		return fmt.Errorf("--nodes %s: no Node in the file: save them with kubectl get nodes -o yaml", o.NodesFile)
	}
	in.state = append(in.state, nin.state...)
	in.hasNodes = true
	return nil
}

// newEngine builds the engine, refusing to run without a policy.
func newEngine(policies []v1alpha1.PlacementPolicy) (*policy.Engine, error) {
	if len(policies) == 0 {
		return nil, errors.New("no PlacementPolicy to check against: pass --policy FILE, or create one in the cluster (the MacStadium example is in the kubectl-dc README)")
	}
	return policy.NewEngine(policies)
}

// completeClients builds the clients from the kubeconfig flags unless set.
func (o *Options) completeClients() error {
	if o.clientset != nil && o.dynamicClient != nil {
		return nil
	}
	if o.config == nil {
		return errors.New("no kubeconfig: pass --policy FILE to check offline")
	}
	c, err := cmdutil.NewFactory(o.config).Clients()
	if err != nil {
		return fmt.Errorf("%w; to check offline instead, pass --policy FILE", err)
	}
	if o.clientset == nil {
		o.clientset = c.Kube
	}
	if o.dynamicClient == nil {
		o.dynamicClient = c.Dynamic
	}
	return nil
}

// livePolicies lists the PlacementPolicies of the cluster. Policies that
// cannot be decoded or compiled are warned about and left out.
func (o *Options) livePolicies(ctx context.Context) ([]v1alpha1.PlacementPolicy, error) {
	ps, err := cluster.ReadPolicies(ctx, o.dynamicClient)
	if err != nil {
		return nil, fmt.Errorf("%w (pass --policy FILE to check offline)", err)
	}
	switch {
	case !ps.Installed:
		return nil, errors.New("the cluster has no PlacementPolicy API: install the CRD (kubectl apply -k manifests/ of kubectl-dc), or pass --policy FILE to check offline")
	case ps.Forbidden != nil:
		return nil, fmt.Errorf("listing PlacementPolicies: %w (pass --policy FILE to check offline)", ps.Forbidden)
	}
	for _, w := range ps.Warnings {
		o.notef("Warning: %s\n", w)
	}
	switch {
	case len(ps.Items) == 0:
		return nil, errors.New("the cluster has no PlacementPolicy: create one (the MacStadium example is in the kubectl-dc README) or pass --policy FILE")
	}
	return ps.Items, nil
}

// listLiveState lists what the rules look up when -f objects are checked
// against the live cluster: Namespaces, the member pods of spread rules,
// and the Nodes unless a --nodes file replaces them.
func (o *Options) listLiveState(ctx context.Context, engine *policy.Engine, nodes bool) ([]runtime.Object, error) {
	snap, err := cluster.Read(ctx, o.clientset, nil, cluster.Options{Namespaces: true})
	if err != nil {
		return nil, fmt.Errorf("reading the cluster: %w", err)
	}
	var state []runtime.Object
	if nodes {
		for _, n := range snap.Nodes {
			state = append(state, n)
		}
	}
	for _, ns := range snap.Namespaces {
		state = append(state, ns)
	}
	members, err := listMemberPods(ctx, o.clientset, engine)
	if err != nil {
		return nil, err
	}
	for _, p := range members {
		state = append(state, p)
	}
	return state, nil
}

// listMemberPods lists the member pods of every pods spread rule, with one
// label-selected LIST per rule and namespace.
func listMemberPods(ctx context.Context, client kubernetes.Interface, engine *policy.Engine) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	seen := map[string]bool{}
	l := cluster.Lister{Client: client}
	for _, ms := range engine.MemberPodSelectors() {
		namespaces := ms.Namespaces
		if len(namespaces) == 0 {
			namespaces = []string{metav1.NamespaceAll}
		}
		for _, ns := range namespaces {
			_, err := l.Each(ctx, cluster.GVRPods, ns, metav1.ListOptions{LabelSelector: ms.Selector.String()}, func(obj runtime.Object) {
				p := obj.(*corev1.Pod)
				if key := p.Namespace + "/" + p.Name; !seen[key] {
					seen[key] = true
					out = append(out, p)
				}
			})
			if err != nil {
				return nil, fmt.Errorf("listing the member pods of %s: %w", ms.Rule, err)
			}
		}
	}
	return out, nil
}

// objectKey identifies an object among those checked.
type objectKey struct {
	kind, namespace, name string
}

func keyOf(obj runtime.Object) objectKey {
	ref := policy.ObjectRefOf(obj)
	return objectKey{kind: ref.Kind, namespace: ref.Namespace, name: ref.Name}
}

// Live is what check --live judges: the judged objects of a snapshot, the
// state the rules look up, and each object's checked controller.
type Live struct {
	Objects []runtime.Object
	State   []runtime.Object
	// owners maps a checked object to its controller, when that is checked.
	owners map[objectKey]objectKey
}

// LiveObjects returns what check --live judges in a snapshot read with
// Pods and Workloads. extraMembers are member pods outside the snapshot's
// namespace scope: spread rules count members in every namespace.
func LiveObjects(snap *cluster.Snapshot, extraMembers []*corev1.Pod) *Live {
	l := &Live{owners: map[objectKey]objectKey{}}
	for _, n := range snap.Nodes {
		l.State = append(l.State, n)
	}
	for _, ns := range snap.Namespaces {
		l.State = append(l.State, ns)
	}
	for _, p := range snap.Pods {
		l.Objects = append(l.Objects, p)
		l.State = append(l.State, p)
	}
	for _, p := range extraMembers {
		l.State = append(l.State, p)
	}
	for _, w := range snap.Workloads {
		l.Objects = append(l.Objects, w)
		if _, ok := w.(*appsv1.StatefulSet); ok {
			l.State = append(l.State, w)
		}
	}
	checked := map[objectKey]bool{}
	for _, obj := range l.Objects {
		checked[keyOf(obj)] = true
	}
	for _, obj := range l.Objects {
		m, err := meta.Accessor(obj)
		if err != nil {
			continue
		}
		key := keyOf(obj)
		if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
			owner := objectKey{kind: ref.Kind, namespace: key.namespace, name: ref.Name}
			if checked[owner] {
				l.owners[key] = owner
			}
		}
	}
	return l
}

// LiveResults judges the live objects of a snapshot with its policies, as
// `kubectl dc check --live` reports them: a result a checked controller
// also shows for the same rule and field is shown once, on the controller.
// status counts these same results per datacenter.
func LiveResults(snap *cluster.Snapshot) (policy.Results, error) {
	engine, err := policy.NewEngine(snap.Policies.Items)
	if err != nil {
		return nil, err
	}
	l := LiveObjects(snap, nil)
	items := make([]item, len(l.Objects))
	for i, obj := range l.Objects {
		items[i] = item{obj: obj}
	}
	srs, _ := judge(context.Background(), engine, items, policy.NewStaticState(l.State...), l.owners)
	out := make(policy.Results, len(srs))
	for i := range srs {
		out[i] = srs[i].Result
	}
	return out, nil
}
