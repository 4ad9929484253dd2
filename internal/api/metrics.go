package api

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/verityhq/verity/internal/directory"
)

type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	auditFailures prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_api_requests_total", Help: "Admin API requests by operation and status class.",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "verity_api_request_duration_seconds", Help: "Admin API request latency by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"operation"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_audit_write_failures_total", Help: "API calls whose audit record could not be written.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.auditFailures)
	return m
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{})
}

// OpsHandler serves only the operational endpoints — /healthz, /readyz
// and /metrics — for a node that serves no API (`verity proxy`); any
// other path is 404.
func (s *Server) OpsHandler() http.Handler {
	full := s.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			full.ServeHTTP(w, r)
		default:
			s.writeProblem(w, r, requestIDOf(r), problemf(http.StatusNotFound, CodeNotFound,
				"this node serves only /healthz, /readyz and /metrics, not %s", r.URL.Path))
		}
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, c *call) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports whether this node can serve: the database answers and the
// snapshot exists.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, c *call) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	check := s.opts.Ready
	if check == nil {
		check = s.opts.Store.Ping
	}
	snap := s.opts.Live.Current()
	if err := check(ctx); err != nil {
		return writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": "database unreachable", "revision": snap.Revision()})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "revision": snap.Revision()})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, c *call) error {
	snap := s.opts.Live.Current()
	return writeJSON(w, http.StatusOK, map[string]any{
		"version":          s.opts.Version,
		"engine":           s.opts.Store.Engine(),
		"snapshotRevision": snap.Revision(),
		"snapshotBuiltAt":  snap.BuiltAt().UTC().Format(time.RFC3339Nano),
		"counts":           statsJSON(snap.Directory().Stats()),
	})
}

// statsJSON names the snapshot's counts the way the rest of the API names
// properties.
func statsJSON(st directory.Stats) map[string]int {
	return map[string]int{
		"users": st.Users, "groups": st.Groups, "applications": st.Applications,
		"servicePrincipals": st.ServicePrincipals, "namedLocations": st.NamedLocations,
		"directoryRoleAssignments": st.RoleAssignments, "memberships": st.Memberships,
		"transitiveMemberships": st.TransitiveMemberships, "danglingMembers": st.DanglingMembers,
		"danglingAssignments": st.DanglingAssignments, "cyclicGroups": st.CyclicGroups,
	}
}
