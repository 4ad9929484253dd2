package signin_test

import (
	"bytes"
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

	"github.com/pquerna/otp/totp"

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

// TestFederatedSignInProvisionsThenLinks: bob signs in to the first
// Verity through the second; the first sign-in provisions him with the
// mapped groups, the next finds him by the link (not by name) and brings
// the mapped groups in line with the token.
func TestFederatedSignInProvisionsThenLinks(t *testing.T) {
	t.Parallel()
	f := newFedEnv(t, nil, nil)
	c := f.browser()
	u, status, page := f.signIn(c)
	if u.Host != strings.TrimPrefix(f.srv.URL, "https://") || u.Path != "/signin/session" || status != http.StatusOK ||
		!strings.Contains(page, "Signed in as <strong>"+bobUPN+"</strong>") {
		t.Fatalf("federated sign-in ended at %s (%d):\n%s", u, status, page)
	}
	users := f.users(t)
	var bob *directory.User
	for _, x := range users {
		if x.UserPrincipalName == bobUPN {
			bob = x
		}
	}
	if bob == nil || bob.DisplayName != bobName || bob.Mail != bobUPN || !bob.Enabled() || bob.CreatedDateTime == nil {
		t.Fatalf("provisioned user %+v among %d", bob, len(users))
	}
	if m := f.members(t, engineersID); len(m) != 1 || m[0] != bob.ID {
		t.Errorf("Engineers = %v, want bob", m)
	}
	if m := f.members(t, adminsID); len(m) != 0 {
		t.Errorf("Admins = %v, want nobody", m)
	}
	ev := f.lastEvent(t)
	if ev.Status.ErrorCode != 0 || ev.UserID != bob.ID || ev.UserPrincipalName != bobUPN || ev.AppID != appID || ev.SessionID == "" ||
		len(ev.AuthenticationDetails) != 1 || ev.AuthenticationDetails[0].AuthenticationMethod != "Federated identity provider" ||
		ev.AuthenticationDetails[0].AuthenticationMethodDetail != "Fabrikam ("+f.idp.issuer+")" || !ev.AuthenticationDetails[0].Succeeded ||
		strings.Join(ev.AuthenticationMethodsUsed, ",") != "fed" || ev.AuthenticationRequirement != "singleFactorAuthentication" {
		t.Fatalf("sign-in logged as %+v", ev)
	}
	prov := auditActions(t, f.st, "identityProviders.provisionUser")
	if len(prov) != 1 || prov[0].Actor != bob.ID || !strings.Contains(string(prov[0].Details), engineersID) {
		t.Fatalf("provisioning audit %+v", prov)
	}

	// Again, in a new browser, with other groups: the same user, linked.
	f.idp.setGroups("fabrikam-admins", "unmapped")
	c2 := f.browser()
	u, status, page = f.signIn(c2)
	if u.Path != "/signin/session" || status != http.StatusOK {
		t.Fatalf("second sign-in ended at %s (%d):\n%s", u, status, page)
	}
	if n := len(f.users(t)); n != len(users) {
		t.Fatalf("%d users after the second sign-in, %d before: bob was provisioned twice", n, len(users))
	}
	if ev := f.lastEvent(t); ev.UserID != bob.ID || ev.Status.ErrorCode != 0 {
		t.Fatalf("second sign-in logged as %+v", ev)
	}
	if m := f.members(t, adminsID); len(m) != 1 || m[0] != bob.ID {
		t.Errorf("Admins = %v, want bob", m)
	}
	if m := f.members(t, engineersID); len(m) != 0 {
		t.Errorf("Engineers = %v, want nobody: the provider owns the mapped groups", m)
	}
	if sync := auditActions(t, f.st, "identityProviders.syncGroups"); len(sync) != 1 || !strings.Contains(string(sync[0].Details), `"removedFromGroups":["`+engineersID+`"]`) {
		t.Fatalf("group sync audit %+v", sync)
	}

	// A user renamed in the first Verity is still found by the link.
	bob.DisplayName = "Robert Jones"
	bob.UserPrincipalName = "robert@fabrikam.com"
	rev := writeAll(t, f.st, mustObject(t)(directory.Users.Object(bob)))
	if _, err := f.live.WaitFor(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	if u, _, page = f.signIn(f.browser()); u.Path != "/signin/session" || !strings.Contains(page, "robert@fabrikam.com") {
		t.Fatalf("after a rename the sign-in ended at %s:\n%s", u, page)
	}

	// Nothing secret in the logs, the sign-in log or the audit log.
	logs := f.logs.String()
	var audit bytes.Buffer
	for _, ev := range auditActions(t, f.st, "") {
		audit.Write(ev.Details)
	}
	for _, s := range []string{f.idp.clientSecret, bobPW} {
		if strings.Contains(logs, s) || strings.Contains(audit.String(), s) {
			t.Errorf("a log holds a secret (%q...)", s[:4])
		}
	}
}

// TestFederatedDomainHint: a user name of a routed domain, without a
// password, goes to the provider with the name as login_hint; so does an
// application's login_hint.
func TestFederatedDomainHint(t *testing.T) {
	t.Parallel()
	f := newFedEnv(t, nil, nil)
	c := f.browser()
	_, _, page := f.get(c, "/signin?return_to=/signin/session")
	u, status, idpPage := post(t, c, page, f.srv.URL+"/signin", url.Values{"username": {"Bob@Fabrikam.com"}, "password": {""}})
	if u.Host != strings.TrimPrefix(f.idp.issuer, "https://") || u.Path != "/signin" || status != http.StatusOK ||
		!strings.Contains(idpPage, `value="bob@fabrikam.com"`) {
		t.Fatalf("the domain hint went to %s (%d):\n%s", u, status, idpPage)
	}
	if u, _, page = f.atIDP(c, u, status, idpPage); u.Path != "/signin/session" || !strings.Contains(page, bobUPN) {
		t.Fatalf("after the provider: %s\n%s", u, page)
	}
	// Another domain gets the password form's answer.
	_, _, page = f.get(c, "/signin?return_to=/signin/session")
	if _, status, _ := post(t, c, page, f.srv.URL+"/signin", url.Values{"username": {"carol@contoso.com"}, "password": {""}}); status != http.StatusBadRequest {
		t.Fatalf("an unrouted name without a password: %d", status)
	}
	c2 := f.browser()
	if u, _, _ := fetch(t, c2, f.srv.URL+"/signin?login_hint=bob%40fabrikam.com&return_to=/signin/session"); u.Host != strings.TrimPrefix(f.idp.issuer, "https://") {
		t.Fatalf("login_hint of a routed domain stayed at %s", u)
	}
}

const requireMFAForAll = `{"displayName": "Require MFA", "state": "enabled",
	"conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
	"grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`

// TestFederatedConditionalAccess: the first Verity's policies decide. A
// block on a mapped group blocks the provisioned user at once; an MFA
// policy asks for Verity's own second factor even when the provider did
// MFA, unless the provider's mfaClaim rule trusts it.
func TestFederatedConditionalAccess(t *testing.T) {
	t.Parallel()
	t.Run("block by mapped group", func(t *testing.T) {
		t.Parallel()
		f := newFedEnv(t, nil, nil, policy(t, "f0000000-0000-4000-8000-00000000fe01", `{"displayName": "Block engineers", "state": "enabled",
			"conditions": {"users": {"includeGroups": ["`+engineersID+`"]}, "applications": {"includeApplications": ["All"]}},
			"grantControls": {"operator": "OR", "builtInControls": ["block"]}}`))
		c := f.browser()
		u, status, page := f.signIn(c)
		if status != http.StatusForbidden || !strings.Contains(page, "You cannot access this right now") || strings.Contains(page, "Block engineers") {
			t.Fatalf("blocked federated sign-in: %s %d\n%s", u, status, page)
		}
		ev := f.lastEvent(t)
		if ev.Status.ErrorCode != signin.CodeBlockedByCA || ev.ConditionalAccessStatus != "failure" || ev.UserPrincipalName != bobUPN ||
			len(ev.AuthenticationDetails) != 1 || ev.AuthenticationDetails[0].AuthenticationMethodDetail == "" {
			t.Fatalf("logged as %+v", ev)
		}
		if path, _, _ := f.get(c, "/signin/session"); path != "/signin" {
			t.Fatal("a blocked sign-in has a session")
		}
	})

	t.Run("mfa", func(t *testing.T) {
		t.Parallel()
		// Both Verity instances require MFA.
		f := newFedEnv(t, nil, []store.Object{policy(t, "f0000000-0000-4000-8000-00000000fe02", requireMFAForAll)},
			policy(t, "f0000000-0000-4000-8000-00000000fe03", requireMFAForAll))
		c := f.browser()
		u, status, page := fetch(t, c, f.startURL(c, "/signin/session"))
		u, status, page = f.atIDP(c, u, status, page)
		// The provider asks bob to enroll its own authenticator.
		if u.Path != "/signin/enroll" || u.Host == strings.TrimPrefix(f.srv.URL, "https://") {
			t.Fatalf("the provider did not ask for its second factor: %s (%d)\n%s", u, status, page)
		}
		m := secretRe.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no secret on the provider's enrollment page:\n%s", page)
		}
		code, _ := totp.GenerateCode(strings.ReplaceAll(m[1], " ", ""), f.idp.clock.Now())
		_, _, page = post(t, c, page, f.idp.issuer+"/signin/enroll", url.Values{"code": {code}})
		u, status, page = post(t, c, page, f.idp.issuer+"/signin/continue", url.Values{})
		// Back at the first Verity, the provider's MFA does not count.
		if u.Host != strings.TrimPrefix(f.srv.URL, "https://") || u.Path != "/signin/enroll" || status != http.StatusOK {
			t.Fatalf("without mfaClaim the first Verity did not ask for its own factor: %s (%d)\n%s", u, status, page)
		}
		ev := f.lastEvent(t)
		if ev.Status.ErrorCode != signin.CodeMFARequired || len(ev.AuthenticationDetails) != 1 {
			t.Fatalf("interrupted sign-in logged as %+v", ev)
		}

		// Trusting the provider's amr "mfa" makes its MFA count: the same
		// browser signs in again (single sign-on at the provider).
		f.provider.MFAClaim = &directory.MFAClaim{AMRValues: []string{"mfa"}}
		rev := writeAll(t, f.st, mustObject(t)(directory.IdentityProviders.Object(f.provider)))
		if _, err := f.live.WaitFor(context.Background(), rev); err != nil {
			t.Fatal(err)
		}
		u, status, page = fetch(t, c, f.startURL(c, "/signin/session"))
		if u.Path != "/signin/session" || status != http.StatusOK || !strings.Contains(page, "multifactor") {
			t.Fatalf("with mfaClaim: %s (%d)\n%s", u, status, page)
		}
		ev = f.lastEvent(t)
		if ev.Status.ErrorCode != 0 || ev.AuthenticationRequirement != "multiFactorAuthentication" || len(ev.AuthenticationDetails) != 2 ||
			ev.AuthenticationDetails[1].AuthenticationStepResult != "MFA requirement satisfied by claim in the token" ||
			strings.Join(ev.AuthenticationMethodsUsed, ",") != "fed,mfa" {
			t.Fatalf("trusted MFA logged as %+v", ev)
		}
	})

	t.Run("own second factor after the provider", func(t *testing.T) {
		t.Parallel()
		f := newFedEnv(t, nil, nil, policy(t, "f0000000-0000-4000-8000-00000000fe04", requireMFAForAll))
		c := f.browser()
		u, _, page := f.signIn(c)
		if u.Path != "/signin/enroll" {
			t.Fatalf("MFA policy: %s\n%s", u, page)
		}
		m := secretRe.FindStringSubmatch(page)
		code, _ := totp.GenerateCode(strings.ReplaceAll(m[1], " ", ""), f.clock.Now())
		_, _, page = f.submit(c, page, "/signin/enroll", url.Values{"code": {code}})
		path, _, page := f.submit(c, page, "/signin/continue", url.Values{})
		if path != "/signin/session" || !strings.Contains(page, "multifactor") {
			t.Fatalf("after Verity's own factor: %s\n%s", path, page)
		}
		if ev := f.lastEvent(t); ev.Status.ErrorCode != 0 || ev.AuthenticationRequirement != "multiFactorAuthentication" ||
			strings.Join(ev.AuthenticationMethodsUsed, ",") != "otp,fed,mfa" {
			t.Fatalf("logged as %+v", ev)
		}
	})
}

// TestFederatedSessionStepsUp: an application that asks for a
// multifactor sign-in gets one from a federated session by Verity's own
// second factor (federatedSingleFactor with softwareOath is multifactor).
func TestFederatedSessionStepsUp(t *testing.T) {
	t.Parallel()
	f := newFedEnv(t, nil, nil)
	c := f.browser()
	if u, _, page := f.signIn(c); u.Path != "/signin/session" || strings.Contains(page, "multifactor") {
		t.Fatalf("federated sign-in ended at %s:\n%s", u, page)
	}
	path, _, page := f.get(c, "/app")
	if path != "/signin/enroll" {
		t.Fatalf("an application asking for MFA from a federated session went to %s:\n%s", path, page)
	}
	m := secretRe.FindStringSubmatch(page)
	code, _ := totp.GenerateCode(strings.ReplaceAll(m[1], " ", ""), f.clock.Now())
	_, _, page = f.submit(c, page, "/signin/enroll", url.Values{"code": {code}})
	path, _, page = f.submit(c, page, "/signin/continue", url.Values{})
	if path != "/app" || page != "hello "+bobUPN+" "+signin.ACRMultifactor+" otp,fed,mfa" {
		t.Fatalf("after the step-up: %s %q", path, page)
	}
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

// TestFederatedSignInSecurity: the callback's state, single use, nonce,
// and the ID token's issuer, audience, signature and expiry are all
// checked; a provider's error, an unknown account without provisioning
// and a name held by an unlinked user are refused.
func TestFederatedSignInSecurity(t *testing.T) {
	t.Parallel()
	f := newFedEnv(t, nil, nil)

	t.Run("state mismatch", func(t *testing.T) {
		c := f.browser()
		cb := f.callbackURL(c, nil)
		q := cb.Query()
		good := cb.String()
		q.Set("state", "forged-"+q.Get("state"))
		cb.RawQuery = q.Encode()
		f.wantRefused(t, c, cb.String(), http.StatusBadRequest, signin.CodeFlowExpired, "state")
		// The mismatch spent the attempt: the real answer no longer works.
		f.wantRefused(t, c, good, http.StatusBadRequest, signin.CodeFlowExpired, "No federated sign-in is in progress")
	})

	t.Run("replayed callback", func(t *testing.T) {
		c := f.browser()
		cb := f.callbackURL(c, nil)
		jarURL, _ := url.Parse(f.srv.URL)
		var cookie *http.Cookie
		for _, ck := range c.Jar.Cookies(jarURL) {
			if ck.Name == "__Host-verity-federation" {
				cookie = ck
			}
		}
		if u, status, _ := fetch(t, c, cb.String()); u.Path != "/signin/session" || status != http.StatusOK {
			t.Fatalf("the first use of the callback ended at %s %d", u, status)
		}
		// In another browser (the attacker's link in a victim's), and
		// again with the spent cookie put back.
		f.wantRefused(t, f.browser(), cb.String(), http.StatusBadRequest, signin.CodeFlowExpired, "No federated sign-in is in progress")
		c2 := f.browser()
		c2.Jar.SetCookies(jarURL, []*http.Cookie{cookie})
		f.wantRefused(t, c2, cb.String(), http.StatusBadRequest, signin.CodeFlowExpired, "expired or was already used")
	})

	t.Run("nonce mismatch", func(t *testing.T) {
		c := f.browser()
		cb := f.callbackURL(c, func(authorize *url.URL) {
			q := authorize.Query()
			q.Set("nonce", "an-injected-nonce")
			authorize.RawQuery = q.Encode()
		})
		f.wantRefused(t, c, cb.String(), http.StatusUnauthorized, signin.CodeFederatedTokenInvalid, "nonce")
	})

	for _, tt := range []struct {
		name, reason string
		rewrite      func(claims map[string]any) (map[string]any, *keyring.Keyring)
	}{
		{"wrong issuer", "different provider", func(c map[string]any) (map[string]any, *keyring.Keyring) {
			c["iss"] = "https://evil.example.com"
			return c, f.idp.kr
		}},
		{"wrong audience", "expected audience", func(c map[string]any) (map[string]any, *keyring.Keyring) {
			c["aud"] = "0e0e0e0e-0000-4000-8000-0000000000ff"
			return c, f.idp.kr
		}},
		{"another audience too, no azp", "several audiences", func(c map[string]any) (map[string]any, *keyring.Keyring) {
			c["aud"] = []string{f.idp.clientID, "0e0e0e0e-0000-4000-8000-0000000000ff"}
			delete(c, "azp")
			return c, f.idp.kr
		}},
		{"foreign key", "signature", func(c map[string]any) (map[string]any, *keyring.Keyring) {
			return c, newKeys(t, storetest.OpenSQLite(t))
		}},
		{"expired", "expired", func(c map[string]any) (map[string]any, *keyring.Keyring) {
			c["exp"] = time.Now().Add(-time.Minute).Unix()
			return c, f.idp.kr
		}},
		{"no subject", "no sub claim", func(c map[string]any) (map[string]any, *keyring.Keyring) {
			delete(c, "sub")
			return c, f.idp.kr
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.idp.setRewrite(tt.rewrite)
			defer f.idp.setRewrite(nil)
			c := f.browser()
			cb := f.callbackURL(c, nil)
			f.wantRefused(t, c, cb.String(), http.StatusUnauthorized, signin.CodeFederatedTokenInvalid, tt.reason)
			if ev := f.lastEvent(t); ev.AuthenticationDetails[0].Succeeded || ev.AuthenticationDetails[0].AuthenticationMethodDetail != "Fabrikam ("+f.idp.issuer+")" {
				t.Errorf("the failed step is logged as %+v", ev.AuthenticationDetails)
			}
		})
	}

	t.Run("provider error", func(t *testing.T) {
		c := f.browser()
		cb := f.callbackURL(c, nil)
		q := cb.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		q.Set("error_description", "the user declined\x00")
		cb.RawQuery = q.Encode()
		f.wantRefused(t, c, cb.String(), http.StatusUnauthorized, signin.CodeIdentityProviderError, "access_denied: the user declined?")
	})

	t.Run("forged code", func(t *testing.T) {
		c := f.browser()
		cb := f.callbackURL(c, nil)
		q := cb.Query()
		q.Set("code", "not-a-code-the-provider-issued")
		cb.RawQuery = q.Encode()
		f.wantRefused(t, c, cb.String(), http.StatusBadGateway, signin.CodeIdentityProviderError, "refused the authorization code")
	})

	if t.Failed() {
		return
	}
	logs := f.logs.String()
	if strings.Contains(logs, f.idp.clientSecret) || strings.Contains(logs, "an-injected-nonce") {
		t.Error("a log line holds the client secret or a nonce")
	}
}

// TestFederatedUnknownAccounts: without provisioning an unlinked account
// is refused; with it, a name that an unlinked Verity user holds is
// refused rather than taken over, and a name outside the provider's
// domains is not provisioned.
func TestFederatedUnknownAccounts(t *testing.T) {
	t.Parallel()
	t.Run("provisioning off", func(t *testing.T) {
		t.Parallel()
		f := newFedEnv(t, func(p *directory.IdentityProvider) { p.JITProvisioning = false }, nil)
		u, status, page := f.signIn(f.browser())
		if status != http.StatusForbidden || u.Path != "/signin/federated/callback" || !strings.Contains(page, "Ask your administrator") {
			t.Fatalf("unlinked account without provisioning: %s %d\n%s", u, status, page)
		}
		if ev := f.lastEvent(t); ev.Status.ErrorCode != signin.CodeFederatedUserUnknown || !strings.Contains(ev.Status.FailureReason, "provisioning is off") {
			t.Fatalf("logged as %+v", ev.Status)
		}
		for _, x := range f.users(t) {
			if x.UserPrincipalName == bobUPN {
				t.Fatal("a user was provisioned with provisioning off")
			}
		}
	})
	t.Run("name held by an unlinked user", func(t *testing.T) {
		t.Parallel()
		local := &directory.User{ID: "10ca1000-0000-4000-8000-000000000001", UserPrincipalName: bobUPN, DisplayName: "Local Bob"}
		local.Normalize()
		f := newFedEnv(t, nil, nil, mustObject(t)(directory.Users.Object(local)))
		u, status, page := f.signIn(f.browser())
		if status != http.StatusConflict || u.Path != "/signin/federated/callback" {
			t.Fatalf("a name held by an unlinked user: %s %d\n%s", u, status, page)
		}
		ev := f.lastEvent(t)
		if ev.Status.ErrorCode != signin.CodeFederatedUserUnknown || !strings.Contains(ev.Status.FailureReason, "not linked") || ev.SessionID != "" {
			t.Fatalf("logged as %+v", ev)
		}
		if m := f.members(t, engineersID); len(m) != 0 {
			t.Errorf("the refused sign-in changed Engineers: %v", m)
		}
	})
	t.Run("linked user disabled", func(t *testing.T) {
		t.Parallel()
		f := newFedEnv(t, nil, nil)
		if u, _, _ := f.signIn(f.browser()); u.Path != "/signin/session" {
			t.Fatalf("first sign-in ended at %s", u)
		}
		bob := f.lastEvent(t).UserID
		o, err := f.st.Get(context.Background(), directory.KindUser, bob)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := directory.Users.FromObject(o)
		disabled := false
		u.AccountEnabled = &disabled
		rev := writeAll(t, f.st, mustObject(t)(directory.Users.Object(u)))
		if _, err := f.live.WaitFor(context.Background(), rev); err != nil {
			t.Fatal(err)
		}
		_, status, _ := f.signIn(f.browser())
		if ev := f.lastEvent(t); status != http.StatusForbidden || ev.Status.ErrorCode != signin.CodeDisabled || ev.UserID != bob {
			t.Fatalf("%d, logged as %+v", status, ev.Status)
		}
	})
	t.Run("name outside the provider's domains", func(t *testing.T) {
		t.Parallel()
		f := newFedEnv(t, func(p *directory.IdentityProvider) { p.DomainHints = []string{"contoso.com"} }, nil)
		_, status, _ := f.signIn(f.browser())
		if ev := f.lastEvent(t); status != http.StatusForbidden || ev.Status.ErrorCode != signin.CodeFederatedUserUnknown || !strings.Contains(ev.Status.FailureReason, "domainHints") {
			t.Fatalf("%d, logged as %+v", status, ev.Status)
		}
	})
}
