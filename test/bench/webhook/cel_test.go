package webhook_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy/celtest"
	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

// Admission modes of BenchmarkPodCreateCEL.
const (
	modeNone    = "base"    // no webhook, no compiled policies
	modeCEL     = "cel"     // the example policy's pinned rules compiled, no webhook
	modeWebhook = "webhook" // today's webhook, no compiled policies
)

// BenchmarkPodCreateCEL reports pod-create latency through the API server
// with no admission of ours (base-*), with the pinned rules compiled into
// admission policies (cel-*) and with the webhook (webhook-*), in
// interleaved rounds of the same run, with the ratios to base; and the API
// server's own time in the compiled policies, from its metrics. Run with
// -benchtime 1x: one run holds all the rounds.
func BenchmarkPodCreateCEL(b *testing.B) {
	c := cluster.Require(b)
	rounds, pods, conc := envInt("BENCH_ROUNDS", 6), envInt("BENCH_PODS", 100), envInt("BENCH_CONCURRENCY", 20)
	// BENCH_SETTLE_MS: the pause after each mode change.
	settle := time.Duration(envInt("BENCH_SETTLE_MS", 3000)) * time.Millisecond
	ctx := context.Background()
	startLocal(ctx, b, c)
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.QPS, cfg.Burst = 1000, 1000
	cs := kubernetes.NewForConfigOrDie(cfg)
	ns := cluster.Namespace(b, c)
	set := compileLive(ctx, b, c)

	// answer says who refuses a worker Deployment without a datacenter:
	// "" nobody, "cel" a compiled policy, "webhook" the webhook.
	answer := func(ctx context.Context) string {
		d := tu.Deployment(ns, "probe").Labels("app", "worker").Deployment()
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case err == nil:
			return ""
		case strings.Contains(err.Error(), "ValidatingAdmissionPolicy"):
			return modeCEL
		}
		return modeWebhook
	}
	setMode := func(mode string) {
		if mode != modeWebhook {
			if err := local.Uninstall(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if mode == modeCEL {
			installCompiled(ctx, b, cs, set)
		} else {
			deleteCompiled(ctx, cs)
		}
		if mode == modeWebhook {
			if err := local.Install(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
		want := map[string]string{modeNone: "", modeCEL: modeCEL, modeWebhook: modeWebhook}[mode]
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) { return answer(ctx) == want, nil }); err != nil {
			b.Fatalf("mode %s never took effect", mode)
		}
		// Every API server compiles new admission policies (and the
		// controller manager type-checks them) in the background: let that
		// work end before measuring, in every mode alike.
		time.Sleep(settle)
		// Compiling them leaves tens of megabytes of garbage in every API
		// server, which its next collection marks the live heap for: wait
		// for that collection, so that a round measures admission as a
		// running cluster pays it, not the aftermath of installing
		// policies, which a cluster pays once per policy change.
		collected(ctx, b, c)
	}

	modes := []string{modeNone, modeCEL, modeWebhook}
	lat := map[string][]time.Duration{}
	errs := map[string]*atomic.Int64{}
	for _, m := range modes {
		errs[m] = &atomic.Int64{}
	}
	// spent: per mode, the API servers' time in the admission policy
	// plugins while its pods were created, scheduled, run and deleted.
	spent := map[string]time.Duration{}
	// steps: per mode, the same time by plugin and operation, with the
	// number of admission calls: where the time per pod goes.
	steps := map[string]map[step]sample{}
	seq := 0
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		// Rotate which mode goes first so that drift hits all alike.
		for i := range modes {
			mode := modes[(i+r)%len(modes)]
			var before map[step]sample
			profiled := func() {}
			lat[mode] = append(lat[mode], round(ctx, b, cs, ns, func() {
				setMode(mode)
				before = admissionSteps(ctx, b, c)
				profiled = profile(ctx, b, c, fmt.Sprintf("%s-%02d", mode, r))
			}, &seq, pods, conc, errs[mode])...)
			profiled()
			after := admissionSteps(ctx, b, c)
			if steps[mode] == nil {
				steps[mode] = map[step]sample{}
			}
			for k, a := range after {
				d := steps[mode][k]
				d.sum += a.sum - before[k].sum
				d.count += a.count - before[k].count
				steps[mode][k] = d
				spent[mode] += time.Duration((a.sum - before[k].sum) * float64(time.Second))
			}
		}
	}
	b.StopTimer()
	_ = local.Uninstall(ctx)
	deleteCompiled(ctx, cs)

	p := percentileMs
	b50, b99 := p(lat[modeNone], 0.50), p(lat[modeNone], 0.99)
	for _, m := range modes {
		m50, m99 := p(lat[m], 0.50), p(lat[m], 0.99)
		b.ReportMetric(m50, m+"-p50-ms")
		b.ReportMetric(m99, m+"-p99-ms")
		b.ReportMetric(float64(errs[m].Load()), m+"-errors")
		if m != modeNone {
			b.ReportMetric(m50/b50, m+"-p50-ratio")
			b.ReportMetric(m99/b99, m+"-p99-ratio")
		}
		perPod := spent[m] / time.Duration(rounds*pods)
		b.ReportMetric(float64(perPod.Microseconds()), m+"-policy-µs/pod")
		b.Logf("%s: p50 %.1fms p99 %.1fms (x%.2f, x%.2f of base), %d errors; the API servers spent %s per pod in the admission policy plugins", m, m50, m99, m50/b50, m99/b99, errs[m].Load(), perPod)
		keys := make([]step, 0, len(steps[m]))
		for k := range steps[m] {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			if d := steps[m][k]; d.count > 0 {
				b.Logf("%s: %s: %.2f calls per pod (requests on every resource), mean %.3fms", m, k, d.count/float64(rounds*pods), 1000*d.sum/d.count)
			}
		}
	}
	b.Logf("%d rounds x %d pods per mode at concurrency %d", rounds, pods, conc)
}

