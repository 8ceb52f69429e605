// Package webhook_test measures what dc-webhook adds to pod creation through
// the real API servers of the local control plane: the same load with and
// without the webhook registered, in interleaved rounds of the same run.
package webhook_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/webhook/webhooktest"
)

var local *webhooktest.Local

func TestMain(m *testing.M) {
	// The suite's controller-runtime clients have nothing to log.
	ctrllog.SetLogger(logr.Discard())
	// Only benchmarks live here: without -bench (make e2e, go test ./...)
	// there is nothing to start a control plane for.
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	topo := cluster.MacStadium()
	// BENCH_ONE_APISERVER=1 runs one API server instead of three: fewer
	// processes competing for the cores, the same load.
	if os.Getenv("BENCH_ONE_APISERVER") != "" {
		topo.Datacenters[1].APIServers, topo.Datacenters[2].APIServers = 0, 0
	}
	code := cluster.TestMain(m, cluster.Options{Topology: topo})
	if local != nil {
		_ = local.Stop()
	}
	os.Exit(code)
}

// Tunables (environment): BENCH_ROUNDS rounds of each mode, BENCH_PODS pods
// per round, created by BENCH_CONCURRENCY workers.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkPodCreate reports pod-create latency through the API server
// without the webhook (base-*) and with it (webhook-*), and their ratios.
// Run with -benchtime 1x: one run holds all the rounds.
func BenchmarkPodCreate(b *testing.B) {
	c := cluster.Require(b)
	rounds, pods, conc := envInt("BENCH_ROUNDS", 8), envInt("BENCH_PODS", 100), envInt("BENCH_CONCURRENCY", 20)
	ctx := context.Background()
	startLocal(ctx, b, c)
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.QPS, cfg.Burst = 1000, 1000
	cs := kubernetes.NewForConfigOrDie(cfg)
	ns := cluster.Namespace(b, c)

	// denied reports whether the API server currently calls the webhook.
	denied := func(ctx context.Context) bool {
		d := tu.Deployment(ns, "probe").Labels("app", "worker").Deployment()
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil
	}
	setMode := func(withWebhook bool) {
		if withWebhook {
			if err := local.Install(ctx, func(ctx context.Context) (bool, error) { return denied(ctx), nil }); err != nil {
				b.Fatal(err)
			}
			return
		}
		if err := local.Uninstall(ctx); err != nil {
			b.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) { return !denied(ctx), nil }); err != nil {
			b.Fatal("webhook still called after uninstall")
		}
	}

	lat := map[bool][]time.Duration{}
	var errs [2]atomic.Int64
	seq := 0
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		// Alternate which mode goes first so that drift hits both alike.
		order := []bool{false, true}
		if r%2 == 1 {
			order = []bool{true, false}
		}
		for _, withWebhook := range order {
			lat[withWebhook] = append(lat[withWebhook], round(ctx, b, cs, ns, func() { setMode(withWebhook) }, &seq, pods, conc, &errs[b2i(withWebhook)])...)
		}
	}
	b.StopTimer()
	logAdmissionCost(ctx, b, cs)
	_ = local.Uninstall(ctx)

	p := percentileMs
	b50, b99 := p(lat[false], 0.50), p(lat[false], 0.99)
	w50, w99 := p(lat[true], 0.50), p(lat[true], 0.99)
	b.ReportMetric(b50, "base-p50-ms")
	b.ReportMetric(b99, "base-p99-ms")
	b.ReportMetric(w50, "webhook-p50-ms")
	b.ReportMetric(w99, "webhook-p99-ms")
	b.ReportMetric(w50/b50, "p50-ratio")
	b.ReportMetric(w99/b99, "p99-ratio")
	b.ReportMetric(float64(errs[0].Load()), "base-errors")
	b.ReportMetric(float64(errs[1].Load()), "webhook-errors")
	b.Logf("%d rounds x %d pods at concurrency %d: base p50 %.1fms p99 %.1fms, webhook p50 %.1fms p99 %.1fms", rounds, pods, conc, b50, b99, w50, w99)
}

