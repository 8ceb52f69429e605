package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	tu "github.com/kubectl-dc/kubectl-dc/policy/testutil"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

// BenchmarkWebhookHTTPS posts pod-create AdmissionReviews straight to the
// local webhook over HTTPS (keep-alive, HTTP/1.1, concurrency 20), without
// the API server: the webhook's share of a webhook call's latency.
func BenchmarkWebhookHTTPS(b *testing.B) {
	c := cluster.Require(b)
	ctx := context.Background()
	startLocal(ctx, b, c)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(local.CABundle)
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 25,
	}}
	pod := tu.Pod("default", "worker-0").Labels("app", "worker").InDC("pod-1").Pod()
	raw, _ := json.Marshal(pod)
	review, _ := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "default", Name: "worker-0", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
	n := b.N
	if n < 2000 {
		n = 2000
	}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var errs atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				start := time.Now()
				resp, err := hc.Post(local.URL()+"/validate", "application/json", bytes.NewReader(review))
				if err == nil {
					var out admissionv1.AdmissionReview
					err = json.NewDecoder(resp.Body).Decode(&out)
					_ = resp.Body.Close()
					if err == nil && (out.Response == nil || !out.Response.Allowed) {
						errs.Add(1)
					}
				}
				lat[i] = time.Since(start)
				if err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[n*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(errs.Load()), "errors")
}
