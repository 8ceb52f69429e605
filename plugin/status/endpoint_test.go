package status

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// withLB adds a worker "<dc>-lb" at ip to the topology: where HAProxy runs.
func (t *topo) withLB(dc, ip string) *topo {
	t.in.Nodes = append(t.in.Nodes, testutil.Node(dc+"-lb").InDC(dc).InternalIP(ip).Obj())
	return t
}

// endpoint sets the endpoint as read from kubeadm-config.
func (t *topo) endpoint(addr string, resolved ...string) *topo {
	t.in.Endpoint = &cluster.ControlPlaneEndpoint{Address: addr, Source: cluster.EndpointSourceKubeadmConfig, Resolved: resolved}
	return t
}

// macstadium is five control planes over pod-1 (2), pod-2 (2) and pod-3
// (1): 10.0.0.1-2, 10.0.0.4-5 and 10.0.0.7, one worker each.
func macstadium() *topo {
	return newTopo().dc("pod-1", 2, 1).dc("pod-2", 2, 1).dc("pod-3", 1, 1)
}

func endpointFindings(r *Report) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if strings.Contains(f.Message, "control-plane endpoint") {
			out = append(out, f)
		}
	}
	return out
}

func tableOf(t *testing.T, r *Report, wide bool) string {
	t.Helper()
	var b strings.Builder
	if err := printStatusTable(&b, r, wide, false); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestEndpointTravisHAProxy: one HAProxy in pod-1 in front of every API
// server is a single point of failure although etcd survives pod-1's loss.
func TestEndpointTravisHAProxy(t *testing.T) {
	tp := macstadium().withLB("pod-1", "10.0.1.50").endpoint("10.0.1.50:6443").etcdFromPods("pod-2-cp-1")
	r := tp.build()
	ep := r.ControlPlaneEndpoint
	if ep == nil || ep.Kind != policy.EndpointLoadBalancer || ep.Datacenter != "pod-1" || len(ep.Servers) != 5 || ep.Source != cluster.EndpointSourceKubeadmConfig {
		t.Fatalf("endpoint = %+v, want a load balancer in pod-1 in front of 5 API servers", ep)
	}
	fs := endpointFindings(r)
	if len(fs) != 1 || fs[0].Severity != severityCritical ||
		fs[0].Message != "the control-plane endpoint 10.0.1.50:6443 (from kubeadm-config) is a single point of failure: losing datacenter pod-1 loses the API for every kubelet and operator although etcd keeps quorum without it (the load balancer runs in pod-1)" ||
		!strings.Contains(fs[0].Remedy, "one address per datacenter") || !strings.Contains(fs[0].Remedy, "VIP that moves") || !strings.Contains(fs[0].Remedy, "client-side load balancer on every node") {
		t.Errorf("endpoint findings = %+v", fs)
	}
	if s := tableOf(t, r, false); !strings.Contains(s, "Control-plane endpoint: 10.0.1.50:6443 (from kubeadm-config): a load balancer in pod-1 in front of 5 API servers\n") {
		t.Errorf("table:\n%s", s)
	}
	if err := statusExit(r, true); err != nil {
		t.Errorf("exit = %v: the endpoint finding does not change the documented exit codes", err)
	}

	t.Run("lose pod-1", func(t *testing.T) {
		tp.in.Lose = []string{"pod-1"}
		defer func() { tp.in.Lose = nil }()
		r := tp.build()
		w := r.WhatIf
		if w == nil || !w.HasQuorum || w.APIReachable == nil || *w.APIReachable || w.APIReachableReason != "the load balancer runs in pod-1" {
			t.Fatalf("whatIf = %+v, want quorum kept and the API unreachable", w)
		}
		if s := tableOf(t, r, false); !strings.Contains(s, "\nAPI reachable: no (the load balancer runs in pod-1)\n") {
			t.Errorf("table:\n%s", s)
		}
		fs := endpointFindings(r)
		if len(fs) != 1 || fs[0].Severity != severityCritical || !strings.HasPrefix(fs[0].Message, "the API is unreachable through the control-plane endpoint 10.0.1.50:6443 (from kubeadm-config) (as if pod-1 were lost): the load balancer runs in pod-1") {
			t.Errorf("endpoint findings = %+v", fs)
		}
	})

	t.Run("lose pod-2", func(t *testing.T) {
		tp.in.Lose = []string{"pod-2"}
		defer func() { tp.in.Lose = nil }()
		r := tp.build()
		if w := r.WhatIf; w.APIReachable == nil || !*w.APIReachable {
			t.Errorf("whatIf = %+v, want the API reachable", w)
		}
		if s := tableOf(t, r, false); !strings.Contains(s, "\nAPI reachable: yes\n") {
			t.Errorf("table:\n%s", s)
		}
	})
}

func TestEndpointFindings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tp    *topo
		dc    string
		kind  string
		epDC  string
		finds []string // substrings of the endpoint findings, in order
	}{
		{
			name: "one load balancer per datacenter behind DNS: no finding",
			tp:   macstadium().withLB("pod-1", "10.0.1.50").withLB("pod-2", "10.0.2.50").withLB("pod-3", "10.0.3.50").endpoint("api.example.com:6443", "10.0.1.50", "10.0.2.50", "10.0.3.50"),
			kind: policy.EndpointLoadBalancer,
		},
		{
			name:  "an API server's own address",
			tp:    macstadium().endpoint("https://10.0.0.4:6443"),
			kind:  policy.EndpointAPIServer,
			epDC:  "pod-2",
			finds: []string{"is a single point of failure: losing datacenter pod-2 loses the API for every kubelet and operator although etcd keeps quorum without it (the endpoint is the API server on pod-2-cp-1 in pod-2)"},
		},
		{
			name:  "a load balancer no node holds",
			tp:    macstadium().endpoint("https://192.168.7.7:6443"),
			kind:  policy.EndpointLoadBalancer,
			finds: []string{"is a load balancer in no known datacenter"},
		},
		{
			name:  "the operator says where it runs",
			tp:    macstadium().endpoint("https://192.168.7.7:6443"),
			dc:    "pod-3",
			kind:  policy.EndpointLoadBalancer,
			epDC:  "pod-3",
			finds: []string{"losing datacenter pod-3 loses the API"},
		},
		{
			name: "its datacenter holds a majority of voters: the quorum finding says it",
			tp:   newTopo().dc("pod-1", 3, 0).withLB("pod-1", "10.0.1.50").dc("pod-2", 1, 0).dc("pod-3", 1, 0).endpoint("10.0.1.50:6443"),
			kind: policy.EndpointLoadBalancer,
			epDC: "pod-1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.tp.in.EndpointDatacenter = tc.dc
			r := tc.tp.etcdFromPods("pod-1-cp-1").build()
			ep := r.ControlPlaneEndpoint
			if ep.Kind != tc.kind || ep.Datacenter != tc.epDC {
				t.Errorf("endpoint = %s in %q, want %s in %q", ep.Kind, ep.Datacenter, tc.kind, tc.epDC)
			}
			fs := endpointFindings(r)
			if len(fs) != len(tc.finds) {
				t.Fatalf("endpoint findings = %+v, want %d", fs, len(tc.finds))
			}
			for i, want := range tc.finds {
				if !strings.Contains(fs[i].Message, want) {
					t.Errorf("finding %q lacks %q", fs[i].Message, want)
				}
			}
		})
	}
}

