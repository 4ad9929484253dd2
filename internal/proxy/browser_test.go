package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/verityhq/verity/internal/proxy"
	"github.com/verityhq/verity/internal/store"
)

// The browser tests drive Debian's Chromium through a proxied application:
// payroll.example.com resolves to the proxy's listener, sign-in is Verity's
// own host, and every hop between them — redirects, cookies on two sites,
// forms — is the browser's, as it would be for a person.

// browserBudget bounds one browser test from start to end.
const browserBudget = 60 * time.Second

// tab is one headless Chromium, for one test, on one env.
type tab struct {
	t   *testing.T
	e   *env
	ctx context.Context

	mu      sync.Mutex
	console []string // what the browser logged: refusals such as CSP's are here
}

// newTab starts a headless Chromium that reaches payroll.example.com at
// the proxy and accepts the test servers' certificates.
func newTab(t *testing.T, e *env) *tab {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium binary: the proxy's browser tests need it (apt-get install chromium; make test installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests may run as root in a container
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", "MAP "+appHost+" 127.0.0.1"),
	)
	// Everything the browser does ends with the test's budget.
	bctx, cancel := context.WithTimeout(context.Background(), browserBudget)
	t.Cleanup(cancel)
	actx, cancel2 := chromedp.NewExecAllocator(bctx, opts...)
	t.Cleanup(cancel2)
	ctx, cancel3 := chromedp.NewContext(actx)
	t.Cleanup(cancel3)
	// Start the browser now, bound to this context: the contexts of single
	// steps (with their own timeouts) must not own it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	b := &tab{t: t, e: e, ctx: ctx}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m.String())
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *tab) consoleLog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.console, "\n")
}

// do runs steps within 15 seconds; on failure it shows where the browser
// was and what it showed.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	c, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		c2, cancel2 := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel2()
		page, perr := chromedp.Run(c2, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		b.t.Fatalf("%s: %v\npage (%v): %s\nconsole:\n%s", what, err, perr, page, b.consoleLog())
	}
}

// eval evaluates a JavaScript expression in the page.
func (b *tab) eval(expr string) string {
	b.t.Helper()
	c, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text is the visible text of the first element matching sel.
func (b *tab) text(sel chromedp.CSS) string {
	b.t.Helper()
	c, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// password fills and submits the sign-in form as alice.
func (b *tab) password() {
	b.t.Helper()
	b.do("fill in the sign-in form", chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), aliceUPN), chromedp.SendKeys(chromedp.ID("password"), alicePW),
		chromedp.Submit(chromedp.ID("password")))
}

// app waits until the browser shows the upstream's answer for path (a
// path under the route) and checks it is exactly there on the proxy host.
func (b *tab) app(path string) {
	b.t.Helper()
	want := "upstream /internal/" + strings.TrimPrefix(path, "/payroll/")
	b.do("reach the application", chromedp.WaitVisible(chromedp.Search(`//body[contains(., "`+want+`")]`)))
	if href, body := b.eval(`location.href`), b.eval(`document.body.innerText`); href != b.e.base+path || strings.TrimSpace(body) != want {
		b.t.Fatalf("the browser ended at %s showing %q, want %s showing %q", href, body, b.e.base+path, want)
	}
}

// at checks that the browser is on Verity's sign-in host at path.
func (b *tab) at(path string) {
	b.t.Helper()
	if got := b.eval(`location.origin + location.pathname`); got != b.e.signin.URL+path {
		b.t.Fatalf("the browser is at %s, want %s", got, b.e.signin.URL+path)
	}
}

