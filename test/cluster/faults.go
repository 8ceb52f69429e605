package cluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// faultTimeout bounds the best-effort API updates fault injection makes
// (mirror pod readiness, node conditions): with quorum gone they fail, and
// that must not hold the test up.
const faultTimeout = 3 * time.Second

// StopMember kills the etcd member name, as a crash would, and marks its mirror pod not Ready,
// as the kubelet would (best effort: without quorum the API cannot be
// written).
func (c *Cluster) StopMember(name string) error {
	p, err := c.proc(etcdProc(name))
	if err != nil {
		return err
	}
	if err := p.stop(0); err != nil {
		return err
	}
	if node := c.memberNode(name); node != "" {
		c.setPodReady("etcd-"+node, false)
	}
	return c.saveState()
}

// StartMember starts the stopped etcd member name again with its data and
// waits until it listens.
func (c *Cluster) StartMember(name string) error {
	p, err := c.proc(etcdProc(name))
	if err != nil {
		return err
	}
	if err := p.start(c.Dir+"/logs", c.detach); err != nil {
		return err
	}
	for _, m := range c.Etcd {
		if m.Name == name {
			if err := waitListen(urlHost(m.ClientURL), p); err != nil {
				return fmt.Errorf("etcd member %s: %w", name, err)
			}
		}
	}
	if node := c.memberNode(name); node != "" {
		c.setPodReady("etcd-"+node, true)
	}
	return c.saveState()
}

// StopAPIServer stops every kube-apiserver.
func (c *Cluster) StopAPIServer() error {
	for _, a := range c.APIServers {
		if err := c.Procs[apiProc(a.Node)].stop(stopGrace); err != nil {
			return err
		}
	}
	return c.saveState()
}

// StartAPIServer starts every stopped kube-apiserver on its old port and
// waits until each is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	for _, a := range c.APIServers {
		if err := c.Procs[apiProc(a.Node)].start(c.Dir+"/logs", c.detach); err != nil {
			return err
		}
	}
	if err := c.waitAPIServers(ctx); err != nil {
		return err
	}
	return c.saveState()
}

// DatacenterDown takes datacenter dc down as a power loss would: its kwok
// dies (no more leases or pod updates), its etcd members and API servers
// die, and its nodes are marked NotReady as the node lifecycle controller
// would after its grace period.
func (c *Cluster) DatacenterDown(ctx context.Context, dc string) error {
	if !c.hasDatacenter(dc) {
		return fmt.Errorf("no datacenter %q in the topology", dc)
	}
	if err := c.Procs[kwokProc(dc)].stop(0); err != nil {
		return err
	}
	for _, name := range append(c.kubeletForwarders(dc), lbProc(dc)) {
		if p := c.Procs[name]; p != nil {
			if err := p.stop(0); err != nil {
				return err
			}
		}
	}
	// A kine datastore: the datacenter's PostgreSQL server and kines.
	if p := c.Procs[pgProc(dc)]; p != nil {
		if err := p.stop(0); err != nil {
			return err
		}
	}
	for _, name := range c.Nodes(dc) {
		if p := c.Procs[kineProc(name)]; p != nil {
			if err := p.stop(0); err != nil {
				return err
			}
		}
	}
	for _, m := range c.Etcd {
		if m.Datacenter == dc {
			if err := c.Procs[etcdProc(m.Name)].stop(0); err != nil {
				return err
			}
		}
	}
	for _, a := range c.APIServers {
		if a.Datacenter == dc {
			if err := c.Procs[apiProc(a.Node)].stop(0); err != nil {
				return err
			}
		}
	}
	if err := c.writeKubeconfig(); err != nil {
		return err
	}
	c.mu.Lock()
	c.client = nil
	c.mu.Unlock()
	if !slices.Contains(c.Down, dc) {
		c.Down = append(c.Down, dc)
	}
	c.markDown(ctx, dc)
	return c.saveState()
}

// markDown marks what datacenter dc's kubelets reported as the node
// lifecycle controller would once they are silent: its mirror pods not
// Ready, its nodes NotReady. Best effort: without a datastore the API cannot
// be written, and markDownAgain repeats it once it can.
func (c *Cluster) markDown(ctx context.Context, dc string) {
	for _, m := range c.Etcd {
		if m.Datacenter == dc && m.Node != "" {
			c.setPodReady("etcd-"+m.Node, false)
		}
	}
	for _, a := range c.APIServers {
		if a.Datacenter == dc {
			c.setPodReady("kube-apiserver-"+a.Node, false)
			if c.KineURLs[a.Node] != "" {
				c.setPodReady("kine-"+a.Node, false)
			}
		}
	}
	for _, name := range c.Nodes(dc) {
		c.setNodeReady(ctx, name, corev1.ConditionUnknown)
	}
}

// markDownAgain repeats markDown for every datacenter that is down, once
// the API can be written again (a kine datastore repointed at a promoted
// replica): the node lifecycle controller would have done it meanwhile.
func (c *Cluster) markDownAgain(ctx context.Context) {
	for _, dc := range c.Down {
		c.markDown(ctx, dc)
	}
}

