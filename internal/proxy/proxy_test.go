package proxy_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/oidc"
	"github.com/verityhq/verity/internal/proxy"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const (
	aliceID  = "a11ce000-0000-4000-8000-000000000001"
	aliceUPN = "alice@contoso.com"
	alicePW  = "correct horse battery staple"
	appID    = "9a700000-0000-4000-8000-000000000001"
	spID     = "5e000000-0000-4000-8000-000000000001"
	routeID  = "7e000000-0000-4000-8000-000000000001"
	appHost  = "payroll.example.com"
)

// env is Verity's sign-in pages on one TLS server, the proxy on another
// (reached as payroll.example.com), an upstream that echoes what it got,
// a real SQLite store, decision snapshot and keyring.
type env struct {
	t        testing.TB
	st       store.Store
	live     *decision.Live
	kr       *keyring.Keyring
	signin   *httptest.Server
	proxy    *httptest.Server
	px       *proxy.Proxy
	op       *oidc.Provider
	upstream *httptest.Server
	base     string // https://payroll.example.com:port
	logs     *syncBuffer

	mu   sync.Mutex
	seen []*http.Request // requests the upstream got
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB, mutate func(r *directory.AppRoute), objs ...store.Object) *env {
	t.Helper()
	return newNode(t, nodeOptions{}, mutate, objs...)
}

// nodeOptions make a second node of a tenant: another proxy and sign-in
// on the same database, with the same master key, serving the same route.
type nodeOptions struct {
	dsn    string // "" : a new SQLite database
	master []byte // nil: a new master key
	base   string // the route's external URL of the first node; "": this is the first node
	tune   func(o *proxy.Options)
	// clientCerts has the proxy's TLS ask for client certificates.
	clientCerts bool
	// http2 serves the proxy over HTTP/2 too.
	http2 bool
}

