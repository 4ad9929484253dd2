package proxy_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// backend is an upstream that names itself in its answers, counts the
// requests it serves and answers its health path as told.
type backend struct {
	name    string
	srv     *httptest.Server
	served  atomic.Int64
	probes  atomic.Int64
	sick    atomic.Bool // its health path answers 503
	mu      sync.Mutex
	probeUA string
	probeAs string // X-Verity-Assertion of a probe: never set
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/app/healthz" {
			b.probes.Add(1)
			b.mu.Lock()
			b.probeUA, b.probeAs = r.UserAgent(), r.Header.Get("X-Verity-Assertion")
			b.mu.Unlock()
			if b.sick.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		b.served.Add(1)
		io.WriteString(w, b.name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) url() string { return b.srv.URL + "/app/" }

// refusing is the address of a closed listener: connections are refused.
func refusing(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/app/"
}

// hangingUp accepts connections and closes them without an answer.
func hangingUp(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			_, _ = c.Read(buf)
			c.Close()
		}
	}()
	return "http://" + l.Addr().String() + "/app/"
}

// untrustedTLS is an https upstream whose certificate the proxy does not
// trust: the handshake fails.
func untrustedTLS(t *testing.T) string {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "untrusted") }))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes the proxy refuses
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.URL + "/app/"
}

// public fetches a public path of the route (no session needed: these
// tests are about upstreams).
func (e *env) public(c *http.Client, method string, header ...string) (int, string) {
	e.t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("amount=10")
	}
	req, _ := http.NewRequest(method, e.base+"/payroll/static/x", body)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads a proxy metric's value (a histogram's count) for labels (name=value pairs); ok
// is false when no such series exists. The registry is pedantic: a
// metric collected but not described fails the test.
func (e *env) metric(name string, labels ...string) (float64, bool) {
	e.t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(e.px.Metrics()); err != nil {
		e.t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if labelValue(m, labels[i]) != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// eventually polls cond every 20 ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFailedUpstreamIsSkipped: of two upstreams, one cannot be reached —
// refused, a TLS handshake that fails, or a connection closed before an
// answer. Every request still succeeds through the other (the idempotent
// one that met the failure is sent again there), the failed upstream is
// left out, counted, reported unhealthy and logged — and a POST, which
// is never sent twice, is not sent to it any more.
func TestFailedUpstreamIsSkipped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, reason string
		bad          func(t *testing.T) string
	}{
		{"refused", "connect", refusing},
		{"TLS handshake", "tls", untrustedTLS},
		{"closed before an answer", "reset", hangingUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			good, bad := newBackend(t, "good"), tt.bad(t)
			e := newEnv(t, func(r *directory.AppRoute) { r.To = []string{bad, good.url()} })
			c := noRedirects(e.browser())
			for i := range 10 {
				if status, body := e.public(c, http.MethodGet); status != http.StatusOK || body != "good" {
					t.Fatalf("GET %d: %d %q", i, status, body)
				}
			}
			if n, _ := e.metric("verity_proxy_upstream_failures_total", "route", routeID, "upstream", bad, "reason", tt.reason); n < 1 {
				t.Errorf("failures of the bad upstream counted: %v, want at least 1 (%s)", n, tt.reason)
			}
			if v, ok := e.metric("verity_proxy_upstream_healthy", "route", routeID, "upstream", bad); !ok || v != 0 {
				t.Errorf("the bad upstream's health: %v %v, want 0", v, ok)
			}
			if v, ok := e.metric("verity_proxy_upstream_healthy", "route", routeID, "upstream", good.url()); !ok || v != 1 {
				t.Errorf("the good upstream's health: %v %v, want 1", v, ok)
			}
			if logs := e.logs.String(); !strings.Contains(logs, `"msg":"proxy: upstream down"`) || !strings.Contains(logs, `"upstream":"`+bad+`"`) ||
				!strings.Contains(logs, `"why":"`+tt.reason+`"`) {
				t.Errorf("no log of the upstream going down:\n%s", logs)
			}
			// Left out for its back-off: a POST goes to the good one.
			for i := range 5 {
				if status, body := e.public(c, http.MethodPost); status != http.StatusOK || body != "good" {
					t.Fatalf("POST %d: %d %q", i, status, body)
				}
			}
			if n := good.served.Load(); n != 15 {
				t.Errorf("the good upstream served %d requests, want 15", n)
			}
		})
	}
}

