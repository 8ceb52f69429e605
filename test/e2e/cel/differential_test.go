// Package cel proves the compiled admission policies of the pinned rules
// (policy/celpolicy) equivalent to the policy engine through a real
// kube-apiserver: the differential corpus of policy/celpolicy/celtest is
// created with server-side dry run against the API server with only the
// compiled ValidatingAdmissionPolicies and MutatingAdmissionPolicies
// installed (no webhook), and every verdict, warning and injected
// nodeSelector is compared with what dc-webhook's engine answers.
package cel

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy/celtest"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

func TestMain(m *testing.M) {
	// The suite's controller-runtime clients have nothing to log.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.MacStadium()}))
}

// differentialSeed makes the corpus.
const differentialSeed = 37

// corpusSize is how many requests are drawn; the creates among them (about
// three in four) go through the API server.
const corpusSize = 1600

// install creates the compiled policies and deletes them when t ends.
func install(ctx context.Context, t *testing.T, cs kubernetes.Interface, set *celpolicy.Set) {
	t.Helper()
	if err := celtest.Install(ctx, cs, set); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { celtest.Uninstall(context.Background(), cs) })
}

// namespaces creates the corpus's namespaces under fresh names, with their
// labels, and deletes them when t ends.
func namespaces(ctx context.Context, t *testing.T, cs kubernetes.Interface) []*corev1.Namespace {
	t.Helper()
	var out []*corev1.Namespace
	suffix := fmt.Sprintf("-%d", time.Now().UnixNano()%100000)
	for _, ns := range celtest.Namespaces() {
		ns = ns.DeepCopy()
		ns.Name = "cel-" + ns.Name + suffix
		created, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, created)
		t.Cleanup(func() {
			_ = cs.CoreV1().Namespaces().Delete(context.Background(), created.Name, metav1.DeleteOptions{})
		})
	}
	return out
}

// warnings collects the warnings of one client's requests.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	w.list = append(w.list, text)
	w.mu.Unlock()
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// ruleInMessage finds the rule a compiled policy's message names.
var ruleInMessage = regexp.MustCompile(`PlacementPolicy rule ([^:]+):`)

// answer is the API server's answer to a dry-run create.
type answer struct {
	denied   bool
	message  string
	warned   map[string]bool // rules
	selector map[string]string
	other    error // an error that is not an admission policy's
}

func dryRunCreate(ctx context.Context, cfg *rest.Config, obj runtime.Object) answer {
	w := &warnings{}
	c := rest.CopyConfig(cfg)
	c.WarningHandler = w
	dyn, err := dynamic.NewForConfig(c)
	if err != nil {
		return answer{other: err}
	}
	kind, _ := policy.JudgedKindOf(obj)
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return answer{other: err}
	}
	u := &unstructured.Unstructured{Object: raw}
	u.SetGroupVersionKind(kind.GVK())
	out, err := dyn.Resource(kind.GVR()).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	a := answer{warned: map[string]bool{}}
	for _, text := range w.take() {
		if m := ruleInMessage.FindStringSubmatch(text); m != nil {
			a.warned[m[1]] = true
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "ValidatingAdmissionPolicy") && (apierrors.IsInvalid(err) || apierrors.IsForbidden(err)) {
			a.denied, a.message = true, err.Error()
			return a
		}
		a.other = err
		return a
	}
	typed := kind.New()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(out.Object, typed); err != nil {
		a.other = err
		return a
	}
	a.selector = celtest.NodeSelectorOf(typed)
	return a
}

