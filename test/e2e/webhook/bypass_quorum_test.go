package webhook_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

// Names of the rows of issue #15: spread and admission that hold under
// spoofing, lockouts and hostile input.
const (
	quorumNS        = "e2e-quorum"
	quorumPolicy    = "e2e-quorum"
	bootstrapRule   = quorumPolicy + "/bootstrap"
	terminatingRule = quorumPolicy + "/terminating"
	quorumProbeApp  = "e2e-quorum-probe"
	memberTSC       = "spec.template.spec.topologySpreadConstraints"
	antiTerms       = "spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
)

var dryRunAll = []string{metav1.DryRunAll}

// etcdMemberSts is a StatefulSet of etcd members in kube-system, spread by a
// correct topology spread constraint; edit makes it wrong.
func etcdMemberSts(name string, replicas int32, edit func(*corev1.PodSpec)) *appsv1.StatefulSet {
	b := tu.StatefulSet("kube-system", name).Labels("component", "etcd", "e2e", name).Replicas(replicas).TopologySpread(tu.Zone, corev1.DoNotSchedule)
	if edit != nil {
		b.Edit(edit)
	}
	return b.StatefulSet()
}

// templateRow is a row creating (server dry run) a member template that
// must be refused on field by the etcd rule.
func templateRow(name, way, field string, obj client.Object) bypass {
	return bypass{
		name:    name,
		way:     way,
		outcome: "denied: " + field + " by " + etcdRule,
		run: func(t *testing.T, c *cluster.Cluster) {
			err := ctrlClient(t, c).Create(context.Background(), obj, client.DryRunAll)
			wantDenied(t, err, field, etcdRule)
		},
	}
}

var (
	quorumOnce sync.Once
	quorumErr  error
)

// quorumEnv installs, once, policy e2e-quorum: two spread rules over pods
// of namespace e2e-quorum that set no expectedMembers (bootstrap:
// quorum=bootstrap, terminating: quorum=terminating), and a Warn probe that
// shows when the webhook runs the policy.
func quorumEnv(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	quorumOnce.Do(func() {
		ctx := context.Background()
		cs := c.Client()
		if _, err := cs.CoreV1().Namespaces().Create(ctx, tu.Namespace(quorumNS), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			quorumErr = err
			return
		}
		p := tu.Policy(quorumPolicy).Datacenters("pod-1", "pod-2", "pod-3").
			Pinned(tu.PinnedRule("probe").In("app", quorumProbeApp).Action(v1alpha1.ActionWarn)).
			Spread(tu.SpreadPods("bootstrap", []string{quorumNS}, "quorum", "bootstrap"),
				tu.SpreadPods("terminating", []string{quorumNS}, "quorum", "terminating")).Obj()
		if err := ctrlClient(t, c).Create(ctx, p); err != nil && !apierrors.IsAlreadyExists(err) {
			quorumErr = err
		}
	})
	if quorumErr != nil {
		t.Fatalf("installing policy %s: %v", quorumPolicy, quorumErr)
	}
	eventually(t, "the webhook running policy "+quorumPolicy, func(ctx context.Context) (bool, error) {
		warnings := &recorder{}
		d := tu.Deployment(quorumNS, "probe").Labels("app", quorumProbeApp).Deployment()
		_, err := clientWithWarnings(c, warnings).AppsV1().Deployments(quorumNS).Create(ctx, d, metav1.CreateOptions{DryRun: dryRunAll})
		return err == nil && contains(warnings.get(), quorumPolicy+"/probe"), nil
	})
}

// quorumMember is a member pod of rule (bootstrap or terminating) on node.
func quorumMember(name, rule, node string) *corev1.Pod {
	return tu.Pod(quorumNS, name).Labels("quorum", rule).NodeName(node).Pod()
}

// etcdOn is an etcd member pod of kube-system bound to node by nodeName.
func etcdOn(name, node string) *tu.ObjectBuilder {
	return tu.Pod("kube-system", name).Labels("component", "etcd", "tier", "control-plane").NodeName(node)
}