// TestPostIsNotSentTwice: a request with a body whose upstream cannot be
// reached is answered 502, not sent to another upstream.
func TestPostIsNotSentTwice(t *testing.T) {
	t.Parallel()
	good, bad := newBackend(t, "good"), refusing(t)
	e := newEnv(t, func(r *directory.AppRoute) { r.To = []string{bad, good.url()} })
	c := noRedirects(e.browser())
	// Round robin: one of the first two goes to the refusing upstream.
	var statuses []int
	for range 2 {
		status, _ := e.public(c, http.MethodPost, "Accept", "application/json")
		statuses = append(statuses, status)
	}
	if (statuses[0] == http.StatusBadGateway) == (statuses[1] == http.StatusBadGateway) || good.served.Load() != 1 {
		t.Fatalf("two POSTs over a refusing and a good upstream: %v, the good one served %d; want one 502 and one served", statuses, good.served.Load())
	}
}

// TestClientFailureIsNotTheUpstreams: a client that goes away in the
// middle of its body breaks the request to the upstream, but the upstream
// is not to blame and stays in.
func TestClientFailureIsNotTheUpstreams(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a")
	e := newEnv(t, func(r *directory.AppRoute) { r.To = []string{a.url()} })
	conn, err := tls.Dial("tcp", e.proxy.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: appHost}) //nolint:gosec // the test server's own certificate
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /payroll/static/upload HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n%s", strings.TrimPrefix(e.base, "https://"), strings.Repeat("a", 100))
	time.Sleep(100 * time.Millisecond) // the proxy is sending the body on
	conn.Close()
	eventually(t, 5*time.Second, "the proxy done with the request", func() bool {
		n, _ := e.metric("verity_proxy_upstream_seconds")
		return n >= 1
	})
	if n, ok := e.metric("verity_proxy_upstream_failures_total", "upstream", a.url()); ok {
		t.Errorf("the client's failure was counted against the upstream: %v", n)
	}
	if v, _ := e.metric("verity_proxy_upstream_healthy", "route", routeID, "upstream", a.url()); v != 1 {
		t.Error("the upstream was left out for the client's failure")
	}
}

// TestHealthCheckFlaps: an upstream whose health path starts failing is
// taken out by the route's health check although it still answers, and
// put back when it passes again.
func TestHealthCheckFlaps(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	e := newEnv(t, func(r *directory.AppRoute) {
		r.To = []string{a.url(), b.url()}
		r.HealthCheck = &directory.RouteHealthCheck{Path: "/healthz", IntervalSeconds: 1, TimeoutSeconds: 1, HealthyThreshold: 1, UnhealthyThreshold: 2}
	})
	c := noRedirects(e.browser())
	healthy := func(be *backend) float64 {
		v, _ := e.metric("verity_proxy_upstream_healthy", "route", routeID, "upstream", be.url())
		return v
	}
	spread := func() map[string]int {
		got := map[string]int{}
		for range 10 {
			status, body := e.public(c, http.MethodGet)
			if status != http.StatusOK {
				t.Fatalf("GET: %d %q", status, body)
			}
			got[body]++
		}
		return got
	}
	eventually(t, 5*time.Second, "both upstreams probed", func() bool { return a.probes.Load() > 0 && b.probes.Load() > 0 })
	b.mu.Lock()
	ua, as := b.probeUA, b.probeAs
	b.mu.Unlock()
	if !strings.HasPrefix(ua, "Verity-HealthCheck/") || as != "" {
		t.Errorf("a probe came as %q with assertion %q", ua, as)
	}
	if got := spread(); got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("two healthy upstreams: %v", got)
	}

	b.sick.Store(true)
	eventually(t, 5*time.Second, "the failing upstream taken out", func() bool { return healthy(b) == 0 })
	if got := spread(); got["a"] != 10 {
		t.Fatalf("with b failing its checks: %v", got)
	}
	if n, _ := e.metric("verity_proxy_upstream_failures_total", "route", routeID, "upstream", b.url(), "reason", "check"); n < 2 {
		t.Errorf("failed checks counted: %v, want at least the threshold of 2", n)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"msg":"proxy: upstream down","route":"`+routeID+`","upstream":"`+b.url()+`","why":"check"`) {
		t.Errorf("no log of b going down:\n%s", logs)
	}

	b.sick.Store(false)
	eventually(t, 5*time.Second, "the recovered upstream put back", func() bool { return healthy(b) == 1 })
	if got := spread(); got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("b recovered: %v", got)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"msg":"proxy: upstream back","route":"`+routeID+`","upstream":"`+b.url()+`","by":"check"`) {
		t.Errorf("no log of b coming back:\n%s", logs)
	}
}