// DatacenterUp brings datacenter dc back: etcd members, API servers and kwok
// start again and its nodes become Ready.
func (c *Cluster) DatacenterUp(ctx context.Context, dc string) error {
	if !c.hasDatacenter(dc) {
		return fmt.Errorf("no datacenter %q in the topology", dc)
	}
	for _, m := range c.Etcd {
		if m.Datacenter == dc {
			if err := c.StartMember(m.Name); err != nil {
				return err
			}
		}
	}
	if db := c.databaseIn(dc); db != nil {
		// It comes back as it went: a primary that was replaced by a
		// promotion meanwhile makes a split brain, as a real one would.
		if err := c.startPG(db); err != nil {
			return err
		}
	}
	for _, name := range c.Nodes(dc) {
		if p := c.Procs[kineProc(name)]; p != nil {
			if err := p.start(c.Dir+"/logs", c.detach); err != nil {
				return err
			}
			if err := waitListen(urlHost(c.KineURLs[name]), p); err != nil {
				return fmt.Errorf("kine on %s: %w", name, err)
			}
		}
	}
	c.Down = slices.DeleteFunc(c.Down, func(d string) bool { return d == dc })
	if err := c.StartAPIServer(ctx); err != nil {
		return err
	}
	if err := c.writeKubeconfig(); err != nil {
		return err
	}
	if err := c.Procs[kwokProc(dc)].start(c.Dir+"/logs", c.detach); err != nil {
		return err
	}
	for _, name := range append(c.kubeletForwarders(dc), lbProc(dc)) {
		if p := c.Procs[name]; p != nil {
			if err := p.start(c.Dir+"/logs", c.detach); err != nil {
				return err
			}
		}
	}
	c.Client()
	// A kubelet that starts posts its node's status at once; kwok only
	// at its next heartbeat, half a minute later.
	for _, name := range c.Nodes(dc) {
		c.setNodeReady(ctx, name, corev1.ConditionTrue)
	}
	for _, a := range c.APIServers {
		if a.Datacenter == dc {
			c.setPodReady("kube-apiserver-"+a.Node, true)
			if c.KineURLs[a.Node] != "" {
				c.setPodReady("kine-"+a.Node, true)
			}
		}
	}
	if err := c.waitNodesReady(ctx, c.Nodes(dc)); err != nil {
		return err
	}
	return c.saveState()
}

func (c *Cluster) hasDatacenter(dc string) bool {
	for _, d := range c.Topo.Datacenters {
		if d.Name == dc {
			return true
		}
	}
	return false
}

func (c *Cluster) proc(name string) (*process, error) {
	p := c.Procs[name]
	if p == nil {
		return nil, fmt.Errorf("no process %q in this cluster", name)
	}
	return p, nil
}

// memberNode is the node member name runs on, "" for an external member.
func (c *Cluster) memberNode(name string) string {
	for _, m := range c.Etcd {
		if m.Name == name {
			return m.Node
		}
	}
	return name
}

func (c *Cluster) setPodReady(name string, ready bool) {
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	defer cancel()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pods := c.Client().CoreV1().Pods(metav1.NamespaceSystem)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return
	}
	now := metav1.Now()
	for _, t := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		found := false
		for i := range pod.Status.Conditions {
			if pod.Status.Conditions[i].Type == t {
				pod.Status.Conditions[i].Status, pod.Status.Conditions[i].LastTransitionTime = status, now
				found = true
			}
		}
		if !found {
			pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: t, Status: status, LastTransitionTime: now})
		}
	}
	for i := range pod.Status.ContainerStatuses {
		pod.Status.ContainerStatuses[i].Ready = ready
	}
	_, _ = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
}

// setNodeReady sets node name's Ready condition to status, as the node
// lifecycle controller does for a silent kubelet (Unknown) or a kubelet
// posts at start (True).
func (c *Cluster) setNodeReady(ctx context.Context, name string, status corev1.ConditionStatus) {
	ctx, cancel := context.WithTimeout(ctx, faultTimeout)
	defer cancel()
	nodes := c.Client().CoreV1().Nodes()
	n, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return
	}
	now := metav1.Now()
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type != corev1.NodeReady {
			continue
		}
		cond := corev1.NodeCondition{Type: corev1.NodeReady, Status: status, Reason: "NodeStatusUnknown",
			Message: "Kubelet stopped posting node status: datacenter down (fault injection).", LastHeartbeatTime: n.Status.Conditions[i].LastHeartbeatTime, LastTransitionTime: now}
		if status == corev1.ConditionTrue {
			cond.Reason, cond.Message, cond.LastHeartbeatTime = "KubeletReady", "kubelet is posting ready status: datacenter powered on (fault injection).", now
		}
		n.Status.Conditions[i] = cond
	}
	_, _ = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
}

// waitListen waits until addr accepts TCP connections.
func waitListen(addr string, p *process) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		if !p.running() {
			return false, p.exited()
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, nil
		}
		_ = conn.Close()
		return true, nil
	})
}

// urlHost returns the host:port of a URL such as a member's client URL.
func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}
