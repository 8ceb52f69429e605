// Package drain measures `kubectl dc drain` against `kubectl drain -l` on
// the same datacenter, 10 nodes and 500 pods, from the same starting state,
// rounds interleaved in one run, without a PDB and under one PDB of
// maxUnavailable 10%:
//
//	go test -run '^$' -bench BenchmarkDrain -benchtime 1x ./test/bench/drain
//
// Each round also runs the floor: a minimal evictor written here (no
// client-side rate limit, the nodes cordoned in parallel, 100 workers
// evicting, a 429 or 409 retried after a fixed 200 ms, the pods waited for
// by watch), the time this cluster needs to empty the datacenter with no
// tool in the way. ours/floor says how much of our time is ours;
// kubectl/floor is the most any tool could gain over kubectl drain here.
// Under the PDB the floor also logs the PDB's statuses it saw, the least
// disruptionsAllowed among them and how long each period at 0 lasted:
// whether the budget or the API server's writes of its status set the
// pace. Every line of ours's stderr is logged with its time.
//
// BENCH_ROUNDS sets the rounds (default 3; medians are reported);
// BENCH_TOOLS, a comma-separated subset of kubectl-dc-drain, floor and
// kubectl-drain-l, runs only those; BENCH_DC_ARGS are more flags for ours
// (e.g. "--concurrency=100"); BENCH_DC_BASELINE, the path of another
// kubectl-dc build, runs it too, for a comparison in the same run;
// BENCH_FLOOR_WORKERS and BENCH_FLOOR_PAUSE (a duration) tune the floor.
package drain

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

const (
	dc       = "pod-1"
	podCount = 500
	perApp   = 100
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The cluster is only worth starting when benchmarks run.
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	os.Exit(cluster.TestMain(m, cluster.Options{Topology: cluster.Topology{Datacenters: []cluster.Datacenter{
		{Name: "pod-1", Workers: 10, ControlPlanes: 1, APIServers: 1},
		{Name: "pod-2", Workers: 10, ControlPlanes: 1, APIServers: 1},
		{Name: "pod-3", Workers: 1, ControlPlanes: 1, APIServers: 1},
	}}}))
}

