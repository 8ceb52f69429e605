package drain

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// TestDrainPlanPinnedBeyondTheDatacenterLabel: a pod is pinned when no
// schedulable node outside the datacenter satisfies its nodeSelector,
// required node affinity, tolerations and host ports, whatever label
// does it.
func TestDrainPlanPinnedBeyondTheDatacenterLabel(t *testing.T) {
	withPort := func(port int32) func(*corev1.PodSpec) {
		return func(s *corev1.PodSpec) {
			s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: port}}
		}
	}
	tolerateCP := func(s *corev1.PodSpec) {
		s.Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists}}
	}
	tests := []struct {
		name string
		// nodes are added to three datacenters (pod-2 drained); extra pods
		// run elsewhere.
		nodes      []*testutil.NodeBuilder
		extra      []*testutil.ObjectBuilder
		pod        *testutil.ObjectBuilder
		wantPinned bool
		wantReason string
	}{
		{
			name: "hostname of a pod-2 node", wantPinned: true, wantReason: "nodeSelector kubernetes.io/hostname=pod-2-worker-1 matches no schedulable node",
			pod: dPod("apps", "h", "pod-2-worker-1", "h").NodeSelector("kubernetes.io/hostname", "pod-2-worker-1"),
		},
		{
			name: "required affinity on another label only pod-2 has", wantPinned: true, wantReason: "required node affinity (disk In nvme)",
			nodes: []*testutil.NodeBuilder{dNode("pod-2-worker-3", "pod-2").Label("disk", "nvme")},
			pod:   dPod("apps", "a", "pod-2-worker-3", "a").RequiredAffinity(testutil.Term(testutil.In("disk", "nvme"))),
		},
		{
			name:  "the same affinity with a matching node in pod-1",
			nodes: []*testutil.NodeBuilder{dNode("pod-2-worker-3", "pod-2").Label("disk", "nvme"), dNode("pod-1-worker-3", "pod-1").Label("disk", "nvme")},
			pod:   dPod("apps", "a", "pod-2-worker-3", "a").RequiredAffinity(testutil.Term(testutil.In("disk", "nvme"))),
		},
		{
			name: "only tainted nodes match", wantPinned: true, wantReason: "tolerates its taints (node-role.kubernetes.io/control-plane:NoSchedule)",
			pod: dPod("apps", "c", "pod-2-worker-1", "c").NodeSelector("node-role.kubernetes.io/control-plane", ""),
		},
		{
			name: "tolerated taint",
			pod:  dPod("apps", "c", "pod-2-worker-1", "c").NodeSelector("node-role.kubernetes.io/control-plane", "").Edit(tolerateCP),
		},
		{
			name: "host port taken on every node elsewhere", wantPinned: true, wantReason: "host port 8080/TCP is taken",
			extra: []*testutil.ObjectBuilder{
				dPod("apps", "x-1", "pod-1-worker-1", "x").Edit(withPort(8080)), dPod("apps", "x-2", "pod-1-worker-2", "x").Edit(withPort(8080)),
				dPod("apps", "x-3", "pod-3-worker-1", "x").Edit(withPort(8080)),
			},
			pod: dPod("apps", "p", "pod-2-worker-1", "p").Edit(withPort(8080)),
		},
		{
			name:  "host port free on one node",
			extra: []*testutil.ObjectBuilder{dPod("apps", "x-1", "pod-1-worker-1", "x").Edit(withPort(8080))},
			pod:   dPod("apps", "p", "pod-2-worker-1", "p").Edit(withPort(8080)),
		},
		{
			name: "anything fits", pod: dPod("apps", "w", "pod-2-worker-1", "w"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := dThreeDCs().nodes(tt.nodes...).pods(tt.extra...).pods(tt.pod)
			plan := mustDPlan(t, in.in)
			var got *PlanPod
			for i := range plan.Evict {
				if plan.Evict[i].Name == tt.pod.Pod().Name {
					got = &plan.Evict[i]
				}
			}
			if got == nil {
				t.Fatalf("the plan does not evict %s: %+v", tt.pod.Pod().Name, plan.Evict)
			}
			if got.Pinned != tt.wantPinned || !strings.Contains(got.PinnedBy, tt.wantReason) {
				t.Errorf("pinned = %v (%q), want %v (%q)", got.Pinned, got.PinnedBy, tt.wantPinned, tt.wantReason)
			}
			if tt.wantPinned != (len(plan.Pinned) == 1) {
				t.Errorf("plan.Pinned = %+v, want pinned %v", plan.Pinned, tt.wantPinned)
			}
		})
	}
}

// TestDrainPlanCapacityCountsUsableNodes: the room of a pod is on the
// nodes it could use, not every node elsewhere.
func TestDrainPlanCapacityCountsUsableNodes(t *testing.T) {
	// 6 CPU asked by pods that may only use pod-1's nodes labelled
	// disk=nvme: one node, 4 CPU. Elsewhere in total there is plenty.
	var pods []*testutil.ObjectBuilder
	for _, name := range []string{"a-1", "a-2", "a-3"} {
		pods = append(pods, dRequests(dPod("apps", name, "pod-2-worker-1", "a"), "2", "1Gi").RequiredAffinity(testutil.Term(testutil.In("disk", "nvme"))))
	}
	pods = append(pods, dRequests(dPod("apps", "b-1", "pod-2-worker-1", "b"), "1", "1Gi"))
	in := dThreeDCs().nodes(dNode("pod-1-worker-3", "pod-1").Label("disk", "nvme")).pods(pods...)
	c := mustDPlan(t, in.in).Capacity
	if c.Fits || len(c.Unfit) != 1 || !strings.Contains(c.Unfit[0], "ReplicaSet/apps/a-rs: 3 pod(s) need cpu 6") || !strings.Contains(c.Unfit[0], "the 1 node(s) outside pod-2 they can use have cpu 4") {
		t.Errorf("Capacity = %+v, want unfit: 3 pods need cpu 6 on the one usable node with 4", c)
	}
	// In total 7 CPU against the 4 untainted workers elsewhere: 16 free.
	if c.Nodes != 4 || c.CPU.Free != "16" || !c.CPU.Fits {
		t.Errorf("Capacity nodes %d, cpu %+v; want 4 usable nodes with 16 free", c.Nodes, c.CPU)
	}
}
