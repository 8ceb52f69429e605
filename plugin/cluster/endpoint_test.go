package cluster_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

func noLookup(context.Context, string) ([]string, error) {
	return nil, errors.New("no lookup expected")
}

func TestReadControlPlaneEndpointOrder(t *testing.T) {
	kubeadm := testutil.KubeadmConfig("10.0.1.50:6443")
	info := testutil.ClusterInfo("https://10.0.2.50:6443")
	proxy := testutil.KubeProxyConfig("https://10.0.3.50:6443")
	for _, tc := range []struct {
		name      string
		objs      []runtime.Object
		forbidden string
		address   string
		source    string
		gets      int
		notes     []string
	}{
		{"kubeadm-config first", []runtime.Object{kubeadm, info, proxy}, "", "10.0.1.50:6443", cluster.EndpointSourceKubeadmConfig, 1, nil},
		{"cluster-info when kubeadm-config is missing", []runtime.Object{info, proxy}, "", "https://10.0.2.50:6443", cluster.EndpointSourceClusterInfo, 2,
			[]string{"kube-system/kubeadm-config: not found"}},
		{"kube-proxy when the others are forbidden", []runtime.Object{kubeadm, info, proxy}, "kubeadm-config,cluster-info", "https://10.0.3.50:6443", cluster.EndpointSourceKubeProxy, 3,
			[]string{"kube-system/kubeadm-config: not allowed to read it", "kube-public/cluster-info: not allowed to read it"}},
		{"a single-server kubeadm cluster names no controlPlaneEndpoint", []runtime.Object{testutil.KubeadmConfig(""), info}, "", "https://10.0.2.50:6443", cluster.EndpointSourceClusterInfo, 2,
			[]string{"kube-system/kubeadm-config: ClusterConfiguration names no endpoint"}},
		{"the caller's kubeconfig last", nil, "", "https://10.9.9.9:6443", cluster.EndpointSourceKubeconfig, 3,
			[]string{"kube-system/kubeadm-config: not found", "kube-public/cluster-info: not found", "kube-system/kube-proxy: not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(tc.objs...)
			for _, name := range strings.Split(tc.forbidden, ",") {
				if name == "" {
					continue
				}
				client.PrependReactor("get", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
					if a.(k8stesting.GetAction).GetName() != name {
						return false, nil, nil
					}
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, name, errors.New("rbac"))
				})
			}
			ep := cluster.ReadControlPlaneEndpoint(context.Background(), client, "https://10.9.9.9:6443", noLookup)
			if ep.Address != tc.address || ep.Source != tc.source || !reflect.DeepEqual(ep.Notes, tc.notes) {
				t.Errorf("endpoint = %q from %q, notes %q; want %q from %q, notes %q", ep.Address, ep.Source, ep.Notes, tc.address, tc.source, tc.notes)
			}
			if n := len(client.Actions()); n != tc.gets {
				t.Errorf("%d API calls, want %d", n, tc.gets)
			}
			for _, a := range client.Actions() {
				if a.GetVerb() != "get" || a.GetResource().Resource != "configmaps" {
					t.Errorf("unexpected %s %s", a.GetVerb(), a.GetResource().Resource)
				}
			}
		})
	}
}

func TestReadControlPlaneEndpointBadData(t *testing.T) {
	bad := testutil.ClusterInfo("x")
	bad.Data["kubeconfig"] = "{not yaml"
	noKey := testutil.KubeProxyConfig("x")
	noKey.Data = map[string]string{}
	client := fake.NewClientset(bad, noKey)
	ep := cluster.ReadControlPlaneEndpoint(context.Background(), client, "", noLookup)
	if ep.Address != "" || ep.Source != "" || len(ep.Notes) != 3 || !strings.HasPrefix(ep.Notes[1], "kube-public/cluster-info: kubeconfig: ") || ep.Notes[2] != "kube-system/kube-proxy: no kubeconfig.conf key" {
		t.Errorf("endpoint = %+v", ep)
	}
}

func TestReadControlPlaneEndpointResolves(t *testing.T) {
	client := fake.NewClientset(testutil.KubeadmConfig("api.example.com:6443"))
	ep := cluster.ReadControlPlaneEndpoint(context.Background(), client, "", func(_ context.Context, host string) ([]string, error) {
		if host != "api.example.com" {
			t.Errorf("lookup of %q", host)
		}
		return []string{"10.0.3.50", "10.0.1.50"}, nil
	})
	if !reflect.DeepEqual(ep.Resolved, []string{"10.0.1.50", "10.0.3.50"}) || ep.Notes[len(ep.Notes)-1] != "api.example.com resolves to 2 addresses" {
		t.Errorf("endpoint = %+v", ep)
	}

	// A DNS server that does not answer costs ResolveTimeout, no more.
	start := time.Now()
	ep = cluster.ReadControlPlaneEndpoint(context.Background(), client, "", func(ctx context.Context, _ string) ([]string, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if took := time.Since(start); took > cluster.ResolveTimeout+time.Second {
		t.Errorf("resolving took %s", took)
	}
	if len(ep.Resolved) != 0 || !strings.Contains(ep.Notes[len(ep.Notes)-1], "resolving api.example.com: context deadline exceeded") {
		t.Errorf("endpoint = %+v", ep)
	}
}
