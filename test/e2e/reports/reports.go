// Package reports reads kubectl dc status reports for the e2e suites: one
// reading of the survival verdicts and the findings for every suite.
package reports

import (
	"strings"
	"testing"

	"github.com/kubectl-dc/kubectl-dc/plugin/status"
)

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
