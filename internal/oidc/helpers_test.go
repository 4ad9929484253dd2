package oidc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/oidc"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const (
	aliceID   = "a11ce000-0000-4000-8000-000000000001"
	aliceUPN  = "alice@contoso.com"
	aliceMail = "alice.smith@contoso.com"
	alicePW   = "correct horse battery staple"

	// webApp is a confidential client: a web redirect URI and a secret.
	webApp = "0e0e0e0e-0000-4000-8000-00000000a001"
	webSP  = "5e000000-0000-4000-8000-00000000a001"
	// spaApp is a public client: a single-page application, no secret.
	spaApp = "0e0e0e0e-0000-4000-8000-00000000a002"
	spaSP  = "5e000000-0000-4000-8000-00000000a002"
	// orphanApp has no service principal in the tenant.
	orphanApp = "0e0e0e0e-0000-4000-8000-00000000a003"
)

// clock is the provider's and sign-in's time, moved by the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	t      testing.TB
	st     store.Store
	live   *decision.Live
	kr     *keyring.Keyring
	svc    *signin.Service
	p      *oidc.Provider
	srv    *httptest.Server // Verity: sign-in pages and the provider, over TLS
	rp     *httptest.Server // the relying parties' redirect URIs
	issuer string
	clock  *clock
	logs   *syncBuffer
	log    *slog.Logger
	secret string // webApp's client secret

	webRedirect, spaRedirect, logoutURL string
}

// newEnv starts Verity's sign-in pages and OIDC provider over TLS on
// 127.0.0.1, with a real SQLite store, decision snapshot and keyring;
// alice with a password; webApp (confidential), spaApp (public) and
// orphanApp (no service principal); and objs (policies).
func newEnv(t testing.TB, objs ...store.Object) *env {
	t.Helper()
	return newEnvKeys(t, keyring.Options{}, objs...)
}

