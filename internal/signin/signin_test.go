package signin_test

import (
	"bytes"
	"context"
	"crypto/rand"
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

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const (
	aliceID  = "a11ce000-0000-4000-8000-000000000001"
	aliceUPN = "alice@contoso.com"
	alicePW  = "correct horse battery staple"
	appID    = "0e0e0e0e-0000-4000-8000-00000000a991"
)

// clock is the service's time, moved by the tests.
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

type env struct {
	t     testing.TB
	st    store.Store
	live  *decision.Live
	svc   *signin.Service
	srv   *httptest.Server
	clock *clock
	logs  *syncBuffer
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

// newEnv starts the sign-in pages over TLS on 127.0.0.1 with a real
// SQLite store, decision snapshot and keyring, and alice with a password.
func newEnv(t testing.TB, objs ...store.Object) *env {
	t.Helper()
	return newEnvWith(t, nil, objs...)
}

// newEnvWith is newEnv with options set by configure.
func newEnvWith(t testing.TB, configure func(*signin.Options), objs ...store.Object) *env {
	t.Helper()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	u := &directory.User{ID: aliceID, UserPrincipalName: aliceUPN, DisplayName: "Alice"}
	u.Normalize()
	uo, err := directory.Users.Object(u)
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, uo)
	if _, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
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
	if err := st.SetCredential(ctx, store.Credential{PrincipalID: aliceID, Type: "password", Hash: h}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
	live, err := decision.NewLive(ctx, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := keyring.Open(ctx, st, master, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	var svc *signin.Service
	pages := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { svc.Handler().ServeHTTP(w, r) })
	mux := http.NewServeMux()
	mux.Handle("/signin", pages)
	mux.Handle("/signin/", pages)
	// /app stands for an application Verity serves: it asks Require for a
	// session good enough for app (an application id), max_age (seconds)
	// and strength ("mfa").
	mux.HandleFunc("/app", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := signin.Requirements{}
		if v := q.Get("max_age"); v != "" {
			d, _ := time.ParseDuration(v + "s")
			req.MaxAge = d
		}
		if q.Get("acr") == "mfa" {
			req.Strength = signin.StrengthMultifactor
		}
		if sess := svc.Require(w, r, q.Get("app"), r.URL.RequestURI(), req); sess != nil {
			io.WriteString(w, "hello "+sess.UPN+" "+sess.ACR())
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	opts := signin.Options{Store: st, Live: live, Sealer: kr, Logger: log, AppID: appID, Now: c.Now, ExternalURL: srv.URL}
	if configure != nil {
		configure(&opts)
	}
	svc, err = signin.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, live: live, svc: svc, srv: srv, clock: c, logs: logs}
}

// browser is a client with its own cookies, dialing from local (an
// address on the loopback network, "" for the default).
func (e *env) browser(local string) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := e.srv.Client()
	tr := c.Transport.(*http.Transport).Clone()
	if local != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		tr.DialContext = d.DialContext
	}
	return &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second}
}

var (
	csrfRe   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	secretRe = regexp.MustCompile(`<p class="secret" id="secret">([A-Z2-7 ]+)</p>`)
	codeRe   = regexp.MustCompile(`<li>([a-z0-9]{5}-[a-z0-9]{5})</li>`)
)

// get fetches a page and returns its final URL path, status and body.
func (e *env) get(c *http.Client, path string) (string, int, string) {
	e.t.Helper()
	resp, err := c.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Request.URL.Path, resp.StatusCode, string(b)
}

// submit posts the form on page (its csrf token included) to path.
func (e *env) submit(c *http.Client, page, path string, fields url.Values) (string, int, string) {
	e.t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		e.t.Fatalf("no csrf token on the page:\n%s", page)
	}
	fields.Set("csrf", m[1])
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.srv.URL)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Request.URL.Path, resp.StatusCode, string(b)
}

// signIn fills the sign-in form.
func (e *env) signIn(c *http.Client, upn, password string) (string, int, string) {
	_, _, page := e.get(c, "/signin?return_to=/signin/session")
	return e.submit(c, page, "/signin", url.Values{"username": {upn}, "password": {password}, "return_to": {"/signin/session"}})
}

