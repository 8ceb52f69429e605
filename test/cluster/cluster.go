// Package cluster runs a real Kubernetes control plane spread over several
// datacenters on loopback, with no containers: etcd members, kube-apiservers,
// kube-scheduler, kube-controller-manager, and one kwok per datacenter that
// simulates its nodes and their pods. The e2e tests, the benchmarks and
// `make demo` run against it. Binaries come from the pinned tools modules
// under test/tools, built once and cached under .cache/control-plane.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-dc/kubectl-dc/test/ports"
)

// Options configure Start.
type Options struct {
	Topology Topology
	// BinDir holds kube-apiserver, kube-controller-manager, kube-scheduler,
	// etcd, kwok and kwok-stages/. "" means build them or reuse the cache.
	BinDir string
	// Dir is where the cluster keeps its data, logs and kubeconfig. "" means
	// a new temporary directory that Stop removes.
	Dir string
	// Log receives progress lines; nil discards them. Process output always
	// goes to Dir/logs.
	Log io.Writer
	// Detach lets the processes outlive the caller, for `dc-cluster up`.
	// Load and Stop still manage them through Dir/state.json.
	Detach bool
	// ServeOn lists extra addresses the API servers listen on and their
	// certificate names, such as the host side of veth pairs that reach
	// network namespaces a test creates. Empty means loopback only.
	ServeOn []net.IP
}

// Member is one etcd member, named after the control-plane node it runs on.
type Member struct {
	Name       string `json:"name"`
	Node       string `json:"node"`
	Datacenter string `json:"datacenter"`
	ClientURL  string `json:"clientURL"`
	PeerURL    string `json:"peerURL"`
	Running    bool   `json:"running"`
}

// APIServer is one kube-apiserver, on a control-plane node.
type APIServer struct {
	Node       string `json:"node"`
	Datacenter string `json:"datacenter"`
	URL        string `json:"url"`
	Running    bool   `json:"running"`
}

// Cluster is a running local control plane. Its methods are safe for
// concurrent use.
type Cluster struct {
	mu sync.Mutex

	state
	ownsDir bool
	log     io.Writer
	detach  bool
	client  kubernetes.Interface
}

// state is what Load needs to manage a cluster another process started.
type state struct {
	Dir        string              `json:"dir"`
	Bin        string              `json:"binDir"`
	Topo       Topology            `json:"topology"`
	Token      string              `json:"token"`
	Etcd       []Member            `json:"members"`
	APIServers []APIServer         `json:"apiServers"`
	Procs      map[string]*process `json:"processes"`
	// KubeletPorts is the kubelet port each datacenter's nodes advertise,
	// served by its kwok.
	KubeletPorts map[string]int `json:"kubeletPorts"`
	ServeOn      []net.IP       `json:"serveOn,omitempty"`
	// LoadBalancers are the running HAProxies, the first the endpoint
	// unless EndpointAddress names another.
	LoadBalancers []LoadBalancer `json:"loadBalancers,omitempty"`
	// EndpointAddress is the control-plane endpoint (host:port) set by
	// NameControlPlaneEndpoint, and HostsFile the /etc/hosts that resolves
	// its name; both "" otherwise.
	EndpointAddress string `json:"endpointAddress,omitempty"`
	HostsFile       string `json:"hostsFile,omitempty"`
	// KubeletForwarders maps each control-plane node whose kubelet port an
	// HAProxy forwards to its datacenter's kwok to that datacenter.
	KubeletForwarders map[string]string `json:"kubeletForwarders,omitempty"`
	// Databases, KineURLs (per API server node), the binaries and the
	// read-only role's password of a kine topology.
	Databases        []Database        `json:"databases,omitempty"`
	KineURLs         map[string]string `json:"kineURLs,omitempty"`
	PGBin            string            `json:"pgBin,omitempty"`
	KineBin          string            `json:"kineBin,omitempty"`
	DatabasePassword string            `json:"databasePassword,omitempty"`
	// Down lists the datacenters DatacenterDown took down.
	Down []string `json:"down,omitempty"`
}