// startLocal installs the CRD and the example policy and starts the local
// webhook once for every benchmark of the run, without registering it.
func startLocal(ctx context.Context, b *testing.B, c *cluster.Cluster) {
	b.Helper()
	manifests, err := cluster.ManifestsDir()
	if err != nil {
		b.Fatal(err)
	}
	if err := webhooktest.InstallExample(ctx, c.RESTConfig(), manifests); err != nil {
		b.Fatal(err)
	}
	if local != nil {
		return
	}
	bin, err := cluster.BuildBinary("./cmd/dc-webhook")
	if err != nil {
		b.Fatal(err)
	}
	if local, err = webhooktest.Start(ctx, webhooktest.Options{Binary: bin, Kubeconfig: c.Kubeconfig(), REST: c.RESTConfig(), ManifestsDir: manifests}); err != nil {
		b.Fatal(err)
	}
}

// round sets a mode (untimed), creates pods (timed) and deletes them
// (untimed), and returns the creates' latencies.
func round(ctx context.Context, b *testing.B, cs kubernetes.Interface, ns string, setMode func(), seq *int, pods, conc int, errs *atomic.Int64) []time.Duration {
	b.StopTimer()
	setMode()
	b.StartTimer()
	out := createPods(ctx, cs, ns, seq, pods, conc, errs)
	b.StopTimer()
	cleanup(ctx, b, cs, ns)
	b.StartTimer()
	return out
}

// percentileMs returns the q-quantile of d in milliseconds, sorting d.
func percentileMs(d []time.Duration, q float64) float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[int(float64(len(d)-1)*q)].Microseconds()) / 1000
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

// createPods creates n worker pods (pinned to pod-1, so that the pinned rule
// really runs) with conc workers and returns each create's latency.
// BENCH_POD_APP sets their app label instead (web: pods no rule selects,
// as most of a cluster's are).
func createPods(ctx context.Context, cs kubernetes.Interface, ns string, seq *int, n, conc int, errs *atomic.Int64) []time.Duration {
	app := os.Getenv("BENCH_POD_APP")
	if app == "" {
		app = "worker"
	}
	out := make([]time.Duration, n)
	var next atomic.Int64
	base := *seq
	*seq += n
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				pod := tu.Pod(ns, fmt.Sprintf("worker-%d", base+i)).Labels("app", app).InDC("pod-1").Pod()
				start := time.Now()
				_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
				out[i] = time.Since(start)
				if err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func cleanup(ctx context.Context, b *testing.B, cs kubernetes.Interface, ns string) {
	zero := int64(0)
	if err := cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		b.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 0, nil
	})
	if err != nil {
		b.Fatalf("pods of %s not gone: %v", ns, err)
	}
}

// logAdmissionCost logs where webhook time went: the API server's view per
// webhook (the call, network and TLS included) and the handler's own.
func logAdmissionCost(ctx context.Context, b *testing.B, cs kubernetes.Interface) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		b.Logf("apiserver metrics: %v", err)
		return
	}
	for _, w := range []string{"workloads.placement.kubectl-dc.io", "bindings.placement.kubectl-dc.io"} {
		for _, typ := range []string{"validating", "admit"} {
			sum, cnt := sumCount(string(raw), "apiserver_admission_webhook_admission_duration_seconds", `name="`+w+`"`, `type="`+typ+`"`)
			if cnt > 0 {
				b.Logf("apiserver: %s %s: %d calls, mean %.2fms", w, typ, int(cnt), 1000*sum/cnt)
			}
		}
	}
	m, err := local.Metrics()
	if err != nil {
		return
	}
	for _, hook := range []string{"validate", "mutate"} {
		for _, kind := range []string{"Pod", "Binding"} {
			sum, cnt := sumCount(m, "dc_webhook_request_duration_seconds", `webhook="`+hook+`"`, `kind="`+kind+`"`)
			if cnt > 0 {
				b.Logf("handler: %s %s: %d calls, mean %.3fms", hook, kind, int(cnt), 1000*sum/cnt)
			}
		}
	}
}

// sumCount adds up the _sum and _count samples of a histogram whose labels
// contain every one of want.
func sumCount(text, name string, want ...string) (sum, count float64) {
	return cluster.MetricSum(text, name+"_sum", want...), cluster.MetricSum(text, name+"_count", want...)
}
