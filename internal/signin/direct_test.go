package signin_test

import (
	"context"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/signin"
)

// TestSignInDirect is the API's sign-in: the same conditional access,
// with the second factor as a code sent with the password.
func TestSignInDirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, policy(t, "f0000000-0000-4000-8000-00000000f007", requireMFA))
	ctx := context.Background()
	direct := func(password, otp string) signin.DirectResult {
		t.Helper()
		res, err := e.svc.SignInDirect(ctx, signin.Direct{UPN: aliceUPN, Password: password, OTP: otp, ClientApp: access.ClientAppMobileAndDesktop,
			IP: netip.MustParseAddr("127.0.0.1"), UserAgent: "verity-cli"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if r := direct(alicePW, ""); r.Code != signin.CodeMFARequired || !strings.Contains(r.Reason, "browser") || r.UserID != "" {
		t.Fatalf("MFA required, no authenticator: %+v", r)
	}
	// Enroll an authenticator through the pages.
	c := e.browser("")
	_, _, page := e.signIn(c, aliceUPN, alicePW)
	secret := strings.ReplaceAll(secretRe.FindStringSubmatch(page)[1], " ", "")
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	_, _, page = e.submit(c, page, "/signin/enroll", url.Values{"code": {code}})
	e.submit(c, page, "/signin/continue", url.Values{})

	if r := direct(alicePW, ""); r.Code != signin.CodeMFARequired || !strings.Contains(r.Reason, "send a code") {
		t.Fatalf("MFA required: %+v", r)
	}
	if r := direct("wrong password!!", ""); r.Code != signin.CodeInvalidCredentials || r.Account != aliceID {
		t.Fatalf("wrong password: %+v", r)
	}
	if r := direct(alicePW, code); r.Code != signin.CodeMFAFailed {
		t.Fatalf("a code already used: %+v", r)
	}
	e.clock.Add(30 * time.Second)
	next, _ := totp.GenerateCode(secret, e.clock.Now())
	r := direct(alicePW, next)
	if r.Code != signin.CodeSuccess || r.UserID != aliceID || r.Methods&access.MethodSoftwareOath == 0 {
		t.Fatalf("password and code: %+v", r)
	}
	evs := e.events()
	last := evs[len(evs)-1]
	if last.ClientAppUsed != "Mobile Apps and Desktop clients" || last.AuthenticationRequirement != "multiFactorAuthentication" || last.Status.ErrorCode != 0 {
		t.Fatalf("logged as %+v", last)
	}
}