// collected waits until every API server has finished a garbage
// collection since it was called (go_gc_duration_seconds_count moved), for
// at most a minute (then it says so and goes on).
func collected(ctx context.Context, b *testing.B, c *cluster.Cluster) {
	gcs := func() []float64 {
		texts, err := c.APIServerMetrics(ctx)
		if err != nil {
			b.Fatal(err)
		}
		out := make([]float64, len(texts))
		for i, text := range texts {
			out[i] = cluster.MetricSum(text, "go_gc_duration_seconds_count")
		}
		return out
	}
	before := gcs()
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, false, func(context.Context) (bool, error) {
		now := gcs()
		for i := range before {
			if i >= len(now) || now[i] <= before[i] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		b.Logf("an API server ran no garbage collection within a minute; measuring anyway")
	}
}

// compileLive compiles the live policies with the cluster's Nodes, as
// dc-webhook --pinned-enforcement=cel does.
func compileLive(ctx context.Context, b *testing.B, c *cluster.Cluster) *celpolicy.Set {
	cl, err := client.New(c.RESTConfig(), client.Options{Scheme: policy.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	var list v1alpha1.PlacementPolicyList
	if err := cl.List(ctx, &list); err != nil {
		b.Fatal(err)
	}
	nodeList, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	nodes := make([]*corev1.Node, len(nodeList.Items))
	for i := range nodeList.Items {
		nodes[i] = &nodeList.Items[i]
	}
	set, err := celpolicy.Compile(list.Items, celpolicy.Options{Nodes: nodes, ExcludedNamespaces: []string{"dc-system", "kube-node-lease"}, OptOutLabel: "placement.kubectl-dc.io/ignore"})
	if err != nil {
		b.Fatal(err)
	}
	return set
}

func installCompiled(ctx context.Context, b *testing.B, cs kubernetes.Interface, set *celpolicy.Set) {
	if err := celtest.Install(ctx, cs, set); err != nil {
		b.Fatal(err)
	}
}

func deleteCompiled(ctx context.Context, cs kubernetes.Interface) { celtest.Uninstall(ctx, cs) }

// profile starts, when BENCH_PPROF_DIR is set (with APISERVER_PROFILING=true,
// which makes the local control plane serve /debug/pprof), a CPU profile
// of the first API server (the one the pods are created through) for
// BENCH_PPROF_SECONDS (default 2), written to BENCH_PPROF_DIR/name.pb.gz,
// then its heap profile as text (name.heap.txt, which ends with the
// runtime's MemStats), and returns a function that waits for both: where
// the API server's CPU and memory go while pods are created, which the
// plugins' own durations (wall time, with every wait for a CPU in it)
// cannot tell. Merge a mode's rounds with
// go tool pprof -top BENCH_PPROF_DIR/cel-*.pb.gz.
func profile(ctx context.Context, b *testing.B, c *cluster.Cluster, name string) func() {
	dir := os.Getenv("BENCH_PPROF_DIR")
	if dir == "" {
		return func() {}
	}
	cfg := c.RESTConfig()
	cfg.Host = c.APIServers[0].URL
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		get := func(path, file string, params ...string) {
			req := cs.CoreV1().RESTClient().Get().AbsPath(path)
			for i := 0; i+1 < len(params); i += 2 {
				req = req.Param(params[i], params[i+1])
			}
			raw, err := req.DoRaw(ctx)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, file), raw, 0o644)
			}
			if err != nil {
				b.Errorf("profile %s: %v", file, err)
			}
		}
		get("/debug/pprof/profile", name+".pb.gz", "seconds", strconv.Itoa(envInt("BENCH_PPROF_SECONDS", 2)))
		// Then the heap, with the runtime's MemStats at its end (NumGC,
		// HeapAlloc, NextGC): how often the collector ran and why.
		get("/debug/pprof/heap", name+".heap.txt", "debug", "1")
	}()
	return func() { <-done }
}

// step is one admission policy plugin's step for one operation.
type step struct{ plugin, typ, op string }

func (s step) String() string { return s.plugin + " " + s.typ + " " + s.op }

// sample is a histogram's sum (seconds) and count.
type sample struct{ sum, count float64 }

// admissionSteps is the time every API server has spent in the admission
// policy plugins (validating and mutating), by plugin, step and
// operation, from their metrics: the CEL cost of the compiled policies,
// with what the plugins do around it (matching, converting the object for
// CEL), and the number of calls.
func admissionSteps(ctx context.Context, b *testing.B, c *cluster.Cluster) map[step]sample {
	out := map[step]sample{}
	texts, err := c.APIServerMetrics(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, raw := range texts {
		for _, plugin := range []string{"ValidatingAdmissionPolicy", "MutatingAdmissionPolicy"} {
			for _, typ := range []string{"admit", "validate"} {
				for _, op := range []string{"CREATE", "UPDATE", "DELETE", "CONNECT"} {
					sum, count := sumCount(raw, "apiserver_admission_controller_admission_duration_seconds", `name="`+plugin+`"`, `type="`+typ+`"`, `operation="`+op+`"`)
					k := step{plugin, typ, op}
					out[k] = sample{out[k].sum + sum, out[k].count + count}
				}
			}
		}
	}
	return out
}