// events returns the sign-in log, oldest first.
func (e *env) events() []signin.Event {
	e.t.Helper()
	evs, err := e.st.ListAudit(context.Background(), store.AuditQuery{Action: signin.AuditAction, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]signin.Event, len(evs))
	for i := range evs {
		if err := json.Unmarshal(evs[len(evs)-1-i].Details, &out[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

func policy(t *testing.T, id, js string) store.Object {
	t.Helper()
	p, _, err := access.ParsePolicy([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	p.ID = id
	o, err := access.Object(p)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

const requireMFA = `{"displayName": "Require MFA for everyone", "state": "enabled",
	"conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
	"grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`

func TestPasswordSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.browser("")
	path, status, body := e.signIn(c, aliceUPN, "wrong password entirely")
	if status != http.StatusUnauthorized || !strings.Contains(body, "Your account or password is incorrect.") || path != "/signin" {
		t.Fatalf("wrong password: %s %d\n%s", path, status, body)
	}
	_, status, body2 := e.signIn(c, "nobody@contoso.com", alicePW)
	if status != http.StatusUnauthorized || !strings.Contains(body2, "Your account or password is incorrect.") {
		t.Fatalf("unknown user: %d", status)
	}
	path, status, body = e.signIn(c, "  Alice@Contoso.com ", alicePW)
	if status != http.StatusOK || path != "/signin/session" || !strings.Contains(body, "Signed in as <strong>alice@contoso.com</strong>") {
		t.Fatalf("sign-in: %s %d\n%s", path, status, body)
	}
	// The session cookie is locked down.
	u, _ := url.Parse(e.srv.URL)
	var sess *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "__Host-verity-session" {
			sess = ck
		}
	}
	if sess == nil {
		t.Fatal("no session cookie")
	}
	evs := e.events()
	if len(evs) != 3 {
		t.Fatalf("%d sign-in events, want 3: %+v", len(evs), evs)
	}
	if evs[0].Status.ErrorCode != signin.CodeInvalidCredentials || evs[0].UserID != aliceID {
		t.Errorf("wrong password logged as %+v", evs[0].Status)
	}
	if evs[1].Status.ErrorCode != signin.CodeInvalidCredentials || evs[1].UserID != "" || evs[1].UserPrincipalName != "nobody@contoso.com" {
		t.Errorf("unknown user logged as %+v (user %q)", evs[1].Status, evs[1].UserID)
	}
	ok := evs[2]
	if ok.Status.ErrorCode != 0 || ok.AppID != appID || ok.IPAddress != "127.0.0.1" || ok.ClientAppUsed != "Browser" ||
		ok.AuthenticationRequirement != "singleFactorAuthentication" || ok.ConditionalAccessStatus != "notApplied" || ok.SessionID == "" {
		t.Errorf("success logged as %+v", ok)
	}
	// Sign out ends the session on the server too.
	_, _, page := e.get(c, "/signin/session")
	path, _, _ = e.submit(c, page, "/signin/logout", url.Values{})
	if path != "/signin" {
		t.Fatalf("sign-out landed on %s", path)
	}
	if path, _, _ := e.get(c, "/signin/session"); path != "/signin" {
		t.Fatalf("after sign-out, the session page is %s", path)
	}
	// A forged cookie is no session.
	c2 := e.browser("")
	c2.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-verity-session", Value: strings.Repeat("A", 43)}})
	if path, _, _ := e.get(c2, "/signin/session"); path != "/signin" {
		t.Fatalf("a forged cookie reached %s", path)
	}
}

func TestMFAEnrollmentThenCodesAndRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, policy(t, "f0000000-0000-4000-8000-00000000f003", requireMFA))
	c := e.browser("")
	path, status, page := e.signIn(c, aliceUPN, alicePW)
	if path != "/signin/enroll" || status != http.StatusOK {
		t.Fatalf("MFA required without an authenticator: %s %d\n%s", path, status, page)
	}
	m := secretRe.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `src="data:image/png;base64,`) {
		t.Fatalf("no secret or QR code on the enrollment page:\n%s", page)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	// A wrong code first.
	path, _, page = e.submit(c, page, "/signin/enroll", url.Values{"code": {"000000"}})
	if path != "/signin/enroll" {
		t.Fatalf("a wrong enrollment code went to %s", path)
	}
	if m2 := secretRe.FindStringSubmatch(page); m2 == nil || strings.ReplaceAll(m2[1], " ", "") != secret {
		t.Fatal("the enrollment page changed its secret on a retry")
	}
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	path, status, page = e.submit(c, page, "/signin/enroll", url.Values{"code": {code}})
	codes := codeRe.FindAllStringSubmatch(page, -1)
	if status != http.StatusOK || len(codes) != 10 {
		t.Fatalf("after enrollment: %s %d, %d recovery codes\n%s", path, status, len(codes), page)
	}
	path, _, page = e.submit(c, page, "/signin/continue", url.Values{})
	if path != "/signin/session" || !strings.Contains(page, "multifactor") || !strings.Contains(page, "otp") {
		t.Fatalf("after enrollment the sign-in ends at %s:\n%s", path, page)
	}
	evs := e.events()
	last := evs[len(evs)-1]
	if evs[0].Status.ErrorCode != signin.CodeMFARequired || last.Status.ErrorCode != 0 || last.AuthenticationRequirement != "multiFactorAuthentication" ||
		last.ConditionalAccessStatus != "success" || len(last.AppliedConditionalAccess) != 1 || last.AppliedConditionalAccess[0].Result != "success" {
		t.Fatalf("log: first %+v, last %+v", evs[0].Status, last)
	}

	// Next sign-in: the code of the step already used is refused, the next
	// step's is accepted.
	c2 := e.browser("")
	path, _, page = e.signIn(c2, aliceUPN, alicePW)
	if path != "/signin/mfa" {
		t.Fatalf("second sign-in went to %s", path)
	}
	path, status, page = e.submit(c2, page, "/signin/mfa", url.Values{"code": {code}})
	if status != http.StatusUnauthorized || !strings.Contains(page, "That code didn") {
		t.Fatalf("a reused code: %s %d", path, status)
	}
	e.clock.Add(30 * time.Second)
	next, _ := totp.GenerateCode(secret, e.clock.Now())
	if path, _, _ = e.submit(c2, page, "/signin/mfa", url.Values{"code": {next}}); path != "/signin/session" {
		t.Fatalf("a fresh code went to %s", path)
	}

	// A recovery code works once.
	for i, want := range []string{"/signin/session", "/signin/mfa"} {
		c3 := e.browser("")
		e.signIn(c3, aliceUPN, alicePW)
		_, _, page = e.get(c3, "/signin/mfa?method=recovery")
		path, _, _ = e.submit(c3, page, "/signin/mfa", url.Values{"recovery": {strings.ToUpper(codes[0][1])}})
		if path != want {
			t.Fatalf("recovery code use %d went to %s, want %s", i+1, path, want)
		}
	}

	// Nothing secret reached the logs.
	logs := e.logs.String()
	for _, s := range []string{alicePW, secret, code, next, codes[0][1], codes[1][1]} {
		if strings.Contains(logs, s) {
			t.Fatalf("the logs contain a secret (%q)", s[:3])
		}
	}
	for _, ev := range e.events() {
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), secret) || strings.Contains(string(b), alicePW) {
			t.Fatal("a sign-in event contains a secret")
		}
	}
}

func TestConditionalAccessBlock(t *testing.T) {
	t.Parallel()
	loc := &directory.NamedLocation{ID: "10c00000-0000-4000-8000-000000000001", DisplayName: "Loopback",
		ODataType: directory.ODataIPNamedLocation, IPRanges: []directory.IPRange{{CIDRAddress: "127.0.0.0/8"}}}
	loc.Normalize()
	lo, err := directory.NamedLocations.Object(loc)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, lo, policy(t, "f0000000-0000-4000-8000-00000000f002", `{"displayName": "Block loopback", "state": "enabled",
		"conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]},
			"locations": {"includeLocations": ["10c00000-0000-4000-8000-000000000001"]}},
		"grantControls": {"operator": "OR", "builtInControls": ["block"]}}`))
	c := e.browser("")
	_, status, body := e.signIn(c, aliceUPN, alicePW)
	if status != http.StatusForbidden || !strings.Contains(body, "Correlation ID") || strings.Contains(body, "Block loopback") {
		t.Fatalf("blocked sign-in: %d\n%s", status, body)
	}
	evs := e.events()
	ev := evs[len(evs)-1]
	if ev.Status.ErrorCode != signin.CodeBlockedByCA || ev.ConditionalAccessStatus != "failure" || ev.AppliedConditionalAccess[0].Result != "failure" ||
		len(ev.Location.NamedLocations) != 1 {
		t.Fatalf("blocked sign-in logged as %+v", ev)
	}
	if path, _, _ := e.get(c, "/signin/session"); path != "/signin" {
		t.Fatal("a blocked sign-in has a session")
	}
}

func TestForcedPasswordChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := signin.SetMustChangePassword(context.Background(), e.st, aliceID, true); err != nil {
		t.Fatal(err)
	}
	c := e.browser("")
	path, _, page := e.signIn(c, aliceUPN, alicePW)
	if path != "/signin/password" || !strings.Contains(page, "You need to change your password") || strings.Contains(page, `name="current"`) {
		t.Fatalf("forced change: %s\n%s", path, page)
	}
	_, status, page := e.submit(c, page, "/signin/password", url.Values{"new": {"short"}, "confirm": {"short"}})
	if status != http.StatusBadRequest || !strings.Contains(page, "at least 12 characters") {
		t.Fatalf("a short password: %d", status)
	}
	_, status, page = e.submit(c, page, "/signin/password", url.Values{"new": {alicePW}, "confirm": {alicePW}})
	if status != http.StatusBadRequest || !strings.Contains(page, "not used here before") {
		t.Fatalf("the same password again: %d", status)
	}
	const newPW = "a new passphrase for alice"
	path, _, _ = e.submit(c, page, "/signin/password", url.Values{"new": {newPW}, "confirm": {newPW}})
	if path != "/signin/session" {
		t.Fatalf("after the change: %s", path)
	}
	if _, status, _ := e.signIn(e.browser(""), aliceUPN, alicePW); status != http.StatusUnauthorized {
		t.Fatal("the old password still works")
	}
	if path, _, _ := e.signIn(e.browser(""), aliceUPN, newPW); path != "/signin/session" {
		t.Fatalf("the new password leads to %s (a change must not be asked again)", path)
	}
}

func TestLockoutSparesFamiliarNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	home := e.browser("127.0.0.1")
	if path, _, _ := e.signIn(home, aliceUPN, alicePW); path != "/signin/session" {
		t.Fatal("first sign-in failed")
	}
	// An attacker on another network guesses until locked out.
	attacker := e.browser("127.0.1.2")
	for range 10 {
		e.signIn(attacker, aliceUPN, "guess guess guess")
	}
	if _, status, body := e.signIn(attacker, aliceUPN, alicePW); status != http.StatusTooManyRequests || !strings.Contains(body, "temporarily locked") {
		t.Fatalf("the attacker's network is not locked out: %d", status)
	}
	// Alice, at home, is not.
	if path, _, _ := e.signIn(e.browser("127.0.0.1"), aliceUPN, alicePW); path != "/signin/session" {
		t.Fatalf("the user was locked out at home: %s", path)
	}
	evs := e.events()
	if evs[len(evs)-2].Status.ErrorCode != signin.CodeLocked {
		t.Fatalf("the locked attempt logged as %+v", evs[len(evs)-2].Status)
	}
}

func TestSignInFrequencyEndsTheSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, policy(t, "f0000000-0000-4000-8000-00000000f001", `{"displayName": "Hourly", "state": "enabled",
		"conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
		"sessionControls": {"signInFrequency": {"isEnabled": true, "type": "hours", "value": 1, "frequencyInterval": "timeBased"}}}`))
	c := e.browser("")
	if path, _, _ := e.signIn(c, aliceUPN, alicePW); path != "/signin/session" {
		t.Fatal("sign-in failed")
	}
	e.clock.Add(59 * time.Minute)
	if path, _, _ := e.get(c, "/signin/session"); path != "/signin/session" {
		t.Fatal("the session ended before the sign-in frequency")
	}
	e.clock.Add(2 * time.Minute)
	if path, _, _ := e.get(c, "/signin/session"); path != "/signin" {
		t.Fatal("the session outlived the sign-in frequency")
	}
}

func TestFormsRefuseForgery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.browser("")
	_, _, page := e.get(c, "/signin")
	// No token.
	resp, err := c.PostForm(e.srv.URL+"/signin", url.Values{"username": {aliceUPN}, "password": {alicePW}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a form without a token: %d", resp.StatusCode)
	}
	// A token, but posted from another site.
	m := csrfRe.FindStringSubmatch(page)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/signin", strings.NewReader(url.Values{"username": {aliceUPN}, "password": {alicePW}, "csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a cross-site form: %d", resp.StatusCode)
	}
	// The pages forbid framing and scripts.
	resp, _ = c.Get(e.srv.URL + "/signin")
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	// An open redirect is not possible through return_to.
	path, _, _ := e.submit(c, page, "/signin", url.Values{"username": {aliceUPN}, "password": {alicePW}, "return_to": {"//evil.example/x"}})
	if path != "/signin/session" {
		t.Fatalf("return_to //evil.example led to %s", path)
	}
}

const otherApp = "0e0e0e0e-0000-4000-8000-00000000b992"

