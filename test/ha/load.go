package ha

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
)

// Kind is one of the pods the load creates, in turn.
type Kind string

// The pods of the load, against the MacStadium example policy.
const (
	// Pinned is a worker with a datacenter nodeSelector: admitted.
	Pinned Kind = "pinned"
	// Labelled is a worker with only the datacenter label: the mutating
	// webhook injects its nodeSelector, then it is admitted.
	Labelled Kind = "labelled"
	// Free is a pod no rule selects: admitted.
	Free Kind = "free"
	// Unpinned is a worker selecting no datacenter: denied while the
	// webhook is installed, admitted without it.
	Unpinned Kind = "unpinned"
)

var kinds = []Kind{Pinned, Labelled, Free, Unpinned}

// datacenterLabel is the datacenterFromLabel of the example policy.
const datacenterLabel = "placement.kubectl-dc.io/datacenter"

// Load creates and deletes pods from many clients at once.
type Load struct {
	Client    kubernetes.Interface
	Namespace string
	// Clients is how many goroutines create and delete at once.
	Clients int
	// Enforced says whether the webhook is installed: Unpinned pods are
	// expected to be denied then, admitted otherwise.
	Enforced bool
	// Datacenters the pinned pods select, in turn.
	Datacenters []string
}

// Sample is one pod creation.
type Sample struct {
	Kind    Kind
	Start   time.Time
	Latency time.Duration
	// Created or denied by the policy; Err is set for anything else too.
	Created, Denied bool
	Err             error
	// Unexpected is true when the outcome is not the one Kind promises.
	Unexpected bool
}

// Result is what a run of the load saw.
type Result struct {
	Samples []Sample
	// DeleteErrors are failed deletions of created pods.
	DeleteErrors []error
	Elapsed      time.Duration
}

// Run creates and deletes pods until ctx ends or d passes, whichever is
// first, and waits for the requests in flight.
func (l Load) Run(ctx context.Context, d time.Duration) *Result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	began := time.Now()
	var (
		mu  sync.Mutex
		res Result
		wg  sync.WaitGroup
	)
	for c := 0; c < l.Clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []Sample
			var delErrs []error
			for i := 0; ctx.Err() == nil; i++ {
				// Every client goes through every kind, so that fast
				// denials do not crowd out the other kinds.
				n := c + i*l.Clients
				s, name := l.create(ctx, kinds[(c+i)%len(kinds)], n)
				if ctx.Err() != nil && s.Err != nil {
					break // the run ended under this request
				}
				local = append(local, s)
				if s.Created {
					if err := l.delete(name); err != nil {
						delErrs = append(delErrs, err)
					}
				}
			}
			mu.Lock()
			res.Samples = append(res.Samples, local...)
			res.DeleteErrors = append(res.DeleteErrors, delErrs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(began)
	sort.Slice(res.Samples, func(i, j int) bool { return res.Samples[i].Start.Before(res.Samples[j].Start) })
	return &res
}

func (l Load) pod(k Kind, n int) *corev1.Pod {
	dcs := l.Datacenters
	if len(dcs) == 0 {
		dcs = []string{"pod-1", "pod-2", "pod-3"}
	}
	dc := dcs[n%len(dcs)]
	b := tu.Pod(l.Namespace, "")
	switch k {
	case Pinned:
		b = b.Labels("app", "worker").InDC(dc)
	case Labelled:
		b = b.Labels("app", "worker", datacenterLabel, dc)
	case Free:
		b = b.Labels("app", "web")
	case Unpinned:
		b = b.Labels("app", "worker")
	}
	p := b.Pod()
	p.Name, p.GenerateName = "", "load-"+string(k)+"-"
	return p
}

func (l Load) create(ctx context.Context, k Kind, n int) (Sample, string) {
	s := Sample{Kind: k, Start: time.Now()}
	created, err := l.Client.CoreV1().Pods(l.Namespace).Create(ctx, l.pod(k, n), metav1.CreateOptions{})
	s.Latency = time.Since(s.Start)
	switch {
	case err == nil:
		s.Created = true
	case apierrors.IsInvalid(err) && strings.Contains(err.Error(), "nodeSelector"):
		s.Denied, s.Err = true, err
	default:
		s.Err = err
	}
	wantDenied := k == Unpinned && l.Enforced
	s.Unexpected = s.Denied != wantDenied || (!s.Denied && !s.Created)
	if created != nil {
		return s, created.Name
	}
	return s, ""
}

// delete removes a created pod at once; it is not bound by the run's
// deadline, so that a run leaves nothing behind.
func (l Load) delete(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	zero := int64(0)
	err := l.Client.CoreV1().Pods(l.Namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting pod %s/%s: %w", l.Namespace, name, err)
	}
	return nil
}

// Unexpected returns the samples whose outcome was not the promised one.
func (r *Result) Unexpected() []Sample {
	var out []Sample
	for _, s := range r.Samples {
		if s.Unexpected {
			out = append(out, s)
		}
	}
	return out
}

// Between returns the samples started in [from, to).
func (r *Result) Between(from, to time.Time) []Sample {
	var out []Sample
	for _, s := range r.Samples {
		if !s.Start.Before(from) && s.Start.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// Percentile returns the q-quantile (0..1) of the samples' latencies.
func Percentile(samples []Sample, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	d := make([]time.Duration, len(samples))
	for i, s := range samples {
		d[i] = s.Latency
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*q)]
}

// Summary is one line: requests, outcomes, p50/p99, throughput.
func (r *Result) Summary() string {
	var created, denied int
	for _, s := range r.Samples {
		if s.Created {
			created++
		}
		if s.Denied {
			denied++
		}
	}
	return fmt.Sprintf("%d creates in %s (%.0f/s): %d created, %d denied by policy, %d unexpected, %d failed deletes; p50 %s p99 %s",
		len(r.Samples), r.Elapsed.Round(100*time.Millisecond), float64(len(r.Samples))/r.Elapsed.Seconds(),
		created, denied, len(r.Unexpected()), len(r.DeleteErrors),
		Percentile(r.Samples, 0.50).Round(100*time.Microsecond), Percentile(r.Samples, 0.99).Round(100*time.Microsecond))
}

// Describe lists up to n unexpected samples, for a failure message.
func Describe(samples []Sample, n int) string {
	var b strings.Builder
	for i, s := range samples {
		if i == n {
			fmt.Fprintf(&b, "... and %d more\n", len(samples)-n)
			break
		}
		fmt.Fprintf(&b, "%s at %s after %s: created=%v denied=%v err=%v\n", s.Kind, s.Start.Format("15:04:05.000"), s.Latency.Round(time.Millisecond), s.Created, s.Denied, s.Err)
	}
	return b.String()
}
