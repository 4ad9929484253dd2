package directory

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

func TestAppRouteValidation(t *testing.T) {
	t.Parallel()
	good := func() *AppRoute {
		return &AppRoute{DisplayName: "Payroll", AppID: guidB, From: "HTTPS://Payroll.Example.com:443/app", To: []string{"http://127.0.0.1:8080"}}
	}
	r := good()
	r.Normalize()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.From != "https://payroll.example.com/app/" || r.Host() != "payroll.example.com" || r.Prefix() != "/app/" {
		t.Fatalf("normalised to %q (host %q, prefix %q)", r.From, r.Host(), r.Prefix())
	}
	bad := []struct {
		path   string
		mutate func(r *AppRoute)
	}{
		{"from", func(r *AppRoute) { r.From = "" }},
		{"from", func(r *AppRoute) { r.From = "ftp://x.example/" }},
		{"from", func(r *AppRoute) { r.From = "https://user@x.example/" }},
		{"from", func(r *AppRoute) { r.From = "https://x.example/a/../b/" }},
		{"from", func(r *AppRoute) { r.From = "https://x.example/%2e%2e/" }},
		{"from", func(r *AppRoute) { r.From = "https://x.example/.verity/" }},
		{"to", func(r *AppRoute) { r.To = nil }},
		{"to[0]", func(r *AppRoute) { r.To = []string{"unix:///tmp/s"} }},
		{"appId", func(r *AppRoute) { r.AppID = "payroll" }},
		{"publicPaths[0]", func(r *AppRoute) { r.PublicPaths = []string{"healthz"} }},
		{"publicPaths[0]", func(r *AppRoute) { r.PublicPaths = []string{"/a/../admin"} }},
		{"rules[0].pathPrefix", func(r *AppRoute) { r.Rules = []RouteRule{{PathPrefix: "x", DataAction: DefaultRouteDataAction}} }},
		{"rules[0].methods[0]", func(r *AppRoute) {
			r.Rules = []RouteRule{{Methods: []string{"GE T"}, PathPrefix: "/", DataAction: DefaultRouteDataAction}}
		}},
		{"rules[0].dataAction", func(r *AppRoute) { r.Rules = []RouteRule{{PathPrefix: "/", DataAction: "*"}} }},
		{"upstreamTimeoutSeconds", func(r *AppRoute) { r.UpstreamTimeoutSeconds = MaxRouteTimeoutSeconds + 1 }},
		{"healthCheck.path", func(r *AppRoute) { r.HealthCheck = &RouteHealthCheck{} }},
	}
	for _, tt := range bad {
		r := good()
		tt.mutate(r)
		r.Normalize()
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%+v: error %v, want one at %s", r, err, tt.path)
		}
	}
}