// newEnvKeys is newEnv with the keyring's options (its algorithm).
func newEnvKeys(t testing.TB, keys keyring.Options, objs ...store.Object) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, clock: &clock{t: time.Now()}, logs: &syncBuffer{}}
	e.log = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs)
		}
	})
	e.rp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "relying party") }))
	t.Cleanup(e.rp.Close)
	e.webRedirect, e.spaRedirect, e.logoutURL = e.rp.URL+"/signin-oidc", e.rp.URL+"/spa", e.rp.URL+"/signed-out"

	e.st = storetest.OpenSQLite(t)
	alice := &directory.User{ID: aliceID, UserPrincipalName: aliceUPN, DisplayName: "Alice Smith", Mail: aliceMail}
	web := &directory.Application{ID: "a0000000-0000-4000-8000-00000000a001", AppID: webApp, DisplayName: "Payroll",
		Web: &directory.WebApplication{RedirectURIs: []string{e.webRedirect}, LogoutURL: e.logoutURL}}
	spa := &directory.Application{ID: "a0000000-0000-4000-8000-00000000a002", AppID: spaApp, DisplayName: "Expenses",
		SPA: &directory.SPAApplication{RedirectURIs: []string{e.spaRedirect}}}
	orphan := &directory.Application{ID: "a0000000-0000-4000-8000-00000000a003", AppID: orphanApp, DisplayName: "Orphan",
		Web: &directory.WebApplication{RedirectURIs: []string{e.webRedirect}}}
	for _, a := range []*directory.Application{web, spa, orphan} {
		a.SetCreatedDateTime(time.Now())
		a.Normalize()
		objs = append(objs, must(t)(directory.Applications.Object(a)))
	}
	alice.Normalize()
	objs = append(objs, must(t)(directory.Users.Object(alice)))
	for _, sp := range []*directory.ServicePrincipal{
		{ID: webSP, AppID: webApp, DisplayName: "Payroll"}, {ID: spaSP, AppID: spaApp, DisplayName: "Expenses"},
	} {
		sp.Normalize()
		objs = append(objs, must(t)(directory.ServicePrincipals.Object(sp)))
	}
	if _, err := e.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Create(ctx, o); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h, err := authn.HashPassword(alicePW)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetCredential(ctx, store.Credential{PrincipalID: aliceID, Type: "password", Hash: h}); err != nil {
		t.Fatal(err)
	}
	if _, e.secret, err = directory.AddClientSecret(ctx, e.st, web, directory.PasswordCredentialRequest{DisplayName: "test"}); err != nil {
		t.Fatal(err)
	}
	if e.live, err = decision.NewLive(ctx, e.st, e.log, nil); err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	if e.kr, err = keyring.Open(ctx, e.st, master, keys); err != nil {
		t.Fatal(err)
	}
	e.svc = newSignIn(t, signin.Options{Store: e.st, Live: e.live, Sealer: e.kr, Logger: e.log, Now: e.clock.Now})
	mux := http.NewServeMux()
	e.srv = httptest.NewUnstartedServer(mux)
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL
	if e.p, err = oidc.New(oidc.Options{Issuer: e.issuer, Store: e.st, Live: e.live, Keyring: e.kr, SignIn: e.svc,
		Logger: e.log, Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/signin", e.svc.Handler())
	mux.Handle("/signin/", e.svc.Handler())
	mux.Handle("/.well-known/openid-configuration", e.p.Handler())
	mux.Handle("/oauth2/", e.p.Handler())
	return e
}

// must fails t on err, and returns the object otherwise.
func must(t testing.TB) func(store.Object, error) store.Object {
	return func(o store.Object, err error) store.Object {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
}

func policy(t testing.TB, id, js string) store.Object {
	t.Helper()
	p, _, err := access.ParsePolicy([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	p.ID = id
	return must(t)(access.Object(p))
}

// browser is a client with its own cookies that follows redirects.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	return &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second}
}

// noRedirects is c stopping at the first redirect.
func noRedirects(c *http.Client) *http.Client {
	c2 := *c
	c2.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c2
}

// api is a client for back-channel calls (token, introspection).
func (e *env) api() *http.Client { return noRedirects(e.browser()) }

var (
	csrfRe     = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	returnToRe = regexp.MustCompile(`name="return_to" value="([^"]*)"`)
	appRe      = regexp.MustCompile(`name="app" value="([^"]*)"`)
)

// authReq is an authorization request under construction.
type authReq struct {
	client, redirect, scope, state, nonce string
	verifier                              string // PKCE S256 when set
	extra                                 url.Values
}

func (e *env) web() authReq {
	return authReq{client: webApp, redirect: e.webRedirect, scope: "openid profile email offline_access",
		state: "st-" + oauth2.GenerateVerifier()[:16], nonce: "n-" + oauth2.GenerateVerifier()[:16], verifier: oauth2.GenerateVerifier()}
}

func (e *env) spa() authReq {
	a := e.web()
	a.client, a.redirect = spaApp, e.spaRedirect
	return a
}

func (a authReq) url(issuer string) string {
	v := url.Values{"client_id": {a.client}, "redirect_uri": {a.redirect}, "response_type": {"code"}, "scope": {a.scope}}
	if a.state != "" {
		v.Set("state", a.state)
	}
	if a.nonce != "" {
		v.Set("nonce", a.nonce)
	}
	if a.verifier != "" {
		v.Set("code_challenge", oauth2.S256ChallengeFromVerifier(a.verifier))
		v.Set("code_challenge_method", "S256")
	}
	for k, vs := range a.extra {
		v[k] = vs
	}
	return issuer + "/oauth2/authorize?" + v.Encode()
}

// get fetches u and returns the final URL, status and body.
func (e *env) get(c *http.Client, u string) (*url.URL, int, string) {
	e.t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Request.URL, resp.StatusCode, string(b)
}

// signInPage fills the sign-in form on page as alice.
func (e *env) signInPage(c *http.Client, page, password string) (*url.URL, int, string) {
	e.t.Helper()
	m, rt, app := csrfRe.FindStringSubmatch(page), returnToRe.FindStringSubmatch(page), appRe.FindStringSubmatch(page)
	if m == nil || rt == nil || app == nil {
		e.t.Fatalf("no sign-in form on the page:\n%s", page)
	}
	f := url.Values{"csrf": {m[1]}, "return_to": {htmlUnescape(rt[1])}, "app": {app[1]}, "username": {aliceUPN}, "password": {password}}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/signin", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.srv.URL)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Request.URL, resp.StatusCode, string(b)
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// authorize runs a in browser c, signing in as alice when the sign-in
// page shows, and returns where the browser ended: for a successful flow,
// the relying party's redirect URI with the code.
func (e *env) authorize(c *http.Client, a authReq) (*url.URL, int, string) {
	e.t.Helper()
	u, status, body := e.get(c, a.url(e.issuer))
	if u.Path == "/signin" && status == http.StatusOK {
		u, status, body = e.signInPage(c, body, alicePW)
	}
	return u, status, body
}

// code runs a in a new browser and returns the code and the browser.
func (e *env) code(a authReq) (string, *http.Client) {
	e.t.Helper()
	c := e.browser()
	u, status, body := e.authorize(c, a)
	code := u.Query().Get("code")
	if code == "" || u.Query().Get("state") != a.state {
		e.t.Fatalf("authorization ended at %s (%d) without a code and the state:\n%s", u, status, body)
	}
	return code, c
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	Status       int    `json:"-"`
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// postForm posts form to path, with basic authentication when user is set.
func (e *env) postForm(path string, form url.Values, user, pass string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := e.api().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) token(form url.Values, user, pass string) tokenResponse {
	e.t.Helper()
	status, b := e.postForm("/oauth2/token", form, user, pass)
	var tr tokenResponse
	_ = json.Unmarshal(b, &tr)
	tr.Status = status
	return tr
}

// exchange redeems code as a's client (with webApp's secret for webApp).
func (e *env) exchange(a authReq, code string) tokenResponse {
	e.t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirect}}
	if a.verifier != "" {
		f.Set("code_verifier", a.verifier)
	}
	if a.client == webApp {
		return e.token(f, webApp, e.secret)
	}
	f.Set("client_id", a.client)
	return e.token(f, "", "")
}

func (e *env) refresh(client, rt string) tokenResponse {
	e.t.Helper()
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if client == webApp {
		return e.token(f, webApp, e.secret)
	}
	f.Set("client_id", client)
	return e.token(f, "", "")
}

// introspect asks as webApp about token.
func (e *env) introspect(token string) map[string]any {
	e.t.Helper()
	status, b := e.postForm("/oauth2/introspect", url.Values{"token": {token}}, webApp, e.secret)
	if status != http.StatusOK {
		e.t.Fatalf("introspection: %d %s", status, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// userinfo calls userinfo with a bearer token.
func (e *env) userinfo(token string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/oauth2/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.api().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// update writes objects and waits until the snapshot has them.
func (e *env) update(fn func(ctx context.Context, tx store.Tx) error) {
	e.t.Helper()
	ctx := context.Background()
	rev, err := e.st.Update(ctx, fn)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.live.WaitFor(ctx, rev); err != nil {
		e.t.Fatal(err)
	}
}

// claims decodes a JWT's payload without verifying it.
func claims(t testing.TB, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func base64Decode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// newSignIn builds the sign-in pages.
func newSignIn(t testing.TB, opts signin.Options) *signin.Service {
	t.Helper()
	svc, err := signin.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}
