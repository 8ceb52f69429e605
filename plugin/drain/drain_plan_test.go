package drain

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// Fixture helpers for drain tests, on top of policy/testutil.

// node builds a Ready node in dc with 4 CPU, 8Gi and 110 pods allocatable.
func dNode(name, dc string) *testutil.NodeBuilder {
	b := testutil.Node(name).InDC(dc)
	b.Obj().Status.Allocatable = corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return b
}

// cp builds a control-plane node in dc, tainted NoSchedule as kubeadm does.
func dCP(name, dc string) *testutil.NodeBuilder {
	b := dNode(name, dc).ControlPlane()
	b.Obj().Spec.Taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
	return b
}

// pod builds a Running, Ready pod of app on nodeName owned by the
// ReplicaSet "<app>-rs", requesting cpu and memory.
func dPod(ns, name, nodeName, app string) *testutil.ObjectBuilder {
	b := testutil.Pod(ns, name).NodeName(nodeName).Labels("app", app).OwnedBy("ReplicaSet", app+"-rs").Phase(corev1.PodRunning)
	p := b.Pod()
	p.UID = types.UID("uid-" + ns + "-" + name)
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	return b
}

func dRequests(b *testutil.ObjectBuilder, cpu, mem string) *testutil.ObjectBuilder {
	return b.Edit(func(s *corev1.PodSpec) {
		s.Containers[0].Resources.Requests = corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
		}
	})
}

// etcdPod builds the mirror pod of the etcd member on nodeName.
func dEtcdPod(nodeName string) *testutil.ObjectBuilder {
	b := testutil.Pod("kube-system", "etcd-"+nodeName).NodeName(nodeName).Labels("component", "etcd", "tier", "control-plane").Mirror().
		Annotations("kubeadm.kubernetes.io/etcd.advertise-client-urls", "https://10.0.0.1:2379").Phase(corev1.PodRunning)
	b.Pod().Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	return b
}

func dReplicaSet(ns, app string) *testutil.ObjectBuilder {
	return testutil.ReplicaSet(ns, app+"-rs").OwnedBy("Deployment", app)
}

func dPDB(ns, name, app string, n int) policyv1.PodDisruptionBudget {
	v := intstr.FromInt32(int32(n))
	return policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &v, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		},
	}
}

// dPlanInput assembles a PlanInput for dc from builders.
type dPlanInput struct {
	in PlanInput
}

func newDPlanInput(dc string) *dPlanInput {
	return &dPlanInput{in: PlanInput{Datacenter: dc, Label: testutil.Zone}}
}

func (p *dPlanInput) nodes(bs ...*testutil.NodeBuilder) *dPlanInput {
	for _, b := range bs {
		p.in.Nodes = append(p.in.Nodes, *b.Obj())
	}
	return p
}

func (p *dPlanInput) pods(bs ...*testutil.ObjectBuilder) *dPlanInput {
	for _, b := range bs {
		p.in.Pods = append(p.in.Pods, *b.Pod())
	}
	return p
}

func (p *dPlanInput) pdbs(pdbs ...policyv1.PodDisruptionBudget) *dPlanInput {
	p.in.PDBs = append(p.in.PDBs, pdbs...)
	return p
}

func mustDPlan(t *testing.T, in PlanInput) *Plan {
	t.Helper()
	plan, err := ComputePlan(in)
	if err != nil {
		t.Fatalf("ComputePlan: %v", err)
	}
	return plan
}

func dPodNames(ps []PlanPod) []string {
	out := []string{}
	for _, p := range ps {
		s := p.Namespace + "/" + p.Name
		if p.Reason != "" {
			s += ":" + p.Reason
		}
		out = append(out, s)
	}
	return out
}

// threeDCs is a MacStadium-like cluster: one control plane (and etcd
// member) per datacenter, two workers in pod-1 and pod-2, one in pod-3.
func dThreeDCs() *dPlanInput {
	return newDPlanInput("pod-2").nodes(
		dCP("pod-1-cp-1", "pod-1"), dNode("pod-1-worker-1", "pod-1"), dNode("pod-1-worker-2", "pod-1"),
		dCP("pod-2-cp-1", "pod-2"), dNode("pod-2-worker-1", "pod-2"), dNode("pod-2-worker-2", "pod-2"),
		dCP("pod-3-cp-1", "pod-3"), dNode("pod-3-worker-1", "pod-3"),
	).pods(dEtcdPod("pod-1-cp-1"), dEtcdPod("pod-2-cp-1"), dEtcdPod("pod-3-cp-1"))
}