// amr returns the amr of the assertion the upstream got with the last
// request for upstreamPath, verified with the keyring.
func (e *env) amr(upstreamPath string) []string {
	e.t.Helper()
	e.mu.Lock()
	var got *http.Request
	for _, r := range e.seen {
		if r.URL.Path == upstreamPath {
			got = r
		}
	}
	e.mu.Unlock()
	if got == nil {
		e.t.Fatalf("the upstream got no request for %s", upstreamPath)
	}
	payload, _, err := e.kr.Verify(context.Background(), got.Header.Get(proxy.AssertionHeader))
	if err != nil {
		e.t.Fatalf("the assertion of %s: %v", upstreamPath, err)
	}
	var claims struct {
		Sub string   `json:"sub"`
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub != aliceID {
		e.t.Fatalf("assertion claims %s (%v)", payload, err)
	}
	return claims.AMR
}

const mfaPolicyID = "f0000000-0000-4000-8000-0000000000f1"

// mfaPolicy requires MFA of alice for the route's application.
func mfaPolicy(t testing.TB, state string) store.Object {
	return policyObject(t, mfaPolicyID, `{"displayName":"MFA for payroll","state":"`+state+`",
		"conditions":{"users":{"includeUsers":["`+aliceID+`"]},"applications":{"includeApplications":["`+appID+`"]},"clientAppTypes":["all"]},
		"grantControls":{"operator":"OR","builtInControls":["mfa"]}}`)
}

var secretRe = regexp.MustCompile(`<p class="secret" id="secret">([A-Z2-7 ]+)</p>`)

// TestBrowserStepUpOnSignIn: a policy requires MFA for the application;
// the browser opens a page of it, signs in with the password, enrolls an
// authenticator on the spot (alice has none) and lands on the page it
// asked for, whose upstream gets an assertion of a multifactor sign-in.
func TestBrowserStepUpOnSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, mfaPolicy(t, "enabled"))
	b := newTab(t, e)

	b.do("open the application", chromedp.Navigate(e.base+"/payroll/reports"))
	b.at("/signin")
	b.password()
	b.do("reach the enrollment page", chromedp.WaitVisible(chromedp.ID("secret")))
	b.at("/signin/enroll")
	secret := strings.ReplaceAll(b.text("#secret"), " ", "")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.do("enroll", chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.CSS("ul.codes")))
	b.do("continue past the recovery codes", chromedp.Click(chromedp.CSS("button[type=submit]")))
	b.app("/payroll/reports")

	if amr := e.amr("/internal/reports"); !slices.Contains(amr, "mfa") || !slices.Contains(amr, "pwd") {
		t.Errorf("the upstream's assertion has amr %v, want pwd and mfa", amr)
	}
	evs := e.decisions(1)
	if len(evs) != 1 || evs[0]["outcome"] != "allow" || evs[0]["path"] != "/payroll/reports" || evs[0]["userId"] != aliceID {
		t.Errorf("audited decisions %v, want one allow of /payroll/reports", evs)
	}
}

