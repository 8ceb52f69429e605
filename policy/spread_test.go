package policy_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func etcdPolicy(rule *testutil.SpreadBuilder) *testutil.PolicyBuilder {
	return testutil.Policy("macstadium").Datacenters("pod-1", "pod-2", "pod-3").Spread(rule)
}

// member is an etcd pod, scheduled on node when node is not "".
func member(name, node string) *testutil.ObjectBuilder {
	return testutil.Pod("kube-system", name).Labels("component", "etcd").NodeName(node)
}

func objs(list ...any) []runtime.Object {
	var out []runtime.Object
	for _, x := range list {
		switch v := x.(type) {
		case runtime.Object:
			out = append(out, v)
		case []runtime.Object:
			out = append(out, v...)
		case *testutil.ObjectBuilder:
			out = append(out, v.Obj())
		}
	}
	return out
}

// etcdSts is the StatefulSet of the etcd members, with the UID their
// OwnedBy references name.
func etcdSts(replicas int32) *appsv1.StatefulSet {
	return withUID(testutil.StatefulSet("kube-system", "etcd").Labels("component", "etcd").Replicas(replicas).StatefulSet(), "uid-etcd")
}

func withUID(s *appsv1.StatefulSet, uid string) *appsv1.StatefulSet {
	s.UID = types.UID(uid)
	return s
}

func bind(pod, node string) policy.Request {
	return policy.Request{Operation: policy.OperationCreate, Object: testutil.Binding("kube-system", pod, node), Namespace: "kube-system"}
}

