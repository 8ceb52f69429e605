package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ControlPlaneEndpoint returns the address every node and kubeconfig of
// the cluster dials, as kubeadm's controlPlaneEndpoint (host:port): the
// name NameControlPlaneEndpoint set, else the first load balancer, else
// the first API server, as on a kubeadm cluster set up without one.
func (c *Cluster) ControlPlaneEndpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.EndpointAddress != "" {
		return c.EndpointAddress
	}
	if len(c.LoadBalancers) > 0 {
		return c.LoadBalancers[0].Address
	}
	if len(c.APIServers) == 0 {
		return ""
	}
	return urlHost(c.APIServers[0].URL)
}

// writeKubeadmConfigMaps creates what kubeadm init leaves for the nodes
// and for tools: kube-system/kubeadm-config (ClusterConfiguration with the
// controlPlaneEndpoint), kube-public/cluster-info (the kubeconfig nodes
// join with) and kube-system/kube-proxy (the kubeconfig every node's
// kube-proxy dials), all naming the control-plane endpoint; existing ones
// are overwritten.
func (c *Cluster) writeKubeadmConfigMaps(ctx context.Context) error {
	endpoint := c.ControlPlaneEndpoint()
	ca, err := os.ReadFile(filepath.Join(c.Dir, "pki", "ca.crt"))
	if err != nil {
		return err
	}
	kubeconfig := func(user string, auth *clientcmdapi.AuthInfo) (string, error) {
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters[""] = &clientcmdapi.Cluster{Server: "https://" + endpoint, CertificateAuthorityData: ca}
		if auth != nil {
			cfg.Clusters["default"] = cfg.Clusters[""]
			delete(cfg.Clusters, "")
			cfg.AuthInfos[user] = auth
			cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: user}
			cfg.CurrentContext = "default"
		}
		data, err := clientcmd.Write(*cfg)
		return string(data), err
	}
	clusterInfo, err := kubeconfig("", nil)
	if err != nil {
		return err
	}
	proxy, err := kubeconfig("default", &clientcmdapi.AuthInfo{TokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token"})
	if err != nil {
		return err
	}
	etcd := "  local:\n    dataDir: /var/lib/etcd\n"
	if c.Topo.External() {
		// kubeadm's external etcd: the endpoints and the API server's
		// client certificate.
		etcd = "  external:\n    endpoints:\n"
		for _, u := range c.etcdServers() {
			etcd += "    - " + u + "\n"
		}
		etcd += "    caFile: /etc/kubernetes/pki/etcd/ca.crt\n    certFile: /etc/kubernetes/pki/apiserver-etcd-client.crt\n    keyFile: /etc/kubernetes/pki/apiserver-etcd-client.key\n"
	}
	clusterConfig := fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: kubectl-dc-local
controlPlaneEndpoint: %s
certificatesDir: /etc/kubernetes/pki
etcd:
%snetworking:
  serviceSubnet: 10.96.0.0/16
`, endpoint, etcd)
	for _, cm := range []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "kubeadm-config"}, Data: map[string]string{"ClusterConfiguration": clusterConfig}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespacePublic, Name: "cluster-info"}, Data: map[string]string{"kubeconfig": clusterInfo}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "kube-proxy", Labels: map[string]string{"app": "kube-proxy"}}, Data: map[string]string{"kubeconfig.conf": proxy}},
	} {
		// kube-public is created by the API server shortly after it
		// starts: wait for it rather than fail.
		var last error
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			cms := c.Client().CoreV1().ConfigMaps(cm.Namespace)
			if _, last = cms.Create(ctx, cm, metav1.CreateOptions{}); apierrors.IsAlreadyExists(last) {
				_, last = cms.Update(ctx, cm, metav1.UpdateOptions{})
			}
			return last == nil, nil
		})
		if err != nil {
			return fmt.Errorf("create configmap %s/%s: %w", cm.Namespace, cm.Name, last)
		}
	}
	return nil
}
