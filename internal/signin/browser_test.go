package signin_test

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// chromium starts a headless Chromium (Debian's package) for one test.
func chromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the browser tests need Chromium: apt-get install chromium (make test installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests may run as root in a container
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// Start the browser now, bound to this context: the contexts of single
	// steps (with their own timeouts) must not own it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// TestBrowserPasswordAndTOTP signs in with a real browser: the password,
// enrolling an authenticator because a policy requires MFA (the secret read
// off the page as a person would type it), the recovery codes, the session
// page; then signs out and back in with a code. The pages run no script.
func TestBrowserPasswordAndTOTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, policy(t, "f0000000-0000-4000-8000-00000000f005", requireMFA))
	ctx := chromium(t)
	text := func(sel chromedp.CSS) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	path := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Do(c, steps...); err != nil {
			c2, cancel2 := context.WithTimeout(ctx, 5*time.Second)
			defer cancel2()
			html, herr := chromedp.Run(c2, chromedp.Evaluate[string](`location.href + "\n" + document.documentElement.outerHTML`))
			t.Fatalf("%s: %v\npage (%v): %s", what, err, herr, html)
		}
	}
	signInForm := func() {
		do("wait for the form", chromedp.WaitReady(chromedp.CSS("body")), chromedp.WaitVisible(chromedp.ID("username")))
		do("type the user name", chromedp.SendKeys(chromedp.ID("username"), aliceUPN))
		do("type the password", chromedp.SendKeys(chromedp.ID("password"), alicePW))
		do("submit", chromedp.Submit(chromedp.ID("password")))
	}
	signedIn := chromedp.Search(`//p[contains(., "Signed in as")]`)

	do("open the sign-in page", chromedp.Navigate(e.srv.URL+"/signin?return_to=/signin/session"))
	signInForm()
	do("reach the enrollment page", chromedp.WaitVisible(chromedp.ID("secret")))
	secret := strings.ReplaceAll(text("#secret"), " ", "")
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	do("enroll",
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.CSS("ul.codes")),
	)
	codes := text("ul.codes")
	do("continue", chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(signedIn))
	page := text("main")
	if p := path(); p != "/signin/session" || !strings.Contains(page, aliceUPN) || !strings.Contains(page, "multifactor") {
		t.Fatalf("after enrollment: %s %q", p, page)
	}
	if n := len(regexp.MustCompile(`[a-z0-9]{5}-[a-z0-9]{5}`).FindAllString(codes, -1)); n != 10 {
		t.Fatalf("%d recovery codes shown", n)
	}

	// Sign out, then in again with the next code.
	e.clock.Add(30 * time.Second)
	next, _ := totp.GenerateCode(secret, e.clock.Now())
	do("sign out", chromedp.Click(chromedp.ID("signout")))
	signInForm()
	do("reach the code page", chromedp.WaitVisible(chromedp.ID("code")))
	if h := text("h1"); h != "Verify your identity" {
		t.Fatalf("second sign-in asks %q", h)
	}
	do("enter the code", chromedp.SendKeys(chromedp.ID("code"), next), chromedp.Submit(chromedp.ID("code")), chromedp.WaitVisible(signedIn))
	if p := path(); p != "/signin/session" {
		t.Fatalf("second sign-in ended at %s", p)
	}
	// Script cannot read Verity's cookies: they are HttpOnly.
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cookies, "verity") {
		t.Fatalf("script can read a Verity cookie: %q", cookies)
	}
}

// TestBrowserPasskeys registers a passkey with Chromium's virtual
// authenticator (CTAP2, resident keys, user verification), signs in with
// it and no user name or password, then uses it as the second factor
// after a password.
func TestBrowserPasskeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, policy(t, "f0000000-0000-4000-8000-00000000f006", requireMFA))
	// A passkey's relying party is a domain, never an address: browse by name.
	base := strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)
	ctx := chromium(t)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Do(c, steps...); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
			t.Fatalf("%s: %v\npage: %s", what, err, html)
		}
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	signedIn := chromedp.Search(`//p[contains(., "Signed in as")]`)
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{Options: &cdpwebauthn.VirtualAuthenticatorOptions{
		Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21, Transport: cdpwebauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}}); err != nil {
		t.Fatal(err)
	}

	// Password and an authenticator app first: adding a passkey takes a
	// recent second factor.
	do("sign in", chromedp.Navigate(base+"/signin?return_to=/signin/session"), chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), aliceUPN), chromedp.SendKeys(chromedp.ID("password"), alicePW),
		chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.ID("secret")))
	secret := strings.ReplaceAll(text("#secret"), " ", "")
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	do("enroll", chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Submit(chromedp.ID("code")),
		chromedp.WaitVisible(chromedp.CSS("ul.codes")), chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(signedIn))

	do("add a passkey", chromedp.WaitVisible(chromedp.ID("passkey-register")), chromedp.Click(chromedp.ID("passkey-register")),
		chromedp.WaitVisible(chromedp.Search(`//p[contains(., "Your passkey has been added")]`)))
	if got := text("main"); !strings.Contains(got, "Passkeys: 1") {
		t.Fatalf("after registration: %q", got)
	}

	// Sign out; sign in with the passkey alone.
	do("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("passkey-signin")))
	do("passkey sign-in", chromedp.Click(chromedp.ID("passkey-signin")), chromedp.WaitVisible(signedIn))
	if got := text("main"); !strings.Contains(got, "phishingResistant") || !strings.Contains(got, "hwk") {
		t.Fatalf("after a passkey sign-in: %q", got)
	}
	evs := e.events()
	last := evs[len(evs)-1]
	if last.Status.ErrorCode != 0 || last.AuthenticationDetails[0].AuthenticationMethod != "Passkey (device-bound or synced)" || last.UserID != aliceID {
		t.Fatalf("passkey sign-in logged as %+v", last)
	}

	// Sign out; password, then the passkey as the second factor.
	do("sign out again", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("username")))
	do("password", chromedp.SendKeys(chromedp.ID("username"), aliceUPN), chromedp.SendKeys(chromedp.ID("password"), alicePW),
		chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.ID("passkey-mfa")))
	do("passkey as second factor", chromedp.Click(chromedp.ID("passkey-mfa")), chromedp.WaitVisible(signedIn))
	if got := text("main"); !strings.Contains(got, "phishingResistant") || !strings.Contains(got, "pwd") {
		t.Fatalf("after password and passkey: %q", got)
	}
}