func TestDrainPlanUnknownDatacenter(t *testing.T) {
	in := dThreeDCs().in
	in.Datacenter = "pod-9"
	_, err := ComputePlan(in)
	var unknown *UnknownDatacenterError
	if !errors.As(err, &unknown) {
		t.Fatalf("err = %v, want *UnknownDatacenterError", err)
	}
	if want := []string{"pod-1", "pod-2", "pod-3"}; !reflect.DeepEqual(unknown.Known, want) {
		t.Errorf("Known = %v, want %v", unknown.Known, want)
	}
	if want := `datacenter "pod-9" matches no node with label topology.kubernetes.io/zone: did you mean pod-1? known datacenters: pod-1, pod-2, pod-3`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message = %q, want prefix %q", err.Error(), want)
	}
}

func TestDrainPlanEvictAndSkip(t *testing.T) {
	p := dThreeDCs().pods(
		dPod("apps", "web-1", "pod-2-worker-1", "web"),
		dPod("apps", "web-2", "pod-2-worker-2", "web"),
		dPod("apps", "web-3", "pod-1-worker-1", "web"), // elsewhere: not in the plan
		testutil.Pod("apps", "agent-x").NodeName("pod-2-worker-1").OwnedBy("DaemonSet", "agent").Phase(corev1.PodRunning),
		testutil.Pod("apps", "job-done").NodeName("pod-2-worker-2").OwnedBy("Job", "once").Phase(corev1.PodSucceeded),
		testutil.Pod("apps", "db-0").NodeName("pod-2-worker-2").OwnedBy("StatefulSet", "db").Phase(corev1.PodRunning),
	)
	p.in.ReplicaSets = append(p.in.ReplicaSets, *dReplicaSet("apps", "web").Obj().(*appsv1.ReplicaSet))
	plan := mustDPlan(t, p.in)

	if got, want := dPodNames(plan.Evict), []string{"apps/web-1", "apps/db-0", "apps/web-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Evict = %v, want %v", got, want)
	}
	if got, want := plan.Evict[0].Owner, "Deployment/web"; got != want {
		t.Errorf("owner of web-1 = %q, want %q (resolved through its ReplicaSet)", got, want)
	}
	if got, want := plan.Evict[1].Owner, "StatefulSet/db"; got != want {
		t.Errorf("owner of db-0 = %q, want %q", got, want)
	}
	if got, want := dPodNames(plan.Skipped), []string{"kube-system/etcd-pod-2-cp-1:MirrorPod", "apps/agent-x:DaemonSet", "apps/job-done:Finished"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Skipped = %v, want %v", got, want)
	}
	wantNodes := []PlanNode{
		{Name: "pod-2-cp-1", Ready: true, Condition: "Ready", ControlPlane: true, Evict: 0, Skipped: 1},
		{Name: "pod-2-worker-1", Ready: true, Condition: "Ready", Evict: 1, Skipped: 1},
		{Name: "pod-2-worker-2", Ready: true, Condition: "Ready", Evict: 2, Skipped: 1},
	}
	if !reflect.DeepEqual(plan.Nodes, wantNodes) {
		t.Errorf("Nodes = %+v, want %+v", plan.Nodes, wantNodes)
	}
	if len(plan.Blockers) != 0 || plan.Refused {
		t.Errorf("Blockers = %+v, Refused = %v; want none", plan.Blockers, plan.Refused)
	}
}

