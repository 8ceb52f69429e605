package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Each datacenter's kwok also plays the kubelet's server for `kubectl exec`
// into the etcd mirror pods, as kubeadm operators run etcdctl: it listens
// on the datacenter's first control-plane node address, on a port every
// node of the datacenter advertises as its kubelet endpoint (the other
// control-plane nodes forward that port to it), and runs the
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

// kubeletProc names the HAProxy that serves node's kubelet port.
func kubeletProc(node string) string { return "kubelet-" + node }

// addKubeletForwarder makes a control-plane node that is not its
// datacenter's first answer on its own address as kubelet too: an HAProxy
// forwards the node's kubelet port to the datacenter's kwok, so that
// `kubectl exec` into that node's etcd pod works as on any kubeadm node.
// It registers the process and returns its name, "" when the node needs
// none. Without haproxy installed it returns "" and says so in the log:
// exec into that node's pods then fails, and nothing else does.
func (c *Cluster) addKubeletForwarder(node, ip, dc string) (string, error) {
	kwok := c.kubeletAddress(dc)
	if kwok == "" || strings.HasPrefix(kwok, ip+":") {
		return "", nil
	}
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		c.logf("haproxy is not installed: kubectl exec into the pods of %s will not connect (`make test-deps` installs it)", node)
		return "", nil
	}
	cfg := fmt.Sprintf(`global
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
frontend kubelet
    bind %s:%d
    default_backend kwok
backend kwok
    server kwok %s
`, ip, c.KubeletPorts[dc], kwok)
	name := kubeletProc(node)
	path := filepath.Join(c.Dir, name+".cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Procs[name] = &process{Name: name, Bin: bin, Args: []string{"-db", "-f", path}}
	if c.KubeletForwarders == nil {
		c.KubeletForwarders = map[string]string{}
	}
	c.KubeletForwarders[node] = dc
	return name, nil
}

// kubeletForwarders are the names of datacenter dc's forwarder processes.
func (c *Cluster) kubeletForwarders(dc string) []string {
	var out []string
	for node, d := range c.KubeletForwarders {
		if d == dc {
			out = append(out, kubeletProc(node))
		}
	}
	sort.Strings(out)
	return out
}
