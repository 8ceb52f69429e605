// Package check is `kubectl dc check`: the PlacementPolicy rules of
// dc-webhook run over manifests offline, or over the live objects of the
// cluster (LiveResults, which kubectl dc status counts too).
package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
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
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
)

// checkOutputs are the formats of `kubectl dc check -o`.
var checkOutputs = []string{cmdutil.OutputTable, cmdutil.OutputJSON, cmdutil.OutputYAML}

var checkLong = `Check workloads against PlacementPolicies with the same rules as the
dc-webhook admission webhook, offline from files or live in the cluster.

Objects judged: Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
CronJob, ReplicationController and PodTemplate. In -f inputs, PlacementPolicy
documents are used as policies, Node and Namespace documents as the known
cluster, and any other kind is skipped with a note on stderr. Lists (kind
List, or DeploymentList and the like) are expanded.

Policies come from --policy files and PlacementPolicy documents in -f inputs;
when neither gives one, they are listed from the cluster. When the policy does
not list its datacenters, the known datacenters are the values of its
datacenter label on the Nodes of --nodes FILE (offline) or of the cluster.

With --cluster, the live objects of every namespace (or of -n NAMESPACE) are
judged against the live Nodes, Namespaces, Pods and StatefulSets. A violation
of a pod that its controller (ReplicaSet, Deployment, Job, ...) already shows
for the same rule and field is reported once, on the controller.

Exit status: 0 when no Deny rule is broken (Warn and Audit violations are
listed but pass), 1 when at least one is, 2 on bad input or usage (the
message names the file, document and line, or the policy field) or when the
check could not run (cluster unreachable).`

var checkExample = `  # Check the manifests of a directory tree against a policy file, offline
  kubectl dc check -f deploy/ -R --policy policy.yaml

  # Check one manifest against the policies installed in the cluster
  kubectl dc check -f deployment.yaml

  # Check rendered manifests from standard input, with the known nodes saved earlier
  helm template web ./chart | kubectl dc check -f - --policy policy.yaml --nodes nodes.yaml

  # Check every live workload against the live policies, as JSON
  kubectl dc check --cluster -o json

  # Check the live workloads of one namespace against a candidate policy
  kubectl dc check --cluster -n team-a --policy new-policy.yaml`

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
	// Cluster judges the live objects instead of files.
	Cluster bool
	// AllNamespaces makes --cluster explicit about every namespace (the
	// default); it excludes -n.
	AllNamespaces bool
	// Output is table, json or yaml.
	Output string

	config *genericclioptions.ConfigFlags
	// namespace is -n for --cluster ("" = all) or, for -f, the namespace
	// of objects that name none.
	namespace string
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

// newCmdCheck binds the flags of check to o, whose clients tests may set.
func newCmdCheck(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "check (-f FILE|DIR ... | --cluster) [--policy FILE] [-o table|json|yaml]",
		Short:   "Check workloads against PlacementPolicies, offline or live",
		Long:    checkLong,
		Example: checkExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	f.BoolVar(&o.Cluster, "cluster", false, "Check the live objects of the cluster instead of files.")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "With --cluster, check every namespace (the default unless -n is given).")
	cmdutil.AddOutputFlag(cmd, &o.Output, checkOutputs...)
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	_ = cmd.MarkFlagFilename("policy", "yaml", "yml", "json")
	_ = cmd.MarkFlagFilename("nodes", "yaml", "yml", "json")
	return cmd
}

// Complete fills what the flags leave open: the namespace.
func (o *Options) Complete(_ *cobra.Command) error {
	nsFlag := ""
	if o.config != nil && o.config.Namespace != nil {
		nsFlag = *o.config.Namespace
	}
	switch {
	case o.Cluster:
		o.namespace = nsFlag
	case nsFlag != "":
		o.namespace = nsFlag
	default:
		o.namespace = metav1.NamespaceDefault
		if o.config != nil {
			// A missing or broken kubeconfig must not stop an offline check.
			if ns, _, err := o.config.ToRawKubeConfigLoader().Namespace(); err == nil && ns != "" {
				o.namespace = ns
			}
		}
	}
	return nil
}

