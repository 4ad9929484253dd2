package signin_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/signin"
)

// TestRiskSelfRemediation: a risky sign-in (its address is on the
// anonymous list the assessor knows) meets a policy that asks for MFA at
// medium sign-in risk; the user proves a second factor and the sign-in
// log says the risk was remediated. A user at high user risk meets a
// policy that asks for a password change with MFA; once done, the user's
// risk is remediated and the next sign-in asks for nothing.
func TestRiskSelfRemediation(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	userRisk := access.RiskNone
	var remediated []string
	assessed := 0
	e := newEnvWith(t, func(o *signin.Options) {
		o.SignInRisk = func(_ context.Context, ev *signin.Event) signin.RiskAssessment {
			mu.Lock()
			defer mu.Unlock()
			assessed++
			if ev.UserID != aliceID || ev.Status.ErrorCode != signin.CodeSuccess {
				t.Errorf("assessed %+v", ev)
			}
			if ev.IPAddress == "127.0.0.7" {
				return signin.RiskAssessment{Level: access.RiskMedium, EventTypes: []string{"anonymizedIPAddress"}}
			}
			return signin.RiskAssessment{}
		}
		o.UserRisk = func(context.Context, string) access.RiskLevel {
			mu.Lock()
			defer mu.Unlock()
			return userRisk
		}
		o.UserRiskRemediated = func(_ context.Context, userID, detail string) error {
			mu.Lock()
			defer mu.Unlock()
			remediated = append(remediated, userID+" "+detail)
			userRisk = access.RiskNone
			return nil
		}
	},
		policy(t, "f0000000-0000-4000-8000-00000000f101", `{"displayName": "MFA for risky sign-ins", "state": "enabled",
			"conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}, "signInRiskLevels": ["medium", "high"]},
			"grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`),
		policy(t, "f0000000-0000-4000-8000-00000000f102", `{"displayName": "Password change for risky users", "state": "enabled",
			"conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}, "userRiskLevels": ["high"]},
			"grantControls": {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}}`))

	// From an ordinary address: no risk, no MFA asked.
	if path, _, page := e.signIn(e.browser("127.0.0.1"), aliceUPN, alicePW); path != "/signin/session" {
		t.Fatalf("a sign-in without risk went to %s\n%s", path, page)
	}
	// From the anonymous address: MFA, enrolled on the spot, remediates.
	c := e.browser("127.0.0.7")
	path, _, page := e.signIn(c, aliceUPN, alicePW)
	if path != "/signin/enroll" {
		t.Fatalf("a risky sign-in went to %s\n%s", path, page)
	}
	secret := strings.ReplaceAll(secretRe.FindStringSubmatch(page)[1], " ", "")
	code, _ := totp.GenerateCode(secret, e.clock.Now())
	_, _, page = e.submit(c, page, "/signin/enroll", url.Values{"code": {code}})
	if path, _, _ := e.submit(c, page, "/signin/continue", url.Values{}); path != "/signin/session" {
		t.Fatalf("after MFA: %s", path)
	}
	evs := e.events()
	last := evs[len(evs)-1]
	if last.Status.ErrorCode != 0 || last.RiskLevelDuringSignIn != "medium" || last.RiskState != "remediated" ||
		last.RiskDetail != "userPassedMFADrivenByRiskBasedPolicy" || !slices.Equal(last.RiskEventTypesV2, []string{"anonymizedIPAddress"}) {
		t.Fatalf("the remediated sign-in is logged as %+v", last)
	}
	// The interrupted first step shows the risk at risk.
	if mid := evs[len(evs)-2]; mid.Status.ErrorCode != signin.CodeMFARequired || mid.RiskState != "atRisk" || mid.RiskLevelDuringSignIn != "medium" {
		t.Fatalf("the interrupted step is logged as %+v", mid)
	}

	// Alice's account is at high risk: a password change with MFA.
	mu.Lock()
	userRisk = access.RiskHigh
	mu.Unlock()
	e.clock.Add(time.Minute)
	c = e.browser("127.0.0.1")
	path, _, page = e.signIn(c, aliceUPN, alicePW)
	if path != "/signin/password" {
		t.Fatalf("a user at risk went to %s\n%s", path, page)
	}
	const newPW = "a fresh passphrase after the risk"
	path, _, page = e.submit(c, page, "/signin/password", url.Values{"new": {newPW}, "confirm": {newPW}})
	if path != "/signin/mfa" {
		t.Fatalf("after the password change: %s\n%s", path, page)
	}
	code, _ = totp.GenerateCode(secret, e.clock.Now())
	if path, status, page := e.submit(c, page, "/signin/mfa", url.Values{"code": {code}}); path != "/signin/session" || status != http.StatusOK {
		t.Fatalf("after MFA: %s %d\n%s", path, status, page)
	}
	mu.Lock()
	if !slices.Equal(remediated, []string{aliceID + " userPerformedSecuredPasswordChange"}) {
		t.Fatalf("remediated %v", remediated)
	}
	mu.Unlock()
	e.clock.Add(time.Minute)
	if path, _, page := e.signIn(e.browser("127.0.0.1"), aliceUPN, newPW); path != "/signin/session" {
		t.Fatalf("after remediation: %s\n%s", path, page)
	}
}