const (
	adminUser      = "kubectl-dc-admin"
	startTimeout   = 2 * time.Minute
	stopGrace      = 10 * time.Second
	kwokLeaseSecs  = 40
	kubeconfigName = "kubeconfig"
)

// Start brings up a cluster and returns once every node is Ready. On error
// it stops whatever it started.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.Topology.validate(); err != nil {
		return nil, err
	}
	c := &Cluster{log: opts.Log, detach: opts.Detach}
	if c.log == nil {
		c.log = io.Discard
	}
	c.Topo = opts.Topology
	c.ServeOn = opts.ServeOn
	c.Topo.Label = c.Topo.label()
	c.Bin = opts.BinDir
	if c.Bin == "" {
		bin, err := EnsureBinaries(ctx)
		if err != nil {
			return nil, err
		}
		c.Bin = bin
	}
	c.Dir = opts.Dir
	if c.Dir == "" {
		dir, err := os.MkdirTemp("", "kubectl-dc-cluster-")
		if err != nil {
			return nil, err
		}
		c.Dir, c.ownsDir = dir, true
	}
	for _, d := range []string{"logs", "pki", "etcd"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := c.start(ctx); err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("start local control plane (logs in %s): %w", filepath.Join(c.Dir, "logs"), err)
	}
	return c, nil
}

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "cluster: "+format+"\n", args...)
}