// BenchmarkDrain drains the 500-pod datacenter twice over: the pods pinned
// to it with no PDB (evicted, they go Pending), and the same 500 pods free
// to move to pod-2 under one PDB of maxUnavailable 10%, each time ours,
// the floor and kubectl drain -l in the same run. It reports the three
// medians, kubectl/ours (speedup) and ours/floor.
func BenchmarkDrain(b *testing.B) {
	c := cluster.Require(b)
	bin, err := cluster.BuildBinary("./cmd/kubectl-dc")
	if err != nil {
		b.Fatal(err)
	}
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	fl := floor{workers: 100, pause: 200 * time.Millisecond}
	if v, err := strconv.Atoi(os.Getenv("BENCH_FLOOR_WORKERS")); err == nil && v > 0 {
		fl.workers = v
	}
	if v, err := time.ParseDuration(os.Getenv("BENCH_FLOOR_PAUSE")); err == nil && v > 0 {
		fl.pause = v
	}
	// The floor's client has no client-side rate limit (negative QPS).
	cfg := c.RESTConfig()
	cfg.QPS, cfg.Burst = -1, 0
	if fl.client, err = kubernetes.NewForConfig(cfg); err != nil {
		b.Fatal(err)
	}
	fl.nodes = c.Nodes(dc)
	kubeconfig := "--kubeconfig=" + c.Kubeconfig()
	tools := []struct {
		name string
		// cmd is run as a command; without it the floor runs in process.
		cmd []string
	}{
		// pod-1 holds the control-plane endpoint: --allow-quorum-loss.
		{toolOurs, append([]string{bin, kubeconfig, "drain", dc, "--allow-quorum-loss"}, strings.Fields(os.Getenv("BENCH_DC_ARGS"))...)},
		{toolFloor, nil},
		{toolKubectl, []string{"kubectl", kubeconfig, "drain", "-l", c.Label() + "=" + dc, "--ignore-daemonsets", "--delete-emptydir-data"}},
	}
	if base := os.Getenv("BENCH_DC_BASELINE"); base != "" {
		tools = append(tools, struct {
			name string
			cmd  []string
		}{toolBaseline, append([]string{base, kubeconfig, "drain", dc, "--allow-quorum-loss"}, strings.Fields(os.Getenv("BENCH_DC_ARGS"))...)})
	}
	if only := os.Getenv("BENCH_TOOLS"); only != "" {
		want := strings.Split(only, ",")
		tools = slices.DeleteFunc(tools, func(t struct {
			name string
			cmd  []string
		}) bool {
			return !slices.Contains(want, t.name)
		})
	}
	scenarios := []struct {
		name string
		pdb  bool
	}{{"no-pdb", false}, {"pdb-10pct", true}}
	for _, sc := range scenarios {
		ns := cluster.Namespace(b, c)
		// Without a PDB the pods are pinned to pod-1: evicted, their
		// replacements wait Pending, and uncordon brings them back. Under
		// the PDB they must be able to go elsewhere, or the PDB blocks:
		// every round starts by cordoning the other datacenters and
		// recreating the pods in pod-1.
		for i := 0; i < podCount/perApp; i++ {
			d := deployment(ns, fmt.Sprintf("app-%d", i), c.Label())
			if sc.pdb {
				d.Spec.Template.Spec.NodeSelector = nil
				d.Spec.Template.Labels["bench"] = "pdb"
			}
			if _, err := c.Client().AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		fl.pdb = ""
		if sc.pdb {
			ten := intstr.FromString("10%")
			pdb := &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: ns},
				Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &ten, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"bench": "pdb"}}},
			}
			if _, err := c.Client().PolicyV1().PodDisruptionBudgets(ns).Create(context.Background(), pdb, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			fl.pdb = ns + "/bench"
		}
		times := map[string][]time.Duration{}
		for r := 0; r < rounds; r++ {
			for _, tool := range tools {
				b.StopTimer()
				if sc.pdb {
					resetIntoDC(b, c, bin, kubeconfig, ns)
				} else {
					uncordon(b, bin, kubeconfig)
					waitPodsIn(b, c, ns)
				}
				b.StartTimer()
				var elapsed time.Duration
				if tool.cmd == nil {
					st, err := fl.drain(context.Background())
					if err != nil {
						b.Fatalf("%s %s: %v", sc.name, tool.name, err)
					}
					elapsed = st.elapsed
					b.Logf("%s round %d: floor: %s", sc.name, r+1, st)
				} else {
					elapsed = runTool(b, sc.name, r+1, tool.name, tool.cmd)
				}
				if left := podsOn(b, c, ns); left != 0 {
					b.Fatalf("%s %s left %d pods in %s", sc.name, tool.name, left, dc)
				}
				times[tool.name] = append(times[tool.name], elapsed)
				b.Logf("%s round %d: %s drained %d pods in %s", sc.name, r+1, tool.name, podCount, elapsed.Round(time.Millisecond))
			}
		}
		b.StopTimer()
		uncordon(b, bin, kubeconfig)
		setSchedulable(b, c, true, "pod-2", "pod-3")
		// The next scenario drains pod-1 too: this one's pods leave.
		for i := 0; i < podCount/perApp; i++ {
			_ = c.Client().AppsV1().Deployments(ns).Delete(context.Background(), fmt.Sprintf("app-%d", i), metav1.DeleteOptions{})
		}
		_ = wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
			l, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			return err == nil && len(l.Items) == 0, nil
		})
		report(b, sc.name, rounds, times)
		b.StartTimer()
	}
}

// The tools' names, as BENCH_TOOLS and the metrics spell them.
const (
	toolOurs    = "kubectl-dc-drain"
	toolFloor   = "floor"
	toolKubectl = "kubectl-drain-l"
	// toolBaseline is another build of ours (BENCH_DC_BASELINE), to
	// compare two builds in the same run.
	toolBaseline = "kubectl-dc-drain-baseline"
)

// report reports the medians of the tools that ran, kubectl/ours
// (speedup), ours/floor and kubectl/floor (the most any tool could gain).
func report(b *testing.B, scenario string, rounds int, times map[string][]time.Duration) {
	med := map[string]float64{}
	for name, ts := range times {
		med[name] = median(ts).Seconds()
	}
	line := fmt.Sprintf("%s: median of %d rounds:", scenario, rounds)
	for _, t := range []struct{ name, metric string }{{toolOurs, "dc-drain-s"}, {toolFloor, "floor-s"}, {toolKubectl, "kubectl-drain-s"}, {toolBaseline, "dc-baseline-s"}} {
		if v, ok := med[t.name]; ok {
			b.ReportMetric(v, scenario+"-"+t.metric)
			line += fmt.Sprintf(" %s %.1fs", t.name, v)
		}
	}
	for _, r := range []struct{ num, den, metric, say string }{
		{toolKubectl, toolOurs, "speedup", "kubectl/ours"},
		{toolOurs, toolFloor, "dc-over-floor", "ours/floor"},
		{toolKubectl, toolFloor, "max-speedup", "kubectl/floor"},
		{toolBaseline, toolOurs, "dc-over-baseline", "baseline/ours"},
	} {
		n, ok1 := med[r.num]
		d, ok2 := med[r.den]
		if ok1 && ok2 && d > 0 {
			b.ReportMetric(n/d, scenario+"-"+r.metric)
			line += fmt.Sprintf(", %s %.2fx", r.say, n/d)
		}
	}
	b.Log(line)
}