// TestDifferential: every create of the corpus gets the same answer from
// the API server with only the compiled policies (denied or admitted,
// warnings by rule, the injected nodeSelector) as from the engine, with
// the cluster's Nodes and the corpus's namespaces.
func TestDifferential(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cs := c.Client()
	nodeList, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*corev1.Node, len(nodeList.Items))
	objs := []runtime.Object{}
	for i := range nodeList.Items {
		nodes[i] = &nodeList.Items[i]
		objs = append(objs, nodes[i])
	}
	nss := namespaces(ctx, t, cs)
	for _, ns := range nss {
		objs = append(objs, ns)
	}
	policies := celtest.Policies()
	set, err := celpolicy.Compile(policies, celpolicy.Options{Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	install(ctx, t, cs, set)
	engine, err := policy.NewEngine(policies)
	if err != nil {
		t.Fatal(err)
	}
	state := policy.NewStaticState(objs...)
	cfg := c.RESTConfig()
	waitActive(ctx, t, cfg, nss[0].Name)

	var creates []celtest.Request
	for _, r := range celtest.Corpus(differentialSeed, corpusSize, nss) {
		if r.Op == admission.Create {
			creates = append(creates, r)
		}
	}
	if len(creates) < 1000 {
		t.Fatalf("%d creates in the corpus, want at least 1000", len(creates))
	}
	root, err := cluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	seeds, _, err := celtest.Seeds(root, nss)
	if err != nil {
		t.Fatal(err)
	}
	seedCreates := 0
	for _, r := range seeds {
		if r.Op == admission.Create {
			creates = append(creates, r)
			seedCreates++
		}
	}
	answers := make([]answer, len(creates))
	var wg sync.WaitGroup
	next := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				answers[i] = dryRunCreate(ctx, cfg, creates[i].Obj)
			}
		}()
	}
	for i := range creates {
		next <- i
	}
	close(next)
	wg.Wait()

	counts := map[string]int{}
	differ := 0
	for i, req := range creates {
		a := answers[i]
		ref := policy.ObjectRefOf(req.Obj)
		seed := strings.HasPrefix(req.What, "seed ")
		if a.other != nil {
			if seed && apierrors.IsInvalid(a.other) {
				// The webhook's fuzz seeds include objects the API server's
				// own validation refuses (a label value too long).
				counts["seeds the API server's validation refuses"]++
				continue
			}
			differ++
			t.Errorf("%s %s/%s (%s): the API server refused it for another reason: %v", ref.Kind, ref.Namespace, ref.Name, req.What, a.other)
			continue
		}
		if seed {
			counts["seeds"]++
		}
		eObj, rs, skipped := celtest.EngineJudged(engine, state, req)
		if skipped > 0 {
			counts["left to the webhook"] += skipped
		}
		denied, warned := false, map[string]bool{}
		for _, r := range rs {
			switch r.Action {
			case v1alpha1.ActionDeny:
				denied = true
			case v1alpha1.ActionWarn:
				warned[r.Rule] = true
			}
		}
		switch {
		case denied != a.denied:
			differ++
			t.Errorf("%s %s/%s (%s): engine denied=%v, API server denied=%v %s\nengine: %s", ref.Kind, ref.Namespace, ref.Name, req.What, denied, a.denied, a.message, describe(rs))
		case !denied && !maps.Equal(warned, a.warned):
			differ++
			t.Errorf("%s %s/%s (%s): engine warns for %v, API server for %v", ref.Kind, ref.Namespace, ref.Name, req.What, keys(warned), keys(a.warned))
		case !denied && !maps.Equal(celtest.NodeSelectorOf(eObj), a.selector):
			differ++
			t.Errorf("%s %s/%s (%s): engine's nodeSelector %v, API server's %v", ref.Kind, ref.Namespace, ref.Name, req.What, celtest.NodeSelectorOf(eObj), a.selector)
		}
		switch {
		case denied:
			counts["denied"]++
		case len(warned) > 0:
			counts["warned"]++
		default:
			counts["admitted"]++
		}
		if !maps.Equal(celtest.NodeSelectorOf(req.Obj), celtest.NodeSelectorOf(eObj)) {
			counts["mutated"]++
			if _, onSite := celtest.NodeSelectorOf(eObj)[celtest.Site]; onSite && celtest.NodeSelectorOf(req.Obj)[celtest.Site] == "" {
				counts["mutated by "+celtest.FromSite]++
			}
		}
	}
	t.Logf("%d creates through the API server (%d of them from the fuzz targets' seed corpora): %d differences; %v", len(creates), seedCreates, differ, counts)
	// Most of FuzzEvaluatePinned's seeds hold affinity the API server's
	// own validation refuses (Gt with a name, In without values) before
	// any admission policy is asked: they are counted, not compared.
	if counts["seeds"] < 10 {
		t.Errorf("only %d creates from the seed corpora %v went through the API server", counts["seeds"], celtest.SeedCorpora)
	}
	for _, k := range []string{"denied", "warned", "admitted", "mutated", "mutated by " + celtest.FromSite} {
		if counts[k] < 10 {
			t.Errorf("only %d creates %s: the corpus proves little", counts[k], k)
		}
	}
}

// waitActive waits until the API server enforces every compiled policy:
// they reach its admission plugins through informers, a moment after they
// are created, in the order they were created. The last validating policy
// (gamma/sites) must refuse, and both mutating policies inject.
func waitActive(ctx context.Context, t *testing.T, cfg *rest.Config, ns string) {
	t.Helper()
	pod := func(pairs ...string) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe", Labels: map[string]string{}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			p.Labels[pairs[i]] = pairs[i+1]
		}
		return p
	}
	probes := []struct {
		pod  *corev1.Pod
		done func(answer) bool
	}{
		{pod("app", "site"), func(a answer) bool { return a.denied }},
		{pod("app", "site", celtest.FromSite, "west"), func(a answer) bool { return a.selector[celtest.Site] == "west" }},
		{pod("app", "worker", celtest.FromDC, "pod-1"), func(a answer) bool { return a.selector[celtest.Zone] == "pod-1" }},
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, p := range probes {
			if !p.done(dryRunCreate(ctx, cfg, p.pod)) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the compiled policies never all took effect (refusing a site pod without a datacenter, injecting both datacenter labels): %v", err)
	}
}

func describe(rs policy.Results) string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Action)+" "+r.Rule+": "+r.Error.Error())
	}
	return strings.Join(out, "; ")
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
