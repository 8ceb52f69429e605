package cluster

import (
	"context"
	"fmt"
	"net"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-dc/kubectl-dc/policy"
)

// Where the control-plane endpoint was read, in the order it is looked for.
const (
	// EndpointSourceKubeadmConfig is controlPlaneEndpoint of the
	// ClusterConfiguration in kube-system/kubeadm-config.
	EndpointSourceKubeadmConfig = "kubeadm-config"
	// EndpointSourceClusterInfo is the server of kube-public/cluster-info,
	// the kubeconfig nodes join with.
	EndpointSourceClusterInfo = "cluster-info"
	// EndpointSourceKubeProxy is the server of kube-system/kube-proxy's
	// kubeconfig.conf, which every node's kube-proxy dials.
	EndpointSourceKubeProxy = "kube-proxy"
	// EndpointSourceKubeconfig is the caller's kubeconfig server: the
	// cluster said nothing, and kubelets may dial something else.
	EndpointSourceKubeconfig = "kubeconfig"
)

// ResolveTimeout bounds the lookup of the endpoint's host name, so that a
// dead DNS server never holds status up.
const ResolveTimeout = time.Second

// ControlPlaneEndpoint is the endpoint the cluster's nodes dial, as read.
type ControlPlaneEndpoint struct {
	// Address is as configured: host:port, a bare host or a URL; "" when
	// nothing named one.
	Address string
	// Source is one of the EndpointSource constants, "" when none.
	Source string
	// Resolved are the addresses the host name resolves to; empty for an IP
	// or a name that did not resolve.
	Resolved []string
	// Notes say why earlier sources were passed over and whether the name
	// resolved, for -o wide.
	Notes []string
}

// LookupHostFunc resolves a host name to addresses; net.Resolver.LookupHost
// is one.
type LookupHostFunc func(ctx context.Context, host string) ([]string, error)

// ReadControlPlaneEndpoint reads the endpoint the cluster uses, with one
// GET per ConfigMap until one names it: kubeadm-config, cluster-info,
// kube-proxy, else the caller's kubeconfig server. A ConfigMap that is
// missing, forbidden or says nothing is passed over with a note, never an
// error. A host name is resolved within ResolveTimeout with lookup (nil:
// the system resolver).
func ReadControlPlaneEndpoint(ctx context.Context, kube kubernetes.Interface, kubeconfigServer string, lookup LookupHostFunc) ControlPlaneEndpoint {
	var ep ControlPlaneEndpoint
	for _, src := range []struct {
		source, namespace, name, key string
		parse                        func(string) (string, error)
	}{
		{EndpointSourceKubeadmConfig, metav1.NamespaceSystem, "kubeadm-config", "ClusterConfiguration", kubeadmEndpoint},
		{EndpointSourceClusterInfo, metav1.NamespacePublic, "cluster-info", "kubeconfig", kubeconfigServerOf},
		{EndpointSourceKubeProxy, metav1.NamespaceSystem, "kube-proxy", "kubeconfig.conf", kubeconfigServerOf},
	} {
		where := src.namespace + "/" + src.name
		cm, err := kube.CoreV1().ConfigMaps(src.namespace).Get(ctx, src.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			ep.Notes = append(ep.Notes, fmt.Sprintf("%s: not found", where))
			continue
		case apierrors.IsForbidden(err):
			ep.Notes = append(ep.Notes, fmt.Sprintf("%s: not allowed to read it", where))
			continue
		case err != nil:
			ep.Notes = append(ep.Notes, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		data, ok := cm.Data[src.key]
		if !ok {
			ep.Notes = append(ep.Notes, fmt.Sprintf("%s: no %s key", where, src.key))
			continue
		}
		addr, err := src.parse(data)
		if err != nil {
			ep.Notes = append(ep.Notes, fmt.Sprintf("%s: %s: %v", where, src.key, err))
			continue
		}
		if addr == "" {
			ep.Notes = append(ep.Notes, fmt.Sprintf("%s: %s names no endpoint", where, src.key))
			continue
		}
		ep.Address, ep.Source = addr, src.source
		break
	}
	if ep.Address == "" && kubeconfigServer != "" {
		ep.Address, ep.Source = kubeconfigServer, EndpointSourceKubeconfig
	}
	ep.resolve(ctx, lookup)
	return ep
}

// resolve looks the endpoint's host name up; an IP stands for itself.
func (ep *ControlPlaneEndpoint) resolve(ctx context.Context, lookup LookupHostFunc) {
	host, _ := policy.SplitEndpoint(ep.Address)
	if host == "" || net.ParseIP(host) != nil {
		return
	}
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	ctx, cancel := context.WithTimeout(ctx, ResolveTimeout)
	defer cancel()
	addrs, err := lookup(ctx, host)
	if err != nil {
		ep.Notes = append(ep.Notes, fmt.Sprintf("resolving %s: %v", host, err))
		return
	}
	sort.Strings(addrs)
	ep.Resolved = addrs
	ep.Notes = append(ep.Notes, fmt.Sprintf("%s resolves to %d %s", host, len(addrs), map[bool]string{true: "address", false: "addresses"}[len(addrs) == 1]))
}

// kubeadmEndpoint is controlPlaneEndpoint of a kubeadm ClusterConfiguration.
func kubeadmEndpoint(data string) (string, error) {
	var cc struct {
		ControlPlaneEndpoint string `json:"controlPlaneEndpoint"`
	}
	if err := yaml.Unmarshal([]byte(data), &cc); err != nil {
		return "", err
	}
	return cc.ControlPlaneEndpoint, nil
}

// kubeconfigServerOf is the server of a kubeconfig: its current context's
// cluster, else its only cluster.
func kubeconfigServerOf(data string) (string, error) {
	cfg, err := clientcmd.Load([]byte(data))
	if err != nil {
		return "", err
	}
	if c, ok := cfg.Contexts[cfg.CurrentContext]; ok && cfg.Clusters[c.Cluster] != nil {
		return cfg.Clusters[c.Cluster].Server, nil
	}
	if len(cfg.Clusters) == 1 {
		for _, c := range cfg.Clusters {
			return c.Server, nil
		}
	}
	if len(cfg.Clusters) == 0 {
		return "", nil
	}
	return "", fmt.Errorf("%d clusters and no current context", len(cfg.Clusters))
}

// Classify says what the endpoint is (policy.ClassifyEndpoint) given the
// cluster's nodes and its API servers as MapAPIServers places them; dc is
// the datacenter the operator says the endpoint runs in ("" unknown).
// status and drain both ask it.
func (ep ControlPlaneEndpoint) Classify(nodes []*corev1.Node, label, dc string, servers []APIServerStatus) policy.Endpoint {
	in := policy.EndpointInput{Address: ep.Address, Resolved: ep.Resolved, Nodes: nodes, Label: label, Datacenter: dc}
	for _, s := range servers {
		sdc := s.Datacenter
		if sdc == Unlabeled {
			sdc = ""
		}
		in.APIServers = append(in.APIServers, policy.APIServer{Address: s.Address, Node: s.Node, Datacenter: sdc})
	}
	return policy.ClassifyEndpoint(in)
}