func TestDrainPlanBlockers(t *testing.T) {
	unmanaged := testutil.Pod("apps", "debug").NodeName("pod-2-worker-1").Phase(corev1.PodRunning)
	scratch := dPod("apps", "cache-1", "pod-2-worker-1", "cache").Edit(func(s *corev1.PodSpec) {
		s.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	})
	tests := []struct {
		name        string
		force, data bool
		wantKinds   []string
		wantRefused bool
		wantRemedy  []string
	}{
		{name: "no flags", wantKinds: []string{blockEmptyDir, blockUnmanaged}, wantRefused: true,
			wantRemedy: []string{"pass --delete-emptydir-data to evict them anyway", "pass --force to evict them anyway, or delete or re-create them under a controller"}},
		{name: "force", force: true, wantKinds: []string{blockEmptyDir}, wantRefused: true,
			wantRemedy: []string{"pass --delete-emptydir-data to evict them anyway"}},
		{name: "force and delete-emptydir-data", force: true, data: true, wantKinds: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := dThreeDCs().pods(unmanaged, scratch)
			p.in.Force, p.in.DeleteEmptyDirData = tt.force, tt.data
			plan := mustDPlan(t, p.in)
			kinds, remedies := []string{}, []string{}
			for _, b := range plan.Blockers {
				kinds = append(kinds, b.Kind)
				remedies = append(remedies, b.Remedy)
				if !b.Fatal {
					t.Errorf("blocker %s is not fatal", b.Kind)
				}
			}
			if !reflect.DeepEqual(kinds, tt.wantKinds) {
				t.Errorf("blocker kinds = %v, want %v", kinds, tt.wantKinds)
			}
			if len(tt.wantRemedy) > 0 && !reflect.DeepEqual(remedies, tt.wantRemedy) {
				t.Errorf("remedies = %q, want %q", remedies, tt.wantRemedy)
			}
			if plan.Refused != tt.wantRefused {
				t.Errorf("Refused = %v, want %v (reasons %q)", plan.Refused, tt.wantRefused, plan.Reasons)
			}
			if got := dPodNames(plan.Evict); !reflect.DeepEqual(got, []string{"apps/cache-1", "apps/debug"}) {
				t.Errorf("Evict = %v: blocked pods stay in the plan", got)
			}
		})
	}
	t.Run("blocker names the pods", func(t *testing.T) {
		plan := mustDPlan(t, dThreeDCs().pods(unmanaged).in)
		b := plan.Blockers[0]
		if b.Object != "apps/debug" || !reflect.DeepEqual(b.Pods, []string{"apps/debug"}) {
			t.Errorf("blocker = %+v, want object and pods apps/debug", b)
		}
		if b.Message != "1 pod(s) have no controller: evicted, they are gone for good" {
			t.Errorf("message = %q", b.Message)
		}
	})
}

func dPinnedPod(ns, name, nodeName, app, dc string) *testutil.ObjectBuilder {
	return dPod(ns, name, nodeName, app).InDC(dc)
}

