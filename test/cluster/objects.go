package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations and labels kubeadm puts on its static control-plane pods.
const (
	EtcdAdvertiseAnnotation      = "kubeadm.kubernetes.io/etcd.advertise-client-urls"
	APIServerAdvertiseAnnotation = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"
	MirrorAnnotation             = "kubernetes.io/config.mirror"
	ControlPlaneLabel            = "node-role.kubernetes.io/control-plane"
)

// NodeObject returns a node as kwok manages it: in datacenter dc under
// label, with a loopback InternalIP and the capacity of a large machine.
// Control-plane nodes carry kubeadm's role label and NoSchedule taint.
func NodeObject(name, label, dc, ip string, controlPlane bool) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				label:                    dc,
				KwokLabel:                "kwok",
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: ip},
				{Type: corev1.NodeHostName, Address: name},
			},
		},
	}
	if controlPlane {
		n.Labels[ControlPlaneLabel] = ""
		n.Spec.Taints = []corev1.Taint{{Key: ControlPlaneLabel, Effect: corev1.TaintEffectNoSchedule}}
	}
	return n
}

// staticPod returns the mirror pod of a kubeadm static pod on node.
func staticPod(component, node string, annotations map[string]string, command []string) *corev1.Pod {
	// The kubelet's annotations of a static pod's mirror: the hash of
	// the manifest (config.mirror repeats config.hash), when it was seen,
	// and that it came from a file under /etc/kubernetes/manifests.
	hash := randomToken()[:32]
	ann := map[string]string{
		MirrorAnnotation:              hash,
		"kubernetes.io/config.hash":   hash,
		"kubernetes.io/config.seen":   time.Now().UTC().Format(time.RFC3339Nano),
		"kubernetes.io/config.source": "file",
	}
	for k, v := range annotations {
		ann[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        component + "-" + node,
			Namespace:   metav1.NamespaceSystem,
			Labels:      map[string]string{"component": component, "tier": "control-plane"},
			Annotations: ann,
		},
		Spec: corev1.PodSpec{
			NodeName:          node,
			HostNetwork:       true,
			PriorityClassName: "system-node-critical",
			Tolerations:       []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
			Containers: []corev1.Container{{
				Name:    component,
				Image:   "registry.k8s.io/" + component,
				Command: command,
			}},
		},
	}
}

func etcdMirrorPod(m Member) *corev1.Pod {
	pki := kubeadmDir + "pki/etcd/"
	return staticPod("etcd", m.Node, map[string]string{EtcdAdvertiseAnnotation: m.ClientURL},
		[]string{"etcd", "--name=" + m.Name, "--advertise-client-urls=" + m.ClientURL, "--initial-advertise-peer-urls=" + m.PeerURL,
			"--cert-file=" + pki + "server.crt", "--key-file=" + pki + "server.key", "--client-cert-auth=true", "--trusted-ca-file=" + pki + "ca.crt",
			"--peer-cert-file=" + pki + "peer.crt", "--peer-key-file=" + pki + "peer.key", "--peer-client-cert-auth=true", "--peer-trusted-ca-file=" + pki + "ca.crt",
			"--data-dir=/var/lib/etcd"})
}

// apiserverMirrorPod is a kube-apiserver's mirror pod; its command names
// the etcd servers it dials, as kubeadm's manifest does.
func apiserverMirrorPod(a APIServer, etcdServers []string) *corev1.Pod {
	endpoint := strings.TrimPrefix(a.URL, "https://")
	pki := kubeadmDir + "pki/"
	return staticPod("kube-apiserver", a.Node, map[string]string{APIServerAdvertiseAnnotation: endpoint},
		[]string{"kube-apiserver", "--advertise-address=" + strings.Split(endpoint, ":")[0],
			"--etcd-servers=" + strings.Join(etcdServers, ","),
			"--etcd-cafile=" + pki + "etcd/ca.crt", "--etcd-certfile=" + pki + "apiserver-etcd-client.crt", "--etcd-keyfile=" + pki + "apiserver-etcd-client.key"})
}

// kineMirrorPod is the mirror pod of node's kine, as a kubeadm-style
// static pod (component=kine) would show it.
func kineMirrorPod(node, listenURL string, args []string) *corev1.Pod {
	return staticPod("kine", node, map[string]string{"placement.kubectl-dc.io/kine-listen-url": listenURL}, append([]string{"kine"}, args...))
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
