package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors of the admission handlers.
type Metrics struct {
	// Decisions counts verdicts: one per rule result (action Deny, Warn or
	// Audit, plus Deny/Warn of the datacenter-label guard under rule
	// "label-guard"), and one with rule "" and action "Allow" for every
	// request that no rule objected to.
	Decisions *prometheus.CounterVec
	// Latency observes how long a handler took, by webhook (validate or
	// mutate) and kind.
	Latency *prometheus.HistogramVec
	// Mutations counts objects the mutating webhook patched, by kind.
	Mutations *prometheus.CounterVec
	// PolicyErrors counts PlacementPolicies that were left out of the engine
	// because they failed validation.
	PolicyErrors prometheus.Counter
	// Panics counts handler panics that were turned into a clean response.
	Panics prometheus.Counter
	// PinnedDifferences counts, by rule, the requests on which the policy
	// engine and the compiled admission policy of a pinned rule in both
	// mode disagree (PinnedAuditor); PinnedAudits counts the requests
	// audited.
	PinnedDifferences *prometheus.CounterVec
	PinnedAudits      prometheus.Counter
	// PlacementAttempts observes how many judgements a member placement
	// recorded in the placement ledger took (1: no other placement raced
	// it).
	PlacementAttempts prometheus.Histogram
}

// NewMetrics returns the collectors, registered with reg when it is not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dc_webhook_decisions_total",
			Help: "Admission verdicts by rule, action (Allow, Deny, Warn, Audit), kind and operation.",
		}, []string{"rule", "action", "kind", "operation"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dc_webhook_request_duration_seconds",
			Help: "Time spent in the admission handler, by webhook (validate, mutate) and kind.",
			// From 50µs to 1s: the handler should answer in well under a
			// millisecond, and the API server gives up after timeoutSeconds.
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
		}, []string{"webhook", "kind"}),
		Mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dc_webhook_mutations_total",
			Help: "Objects patched by the mutating webhook, by kind.",
		}, []string{"kind"}),
		PolicyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dc_webhook_policy_errors_total",
			Help: "PlacementPolicies left out of the engine because they are invalid.",
		}),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dc_webhook_handler_panics_total",
			Help: "Handler panics recovered into an admission response.",
		}),
		PinnedDifferences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dc_webhook_pinned_verdict_differences_total",
			Help: "Requests on which the policy engine and the compiled admission policy of a pinned rule enforced in both mode disagree, by rule.",
		}, []string{"rule"}),
		PinnedAudits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dc_webhook_pinned_audits_total",
			Help: "Requests judged by both the policy engine and the compiled admission policies of the pinned rules enforced in both mode.",
		}),
		PlacementAttempts: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dc_webhook_placement_attempts",
			Help:    "Judgements a member placement recorded in the placement Lease took (more than 1: it raced another).",
			Buckets: []float64{1, 2, 3, 4, 6, 8},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Decisions, m.Latency, m.Mutations, m.PolicyErrors, m.Panics, m.PlacementAttempts, m.PinnedDifferences, m.PinnedAudits)
	}
	return m
}

func (m *Metrics) observe(webhook, kind string, start time.Time) {
	if m == nil {
		return
	}
	m.Latency.WithLabelValues(webhook, kind).Observe(time.Since(start).Seconds())
}

func (m *Metrics) decision(rule, action, kind, op string) {
	if m == nil {
		return
	}
	m.Decisions.WithLabelValues(rule, action, kind, op).Inc()
}
