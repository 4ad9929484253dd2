package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestPKCE(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := noRedirects(e.browser())
	// authorizeError asks for an authorization and returns the error the
	// client's redirect URI received.
	authorizeError := func(a authReq) string {
		t.Helper()
		resp, err := c.Get(a.url(e.issuer))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), a.redirect) || loc.Query().Get("state") != a.state {
			t.Fatalf("want an error redirect to the client with its state, got %d %s", resp.StatusCode, loc)
		}
		return loc.Query().Get("error")
	}
	// A public client without PKCE, with plain, with a challenge and no
	// method: refused before any sign-in.
	a := e.spa()
	a.verifier = ""
	if got := authorizeError(a); got != "invalid_request" {
		t.Errorf("public client without PKCE: %q", got)
	}
	a.extra = url.Values{"code_challenge": {"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq"}, "code_challenge_method": {"plain"}}
	if got := authorizeError(a); got != "invalid_request" {
		t.Errorf("plain PKCE: %q", got)
	}
	a.extra = url.Values{"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}}
	if got := authorizeError(a); got != "invalid_request" {
		t.Errorf("a challenge without a method (plain): %q", got)
	}
	// Downgrade: S256 at the authorization, no verifier, or the challenge
	// itself, or another verifier at the token endpoint.
	for name, verifier := range map[string]string{"none": "", "challenge as verifier": "CHALLENGE", "another verifier": oauth2.GenerateVerifier()} {
		a := e.spa()
		code, _ := e.code(a)
		switch verifier {
		case "CHALLENGE":
			a.verifier = oauth2.S256ChallengeFromVerifier(a.verifier)
		default:
			a.verifier = verifier
		}
		if tr := e.exchange(a, code); tr.AccessToken != "" || (tr.Error != "invalid_request" && tr.Error != "invalid_grant") {
			t.Errorf("PKCE downgrade (%s): %d %s %s", name, tr.Status, tr.Error, tr.Description)
		}
	}
	// The public client with the right verifier, and no secret, succeeds.
	a = e.spa()
	code, _ := e.code(a)
	if tr := e.exchange(a, code); tr.AccessToken == "" || tr.IDToken == "" {
		t.Fatalf("public client with PKCE: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	// A confidential client may omit PKCE; its secret is then required.
	w := e.web()
	w.verifier = ""
	code, _ = e.code(w)
	if tr := e.exchange(w, code); tr.AccessToken == "" {
		t.Fatalf("confidential client without PKCE: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
}

func TestRedirectURIMustMatchExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := noRedirects(e.browser())
	rp, _ := url.Parse(e.webRedirect)
	other := *rp
	other.Host = "127.0.0.1:1"
	for name, uri := range map[string]string{
		"suffix":         e.webRedirect + "/../evil",
		"longer path":    e.webRedirect + "x",
		"query added":    e.webRedirect + "?next=https://evil.example",
		"trailing slash": e.webRedirect + "/",
		"another port":   other.String(),
		"another host":   "https://evil.example/signin-oidc",
		"upper case":     strings.ToUpper(e.webRedirect),
		"another app's":  e.spaRedirect,
		"missing":        "",
	} {
		for _, client := range []string{webApp, orphanApp, "0e0e0e0e-0000-4000-8000-0000000fffff"} {
			a := e.web()
			a.client, a.redirect = client, uri
			resp, err := c.Get(a.url(e.issuer))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("%s redirect URI for %s: %d, Location %q; want 400 and no redirect", name, client, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	}
	// An application without a service principal cannot sign users in,
	// even with its own redirect URI.
	a := e.web()
	a.client = orphanApp
	if resp, err := c.Get(a.url(e.issuer)); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an application without a service principal: %v %v", resp.StatusCode, err)
	}
	// Implicit flows are refused, back at the (registered) redirect URI.
	a = e.web()
	a.extra = url.Values{"response_type": {"id_token token"}}
	resp, err := c.Get(a.url(e.issuer))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, e.webRedirect) || !strings.Contains(loc, "error=") {
		t.Fatalf("implicit flow: %d %s", resp.StatusCode, loc)
	}
}

func TestStateAndNonceReturned(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.web()
	a.state, a.nonce = "opaque state with spaces & symbols=/?", "nonce-"+oauth2.GenerateVerifier()
	code, _ := e.code(a) // checks the state came back intact
	tr := e.exchange(a, code)
	if got := claims(t, tr.IDToken)["nonce"]; got != a.nonce {
		t.Fatalf("nonce %v, want %q", got, a.nonce)
	}
}

func TestCodeReplayRevokesTheGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.web()
	code, _ := e.code(a)
	first := e.exchange(a, code)
	if first.AccessToken == "" || first.RefreshToken == "" {
		t.Fatalf("first exchange: %+v", first)
	}
	if status, _ := e.userinfo(first.AccessToken); status != http.StatusOK {
		t.Fatalf("userinfo before the replay: %d", status)
	}
	again := e.exchange(a, code)
	if again.AccessToken != "" || again.Error != "invalid_grant" {
		t.Fatalf("second exchange: %d %s", again.Status, again.Error)
	}
	if status, _ := e.userinfo(first.AccessToken); status == http.StatusOK {
		t.Fatal("the first exchange's access token still works after the replay")
	}
	if m := e.introspect(first.AccessToken); m["active"] != false {
		t.Fatalf("introspection after the replay: %v", m)
	}
	if tr := e.refresh(webApp, first.RefreshToken); tr.AccessToken != "" {
		t.Fatal("the first exchange's refresh token still works after the replay")
	}
}

func TestExpiredCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.web()
	code, _ := e.code(a)
	e.clock.Add(61 * time.Second)
	if tr := e.exchange(a, code); tr.AccessToken != "" || tr.Error != "invalid_grant" {
		t.Fatalf("a code after 61 s: %d %s", tr.Status, tr.Error)
	}
}

func TestRefreshTokenReuseRevokesTheFamily(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.spa()
	code, _ := e.code(a)
	t0 := e.exchange(a, code)
	t1 := e.refresh(spaApp, t0.RefreshToken)
	if t1.RefreshToken == "" || t1.RefreshToken == t0.RefreshToken {
		t.Fatalf("rotation: %+v", t1)
	}
	if m := e.introspect(t1.RefreshToken); m["active"] != false {
		t.Fatal("introspection answers for another client's refresh token")
	}
	// The rotated token again: refused, and the whole family with it.
	if tr := e.refresh(spaApp, t0.RefreshToken); tr.AccessToken != "" || tr.Error != "invalid_grant" {
		t.Fatalf("reuse: %d %s", tr.Status, tr.Error)
	}
	if tr := e.refresh(spaApp, t1.RefreshToken); tr.AccessToken != "" {
		t.Fatal("the family's current refresh token survived the reuse")
	}
	if status, _ := e.userinfo(t1.AccessToken); status == http.StatusOK {
		t.Fatal("the family's access token survived the reuse")
	}
	if !strings.Contains(e.logs.String(), "refresh token reuse") {
		t.Error("the reuse is not logged")
	}

	// Two uses of one token at once: one wins, the others revoke.
	a2 := e.spa()
	code, _ = e.code(a2)
	start := e.exchange(a2, code)
	const n = 8
	var wg sync.WaitGroup
	results := make([]tokenResponse, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.refresh(spaApp, start.RefreshToken)
		}()
	}
	wg.Wait()
	// At most one wins; once the reuse is seen the family is revoked, so
	// the winner may lose its new tokens too. Every loser is refused as a
	// bad grant, not a server failure.
	wins := 0
	for _, r := range results {
		switch {
		case r.RefreshToken != "":
			wins++
		case r.Error != "invalid_grant":
			t.Errorf("a concurrent use failed with %d %s %s", r.Status, r.Error, r.Description)
		}
	}
	if wins > 1 {
		t.Fatalf("%d concurrent uses of one refresh token succeeded: %+v", wins, results)
	}
	for _, r := range results {
		if r.RefreshToken != "" {
			if tr := e.refresh(spaApp, r.RefreshToken); tr.AccessToken != "" {
				t.Fatal("the winner's token survived the concurrent reuse")
			}
		}
	}
}