// runTool runs cmd and returns how long it took. Ours's stderr (its
// progress) is logged line by line with the time since the start, and
// its summary line; kubectl's output is logged only on failure.
func runTool(b *testing.B, scenario string, round int, name string, cmd []string) time.Duration {
	var out bytes.Buffer
	stamped := &stampWriter{start: time.Now()}
	x := exec.Command(cmd[0], cmd[1:]...)
	x.Stdout, x.Stderr = &out, &out
	if name == toolOurs || name == toolBaseline {
		x.Stderr = stamped
	}
	start := time.Now()
	stamped.start = start
	err := x.Run()
	elapsed := time.Since(start)
	if err != nil {
		b.Fatalf("%s %s: %v\n%s%s", scenario, name, err, stamped.buf.String(), out.String())
	}
	if name == toolOurs || name == toolBaseline {
		summary := ""
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, "Drain of ") {
				summary = l
			}
		}
		b.Logf("%s round %d: %s stderr:\n%s%s", scenario, round, name, stamped.buf.String(), summary)
	}
	return elapsed
}

// stampWriter prefixes every line written to it with the seconds since
// start.
type stampWriter struct {
	mu      sync.Mutex
	start   time.Time
	partial []byte
	buf     bytes.Buffer
}

func (w *stampWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		fmt.Fprintf(&w.buf, "  +%6.2fs %s\n", time.Since(w.start).Seconds(), w.partial[:i])
		w.partial = w.partial[i+1:]
	}
}

// setSchedulable cordons or uncordons every node of dcs.
func setSchedulable(b *testing.B, c *cluster.Cluster, schedulable bool, dcs ...string) {
	for _, d := range dcs {
		for _, name := range c.Nodes(d) {
			patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, !schedulable)
			if _, err := c.Client().CoreV1().Nodes().Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// resetIntoDC puts the 500 pods of ns back into dc: the other datacenters
// cordoned, dc uncordoned, every pod deleted and recreated by its
// Deployment in dc, then the others uncordoned for the drain to fill.
func resetIntoDC(b *testing.B, c *cluster.Cluster, bin, kubeconfig, ns string) {
	setSchedulable(b, c, false, "pod-2", "pod-3")
	uncordon(b, bin, kubeconfig)
	zero := int64(0)
	// A busy server may time out deleting 500 pods at once, part done:
	// ask again.
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		err := c.Client().CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if err != nil {
			b.Logf("reset: deleting the pods: %v; again", err)
		}
		return err == nil, nil
	})
	if err != nil {
		b.Fatalf("reset: the pods of %s were not deleted: %v", ns, err)
	}
	waitPodsIn(b, c, ns)
	setSchedulable(b, c, true, "pod-2", "pod-3")
	// The PDB must have seen the 500 healthy pods before the drain.
	err = wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := c.Client().PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "bench", metav1.GetOptions{})
		return err == nil && p.Status.CurrentHealthy == podCount && p.Status.DisruptionsAllowed == podCount/10, nil
	})
	if err != nil {
		b.Fatalf("PDB never saw %d healthy pods: %v", podCount, err)
	}
}

func deployment(ns, name, label string) *appsv1.Deployment {
	replicas, zero := int32(perApp), int64(0)
	l := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec: corev1.PodSpec{
					NodeSelector:                  map[string]string{label: dc},
					TerminationGracePeriodSeconds: &zero,
					Containers:                    []corev1.Container{{Name: "app", Image: "app"}},
				},
			},
		},
	}
}

// uncordon makes every node of dc schedulable, whoever cordoned it.
func uncordon(b *testing.B, bin, kubeconfig string) {
	if out, err := exec.Command(bin, kubeconfig, "uncordon", dc, "--all").CombinedOutput(); err != nil {
		b.Fatalf("uncordon: %v\n%s", err, out)
	}
}

