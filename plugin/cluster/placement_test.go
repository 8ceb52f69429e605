package cluster

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPlacedDatacenter(t *testing.T) {
	places := map[string]string{
		"etcd-a":                 "pod-1",
		"https://10.0.2.10:2379": "pod-2",
		"10.0.3.10:2380":         "pod-3",
		"10.0.4.10":              "pod-4",
		"etcd-e":                 "",
	}
	for _, tc := range []struct {
		name string
		urls []string
		want string
	}{
		{"etcd-a", []string{"https://10.0.9.9:2379"}, "pod-1"},
		{"etcd-b", []string{"https://10.0.2.10:2379/"}, "pod-2"},
		{"etcd-c", []string{"https://10.0.3.10:2380", "https://10.0.3.10:2379"}, "pod-3"},
		{"etcd-d", []string{"https://10.0.4.10:2379"}, "pod-4"},
		{"etcd-e", []string{"https://10.0.5.10:2379"}, ""},
		{"etcd-f", []string{"not a url"}, ""},
	} {
		if got, _ := PlacedDatacenter(places, tc.name, tc.urls...); got != tc.want {
			t.Errorf("PlacedDatacenter(%s, %v) = %q, want %q", tc.name, tc.urls, got, tc.want)
		}
	}
}

func TestBuildEtcdPlacesMembersOnNoNode(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp-1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.1.1"}}}}
	view := &EtcdView{Source: EtcdSourceDirect, Members: []EtcdMemberInfo{
		{ID: 1, Name: "cp-1", Healthy: true},
		{ID: 2, Name: "etcd-b", ClientURLs: []string{"https://10.0.2.10:2379"}, Healthy: true},
		{ID: 3, Name: "etcd-c", ClientURLs: []string{"https://10.0.3.10:2379"}, Healthy: true},
	}}
	at := Placement{
		Nodes:             []*corev1.Node{node},
		DatacenterOf:      func(string) string { return "pod-1" },
		MemberDatacenters: map[string]string{"10.0.2.10": "pod-2", "cp-1": "pod-9"},
		Cached:            map[string]string{"etcd-c": "pod-3"},
		Lost:              map[string]bool{"pod-2": true},
	}
	e := BuildEtcd(view, at)
	type placed struct{ DC, From string }
	got := map[string]placed{}
	for _, m := range e.Members {
		got[m.Name] = placed{m.Datacenter, m.DatacenterFrom}
	}
	want := map[string]placed{"cp-1": {"pod-1", FromNode}, "etcd-b": {"pod-2", FromEtcdDatacenters}, "etcd-c": {"pod-3", FromCache}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("placements = %v, want %v", got, want)
	}
	if e.Healthy != 2 || !e.HasQuorum {
		t.Errorf("with pod-2 lost: %d healthy, quorum %v; want 2 and quorum (etcd-b is lost with pod-2)", e.Healthy, e.HasQuorum)
	}
}

func TestEtcdServersOfAPIServers(t *testing.T) {
	pod := func(cmd, args []string) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-apiserver", Command: cmd, Args: args}}}}
	}
	pods := []*corev1.Pod{
		pod([]string{"kube-apiserver", "--etcd-servers=https://10.0.1.10:2379,https://10.0.2.10:2379"}, nil),
		pod([]string{"kube-apiserver"}, []string{"--etcd-servers", "https://10.0.2.10:2379,https://10.0.3.10:2379"}),
		pod([]string{"kube-apiserver", "--advertise-address=10.0.1.1"}, nil),
	}
	want := []string{"https://10.0.1.10:2379", "https://10.0.2.10:2379", "https://10.0.3.10:2379"}
	if got := EtcdServersOfAPIServers(pods); !reflect.DeepEqual(got, want) {
		t.Errorf("EtcdServersOfAPIServers = %v, want %v", got, want)
	}
}
