package signin_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
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

	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/oidc"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// Federation is tested against a second Verity acting as the external
// identity provider: two complete stacks in one process (stores,
// keyrings, snapshots, sign-in services), the provider's with Verity's
// OpenID Connect provider and an application registered for the first.
// Each is served over TLS by its own httptest server on 127.0.0.1; the
// provider is reached as idp.example.com (httptest's certificate covers
// *.example.com, and a dialer maps the name to 127.0.0.1), so the two
// keep their same-named cookies apart in the browsers' cookie jars, as
// two hosts would.

const (
	bobUPN  = "bob@fabrikam.com"
	bobPW   = "another correct horse battery"
	bobName = "Bob Jones"
	// engineersID and adminsID are groups of the first Verity the
	// provider's groups map to.
	engineersID = "9e000000-0000-4000-8000-000000000001"
	adminsID    = "9e000000-0000-4000-8000-000000000002"
	idpObjectID = "1d900000-0000-4000-8000-000000000001"
)

// idpStack is the second Verity: the external identity provider.
type idpStack struct {
	st     store.Store
	live   *decision.Live
	kr     *keyring.Keyring
	svc    *signin.Service
	srv    *httptest.Server
	issuer string
	clock  *clock
	logs   *syncBuffer

	clientID, clientSecret string

	mu sync.Mutex
	// rewrite, when set, changes the ID token the token endpoint returns:
	// it gets the claims and returns them with the keyring to sign with.
	rewrite func(claims map[string]any) (map[string]any, *keyring.Keyring)
	// groups is the groups claim the provider adds to ID tokens, as
	// Entra's groupMembershipClaims does (Verity's provider has none).
	groups []string
}

// fedEnv is the Verity under test (rp) federated with the provider.
type fedEnv struct {
	*env
	keys      *keyring.Keyring
	idp       *idpStack
	transport *http.Transport
	provider  *directory.IdentityProvider
}