func newNode(t testing.TB, o nodeOptions, mutate func(r *directory.AppRoute), objs ...store.Object) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs)
		}
	})
	e.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, r.Clone(context.Background()))
		e.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	t.Cleanup(e.upstream.Close)

	if o.dsn == "" {
		e.st = storetest.OpenSQLite(t)
	} else {
		e.st = storetest.OpenDSN(t, o.dsn)
	}
	var err error
	master := o.master
	if master == nil {
		master = make([]byte, 32)
		_, _ = rand.Read(master)
	}
	if e.kr, err = keyring.Open(ctx, e.st, master, keyring.Options{}); err != nil {
		t.Fatal(err)
	}
	sigMux := http.NewServeMux()
	e.signin = httptest.NewUnstartedServer(sigMux)
	e.signin.StartTLS()
	t.Cleanup(e.signin.Close)
	// The proxy is the server's handler itself: a ServeMux in front would
	// clean paths with redirects before the proxy sees them.
	e.proxy = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.px.ServeHTTP(w, r) }))
	if o.clientCerts {
		e.proxy.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	}
	e.proxy.EnableHTTP2 = o.http2
	e.proxy.StartTLS()
	t.Cleanup(e.proxy.Close)
	_, port, _ := net.SplitHostPort(e.proxy.Listener.Addr().String())
	e.base = "https://" + appHost + ":" + port
	if o.base != "" {
		e.base = o.base
	}

	alice := &directory.User{ID: aliceID, UserPrincipalName: aliceUPN, DisplayName: "Alice Smith", Mail: aliceUPN}
	app := &directory.Application{ID: "a0000000-0000-4000-8000-00000000a001", AppID: appID, DisplayName: "Payroll"}
	sp := &directory.ServicePrincipal{ID: spID, AppID: appID, DisplayName: "Payroll"}
	route := &directory.AppRoute{ID: routeID, DisplayName: "Payroll", AppID: appID, From: e.base + "/payroll/", To: []string{e.upstream.URL + "/internal/"},
		PublicPaths: []string{"/payroll/static/"}, AllowPreflight: true}
	if mutate != nil {
		mutate(route)
	}
	for _, r := range []directory.Resource{alice, app, sp, route} {
		r.Normalize()
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if o.base == "" {
		objs = append(objs, must(t)(directory.Users.Object(alice)), must(t)(directory.Applications.Object(app)),
			must(t)(directory.ServicePrincipals.Object(sp)), must(t)(directory.AppRoutes.Object(route)))
		e.write(objs...)
		h, err := authn.HashPassword(alicePW)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.SetCredential(ctx, store.Credential{PrincipalID: aliceID, Type: "password", Hash: h}); err != nil {
			t.Fatal(err)
		}
	}
	if e.live, err = decision.NewLive(ctx, e.st, log, nil); err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go e.live.Run(lctx, 50*time.Millisecond)
	svc, err := signin.New(signin.Options{Store: e.st, Live: e.live, Sealer: e.kr, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	sigMux.Handle("/signin", svc.Handler())
	sigMux.Handle("/signin/", svc.Handler())
	// Verity's OIDC provider issues the access tokens the proxy accepts.
	if e.op, err = oidc.New(oidc.Options{Issuer: e.signin.URL, Store: e.st, Live: e.live, Keyring: e.kr, SignIn: svc, Logger: log}); err != nil {
		t.Fatal(err)
	}
	sigMux.Handle("/oauth2/", e.op.Handler())
	sigMux.Handle("/.well-known/openid-configuration", e.op.Handler())
	bearer := func(ctx context.Context, token string) (proxy.BearerToken, error) {
		i, err := e.op.InspectAccessToken(ctx, token)
		return proxy.BearerToken{Subject: i.Subject, App: i.App, Audience: i.Audience, Methods: i.Methods, AuthTime: i.AuthTime,
			MFATime: i.MFATime, Expiry: i.Expiry}, err
	}
	po := proxy.Options{Store: e.st, Live: e.live, Sessions: svc, Keys: e.kr, SignInURL: e.signin.URL, Bearer: bearer, Logger: log}
	if o.tune != nil {
		o.tune(&po)
	}
	if e.px, err = proxy.New(po); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.px.Close)
	return e
}

func must(t testing.TB) func(store.Object, error) store.Object {
	return func(o store.Object, err error) store.Object {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
}

// write stores objs in one transaction and waits for the snapshot.
func (e *env) write(objs ...store.Object) {
	e.t.Helper()
	rev, err := e.st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Put(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if e.live != nil {
		if _, err := e.live.WaitFor(context.Background(), rev); err != nil {
			e.t.Fatal(err)
		}
	}
}

// browser is a client with a cookie jar that reaches payroll.example.com
// at the proxy.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return e.browserWith(jar)
}

// browserWith is a browser with jar's cookies that reaches
// payroll.example.com, whatever the port, at this node's proxy.
func (e *env) browserWith(jar http.CookieJar) *http.Client {
	tr := e.proxy.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); host == appHost {
			addr = e.proxy.Listener.Addr().String()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second}
}

func noRedirects(c *http.Client) *http.Client {
	c2 := *c
	c2.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c2
}

var (
	csrfRe     = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	returnToRe = regexp.MustCompile(`name="return_to" value="([^"]*)"`)
	appRe      = regexp.MustCompile(`name="app" value="([^"]*)"`)
)

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// get fetches u with c and returns where it ended, the status and body.
func (e *env) get(c *http.Client, u string, header ...string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn opens u in browser c, signs in as alice on the sign-in page it is
// sent to, and returns where it ends.
func (e *env) signIn(c *http.Client, u string, header ...string) (*http.Response, string) {
	e.t.Helper()
	resp, page := e.get(c, u, header...)
	if !strings.HasPrefix(resp.Request.URL.String(), e.signin.URL+"/signin") {
		e.t.Fatalf("%s did not lead to the sign-in page but to %s (%d)", u, resp.Request.URL, resp.StatusCode)
	}
	m, rt, app := csrfRe.FindStringSubmatch(page), returnToRe.FindStringSubmatch(page), appRe.FindStringSubmatch(page)
	if m == nil || rt == nil || app == nil {
		e.t.Fatalf("no sign-in form:\n%s", page)
	}
	f := url.Values{"csrf": {m[1]}, "return_to": {htmlUnescape(rt[1])}, "app": {app[1]}, "username": {aliceUPN}, "password": {alicePW}}
	req, _ := http.NewRequest(http.MethodPost, e.signin.URL+"/signin", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.signin.URL)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *env) lastSeen() *http.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		return nil
	}
	return e.seen[len(e.seen)-1]
}

