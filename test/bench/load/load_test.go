// Package load_test is the long load run of dc-webhook: many clients
// creating and deleting pods (pinned, mutated, free and denied) through the
// API servers for a minute without the webhook, then a minute with its
// three replicas behind the Service, in the same run, and what the
// replicas used meanwhile.
//
//	make bench-load    # or: go test -run '^$' -bench . -benchtime 1x -timeout 30m ./test/bench/load
//
// Tunables (environment): LOAD_CLIENTS (200), LOAD_DURATION (60s),
// LOAD_ROUNDS (1: rounds of each mode, alternating which goes first).
package load_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/ha"
	"github.com/kubectl-dc/kubectl-dc/test/netns"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

// Network namespaces of this benchmark: dcbl1..dcbl3 on 10.213.21-23.0/30,
// apart from the fault suite's.
const (
	prefix     = "dcbl"
	firstIndex = 21
	replicas   = 3
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())
	// Only a benchmark lives here: without -bench there is nothing to
	// start a control plane for.
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	os.Exit(cluster.TestMain(m, cluster.Options{
		Topology: cluster.MacStadium(),
		ServeOn:  ha.RootIPs(firstIndex, replicas),
	}))
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkAdmissionLoad runs the load without and with the webhook and
// prints the table. Run it with -benchtime 1x: one run holds every round.
func BenchmarkAdmissionLoad(b *testing.B) {
	c := cluster.Require(b)
	if err := netns.Supported(); err != nil {
		b.Skipf("replicas run in network namespaces: %v", err)
	}
	clients, duration, rounds := envInt("LOAD_CLIENTS", 200), envDuration("LOAD_DURATION", 60*time.Second), envInt("LOAD_ROUNDS", 1)
	ctx := context.Background()
	manifests, err := cluster.ManifestsDir()
	if err != nil {
		b.Fatal(err)
	}
	if err := webhooktest.InstallExample(ctx, c.RESTConfig(), manifests); err != nil {
		b.Fatal(err)
	}
	bin, err := cluster.BuildBinary("./cmd/dc-webhook")
	if err != nil {
		b.Fatal(err)
	}
	f, err := ha.Start(ctx, ha.Options{Cluster: c, Binary: bin, ManifestsDir: manifests, Replicas: replicas, Prefix: prefix, FirstIndex: firstIndex, ShutdownDelay: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Stop(context.Background()) }()
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.QPS, cfg.Burst = -1, 0
	cs := kubernetes.NewForConfigOrDie(cfg)
	ns := cluster.Namespace(b, c)

	results := map[bool][]*ha.Result{}
	var cpu time.Duration
	var peak []int64
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		order := []bool{false, true}
		if r%2 == 1 {
			order = []bool{true, false}
		}
		for _, enforced := range order {
			b.StopTimer()
			setMode(ctx, b, f, cs, ns, enforced)
			before := usage(b, f)
			b.StartTimer()
			res := ha.Load{Client: cs, Namespace: ns, Clients: clients, Enforced: enforced}.Run(ctx, duration)
			b.StopTimer()
			after := usage(b, f)
			if enforced {
				for i := range after {
					cpu += after[i].CPU - before[i].CPU
				}
				peak = peak[:0]
				for _, u := range after {
					peak = append(peak, u.PeakRSS)
				}
			}
			results[enforced] = append(results[enforced], res)
			b.Logf("round %d, webhook %v: %s", r+1, enforced, res.Summary())
			b.StartTimer()
		}
	}
	b.StopTimer()
	_ = f.Uninstall(ctx)

	base, with := merge(results[false]), merge(results[true])
	b50, b99 := ha.Percentile(base.Samples, 0.50), ha.Percentile(base.Samples, 0.99)
	w50, w99 := ha.Percentile(with.Samples, 0.50), ha.Percentile(with.Samples, 0.99)
	webhookTime := time.Duration(rounds) * duration
	var t strings.Builder
	fmt.Fprintf(&t, "\n%d clients, %s per mode, %d round(s)\n", clients, duration, rounds)
	fmt.Fprintf(&t, "%-10s %9s %8s %8s %11s %10s %10s\n", "mode", "creates", "per s", "denied", "unexpected", "p50", "p99")
	for _, row := range []struct {
		name string
		r    *ha.Result
	}{{"baseline", base}, {"webhook", with}} {
		denied := 0
		for _, s := range row.r.Samples {
			if s.Denied {
				denied++
			}
		}
		fmt.Fprintf(&t, "%-10s %9d %8.0f %8d %11d %10s %10s\n", row.name, len(row.r.Samples), float64(len(row.r.Samples))/row.r.Elapsed.Seconds(),
			denied, len(row.r.Unexpected())+len(row.r.DeleteErrors), ha.Percentile(row.r.Samples, 0.50).Round(100*time.Microsecond), ha.Percentile(row.r.Samples, 0.99).Round(100*time.Microsecond))
	}
	fmt.Fprintf(&t, "ratio p50 %.2f, p99 %.2f\n", float64(w50)/float64(b50), float64(w99)/float64(b99))
	fmt.Fprintf(&t, "webhook replicas: %.2f cores together while loaded (%s CPU in %s); peak RSS", cpu.Seconds()/webhookTime.Seconds(), cpu.Round(time.Millisecond), webhookTime)
	for i, p := range peak {
		fmt.Fprintf(&t, " %d: %.1f MiB", i+1, float64(p)/(1<<20))
	}
	b.Log(t.String())
	b.ReportMetric(float64(b50.Microseconds())/1000, "base-p50-ms")
	b.ReportMetric(float64(b99.Microseconds())/1000, "base-p99-ms")
	b.ReportMetric(float64(w50.Microseconds())/1000, "webhook-p50-ms")
	b.ReportMetric(float64(w99.Microseconds())/1000, "webhook-p99-ms")
	b.ReportMetric(float64(len(base.Unexpected())+len(with.Unexpected())), "unexpected")
	if bad := with.Unexpected(); len(bad) > 0 {
		b.Errorf("with the webhook: %d unexpected outcomes:\n%s", len(bad), ha.Describe(bad, 10))
	}
	if bad := base.Unexpected(); len(bad) > 0 {
		b.Errorf("baseline: %d unexpected outcomes:\n%s", len(bad), ha.Describe(bad, 10))
	}
}

func setMode(ctx context.Context, b *testing.B, f *ha.Fleet, cs kubernetes.Interface, ns string, enforced bool) {
	b.Helper()
	if enforced {
		if err := f.Install(ctx); err != nil {
			b.Fatal(err)
		}
		if err := ha.WaitEnforced(ctx, cs, ns); err != nil {
			b.Fatal(err)
		}
		return
	}
	if err := f.Uninstall(ctx); err != nil {
		b.Fatal(err)
	}
	if err := ha.WaitNotCalled(ctx, cs, ns); err != nil {
		b.Fatal(err)
	}
}

func usage(b *testing.B, f *ha.Fleet) []ha.Usage {
	b.Helper()
	var out []ha.Usage
	for _, r := range f.Replicas {
		u, err := r.Usage()
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func merge(rs []*ha.Result) *ha.Result {
	out := &ha.Result{}
	for _, r := range rs {
		out.Samples = append(out.Samples, r.Samples...)
		out.DeleteErrors = append(out.DeleteErrors, r.DeleteErrors...)
		out.Elapsed += r.Elapsed
	}
	return out
}
