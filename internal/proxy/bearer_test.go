package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
)

// clientToken gets an access token for an application by client
// credentials (its own token: subject its service principal), and the
// secret it used.
func (e *env) clientToken(appObjectID string) (string, string) {
	e.t.Helper()
	ctx := context.Background()
	o, err := e.st.Get(ctx, directory.KindApplication, appObjectID)
	if err != nil {
		e.t.Fatal(err)
	}
	app, err := directory.Applications.FromObject(o)
	if err != nil {
		e.t.Fatal(err)
	}
	_, secret, err := directory.AddClientSecret(ctx, e.st, app, directory.PasswordCredentialRequest{DisplayName: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.signin.URL+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(app.AppID, secret)
	resp, err := e.signin.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &tok) != nil || tok.AccessToken == "" {
		e.t.Fatalf("client credentials: %d %s", resp.StatusCode, b)
	}
	return tok.AccessToken, secret
}

// revoke revokes an access token at the provider as its client.
func (e *env) revoke(appID, secret, token string) int {
	e.t.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, _ := http.NewRequest(http.MethodPost, e.signin.URL+"/oauth2/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(appID, secret)
	resp, err := e.signin.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBearerTokens: an application's own access token is a credential for
// its route — decided per request (conditional access for workload
// identities, the route's data actions), the assertion naming its service
// principal; a token for another application, a forged or revoked one is
// refused with a Bearer challenge.
func TestBearerTokens(t *testing.T) {
	t.Parallel()
	other := &directory.Application{ID: "a0000000-0000-4000-8000-00000000a002", AppID: "9a700000-0000-4000-8000-000000000002", DisplayName: "Other"}
	other.Normalize()
	otherSP := &directory.ServicePrincipal{ID: "5e000000-0000-4000-8000-000000000002", AppID: other.AppID, DisplayName: "Other"}
	otherSP.Normalize()
	e := newEnv(t, nil, must(t)(directory.Applications.Object(other)), must(t)(directory.ServicePrincipals.Object(otherSP)))
	c := noRedirects(e.browser())
	bearer := func(token string) (*http.Response, string) {
		return e.get(c, e.base+"/payroll/api/runs", "Authorization", "Bearer "+token)
	}

	tok, secret := e.clientToken("a0000000-0000-4000-8000-00000000a001")
	otherTok, _ := e.clientToken(other.ID)
	resp, body := bearer(tok)
	if resp.StatusCode != http.StatusOK || body != "upstream /internal/api/runs" {
		t.Fatalf("the application's own token: %d %s", resp.StatusCode, body)
	}
	payload, _, err := e.kr.Verify(context.Background(), e.lastSeen().Header.Get("X-Verity-Assertion"))
	var claims map[string]any
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims["sub"] != spID {
		t.Fatalf("assertion for a token: %v %v", claims, err)
	}
	if ev := e.decisionMatching(func(m map[string]any) bool { return m["credential"] == "bearer" }); ev["userId"] != spID {
		t.Errorf("audit record %v", ev)
	}

	for name, token := range map[string]string{
		"another application's token": otherTok,
		"a forged token":              tok[:len(tok)-4] + "AAAA",
		"not a token":                 "hello",
	} {
		resp, body := bearer(token)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
			t.Errorf("%s: %d %q %s", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}

	// A rule the service principal holds no role for denies.
	rules := &directory.AppRoute{ID: routeID, DisplayName: "Payroll", AppID: appID, From: e.base + "/payroll/", To: []string{e.upstream.URL + "/internal/"},
		Rules: []directory.RouteRule{{PathPrefix: "/payroll/api/", DataAction: "Verity.Apps/apps/payroll/api/action"}}}
	rules.Normalize()
	e.write(must(t)(directory.AppRoutes.Object(rules)))
	if resp, body := bearer(tok); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "900403") {
		t.Fatalf("a data action not granted to the service principal: %d %s", resp.StatusCode, body)
	}
	rules.Rules = nil
	e.write(must(t)(directory.AppRoutes.Object(rules)))

	// Revoking the token stops it within a second.
	if n := e.revoke(appID, secret, tok); n != http.StatusOK {
		t.Fatalf("revoke: %d", n)
	}
	start := time.Now()
	for {
		resp, _ := bearer(tok)
		if resp.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("a revoked token still served after %v (%d)", time.Since(start), resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