func TestDrainPlanPDBAndPinned(t *testing.T) {
	t.Run("minAvailable equals replicas never allows a disruption", func(t *testing.T) {
		p := dThreeDCs().pods(
			dPod("apps", "api-1", "pod-2-worker-1", "api"),
			dPod("apps", "api-2", "pod-1-worker-1", "api"),
		).pdbs(dPDB("apps", "api-pdb", "api", 2))
		plan := mustDPlan(t, p.in)
		if len(plan.Blockers) != 1 {
			t.Fatalf("Blockers = %+v, want one", plan.Blockers)
		}
		b := plan.Blockers[0]
		if b.Kind != blockPDB || b.Object != "apps/api-pdb" || b.Fatal || !reflect.DeepEqual(b.Pods, []string{"apps/api-1"}) {
			t.Errorf("blocker = %+v", b)
		}
		if want := "PDB apps/api-pdb needs 2 healthy of 2 pods: it never allows a disruption, so eviction of its 1 pod(s) here blocks forever"; b.Message != want {
			t.Errorf("message = %q, want %q", b.Message, want)
		}
		if plan.Refused {
			t.Errorf("a PDB blocker must not refuse the drain: %q", plan.Reasons)
		}
		if !plan.Evict[0].Blocked {
			t.Errorf("api-1 not marked blocked")
		}
		if got := plan.pdbsOf["apps/api-1"]; !reflect.DeepEqual(got, []string{"apps/api-pdb"}) {
			t.Errorf("pdbsOf[api-1] = %v", got)
		}
	})
	t.Run("a PDB with room is no blocker", func(t *testing.T) {
		p := dThreeDCs().pods(
			dPod("apps", "api-1", "pod-2-worker-1", "api"),
			dPod("apps", "api-2", "pod-1-worker-1", "api"),
			dPod("apps", "api-3", "pod-3-worker-1", "api"),
		).pdbs(dPDB("apps", "api-pdb", "api", 2))
		plan := mustDPlan(t, p.in)
		if len(plan.Blockers) != 0 || len(plan.Pinned) != 0 {
			t.Errorf("Blockers = %+v, Pinned = %+v; want none", plan.Blockers, plan.Pinned)
		}
	})
	t.Run("pinned with a PDB blocks forever", func(t *testing.T) {
		p := dThreeDCs().pods(
			dPinnedPod("apps", "w-1", "pod-2-worker-1", "w", "pod-2"),
			dPinnedPod("apps", "w-2", "pod-2-worker-2", "w", "pod-2"),
			dPinnedPod("apps", "w-3", "pod-2-worker-2", "w", "pod-2"),
		).pdbs(dPDB("apps", "w-pdb", "w", 2))
		p.in.ReplicaSets = append(p.in.ReplicaSets, *dReplicaSet("apps", "w").Obj().(*appsv1.ReplicaSet))
		plan := mustDPlan(t, p.in)
		want := []PinnedSet{{
			Workload: "Deployment/apps/w", Pods: 3, PDBs: []string{"apps/w-pdb"}, BlocksForever: true,
			Reason:  "its nodeSelector topology.kubernetes.io/zone=pod-2 matches no schedulable node outside pod-2",
			Message: "Deployment/apps/w is pinned to pod-2 (its nodeSelector topology.kubernetes.io/zone=pod-2 matches no schedulable node outside pod-2): its 3 pod(s) here go Pending when evicted, and PDB apps/w-pdb blocks their eviction forever",
		}}
		if !reflect.DeepEqual(plan.Pinned, want) {
			t.Errorf("Pinned = %+v, want %+v", plan.Pinned, want)
		}
		if len(plan.Blockers) != 1 || plan.Blockers[0].Message != "PDB apps/w-pdb allows 1 of 3 pods down, but 3 of them are pinned to pod-2 and cannot come back elsewhere: 2 eviction(s) block forever" {
			t.Errorf("Blockers = %+v", plan.Blockers)
		}
		if got := plan.Blockers[0].Pods; len(got) != 2 {
			t.Errorf("blocked pods = %v, want 2", got)
		}
	})
	t.Run("pinned without a PDB goes Pending", func(t *testing.T) {
		p := dThreeDCs().pods(dPinnedPod("apps", "w-1", "pod-2-worker-1", "w", "pod-2"))
		plan := mustDPlan(t, p.in)
		reason := "its nodeSelector topology.kubernetes.io/zone=pod-2 matches no schedulable node outside pod-2"
		want := []PinnedSet{{Workload: "ReplicaSet/apps/w-rs", Pods: 1, Reason: reason, Message: "ReplicaSet/apps/w-rs is pinned to pod-2 (" + reason + "): its 1 pod(s) here go Pending when evicted"}}
		if !reflect.DeepEqual(plan.Pinned, want) {
			t.Errorf("Pinned = %+v, want %+v", plan.Pinned, want)
		}
		if len(plan.Blockers) != 0 {
			t.Errorf("Blockers = %+v, want none", plan.Blockers)
		}
	})
	t.Run("pinned elsewhere is not pinned here", func(t *testing.T) {
		p := dThreeDCs().pods(dPinnedPod("apps", "w-1", "pod-2-worker-1", "w", "pod-1"))
		if plan := mustDPlan(t, p.in); len(plan.Pinned) != 0 {
			t.Errorf("Pinned = %+v, want none", plan.Pinned)
		}
	})
}

