package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/kubectl-dc/kubectl-dc/test/ports"
)

// EtcdClient returns an etcd client of every running member, with the
// health-check client certificate. The caller closes it.
func (c *Cluster) EtcdClient() (*clientv3.Client, error) {
	tlsCfg, err := c.EtcdClientTLS()
	if err != nil {
		return nil, err
	}
	var eps []string
	for _, m := range c.Members() {
		if m.Running {
			eps = append(eps, m.ClientURL)
		}
	}
	return clientv3.New(clientv3.Config{Endpoints: eps, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// AddLearner adds a control-plane node named node to datacenter dc and an
// etcd member on it the way kubeadm joins one: `member add --learner`, then
// the member starts with the existing cluster and catches up. Its mirror
// pod is created like the others'. It returns once the learner listens.
// A failure after the member was added removes it again (and what else was
// made of it), so that a half-joined member never costs the cluster its
// quorum margin.
func (c *Cluster) AddLearner(ctx context.Context, node, dc string) (m Member, err error) {
	if !c.hasDatacenter(dc) {
		return Member{}, fmt.Errorf("no datacenter %q in the topology", dc)
	}
	for _, m := range c.Etcd {
		if m.Node == node {
			return Member{}, fmt.Errorf("node %s already runs member %s", node, m.Name)
		}
	}
	client, peer := ports.Free(), ports.Free()
	if client == 0 || peer == 0 {
		return Member{}, fmt.Errorf("no free loopback port")
	}
	m = Member{Name: node, Node: node, Datacenter: dc,
		ClientURL: fmt.Sprintf("https://127.0.0.1:%d", client), PeerURL: fmt.Sprintf("https://127.0.0.1:%d", peer)}

	cli, err := c.EtcdClient()
	if err != nil {
		return Member{}, err
	}
	defer func() { _ = cli.Close() }()
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	resp, err := cli.MemberAddAsLearner(actx, []string{m.PeerURL})
	cancel()
	if err != nil {
		return Member{}, fmt.Errorf("member add --learner %s: %w", node, err)
	}
	var nodeMade, podMade bool
	defer func() {
		if err != nil {
			err = c.undoLearner(context.WithoutCancel(ctx), cli, resp.Member.ID, node, nodeMade, podMade, err)
		}
	}()
	// The initial cluster is every member etcd lists, named as it names
	// them, the new one included.
	var initial []string
	for _, mm := range resp.Members {
		name := mm.Name
		if mm.ID == resp.Member.ID {
			name = m.Name
		}
		if name == "" {
			continue
		}
		for _, u := range mm.PeerURLs {
			initial = append(initial, name+"="+u)
		}
	}
	args := c.etcdArgs(m, initial, "existing")
	c.mu.Lock()
	c.Etcd = append(c.Etcd, m)
	c.Procs[etcdProc(m.Name)] = &process{Name: etcdProc(m.Name), Bin: filepath.Join(c.Bin, "etcd"), Args: args}
	c.mu.Unlock()
	if err := c.Procs[etcdProc(m.Name)].start(c.Dir+"/logs", c.detach); err != nil {
		return Member{}, err
	}
	// A joining member listens at once but serves clients only once it has
	// caught up with the leader: wait for that, as for the first members.
	if err := c.waitMemberHealthy(ctx, m); err != nil {
		return Member{}, fmt.Errorf("learner %s: %w", node, err)
	}

	ip, err := c.nextNodeIP(dc)
	if err != nil {
		return Member{}, err
	}
	obj := NodeObject(node, c.Topo.Label, dc, ip, true)
	obj.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(c.KubeletPorts[dc])
	nodes := c.Client().CoreV1().Nodes()
	if _, err := nodes.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return Member{}, fmt.Errorf("create node %s: %w", node, err)
	}
	nodeMade = true
	// kwok manages the node from its creation on and writes its status
	// too: set addresses, capacity and the kubelet port on the latest.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := nodes.Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Addresses, cur.Status.DaemonEndpoints = obj.Status.Addresses, obj.Status.DaemonEndpoints
		cur.Status.Capacity, cur.Status.Allocatable = obj.Status.Capacity, obj.Status.Allocatable
		_, err = nodes.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return Member{}, fmt.Errorf("set status of node %s: %w", node, err)
	}
	if err := c.createMirrorPod(ctx, etcdMirrorPod(m)); err != nil {
		return Member{}, err
	}
	podMade = true
	fwd, err := c.addKubeletForwarder(node, ip, dc)
	if err != nil {
		return Member{}, err
	}
	if fwd != "" {
		if err := c.Procs[fwd].start(c.Dir+"/logs", c.detach); err != nil {
			return Member{}, err
		}
	}
	return m, c.saveState()
}

// undoLearner removes what a failed AddLearner made of the learner on
// node: the member (by its ID: one that never started has no name), its
// process and forwarder, and the Node and mirror pod when it created them
// (a name that was taken is left alone). It returns cause, with any
// failure to undo.
func (c *Cluster) undoLearner(ctx context.Context, cli *clientv3.Client, id uint64, node string, nodeMade, podMade bool, cause error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var undo []string
	if _, err := cli.MemberRemove(ctx, id); err != nil {
		undo = append(undo, fmt.Sprintf("member remove: %v", err))
	}
	c.mu.Lock()
	procs := []*process{c.Procs[etcdProc(node)], c.Procs[kubeletProc(node)]}
	delete(c.Procs, etcdProc(node))
	delete(c.Procs, kubeletProc(node))
	delete(c.KubeletForwarders, node)
	c.Etcd = slices.DeleteFunc(c.Etcd, func(m Member) bool { return m.Node == node })
	c.mu.Unlock()
	for _, p := range procs {
		if p != nil {
			if err := p.stop(0); err != nil {
				undo = append(undo, err.Error())
			}
		}
	}
	if podMade {
		if err := c.Client().CoreV1().Pods(metav1.NamespaceSystem).Delete(ctx, "etcd-"+node, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			undo = append(undo, err.Error())
		}
	}
	if nodeMade {
		if err := c.Client().CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			undo = append(undo, err.Error())
		}
	}
	if err := c.saveState(); err != nil {
		undo = append(undo, err.Error())
	}
	if len(undo) > 0 {
		return fmt.Errorf("%w (and undoing the learner: %s)", cause, strings.Join(undo, "; "))
	}
	return cause
}

