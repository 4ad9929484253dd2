package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus collectors.
type Metrics struct {
	requests        *prometheus.CounterVec
	decisions       *prometheus.CounterVec
	decisionSeconds prometheus.Histogram
	upstreamSeconds prometheus.Histogram
	auditFailures   prometheus.Counter
	// upstreamFailures counts connections to upstreams that failed and
	// failed health probes, by route, upstream and why.
	upstreamFailures *prometheus.CounterVec
	upstreamHealthy  *prometheus.Desc
	// upstreams report their health when collected (newUpstreams sets it).
	upstreams *upstreams
}

func newMetrics() *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "verity_proxy_requests_total",
			Help: "Requests the proxy answered, by how: allowed, challenged, denied, sign_in, bad_token, rate_limited, too_large, public, unknown_host, no_route, bad_path."}, []string{"result"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "verity_proxy_decisions_total",
			Help: "Access decisions the proxy asked for, by outcome."}, []string{"outcome"}),
		decisionSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "verity_proxy_decision_seconds",
			Help: "Time from a request's arrival to its decision (session, signals, conditional access and RBAC).", Buckets: []float64{1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1}}),
		upstreamSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "verity_proxy_upstream_seconds",
			Help: "Time spent proxying to the upstream, body included.", Buckets: prometheus.DefBuckets}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "verity_proxy_audit_failures_total",
			Help: "Decisions the audit log could not take (refused with 503 unless auditFailOpen)."}),
		upstreamFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "verity_proxy_upstream_failures_total",
			Help: "Failures of upstreams by route, upstream and why: connect, tls, reset (before a response) or check (a failed health probe)."},
			[]string{"route", "upstream", "reason"}),
		upstreamHealthy: prometheus.NewDesc("verity_proxy_upstream_healthy",
			"Whether the route's upstream takes requests (1) or is left out (0) after failed connections or health checks.", []string{"route", "upstream"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.decisions.Describe(ch)
	m.decisionSeconds.Describe(ch)
	m.upstreamSeconds.Describe(ch)
	m.auditFailures.Describe(ch)
	m.upstreamFailures.Describe(ch)
	ch <- m.upstreamHealthy
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.decisions.Collect(ch)
	m.decisionSeconds.Collect(ch)
	m.upstreamSeconds.Collect(ch)
	m.auditFailures.Collect(ch)
	m.upstreamFailures.Collect(ch)
	if m.upstreams != nil {
		m.upstreams.collect(ch, m.upstreamHealthy)
	}
}

// pool is a typed sync.Pool.
type pool[T any] struct{ p sync.Pool }

func newPool[T any](mk func() *T) *pool[T] {
	return &pool[T]{p: sync.Pool{New: func() any { return mk() }}}
}

func (p *pool[T]) Get() *T  { return p.p.Get().(*T) }
func (p *pool[T]) Put(v *T) { p.p.Put(v) }
