// Package endpoint drives `kubectl dc status` against Travis CI's
// topology: three datacenters, an API server in each, and the HAProxy in
// pod-1 that every kubeconfig and kubeadm ConfigMap names as the
// control-plane endpoint. An HAProxy runs in pod-2 and pod-3 too, unnamed
// until a test points the cluster at a host name resolving to all three.
package endpoint

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/status"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/e2e/reports"
)

func TestMain(m *testing.M) {
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.LoadBalancerPerDatacenter()}))
}

// run runs the built kubectl-dc with args against c, bounded by 30 s.
func run(t *testing.T, c *cluster.Cluster, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cluster.KubectlDC(t, c, 30*time.Second, args...)
}

func statusJSON(t *testing.T, c *cluster.Cluster, args ...string) *status.Report {
	t.Helper()
	return reports.Status(t, c, reports.AnyExit, args...)
}

func hasFinding(r *status.Report, substr string) bool { return reports.Finding(r, substr) != nil }

// TestLoadBalancerInOneDatacenter: the HAProxy in pod-1 is the endpoint;
// status names it a single point of failure, and losing pod-1 loses the
// API although pod-2 and pod-3 keep etcd's quorum. Powered off, pod-1
// takes the load balancer with it: kubectl through the endpoint fails,
// while status given another API server with --server still reports.
func TestLoadBalancerInOneDatacenter(t *testing.T) {
	c := cluster.Require(t)
	kc := c.Kubeconfig()
	lb := c.ControlPlaneEndpoint()

	r := statusJSON(t, c)
	ep := r.ControlPlaneEndpoint
	if ep == nil || ep.Kind != "loadbalancer" || ep.Datacenter != "pod-1" || ep.Source != "kubeadm-config" || !strings.Contains(ep.Address, lb) {
		t.Fatalf("controlPlaneEndpoint = %+v; want the load balancer %s in pod-1, read from kubeadm-config", ep, lb)
	}
	if len(ep.Servers) != 3 {
		t.Errorf("servers behind the load balancer = %v, want the 3 API servers", ep.Servers)
	}
	if !hasFinding(r, "single point of failure") {
		t.Errorf("no single-point-of-failure finding: %+v", r.Findings)
	}

	r = statusJSON(t, c, "--lose", "pod-1")
	w := r.WhatIf
	if w == nil || !w.HasQuorum || w.APIReachable == nil || *w.APIReachable || !strings.Contains(w.APIReachableReason, "pod-1") {
		t.Fatalf("what-if pod-1 = %+v; want quorum kept, the API unreachable because the load balancer runs in pod-1", w)
	}
	table, _, _ := run(t, c, "status", "--lose", "pod-1")
	if !strings.Contains(table, "API reachable: no") {
		t.Errorf("the what-if table does not say the API is unreachable:\n%s", table)
	}
	r = statusJSON(t, c, "--lose", "pod-2")
	if w := r.WhatIf; w == nil || w.APIReachable == nil || !*w.APIReachable {
		t.Errorf("what-if pod-2 = %+v; want the API reachable through pod-1's load balancer", w)
	}

	ctx := context.Background()
	if err := c.DatacenterDown(ctx, "pod-1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.DatacenterUp(context.Background(), "pod-1"); err != nil {
			t.Errorf("pod-1 up: %v", err)
		}
	})
	if out, err := exec.Command("kubectl", "--kubeconfig", kc, "--request-timeout", "5s", "get", "nodes").CombinedOutput(); err == nil {
		t.Errorf("kubectl through the endpoint in powered-off pod-1 still works:\n%s", out)
	}
	var other string
	for _, a := range c.APIServerList() {
		if a.Datacenter == "pod-2" {
			other = a.URL
		}
	}
	r = statusJSON(t, c, "--server", other)
	var down []string
	for _, d := range r.Datacenters {
		if d.Down {
			down = append(down, d.Name)
		}
	}
	if len(down) != 1 || down[0] != "pod-1" || !r.Etcd.HasQuorum {
		t.Errorf("status through pod-2's API server: down %v, quorum %v; want pod-1 down and quorum kept", down, r.Etcd.HasQuorum)
	}
	if !hasFinding(r, "control-plane endpoint") {
		t.Errorf("no finding says the endpoint is gone with pod-1: %+v", r.Findings)
	}
}

// TestLoadBalancerPerDatacenter: with the endpoint a host name resolving to
// one HAProxy per datacenter, status places each address in its
// datacenter, the single-point-of-failure finding is gone, and losing any
// one datacenter keeps the API reachable.
func TestLoadBalancerPerDatacenter(t *testing.T) {
	c := cluster.Require(t)
	ctx := context.Background()
	if err := c.NameControlPlaneEndpoint(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.RestoreControlPlaneEndpoint(context.Background()); err != nil {
			t.Errorf("restore the endpoint: %v", err)
		}
	})

	r := statusJSON(t, c)
	ep := r.ControlPlaneEndpoint
	if ep == nil || ep.Kind != "loadbalancer" || ep.Datacenter != "" || !strings.HasPrefix(ep.Address, cluster.EndpointName+":") {
		t.Fatalf("controlPlaneEndpoint = %+v; want load balancers named %s in several datacenters", ep, cluster.EndpointName)
	}
	var dcs []string
	for _, tg := range ep.Targets {
		if tg.Kind != "loadbalancer" || len(tg.Servers) != 3 {
			t.Errorf("target %+v: want a load balancer in front of the 3 API servers", tg)
		}
		dcs = append(dcs, tg.Datacenter)
	}
	if strings.Join(dcs, ",") != "pod-1,pod-2,pod-3" {
		t.Errorf("the endpoint's addresses are in %v, want one in each of pod-1, pod-2, pod-3", dcs)
	}
	if hasFinding(r, "single point of failure") {
		t.Errorf("a single-point-of-failure finding with a load balancer in every datacenter: %+v", r.Findings)
	}
	for _, dc := range []string{"pod-1", "pod-2", "pod-3"} {
		r := statusJSON(t, c, "--lose", dc)
		if w := r.WhatIf; w == nil || w.APIReachable == nil || !*w.APIReachable {
			t.Errorf("what-if %s = %+v; want the API reachable through the other datacenters' load balancers", dc, w)
		}
	}

	// An operator of `dc-cluster up --topology lb-per-dc` reaches the API
	// by the endpoint's name with `dc-cluster run`, which reads the name
	// from the saved cluster state.
	t.Run("dc-cluster run resolves the endpoint", func(t *testing.T) {
		bin, err := cluster.BuildBinary("./test/cmd/dc-cluster")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "--dir", c.Dir, "run", "--",
			"kubectl", "get", "--raw", "/readyz", "--server", "https://"+c.EndpointAddress).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "ok" {
			t.Fatalf("dc-cluster run -- kubectl get --raw /readyz --server https://%s: %v\n%s", c.EndpointAddress, err, out)
		}
	})
}
