// Package reports runs and reads kubectl dc status for the e2e suites: one
// way to get a report, and one reading of its survival verdicts and
// findings, for every suite.
package reports

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-dc/kubectl-dc/plugin/status"
	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

// AnyExit makes Status accept whatever exit code status gives.
const AnyExit = -1

// statusTimeout bounds one status run.
const statusTimeout = 30 * time.Second

// Status runs `kubectl dc status -o json` with args against c and returns
// its report; it fails t unless status exits want (AnyExit: any) within
// 30 s with a report.
func Status(t testing.TB, c *cluster.Cluster, want int, args ...string) *status.Report {
	t.Helper()
	r, _, _ := RunStatus(t, c, want, args...)
	return r
}

// RunStatus is Status that also returns what status printed, for
// assertions on the output itself.
func RunStatus(t testing.TB, c *cluster.Cluster, want int, args ...string) (r *status.Report, stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := cluster.KubectlDC(t, c, statusTimeout, append([]string{"status", "-o", "json"}, args...)...)
	if want != AnyExit && code != want {
		t.Fatalf("kubectl dc status %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	r = &status.Report{}
	if err := json.Unmarshal([]byte(stdout), r); err != nil {
		t.Fatalf("kubectl dc status %s: exit %d, -o json is no report: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, err, stdout, stderr)
	}
	return r, stdout, stderr
}

// Survives maps each datacenter of r to its survival verdict: "yes",
// "no", or "unknown" when status cannot know.
func Survives(r *status.Report) map[string]string {
	out := map[string]string{}
	for _, d := range r.Datacenters {
		switch {
		case d.SurvivesLoss == nil:
			out[d.Name] = "unknown"
		case *d.SurvivesLoss:
			out[d.Name] = "yes"
		default:
			out[d.Name] = "no"
		}
	}
	return out
}

// AssertSurvives fails t for every datacenter of want whose verdict in r
// differs ("missing" when r has no such datacenter).
func AssertSurvives(t testing.TB, r *status.Report, want map[string]string) {
	t.Helper()
	got := Survives(r)
	for dc, w := range want {
		g, ok := got[dc]
		if !ok {
			g = "missing"
		}
		if g != w {
			t.Errorf("survivesLoss[%s] = %s, want %s (all: %v)", dc, g, w, got)
		}
	}
}

// Finding returns the first finding of r whose message contains substr,
// nil when none does.
func Finding(r *status.Report, substr string) *status.Finding {
	for i := range r.Findings {
		if strings.Contains(r.Findings[i].Message, substr) {
			return &r.Findings[i]
		}
	}
	return nil
}