func TestRefreshTokenLifetimes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.web()
	code, _ := e.code(a)
	tr := e.exchange(a, code)
	// Sliding: used every 29 days, a token lives on until the 90-day cap.
	for range 3 {
		e.clock.Add(29 * 24 * time.Hour)
		next := e.refresh(webApp, tr.RefreshToken)
		if next.RefreshToken == "" {
			t.Fatalf("refresh at day %v: %s %s", e.clock.Now(), next.Error, next.Description)
		}
		tr = next
	}
	e.clock.Add(4 * 24 * time.Hour) // day 91
	if next := e.refresh(webApp, tr.RefreshToken); next.AccessToken != "" {
		t.Fatal("a refresh token outlived the absolute cap")
	}
	// Unused for 31 days: expired.
	a = e.web()
	code, _ = e.code(a)
	tr = e.exchange(a, code)
	e.clock.Add(31 * 24 * time.Hour)
	if next := e.refresh(webApp, tr.RefreshToken); next.AccessToken != "" {
		t.Fatal("a refresh token outlived its sliding lifetime")
	}
}

// forged returns tokens with a real token's claims and kid that no key
// signed: alg none, and HS256 keyed with the public key (PEM and JWK x).
func forged(t *testing.T, e *env, real string) map[string]string {
	t.Helper()
	parts := strings.Split(real, ".")
	var h map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	_ = json.Unmarshal(hb, &h)
	set, err := e.kr.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(set.Keys[0].Key.(*ecdsa.PublicKey))
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwk, _ := json.Marshal(set.Keys[0])
	header := func(alg string) string {
		b, _ := json.Marshal(map[string]any{"alg": alg, "kid": h["kid"], "typ": "JWT"})
		return base64.RawURLEncoding.EncodeToString(b)
	}
	hs := func(key []byte) string {
		in := header("HS256") + "." + parts[1]
		m := hmac.New(sha256.New, key)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	return map[string]string{
		"alg none":            header("none") + "." + parts[1] + ".",
		"alg none, real sig":  header("none") + "." + parts[1] + "." + parts[2],
		"HS256 with PEM key":  hs(pemKey),
		"HS256 with JWK":      hs(jwk),
		"tampered payload":    parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x"}`)) + "." + parts[2],
		"ES256 header swap":   header("ES384") + "." + parts[1] + "." + parts[2],
		"unsigned real token": parts[0] + "." + parts[1] + ".",
	}
}

func TestForgedTokensRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.web()
	code, _ := e.code(a)
	tr := e.exchange(a, code)
	if status, _ := e.userinfo(tr.AccessToken); status != http.StatusOK {
		t.Fatalf("userinfo with the real token: %d", status)
	}
	for name, tok := range forged(t, e, tr.AccessToken) {
		if status, m := e.userinfo(tok); status == http.StatusOK {
			t.Errorf("userinfo accepted a forged token (%s): %v", name, m)
		}
		if m := e.introspect(tok); m["active"] != false {
			t.Errorf("introspection accepted a forged token (%s): %v", name, m)
		}
	}
	// Forged ID token hints do not sign anyone out.
	for name, tok := range forged(t, e, tr.IDToken) {
		status, _ := e.postForm("/oauth2/end_session", url.Values{"id_token_hint": {tok}, "post_logout_redirect_uri": {e.logoutURL}}, "", "")
		if status != http.StatusBadRequest {
			t.Errorf("end_session with a forged hint (%s): %d", name, status)
		}
	}
}

func TestClientAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.web()
	code, _ := e.code(a)
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.redirect}, "code_verifier": {a.verifier}}
	// Wrong secret (basic), no secret, wrong secret (post): refused, and
	// each attempt burns nothing the right secret needs… except the code,
	// which is single use: check the refusals first with fresh codes.
	for name, try := range map[string]func(code string) tokenResponse{
		"wrong secret, basic": func(code string) tokenResponse { f.Set("code", code); return e.token(f, webApp, e.secret+"x") },
		"no secret": func(code string) tokenResponse {
			g := url.Values{}
			for k, v := range f {
				g[k] = v
			}
			g.Set("code", code)
			g.Set("client_id", webApp)
			return e.token(g, "", "")
		},
		"wrong secret, post": func(code string) tokenResponse {
			g := url.Values{"client_id": {webApp}, "client_secret": {"abc~vcs~" + strings.Repeat("A", 43)}}
			for k, v := range f {
				g[k] = v
			}
			g.Set("code", code)
			return e.token(g, "", "")
		},
		"another client's secret": func(code string) tokenResponse { f.Set("code", code); return e.token(f, spaApp, e.secret) },
	} {
		a := e.web()
		code, _ := e.code(a)
		f.Set("code_verifier", a.verifier)
		if tr := try(code); tr.AccessToken != "" || (tr.Error != "invalid_client" && tr.Error != "invalid_grant" && tr.Error != "unauthorized_client") {
			t.Errorf("%s: %d %s %s", name, tr.Status, tr.Error, tr.Description)
		}
	}
	// client_secret_post with the right secret works.
	f.Set("code", code)
	f.Set("code_verifier", a.verifier)
	f.Set("client_id", webApp)
	f.Set("client_secret", e.secret)
	if tr := e.token(f, "", ""); tr.AccessToken == "" {
		t.Fatalf("client_secret_post: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	// Introspection is for confidential clients only.
	if status, _ := e.postForm("/oauth2/introspect", url.Values{"token": {"x"}, "client_id": {spaApp}}, "", ""); status != http.StatusUnauthorized {
		t.Errorf("introspection by a public client: %d", status)
	}
	if status, _ := e.postForm("/oauth2/introspect", url.Values{"token": {"x"}}, webApp, "wrong"); status == http.StatusOK {
		t.Errorf("introspection with a wrong secret: %d", status)
	}
}