func TestSpreadPlacement(t *testing.T) {
	const (
		surviveMsg  = "datacenter pod-1 would hold 2 of N=3 voting members, more than floor((N-1)/2)=1: losing pod-1 would leave 1, below the quorum of 2; place it in another datacenter"
		perNodeMsg  = "node pod-1-1 already holds 1 member(s), and maxPerNode is 1: place the member on another node"
		balanceMsg  = "placing the member in datacenter pod-1 leaves the members unbalanced (pod-1=2, pod-2=1, pod-3=0; counts over datacenters with a Ready schedulable node may differ by at most one): place it in pod-3"
		witnessText = "two datacenters can never survive the loss of either (3 members split 2+1, 5 split 3+2, 4 split 2+2 all fail): add a third (witness) datacenter holding at least one member"
	)
	exact := func(field, msg string) want {
		return want{field: field, action: v1alpha1.ActionDeny, msg: msg, exact: true}
	}
	noSurvive := testutil.Etcd().Survive(false)
	cases := []struct {
		name  string
		rule  *testutil.SpreadBuilder
		state []runtime.Object
		req   policy.Request
		want  []want
	}{
		{"binding to the empty datacenter", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "")),
			bind("etcd-c", "pod-3-1"), nil},
		{"binding next to a member breaks every limit", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "")),
			bind("etcd-c", "pod-1-1"),
			[]want{exact("target.name", surviveMsg), exact("target.name", perNodeMsg), exact("target.name", balanceMsg)}},
		{"binding to another node of a full datacenter", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "")),
			bind("etcd-c", "pod-1-2"),
			[]want{exact("target.name", surviveMsg), exact("target.name", balanceMsg)}},
		{"maxPerNode 2 allows a second member on a node", testutil.Etcd().MaxPerNode(2).Survive(false),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "pod-3-1"), member("etcd-d", "")),
			bind("etcd-d", "pod-1-1"), nil},
		{"binding of a pod that is not a member", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), testutil.Pod("kube-system", "dns").Labels("k8s-app", "dns")),
			bind("dns", "pod-1-1"), nil},
		{"binding of an unknown pod", testutil.Etcd(), objs(threeDCs(), member("etcd-a", "pod-1-1")), bind("ghost", "pod-1-1"), nil},
		{"binding to an unlabeled node", testutil.Etcd(),
			objs(threeDCs(), testutil.Node("bare").Obj(), member("etcd-a", "")),
			bind("etcd-a", "bare"),
			[]want{deny("target.name", "node bare has no topology.kubernetes.io/zone label, so quorum safety cannot be judged")}},
		{"two datacenters: the third member cannot survive, witness site named", testutil.Etcd(),
			objs(testutil.Nodes(2, "pod-1", "pod-2"), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "")),
			bind("etcd-c", "pod-1-2"),
			[]want{deny("target.name", "losing pod-1 would leave 1, below the quorum of 2; "+witnessText)}},
		{"first member without expectedMembers: N inferred as at least 3", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "")),
			bind("etcd-a", "pod-1-1"), nil},
		{"members added one at a time up to one per datacenter", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "")),
			bind("etcd-b", "pod-2-1"), nil},
		{"a fourth member with N inferred asks for expectedMembers", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "pod-3-1"), member("etcd-d", "")),
			bind("etcd-d", "pod-1-2"),
			[]want{deny("target.name", "inferred as the current members plus one (at least 3) since the rule sets no expectedMembers and no verified owning StatefulSet gives the size: set spec.spread[0].expectedMembers")}},
		{"expectedMembers 5 allows two per datacenter", testutil.Etcd().Expected(5),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "pod-3-1"), member("etcd-d", "")),
			bind("etcd-d", "pod-1-2"), nil},
		{"expectedMembers 5 refuses a third in one datacenter", testutil.Etcd().Expected(5).Survive(true),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-1-2"), member("etcd-c", "pod-2-1"), member("etcd-d", "pod-3-1"), testutil.Node("pod-1-3").InDC("pod-1").Obj(), member("etcd-e", "")),
			bind("etcd-e", "pod-1-3"),
			[]want{exact("target.name", "datacenter pod-1 would hold 3 of N=5 voting members, more than floor((N-1)/2)=2: losing pod-1 would leave 2, below the quorum of 3; place it in another datacenter"),
				deny("target.name", "leaves the members unbalanced (pod-1=3, pod-2=1, pod-3=1")}},
		{"owning StatefulSet replicas give N", testutil.Etcd(),
			objs(threeDCs(), etcdSts(5),
				member("etcd-0", "pod-1-1"), member("etcd-1", "pod-2-1"), member("etcd-2", "pod-3-1"), member("etcd-3", "").OwnedBy("StatefulSet", "etcd")),
			bind("etcd-3", "pod-1-2"), nil},
		{"a decoy StatefulSet with another UID gives no N", testutil.Etcd(),
			objs(threeDCs(), withUID(etcdSts(101), "uid-decoy"),
				member("etcd-0", "pod-1-1"), member("etcd-1", "pod-2-1"), member("etcd-2", "pod-3-1"), member("etcd-3", "").OwnedBy("StatefulSet", "etcd")),
			bind("etcd-3", "pod-1-2"),
			[]want{deny("target.name", "datacenter pod-1 would hold 2 of N=4 voting members")}},
		{"a StatefulSet whose selector does not select the pod gives no N", testutil.Etcd(),
			objs(threeDCs(), withUID(testutil.StatefulSet("kube-system", "etcd").Labels("app", "decoy").Replicas(101).StatefulSet(), "uid-etcd"),
				member("etcd-0", "pod-1-1"), member("etcd-1", "pod-2-1"), member("etcd-2", "pod-3-1"), member("etcd-3", "").OwnedBy("StatefulSet", "etcd")),
			bind("etcd-3", "pod-1-2"),
			[]want{deny("target.name", "datacenter pod-1 would hold 2 of N=4 voting members")}},
		{"a StatefulSet of another group gives no N", testutil.Etcd(),
			objs(threeDCs(), etcdSts(101),
				member("etcd-0", "pod-1-1"), member("etcd-1", "pod-2-1"), member("etcd-2", "pod-3-1"), member("etcd-3", "pod-9-9")),
			policy.Request{Operation: policy.OperationCreate, Namespace: "kube-system", Object: func() runtime.Object {
				p := member("etcd-3", "pod-1-2").OwnedBy("StatefulSet", "etcd").Pod()
				p.OwnerReferences[0].APIVersion = "decoy.example.com/v1"
				return p
			}()},
			[]want{deny("spec.nodeName", "datacenter pod-1 would hold 2 of N=4 voting members")}},
		{"owning StatefulSet of 3 refuses a second in one datacenter", testutil.Etcd(),
			objs(threeDCs(), etcdSts(3),
				member("etcd-0", "pod-1-1"), member("etcd-1", "pod-2-1"), member("etcd-2", "").OwnedBy("StatefulSet", "etcd")),
			bind("etcd-2", "pod-1-2"),
			[]want{deny("target.name", "datacenter pod-1 would hold 2 of N=3 voting members"), exact("target.name", balanceMsg)}},
		{"learners of static pods never count", testutil.Etcd(),
			objs(threeDCs(), member("etcd-l", "pod-1-1").Learner().Mirror(), member("etcd-b", "pod-2-1"), member("etcd-c", "pod-3-1"), member("etcd-a", "")),
			bind("etcd-a", "pod-1-2"), nil},
		{"a self-declared learner counts as a voter", testutil.Etcd(),
			objs(threeDCs(), member("etcd-l", "pod-1-1").Learner(), member("etcd-b", "pod-2-1"), member("etcd-a", "")),
			bind("etcd-a", "pod-1-2"),
			[]want{deny("target.name", "datacenter pod-1 would hold 2 of N=3"), deny("target.name", "unbalanced")}},
		{"a self-declared learner is judged as a voter", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1")),
			create(member("etcd-l", "pod-1-2").Learner().Obj(), "kube-system"),
			[]want{deny("spec.nodeName", "datacenter pod-1 would hold 2 of N=3"), deny("spec.nodeName", "unbalanced")}},
		{"a static learner is never judged", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1")),
			create(member("etcd-l", "pod-1-1").Learner().Mirror().Obj(), "kube-system"), nil},
		{"a learner promoted to voter is judged where it runs", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1")),
			policy.Request{Operation: policy.OperationUpdate, Object: member("etcd-l", "pod-1-2").Mirror().Obj(),
				OldObject: member("etcd-l", "pod-1-2").Mirror().Learner().Obj(), Namespace: "kube-system"},
			[]want{{field: "spec.nodeName", action: v1alpha1.ActionWarn, msg: "would hold 2 of N=3"}, {field: "spec.nodeName", action: v1alpha1.ActionWarn, msg: "unbalanced"}}},
		{"finished members do not count", testutil.Etcd(),
			objs(threeDCs(), member("etcd-x", "pod-1-1").Phase(corev1.PodFailed), member("etcd-y", "pod-1-2").Phase(corev1.PodSucceeded),
				member("etcd-b", "pod-2-1"), member("etcd-c", "")),
			bind("etcd-c", "pod-1-1"), nil},
		{"terminating members count until gone", testutil.Etcd(),
			objs(threeDCs(), member("etcd-y", "pod-1-2").Deleting(), member("etcd-b", "pod-2-1"), member("etcd-c", "")),
			bind("etcd-c", "pod-1-1"),
			[]want{deny("target.name", "datacenter pod-1 would hold 2 of N=3"), deny("target.name", "unbalanced")}},
		{"members outside the rule's namespaces do not count", testutil.Etcd(),
			objs(threeDCs(), testutil.Pod("other", "etcd-x").Labels("component", "etcd").NodeName("pod-1-1"),
				member("etcd-b", "pod-2-1"), member("etcd-c", "pod-3-1"), member("etcd-a", "")),
			bind("etcd-a", "pod-1-1"), nil},
		{"a datacenter down is named, not a third asked for", testutil.Etcd().Expected(5),
			objs(testutil.Nodes(3, "pod-1", "pod-3"), testutil.Node("pod-2-1").InDC("pod-2").NotReady().Obj(), testutil.Node("pod-2-2").InDC("pod-2").NotReady().Obj(),
				member("etcd-a", "pod-1-1"), member("etcd-b", "pod-1-2"), member("etcd-c", "pod-2-1"), member("etcd-d", "pod-2-2"), member("etcd-e", "pod-3-1"), member("etcd-f", "")),
			bind("etcd-f", "pod-1-3"),
			[]want{exact("target.name", "datacenter pod-1 would hold 3 of N=5 voting members, more than floor((N-1)/2)=2: losing pod-1 would leave 2, below the quorum of 3; "+
				"datacenter pod-2 has no Ready schedulable node now (down, or cordoned): members can be spread over pod-1, pod-3 only until it has one again"),
				deny("target.name", "leaves the members unbalanced (pod-1=3, pod-3=1")}},
		{"balance ignores a datacenter without a Ready schedulable node", noSurvive,
			objs(testutil.Nodes(2, "pod-1", "pod-2"), testutil.Node("pod-3-1").InDC("pod-3").NotReady().Obj(), testutil.Node("pod-3-2").InDC("pod-3").Cordoned().Obj(),
				member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "")),
			bind("etcd-c", "pod-1-2"), nil},
		{"balance counts a datacenter with a Ready schedulable node", noSurvive,
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "")),
			bind("etcd-c", "pod-1-2"),
			[]want{exact("target.name", balanceMsg)}},
		{"placing into the least loaded datacenter repairs and is allowed", noSurvive,
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-1-2"), member("etcd-c", "")),
			bind("etcd-c", "pod-2-1"), nil},
		{"pod create with nodeName", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1")),
			create(member("etcd-c", "pod-1-1").Obj(), "kube-system"),
			[]want{exact("spec.nodeName", surviveMsg), exact("spec.nodeName", perNodeMsg), exact("spec.nodeName", balanceMsg)}},
		{"pod create without nodeName waits for the binding", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1")),
			create(member("etcd-c", "").Obj(), "kube-system"), nil},
		{"pod update is not a placement", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1")),
			policy.Request{Operation: policy.OperationUpdate, Object: member("etcd-c", "pod-1-1").Obj(), OldObject: member("etcd-c", "pod-1-1").Obj(), Namespace: "kube-system"}, nil},
		{"pod relabelled into the members is judged where it runs", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1")),
			policy.Request{Operation: policy.OperationUpdate, Object: member("etcd-c", "pod-1-2").Obj(),
				OldObject: testutil.Pod("kube-system", "etcd-c").Labels("component", "backup").NodeName("pod-1-2").Obj(), Namespace: "kube-system"},
			[]want{exact("spec.nodeName", surviveMsg), exact("spec.nodeName", balanceMsg)}},
		{"mirror pod is warned, never denied", testutil.Etcd(),
			objs(threeDCs(), member("etcd-pod-1-2", "pod-1-2").Mirror(), member("etcd-pod-2-1", "pod-2-1").Mirror()),
			create(member("etcd-pod-1-1", "pod-1-1").Mirror().Obj(), "kube-system"),
			[]want{
				{field: "spec.nodeName", action: v1alpha1.ActionWarn, msg: "would hold 2 of N=3 voting members"},
				{field: "spec.nodeName", action: v1alpha1.ActionWarn, msg: "leaves the members unbalanced (pod-1=2, pod-2=1, pod-3=0"},
			}},
		{"check of an existing member does not count itself", testutil.Etcd(),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "pod-3-1")),
			policy.Request{Operation: policy.OperationCheck, Object: member("etcd-a", "pod-1-1").Obj()}, nil},
		{"Warn action", testutil.Etcd().Action(v1alpha1.ActionWarn),
			objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "")),
			bind("etcd-b", "pod-1-1"),
			[]want{{field: "target.name", action: v1alpha1.ActionWarn, msg: "would hold 2 of N=3"},
				{field: "target.name", action: v1alpha1.ActionWarn, msg: "already holds 1 member(s)"},
				{field: "target.name", action: v1alpha1.ActionWarn, msg: "unbalanced"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := engine(t, etcdPolicy(tc.rule))
			assertResults(t, e.Evaluate(tc.req, policy.NewStaticState(tc.state...)), tc.want)
		})
	}
}

