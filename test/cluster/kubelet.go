package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Each datacenter's kwok also plays the kubelet's server for `kubectl exec`
// into the etcd mirror pods, as kubeadm operators run etcdctl: it listens
// on the datacenter's first control-plane node address, on a port every
// node of the datacenter advertises as its kubelet endpoint, and runs the
// command on this machine with etcdctl first on its PATH. That etcdctl maps
// kubeadm's /etc/kubernetes onto the cluster's directory, so the
// certificate paths an operator passes inside the pod work unchanged.
const (
	// kubeadmDir is where kubeadm keeps its configuration and PKI.
	kubeadmDir = "/etc/kubernetes/"
	// execConfigName is kwok's configuration of which pods may be execed.
	execConfigName = "kwok-exec.yaml"
)

// writeExecTools writes the etcdctl that exec runs and kwok's exec
// configuration for the control-plane mirror pods.
func (c *Cluster) writeExecTools() error {
	bin := filepath.Join(c.Dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	// bash's ${@//pattern/string} rewrites every argument; the cluster's
	// directory takes /etc/kubernetes' place.
	script := fmt.Sprintf("#!/usr/bin/env bash\n# etcdctl inside a kubeadm etcd pod, with %s mapped onto %s.\nexec %q \"${@//%s/%s/}\"\n",
		kubeadmDir, c.Dir, filepath.Join(c.Bin, "etcdctl"), escapeSlashes(kubeadmDir), escapeSlashes(strings.TrimSuffix(c.Dir, "/")))
	if err := os.WriteFile(filepath.Join(bin, "etcdctl"), []byte(script), 0o755); err != nil {
		return err
	}
	// Every kube-system pod: members added later (learners) included.
	cfg := fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: control-plane
spec:
  selector:
    matchNamespaces: [kube-system]
  execs:
  - local:
      workDir: %s
`, c.Dir)
	return os.WriteFile(filepath.Join(c.Dir, execConfigName), []byte(cfg), 0o644)
}

// escapeSlashes makes a path literal inside a bash ${var//pattern/string}.
func escapeSlashes(s string) string { return strings.ReplaceAll(s, "/", `\/`) }

// kubeletAddress returns where datacenter dc's kwok serves as kubelet: its
// first control-plane node's address, or "" when it has none.
func (c *Cluster) kubeletAddress(dc string) string {
	for _, n := range c.Topo.nodes() {
		if n.Datacenter == dc && n.ControlPlane {
			return fmt.Sprintf("%s:%d", n.IP, c.KubeletPorts[dc])
		}
	}
	return ""
}

// execPath is the PATH of kwok's processes: the cluster's etcdctl first.
func (c *Cluster) execPath() string {
	return "PATH=" + filepath.Join(c.Dir, "bin") + ":" + os.Getenv("PATH")
}