// quorumBypasses are the rows of issue #15.
func quorumBypasses() []bypass {
	return []bypass{
		templateRow("member-template-maxSkew-100", "create a kube-system etcd StatefulSet whose topology spread constraint on the zone has maxSkew 100", memberTSC+"[0].maxSkew",
			etcdMemberSts("e2e-skew", 3, func(s *corev1.PodSpec) { s.TopologySpreadConstraints[0].MaxSkew = 100 })),
		templateRow("member-template-matchLabelKeys-pod-name", "create a kube-system etcd StatefulSet whose constraint has matchLabelKeys [statefulset.kubernetes.io/pod-name], one group per pod", memberTSC+"[0].matchLabelKeys[0]",
			etcdMemberSts("e2e-mlk", 3, func(s *corev1.PodSpec) {
				s.TopologySpreadConstraints[0].MatchLabelKeys = []string{appsv1.StatefulSetPodNameLabel}
			})),
		templateRow("member-template-anti-affinity-elsewhere", "create a kube-system etcd StatefulSet whose only spread is required pod anti-affinity on the zone limited to namespaces [nowhere]", antiTerms+"[0].namespaces",
			tu.StatefulSet("kube-system", "e2e-anti").Labels("component", "etcd").Replicas(3).PodAntiAffinity(tu.Zone).Edit(func(s *corev1.PodSpec) {
				s.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].Namespaces = []string{"nowhere"}
			}).StatefulSet()),
		templateRow("member-template-confined-to-one-datacenter", "create a kube-system etcd StatefulSet with a correct spread constraint and nodeSelector zone=pod-1", "spec.template.spec.nodeSelector"+zoneKey,
			etcdMemberSts("e2e-one-dc", 3, func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{tu.Zone: "pod-1"} })),
		templateRow("member-template-DaemonSet", "create a kube-system etcd DaemonSet with a correct spread constraint (one member per node)", "spec.template",
			tu.DaemonSet("kube-system", "e2e-etcd-ds").Labels("component", "etcd").TopologySpread(tu.Zone, corev1.DoNotSchedule).Obj().(client.Object)),
		{
			name:    "learner-self-declared",
			way:     "create an etcd pod annotated placement.kubectl-dc.io/learner=true with spec.nodeName on a pod-1 worker, next to pod-1's voter",
			outcome: "denied: spec.nodeName by " + etcdRule + " (only a mirror pod may say it is a learner; any other member counts as a voter)",
			run: func(t *testing.T, c *cluster.Cluster) {
				pod := etcdOn("etcd-e2e-learner", lastNode(c, "pod-1")).Learner().Pod()
				_, err := c.Client().CoreV1().Pods("kube-system").Create(context.Background(), pod, metav1.CreateOptions{DryRun: dryRunAll})
				wantDenied(t, err, "spec.nodeName", etcdRule)
			},
		},
		{
			name:    "owner-decoy-statefulset",
			way:     "create an etcd pod with spec.nodeName on a pod-1 worker whose controller ownerReference names a decoy StatefulSet of 101 replicas (its real UID, but a selector that does not select the pod), or a StatefulSet kind of another group",
			outcome: "denied: spec.nodeName by " + etcdRule + ", N inferred as 4 (the owner is not verified), not 101",
			run:     runDecoyOwner,
		},
		{
			name:    "scale-subresource",
			way:     "scale a kube-system etcd StatefulSet from 0 to 4 replicas through statefulsets/scale (kubectl scale)",
			outcome: "denied: spec.replicas by " + etcdRule + " (4 voting members over 3 datacenters), as the patch of spec.replicas is; a scale to 3 is admitted",
			run:     runScale,
		},
		{
			name:    "first-member-without-expectedMembers",
			way:     "place the first member of a spread rule that sets no expectedMembers (policy " + quorumPolicy + ", rule bootstrap)",
			outcome: "admitted: N is inferred as at least 3; a second member in the same datacenter is then denied on spec.nodeName by " + bootstrapRule,
			run: func(t *testing.T, c *cluster.Cluster) {
				quorumEnv(t, c)
				ctx := context.Background()
				cs := c.Client()
				first := quorumMember("bootstrap-0", "bootstrap", lastNode(c, "pod-1"))
				if _, err := cs.CoreV1().Pods(quorumNS).Create(ctx, first, metav1.CreateOptions{}); err != nil {
					t.Fatalf("first member refused: %v", err)
				}
				t.Cleanup(func() { deletePodNow(c, quorumNS, first.Name) })
				eventually(t, "a second member in pod-1 denied", func(ctx context.Context) (bool, error) {
					second := quorumMember("bootstrap-1", "bootstrap", c.Nodes("pod-1")[1])
					_, err := cs.CoreV1().Pods(quorumNS).Create(ctx, second, metav1.CreateOptions{DryRun: dryRunAll})
					return err != nil && strings.Contains(err.Error(), bootstrapRule), nil
				})
			},
		},
		{
			name:    "terminating-member-counts",
			way:     "delete a member held by a finalizer (terminating, still running), then place another member in its datacenter",
			outcome: "denied: spec.nodeName by " + terminatingRule + " (\"would hold 2 of N=3\"): a terminating member counts until it is gone",
			run:     runTerminatingMember,
		},
		{
			name:    "node-relabel-moves-member",
			way:     "an administrator (system:masters, allowed by label-guard) relabels pod-2's control-plane node, which holds an etcd voter, into pod-1 (server dry run)",
			outcome: "denied: " + zoneLabelField + " by " + etcdRule + " (\"node … holds member kube-system/…\": the relabel is judged as placing its members in pod-1)",
			run: func(t *testing.T, c *cluster.Cluster) {
				node := c.Nodes("pod-2")[0]
				_, err := c.Client().CoreV1().Nodes().Patch(context.Background(), node, types.StrategicMergePatchType, zonePatch("pod-1"), metav1.PatchOptions{DryRun: dryRunAll})
				wantDenied(t, err, zoneLabelField, etcdRule)
			},
		},
	}
}