// Validate checks the flags, which together must name one kind of input.
func (o *Options) Validate() error {
	var errs []error
	switch {
	case len(o.Filenames) == 0 && !o.Cluster:
		errs = append(errs, errors.New("nothing to check: pass -f FILE|DIR (or - for stdin), or --cluster for the live objects"))
	case len(o.Filenames) > 0 && o.Cluster:
		errs = append(errs, errors.New("-f and --cluster exclude each other: check files or the live cluster, not both"))
	}
	if o.Recursive && len(o.Filenames) == 0 {
		errs = append(errs, errors.New("-R/--recursive applies to -f directories: add -f DIR"))
	}
	if o.Cluster && o.NodesFile != "" {
		errs = append(errs, errors.New("--nodes is for offline checks: --cluster reads the live Nodes; drop --nodes"))
	}
	if o.AllNamespaces && !o.Cluster {
		errs = append(errs, errors.New("-A/--all-namespaces applies to --cluster: objects of -f files keep their own namespaces"))
	}
	if o.AllNamespaces && o.Cluster && o.namespace != "" {
		errs = append(errs, fmt.Errorf("-A and -n %s exclude each other: drop one", o.namespace))
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

// sourcedPolicy is a policy with where it came from.
type sourcedPolicy struct {
	policy v1alpha1.PlacementPolicy
	where  string
}

// checkInputs is what the files hold, sorted by role.
type checkInputs struct {
	// objects are the objects to judge, in input order.
	objects []decodedObject
	// policies are the PlacementPolicies found.
	policies []sourcedPolicy
	// state are the Nodes, Namespaces (and, for lookups by the rules, the
	// Pods and StatefulSets among objects).
	state []runtime.Object
	// hasNodes reports whether the files held any Node.
	hasNodes bool
}

// Run checks and prints. Its error is an *cmdutil.ExitError: code 1 after printing
// when a Deny rule is broken, 2 on bad input or when the check cannot run.
func (o *Options) Run(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	results, checked, err := o.check(ctx)
	if err != nil {
		var exit *cmdutil.ExitError
		if errors.As(err, &exit) {
			return err
		}
		return cmdutil.UsageError(err)
	}
	report := newCheckReport(results, checked)
	if err := o.print(report); err != nil {
		return cmdutil.UsageError(fmt.Errorf("writing the report: %w", err))
	}
	if results.HasDeny() {
		return &cmdutil.ExitError{Code: cmdutil.ExitFindings}
	}
	return nil
}

// check gathers policies, objects and state, and judges every object. It
// returns the results in a deterministic order and how many objects it
// judged.
func (o *Options) check(ctx context.Context) (policy.Results, int, error) {
	var in checkInputs
	if len(o.Filenames) > 0 {
		files, err := readInputs(o.Filenames, o.Recursive, o.In)
		if err != nil {
			return nil, 0, err
		}
		if err := o.sortInputs(files, &in, true); err != nil {
			return nil, 0, err
		}
	}
	for _, p := range o.PolicyFiles {
		if err := o.readPolicies(p, &in); err != nil {
			return nil, 0, err
		}
	}
	if o.NodesFile != "" {
		if err := o.readNodes(&in); err != nil {
			return nil, 0, err
		}
	}
	if !o.Cluster && len(in.objects) == 0 {
		return nil, 0, fmt.Errorf("-f %s: no objects to check: the input holds no %s", strings.Join(o.Filenames, ", "), judgedKinds)
	}
	policies, err := validatePolicies(in.policies)
	if err != nil {
		return nil, 0, err
	}
	// Policies given by file make the check offline, except for --cluster.
	live := o.Cluster || len(policies) == 0
	if live {
		if err := o.completeClients(); err != nil {
			return nil, 0, err
		}
	}
	if len(policies) == 0 {
		if policies, err = o.livePolicies(ctx); err != nil {
			return nil, 0, err
		}
	}
	engine, err := newEngine(policies)
	if err != nil {
		return nil, 0, err
	}

	var state *policy.StaticState
	var ownerOf map[objectKey]objectKey
	switch {
	case o.Cluster:
		live, err := o.readLive(ctx, engine)
		if err != nil {
			return nil, 0, err
		}
		in.objects = nil
		for _, obj := range live.Objects {
			key := keyOf(obj)
			in.objects = append(in.objects, decodedObject{obj: obj, where: fmt.Sprintf("%s %s/%s", key.kind, key.namespace, key.name)})
		}
		ownerOf = live.owners
		state = policy.NewStaticState(live.State...)
		if len(in.objects) == 0 {
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
			return nil, 0, err
		}
		state = policy.NewStaticState(append(st, in.state...)...)
	default:
		state = policy.NewStaticState(in.state...)
		addImplicitNamespaces(state, in.objects)
	}
	objs := make([]runtime.Object, len(in.objects))
	for i := range in.objects {
		objs[i] = in.objects[i].obj
	}
	return judge(engine, objs, state, ownerOf), len(in.objects), nil
}

// readLive reads the snapshot --live judges: the judged kinds in the
// namespace scope, and with -n the member pods of other namespaces.
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
	return LiveObjects(snap, extra), nil
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

// sortInputs decodes files and files every object by role. judge says
// whether workloads are to be checked (false for --policy and --nodes
// files, whose workloads are skipped with a note).
func (o *Options) sortInputs(files []inputFile, in *checkInputs, judge bool) error {
	for _, f := range files {
		objs, err := decodeFile(f)
		if err != nil {
			return err
		}
		for _, d := range objs {
			if d.obj == nil {
				o.notef("note: %s: %s\n", d.where, d.skipped)
				continue
			}
			if err := o.sortObject(d, in, judge); err != nil {
				return err
			}
		}
	}
	return nil
}

func (o *Options) sortObject(d decodedObject, in *checkInputs, judge bool) error {
	switch obj := d.obj.(type) {
	case *v1alpha1.PlacementPolicy:
		if d.unknownFields != "" {
			// A misspelt field would silently drop a rule.
			return fmt.Errorf("%s: placementpolicy %q: %s: fix or remove the field", d.where, obj.Name, d.unknownFields)
		}
		in.policies = append(in.policies, sourcedPolicy{policy: *obj, where: d.where})
		return nil
	case *v1alpha1.PlacementPolicyList:
		if d.unknownFields != "" {
			return fmt.Errorf("%s: %s: fix or remove the field", d.where, d.unknownFields)
		}
		for i := range obj.Items {
			in.policies = append(in.policies, sourcedPolicy{policy: obj.Items[i], where: fmt.Sprintf("%s, item %d", d.where, i+1)})
		}
		return nil
	}
	if d.unknownFields != "" {
		o.notef("warning: %s: %s%s: %s\n", d.where, kindName(d.obj), objectName(d.obj), d.unknownFields)
	}
	switch obj := d.obj.(type) {
	case *corev1.Node:
		in.state = append(in.state, obj)
		in.hasNodes = true
		return nil
	case *corev1.Namespace:
		in.state = append(in.state, obj)
		return nil
	}
	obj := d.obj
	if !judged(obj) {
		if want, ok := judgedVersion(obj); ok {
			// dc-webhook denies these too: an old version of a judged
			// kind is not waved through.
			return fmt.Errorf("%s: %s%s: %s is judged as %s only: update the manifest's apiVersion", d.where, kindName(obj), objectName(obj),
				obj.GetObjectKind().GroupVersionKind().Kind, want)
		}
		o.notef("note: %s: skipped %s%s: not a kind kubectl dc check judges\n", d.where, kindName(obj), objectName(obj))
		return nil
	}
	if !judge {
		o.notef("note: %s: skipped %s%s: workloads are checked from -f, not from this file\n", d.where, kindName(obj), objectName(obj))
		return nil
	}
	if m, err := meta.Accessor(obj); err == nil && m.GetNamespace() == "" {
		m.SetNamespace(o.namespace)
	}
	in.objects = append(in.objects, d)
	switch obj.(type) {
	case *corev1.Pod, *appsv1.StatefulSet:
		// Spread rules count member pods and read StatefulSet replicas.
		in.state = append(in.state, obj)
	}
	return nil
}

// readPolicies reads one --policy file.
func (o *Options) readPolicies(path string, in *checkInputs) error {
	files, err := readInputs([]string{path}, false, o.In)
	if err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	before := len(in.policies)
	if err := o.sortInputs(files, in, false); err != nil {
		return err
	}
	if len(in.policies) == before {
		return fmt.Errorf("--policy %s: no PlacementPolicy in the file: it needs apiVersion: %s and kind: PlacementPolicy", path, v1alpha1.GroupVersion)
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
	var nin checkInputs
	if err := o.sortInputs(files, &nin, false); err != nil {
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
		return nil, errors.New("no PlacementPolicy to check against: pass --policy FILE or create one in the cluster (see manifests/examples/macstadium-policy.yaml)")
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
	return judge(engine, l.Objects, policy.NewStaticState(l.State...), l.owners), nil
}

// judge evaluates every object and drops what a controller up its chain
// already shows; results come sorted.
func judge(engine *policy.Engine, objs []runtime.Object, state *policy.StaticState, ownerOf map[objectKey]objectKey) policy.Results {
	byObject := make(map[objectKey]policy.Results, len(objs))
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		if err != nil {
			continue
		}
		byObject[keyOf(obj)] = engine.Evaluate(policy.Request{Operation: policy.OperationCheck, Object: obj, Namespace: m.GetNamespace()}, state)
	}
	var results policy.Results
	for _, obj := range objs {
		key := keyOf(obj)
		for _, r := range byObject[key] {
			if shownByController(key, r, ownerOf, byObject, obj) {
				continue
			}
			results = append(results, r)
		}
	}
	sortResults(results)
	return results
}

// shownByController reports whether result r of the object key is also
// shown by a checked controller up its chain (Pod → ReplicaSet →
// Deployment) for the same rule and the same field of the pod template.
func shownByController(key objectKey, r policy.Result, ownerOf map[objectKey]objectKey, byObject map[objectKey]policy.Results, obj runtime.Object) bool {
	field := templateRelative(obj, r.Field())
	seen := map[objectKey]bool{key: true}
	for owner, ok := ownerOf[key]; ok && !seen[owner]; owner, ok = ownerOf[owner] {
		seen[owner] = true
		for _, or := range byObject[owner] {
			if or.Rule == r.Rule && or.Action == r.Action && templateRelativeKind(owner.kind, or.Field()) == field {
				return true
			}
		}
	}
	return false
}

// templateRelative returns field relative to the pod template of obj:
// "spec.template.spec.nodeSelector" of a Deployment and "spec.nodeSelector"
// of a Pod both become "spec.nodeSelector".
func templateRelative(obj runtime.Object, field string) string {
	k, ok := policy.JudgedKindOf(obj)
	if !ok {
		return field
	}
	return relativeTo(k, field)
}

// relativeTo cuts the path of k's pod template off field.
func relativeTo(k policy.Kind, field string) string {
	if len(k.TemplatePaths) == 0 {
		return field
	}
	prefix := strings.TrimSuffix(k.TemplatePaths[0].String(), "spec")
	if prefix == "" {
		return field
	}
	return strings.TrimPrefix(field, prefix)
}

// templateRelativeKind is templateRelative for a judged kind known by
// name.
func templateRelativeKind(kind, field string) string {
	for _, k := range policy.JudgedKinds() {
		if k.Kind == kind {
			return relativeTo(k, field)
		}
	}
	return field
}

// judged reports whether obj is one of the kinds check judges.
func judged(obj runtime.Object) bool {
	_, ok := policy.JudgedKindOf(obj)
	return ok
}

// judgedVersion returns the group/version a kind is judged in when obj is
// that kind in another version (apps/v1beta1 Deployment: apps/v1).
func judgedVersion(obj runtime.Object) (string, bool) {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Empty() {
		if gvks, _, err := policy.Scheme.ObjectKinds(obj); err == nil && len(gvks) > 0 {
			gvk = gvks[0]
		}
	}
	for _, j := range policy.WorkloadKinds {
		if j.GroupKind() == gvk.GroupKind() && j.Version != gvk.Version {
			return j.GroupVersion().String(), true
		}
	}
	return "", false
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

// addImplicitNamespaces makes every namespace of objs known offline with
// the label the API server sets on every namespace
// (kubernetes.io/metadata.name), unless a Namespace document says more.
func addImplicitNamespaces(state *policy.StaticState, objs []decodedObject) {
	for _, d := range objs {
		m, err := meta.Accessor(d.obj)
		if err != nil || m.GetNamespace() == "" {
			continue
		}
		ns := m.GetNamespace()
		if _, ok := state.NamespaceLabels(ns); ok {
			continue
		}
		state.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{corev1.LabelMetadataName: ns}}})
	}
}

// sortResults orders results by object (namespace, kind, name), keeping
// the engine's order within an object.
func sortResults(rs policy.Results) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i].Object, rs[j].Object
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
}