func TestDrainPlanCapacity(t *testing.T) {
	// Elsewhere: pod-1 has 2 workers (8 CPU, 16Gi); pod-3 one worker (4 CPU,
	// 8Gi); control planes are tainted and do not count. 12 CPU, 24Gi free.
	tests := []struct {
		name     string
		pods     []*testutil.ObjectBuilder
		wantCPU  ResourceFit
		wantMem  ResourceFit
		wantFits bool
	}{
		{
			name: "fits",
			pods: []*testutil.ObjectBuilder{
				dRequests(dPod("apps", "a-1", "pod-2-worker-1", "a"), "2", "4Gi"),
				dRequests(dPod("apps", "a-2", "pod-1-worker-1", "a"), "1", "1Gi"),
			},
			wantCPU: ResourceFit{Needed: "2", Free: "11", Fits: true}, wantMem: ResourceFit{Needed: "4Gi", Free: "23Gi", Fits: true}, wantFits: true,
		},
		{
			name: "cpu short",
			pods: []*testutil.ObjectBuilder{
				dRequests(dPod("apps", "a-1", "pod-2-worker-1", "a"), "8", "1Gi"),
				dRequests(dPod("apps", "a-2", "pod-2-worker-2", "a"), "3500m", "1Gi"),
				dRequests(dPod("apps", "a-3", "pod-3-worker-1", "a"), "1", "1Gi"),
			},
			wantCPU: ResourceFit{Needed: "11500m", Free: "11", Fits: false}, wantMem: ResourceFit{Needed: "2Gi", Free: "23Gi", Fits: true},
		},
		{
			name: "pinned pods need no room elsewhere",
			pods: []*testutil.ObjectBuilder{
				dRequests(dPinnedPod("apps", "p-1", "pod-2-worker-1", "p", "pod-2"), "100", "100Gi"),
			},
			wantCPU: ResourceFit{Needed: "0", Free: "12", Fits: true}, wantMem: ResourceFit{Needed: "0", Free: "24Gi", Fits: true}, wantFits: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := mustDPlan(t, dThreeDCs().pods(tt.pods...).in)
			c := plan.Capacity
			if c.CPU != tt.wantCPU || c.Memory != tt.wantMem || c.Fits != tt.wantFits {
				t.Errorf("Capacity = %+v, want cpu %+v memory %+v fits %v", c, tt.wantCPU, tt.wantMem, tt.wantFits)
			}
			if c.Nodes != 3 {
				t.Errorf("Nodes = %d, want 3 (untainted, Ready, schedulable workers elsewhere)", c.Nodes)
			}
		})
	}
	t.Run("cordoned and NotReady nodes elsewhere do not count", func(t *testing.T) {
		p := newDPlanInput("pod-2").nodes(dNode("pod-2-worker-1", "pod-2"), dNode("pod-1-worker-1", "pod-1").Cordoned(), dNode("pod-1-worker-2", "pod-1").NotReady()).
			pods(dRequests(dPod("apps", "a-1", "pod-2-worker-1", "a"), "1", "1Gi"))
		c := mustDPlan(t, p.in).Capacity
		if c.Fits || c.Nodes != 0 || c.CPU.Free != "0" || c.Pods.Free != "0" || len(c.Unfit) != 1 {
			t.Errorf("Capacity = %+v, want nothing free", c)
		}
	})
}

