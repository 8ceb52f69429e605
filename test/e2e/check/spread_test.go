package check

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

const (
	// ruleSpreadQuorum is the rule the readiness probe waits for.
	ruleSpreadQuorum = "diff-spread/quorum"
	ownerName        = "quorum-owner" // the StatefulSet of 5 quorum members
	spreadRoleLabel  = "role"
)

// spreadPolicy has the Deny spread rules of the spread differential, over
// pods of ns but for anywhere: quorum (N from the owning StatefulSet, else
// inferred), five (expectedMembers 5), pairs (maxPerNode 2, no survival)
// and anywhere (members in every namespace).
func spreadPolicy(label, ns string) *v1alpha1.PlacementPolicy {
	return testutil.Policy("diff-spread").Label(label).Datacenters("pod-1", "pod-2", "pod-3").Spread(
		testutil.SpreadPods("quorum", []string{ns}, spreadRoleLabel, "quorum"),
		testutil.SpreadPods("five", []string{ns}, spreadRoleLabel, "five").Expected(5),
		testutil.SpreadPods("pairs", []string{ns}, spreadRoleLabel, "pairs").MaxPerNode(2).Survive(false),
		testutil.SpreadPods("anywhere", nil, spreadRoleLabel, "anywhere"),
	).Obj()
}

// spreadSample is one object of the spread corpus and its two verdicts.
type spreadSample struct {
	what string
	obj  runtime.Object
	// alone: judged by a check run of its own, since check counts the
	// member pods of its input as members.
	alone          bool
	file           string
	webhook, check verdict
}

func (s *spreadSample) key() string {
	r := policy.ObjectRefOf(s.obj)
	return r.Kind + "/" + r.Namespace + "/" + r.Name + " (" + s.what + ")"
}

// spreadMember is a member pod of role placed on node.
func spreadMember(ns, name, role, node string) *testutil.ObjectBuilder {
	return testutil.Pod(ns, name).Labels(spreadRoleLabel, role).NodeName(node)
}