func (c *Cluster) start(ctx context.Context) error {
	began := time.Now()
	var etcdIPs []net.IP
	for _, h := range c.Topo.etcdHosts() {
		etcdIPs = append(etcdIPs, net.ParseIP(h.IP))
	}
	if err := writePKI(filepath.Join(c.Dir, "pki"), append(c.Topo.lbIPs(), c.ServeOn...), etcdIPs); err != nil {
		return err
	}
	c.Token = randomToken()
	tokens := fmt.Sprintf("%s,%s,%s-uid,\"system:masters\"\n", c.Token, adminUser, adminUser)
	if err := os.WriteFile(filepath.Join(c.Dir, "pki", "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return err
	}
	c.Procs = map[string]*process{}
	nodes := c.Topo.nodes()

	// etcd: one member per control-plane node (stacked), or per etcd
	// host (external) on the host's own address.
	var initial []string
	hosts := c.Topo.etcdHosts()
	c.KineURLs = map[string]string{}
	if c.Topo.Kine {
		if err := c.startDatastore(ctx, nodes); err != nil {
			return err
		}
		hosts = nil
	} else if len(hosts) == 0 {
		for _, n := range nodes {
			if n.ControlPlane {
				hosts = append(hosts, etcdHost{Name: n.Name, Datacenter: n.Datacenter, IP: "127.0.0.1"})
			}
		}
	}
	for _, h := range hosts {
		client, peer := ports.Free(), ports.Free()
		if client == 0 || peer == 0 {
			return errors.New("no free loopback port")
		}
		m := Member{Name: h.Name, Datacenter: h.Datacenter,
			ClientURL: fmt.Sprintf("https://%s:%d", h.IP, client), PeerURL: fmt.Sprintf("https://%s:%d", h.IP, peer)}
		if !c.Topo.External() {
			m.Node = h.Name
		}
		c.Etcd = append(c.Etcd, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Etcd {
		c.Procs[etcdProc(m.Name)] = &process{Name: etcdProc(m.Name), Bin: filepath.Join(c.Bin, "etcd"), Args: c.etcdArgs(m, initial, "new")}
	}
	if err := c.startAll(ctx, etcdProcs(c.Etcd)); err != nil {
		return err
	}
	if err := c.waitEtcdHealthy(ctx); err != nil {
		return err
	}
	if c.Topo.Kine {
		c.logf("kine: %d instances over %d PostgreSQL servers after %s", len(c.KineURLs), len(c.Databases), time.Since(began).Round(100*time.Millisecond))
	} else {
		c.logf("etcd: %d members healthy after %s", len(c.Etcd), time.Since(began).Round(100*time.Millisecond))
	}

	// kube-apiservers on the control-plane nodes that run one.
	for _, n := range nodes {
		if !n.APIServer {
			continue
		}
		port := ports.Free()
		a := APIServer{Node: n.Name, Datacenter: n.Datacenter, URL: fmt.Sprintf("https://127.0.0.1:%d", port)}
		c.APIServers = append(c.APIServers, a)
		args := c.apiserverArgs(port)
		if c.Topo.Kine {
			args = kineAPIServerArgs(args, c.KineURLs[n.Name])
		}
		c.Procs[apiProc(n.Name)] = &process{Name: apiProc(n.Name), Bin: filepath.Join(c.Bin, "kube-apiserver"), Args: args}
	}
	var names []string
	for _, a := range c.APIServers {
		names = append(names, apiProc(a.Node))
	}
	if err := c.startAll(ctx, names); err != nil {
		return err
	}
	if err := c.waitAPIServers(ctx); err != nil {
		return err
	}
	if err := c.startLoadBalancers(ctx); err != nil {
		return err
	}
	if err := c.writeKubeconfig(); err != nil {
		return err
	}
	c.logf("kube-apiserver: %d ready after %s", len(c.APIServers), time.Since(began).Round(100*time.Millisecond))

	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return err
	}
	c.client = cs
	c.KubeletPorts = map[string]int{}
	for _, dc := range c.Topo.Datacenters {
		if c.KubeletPorts[dc.Name] = ports.Free(); c.KubeletPorts[dc.Name] == 0 {
			return errors.New("no free loopback port")
		}
	}
	if err := c.registerNodes(ctx, nodes); err != nil {
		return err
	}
	if err := c.writeExecTools(); err != nil {
		return err
	}
	if err := c.writeKubeadmConfigMaps(ctx); err != nil {
		return err
	}

	// kwok per datacenter, then scheduler and controller manager.
	for i, dc := range c.Topo.Datacenters {
		c.Procs[kwokProc(dc.Name)] = &process{Name: kwokProc(dc.Name), Bin: filepath.Join(c.Bin, "kwok"), Args: c.kwokArgs(i, dc.Name), Env: []string{c.execPath()}}
	}
	sched, err := c.schedulerArgs()
	if err != nil {
		return err
	}
	c.Procs["kube-scheduler"] = &process{Name: "kube-scheduler", Bin: filepath.Join(c.Bin, "kube-scheduler"), Args: sched}
	c.Procs["kube-controller-manager"] = &process{Name: "kube-controller-manager", Bin: filepath.Join(c.Bin, "kube-controller-manager"), Args: c.controllerManagerArgs()}
	rest := []string{"kube-scheduler", "kube-controller-manager"}
	for _, dc := range c.Topo.Datacenters {
		rest = append(rest, kwokProc(dc.Name))
	}
	for _, n := range nodes {
		if !n.ControlPlane {
			continue
		}
		name, err := c.addKubeletForwarder(n.Name, n.IP, n.Datacenter)
		if err != nil {
			return err
		}
		if name != "" {
			rest = append(rest, name)
		}
	}
	if err := c.startAll(ctx, rest); err != nil {
		return err
	}
	if err := c.waitNodesReady(ctx, nil); err != nil {
		return err
	}
	if err := c.saveState(); err != nil {
		return err
	}
	c.logf("ready: %d datacenters, %d nodes, %d etcd members, %d API servers in %s (kubeconfig %s)",
		len(c.Topo.Datacenters), len(nodes), len(c.Etcd), len(c.APIServers), time.Since(began).Round(100*time.Millisecond), c.Kubeconfig())
	return nil
}

// etcdArgs are member m's flags, as kubeadm runs stacked etcd: TLS on
// client and peer URLs, and only certificates of the etcd CA get in.
// initial is the --initial-cluster list, state "new" or "existing".
func (c *Cluster) etcdArgs(m Member, initial []string, state string) []string {
	pki := filepath.Join(c.Dir, "pki", "etcd")
	return []string{
		"--name=" + m.Name,
		"--cert-file=" + filepath.Join(pki, "server.crt"), "--key-file=" + filepath.Join(pki, "server.key"),
		"--client-cert-auth=true", "--trusted-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--peer-cert-file=" + filepath.Join(pki, "peer.crt"), "--peer-key-file=" + filepath.Join(pki, "peer.key"),
		"--peer-client-cert-auth=true", "--peer-trusted-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--data-dir=" + filepath.Join(c.Dir, "etcd", m.Name),
		"--listen-client-urls=" + m.ClientURL, "--advertise-client-urls=" + m.ClientURL,
		"--listen-peer-urls=" + m.PeerURL, "--initial-advertise-peer-urls=" + m.PeerURL,
		"--initial-cluster=" + strings.Join(initial, ","),
		"--initial-cluster-state=" + state, "--initial-cluster-token=kubectl-dc-" + filepath.Base(c.Dir),
		"--log-level=warn",
		// Test substrate on a shared disk: durability is not under test.
		"--unsafe-no-fsync",
	}
}

// etcdServers are the client URLs the API servers dial.
func (c *Cluster) etcdServers() []string {
	var servers []string
	for _, m := range c.Etcd {
		servers = append(servers, m.ClientURL)
	}
	return servers
}

func (c *Cluster) apiserverArgs(port int) []string {
	pki := filepath.Join(c.Dir, "pki")
	servers := c.etcdServers()
	bind := "127.0.0.1"
	if len(c.ServeOn) > 0 {
		// kube-apiserver binds one address: all of them, then, with the
		// certificate naming only loopback and ServeOn.
		bind = "0.0.0.0"
	}
	return []string{
		"--etcd-servers=" + strings.Join(servers, ","),
		"--etcd-cafile=" + filepath.Join(pki, "etcd", "ca.crt"),
		"--etcd-certfile=" + filepath.Join(pki, "apiserver-etcd-client.crt"),
		"--etcd-keyfile=" + filepath.Join(pki, "apiserver-etcd-client.key"),
		"--bind-address=" + bind,
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + filepath.Join(pki, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "serving.key"),
		"--client-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--token-auth-file=" + filepath.Join(pki, "tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		// Webhook Services are reached at their endpoint addresses, as
		// there is no kube-proxy here.
		"--enable-aggregator-routing=true",
		// kubectl exec and logs reach the kwok that plays each node's
		// kubelet at the node's loopback address.
		"--kubelet-preferred-address-types=InternalIP",
		// The endpoint reconciler refuses loopback advertise addresses; the
		// kube-apiserver mirror pods say where each server runs instead.
		"--endpoint-reconciler-type=none",
		// APISERVER_PROFILING=true serves /debug/pprof, for benchmarks
		// that profile the API server (BENCH_PPROF_DIR).
		"--profiling=" + strconv.FormatBool(os.Getenv("APISERVER_PROFILING") == "true"),
		"--max-requests-inflight=800",
		"--max-mutating-requests-inflight=400",
		"--v=1",
	}
}

func (c *Cluster) kwokArgs(index int, dc string) []string {
	args := []string{
		"--kubeconfig=" + c.Kubeconfig(),
		"--manage-nodes-with-label-selector=" + KwokLabel + "=kwok," + c.Topo.Label + "=" + dc,
		fmt.Sprintf("--cidr=10.%d.0.0/16", 100+index),
		fmt.Sprintf("--node-lease-duration-seconds=%d", kwokLeaseSecs),
	}
	if addr := c.kubeletAddress(dc); addr != "" {
		pki := filepath.Join(c.Dir, "pki")
		args = append(args, "--server-address="+addr, fmt.Sprintf("--node-port=%d", c.KubeletPorts[dc]),
			"--tls-cert-file="+filepath.Join(pki, "serving.crt"), "--tls-private-key-file="+filepath.Join(pki, "serving.key"),
			"--config="+filepath.Join(c.Dir, execConfigName))
	}
	stages, _ := filepath.Glob(filepath.Join(c.Bin, "kwok-stages", "*.yaml"))
	for _, s := range stages {
		args = append(args, "--config="+s)
	}
	return args
}

func (c *Cluster) schedulerArgs() ([]string, error) {
	cfg := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %s
  qps: 500
  burst: 1000
leaderElection:
  leaderElect: false
`, c.Kubeconfig())
	path := filepath.Join(c.Dir, "scheduler.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return []string{"--config=" + path, "--bind-address=127.0.0.1", "--secure-port=0", "--v=1"}, nil
}

func (c *Cluster) controllerManagerArgs() []string {
	pki := filepath.Join(c.Dir, "pki")
	return []string{
		"--kubeconfig=" + c.Kubeconfig(),
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--service-account-private-key-file=" + filepath.Join(pki, "sa.key"),
		"--root-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--use-service-account-credentials=false",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"--concurrent-deployment-syncs=20",
		"--concurrent-replicaset-syncs=20",
		"--v=1",
	}
}

// KwokLabel marks the nodes kwok manages (value "kwok"). Nodes a test
// creates without it stay unmanaged: no lease, no pod status.
const KwokLabel = "type"

// registerNodes creates the topology's nodes with loopback addresses and
// capacity, and the mirror pods of the static control-plane pods kubeadm
// would run on them (etcd, kube-apiserver).
func (c *Cluster) registerNodes(ctx context.Context, nodes []node) error {
	for _, n := range nodes {
		obj := NodeObject(n.Name, c.Topo.Label, n.Datacenter, n.IP, n.ControlPlane)
		obj.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(c.KubeletPorts[n.Datacenter])
		created, err := c.client.CoreV1().Nodes().Create(ctx, obj, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
		created.Status = obj.Status
		if _, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("set status of node %s: %w", n.Name, err)
		}
	}
	for _, m := range c.Etcd {
		if m.Node == "" {
			// An external member: its host is no Node, it has no pod.
			continue
		}
		if err := c.createMirrorPod(ctx, etcdMirrorPod(m)); err != nil {
			return err
		}
	}
	for node, u := range c.KineURLs {
		if err := c.createMirrorPod(ctx, kineMirrorPod(node, u, c.kineArgs(node, c.primaryAddress()))); err != nil {
			return err
		}
	}
	for _, a := range c.APIServers {
		servers := c.etcdServers()
		if c.Topo.Kine {
			servers = []string{c.KineURLs[a.Node]}
		}
		if err := c.createMirrorPod(ctx, apiserverMirrorPod(a, servers)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) createMirrorPod(ctx context.Context, pod *corev1.Pod) error {
	node, err := c.Client().CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: new(true)}}
	if _, err := c.Client().CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create mirror pod %s: %w", pod.Name, err)
	}
	return nil
}

// Stop stops every process, leaving none behind, and removes the cluster's
// directory when Start created it.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	// Clients first, then the API servers, then etcd.
	order := func(name string) int {
		switch {
		case strings.HasPrefix(name, "kwok-"), name == "kube-scheduler", name == "kube-controller-manager":
			return 0
		case strings.HasPrefix(name, "kube-apiserver-"):
			return 1
		case strings.HasPrefix(name, "postgres-"):
			// After kine: a smart shutdown waits for its sessions.
			return 3
		}
		return 2
	}
	for pass := 0; pass < 4; pass++ {
		var wg sync.WaitGroup
		var emu sync.Mutex
		for name, p := range c.Procs {
			if order(name) != pass {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.stop(stopGrace); err != nil {
					emu.Lock()
					errs = append(errs, err)
					emu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	for i := range c.Etcd {
		c.Etcd[i].Running = false
	}
	if c.ownsDir {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
	} else if c.Dir != "" {
		_ = os.Remove(filepath.Join(c.Dir, "state.json"))
	}
	return utilerrors.NewAggregate(errs)
}

// Kubeconfig returns the path of the admin kubeconfig (system:masters).
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.Dir, kubeconfigName) }

// DataDir returns the directory holding the cluster's data, logs and kubeconfig.
func (c *Cluster) DataDir() string { return c.Dir }

// BinDir returns the directory of the control-plane binaries.
func (c *Cluster) BinDir() string { return c.Bin }

// Topology returns the cluster's topology, with the label defaulted.
func (c *Cluster) Topology() Topology { return c.Topo }

// Label returns the datacenter label nodes carry.
func (c *Cluster) Label() string { return c.Topo.Label }

// RESTConfig returns an admin client configuration for the first running
// API server. Callers may change the copy they get.
func (c *Cluster) RESTConfig() *rest.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restConfigLocked()
}

func (c *Cluster) restConfigLocked() *rest.Config {
	return &rest.Config{
		Host:            c.serverLocked(),
		BearerToken:     c.Token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(c.Dir, "pki", "ca.crt")},
		QPS:             200,
		Burst:           400,
	}
}

func (c *Cluster) serverLocked() string {
	for _, a := range c.APIServers {
		if p := c.Procs[apiProc(a.Node)]; p != nil && p.running() {
			return a.URL
		}
	}
	return c.APIServers[0].URL
}

// Client returns an admin clientset.
func (c *Cluster) Client() kubernetes.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		c.client = kubernetes.NewForConfigOrDie(c.restConfigLocked())
	}
	return c.client
}

// Nodes returns the node names of datacenter dc, control planes first.
func (c *Cluster) Nodes(dc string) []string {
	var out []string
	for _, n := range c.Topo.nodes() {
		if n.Datacenter == dc {
			out = append(out, n.Name)
		}
	}
	return out
}

// Members returns the etcd members sorted by name.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.Etcd)
	for i := range out {
		p := c.Procs[etcdProc(out[i].Name)]
		out[i].Running = p != nil && p.running()
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// EtcdEndpoints returns the client URLs of every member.
func (c *Cluster) EtcdEndpoints() []string {
	var out []string
	for _, m := range c.Members() {
		out = append(out, m.ClientURL)
	}
	return out
}

// APIServerList returns the API servers and whether each runs.
func (c *Cluster) APIServerList() []APIServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.APIServers)
	for i := range out {
		p := c.Procs[apiProc(out[i].Node)]
		out[i].Running = p != nil && p.running()
	}
	return out
}

func (c *Cluster) startAll(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.Procs[name].start(filepath.Join(c.Dir, "logs"), c.detach); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) waitEtcdHealthy(ctx context.Context) error {
	for _, m := range c.Etcd {
		if err := c.waitMemberHealthy(ctx, m); err != nil {
			return fmt.Errorf("etcd member %s: %w", m.Name, err)
		}
	}
	return nil
}

// waitMemberHealthy waits until member m answers /health with 200: it
// serves clients and knows a leader.
func (c *Cluster) waitMemberHealthy(ctx context.Context, m Member) error {
	cfg, err := c.EtcdClientTLS()
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()
	c.mu.Lock()
	p := c.Procs[etcdProc(m.Name)]
	c.mu.Unlock()
	return waitHTTP(ctx, m.ClientURL+"/health", hc, p)
}

func (c *Cluster) waitAPIServers(ctx context.Context) error {
	hc, err := c.httpClient()
	if err != nil {
		return err
	}
	for _, a := range c.APIServers {
		if err := waitHTTP(ctx, a.URL+"/readyz", hc, c.Procs[apiProc(a.Node)]); err != nil {
			return fmt.Errorf("kube-apiserver on %s: %w", a.Node, err)
		}
	}
	return nil
}

func (c *Cluster) httpClient() (*http.Client, error) {
	cfg := &rest.Config{BearerToken: c.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(c.Dir, "pki", "ca.crt")}, Timeout: 2 * time.Second}
	return rest.HTTPClientFor(cfg)
}

// waitHTTP polls url until it answers 200, the process dies or ctx ends.
func waitHTTP(ctx context.Context, url string, hc *http.Client, p *process) error {
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Second}
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if p != nil && !p.running() {
			return false, p.exited()
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// waitNodesReady waits until the named nodes (all when nil) are Ready, and
// then, for up to mirrorPodWait, the control-plane (mirror) pods on them
// too, as a kubeadm cluster is ready only once its static pods are: a tool
// reading the members from their pods must not find one still starting.
// kwok marks those pods Ready; one it has not marked by then is logged and
// left as it is, as before this wait.
func (c *Cluster) waitNodesReady(ctx context.Context, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var nodes, pods []string
	var nodesReady time.Time
	wanted := func(node string) bool { return names == nil || slices.Contains(names, node) }
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: KwokLabel + "=kwok"})
		if err != nil {
			return false, nil
		}
		nodes = nodes[:0]
		for _, n := range list.Items {
			if wanted(n.Name) && !nodeReady(&n) {
				nodes = append(nodes, n.Name)
			}
		}
		if len(nodes) > 0 {
			return false, nil
		}
		if nodesReady.IsZero() {
			nodesReady = time.Now()
		}
		podList, err := c.client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		pods = pods[:0]
		for _, p := range podList.Items {
			if _, mirror := p.Annotations[MirrorAnnotation]; mirror && wanted(p.Spec.NodeName) && !podReady(&p) {
				pods = append(pods, p.Name)
			}
		}
		if len(pods) > 0 && time.Since(nodesReady) >= mirrorPodWait {
			c.logf("control-plane pods not Ready %s after their nodes: %s; going on", mirrorPodWait, strings.Join(pods, ", "))
			return true, nil
		}
		return len(pods) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("nodes not Ready: %s: %w", strings.Join(nodes, ", "), err)
	}
	return nil
}

// mirrorPodWait bounds waitNodesReady's wait for the mirror pods once the
// nodes are Ready: kwok marks them within seconds, but once, at the start
// of the endpoint suite, not within two minutes (the cause is not known).
const mirrorPodWait = 30 * time.Second

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *Cluster) writeKubeconfig() error {
	cfg := clientcmdapi.NewConfig()
	// With a load balancer the kubeconfig names it, and fails when it is
	// down, as an operator's would; else it follows a running API server.
	server := c.serverLocked()
	if len(c.LoadBalancers) > 0 {
		server = "https://" + c.LoadBalancers[0].Address
	}
	cfg.Clusters["kubectl-dc"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: filepath.Join(c.Dir, "pki", "ca.crt")}
	cfg.AuthInfos[adminUser] = &clientcmdapi.AuthInfo{Token: c.Token}
	cfg.Contexts["kubectl-dc"] = &clientcmdapi.Context{Cluster: "kubectl-dc", AuthInfo: adminUser}
	cfg.CurrentContext = "kubectl-dc"
	return clientcmd.WriteToFile(*cfg, c.Kubeconfig())
}

func (c *Cluster) saveState() error {
	data, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, "state.json"), data, 0o600)
}

// Load attaches to a cluster that another process started in dir with
// Options.Detach.
func Load(dir string) (*Cluster, error) {
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, fmt.Errorf("no local cluster in %s (run `dc-cluster up` first): %w", dir, err)
	}
	c := &Cluster{log: io.Discard, detach: true}
	if err := json.Unmarshal(data, &c.state); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "state.json"), err)
	}
	return c, nil
}

func etcdProc(name string) string { return "etcd-" + name }
func apiProc(node string) string  { return "kube-apiserver-" + node }
func kwokProc(dc string) string   { return "kwok-" + dc }

func etcdProcs(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, etcdProc(m.Name))
	}
	return out
}

// EnsureBinaries builds the control-plane binaries, or finds them in the
// cache, and returns their directory.
func EnsureBinaries(ctx context.Context) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "build-control-plane.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build control-plane binaries: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// ModuleRoot returns the root directory of the kubectl-dc module, found by
// walking up from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/kubectl-dc/kubectl-dc\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the kubectl-dc module: run from the repository")
		}
		dir = parent
	}
}

// ManifestsDir returns the repository's manifests/ directory.
func ManifestsDir() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "manifests"), nil
}