func TestDrainPlanQuorum(t *testing.T) {
	twoDCs := func() *dPlanInput {
		return newDPlanInput("pod-1").nodes(
			dCP("pod-1-cp-1", "pod-1"), dCP("pod-1-cp-2", "pod-1"), dNode("pod-1-worker-1", "pod-1"),
			dCP("pod-2-cp-1", "pod-2"), dNode("pod-2-worker-1", "pod-2"),
		).pods(dEtcdPod("pod-1-cp-1"), dEtcdPod("pod-1-cp-2"), dEtcdPod("pod-2-cp-1"))
	}
	t.Run("two of three voters refused", func(t *testing.T) {
		plan := mustDPlan(t, twoDCs().in)
		if !plan.Refused || plan.Quorum.Survives {
			t.Fatalf("Refused = %v, Survives = %v; want refused", plan.Refused, plan.Quorum.Survives)
		}
		wantEtcd := QuorumCount{Source: "pods", Total: 3, InDatacenter: 2, Remaining: 1, Quorum: 2, Nodes: []string{"pod-1-cp-1", "pod-1-cp-2"}}
		if !reflect.DeepEqual(plan.Quorum.Etcd, wantEtcd) {
			t.Errorf("Etcd = %+v, want %+v", plan.Quorum.Etcd, wantEtcd)
		}
		// Only what refuses: the API servers that remain are no reason.
		wantReasons := []string{
			"pod-1 holds 2 of 3 etcd voters; without it 1 remain, quorum is 2: powering it off loses etcd quorum",
			"pass --allow-quorum-loss to drain anyway",
		}
		if !reflect.DeepEqual(plan.Reasons, wantReasons) {
			t.Errorf("Reasons = %q, want %q", plan.Reasons, wantReasons)
		}
	})
	t.Run("allow-quorum-loss", func(t *testing.T) {
		p := twoDCs()
		p.in.AllowQuorumLoss = true
		plan := mustDPlan(t, p.in)
		if plan.Refused || plan.Quorum.Survives {
			t.Errorf("Refused = %v, Survives = %v; want accepted, still not surviving", plan.Refused, plan.Quorum.Survives)
		}
	})
	t.Run("one of three voters survives", func(t *testing.T) {
		p := twoDCs()
		p.in.Datacenter = "pod-2"
		plan := mustDPlan(t, p.in)
		if plan.Refused || !plan.Quorum.Survives {
			t.Errorf("Refused = %v, Survives = %v; reasons %q", plan.Refused, plan.Quorum.Survives, plan.Reasons)
		}
		if want := "pod-2 holds 1 of 3 etcd voters; without it 2 remain, quorum is 2: etcd keeps quorum"; plan.Quorum.Messages[0] != want {
			t.Errorf("message = %q, want %q", plan.Quorum.Messages[0], want)
		}
	})
	t.Run("an unhealthy voter elsewhere tips it", func(t *testing.T) {
		plan := mustDPlan(t, dThreeDCs().in)
		if !plan.Quorum.Survives {
			t.Fatalf("healthy 1/1/1 must survive: %q", plan.Quorum.Messages)
		}
		p := dThreeDCs()
		for i := range p.in.Nodes {
			if p.in.Nodes[i].Name == "pod-3-cp-1" {
				p.in.Nodes[i].Status.Conditions[0].Status = corev1.ConditionFalse
			}
		}
		plan = mustDPlan(t, p.in)
		if plan.Quorum.Survives || !plan.Refused {
			t.Errorf("Survives = %v, Refused = %v; want refused", plan.Quorum.Survives, plan.Refused)
		}
		if want := "pod-2 holds 1 of 3 etcd voters; without it 1 remain (1 more outside it are unhealthy), quorum is 2: powering it off loses etcd quorum"; plan.Quorum.Messages[0] != want {
			t.Errorf("message = %q, want %q", plan.Quorum.Messages[0], want)
		}
	})
	t.Run("learners do not vote", func(t *testing.T) {
		p := newDPlanInput("pod-2").nodes(dCP("pod-1-cp-1", "pod-1"), dCP("pod-2-cp-1", "pod-2"), dCP("pod-2-cp-2", "pod-2")).
			pods(dEtcdPod("pod-1-cp-1"), dEtcdPod("pod-2-cp-1").Learner(), dEtcdPod("pod-2-cp-2").Learner())
		plan := mustDPlan(t, p.in)
		if plan.Quorum.Etcd.Total != 1 || plan.Quorum.Etcd.InDatacenter != 0 || !plan.Quorum.Survives {
			t.Errorf("Etcd = %+v, Survives = %v; want 1 voter outside pod-2", plan.Quorum.Etcd, plan.Quorum.Survives)
		}
	})
	t.Run("last API server", func(t *testing.T) {
		p := newDPlanInput("pod-1").nodes(dCP("pod-1-cp-1", "pod-1"), dNode("pod-2-worker-1", "pod-2"))
		plan := mustDPlan(t, p.in)
		if plan.Quorum.Survives || !plan.Refused {
			t.Errorf("Survives = %v, Refused = %v; want refused", plan.Quorum.Survives, plan.Refused)
		}
		want := []string{
			"no etcd pods found (component=etcd in kube-system): etcd quorum not checked",
			"pod-1 holds 1 of 1 API servers; without it none remain healthy: the cluster becomes unreachable",
		}
		if !reflect.DeepEqual(plan.Quorum.Messages, want) {
			t.Errorf("Messages = %q, want %q", plan.Quorum.Messages, want)
		}
	})
	t.Run("kube-apiserver pods count when present", func(t *testing.T) {
		p := twoDCs()
		p.in.Datacenter = "pod-2"
		api := testutil.Pod("kube-system", "kube-apiserver-pod-1-cp-1").NodeName("pod-1-cp-1").Labels("component", "kube-apiserver").Mirror().Phase(corev1.PodRunning)
		api.Pod().Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		plan := mustDPlan(t, p.pods(api).in)
		if want := (QuorumCount{Source: "pods", Total: 1, InDatacenter: 0, Remaining: 1}); !reflect.DeepEqual(plan.Quorum.APIServers, want) {
			t.Errorf("APIServers = %+v, want %+v", plan.Quorum.APIServers, want)
		}
	})
}

