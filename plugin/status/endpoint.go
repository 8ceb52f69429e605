package status

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kubectl-dc/kubectl-dc/plugin/cluster"
	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
	"github.com/kubectl-dc/kubectl-dc/policy"
)

// EndpointReport is the control-plane endpoint in the report: what it is,
// where it runs and where it was read.
type EndpointReport struct {
	policy.Endpoint
	// Source is kubeadm-config, cluster-info, kube-proxy or kubeconfig;
	// "" when nothing named an endpoint.
	Source string `json:"source"`
	// Notes say why earlier sources were passed over (-o wide).
	Notes []string `json:"notes,omitempty"`
}

// endpointRemedy is what removes the endpoint as a single point of
// failure, as the seeds' clusters did it.
const endpointRemedy = "give the endpoint one address per datacenter (a DNS name listing a load balancer or API server in each, or a VIP that moves between datacenters), " +
	"or run a client-side load balancer on every node (HAProxy or IPVS on localhost, as DC/OS does) so that kubelets reach any API server that is left"

// checkEndpointDatacenter rejects an --endpoint-datacenter that names no
// known datacenter, with the nearest known name.
func checkEndpointDatacenter(dc string, in *statusInput) error {
	if dc == "" {
		return nil
	}
	return unknownDatacenter("--endpoint-datacenter", dc, in)
}

// buildEndpoint classifies the endpoint read against the API servers and
// nodes; nil when none was read.
func buildEndpoint(in *statusInput, servers []cluster.APIServerStatus) *EndpointReport {
	if in.Endpoint == nil {
		return nil
	}
	ep := in.Endpoint.Classify(in.Nodes, in.Label, in.EndpointDatacenter, servers)
	return &EndpointReport{Endpoint: ep, Source: in.Endpoint.Source, Notes: in.Endpoint.Notes}
}

// endpoint: a datacenter whose loss loses the API for every kubelet while
// etcd keeps quorum, because the endpoint they dial is in it.
func (f *findings) endpoint() {
	ep := f.r.ControlPlaneEndpoint
	if ep == nil || len(ep.Targets) == 0 {
		return
	}
	name := fmt.Sprintf("the control-plane endpoint %s (from %s)", ep.Address, ep.Source)
	if ep.Source == cluster.EndpointSourceKubeconfig {
		// The cluster names no endpoint: the caller's may not be the kubelets'.
		name = fmt.Sprintf("the control-plane endpoint %s (from your kubeconfig; no kubeadm-config, cluster-info or kube-proxy ConfigMap names one, so kubelets may dial another)", ep.Address)
	}
	already := append(append([]string{}, f.in.Lose...), f.r.DownDatacenters()...)
	if len(already) > 0 {
		reach := policy.EndpointReachable(ep.Endpoint, already)
		if reach.Reachable != nil && !*reach.Reachable {
			down := ""
			if d := f.r.DownDatacenters(); len(d) > 0 {
				down = " with " + strings.Join(d, ", ") + " down"
			}
			f.add(severityCritical,
				fmt.Sprintf("the API is unreachable through %s%s%s: %s; every kubelet loses it even where etcd and API servers are left", name, down, f.what, reach.Reason),
				endpointRemedy)
			// Every further loss is lost already: one cause, one finding.
			return
		}
	}
	single := ":"
	if len(ep.Targets) == 1 {
		single = " is a single point of failure:"
	}
	for _, d := range f.r.Datacenters {
		if d.Name == cluster.Unlabeled || d.Lost || d.Down {
			continue
		}
		reach := policy.EndpointReachable(ep.Endpoint, append(already[:len(already):len(already)], d.Name))
		if reach.Reachable == nil || *reach.Reachable {
			continue
		}
		switch {
		case d.SurvivesLoss != nil && *d.SurvivesLoss:
			f.add(severityCritical,
				fmt.Sprintf("%s%s losing datacenter %s loses the API for every kubelet and operator although etcd keeps quorum without it%s (%s)", name, single, d.Name, f.what, reach.Reason),
				endpointRemedy)
		case d.SurvivesLoss == nil:
			f.add(severityWarning,
				fmt.Sprintf("%s%s losing datacenter %s loses the API for every kubelet and operator%s (%s)", name, single, d.Name, f.what, reach.Reason),
				endpointRemedy)
		}
	}
	if len(ep.Targets) == 1 && ep.Targets[0].Kind == policy.EndpointLoadBalancer && ep.Targets[0].Datacenter == "" {
		f.add(severityInfo,
			fmt.Sprintf("%s is a load balancer in no known datacenter: losing the datacenter it runs in loses the API for every kubelet, and status cannot say which", name),
			"say where it runs with --endpoint-datacenter DC so that status and --lose account for it; better, "+endpointRemedy)
	}
}

// endpointLine is the table's line about the control-plane endpoint.
func endpointLine(ep *EndpointReport) string {
	if len(ep.Targets) == 0 {
		return "Control-plane endpoint: unknown (no ConfigMap and no kubeconfig names one)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Control-plane endpoint: %s (from %s): ", ep.Address, ep.Source)
	if len(ep.Targets) == 1 {
		b.WriteString(describeTarget(ep.Targets[0], len(ep.Servers)))
		return b.String()
	}
	parts := make([]string, 0, len(ep.Targets))
	for _, t := range ep.Targets {
		parts = append(parts, t.Address+" "+describeTarget(t, len(t.Servers)))
	}
	sort.Strings(parts)
	fmt.Fprintf(&b, "%d addresses: %s", len(ep.Targets), strings.Join(parts, "; "))
	return b.String()
}

// describeTarget says what one address is and where.
func describeTarget(t policy.EndpointTarget, servers int) string {
	where := "in no known datacenter"
	if t.Datacenter != "" {
		where = "in " + t.Datacenter
	}
	switch t.Kind {
	case policy.EndpointAPIServer:
		if t.Node != "" {
			return fmt.Sprintf("the API server on %s %s", t.Node, where)
		}
		return "an API server " + where
	case policy.EndpointLoadBalancer:
		return fmt.Sprintf("a load balancer %s in front of %d %s", where, servers, cmdutil.Plural(servers, "API server", "API servers"))
	}
	return "unknown (no API server is known to compare it with), " + where
}

// apiReachableLine is the what-if's line about the endpoint.
func apiReachableLine(w *WhatIfReport) string {
	switch {
	case w.APIReachable == nil:
		return fmt.Sprintf("API reachable: unknown (%s)", w.APIReachableReason)
	case *w.APIReachable:
		return "API reachable: yes"
	}
	return fmt.Sprintf("API reachable: no (%s)", w.APIReachableReason)
}