// TestDifferentialSpread: with members already placed for four spread
// rules (N inferred or from the owning StatefulSet, expectedMembers 5,
// maxPerNode 2 without survival, members in every namespace), member pods
// placed on every node, member templates of every spread shape and
// replica count, and pods relabelled into the members get one verdict from
// the API server with dc-webhook (a server-side dry run) and one from
// kubectl dc check -f against the live policies and cluster.
func TestDifferentialSpread(t *testing.T) {
	c := cluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin := kubectlDC(t)
	label := c.Label()
	ns := differentialNamespace(ctx, t, c, "spread")
	other := differentialNamespace(ctx, t, c, "spread-other")
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	startWebhookWith(ctx, t, c, []*v1alpha1.PlacementPolicy{spreadPolicy(label, ns)}, func(ctx context.Context) (bool, error) {
		err := dryRun(ctx, dyn, testutil.StatefulSet(ns, "probe").Labels(spreadRoleLabel, "quorum").Replicas(0).Obj())
		return err != nil && strings.Contains(err.Error(), ruleSpreadQuorum), nil
	})

	n1, n2, n3 := c.Nodes("pod-1"), c.Nodes("pod-2"), c.Nodes("pod-3")
	// The members in place, created one after the other: quorum 1/1/1
	// (a fourth is allowed only when N is 5), five 2/1/1, pairs 1/2/1
	// (two on one node), anywhere 0/1/0 in another namespace; and two
	// pods that are no members yet.
	placed := []*testutil.ObjectBuilder{
		spreadMember(ns, "quorum-a", "quorum", n1[1]), spreadMember(ns, "quorum-b", "quorum", n2[1]), spreadMember(ns, "quorum-c", "quorum", n3[1]),
		spreadMember(ns, "five-a", "five", n1[1]), spreadMember(ns, "five-b", "five", n2[1]),
		spreadMember(ns, "five-c", "five", n3[1]), spreadMember(ns, "five-d", "five", n1[2]),
		spreadMember(ns, "pairs-a", "pairs", n1[1]), spreadMember(ns, "pairs-b", "pairs", n2[1]),
		spreadMember(ns, "pairs-c", "pairs", n3[1]), spreadMember(ns, "pairs-d", "pairs", n2[1]),
		spreadMember(other, "anywhere-a", "anywhere", n2[2]),
		spreadMember(ns, "loner-1", "none", n1[3]), spreadMember(ns, "loner-3", "none", n3[1]),
	}
	for _, b := range placed {
		if _, err := createObject(ctx, dyn, b.Obj(), false); err != nil {
			t.Fatalf("member %s: not admitted: %v", policy.ObjectRefOf(b.Obj()), err)
		}
	}
	// The owner of five quorum members, whose pods stay pending.
	owner := testutil.StatefulSet(ns, ownerName).TemplateLabels("corpus", ownerName).Labels(spreadRoleLabel, "quorum").
		TopologySpread(label, corev1.DoNotSchedule).NodeSelector(neverKey, "true").Replicas(5).Obj()
	got, err := createObject(ctx, dyn, owner, false)
	if err != nil {
		t.Fatalf("StatefulSet %s: not admitted: %v", ownerName, err)
	}
	ownerUID := got.(*appsv1.StatefulSet).UID

	corpus := spreadCorpus(ns, other, label, c, ownerUID)
	t.Logf("spread corpus of %d objects", len(corpus))

	// The webhook: a dry-run create, or for the relabelled pods a dry-run
	// update of the stored pod.
	forEach(corpus, func(s *spreadSample) {
		var err error
		if pod, ok := s.obj.(*corev1.Pod); ok && strings.HasPrefix(pod.Name, "loner-") {
			_, _, err = dryRunUpdate(ctx, dyn, "Pod", pod.Namespace, pod.Name, func(obj runtime.Object) {
				obj.(*corev1.Pod).Labels = pod.Labels
			})
		} else {
			err = dryRun(ctx, dyn, s.obj)
		}
		switch {
		case err == nil:
			s.webhook = verdict{set: true}
		case strings.Contains(err.Error(), "denied the request"):
			s.webhook = verdict{set: true, denied: true, messages: []string{err.Error()}}
		default:
			t.Errorf("%s: the dry run failed, not by a denial: %v", s.key(), err)
		}
	})

	// check: the templates in one run, every pod in a run of its own.
	dir := t.TempDir()
	var together []*spreadSample
	for i, s := range corpus {
		sub := "together"
		if s.alone {
			sub = fmt.Sprintf("alone-%03d", i)
		} else {
			together = append(together, s)
		}
		s.file = writeYAML(t, filepath.Join(dir, sub), fmt.Sprintf("%03d.yaml", i), s.obj)
	}
	judgeSpread(t, bin, c, filepath.Join(dir, "together"), together)
	var alone []*spreadSample
	for _, s := range corpus {
		if s.alone {
			alone = append(alone, s)
		}
	}
	forEach(alone, func(s *spreadSample) { judgeSpread(t, bin, c, filepath.Dir(s.file), []*spreadSample{s}) })

	var differ []*spreadSample
	denied := 0
	for _, s := range corpus {
		if s.webhook.denied {
			denied++
		}
		if !s.webhook.set || !s.check.set || s.webhook.denied != s.check.denied {
			differ = append(differ, s)
		}
	}
	t.Logf("%d objects: %d denied, %d admitted by the webhook", len(corpus), denied, len(corpus)-denied)
	sort.Slice(differ, func(i, j int) bool { return differ[i].key() < differ[j].key() })
	for _, s := range differ {
		data, _ := yaml.Marshal(s.obj)
		t.Errorf("%s: the answers differ\n  webhook: %s\n  check:   %s\n%s", s.key(), s.webhook, s.check, data)
	}
	if len(differ) > 0 {
		t.Errorf("%d of %d objects got different answers", len(differ), len(corpus))
	}
}