// runDecoyOwner is the owner-decoy-statefulset row.
func runDecoyOwner(t *testing.T, c *cluster.Cluster) {
	ctx := context.Background()
	cs := c.Client()
	// OrderedReady and a scheduler that does not exist: only its first pod
	// is ever created, and it never runs.
	decoy := tu.StatefulSet("kube-system", "e2e-decoy").Labels("app", "e2e-decoy").Replicas(101).Edit(unscheduled).StatefulSet()
	created, err := cs.AppsV1().StatefulSets("kube-system").Create(ctx, decoy, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create the decoy: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().StatefulSets("kube-system").Delete(context.Background(), decoy.Name, metav1.DeleteOptions{})
	})
	// The webhook's StatefulSet cache follows within moments.
	time.Sleep(2 * time.Second)
	yes := true
	for _, apiVersion := range []string{"apps/v1", "decoy.example.com/v1"} {
		pod := etcdOn("etcd-e2e-decoy-0", lastNode(c, "pod-1")).Pod()
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: "StatefulSet", Name: decoy.Name, UID: created.UID, Controller: &yes}}
		_, err := cs.CoreV1().Pods("kube-system").Create(ctx, pod, metav1.CreateOptions{DryRun: dryRunAll})
		wantDenied(t, err, "spec.nodeName", etcdRule)
		if err != nil && !strings.Contains(err.Error(), "of N=4 ") {
			t.Errorf("owner %s: denial %q does not infer N=4", apiVersion, err)
		}
	}
}

// runScale is the scale-subresource row.
func runScale(t *testing.T, c *cluster.Cluster) {
	ctx := context.Background()
	cs := c.Client()
	sts := etcdMemberSts("e2e-etcd-scale", 0, nil)
	if _, err := cs.AppsV1().StatefulSets("kube-system").Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().StatefulSets("kube-system").Delete(context.Background(), sts.Name, metav1.DeleteOptions{})
	})
	scale := func(ctx context.Context, n int32) error {
		s := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: sts.Name}, Spec: autoscalingv1.ScaleSpec{Replicas: n}}
		_, err := cs.AppsV1().StatefulSets("kube-system").UpdateScale(ctx, sts.Name, s, metav1.UpdateOptions{DryRun: dryRunAll})
		return err
	}
	var err error
	eventually(t, "the scale to 4 judged (the webhook's cache holds the StatefulSet)", func(ctx context.Context) (bool, error) {
		err = scale(ctx, 4)
		return err != nil, nil
	})
	wantDenied(t, err, "spec.replicas", etcdRule)
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"replicas": 4}})
	_, perr := cs.AppsV1().StatefulSets("kube-system").Patch(ctx, sts.Name, types.MergePatchType, patch, metav1.PatchOptions{DryRun: dryRunAll})
	wantDenied(t, perr, "spec.replicas", etcdRule)
	if err := scale(ctx, 3); err != nil {
		t.Errorf("scale to 3 refused: %v", err)
	}
}

// runTerminatingMember is the terminating-member-counts row.
func runTerminatingMember(t *testing.T, c *cluster.Cluster) {
	quorumEnv(t, c)
	ctx := context.Background()
	cs := c.Client()
	old := quorumMember("terminating-0", "terminating", lastNode(c, "pod-1"))
	old.Finalizers = []string{holdFinalizer}
	if _, err := cs.CoreV1().Pods(quorumNS).Create(ctx, old, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cs.CoreV1().Pods(quorumNS).Patch(context.Background(), old.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		deletePodNow(c, quorumNS, old.Name)
	})
	if err := cs.CoreV1().Pods(quorumNS).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	next := quorumMember("terminating-1", "terminating", c.Nodes("pod-1")[1])
	var err error
	eventually(t, "a member placed next to a terminating one denied", func(ctx context.Context) (bool, error) {
		got, gerr := cs.CoreV1().Pods(quorumNS).Get(ctx, old.Name, metav1.GetOptions{})
		if gerr != nil || got.DeletionTimestamp == nil {
			return false, nil
		}
		_, err = cs.CoreV1().Pods(quorumNS).Create(ctx, next, metav1.CreateOptions{DryRun: dryRunAll})
		return err != nil && strings.Contains(err.Error(), "would hold 2 of N=3"), nil
	})
	wantDenied(t, err, "spec.nodeName", terminatingRule)
}
