// Package status benchmarks `kubectl dc status` at scale: 2,000 kwok nodes
// over three datacenters and 20,000 pods, against `kubectl get pods -A -o
// json` in the same run on the same control plane.
//
//	go test -run '^$' -bench BenchmarkStatusScale -benchtime 3x -timeout 60m ./test/bench/status
//
// Environment: STATUS_BENCH_NODES and STATUS_BENCH_PODS override the sizes.
package status

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

const benchNamespace = "status-bench"

var (
	setupOnce sync.Once
	setupErr  error
	shared    *cluster.Cluster
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "cluster: stop:", err)
		}
	}
	os.Exit(code)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// setup starts a small control plane (one control-plane node per
// datacenter) and adds nodes kwok nodes and pods pods bound by
// spec.nodeName, both created in parallel.
func setup(b *testing.B, nodes, pods int) (*cluster.Cluster, error) {
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
		defer cancel()
		topo := cluster.Topology{Datacenters: []cluster.Datacenter{
			{Name: "pod-1", Workers: 1, ControlPlanes: 1, APIServers: 1},
			{Name: "pod-2", Workers: 1, ControlPlanes: 1, APIServers: 1},
			{Name: "pod-3", Workers: 1, ControlPlanes: 1, APIServers: 1},
		}}
		c, err := cluster.Start(ctx, cluster.Options{Topology: topo, Log: os.Stderr})
		if err != nil {
			setupErr = err
			return
		}
		shared = c
		began := time.Now()
		setupErr = populate(ctx, c, nodes, pods)
		b.Logf("populated %d nodes and %d pods in %s", nodes, pods, time.Since(began).Round(time.Second))
	})
	return shared, setupErr
}

func populate(ctx context.Context, c *cluster.Cluster, nodes, pods int) error {
	cfg := c.RESTConfig()
	cfg.QPS, cfg.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dcs := []string{"pod-1", "pod-2", "pod-3"}
	names := make([]string, nodes)
	err = parallel(ctx, nodes, 32, func(i int) error {
		dc := dcs[i%len(dcs)]
		name := fmt.Sprintf("bench-%s-%04d", dc, i)
		names[i] = name
		ip := fmt.Sprintf("10.%d.%d.%d", 200+i%len(dcs), i/250, i%250+1)
		_, err := cs.CoreV1().Nodes().Create(ctx, cluster.NodeObject(name, c.Label(), dc, ip, false), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("creating nodes: %w", err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(benchNamespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("namespace %s has no default ServiceAccount: %w", benchNamespace, err)
	}
	f := false
	err = parallel(ctx, pods, 64, func(i int) error {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%05d", i), Namespace: benchNamespace, Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%50)}},
			Spec: corev1.PodSpec{
				NodeName:                     names[i%len(names)],
				AutomountServiceAccountToken: &f,
				Containers:                   []corev1.Container{{Name: "c", Image: "registry.example/app:1"}},
			},
		}
		_, err := cs.CoreV1().Pods(benchNamespace).Create(ctx, p, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("creating pods: %w", err)
	}
	// Let kwok settle (nodes Ready, pods Running) so that its status
	// updates do not run during the timed commands.
	return wait.PollUntilContextTimeout(ctx, 5*time.Second, 15*time.Minute, true, func(ctx context.Context) (bool, error) {
		running := 0
		p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.CoreV1().Pods(benchNamespace).List(ctx, o)
		})
		err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
			if obj.(*corev1.Pod).Status.Phase == corev1.PodRunning {
				running++
			}
			return nil
		})
		return err == nil && running == pods, nil
	})
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, f func(int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil || first.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return ctx.Err()
}

var apiRequests = regexp.MustCompile(`api-requests: (\d+)`)

// timed runs a command and returns its wall time, stdout size and stderr.
func timed(b *testing.B, env []string, name string, args ...string) (time.Duration, int, string) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	began := time.Now()
	err := cmd.Run()
	d := time.Since(began)
	if err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, errOut.String())
	}
	return d, out.Len(), errOut.String()
}

