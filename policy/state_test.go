package policy_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// rememberingState is a State whose Pod also knows pods its Pods does not
// list yet, as the webhook's cache does for pods it admitted moments ago.
type rememberingState struct {
	*policy.StaticState
	remembered *corev1.Pod
}

func (s rememberingState) Pod(namespace, name string) *corev1.Pod {
	if s.remembered.Namespace == namespace && s.remembered.Name == name {
		return s.remembered
	}
	return s.StaticState.Pod(namespace, name)
}

// TestWithPods: placements the caches do not list yet are counted, once,
// and whether the caches list them is judged by Pods, the census.
func TestWithPods(t *testing.T) {
	placed := member("etcd-b", "pod-1-2").Pod()
	base := rememberingState{StaticState: policy.NewStaticState(objs(threeDCs(), member("etcd-a", "pod-2-1"), member("etcd-c", ""))...), remembered: placed}
	st := policy.WithPods(base, []*corev1.Pod{placed, member("etcd-c", "pod-3-1").Pod()})
	sel := labels.SelectorFromSet(labels.Set{"component": "etcd"})
	got := map[string]string{}
	for _, p := range st.Pods("kube-system", sel) {
		if _, dup := got[p.Name]; dup {
			t.Errorf("%s counted twice", p.Name)
		}
		got[p.Name] = p.Spec.NodeName
	}
	if len(got) != 3 || got["etcd-b"] != "pod-1-2" || got["etcd-c"] != "pod-3-1" {
		t.Errorf("Pods = %v, want etcd-a, the remembered etcd-b and the binding of etcd-c", got)
	}
	e := engine(t, etcdPolicy(testutil.Etcd()))
	assertResults(t, e.Evaluate(create(member("etcd-d", "pod-1-1").Obj(), "kube-system"), st),
		[]want{deny("spec.nodeName", "datacenter pod-1 would hold 2 of N=4")})
}
