package status

import (
	"fmt"
	"strings"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// topo builds the nodes, etcd pods and API server pods of a cluster:
// per datacenter, cps control-plane nodes "<dc>-cp-<i>" (each an etcd
// member and an API server) and workers "<dc>-worker-<i>".
type topo struct {
	in *statusInput
	ip int
}

func newTopo() *topo {
	return &topo{in: &statusInput{Label: testutil.Zone, LabelSource: "default", APIAvailable: true}}
}

func (t *topo) nextIP() string {
	t.ip++
	return fmt.Sprintf("10.0.0.%d", t.ip)
}

func withIP(n *corev1.Node, ip string) *corev1.Node {
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	return n
}

// dc adds a datacenter with cps control planes (etcd + API server each) and
// workers.
func (t *topo) dc(name string, cps, workers int) *topo {
	for i := 1; i <= cps; i++ {
		node := fmt.Sprintf("%s-cp-%d", name, i)
		ip := t.nextIP()
		t.in.Nodes = append(t.in.Nodes, withIP(testutil.Node(node).InDC(name).ControlPlane().Obj(), ip))
		t.in.EtcdPods = append(t.in.EtcdPods, etcdPod(node, "https://"+ip+":2379", true))
		t.in.APIServerPods = append(t.in.APIServerPods, readyPod(testutil.Pod("kube-system", "kube-apiserver-"+node).
			Labels("component", "kube-apiserver").Mirror().NodeName(node).
			Annotations(cluster.AnnotationAPIServerEndpoint, ip+":6443").Pod(), true))
	}
	for i := 1; i <= workers; i++ {
		t.in.Nodes = append(t.in.Nodes, withIP(testutil.Node(fmt.Sprintf("%s-worker-%d", name, i)).InDC(name).Obj(), t.nextIP()))
	}
	return t
}

// etcdFromPods turns the etcd pods into a direct etcd view (IDs 1..n,
// member names = node names), with leader the named member.
func (t *topo) etcdFromPods(leader string, down ...string) *topo {
	v := &cluster.EtcdView{Source: cluster.EtcdSourceDirect}
	for i, p := range t.in.EtcdPods {
		m := cluster.EtcdMemberInfo{ID: uint64(i + 1), Name: p.Spec.NodeName, ClientURLs: cluster.SplitURLList(p.Annotations[policy.AnnotationEtcdClientURLs]), Healthy: true}
		for _, d := range down {
			if d == m.Name {
				m.Healthy = false
			}
		}
		if m.Name == leader {
			v.LeaderID = m.ID
		}
		v.Members = append(v.Members, m)
	}
	t.in.Etcd = v
	return t
}

func (t *topo) build() *Report { return buildReport(t.in) }

func etcdPod(node, url string, ready bool) *corev1.Pod {
	p := testutil.Pod("kube-system", "etcd-"+node).Labels("component", "etcd", "tier", "control-plane").Mirror().
		NodeName(node).Annotations(policy.AnnotationEtcdClientURLs, url).Pod()
	return readyPod(p, ready)
}

func readyPod(p *corev1.Pod, ready bool) *corev1.Pod {
	p.Status.Phase = corev1.PodRunning
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return p
}

// appPods returns n ready pods of app in namespace on node.
func appPods(namespace, app, node string, n int) []*corev1.Pod {
	var out []*corev1.Pod
	for i := 0; i < n; i++ {
		p := testutil.Pod(namespace, fmt.Sprintf("%s-%s-%d", app, node, i)).Labels("app", app).NodeName(node).Pod()
		out = append(out, readyPod(p, true))
	}
	return out
}

func wl(kind, namespace, name, app, pinned string) statusWorkload {
	return statusWorkload{Kind: kind, Namespace: namespace, Name: name, Selector: labels.SelectorFromSet(labels.Set{"app": app}), Pinned: pinned}
}

func pdbMin(namespace, name, app string, minAvailable int) *policyv1.PodDisruptionBudget {
	v := intstr.FromInt32(int32(minAvailable))
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &v, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
	}
}

func findDC(r *Report, name string) *DatacenterStatus {
	for i := range r.Datacenters {
		if r.Datacenters[i].Name == name {
			return &r.Datacenters[i]
		}
	}
	return nil
}

func survives(r *Report) map[string]string {
	out := map[string]string{}
	for _, d := range r.Datacenters {
		out[d.Name] = yesNo(d.SurvivesLoss)
	}
	return out
}

func findingWith(r *Report, substr string) *Finding {
	for i := range r.Findings {
		if strings.Contains(r.Findings[i].Message, substr) {
			return &r.Findings[i]
		}
	}
	return nil
}