// BenchmarkStatusScale times `kubectl dc status -o json` (and its heaviest
// form, `--lose pod-2`, which lists every pod) against `kubectl get pods -A
// -o json` on 2,000 nodes and 20,000 pods, one of each per iteration
// (alternating the order), and reports the wall times, the ratios and the
// API requests status made.
func BenchmarkStatusScale(b *testing.B) {
	if testing.Short() {
		b.Skip("needs a control plane with 2,000 nodes and 20,000 pods (-short)")
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		b.Skip("kubectl is not on PATH: nothing to compare against")
	}
	nodes, pods := envInt("STATUS_BENCH_NODES", 2000), envInt("STATUS_BENCH_PODS", 20000)
	c, err := setup(b, nodes, pods)
	if err != nil {
		b.Fatal(err)
	}
	bin, err := cluster.BuildBinary("./cmd/kubectl-dc")
	if err != nil {
		b.Fatal(err)
	}
	kc := c.Kubeconfig()
	cache := b.TempDir()
	var dcTotal, loseTotal, getTotal time.Duration
	requests, loseRequests := 0, 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runDC := func() {
			d, size, stderr := timed(b, []string{"KUBECTL_DC_COUNT_REQUESTS=1"}, bin, "status", "-o", "json", "--kubeconfig", kc, "--cache-dir", cache)
			m := apiRequests.FindStringSubmatch(stderr)
			if m == nil {
				b.Fatalf("no api-requests line in stderr: %q", stderr)
			}
			requests, _ = strconv.Atoi(m[1])
			dcTotal += d
			b.Logf("round %d: kubectl dc status -o json: %s, %d bytes, %d API requests", i+1, d.Round(time.Millisecond), size, requests)
		}
		runGet := func() {
			d, size, _ := timed(b, nil, kubectl, "get", "pods", "-A", "-o", "json", "--kubeconfig", kc)
			getTotal += d
			b.Logf("round %d: kubectl get pods -A -o json: %s, %d bytes", i+1, d.Round(time.Millisecond), size)
		}
		runLose := func() {
			// The what-if lists every pod and PDB: the heaviest status path.
			d, size, stderr := timed(b, []string{"KUBECTL_DC_COUNT_REQUESTS=1"}, bin, "status", "-o", "json", "--lose", "pod-2", "--kubeconfig", kc, "--cache-dir", cache)
			m := apiRequests.FindStringSubmatch(stderr)
			if m == nil {
				b.Fatalf("no api-requests line in stderr: %q", stderr)
			}
			loseRequests, _ = strconv.Atoi(m[1])
			loseTotal += d
			b.Logf("round %d: kubectl dc status -o json --lose pod-2: %s, %d bytes, %d API requests", i+1, d.Round(time.Millisecond), size, loseRequests)
		}
		if i%2 == 0 {
			runDC()
			runLose()
			runGet()
		} else {
			runGet()
			runLose()
			runDC()
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(dcTotal.Seconds()/n, "status-s/op")
	b.ReportMetric(getTotal.Seconds()/n, "getpods-s/op")
	b.ReportMetric(dcTotal.Seconds()/getTotal.Seconds(), "ratio")
	b.ReportMetric(float64(requests), "api-requests")
	b.ReportMetric(loseTotal.Seconds()/n, "status-lose-s/op")
	b.ReportMetric(loseTotal.Seconds()/getTotal.Seconds(), "lose-ratio")
	b.ReportMetric(float64(loseRequests), "lose-api-requests")
	b.Logf("%d nodes, %d pods: status %.3fs (%d API requests), status --lose %.3fs (%d API requests), get pods %.3fs; ratios %.3f and %.3f",
		nodes, pods, dcTotal.Seconds()/n, requests, loseTotal.Seconds()/n, loseRequests, getTotal.Seconds()/n,
		dcTotal.Seconds()/getTotal.Seconds(), loseTotal.Seconds()/getTotal.Seconds())
}