// PromoteLearner promotes the learner on node to a voter once it has caught
// up with the leader (etcd refuses before), waiting up to a minute.
func (c *Cluster) PromoteLearner(ctx context.Context, node string) error {
	cli, err := c.EtcdClient()
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	err = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := cli.MemberList(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		for _, m := range list.Members {
			if m.Name != node {
				continue
			}
			if !m.IsLearner {
				return true, nil
			}
			if _, err := cli.MemberPromote(ctx, m.ID); err != nil {
				last = err
				return false, nil
			}
			return true, nil
		}
		return false, fmt.Errorf("no etcd member named %s", node)
	})
	if err != nil && last != nil {
		return fmt.Errorf("promote %s: %w (last: %w)", node, err, last)
	}
	return err
}

// nextNodeIP returns the next free node address of datacenter dc.
func (c *Cluster) nextNodeIP(dc string) (string, error) {
	nodes, err := c.Client().CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: c.Topo.Label + "=" + dc})
	if err != nil {
		return "", err
	}
	prefix := ""
	for d, t := range c.Topo.Datacenters {
		if t.Name == dc {
			prefix = fmt.Sprintf("127.1.%d.", d+1)
		}
	}
	used := map[string]bool{}
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			used[a.Address] = true
		}
	}
	for i := 1; i < 255; i++ {
		if ip := prefix + fmt.Sprint(i); !used[ip] {
			return ip, nil
		}
	}
	return "", fmt.Errorf("datacenter %s has no free node address", dc)
}

// RemoveMember removes the member on node from etcd (`member remove`),
// stops it and deletes its Node, as kubeadm reset on that node would. The
// member must be one AddLearner joined.
func (c *Cluster) RemoveMember(ctx context.Context, node string) error {
	cli, err := c.EtcdClient()
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := cli.MemberList(rctx)
	if err != nil {
		return err
	}
	// A member that never started has no name yet: known by its peer URL.
	peer := ""
	c.mu.Lock()
	for _, m := range c.Etcd {
		if m.Node == node {
			peer = m.PeerURL
		}
	}
	c.mu.Unlock()
	for _, m := range list.Members {
		if m.Name == node || peer != "" && slices.Contains(m.PeerURLs, peer) {
			if _, err := cli.MemberRemove(rctx, m.ID); err != nil {
				return fmt.Errorf("member remove %s: %w", node, err)
			}
		}
	}
	c.mu.Lock()
	procs := []*process{c.Procs[etcdProc(node)], c.Procs[kubeletProc(node)]}
	delete(c.Procs, etcdProc(node))
	delete(c.Procs, kubeletProc(node))
	delete(c.KubeletForwarders, node)
	for i, m := range c.Etcd {
		if m.Node == node {
			c.Etcd = append(c.Etcd[:i], c.Etcd[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	for _, p := range procs {
		if p == nil {
			continue
		}
		if err := p.stop(stopGrace); err != nil {
			return err
		}
	}
	if err := c.Client().CoreV1().Pods(metav1.NamespaceSystem).Delete(rctx, "etcd-"+node, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := c.Client().CoreV1().Nodes().Delete(rctx, node, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return c.saveState()
}