// TestEndpointWithDatacenterDown: pod-1, which holds the load balancer, is
// powered off; status read through another API server says that kubelets
// have lost the API.
func TestEndpointWithDatacenterDown(t *testing.T) {
	tp := macstadium().withLB("pod-1", "10.0.1.50").endpoint("10.0.1.50:6443")
	for _, n := range tp.in.Nodes {
		if n.Labels[testutil.Zone] == "pod-1" {
			n.Status.Conditions[0].Status = "Unknown"
		}
	}
	for _, p := range tp.in.APIServerPods {
		if strings.HasPrefix(p.Spec.NodeName, "pod-1") {
			readyPod(p, false)
		}
	}
	r := tp.etcdFromPods("pod-2-cp-1", "pod-1-cp-1", "pod-1-cp-2").build()
	fs := endpointFindings(r)
	if len(fs) != 1 || !strings.HasPrefix(fs[0].Message, "the API is unreachable through the control-plane endpoint 10.0.1.50:6443 (from kubeadm-config) with pod-1 down: the load balancer runs in pod-1") {
		t.Errorf("endpoint findings = %+v", fs)
	}
}

func TestStatusRunReadsEndpoint(t *testing.T) {
	tp := macstadium().withLB("pod-1", "10.0.1.50")
	var objs []runtime.Object
	for _, n := range tp.in.Nodes {
		objs = append(objs, n)
	}
	for _, p := range tp.in.EtcdPods {
		delete(p.Annotations, policy.AnnotationEtcdClientURLs)
		objs = append(objs, p)
	}
	for _, p := range tp.in.APIServerPods {
		objs = append(objs, p)
	}

	t.Run("json from cluster-info", func(t *testing.T) {
		o, out, _ := newTestStatusOptions(t, append(objs, testutil.ClusterInfo("https://10.0.1.50:6443")))
		o.Output = cmdutil.OutputJSON
		if err := o.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		ep, ok := m["controlPlaneEndpoint"].(map[string]any)
		if !ok {
			t.Fatalf("controlPlaneEndpoint missing: %s", out)
		}
		for _, k := range []string{"address", "kind", "datacenter", "servers", "source"} {
			if _, ok := ep[k]; !ok {
				t.Errorf("controlPlaneEndpoint.%s missing", k)
			}
		}
		if ep["address"] != "https://10.0.1.50:6443" || ep["kind"] != "loadbalancer" || ep["datacenter"] != "pod-1" || ep["source"] != "cluster-info" || len(ep["servers"].([]any)) != 5 {
			t.Errorf("controlPlaneEndpoint = %v", ep)
		}
		gets := 0
		for _, a := range o.client.(*fake.Clientset).Actions() {
			if a.GetVerb() == "get" {
				gets++
			}
		}
		if gets != 2 {
			t.Errorf("%d GETs, want 2 (kubeadm-config, cluster-info)", gets)
		}
	})

	t.Run("the caller's kubeconfig, table and wide notes", func(t *testing.T) {
		o, out, _ := newTestStatusOptions(t, objs)
		o.server = "https://10.0.0.4:6443"
		o.Output = cmdutil.OutputWide
		if err := o.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		for _, want := range []string{
			"Control-plane endpoint: https://10.0.0.4:6443 (from kubeconfig): the API server on pod-2-cp-1 in pod-2\n",
			"control-plane endpoint notes:\n  kube-system/kubeadm-config: not found\n  kube-public/cluster-info: not found\n  kube-system/kube-proxy: not found\n",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("table lacks %q:\n%s", want, s)
			}
		}
	})

	t.Run("--endpoint-datacenter and --lose", func(t *testing.T) {
		o, out, _ := newTestStatusOptions(t, append(objs, testutil.KubeadmConfig("lb.example.com:6443")))
		o.lookupHost = func(context.Context, string) ([]string, error) { return []string{"192.168.7.7"}, nil }
		o.EndpointDatacenter, o.Lose = "pod-3", []string{"pod-3"}
		if err := o.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s := out.String(); !strings.Contains(s, "API reachable: no (the load balancer runs in pod-3)") {
			t.Errorf("table:\n%s", s)
		}
	})

	t.Run("unknown --endpoint-datacenter", func(t *testing.T) {
		o, _, _ := newTestStatusOptions(t, objs)
		o.EndpointDatacenter = "pod-l"
		err := o.Run(context.Background())
		var exit *cmdutil.ExitError
		if !errors.As(err, &exit) || exit.Code != cmdutil.ExitUsage ||
			err.Error() != "--endpoint-datacenter pod-l: no node has topology.kubernetes.io/zone=pod-l; did you mean pod-1? known datacenters: pod-1, pod-2, pod-3" {
			t.Errorf("err = %v", err)
		}
	})
}