func TestSpreadTemplates(t *testing.T) {
	sts := func() *testutil.ObjectBuilder {
		return testutil.StatefulSet("kube-system", "etcd").Labels("component", "etcd").Replicas(3)
	}
	spreadPath := "spec.template.spec.topologySpreadConstraints"
	antiPath := "spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
	cases := []struct {
		name  string
		rule  *testutil.SpreadBuilder
		nodes []runtime.Object
		obj   runtime.Object
		want  []want
	}{
		{"no spread constraint", testutil.Etcd(), threeDCs(), sts().Obj(),
			[]want{deny(spreadPath, "quorum members must be spread over datacenters: add {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule")}},
		{"DoNotSchedule constraint", testutil.Etcd(), threeDCs(), sts().TopologySpread(zone, corev1.DoNotSchedule).Obj(), nil},
		{"required anti-affinity", testutil.Etcd(), threeDCs(), sts().PodAntiAffinity(zone).Obj(), nil},
		{"ScheduleAnyway constraint", testutil.Etcd(), threeDCs(), sts().TopologySpread(zone, corev1.ScheduleAnyway).Obj(),
			[]want{deny(spreadPath+"[0].whenUnsatisfiable", "ScheduleAnyway lets the scheduler stack quorum members in one datacenter: use DoNotSchedule")}},
		{"constraint on the hostname only", testutil.Etcd(), threeDCs(), sts().TopologySpread("kubernetes.io/hostname", corev1.DoNotSchedule).Obj(),
			[]want{deny(spreadPath, "quorum members must be spread")}},
		{"constraint selecting other pods", testutil.Etcd(), threeDCs(),
			testutil.StatefulSet("kube-system", "etcd").Labels("app", "other").TopologySpread(zone, corev1.DoNotSchedule).TemplateLabels("component", "etcd").Replicas(3).
				Edit(func(s *corev1.PodSpec) {
					s.TopologySpreadConstraints[0].LabelSelector.MatchLabels = map[string]string{"app": "other", "x": "y"}
				}).Obj(),
			[]want{deny(spreadPath, "quorum members must be spread")}},
		{"Deployment templates too", testutil.Etcd(), threeDCs(),
			testutil.Deployment("kube-system", "etcd").Labels("component", "etcd").Replicas(3).Obj(),
			[]want{deny(spreadPath, "quorum members must be spread")}},
		{"a DaemonSet is never a member template", testutil.Etcd(), threeDCs(),
			testutil.DaemonSet("kube-system", "etcd").Labels("component", "etcd").TopologySpread(zone, corev1.DoNotSchedule).Obj(),
			[]want{deny("spec.template", "a DaemonSet runs one pod on every node")}},
		{"maxSkew above 1", testutil.Etcd(), threeDCs(), sts().TopologySpread(zone, corev1.DoNotSchedule).Edit(func(s *corev1.PodSpec) {
			s.TopologySpreadConstraints[0].MaxSkew = 100
		}).Obj(),
			[]want{deny(spreadPath+"[0].maxSkew", "a skew above 1 lets the scheduler put several quorum members in one datacenter")}},
		{"matchLabelKeys that split the members", testutil.Etcd(), threeDCs(), sts().TopologySpread(zone, corev1.DoNotSchedule).Edit(func(s *corev1.PodSpec) {
			s.TopologySpreadConstraints[0].MatchLabelKeys = []string{"statefulset.kubernetes.io/pod-name"}
		}).Obj(),
			[]want{deny(spreadPath+"[0].matchLabelKeys[0]", "the members do not all share it")}},
		{"matchLabelKeys of a template label", testutil.Etcd(), threeDCs(), sts().TopologySpread(zone, corev1.DoNotSchedule).Edit(func(s *corev1.PodSpec) {
			s.TopologySpreadConstraints[0].MatchLabelKeys = []string{"component"}
		}).Obj(), nil},
		{"anti-affinity limited to another namespace", testutil.Etcd(), threeDCs(), sts().PodAntiAffinity(zone).Edit(func(s *corev1.PodSpec) {
			s.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].Namespaces = []string{"nowhere"}
		}).Obj(),
			[]want{deny(antiPath+"[0].namespaces", "leave out the members' own namespace kube-system")}},
		{"anti-affinity with a namespaceSelector matching nothing", testutil.Etcd(), threeDCs(), sts().PodAntiAffinity(zone).Edit(func(s *corev1.PodSpec) {
			s.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"no": "such"}}
		}).Obj(),
			[]want{deny(antiPath+"[0].namespaces", "leave out the members' own namespace kube-system")}},
		{"anti-affinity over every namespace", testutil.Etcd(), threeDCs(), sts().PodAntiAffinity(zone).Edit(func(s *corev1.PodSpec) {
			s.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].NamespaceSelector = &metav1.LabelSelector{}
		}).Obj(), nil},
		{"a correct constraint and a nodeSelector to one datacenter", testutil.Etcd(), threeDCs(), sts().TopologySpread(zone, corev1.DoNotSchedule).InDC("pod-1").Obj(),
			[]want{deny("spec.template.spec.nodeSelector[topology.kubernetes.io/zone]", "lets the pods run only in pod-1 and never in pod-2, pod-3")}},
		{"a correct constraint and affinity to two datacenters", testutil.Etcd(), threeDCs(),
			sts().PodAntiAffinity(zone).RequiredAffinity(testutil.Term(testutil.In(zone, "pod-1", "pod-2"))).Obj(),
			[]want{deny("spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", "lets the pods run only in pod-1, pod-2 and never in pod-3")}},
		{"4 replicas over 3 datacenters", testutil.Etcd(), threeDCs(), sts().Replicas(4).TopologySpread(zone, corev1.DoNotSchedule).Obj(),
			[]want{{field: "spec.replicas", action: v1alpha1.ActionDeny, exact: true,
				msg: "4 voting members over 3 datacenter(s) put at least 2 in one, more than floor((N-1)/2)=1: losing it would lose quorum; use 5 members instead"}}},
		{"3 replicas over 2 datacenters", testutil.Etcd(), testutil.Nodes(1, "pod-1", "pod-2"), sts().TopologySpread(zone, corev1.DoNotSchedule).Obj(),
			[]want{deny("spec.replicas", "two datacenters can never survive the loss of either")}},
		{"3 replicas while the third datacenter is down", testutil.Etcd(),
			append(testutil.Nodes(1, "pod-1", "pod-2"), testutil.Node("pod-3-1").InDC("pod-3").NotReady().Obj()), sts().TopologySpread(zone, corev1.DoNotSchedule).Obj(),
			[]want{{field: "spec.replicas", action: v1alpha1.ActionDeny, exact: true,
				msg: "3 voting members over 2 datacenter(s) put at least 2 in one, more than floor((N-1)/2)=1: losing it would lose quorum; " +
					"datacenter pod-3 has no Ready schedulable node now (down, or cordoned): members can be spread over pod-1, pod-2 only until it has one again"}}},
		{"3 replicas while two datacenters are cordoned", testutil.Etcd(),
			objs(testutil.Nodes(1, "pod-1"), testutil.Node("pod-2-1").InDC("pod-2").Cordoned().Obj(), testutil.Node("pod-3-1").InDC("pod-3").Cordoned().Obj()),
			sts().TopologySpread(zone, corev1.DoNotSchedule).Obj(),
			[]want{deny("spec.replicas", "datacenters pod-2, pod-3 have no Ready schedulable node now (down, or cordoned): members can be spread over pod-1 only until they have one again")}},
		{"5 replicas over 3 datacenters", testutil.Etcd(), threeDCs(), sts().Replicas(5).PodAntiAffinity(zone).Obj(), nil},
		{"expectedMembers overrides replicas", testutil.Etcd().Expected(4), threeDCs(), sts().Replicas(5).PodAntiAffinity(zone).Obj(),
			[]want{deny("spec.spread[0].expectedMembers", "4 voting members over 3 datacenter(s)")}},
		{"survive disabled", testutil.Etcd().Survive(false), testutil.Nodes(1, "pod-1", "pod-2"), sts().TopologySpread(zone, corev1.DoNotSchedule).Obj(), nil},
		{"template outside the rule's namespaces", testutil.Etcd(), threeDCs(),
			testutil.StatefulSet("db", "etcd").Labels("component", "etcd").Replicas(4).Obj(), nil},
		{"template that is not a member", testutil.Etcd(), threeDCs(),
			testutil.StatefulSet("kube-system", "x").Labels("component", "dns").Obj(), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := engine(t, etcdPolicy(tc.rule))
			assertResults(t, e.Evaluate(create(tc.obj, "kube-system"), policy.NewStaticState(tc.nodes...)), tc.want)
		})
	}
	if _, ok := sts().Obj().(*appsv1.StatefulSet); !ok {
		t.Fatal("fixture is not a StatefulSet")
	}
}

