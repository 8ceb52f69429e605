package testutil

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InternalIP adds an InternalIP address to the node.
func (b *NodeBuilder) InternalIP(ip string) *NodeBuilder {
	b.n.Status.Addresses = append(b.n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	return b
}

// ExternalIP adds an ExternalIP address to the node.
func (b *NodeBuilder) ExternalIP(ip string) *NodeBuilder {
	b.n.Status.Addresses = append(b.n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip})
	return b
}

func configMap(namespace, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Data:       data,
	}
}

// KubeadmConfig is kubeadm's kube-system/kubeadm-config ConfigMap with a
// ClusterConfiguration whose controlPlaneEndpoint is endpoint ("" leaves
// the field out, as a single-server kubeadm cluster has it).
func KubeadmConfig(endpoint string) *corev1.ConfigMap {
	cc := "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.37.0\n"
	if endpoint != "" {
		cc += fmt.Sprintf("controlPlaneEndpoint: %s\n", endpoint)
	}
	return configMap("kube-system", "kubeadm-config", map[string]string{"ClusterConfiguration": cc})
}

// ClusterInfo is kubeadm's kube-public/cluster-info ConfigMap whose
// kubeconfig names server.
func ClusterInfo(server string) *corev1.ConfigMap {
	return configMap("kube-public", "cluster-info", map[string]string{"kubeconfig": kubeconfig(server)})
}

// KubeProxyConfig is kube-system/kube-proxy, the ConfigMap whose
// kubeconfig.conf the kube-proxy of every node dials server with.
func KubeProxyConfig(server string) *corev1.ConfigMap {
	return configMap("kube-system", "kube-proxy", map[string]string{"kubeconfig.conf": kubeconfig(server)})
}

func kubeconfig(server string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: ""
  cluster:
    certificate-authority-data: ""
    server: %s
contexts: []
current-context: ""
users: []
`, server)
}
