package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// APIServerMetrics returns the /metrics text of every running API server,
// in the order of APIServers.
func (c *Cluster) APIServerMetrics(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	base := c.restConfigLocked()
	var servers []APIServer
	for _, a := range c.APIServers {
		if p := c.Procs[apiProc(a.Node)]; p != nil && p.running() {
			servers = append(servers, a)
		}
	}
	c.mu.Unlock()
	out := make([]string, 0, len(servers))
	for _, a := range servers {
		cfg := *base
		cfg.Host = a.URL
		cs, err := kubernetes.NewForConfig(&cfg)
		if err != nil {
			return nil, err
		}
		raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("metrics of the API server on %s: %w", a.Node, err)
		}
		out = append(out, string(raw))
	}
	return out, nil
}

// MetricSum adds up the samples of series (a metric name, or a
// histogram's name_sum or name_count) in the Prometheus text exposition
// text whose labels contain every one of want (`name="value"`).
func MetricSum(text, series string, want ...string) float64 {
	var total float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, series+"{") && !strings.HasPrefix(line, series+" ") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64); err == nil {
			total += v
		}
	}
	return total
}
