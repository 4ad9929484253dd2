package signin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

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
	t.Run("linked by an administrator through identities", func(t *testing.T) {
		t.Parallel()
		f := newFedEnv(t, func(p *directory.IdentityProvider) { p.JITProvisioning = false }, nil)
		// The account's subject at the provider is bob's object id there.
		const bobAtIDP = "b0b00000-0000-4000-8000-000000000001"
		robert := func(id, upn string) store.Object {
			u := &directory.User{ID: id, UserPrincipalName: upn, DisplayName: "Robert Jones",
				Identities: []directory.ObjectIdentity{{SignInType: "userPrincipalName", Issuer: "contoso.com", IssuerAssignedID: upn},
					{SignInType: directory.SignInTypeFederated, Issuer: f.idp.issuer + "/", IssuerAssignedID: bobAtIDP}}}
			u.Normalize()
			if err := u.Validate(); err != nil {
				t.Fatal(err)
			}
			return mustObject(t)(directory.Users.Object(u))
		}
		const robertID = "10ca1000-0000-4000-8000-000000000002"
		rev := writeAll(t, f.st, robert(robertID, "robert@contoso.com"))
		if _, err := f.live.WaitFor(context.Background(), rev); err != nil {
			t.Fatal(err)
		}
		for i := range 2 { // the second sign-in finds the link the first one recorded
			if u, status, page := f.signIn(f.browser()); u.Path != "/signin/session" {
				t.Fatalf("sign-in %d of a linked account: %s %d\n%s", i, u, status, page)
			}
			if ev := f.lastEvent(t); ev.UserID != robertID || ev.Status.ErrorCode != 0 {
				t.Fatalf("sign-in %d logged as %+v", i, ev)
			}
		}
		if m := f.members(t, engineersID); len(m) != 1 || m[0] != robertID {
			t.Errorf("the provider's groups were not synced to the linked user: %v", m)
		}
		for _, x := range f.users(t) {
			if x.UserPrincipalName == bobUPN {
				t.Fatal("a user was provisioned for a linked account")
			}
		}
	})
	t.Run("account listed by two users", func(t *testing.T) {
		t.Parallel()
		f := newFedEnv(t, func(p *directory.IdentityProvider) { p.JITProvisioning = false }, nil)
		var objs []store.Object
		for i, upn := range []string{"one@contoso.com", "two@contoso.com"} {
			u := &directory.User{ID: fmt.Sprintf("10ca1000-0000-4000-8000-00000000001%d", i), UserPrincipalName: upn, DisplayName: upn,
				Identities: []directory.ObjectIdentity{{SignInType: directory.SignInTypeFederated, Issuer: f.idp.issuer, IssuerAssignedID: "b0b00000-0000-4000-8000-000000000001"}}}
			u.Normalize()
			objs = append(objs, mustObject(t)(directory.Users.Object(u)))
		}
		rev := writeAll(t, f.st, objs...)
		if _, err := f.live.WaitFor(context.Background(), rev); err != nil {
			t.Fatal(err)
		}
		_, status, _ := f.signIn(f.browser())
		if ev := f.lastEvent(t); status != http.StatusConflict || ev.Status.ErrorCode != signin.CodeFederatedUserUnknown || !strings.Contains(ev.Status.FailureReason, "Several users") {
			t.Fatalf("%d, logged as %+v", status, ev.Status)
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

// TestFederationKeepsTheLastOwner: the provider owns its mapped groups'
// memberships, but not to the point of taking away the tenant's last
// Owner: that sync is skipped (and logged), and the sign-in goes on.
func TestFederationKeepsTheLastOwner(t *testing.T) {
	t.Parallel()
	owner := rbac.Assignment{ID: "0a000000-0000-4000-8000-0000000000a1", PrincipalID: adminsID, RoleDefinitionID: "Owner", Scope: "/"}
	owner.Normalize()
	body, err := json.Marshal(owner)
	if err != nil {
		t.Fatal(err)
	}
	f := newFedEnv(t, nil, nil, store.Object{Kind: rbac.Kind, ID: owner.ID, Body: body})
	f.idp.setGroups("fabrikam-admins")
	if u, _, page := f.signIn(f.browser()); u.Path != "/signin/session" {
		t.Fatalf("first sign-in ended at %s:\n%s", u, page)
	}
	if m := f.members(t, adminsID); len(m) != 1 {
		t.Fatalf("Admins = %v, want bob", m)
	}
	// The provider drops bob from the admins: he is the only Owner.
	f.idp.setGroups("fabrikam-engineers")
	if u, _, page := f.signIn(f.browser()); u.Path != "/signin/session" {
		t.Fatalf("second sign-in ended at %s:\n%s", u, page)
	}
	if m := f.members(t, adminsID); len(m) != 1 {
		t.Fatalf("Admins = %v: the sync took away the last Owner", m)
	}
	if !strings.Contains(f.logs.String(), "removing them would leave no Owner") {
		t.Error("the skipped sync is not logged")
	}
}

// TestFederatedFreshSignIn: an application asking for a recent sign-in
// (max_age) from a federated session sends the user back to the provider
// with prompt=login, and the provider must sign the user in again rather
// than answer from its own session.
func TestFederatedFreshSignIn(t *testing.T) {
	t.Parallel()
	f := newFedEnv(t, nil, nil)
	c := f.browser()
	if u, _, page := f.signIn(c); u.Path != "/signin/session" {
		t.Fatalf("federated sign-in ended at %s:\n%s", u, page)
	}
	f.clock.Add(10 * time.Minute)
	f.idp.clock.Add(10 * time.Minute)
	path, _, page := f.get(c, "/fresh?max_age=60")
	if path != "/signin" || !strings.Contains(page, `name="prompt" value="login"`) {
		t.Fatalf("a stale session went to %s:\n%s", path, page)
	}
	m := federatedFormRe.FindStringSubmatch(page)
	rt := returnRe.FindAllStringSubmatch(page, -1)
	start := f.srv.URL + m[1] + "?" + url.Values{"return_to": {unescape(rt[len(rt)-1][1])}, "prompt": {"login"}}.Encode()
	// The provider has a session in this browser, yet it shows its
	// sign-in page: prompt=login reached it.
	u, status, page := fetch(t, c, start)
	u, _, page = f.atIDP(c, u, status, page)
	if u.Path != "/fresh" || page != "fresh "+bobUPN {
		t.Fatalf("the fresh federated sign-in ended at %s: %q", u, page)
	}
}