func TestRequireStepsUpPerApplication(t *testing.T) {
	t.Parallel()
	e := newEnv(t, policy(t, "f0000000-0000-4000-8000-00000000f004", `{"displayName": "MFA for the other app", "state": "enabled",
		"conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["`+otherApp+`"]}},
		"grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`))
	c := e.browser("")
	// No session: the application sends the browser to sign in, and gets
	// it back.
	path, _, body := e.get(c, "/app?app="+appID)
	if path != "/signin" {
		t.Fatalf("without a session /app went to %s", path)
	}
	path, _, body = e.submit(c, body, "/signin", url.Values{"username": {aliceUPN}, "password": {alicePW}, "return_to": {"/app?app=" + appID}})
	if path != "/app" || !strings.HasPrefix(body, "hello alice@contoso.com "+signin.ACRPassword) {
		t.Fatalf("after sign-in: %s %q", path, body)
	}
	// The other application needs MFA: step up, then back.
	path, _, body = e.get(c, "/app?app="+otherApp)
	if path != "/signin/enroll" {
		t.Fatalf("the MFA application went to %s", path)
	}
	secret := strings.ReplaceAll(secretRe.FindStringSubmatch(body)[1], " ", "")
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	_, _, body = e.submit(c, body, "/signin/enroll", url.Values{"code": {code}})
	path, _, body = e.submit(c, body, "/signin/continue", url.Values{})
	if path != "/app" || !strings.HasPrefix(body, "hello alice@contoso.com "+signin.ACRMultifactor) {
		t.Fatalf("after step-up: %s %q", path, body)
	}
	// The stepped-up session replaced the first: one session is left.
	recs, err := e.st.ListRecords(context.Background(), "session", aliceID, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d sessions after step-up, want 1 (%v)", len(recs), err)
	}
	// max_age: a password entered too long ago means signing in again.
	e.clock.Add(10 * time.Minute)
	if path, _, _ := e.get(c, "/app?app="+appID+"&max_age=300"); path != "/signin" {
		t.Fatalf("max_age exceeded went to %s", path)
	}
	if path, _, body := e.get(c, "/app?app="+appID+"&max_age=3600&acr=mfa"); path != "/app" || !strings.HasPrefix(body, "hello") {
		t.Fatalf("an acceptable session was refused: %s %q", path, body)
	}
	evs := e.events()
	last := evs[len(evs)-1]
	if last.IsInteractive || last.Status.ErrorCode != 0 || last.AppID != appID {
		t.Fatalf("single sign-on logged as %+v", last)
	}
}

// TestAssignmentRequired: an application whose service principal requires
// assignment admits only users with Verity App User (the data action
// Verity.Apps/apps/access/action) at /apps/{appId}, through a group too.
func TestAssignmentRequired(t *testing.T) {
	t.Parallel()
	sp := &directory.ServicePrincipal{ID: "5e000000-0000-4000-8000-00000000b992", AppID: otherApp, DisplayName: "Payroll", AppRoleAssignmentRequired: true}
	sp.Normalize()
	spo, err := directory.ServicePrincipals.Object(sp)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, spo)
	c := e.browser("")
	if path, _, _ := e.signIn(c, aliceUPN, alicePW); path != "/signin/session" {
		t.Fatal("sign-in to Verity itself needs no assignment")
	}
	path, status, body := e.get(c, "/app?app="+otherApp)
	if status != http.StatusForbidden || !strings.Contains(body, "has not given you access") || path != "/app" {
		t.Fatalf("an unassigned user reached %s (%d):\n%s", path, status, body)
	}
	if ev := e.events()[len(e.events())-1]; ev.Status.ErrorCode != signin.CodeNotAssigned || ev.AppID != otherApp {
		t.Fatalf("logged as %+v", ev.Status)
	}
	// Assign the role to a group alice is in.
	g := &directory.Group{GraphGroup: directory.GraphGroup{ID: "9a000000-0000-4000-8000-0000000000a1", DisplayName: "Payroll users"}, Members: []string{aliceID}}
	g.Normalize()
	a := rbac.Assignment{ID: "0a000000-0000-4000-8000-0000000000b1", PrincipalID: g.ID, RoleDefinitionID: "Verity App User", Scope: "/apps/" + otherApp}
	a.Normalize()
	ab, _ := json.Marshal(a)
	rev, err := e.st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		if err := tx.Create(ctx, must(directory.Groups.Object(g))); err != nil {
			return err
		}
		return tx.Create(ctx, store.Object{Kind: rbac.Kind, ID: a.ID, Body: ab})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.live.WaitFor(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	if path, _, body := e.get(c, "/app?app="+otherApp); path != "/app" || !strings.HasPrefix(body, "hello alice@contoso.com") {
		t.Fatalf("an assigned user reached %s: %q", path, body)
	}
}

func must(o store.Object, err error) store.Object {
	if err != nil {
		panic(err)
	}
	return o
}