func TestSpreadNodes(t *testing.T) {
	cpRule := func() *testutil.SpreadBuilder {
		return testutil.SpreadNodes("control-plane", "node-role.kubernetes.io/control-plane", "")
	}
	cp := func(name, dc string) *corev1.Node { return testutil.Node(name).InDC(dc).ControlPlane().Obj() }
	state := objs(threeDCs(), cp("cp-1", "pod-1"), cp("cp-2", "pod-2"), cp("cp-3", "pod-3"))
	labelPath := "metadata.labels[topology.kubernetes.io/zone]"
	cases := []struct {
		name string
		rule *testutil.SpreadBuilder
		req  policy.Request
		want []want
	}{
		{"fourth control-plane node with N = current+1", cpRule(), create(cp("cp-4", "pod-1"), ""),
			[]want{{field: labelPath, action: v1alpha1.ActionDeny,
				msg: "datacenter pod-1 would hold 2 of N=4 voting members, more than floor((N-1)/2)=1: losing pod-1 would leave 2, below the quorum of 3; every datacenter holds its share of N=4"}}},
		{"fourth and fifth allowed with expectedMembers 5", cpRule().Expected(5), create(cp("cp-4", "pod-1"), ""), nil},
		{"label change moves a member into a full datacenter", cpRule(),
			policy.Request{Operation: policy.OperationUpdate, Object: cp("cp-2", "pod-1"), OldObject: cp("cp-2", "pod-2")},
			[]want{deny(labelPath, "datacenter pod-1 would hold 2 of N=3"), deny(labelPath, "unbalanced (pod-1=2, pod-2=0, pod-3=1")}},
		{"update without label change", cpRule(),
			policy.Request{Operation: policy.OperationUpdate, Object: cp("cp-2", "pod-2"), OldObject: cp("cp-2", "pod-2")}, nil},
		{"node becoming a member is judged", cpRule(),
			policy.Request{Operation: policy.OperationUpdate, Object: cp("pod-1-1", "pod-1"), OldObject: testutil.Node("pod-1-1").InDC("pod-1").Obj()},
			[]want{deny(labelPath, "would hold 2 of N=4")}},
		{"member node without a datacenter label", cpRule(), create(testutil.Node("cp-x").ControlPlane().Obj(), ""),
			[]want{deny(labelPath, "member node cp-x has no datacenter label topology.kubernetes.io/zone")}},
		{"worker node is not a member", cpRule(), create(testutil.Node("w").InDC("pod-1").Obj(), ""), nil},
		{"node being deleted is not judged", cpRule(), create(testutil.Node("cp-4").InDC("pod-1").ControlPlane().Deleting().Obj(), ""), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := engine(t, etcdPolicy(tc.rule))
			assertResults(t, e.Evaluate(tc.req, policy.NewStaticState(state...)), tc.want)
		})
	}
}

