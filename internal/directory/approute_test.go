package directory

import (
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/store"
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