func (e *env) seenCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen)
}

// decisions returns the proxy's audit records, oldest first, once there
// are at least min of them (they are queued for the audit log's next
// group commit), or what there is after two seconds.
func (e *env) decisions(min int) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for range 200 {
		evs, err := e.st.ListAudit(context.Background(), store.AuditQuery{Action: proxy.AuditAction, Limit: 1000})
		if err != nil {
			e.t.Fatal(err)
		}
		out = out[:0]
		for i := len(evs) - 1; i >= 0; i-- {
			var m map[string]any
			if err := json.Unmarshal(evs[i].Details, &m); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, m)
		}
		if len(out) >= min {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
	return out
}

// decisionMatching waits until a decision the audit log holds matches
// (queued records are written a few milliseconds after the request) and
// returns the newest that does; it fails the test after two seconds.
func (e *env) decisionMatching(match func(map[string]any) bool) map[string]any {
	e.t.Helper()
	var evs []map[string]any
	for range 200 {
		evs = e.decisions(0)
		for i := len(evs) - 1; i >= 0; i-- {
			if match(evs[i]) {
				return evs[i]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no audited decision matches; have %v", evs)
	return nil
}

func TestSignInThenForward(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.browser()
	resp, body := e.signIn(c, e.base+"/payroll/reports/q3?year=2026", "X-Verity-User", "mallory@contoso.com", "X-Verity-Assertion", "forged")
	if resp.StatusCode != http.StatusOK || body != "upstream /internal/reports/q3" {
		t.Fatalf("after sign-in: %d %q at %s", resp.StatusCode, body, resp.Request.URL)
	}
	if got := resp.Request.URL.String(); got != e.base+"/payroll/reports/q3?year=2026" {
		t.Errorf("the browser ended at %s, not where it was going", got)
	}
	up := e.lastSeen()
	if up.URL.RawQuery != "year=2026" {
		t.Errorf("query %q", up.URL.RawQuery)
	}
	// The assertion is Verity's, verifiable with the published keys; the
	// client's identity headers and the proxy's cookie never arrive.
	assertion := up.Header.Get(proxy.AssertionHeader)
	payload, _, err := e.kr.Verify(context.Background(), assertion)
	if err != nil {
		t.Fatalf("assertion %q: %v", assertion, err)
	}
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	if claims["sub"] != aliceID || claims["upn"] != aliceUPN || claims["aud"] != e.base+"/payroll/" || claims["iss"] != e.signin.URL || claims["appid"] != appID {
		t.Errorf("assertion claims %v", claims)
	}
	if up.Header.Get("X-Verity-User") != "" {
		t.Error("a client-supplied X-Verity-User reached the upstream")
	}
	if strings.Contains(up.Header.Get("Cookie"), "verity") {
		t.Errorf("the proxy's cookie reached the upstream: %q", up.Header.Get("Cookie"))
	}
	if up.Header.Get("X-Forwarded-Host") != strings.TrimPrefix(e.base, "https://") || up.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("forwarding headers %v", up.Header)
	}

	// Signed in: the next request goes straight through, with a decision
	// of its own, and the assertion is reused.
	n := e.seenCount()
	resp, body = e.get(noRedirects(c), e.base+"/payroll/")
	if resp.StatusCode != http.StatusOK || body != "upstream /internal/" || e.seenCount() != n+1 {
		t.Fatalf("second request: %d %q", resp.StatusCode, body)
	}
	if e.lastSeen().Header.Get(proxy.AssertionHeader) != assertion {
		t.Error("the assertion was signed again for the same session")
	}
	last := e.decisionMatching(func(m map[string]any) bool { return m["path"] == "/payroll/" })
	if last["outcome"] != "allow" || last["userId"] != aliceID || last["routeId"] != routeID || last["method"] != "GET" {
		t.Errorf("audit record %v", last)
	}
	// The JWKS to verify assertions is on the route's host too.
	resp, body = e.get(c, e.base+"/.verity/jwks.json")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"keys"`) {
		t.Errorf("jwks: %d %s", resp.StatusCode, body)
	}
}

func TestChallengeForAPIClientsAndUnknownPlaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := noRedirects(e.browser())
	resp, body := e.get(c, e.base+"/payroll/", "Accept", "application/json")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"SignInRequired"`) {
		t.Fatalf("an API client without a session: %d %s", resp.StatusCode, body)
	}
	resp, _ = e.get(c, e.base+"/payroll/")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, e.signin.URL+signin.ProxyPath+"?") {
		t.Fatalf("a browser without a session: %d to %q", resp.StatusCode, loc)
	}
	if e.seenCount() != 0 {
		t.Fatal("the upstream saw a request without a decision")
	}
	// Public paths and preflight go through without a session, explicitly.
	resp, body = e.get(c, e.base+"/payroll/static/app.js")
	if resp.StatusCode != http.StatusOK || body != "upstream /internal/static/app.js" || e.lastSeen().Header.Get(proxy.AssertionHeader) != "" {
		t.Fatalf("public path: %d %q", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodOptions, e.base+"/payroll/api", nil)
	req.Header.Set("Origin", "https://spa.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("preflight: %v %v", resp, err)
	}
	req, _ = http.NewRequest(http.MethodOptions, e.base+"/payroll/api", nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an OPTIONS that is not a preflight went through: %v %v", resp, err)
	}
	// Nothing is published elsewhere.
	resp, _ = e.get(c, e.base+"/hr/")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unpublished path: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, e.base+"/payroll/", nil)
	req.Host = "other.example.com"
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("unknown host: %v %v", resp, err)
	}
}

func TestPathTricksAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := noRedirects(e.browser())
	for _, p := range []string{
		"/payroll/static/../admin", "/payroll/static/%2e%2e/admin", "/payroll/static/%2E%2E/admin", "/payroll/static/..%2fadmin",
		"/payroll/static%2f..%2fadmin", "/payroll//admin", "/payroll/static/.%2e/admin", "/payroll/a%5cb", "/payroll/a%00b", "/payroll/./x",
	} {
		req, err := http.NewRequest(http.MethodGet, e.base+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = "" // send the path exactly as written
		req.URL.RawPath = p
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", p, resp.StatusCode)
		}
	}
	if e.seenCount() != 0 {
		t.Fatal("a path trick reached the upstream")
	}
}

func TestDecisionsBite(t *testing.T) {
	t.Parallel()
	block := policyObject(t, "b10c0000-0000-4000-8000-000000000001", `{"displayName":"Block payroll","state":"disabled",
		"conditions":{"users":{"includeUsers":["All"]},"applications":{"includeApplications":["`+appID+`"]},"clientAppTypes":["all"]},
		"grantControls":{"operator":"OR","builtInControls":["block"]}}`)
	e := newEnv(t, nil, block)
	c := e.browser()
	if resp, body := e.signIn(c, e.base+"/payroll/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	nc := noRedirects(c)
	expect := func(status int, code string) {
		t.Helper()
		resp, body := e.get(nc, e.base+"/payroll/", "Accept", "application/json")
		if resp.StatusCode != status || (code != "" && !strings.Contains(body, `"code":"`+code+`"`)) {
			t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, status, code)
		}
		if status == http.StatusForbidden && (resp.Header.Get("X-Verity-Correlation-Id") == "" || strings.Contains(body, "Block payroll")) {
			t.Fatalf("a refusal without a correlation id, or with policy internals: %s", body)
		}
	}
	expect(http.StatusOK, "")

	// A conditional access policy turned on blocks the next request.
	p := policyObject(t, "b10c0000-0000-4000-8000-000000000001", `{"displayName":"Block payroll","state":"enabled",
		"conditions":{"users":{"includeUsers":["All"]},"applications":{"includeApplications":["`+appID+`"]},"clientAppTypes":["all"]},
		"grantControls":{"operator":"OR","builtInControls":["block"]}}`)
	e.write(p)
	expect(http.StatusForbidden, "53003")
	e.write(block)
	expect(http.StatusOK, "")

	// Requiring assignment: alice holds no Verity App User role.
	sp := &directory.ServicePrincipal{ID: spID, AppID: appID, DisplayName: "Payroll", AppRoleAssignmentRequired: true}
	sp.Normalize()
	e.write(must(t)(directory.ServicePrincipals.Object(sp)))
	expect(http.StatusForbidden, "50105")
	sp.AppRoleAssignmentRequired = false
	e.write(must(t)(directory.ServicePrincipals.Object(sp)))
	expect(http.StatusOK, "")

	// Disabling the user.
	alice := &directory.User{ID: aliceID, UserPrincipalName: aliceUPN, DisplayName: "Alice Smith", Mail: aliceUPN, AccountEnabled: new(bool)}
	alice.Normalize()
	e.write(must(t)(directory.Users.Object(alice)))
	expect(http.StatusForbidden, "50057")

	var outcomes []string
	for _, ev := range e.decisions(7) {
		outcomes = append(outcomes, ev["outcome"].(string))
	}
	if strings.Join(outcomes, ",") != "allow,allow,deny,allow,deny,allow,deny" {
		t.Errorf("audited outcomes %v", outcomes)
	}
}

func TestRevokedSessionStopsWithinASecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.browser()
	if resp, _ := e.signIn(c, e.base+"/payroll/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	if n, err := signin.RevokeSessions(context.Background(), e.st, aliceID); err != nil || n == 0 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	revoked := time.Now()
	nc := noRedirects(c)
	for {
		resp, _ := e.get(nc, e.base+"/payroll/")
		if resp.StatusCode == http.StatusFound {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("a revoked session still served after %v", time.Since(revoked))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRuleNeedsDataAction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(r *directory.AppRoute) {
		r.Rules = []directory.RouteRule{{Methods: []string{"POST", "GET"}, PathPrefix: "/payroll/Admin", DataAction: "Verity.Apps/apps/payroll/admin/action"}}
	})
	c := e.browser()
	if resp, _ := e.signIn(c, e.base+"/payroll/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	nc := noRedirects(c)
	for _, p := range []string{"/payroll/admin", "/payroll/ADMIN/users", "/payroll/Admin/"} {
		resp, body := e.get(nc, e.base+p, "Accept", "application/json")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "900403") {
			t.Errorf("%s without the data action: %d %s", p, resp.StatusCode, body)
		}
	}
	if resp, _ := e.get(nc, e.base+"/payroll/administrators"); resp.StatusCode != http.StatusOK {
		t.Errorf("a path that only starts like the rule's: %d", resp.StatusCode)
	}
}

func policyObject(t testing.TB, id, js string) store.Object {
	t.Helper()
	p, _, err := access.ParsePolicy([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	p.ID = id
	return must(t)(access.Object(p))
}

// TestTwoNodesOnePostgres: a session signed in through one node's proxy
// works through another's on the same PostgreSQL database, and revoking
// it, or disabling its user, stops it on the other node within a second.
func TestTwoNodesOnePostgres(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	a := newNode(t, nodeOptions{dsn: dsn, master: master}, nil)
	b := newNode(t, nodeOptions{dsn: dsn, master: master, base: a.base}, nil)
	ca := a.browser()
	if resp, body := a.signIn(ca, a.base+"/payroll/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in through node a: %d %s", resp.StatusCode, body)
	}
	cb := noRedirects(b.browserWith(ca.Jar))
	if resp, body := b.get(cb, a.base+"/payroll/x"); resp.StatusCode != http.StatusOK || body != "upstream /internal/x" {
		t.Fatalf("the session through node b: %d %s", resp.StatusCode, body)
	}
	within := func(what string, want int) {
		t.Helper()
		start := time.Now()
		for {
			resp, _ := b.get(cb, a.base+"/payroll/x", "Accept", "text/html")
			if resp.StatusCode == want {
				return
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s: node b still answers %d after %v", what, resp.StatusCode, time.Since(start))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Disabling the user (a directory change on node a) denies on node b.
	alice := &directory.User{ID: aliceID, UserPrincipalName: aliceUPN, DisplayName: "Alice Smith", Mail: aliceUPN, AccountEnabled: new(bool)}
	alice.Normalize()
	a.write(must(t)(directory.Users.Object(alice)))
	within("disabled user", http.StatusForbidden)
	enabled := true
	alice.AccountEnabled = &enabled
	a.write(must(t)(directory.Users.Object(alice)))
	within("enabled again", http.StatusOK)
	// Revoking the session on node a sends node b's browser to sign in.
	if n, err := signin.RevokeSessions(context.Background(), a.st, aliceID); err != nil || n == 0 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	within("revoked session", http.StatusFound)
}

// uaTransport sends one User-Agent to the application's host and another
// everywhere else, as two browsers sharing one cookie jar would.
type uaTransport struct {
	base           http.RoundTripper
	app, elsewhere string
}

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if r.URL.Hostname() == appHost {
		r.Header.Set("User-Agent", u.app)
	} else {
		r.Header.Set("User-Agent", u.elsewhere)
	}
	return u.base.RoundTrip(r)
}

// TestLoopGuard: when sign-in has just vouched for a session and the
// proxy, with the same snapshot, still wants a step — here because the
// proxy sees an Android client where sign-in saw Windows, and a policy
// asks MFA of Android only — the browser is refused (53000) rather than
// sent round in circles; once the snapshot changes, it is a challenge
// again.
func TestLoopGuard(t *testing.T) {
	t.Parallel()
	android := policyObject(t, "b10c0000-0000-4000-8000-000000000002", `{"displayName":"MFA on Android","state":"enabled",
		"conditions":{"users":{"includeUsers":["All"]},"applications":{"includeApplications":["`+appID+`"]},
		"platforms":{"includePlatforms":["android"]},"clientAppTypes":["all"]},
		"grantControls":{"operator":"OR","builtInControls":["mfa"]}}`)
	e := newEnv(t, nil, android)
	c := e.browser()
	c.Transport = uaTransport{base: c.Transport,
		app:       "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
		elsewhere: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"}
	resp, body := e.signIn(c, e.base+"/payroll/")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "53000") {
		t.Fatalf("after sign-in the proxy still wanted MFA: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	if !strings.HasPrefix(resp.Request.URL.String(), e.base+"/payroll/") {
		t.Fatalf("refused at %s, want the application's URL", resp.Request.URL)
	}
	if n := e.seenCount(); n != 0 {
		t.Fatalf("the upstream saw %d requests", n)
	}
	evs := e.decisions(1)
	last := evs[len(evs)-1]
	if last["outcome"] != "deny" || last["code"] != float64(53000) {
		t.Fatalf("audit record of the refusal: %v", last)
	}

	// Any change makes a new snapshot: the same session is challenged,
	// not refused.
	e.write(must(t)(directory.Users.Object(&directory.User{ID: "0b0b0000-0000-4000-8000-000000000001", UserPrincipalName: "bob@example.com",
		DisplayName: "Bob", AccountEnabled: new(bool)})))
	resp, _ = e.get(noRedirects(c), e.base+"/payroll/")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), e.signin.URL+"/signin") {
		t.Fatalf("after a change: %d to %q, want a challenge", resp.StatusCode, resp.Header.Get("Location"))
	}
}