// spreadCorpus builds the candidates: member pods of every rule on every
// node (quorum ones also owned by the StatefulSet of five, and a
// self-declared learner), members without a node, a pod that is no
// member, the two loners relabelled into the quorum members, and member
// templates of every spread shape and replica count.
func spreadCorpus(ns, other, label string, c *cluster.Cluster, ownerUID types.UID) []*spreadSample {
	var out []*spreadSample
	var nodes []string
	for _, dc := range []string{"pod-1", "pod-2", "pod-3"} {
		nodes = append(nodes, c.Nodes(dc)...)
	}
	pod := func(what string, b *testutil.ObjectBuilder) {
		out = append(out, &spreadSample{what: what, obj: b.Obj(), alone: true})
	}
	for i, node := range nodes {
		for _, role := range []string{"quorum", "five", "pairs"} {
			pod("member of "+role+" on "+node, spreadMember(ns, fmt.Sprintf("%s-on-%02d", role, i), role, node))
		}
		pod("member of anywhere on "+node, spreadMember(other, fmt.Sprintf("anywhere-on-%02d", i), "anywhere", node))
		owned := spreadMember(ns, fmt.Sprintf("owned-on-%02d", i), "quorum", node).Labels("corpus", ownerName)
		owned.Pod().OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: ownerName,
			UID: ownerUID, Controller: ptr.To(true)}}
		pod("quorum member owned by the StatefulSet of 5 on "+node, owned)
	}
	pod("self-declared learner of quorum next to a member", spreadMember(ns, "learner", "quorum", c.Nodes("pod-1")[2]).Learner())
	for _, role := range []string{"quorum", "five", "pairs"} {
		pod("member of "+role+" without a node", testutil.Pod(ns, role+"-unplaced").Labels(spreadRoleLabel, role))
	}
	pod("no member, next to members", spreadMember(ns, "bystander", "none", c.Nodes("pod-1")[1]))
	pod("loner in pod-1 relabelled into quorum", spreadMember(ns, "loner-1", "quorum", c.Nodes("pod-1")[3]))
	pod("loner in pod-3 relabelled into quorum", spreadMember(ns, "loner-3", "quorum", c.Nodes("pod-3")[1]))

	// Templates: one check run for all of them.
	type shape struct {
		name string
		edit func(b *testutil.ObjectBuilder)
	}
	shapes := []shape{
		{"DoNotSchedule", func(b *testutil.ObjectBuilder) { b.TopologySpread(label, corev1.DoNotSchedule) }},
		{"ScheduleAnyway", func(b *testutil.ObjectBuilder) { b.TopologySpread(label, corev1.ScheduleAnyway) }},
		{"no spread", func(*testutil.ObjectBuilder) {}},
		{"maxSkew 2", func(b *testutil.ObjectBuilder) {
			b.TopologySpread(label, corev1.DoNotSchedule).Edit(func(s *corev1.PodSpec) { s.TopologySpreadConstraints[0].MaxSkew = 2 })
		}},
		{"anti-affinity", func(b *testutil.ObjectBuilder) { b.PodAntiAffinity(label) }},
		{"anti-affinity in another namespace", func(b *testutil.ObjectBuilder) {
			b.PodAntiAffinity(label).Edit(func(s *corev1.PodSpec) {
				s.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].Namespaces = []string{other}
			})
		}},
		{"spread but confined to pod-1", func(b *testutil.ObjectBuilder) {
			b.TopologySpread(label, corev1.DoNotSchedule).NodeSelector(label, "pod-1")
		}},
		{"spread split by the pod name", func(b *testutil.ObjectBuilder) {
			b.TopologySpread(label, corev1.DoNotSchedule).Edit(func(s *corev1.PodSpec) {
				s.TopologySpreadConstraints[0].MatchLabelKeys = []string{"statefulset.kubernetes.io/pod-name"}
			})
		}},
		{"spread on the hostname only", func(b *testutil.ObjectBuilder) { b.TopologySpread("kubernetes.io/hostname", corev1.DoNotSchedule) }},
	}
	tmpl := func(what string, b *testutil.ObjectBuilder) {
		b.NodeSelector(neverKey, "true")
		out = append(out, &spreadSample{what: what, obj: quiet(b.Obj())})
	}
	i := 0
	for _, role := range []string{"quorum", "five"} {
		for _, sh := range shapes {
			for _, replicas := range []int32{0, 1, 2, 3, 4, 5, 7} {
				if role == "five" && replicas != 3 && replicas != 7 {
					continue
				}
				i++
				name := fmt.Sprintf("t%03d", i)
				b := testutil.StatefulSet(ns, name).TemplateLabels("corpus", name).Labels(spreadRoleLabel, role).Replicas(replicas)
				sh.edit(b)
				tmpl(fmt.Sprintf("StatefulSet of %d %s members, %s", replicas, role, sh.name), b)
			}
		}
	}
	for _, b := range testutil.Kinds(ns, "member-kinds") {
		if b.Kind() == "Pod" || b.Kind() == "StatefulSet" {
			continue
		}
		i++
		name := fmt.Sprintf("k%03d", i)
		b = testutil.Kinds(ns, name)[indexOfKind(b.Kind())]
		b.TemplateLabels("corpus", name).Labels(spreadRoleLabel, "quorum").TopologySpread(label, corev1.DoNotSchedule).Replicas(3)
		tmpl(b.Kind()+" of 3 quorum members, DoNotSchedule", b)
	}
	return out
}

func indexOfKind(kind string) int {
	for i, k := range policy.JudgedKinds() {
		if k.Kind == kind {
			return i
		}
	}
	return -1
}

// judgeSpread runs kubectl dc check -f over dir against the live policies
// and files each result under its sample by file.
func judgeSpread(t *testing.T, bin string, c *cluster.Cluster, dir string, samples []*spreadSample) {
	t.Helper()
	rep, code := runCheck(t, bin, c.Kubeconfig(), "check", "-f", dir, "-o", "json")
	if code != 0 && code != 1 {
		t.Errorf("check -f %s: exit %d", dir, code)
		return
	}
	byFile := map[string]*spreadSample{}
	for _, s := range samples {
		byFile[s.file] = s
		s.check.set = true
	}
	if rep.Summary.Objects != len(samples) {
		t.Errorf("check -f %s: %d objects checked, want %d", dir, rep.Summary.Objects, len(samples))
	}
	for _, r := range rep.Results {
		s := byFile[r.Source.File]
		if s == nil {
			t.Errorf("check -f: a result about no file of the corpus: %s", dump([]result{r}))
			continue
		}
		if r.Action != "Deny" {
			t.Errorf("check -f: a %s result, the rules deny: %s", r.Action, dump([]result{r}))
			continue
		}
		s.check.denied = true
		s.check.messages = append(s.check.messages, r.Rule+" "+r.Field+": "+r.Message)
	}
}