// TestBrowserStepUpOfSession: alice, who has an authenticator, signs in
// with her password alone while nothing asks for more, and the
// application loads. Then a policy requiring MFA is switched on: the next
// visit is challenged and the browser is taken to the second factor only
// — no password again — and back to the page.
func TestBrowserStepUpOfSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, mfaPolicy(t, "disabled"))
	secret := e.enrollTOTP()
	b := newTab(t, e)

	b.do("open the application", chromedp.Navigate(e.base+"/payroll/reports"))
	b.at("/signin")
	b.password()
	b.app("/payroll/reports")
	handedOver := time.Now()
	if amr := e.amr("/internal/reports"); slices.Contains(amr, "mfa") {
		t.Fatalf("a password sign-in's assertion has amr %v", amr)
	}

	// The policy changes right after the handoff: the loop guard (a
	// challenge just after a handoff is refused) does not apply, since the
	// decision changed with the snapshot, not with the session.
	e.write(mfaPolicy(t, "enabled"))
	if time.Since(handedOver) > 5*time.Second {
		t.Log("the policy changed more than five seconds after the handoff; the loop guard was not exercised")
	}

	b.do("open the application again", chromedp.Navigate(e.base+"/payroll/reports"),
		chromedp.WaitVisible(chromedp.ID("code")))
	b.at("/signin/mfa")
	if n := b.eval(`String(document.querySelectorAll("#password, #username").length)`); n != "0" {
		t.Fatalf("the step-up asks for the user name or password again (%s fields)", n)
	}
	if h := b.text("h1"); h != "Verify your identity" {
		t.Fatalf("the step-up page asks %q", h)
	}
	// The code of the next time step: the one enrollment used is spent.
	code, err := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b.do("enter the code", chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Submit(chromedp.ID("code")))
	b.app("/payroll/reports")
	if amr := e.amr("/internal/reports"); !slices.Contains(amr, "mfa") || !slices.Contains(amr, "otp") {
		t.Errorf("after step-up the upstream's assertion has amr %v, want otp and mfa", amr)
	}

	// The browser's decisions on the page: allowed with the password,
	// challenged once the policy was on, allowed after the step-up.
	var mine []map[string]any
	for _, ev := range e.decisions(4) {
		if ev["path"] == "/payroll/reports" {
			mine = append(mine, ev)
		}
	}
	if len(mine) != 3 {
		t.Fatalf("audited decisions of /payroll/reports: %v, want 3", mine)
	}
	pwd, challenge, allow := mine[0], mine[1], mine[2]
	if pwd["outcome"] != "allow" || challenge["outcome"] != "challenge" || allow["outcome"] != "allow" {
		t.Fatalf("audited outcomes %v, %v, %v; want allow, challenge, allow", pwd["outcome"], challenge["outcome"], allow["outcome"])
	}
	if challenge["code"] != float64(50074) || challenge["sessionId"] != pwd["sessionId"] || !appliedPolicy(challenge, mfaPolicyID, "failure") {
		t.Errorf("the challenge was audited as %v", challenge)
	}
	if allow["userId"] != aliceID || !appliedPolicy(allow, mfaPolicyID, "success") {
		t.Errorf("the allow after the step-up was audited as %v", allow)
	}
}

// appliedPolicy reports whether the audit record ev lists policy id with
// result.
func appliedPolicy(ev map[string]any, id, result string) bool {
	ps, _ := ev["appliedConditionalAccessPolicies"].([]any)
	for _, p := range ps {
		if m, _ := p.(map[string]any); m["id"] == id && m["result"] == result {
			return true
		}
	}
	return false
}

// enrollTOTP gives alice an authenticator the way she would get one: the
// MFA policy on, a sign-in through the proxy from another client that
// enrolls on the spot; then the policy is off again. It returns the
// authenticator's secret.
func (e *env) enrollTOTP() string {
	e.t.Helper()
	e.write(mfaPolicy(e.t, "enabled"))
	c := e.browser()
	resp, page := e.signIn(c, e.base+"/payroll/")
	m := secretRe.FindStringSubmatch(page)
	if resp.Request.URL.Path != "/signin/enroll" || m == nil {
		e.t.Fatalf("the first sign-in with MFA required went to %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	resp, page = e.post(c, page, "/signin/enroll", url.Values{"code": {code}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `class="codes"`) {
		e.t.Fatalf("enrollment: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	resp, page = e.post(c, page, "/signin/continue", url.Values{})
	if resp.Request.URL.String() != e.base+"/payroll/" || page != "upstream /internal/" {
		e.t.Fatalf("after enrollment: %d %q at %s", resp.StatusCode, page, resp.Request.URL)
	}
	e.write(mfaPolicy(e.t, "disabled"))
	return secret
}

// post submits a sign-in form of page (its csrf token included) to path
// with c.
func (e *env) post(c *http.Client, page, path string, fields url.Values) (*http.Response, string) {
	e.t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		e.t.Fatalf("no csrf token on the page:\n%s", page)
	}
	fields.Set("csrf", m[1])
	req, _ := http.NewRequest(http.MethodPost, e.signin.URL+path, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.signin.URL)
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return resp, b.String()
}