// TestAllUpstreamsDown: with every upstream unreachable a request is
// still tried, and answered 502 with the proxy's problem (JSON or HTML by
// Accept); once one is back, the next request reaches it without waiting
// for the back-off.
func TestAllUpstreamsDown(t *testing.T) {
	t.Parallel()
	one, two := refusing(t), refusing(t)
	e := newEnv(t, func(r *directory.AppRoute) { r.To = []string{one, two} })
	c := noRedirects(e.browser())
	for range 3 {
		status, body := e.public(c, http.MethodGet, "Accept", "application/json")
		if status != http.StatusBadGateway || !strings.Contains(body, `"code":"UpstreamUnavailable"`) {
			t.Fatalf("JSON: %d %s", status, body)
		}
	}
	status, body := e.public(c, http.MethodGet, "Accept", "text/html")
	if status != http.StatusBadGateway || !strings.Contains(body, "This application is not available") {
		t.Fatalf("HTML: %d %s", status, body)
	}
	var tried float64
	for _, up := range []string{one, two} {
		n, _ := e.metric("verity_proxy_upstream_failures_total", "route", routeID, "upstream", up, "reason", "connect")
		tried += n
		if v, _ := e.metric("verity_proxy_upstream_healthy", "route", routeID, "upstream", up); v != 0 {
			t.Errorf("%s reported healthy", up)
		}
	}
	if tried != 8 {
		t.Errorf("connections tried: %v, want 8 (two per request: the request and its retry)", tried)
	}

	// The second comes back on its address; both are still in back-off.
	addr := strings.TrimSuffix(strings.TrimPrefix(two, "http://"), "/app/")
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "two") }), ReadHeaderTimeout: time.Second}
	go srv.Serve(l)
	defer srv.Close()
	if status, body := e.public(c, http.MethodGet); status != http.StatusOK || body != "two" {
		t.Fatalf("after one came back: %d %q", status, body)
	}
	if v, _ := e.metric("verity_proxy_upstream_healthy", "route", routeID, "upstream", two); v != 1 {
		t.Errorf("the upstream that answered is not reported healthy")
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"msg":"proxy: upstream back","route":"`+routeID+`","upstream":"`+two+`","by":"request"`) {
		t.Errorf("no log of the upstream coming back:\n%s", logs)
	}
}

// TestLoadSpreads: requests are spread evenly over the healthy upstreams,
// also when they arrive together, and a dead one takes no share.
func TestLoadSpreads(t *testing.T) {
	t.Parallel()
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	e := newEnv(t, func(r *directory.AppRoute) { r.To = []string{a.url(), b.url(), c.url()} })
	cl := noRedirects(e.browser())
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 30 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, e.base+"/payroll/static/x", nil)
			resp, err := cl.Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if a.served.Load() != 10 || b.served.Load() != 10 || c.served.Load() != 10 {
		t.Fatalf("30 requests at once over three upstreams: %d %d %d", a.served.Load(), b.served.Load(), c.served.Load())
	}

	// c stops: after the request that finds out, the other two share.
	c.srv.Close()
	eventually(t, 5*time.Second, "c found down", func() bool {
		e.public(cl, http.MethodGet)
		v, _ := e.metric("verity_proxy_upstream_healthy", "route", routeID, "upstream", c.url())
		return v == 0
	})
	a0, b0 := a.served.Load(), b.served.Load()
	for range 20 {
		if status, _ := e.public(cl, http.MethodGet); status != http.StatusOK {
			t.Fatalf("GET with c down: %d", status)
		}
	}
	if da, db := a.served.Load()-a0, b.served.Load()-b0; da != 10 || db != 10 {
		t.Fatalf("20 requests with c down: a %d, b %d", da, db)
	}
}

// TestHealthChecksFollowRoutes: a route added at runtime is probed, and
// removing it stops its probes and its health series.
func TestHealthChecksFollowRoutes(t *testing.T) {
	t.Parallel()
	hr := newBackend(t, "hr")
	e := newEnv(t, nil)
	const hrRoute = "7e000000-0000-4000-8000-000000000002"
	r := &directory.AppRoute{ID: hrRoute, DisplayName: "HR", AppID: appID, From: e.base + "/hr/", To: []string{hr.url()},
		HealthCheck: &directory.RouteHealthCheck{Path: "/healthz", IntervalSeconds: 1, TimeoutSeconds: 1}}
	r.Normalize()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	e.write(must(t)(directory.AppRoutes.Object(r)))
	eventually(t, 5*time.Second, "the new route probed", func() bool { return hr.probes.Load() >= 2 })
	if _, ok := e.metric("verity_proxy_upstream_healthy", "route", hrRoute, "upstream", hr.url()); !ok {
		t.Error("no health series for the new route")
	}

	if _, err := e.st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		return tx.Delete(ctx, directory.KindAppRoute, hrRoute)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the removed route's series gone", func() bool {
		_, ok := e.metric("verity_proxy_upstream_healthy", "route", hrRoute)
		return !ok
	})
	n := hr.probes.Load()
	time.Sleep(1500 * time.Millisecond) // longer than the interval
	if m := hr.probes.Load(); m != n {
		t.Errorf("the removed route was probed %d more times", m-n)
	}
	if _, ok := e.metric("verity_proxy_upstream_healthy", "route", routeID); !ok {
		t.Error("the remaining route lost its health series")
	}
}