// waitPodsIn waits until all 500 pods run in dc again.
func waitPodsIn(b *testing.B, c *cluster.Cluster, ns string) {
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		return podsOn(b, c, ns) == podCount, nil
	})
	if err != nil {
		b.Fatalf("pods did not come back to %s: %v", dc, err)
	}
}

// podsOn counts the running pods of ns on the nodes of dc.
func podsOn(b *testing.B, c *cluster.Cluster, ns string) int {
	list, err := c.Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	nodes, n := c.Nodes(dc), 0
	for _, p := range list.Items {
		if slices.Contains(nodes, p.Spec.NodeName) && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			n++
		}
	}
	return n
}

// median of ds; of an even count, the mean of the middle two (with
// BENCH_ROUNDS=2, the mean, not the slower round).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// floor is the reference evictor: the least a drain of dc must do, done
// with no rate limit and no pacing, so that its time is the cluster's.
type floor struct {
	// client has no client-side rate limit.
	client kubernetes.Interface
	nodes  []string
	// workers are the evictions in flight; pause is the fixed wait before
	// retrying a 429 (PDB) or a 409 (conflict).
	workers int
	pause   time.Duration
	// pdb is "namespace/name" of the PDB whose status is recorded, "" for
	// none.
	pdb string
}

// floorStats is what one floor drain saw.
type floorStats struct {
	// elapsed is from the first cordon to the last pod gone; cordoned,
	// listed and accepted are when the cordons ended, the pods were
	// listed and the last eviction was accepted, from the same start.
	elapsed, cordoned, listed, accepted time.Duration
	pods, tooMany, conflicts            int
	// acceptedAt is when each eviction was accepted, from start.
	acceptedAt []time.Duration
	// pdb is what the PDB's watch saw, when there is one.
	pdb pdbSeen
}

// pdbSeen is what the watch of a PDB saw during a drain.
type pdbSeen struct {
	// waves are the periods at disruptionsAllowed 0: from the status that
	// said 0 to the next that allowed a disruption again.
	waves []time.Duration
	// updates are the statuses seen (every accepted eviction writes one,
	// and so does the disruption controller); minAllowed is the least
	// disruptionsAllowed among them, -1 with none.
	updates, minAllowed int
}

func (s floorStats) String() string {
	out := fmt.Sprintf("%d pods in %s (cordoned at %s, listed at %s, last eviction accepted at %s); %d refused by a PDB (429), %d conflicts (409)",
		s.pods, s.elapsed.Round(time.Millisecond), s.cordoned.Round(time.Millisecond), s.listed.Round(time.Millisecond),
		s.accepted.Round(time.Millisecond), s.tooMany, s.conflicts)
	// Evictions accepted per 5 s show the pace, and under a PDB the waves.
	var per []string
	for _, at := range s.acceptedAt {
		i := int(at / (5 * time.Second))
		for len(per) <= i {
			per = append(per, "0")
		}
		n, _ := strconv.Atoi(per[i])
		per[i] = strconv.Itoa(n + 1)
	}
	out += "; accepted per 5 s: " + strings.Join(per, " ")
	if s.pdb.minAllowed >= 0 {
		out += fmt.Sprintf("; PDB: %d statuses seen, least disruptionsAllowed %d", s.pdb.updates, s.pdb.minAllowed)
	}
	if w := s.pdb.waves; len(w) > 0 {
		var sum time.Duration
		ws := make([]string, len(w))
		for i, d := range w {
			sum += d
			ws[i] = fmt.Sprintf("%.2f", d.Seconds())
		}
		out += fmt.Sprintf(", at 0 %d times for %s in all, median %s (s: %s)",
			len(w), sum.Round(time.Millisecond), median(w).Round(time.Millisecond), strings.Join(ws, " "))
	}
	return out
}