// TestDrainPlanControlPlaneEndpoint: a datacenter that holds the only
// control-plane endpoint is refused like a quorum loss, whatever etcd
// says; --allow-quorum-loss overrides it; other datacenters are judged as
// before, and an endpoint not read changes nothing.
func TestDrainPlanControlPlaneEndpoint(t *testing.T) {
	withLB := func(dc string) PlanInput {
		p := dThreeDCs()
		p.in.Datacenter = dc
		for i := range p.in.Nodes {
			if p.in.Nodes[i].Name == "pod-1-cp-1" {
				p.in.Nodes[i].Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.1.0.1"}}
			}
		}
		p.in.Endpoint = &cluster.ControlPlaneEndpoint{Address: "10.1.0.1:6443", Source: cluster.EndpointSourceKubeadmConfig}
		return p.in
	}
	plan := mustDPlan(t, withLB("pod-1"))
	if !plan.Refused || plan.Quorum.Survives || !plan.Quorum.EtcdSurvives {
		t.Fatalf("drain pod-1 holding the endpoint: refused %v, survives %v, etcd survives %v; want refused although etcd survives", plan.Refused, plan.Quorum.Survives, plan.Quorum.EtcdSurvives)
	}
	ep := plan.Quorum.Endpoint
	if ep == nil || ep.Reachable == nil || *ep.Reachable || ep.Datacenter != "pod-1" {
		t.Fatalf("endpoint = %+v; want it in pod-1 (a node's address), unreachable", ep)
	}
	if reasons := strings.Join(plan.Reasons, "\n"); !strings.Contains(reasons, "control-plane endpoint 10.1.0.1:6443 (from kubeadm-config) goes with pod-1") || !strings.Contains(reasons, "--allow-quorum-loss") {
		t.Errorf("reasons do not name the endpoint and the override:\n%s", reasons)
	}
	// etcd keeps quorum and API servers remain: those lines are in the
	// plan, not among the reasons of the refusal.
	if len(plan.Reasons) != 2 {
		t.Errorf("reasons = %q; want the endpoint and the override only", plan.Reasons)
	}

	in := withLB("pod-1")
	in.AllowQuorumLoss = true
	if plan := mustDPlan(t, in); plan.Refused {
		t.Errorf("--allow-quorum-loss: still refused: %q", plan.Reasons)
	}
	if plan := mustDPlan(t, withLB("pod-2")); plan.Refused || plan.Quorum.Endpoint == nil || plan.Quorum.Endpoint.Reachable == nil || !*plan.Quorum.Endpoint.Reachable {
		t.Errorf("drain pod-2: refused %v, endpoint %+v; want the endpoint kept", plan.Refused, plan.Quorum.Endpoint)
	}
	in = withLB("pod-1")
	in.Endpoint = nil
	if plan := mustDPlan(t, in); plan.Refused || plan.Quorum.Endpoint != nil {
		t.Errorf("endpoint not read: refused %v, endpoint %+v; want neither", plan.Refused, plan.Quorum.Endpoint)
	}
}

// TestDrainPlanExternalEtcd: members on hosts that are no node (external
// etcd) count in the datacenter --etcd-datacenters or a policy's
// spec.etcdMembers gives them, as kubectl dc status counts them: two of
// three voters in pod-1 refuse its drain, one in pod-2 does not.
func TestDrainPlanExternalEtcd(t *testing.T) {
	view := &cluster.EtcdView{Source: cluster.EtcdSourceDirect, LeaderID: 1}
	for i := range 3 {
		host := fmt.Sprintf("10.9.%d.10", i)
		view.Members = append(view.Members, cluster.EtcdMemberInfo{
			ID: uint64(i + 1), Name: fmt.Sprintf("etcd-%d", i), Healthy: true,
			ClientURLs: []string{"https://" + host + ":2379"}, PeerURLs: []string{"https://" + host + ":2380"},
		})
	}
	in := func(dc string) PlanInput {
		p := dThreeDCs()
		p.in.Datacenter = dc
		p.in.EtcdPods = []*corev1.Pod{}
		p.in.Pods = nil
		p.in.Etcd = view
		// By name (the flag), by address (a policy).
		p.in.MemberDatacenters = map[string]string{"etcd-0": "pod-1", "10.9.1.10": "pod-1", "etcd-2": "pod-2"}
		p.in.MemberSources = map[string]string{"10.9.1.10": "PlacementPolicy/external"}
		return p.in
	}
	plan := mustDPlan(t, in("pod-1"))
	if plan.Quorum.Etcd.Total != 3 || plan.Quorum.Etcd.InDatacenter != 2 || !plan.Refused || plan.Quorum.EtcdSurvives {
		t.Errorf("drain pod-1: etcd %+v, refused %v; want 2 of 3 external voters in pod-1, refused", plan.Quorum.Etcd, plan.Refused)
	}
	plan = mustDPlan(t, in("pod-2"))
	if plan.Quorum.Etcd.InDatacenter != 1 || plan.Refused || !plan.Quorum.EtcdSurvives {
		t.Errorf("drain pod-2: etcd %+v, refused %v (%q); want 1 of 3 in pod-2, not refused", plan.Quorum.Etcd, plan.Refused, plan.Reasons)
	}
}