// FuzzEvaluateSpread places a member on a random node of a random cluster:
// the engine never panics, and an admitted placement keeps the node under
// maxPerNode and the datacenter under floor((N-1)/2) members.
func FuzzEvaluateSpread(f *testing.F) {
	f.Add([]byte{3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{2, 1, 0, 0, 0, 1, 1, 2, 2})
	f.Add([]byte{5, 0, 2, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0})
	dcs := []string{"pod-1", "pod-2", "pod-3", "pod-4"}
	f.Fuzz(func(t *testing.T, data []byte) {
		fb := testutil.FuzzBytes(data)
		expected := int32(fb.Next(8)) // 0: unset
		maxPerNode := int32(fb.Next(3))
		rule := testutil.Etcd().Expected(expected).MaxPerNode(maxPerNode)
		e := engine(t, testutil.Policy("p").Spread(rule))
		var state []runtime.Object
		var nodes []string
		for i, n := 0, 1+fb.Next(8); i < n; i++ {
			b := testutil.Node("n" + string(rune('a'+i)))
			if dc := fb.Next(len(dcs) + 1); dc < len(dcs) {
				b.InDC(dcs[dc])
			}
			switch fb.Next(4) {
			case 1:
				b.NotReady()
			case 2:
				b.Cordoned()
			}
			state = append(state, b.Obj())
			nodes = append(nodes, b.Obj().Name)
		}
		for i, n := 0, fb.Next(7); i < n; i++ {
			m := member("etcd-"+string(rune('a'+i)), nodes[fb.Next(len(nodes))])
			switch fb.Next(5) {
			case 1:
				m.Learner()
			case 2:
				m.Mirror()
			case 3:
				m.Phase(corev1.PodFailed)
			}
			state = append(state, m.Obj())
		}
		state = append(state, member("etcd-new", "").Obj())
		target := nodes[fb.Next(len(nodes))]
		st := policy.NewStaticState(state...)
		rs := e.Evaluate(bind("etcd-new", target), st)
		for _, r := range rs {
			if r.Field() != "target.name" || r.Message() == "" {
				t.Fatalf("malformed result %+v", r)
			}
		}
		if rs.HasDeny() {
			return
		}
		dc := policy.DatacenterOf(st.Node(target), zone)
		if dc == "" {
			t.Fatalf("admitted placement on unlabeled node %s", target)
		}
		perNode, perDC, total := 1, 1, 0
		for _, p := range st.Pods("kube-system", nil) {
			if p.Name == "etcd-new" || p.Spec.NodeName == "" || (policy.IsLearner(p) && policy.IsMirrorPod(p)) || p.Status.Phase == corev1.PodFailed {
				continue
			}
			total++
			if p.Spec.NodeName == target {
				perNode++
			}
			if policy.DatacenterOf(st.Node(p.Spec.NodeName), zone) == dc {
				perDC++
			}
		}
		limit := int(maxPerNode)
		if limit == 0 {
			limit = 1
		}
		if perNode > limit {
			t.Fatalf("admitted %d members on node %s, maxPerNode %d", perNode, target, limit)
		}
		n := int(expected)
		if n == 0 {
			n = max(total+1, 3)
		}
		if perDC > policy.MaxPerDatacenter(n) {
			t.Fatalf("admitted %d members in %s with N=%d", perDC, dc, n)
		}
	})
}

func TestNilState(t *testing.T) {
	e := engine(t, workersPolicy().Spread(testutil.Etcd(), testutil.SpreadNodes("cp", "node-role.kubernetes.io/control-plane", "")))
	for _, req := range []policy.Request{
		create(testutil.Deployment("travis", "w").Labels("app", "worker").InDC("pod-1").Obj(), "travis"),
		create(testutil.Pod("travis", "w").Labels("app", "worker").InDC("pod-1").NodeName("x").Obj(), "travis"),
		create(member("etcd-a", "x").Obj(), "kube-system"),
		create(testutil.StatefulSet("kube-system", "etcd").Labels("component", "etcd").Obj(), "kube-system"),
		create(testutil.Node("cp").ControlPlane().InDC("pod-1").Obj(), ""),
		bind("etcd-a", "x"),
	} {
		_ = e.Evaluate(req, nil)
		_ = e.Mutate(req.Object, "travis", nil)
	}
	if got := e.Datacenters(nil); len(got) != 3 {
		t.Errorf("Datacenters(nil) = %v", got)
	}
}

// TestSpreadNodeRelabelMovesMembers: a relabel of a Node that holds member
// pods is judged as placing them in its new datacenter.
func TestSpreadNodeRelabelMovesMembers(t *testing.T) {
	e := engine(t, etcdPolicy(testutil.Etcd()))
	state := policy.NewStaticState(objs(threeDCs(), member("etcd-a", "pod-1-1"), member("etcd-b", "pod-2-1"), member("etcd-c", "pod-3-1"))...)
	relabel := func(node, from, to string) policy.Request {
		return policy.Request{Operation: policy.OperationUpdate, Object: testutil.Node(node).InDC(to).Obj(), OldObject: testutil.Node(node).InDC(from).Obj()}
	}
	labelPath := "metadata.labels[topology.kubernetes.io/zone]"
	assertResults(t, e.Evaluate(relabel("pod-2-1", "pod-2", "pod-1"), state),
		[]want{deny(labelPath, "node pod-2-1 holds member kube-system/etcd-b: datacenter pod-1 would hold 2 of N=3"),
			deny(labelPath, "node pod-2-1 holds member kube-system/etcd-b: placing the member in datacenter pod-1 leaves the members unbalanced")})
	assertResults(t, e.Evaluate(relabel("pod-2-2", "pod-2", "pod-1"), state), nil)
	assertResults(t, e.Evaluate(policy.Request{Operation: policy.OperationUpdate, Object: testutil.Node("pod-2-1").InDC("pod-2").Label("disk", "ssd").Obj(),
		OldObject: testutil.Node("pod-2-1").InDC("pod-2").Obj()}, state), nil)
}