// drain cordons the nodes in parallel, lists their pods, evicts them with
// f.workers workers and waits by watch until every one is gone.
func (f *floor) drain(ctx context.Context) (floorStats, error) {
	var st floorStats
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The PDB's watch starts before the clock: it only observes.
	pdbEvents := make(chan pdbEvent, 1024)
	pdbDone := make(chan pdbSeen, 1)
	if f.pdb != "" {
		ns, name, _ := strings.Cut(f.pdb, "/")
		w, err := f.client.PolicyV1().PodDisruptionBudgets(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
		if err != nil {
			return st, fmt.Errorf("watch PDB %s: %w", f.pdb, err)
		}
		defer w.Stop()
		go func() {
			for ev := range w.ResultChan() {
				if p, ok := ev.Object.(*policyv1.PodDisruptionBudget); ok {
					pdbEvents <- pdbEvent{time.Now(), p.Status.DisruptionsAllowed}
				}
			}
		}()
	}
	start := time.Now()
	go func() { pdbDone <- watchWaves(ctx, pdbEvents) }()

	var wg sync.WaitGroup
	errs := make([]error, len(f.nodes))
	for i, n := range f.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.client.CoreV1().Nodes().Patch(ctx, n, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return st, err
	}
	st.cordoned = time.Since(start)

	list, err := f.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return st, err
	}
	pending := map[string]types.UID{}
	var pods []*corev1.Pod
	for i := range list.Items {
		p := &list.Items[i]
		if !slices.Contains(f.nodes, p.Spec.NodeName) || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		// Mirror and DaemonSet pods stay, as every drain leaves them.
		if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
			continue
		}
		if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == "DaemonSet" {
			continue
		}
		pending[p.Namespace+"/"+p.Name] = p.UID
		pods = append(pods, p)
	}
	st.pods = len(pods)
	st.listed = time.Since(start)
	watcher, err := f.client.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return st, err
	}
	defer func() { watcher.Stop() }()

	queue := make(chan *corev1.Pod, len(pods))
	for _, p := range pods {
		queue <- p
	}
	close(queue)
	var mu sync.Mutex
	var evictErr error
	for range f.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range queue {
				if err := f.evict(ctx, p, &mu, &st, start); err != nil {
					mu.Lock()
					evictErr = errors.Join(evictErr, err)
					mu.Unlock()
					cancel()
				}
			}
		}()
	}

	rv := list.ResourceVersion
	for len(pending) > 0 {
		ev, ok := <-watcher.ResultChan()
		if !ok {
			if ctx.Err() != nil {
				break
			}
			// The watch ended (its timeout): go on from where it was.
			if watcher, err = f.client.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{ResourceVersion: rv}); err != nil {
				cancel()
				break
			}
			continue
		}
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			if ev.Type == watch.Error {
				err = fmt.Errorf("watch: %w", apierrors.FromObject(ev.Object))
				cancel()
				break
			}
			continue
		}
		rv = p.ResourceVersion
		k := p.Namespace + "/" + p.Name
		if uid, ok := pending[k]; ok && (ev.Type == watch.Deleted || p.UID != uid) {
			delete(pending, k)
		}
	}
	st.elapsed = time.Since(start)
	wg.Wait()
	cancel()
	st.pdb = <-pdbDone
	if evictErr != nil {
		return st, evictErr
	}
	if len(pending) > 0 {
		return st, fmt.Errorf("%d pods not seen gone (watch: %w)", len(pending), err)
	}
	return st, nil
}

// evict evicts p, retrying a 429 or a 409 after f.pause, and counts them.
func (f *floor) evict(ctx context.Context, p *corev1.Pod, mu *sync.Mutex, st *floorStats, start time.Time) error {
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}
	for {
		err := f.client.PolicyV1().Evictions(p.Namespace).Evict(ctx, ev)
		mu.Lock()
		switch {
		case err == nil || apierrors.IsNotFound(err):
			d := time.Since(start)
			st.accepted = max(st.accepted, d)
			st.acceptedAt = append(st.acceptedAt, d)
			mu.Unlock()
			return nil
		case apierrors.IsTooManyRequests(err):
			st.tooMany++
		case apierrors.IsConflict(err):
			st.conflicts++
		default:
			mu.Unlock()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("evict %s/%s: %w", p.Namespace, p.Name, err)
		}
		mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.pause):
		}
	}
}

// pdbEvent is a PDB status seen at a time.
type pdbEvent struct {
	at      time.Time
	allowed int32
}

// watchWaves reads the PDB's statuses until ctx ends.
func watchWaves(ctx context.Context, events <-chan pdbEvent) pdbSeen {
	seen := pdbSeen{minAllowed: -1}
	var zeroSince time.Time
	for {
		select {
		case <-ctx.Done():
			return seen
		case e := <-events:
			seen.updates++
			if seen.minAllowed < 0 || int(e.allowed) < seen.minAllowed {
				seen.minAllowed = int(e.allowed)
			}
			switch {
			case e.allowed == 0 && zeroSince.IsZero():
				zeroSince = e.at
			case e.allowed > 0 && !zeroSince.IsZero():
				seen.waves = append(seen.waves, e.at.Sub(zeroSince))
				zeroSince = time.Time{}
			}
		}
	}
}