// exampleDialer dials 127.0.0.1 for every *.example.com name.
func exampleDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && strings.HasSuffix(host, ".example.com") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func newKeys(t *testing.T, st store.Store) *keyring.Keyring {
	t.Helper()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := keyring.Open(context.Background(), st, master, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// mustObject fails t on err, and returns the object otherwise.
func mustObject(t *testing.T) func(store.Object, error) store.Object {
	return func(o store.Object, err error) store.Object {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
}

func writeAll(t *testing.T, st store.Store, objs ...store.Object) int64 {
	t.Helper()
	rev, err := st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Put(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// newIDP starts the identity provider: Verity with bob, its OIDC provider
// and an application (a confidential web client) whose redirect URI is
// the first Verity's federation callback. idpPolicies are its own
// conditional access policies.
func newIDP(t *testing.T, rpCallback string, idpPolicies ...store.Object) *idpStack {
	t.Helper()
	ctx := context.Background()
	s := &idpStack{st: storetest.OpenSQLite(t), clock: &clock{t: time.Now()}, logs: &syncBuffer{}, groups: []string{"fabrikam-engineers"}}
	log := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("identity provider logs:\n%s", s.logs)
		}
	})
	bob := &directory.User{ID: "b0b00000-0000-4000-8000-000000000001", UserPrincipalName: bobUPN, DisplayName: bobName, Mail: bobUPN}
	bob.Normalize()
	s.clientID = "c0ffee00-0000-4000-8000-00000000c001"
	app := &directory.Application{ID: "a0000000-0000-4000-8000-00000000c001", AppID: s.clientID, DisplayName: "Contoso Verity",
		Web: &directory.WebApplication{RedirectURIs: []string{rpCallback}}}
	app.SetCreatedDateTime(time.Now())
	app.Normalize()
	sp := &directory.ServicePrincipal{ID: "5e000000-0000-4000-8000-00000000c001", AppID: s.clientID, DisplayName: "Contoso Verity"}
	sp.Normalize()
	objs := append([]store.Object{mustObject(t)(directory.Users.Object(bob)), mustObject(t)(directory.Applications.Object(app)),
		mustObject(t)(directory.ServicePrincipals.Object(sp))}, idpPolicies...)
	writeAll(t, s.st, objs...)
	h, err := authn.HashPassword(bobPW)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.SetCredential(ctx, store.Credential{PrincipalID: bob.ID, Type: "password", Hash: h}); err != nil {
		t.Fatal(err)
	}
	if _, s.clientSecret, err = directory.AddClientSecret(ctx, s.st, app, directory.PasswordCredentialRequest{DisplayName: "contoso"}); err != nil {
		t.Fatal(err)
	}
	if s.live, err = decision.NewLive(ctx, s.st, log, nil); err != nil {
		t.Fatal(err)
	}
	s.kr = newKeys(t, s.st)
	mux := http.NewServeMux()
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	_, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	s.issuer = "https://idp.example.com:" + port
	if s.svc, err = signin.New(signin.Options{Store: s.st, Live: s.live, Sealer: s.kr, Logger: log, Now: s.clock.Now, ExternalURL: s.issuer, Issuer: "Fabrikam"}); err != nil {
		t.Fatal(err)
	}
	p, err := oidc.New(oidc.Options{Issuer: s.issuer, Store: s.st, Live: s.live, Keyring: s.kr, SignIn: s.svc, Logger: log, Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/signin", s.svc.Handler())
	mux.Handle("/signin/", s.svc.Handler())
	mux.Handle("/.well-known/openid-configuration", p.Handler())
	mux.Handle("/oauth2/", p.Handler())
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) { s.token(w, r, p.Handler()) })
	return s
}

// token serves the token endpoint, adding the groups claim to ID tokens
// (signed with the provider's own key) and applying rewrite.
func (s *idpStack) token(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var body map[string]any
	raw, _ := io.ReadAll(rec.Body)
	if json.Unmarshal(raw, &body) == nil {
		if tok, ok := body["id_token"].(string); ok {
			s.mu.Lock()
			rewrite, groups := s.rewrite, s.groups
			s.mu.Unlock()
			claims := jwtClaims(tok)
			claims["groups"] = groups
			kr := s.kr
			if rewrite != nil {
				claims, kr = rewrite(claims)
			}
			payload, _ := json.Marshal(claims)
			signer, err := kr.Signer(r.Context())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if body["id_token"], err = signer.Sign("JWT", payload); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			raw, _ = json.Marshal(body)
		}
	}
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(raw)
}

func (s *idpStack) setRewrite(f func(map[string]any) (map[string]any, *keyring.Keyring)) {
	s.mu.Lock()
	s.rewrite = f
	s.mu.Unlock()
}

func (s *idpStack) setGroups(g ...string) {
	s.mu.Lock()
	s.groups = g
	s.mu.Unlock()
}

func jwtClaims(jwt string) map[string]any {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return map[string]any{}
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// newFedEnv starts both Verity instances and registers the provider in
// the first: JIT provisioning on, fabrikam.com routed to it, its groups
// mapped to Engineers and Admins, and mutate applied. objs go to the
// first Verity (policies).
func newFedEnv(t *testing.T, mutate func(p *directory.IdentityProvider), idpPolicies []store.Object, objs ...store.Object) *fedEnv {
	t.Helper()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
	var svc *signin.Service
	pages := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { svc.Handler().ServeHTTP(w, r) })
	mux := http.NewServeMux()
	mux.Handle("/signin", pages)
	mux.Handle("/signin/", pages)
	// /app is an application Verity serves that asks for a multifactor
	// sign-in (acr_values).
	mux.HandleFunc("/app", func(w http.ResponseWriter, r *http.Request) {
		if sess := svc.Require(w, r, appID, r.URL.RequestURI(), signin.Requirements{Strength: signin.StrengthMultifactor}); sess != nil {
			io.WriteString(w, "hello "+sess.UPN+" "+sess.ACR()+" "+strings.Join(sess.AMR(), ","))
		}
	})
	// /fresh asks for a sign-in no older than max_age seconds.
	mux.HandleFunc("/fresh", func(w http.ResponseWriter, r *http.Request) {
		age, _ := time.ParseDuration(r.URL.Query().Get("max_age") + "s")
		if sess := svc.Require(w, r, appID, r.URL.RequestURI(), signin.Requirements{MaxAge: age}); sess != nil {
			io.WriteString(w, "fresh "+sess.UPN)
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	idp := newIDP(t, srv.URL+"/signin/federated/callback", idpPolicies...)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = exampleDialer

	for _, g := range []*directory.Group{{GraphGroup: directory.GraphGroup{ID: engineersID, DisplayName: "Engineers"}},
		{GraphGroup: directory.GraphGroup{ID: adminsID, DisplayName: "Admins"}}} {
		g.Normalize()
		objs = append(objs, mustObject(t)(directory.Groups.Object(g)))
	}
	p := &directory.IdentityProvider{ID: idpObjectID, DisplayName: "Fabrikam", Issuer: idp.issuer, ClientID: idp.clientID,
		JITProvisioning: true, DomainHints: []string{"fabrikam.com"},
		GroupMappings: []directory.GroupMapping{{ClaimValue: "fabrikam-engineers", GroupID: engineersID}, {ClaimValue: "fabrikam-admins", GroupID: adminsID}}}
	if mutate != nil {
		mutate(p)
	}
	p.SetCreatedDateTime(time.Now())
	p.Normalize()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	objs = append(objs, mustObject(t)(directory.IdentityProviders.Object(p)))
	writeAll(t, st, objs...)
	live, err := decision.NewLive(ctx, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	kr := newKeys(t, st)
	if err := directory.SetIdentityProviderSecret(ctx, st, kr, p, idp.clientSecret); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	svc, err = signin.New(signin.Options{Store: st, Live: live, Sealer: kr, Logger: log, AppID: appID, Now: c.Now, ExternalURL: srv.URL,
		HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, live: live, svc: svc, srv: srv, clock: c, logs: logs}
	return &fedEnv{env: e, keys: kr, idp: idp, transport: tr, provider: p}
}

// browser is a client with its own cookies for both hosts.
func (f *fedEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: f.transport.Clone(), Jar: jar, Timeout: 20 * time.Second}
}

// stopAt is c stopping before it follows a redirect to path (on any host).
func stopAt(c *http.Client, path string) *http.Client {
	c2 := *c
	c2.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == path {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return &c2
}

var (
	federatedFormRe = regexp.MustCompile(`<form method="get" action="(/signin/federated/[0-9a-f-]+/start)"`)
	returnRe        = regexp.MustCompile(`name="return_to" value="([^"]*)"`)
	appFieldRe      = regexp.MustCompile(`name="app" value="([^"]*)"`)
)

// fetch GETs an absolute URL and returns where it ended, its status and
// body.
func fetch(t testing.TB, c *http.Client, u string) (*url.URL, int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Request.URL, resp.StatusCode, string(b)
}

// post submits a form on page (its csrf token, return_to and app fields
// included) to the absolute URL u.
func post(t testing.TB, c *http.Client, page, u string, fields url.Values) (*url.URL, int, string) {
	t.Helper()
	if m := csrfRe.FindStringSubmatch(page); m != nil {
		fields.Set("csrf", m[1])
	}
	for _, f := range []struct {
		re   *regexp.Regexp
		name string
	}{{returnRe, "return_to"}, {appFieldRe, "app"}} {
		if m := f.re.FindStringSubmatch(page); m != nil && fields.Get(f.name) == "" {
			fields.Set(f.name, unescape(m[1]))
		}
	}
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	pu, _ := url.Parse(u)
	req.Header.Set("Origin", pu.Scheme+"://"+pu.Host)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Request.URL, resp.StatusCode, string(b)
}

func unescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// startURL is the first Verity's "Sign in with Fabrikam" button, as its
// sign-in page offers it.
func (f *fedEnv) startURL(c *http.Client, returnTo string) string {
	f.t.Helper()
	_, _, page := f.get(c, "/signin?return_to="+url.QueryEscape(returnTo))
	m := federatedFormRe.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "Sign in with Fabrikam") {
		f.t.Fatalf("no federation button on the sign-in page:\n%s", page)
	}
	rt := returnRe.FindAllStringSubmatch(page, -1)
	return f.srv.URL + m[1] + "?return_to=" + url.QueryEscape(unescape(rt[len(rt)-1][1]))
}

// atIDP signs bob in on the provider's sign-in page (and, when the
// provider asks for a second factor, enrolls or uses an authenticator)
// and returns where the browser ended.
func (f *fedEnv) atIDP(c *http.Client, u *url.URL, status int, page string) (*url.URL, int, string) {
	f.t.Helper()
	if u.Host != strings.TrimPrefix(f.idp.issuer, "https://") || u.Path != "/signin" || status != http.StatusOK {
		f.t.Fatalf("expected the provider's sign-in page, got %s (%d):\n%s", u, status, page)
	}
	return post(f.t, c, page, f.idp.issuer+"/signin", url.Values{"username": {bobUPN}, "password": {bobPW}})
}

// signIn runs a whole federated sign-in from the first Verity's button in
// browser c and returns where it ended.
func (f *fedEnv) signIn(c *http.Client) (*url.URL, int, string) {
	f.t.Helper()
	u, status, page := fetch(f.t, c, f.startURL(c, "/signin/session"))
	return f.atIDP(c, u, status, page)
}

func (f *fedEnv) users(t *testing.T) []*directory.User {
	t.Helper()
	objs, err := f.st.List(context.Background(), directory.KindUser, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*directory.User
	for _, o := range objs {
		u, err := directory.Users.FromObject(o)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func (f *fedEnv) members(t *testing.T, group string) []string {
	t.Helper()
	o, err := f.st.Get(context.Background(), directory.KindGroup, group)
	if err != nil {
		t.Fatal(err)
	}
	g, err := directory.Groups.FromObject(o)
	if err != nil {
		t.Fatal(err)
	}
	return g.Members
}

func (f *fedEnv) lastEvent(t *testing.T) signin.Event {
	t.Helper()
	evs := f.events()
	if len(evs) == 0 {
		t.Fatal("no sign-in event")
	}
	return evs[len(evs)-1]
}

func auditActions(t *testing.T, st store.Store, prefix string) []store.AuditEvent {
	t.Helper()
	evs, err := st.ListAudit(context.Background(), store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEvent
	for i := len(evs) - 1; i >= 0; i-- {
		if strings.HasPrefix(evs[i].Action, prefix) {
			out = append(out, evs[i])
		}
	}
	return out
}

// callbackURL runs a federated sign-in in c up to the moment the provider
// sends the browser back, and returns that callback URL unvisited.
func (f *fedEnv) callbackURL(c *http.Client, tamper func(authorize *url.URL)) *url.URL {
	f.t.Helper()
	start := f.startURL(c, "/signin/session")
	stop := stopAt(c, "/oauth2/authorize")
	resp, err := stop.Get(start)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	authorize, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || authorize.Path != "/oauth2/authorize" {
		f.t.Fatalf("start answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if tamper != nil {
		tamper(authorize)
	}
	cb := stopAt(c, "/signin/federated/callback")
	u, status, page := fetch(f.t, cb, authorize.String())
	if u.Path == "/signin" {
		f.atIDP(cb, u, status, page) // the redirect to the callback stops it
	}
	resp, err = cb.Get(authorize.String())
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path != "/signin/federated/callback" {
		f.t.Fatalf("the provider answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc
}

func (f *fedEnv) wantRefused(t *testing.T, c *http.Client, cb string, status, code int, reason string) {
	t.Helper()
	u, got, page := fetch(t, c, cb)
	if got != status || u.Path != "/signin/federated/callback" || !strings.Contains(page, "Correlation ID") {
		t.Fatalf("callback answered %s %d; want %d:\n%s", u, got, status, page)
	}
	ev := f.lastEvent(t)
	if ev.Status.ErrorCode != code || !strings.Contains(ev.Status.FailureReason, reason) || ev.SessionID != "" {
		t.Fatalf("logged as %d %q; want %d %q", ev.Status.ErrorCode, ev.Status.FailureReason, code, reason)
	}
	if path, _, _ := f.get(c, "/signin/session"); path != "/signin" {
		t.Fatal("a refused federated sign-in has a session")
	}
	if strings.Contains(page, ev.Status.FailureReason) && ev.Status.FailureReason != "" {
		t.Errorf("the page shows the log's reason %q", ev.Status.FailureReason)
	}
}