// TestDrainPlanKine: on kine over PostgreSQL the plan judges the
// database, not etcd quorum: the datacenter holding the only primary
// refuses with the replica to promote, another passes, and without
// --datastore-dsn the plan says the primary is not known.
func TestDrainPlanKine(t *testing.T) {
	lag := 2 * time.Second
	servers := []policy.DatabaseServer{
		{Address: "10.0.1.20:5432", Reachable: true, Primary: true},
		{Address: "10.0.2.20:5432", Reachable: true, Streaming: true, ReplayLag: &lag},
	}
	in := func(dc string, db []policy.DatabaseServer) PlanInput {
		p := dThreeDCs()
		p.in.Datacenter = dc
		p.in.EtcdPods = []*corev1.Pod{}
		p.in.Pods = nil
		p.in.Kine = []string{"etcd API"}
		p.in.Database = db
		p.in.DatabaseDatacenters = map[string]string{"10.0.1.20": "pod-1", "10.0.2.20:5432": "pod-2"}
		return p.in
	}
	plan := mustDPlan(t, in("pod-1", servers))
	if !plan.Refused || plan.Quorum.EtcdSurvives || plan.Quorum.Etcd.Source != cluster.EtcdSourceKine ||
		!strings.Contains(strings.Join(plan.Reasons, "\n"), "primary 10.0.1.20:5432 is in pod-1") || !strings.Contains(strings.Join(plan.Reasons, "\n"), "promote 10.0.2.20:5432") {
		t.Errorf("drain pod-1 (the primary's): refused %v, survives %v, source %s, reasons %q; want refused, promote 10.0.2.20:5432 first", plan.Refused, plan.Quorum.EtcdSurvives, plan.Quorum.Etcd.Source, plan.Reasons)
	}
	allowed := in("pod-1", servers)
	allowed.AllowQuorumLoss = true
	if plan := mustDPlan(t, allowed); plan.Refused {
		t.Errorf("drain pod-1 --allow-quorum-loss still refused: %q", plan.Reasons)
	}
	plan = mustDPlan(t, in("pod-2", servers))
	if plan.Refused || !plan.Quorum.EtcdSurvives || !strings.Contains(strings.Join(plan.Quorum.Messages, "\n"), "stays writable") {
		t.Errorf("drain pod-2 (the replica's): refused %v (%q), messages %q; want allowed, the datastore writable", plan.Refused, plan.Reasons, plan.Quorum.Messages)
	}
	plan = mustDPlan(t, in("pod-1", nil))
	msgs := strings.Join(plan.Quorum.Messages, "\n")
	if plan.Refused || !strings.Contains(msgs, "--datastore-dsn") || strings.Contains(msgs, "no etcd pods") {
		t.Errorf("drain pod-1 without a DSN: refused %v, messages %q; want allowed with a note asking for --datastore-dsn", plan.Refused, msgs)
	}
}

// TestDrainPlanKineUnknown: a database the plan cannot judge (no primary,
// two, or a server placed nowhere) refuses nothing and says why.
func TestDrainPlanKineUnknown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers []policy.DatabaseServer
		want    string
	}{
		{"no primary", []policy.DatabaseServer{{Address: "10.0.1.20:5432"}}, "no reachable primary"},
		{"split brain", []policy.DatabaseServer{{Address: "10.0.1.20:5432", Reachable: true, Primary: true}, {Address: "10.0.2.20:5432", Reachable: true, Primary: true}}, "2 primaries, a split brain"},
		{"placed nowhere", []policy.DatabaseServer{{Address: "10.0.9.20:5432", Reachable: true, Primary: true}}, "no known datacenter"},
	} {
		p := dThreeDCs()
		p.in.Datacenter = "pod-1"
		p.in.EtcdPods = []*corev1.Pod{}
		p.in.Pods = nil
		p.in.Kine = []string{"pods"}
		p.in.Database = tc.servers
		p.in.DatabaseDatacenters = map[string]string{"10.0.1.20": "pod-1", "10.0.2.20": "pod-2"}
		plan := mustDPlan(t, p.in)
		if msgs := strings.Join(plan.Quorum.Messages, "\n"); plan.Refused || plan.Quorum.EtcdSurvives || !strings.Contains(msgs, tc.want) {
			t.Errorf("%s: refused %v, survives %v, messages %q; want not refused, not known to survive, saying %q", tc.name, plan.Refused, plan.Quorum.EtcdSurvives, msgs, tc.want)
		}
	}
}