// TestAppRouteHealthCheck: a health check's path follows publicPaths'
// rules, its numbers are bounded, and zero takes the default.
func TestAppRouteHealthCheck(t *testing.T) {
	t.Parallel()
	route := func(h *RouteHealthCheck) *AppRoute {
		return &AppRoute{DisplayName: "Payroll", AppID: guidB, From: "https://payroll.example.com/", To: []string{"http://127.0.0.1:8080"}, HealthCheck: h}
	}
	good := []struct {
		name string
		hc   RouteHealthCheck
		want [4]int // interval, timeout (seconds), healthy, unhealthy
	}{
		{"defaults", RouteHealthCheck{Path: "/healthz"}, [4]int{10, 2, 2, 3}},
		{"all set", RouteHealthCheck{Path: "/app/ready", IntervalSeconds: 30, TimeoutSeconds: 5, HealthyThreshold: 1, UnhealthyThreshold: 10}, [4]int{30, 5, 1, 10}},
		{"bounds", RouteHealthCheck{Path: "/", IntervalSeconds: MaxHealthCheckIntervalSeconds, TimeoutSeconds: MaxHealthCheckTimeoutSeconds,
			HealthyThreshold: MaxHealthCheckThreshold, UnhealthyThreshold: 1}, [4]int{300, 60, 10, 1}},
		{"timeout equal to interval", RouteHealthCheck{Path: "/healthz", IntervalSeconds: 1, TimeoutSeconds: 1}, [4]int{1, 1, 2, 3}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := route(&tt.hc)
			r.Normalize()
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			h := r.HealthCheck
			got := [4]int{int(h.Interval() / time.Second), int(h.Timeout() / time.Second), h.Healthy(), h.Unhealthy()}
			if got != tt.want {
				t.Errorf("interval, timeout, healthy, unhealthy = %v, want %v", got, tt.want)
			}
		})
	}
	bad := []struct {
		name, path string
		hc         RouteHealthCheck
	}{
		{"no path", "healthCheck.path", RouteHealthCheck{IntervalSeconds: 5}},
		{"relative path", "healthCheck.path", RouteHealthCheck{Path: "healthz"}},
		{"dot segment", "healthCheck.path", RouteHealthCheck{Path: "/a/../healthz"}},
		{"escape", "healthCheck.path", RouteHealthCheck{Path: "/health%7a"}},
		{"query", "healthCheck.path", RouteHealthCheck{Path: "/healthz?full=1"}},
		{"empty segment", "healthCheck.path", RouteHealthCheck{Path: "//healthz"}},
		{"negative interval", "healthCheck.intervalSeconds", RouteHealthCheck{Path: "/healthz", IntervalSeconds: -1}},
		{"long interval", "healthCheck.intervalSeconds", RouteHealthCheck{Path: "/healthz", IntervalSeconds: MaxHealthCheckIntervalSeconds + 1}},
		{"long timeout", "healthCheck.timeoutSeconds", RouteHealthCheck{Path: "/healthz", IntervalSeconds: 300, TimeoutSeconds: MaxHealthCheckTimeoutSeconds + 1}},
		{"timeout past interval", "healthCheck.timeoutSeconds", RouteHealthCheck{Path: "/healthz", IntervalSeconds: 2, TimeoutSeconds: 3}},
		{"default timeout past interval", "healthCheck.timeoutSeconds", RouteHealthCheck{Path: "/healthz", IntervalSeconds: 1}},
		{"healthy threshold", "healthCheck.healthyThreshold", RouteHealthCheck{Path: "/healthz", HealthyThreshold: MaxHealthCheckThreshold + 1}},
		{"unhealthy threshold", "healthCheck.unhealthyThreshold", RouteHealthCheck{Path: "/healthz", UnhealthyThreshold: -3}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := route(&tt.hc)
			r.Normalize()
			err := r.Validate()
			var fe *strictjson.FieldError
			if !errors.As(err, &fe) || fe.Path != tt.path {
				t.Errorf("%+v: error %v, want one at %s", tt.hc, err, tt.path)
			}
		})
	}
	// The field round-trips through the strict (API) decoder, and an
	// unknown property inside it is refused like anywhere else.
	if _, err := Parse(KindAppRoute, []byte(`{"displayName":"P","appId":"`+guidB+`","from":"https://p.example.com/","to":["http://127.0.0.1:1"],
		"healthCheck":{"path":"/healthz","expectedStatus":200}}`)); err == nil || !strings.Contains(err.Error(), "healthCheck.expectedStatus") {
		t.Errorf("an unknown healthCheck property: %v", err)
	}
}

func TestRouteFor(t *testing.T) {
	t.Parallel()
	mk := func(id, from string, public ...string) store.Object {
		r := &AppRoute{ID: id, DisplayName: from, AppID: guidB, From: from, To: []string{"http://127.0.0.1:1"}, PublicPaths: public,
			Rules: []RouteRule{{Methods: []string{"post"}, PathPrefix: "/admin", DataAction: "Verity.Apps/apps/admin/action"}}}
		r.Normalize()
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		o, err := AppRoutes.Object(r)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	s := buildFromStore(t, []store.Object{
		mk("00000000-0000-4000-8000-000000000001", "https://apps.example.com/"),
		mk("00000000-0000-4000-8000-000000000002", "https://apps.example.com/payroll/", "/payroll/static/"),
		mk("00000000-0000-4000-8000-000000000003", "https://hr.example.com:8443/"),
	})
	tests := []struct{ host, path, want string }{
		{"apps.example.com", "/", "00000000-0000-4000-8000-000000000001"},
		{"apps.example.com", "/payrollx", "00000000-0000-4000-8000-000000000001"},
		{"apps.example.com", "/payroll", "00000000-0000-4000-8000-000000000002"},
		{"apps.example.com", "/payroll/x", "00000000-0000-4000-8000-000000000002"},
		{"hr.example.com:8443", "/x", "00000000-0000-4000-8000-000000000003"},
		{"hr.example.com", "/x", ""},
		{"other.example.com", "/", ""},
	}
	for _, tt := range tests {
		r, ok := s.RouteFor(tt.host, tt.path)
		if got := ""; ok {
			got = r.ID
			if got != tt.want {
				t.Errorf("RouteFor(%s, %s) = %s, want %s", tt.host, tt.path, got, tt.want)
			}
		} else if tt.want != "" {
			t.Errorf("RouteFor(%s, %s) found nothing, want %s", tt.host, tt.path, tt.want)
		}
	}
	r, _ := s.RouteFor("apps.example.com", "/payroll/static/app.js")
	if !r.IsPublic("/payroll/static/app.js") || r.IsPublic("/payroll/staticx") || r.IsPublic("/payroll/") {
		t.Error("public paths")
	}
	if ru := r.Rule("POST", "/admin/users"); ru == nil || ru.DataAction != "Verity.Apps/apps/admin/action" {
		t.Errorf("rule for POST /admin/users: %+v", ru)
	}
	if r.Rule("GET", "/admin/users") != nil || r.Rule("POST", "/administrator") != nil {
		t.Error("a rule matched another method or a longer name")
	}
}
