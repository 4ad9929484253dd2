package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/store"
)

// BenchmarkProxyRequest measures one request through the proxy with a
// signed-in session — cookie, session (cached), signals, conditional
// access over 200 policies, the decision, the audit record, the reused
// assertion, the reverse proxy to a loopback upstream — beside the same
// request through a bare httputil.ReverseProxy in the same run. Handlers
// are called directly (no client TLS), so the figures are the proxies'
// own cost plus the upstream round trip.
func BenchmarkProxyRequest(b *testing.B) {
	var policies []store.Object
	for i := range 200 {
		// Policies for other applications and for a group alice is not in:
		// evaluated, not applied, as in a real tenant.
		policies = append(policies, policyObject(b, fmt.Sprintf("b0000000-0000-4000-8000-%012d", i), `{"displayName":"p`+fmt.Sprint(i)+`","state":"enabled",
			"conditions":{"users":{"includeGroups":["`+fmt.Sprintf("90000000-0000-4000-8000-%012d", i)+`"]},"applications":{"includeApplications":["All"]},"clientAppTypes":["all"]},
			"grantControls":{"operator":"OR","builtInControls":["mfa"]}}`))
	}
	e := newEnv(b, nil, policies...)
	c := e.browser()
	if resp, body := e.signIn(c, e.base+"/payroll/"); resp.StatusCode != http.StatusOK {
		b.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	u, _ := url.Parse(e.base + "/payroll/")
	var cookie string
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "__Host-verity-proxy") && !strings.Contains(ck.Name, "state") {
			cookie = ck.Name + "=" + ck.Value
		}
	}
	if cookie == "" {
		b.Fatal("no proxy cookie")
	}
	upstream, _ := url.Parse(e.upstream.URL)
	bare := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(upstream); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	host := strings.TrimPrefix(e.base, "https://")
	run := func(b *testing.B, h http.Handler, withCookie bool) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodGet, "https://"+host+"/payroll/reports", nil)
			req.RemoteAddr = "192.0.2.10:40000"
			if withCookie {
				req.Header.Set("Cookie", cookie)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
			_, _ = io.Copy(io.Discard, rec.Body)
		}
	}
	b.Run("verity", func(b *testing.B) { run(b, e.px, true) })
	b.Run("httputil.ReverseProxy", func(b *testing.B) { run(b, bare, false) })
}
