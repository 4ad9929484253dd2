package signin_test

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

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
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
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
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	signInForm := func() {
		do("the sign-in form",
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), aliceUPN),
			chromedp.SendKeys(chromedp.ID("password"), alicePW),
			chromedp.Submit(chromedp.ID("password")),
		)
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
	do("sign out", chromedp.Click(chromedp.CSS("button.secondary")))
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