// checkReport is the -o json|yaml document.
type checkReport struct {
	Results []checkResult `json:"results"`
	Summary checkSummary  `json:"summary"`
}

// checkResult is one violation.
type checkResult struct {
	Object  policy.ObjectRef `json:"object"`
	Rule    string           `json:"rule"`
	Action  v1alpha1.Action  `json:"action"`
	Field   string           `json:"field"`
	Message string           `json:"message"`
}

// checkSummary counts the objects checked and the violations per action.
type checkSummary struct {
	Objects  int `json:"objects"`
	Denied   int `json:"denied"`
	Warnings int `json:"warnings"`
	Audit    int `json:"audit"`
}

func newCheckReport(rs policy.Results, checked int) checkReport {
	rep := checkReport{Results: make([]checkResult, 0, len(rs)), Summary: checkSummary{Objects: checked}}
	for _, r := range rs {
		rep.Results = append(rep.Results, checkResult{Object: r.Object, Rule: r.Rule, Action: r.Action, Field: r.Field(), Message: resultMessage(r)})
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
	if o.Output != cmdutil.OutputTable {
		return cmdutil.PrintStructured(o.Out, o.Output, rep)
	}
	return printCheckTable(o.Out, rep)
}

// printCheckTable writes the results as a table and the summary line.
func printCheckTable(out io.Writer, rep checkReport) error {
	if len(rep.Results) > 0 {
		w := cmdutil.NewTabWriter(out)
		// The tab writer keeps the first write error and Flush returns it.
		_, _ = fmt.Fprintln(w, "OBJECT\tRULE\tACTION\tFIELD\tMESSAGE")
		for _, r := range rep.Results {
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", refString(r.Object), r.Rule, r.Action, cmdutil.Dash(r.Field), oneLine(r.Message))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	s := rep.Summary
	_, err := fmt.Fprintf(out, "%s checked, %d denied, %s, %d audit\n",
		plural(s.Objects, "object", "objects"), s.Denied, plural(s.Warnings, "warning", "warnings"), s.Audit)
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

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
