package ha

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// Usage is what a replica's process has used so far.
type Usage struct {
	// CPU is user plus system time.
	CPU time.Duration
	// RSS is the resident set now, PeakRSS its high-water mark, in bytes.
	RSS, PeakRSS int64
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// Usage reads the replica's CPU time and memory from /proc.
func (r *Replica) Usage() (Usage, error) {
	pid := r.Pid()
	if pid == 0 {
		return Usage{}, fmt.Errorf("replica %d is not running", r.Index+1)
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Usage{}, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis (field 3, state, comes first).
	rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return Usage{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Usage{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	u := Usage{CPU: time.Duration(utime+stime) * time.Second / clockTicks}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Usage{}, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &u.RSS
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &u.PeakRSS
		default:
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			*dst = kb * 1024
		}
	}
	return u, nil
}

// Ask sends review to the replica's path (/validate or /mutate) directly,
// trusting ca, and returns its response: a decision of exactly that
// replica, with no API server in between.
func (r *Replica) Ask(ctx context.Context, ca []byte, path string, review *admissionv1.AdmissionReview) (*admissionv1.AdmissionResponse, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("no certificate in ca")
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: ServerName, MinVersion: tls.VersionTLS12},
	}}
	defer client.CloseIdleConnections()
	body, err := json.Marshal(review)
	if err != nil {
		return nil, err
	}
	url := "https://" + net.JoinHostPort(r.Host.IP.String(), strconv.Itoa(webhookPort)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("replica %d answered %s", r.Index+1, resp.Status)
	}
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("replica %d: decoding its AdmissionReview: %w", r.Index+1, err)
	}
	if out.Response == nil {
		return nil, fmt.Errorf("replica %d: AdmissionReview without a response", r.Index+1)
	}
	return out.Response, nil
}

// MetricSum returns the sum of the replica's metric samples whose line
// starts with prefix (a name, or a name and the start of its labels).
func (r *Replica) MetricSum(ctx context.Context, prefix string) (float64, error) {
	url := "http://" + net.JoinHostPort(r.Host.IP.String(), strconv.Itoa(metricsPort)) + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		n, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("replica %d metrics: %q: %w", r.Index+1, line, err)
		}
		total += n
	}
	return total, nil
}

// Requests returns how many admission requests the replica has answered,
// from its dc_webhook_request_duration_seconds histogram.
func (r *Replica) Requests(ctx context.Context) (int, error) {
	url := "http://" + net.JoinHostPort(r.Host.IP.String(), strconv.Itoa(metricsPort)) + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "dc_webhook_request_duration_seconds_count{") {
			continue
		}
		f := strings.Fields(line)
		n, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("replica %d metrics: %q: %w", r.Index+1, line, err)
		}
		total += int(n)
	}
	return total, nil
}
