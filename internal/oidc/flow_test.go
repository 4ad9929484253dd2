package oidc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/verityhq/verity/internal/signin"
)

// TestCodeFlowWithGoOIDC runs a relying party built on go-oidc and
// x/oauth2 against Verity: discovery, the authorization code flow with
// PKCE through the real sign-in pages, the code exchange with the client
// secret, ID token verification, userinfo and a refresh.
func TestCodeFlowWithGoOIDC(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := gooidc.ClientContext(context.Background(), e.api())
	provider, err := gooidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		Authorization string   `json:"authorization_endpoint"`
		Token         string   `json:"token_endpoint"`
		JWKS          string   `json:"jwks_uri"`
		EndSession    string   `json:"end_session_endpoint"`
		Introspection string   `json:"introspection_endpoint"`
		Revocation    string   `json:"revocation_endpoint"`
		Userinfo      string   `json:"userinfo_endpoint"`
		ResponseTypes []string `json:"response_types_supported"`
		PKCE          []string `json:"code_challenge_methods_supported"`
		Algs          []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{meta.Authorization, meta.Token, meta.JWKS, meta.EndSession, meta.Introspection, meta.Revocation, meta.Userinfo} {
		if !strings.HasPrefix(u, e.issuer+"/oauth2/") {
			t.Errorf("endpoint %q is not under %s/oauth2/", u, e.issuer)
		}
	}
	if !slices.Equal(meta.ResponseTypes, []string{"code"}) || !slices.Equal(meta.PKCE, []string{"S256"}) || !slices.Equal(meta.Algs, []string{"ES256"}) {
		t.Errorf("discovery: %+v", meta)
	}

	conf := oauth2.Config{ClientID: webApp, ClientSecret: e.secret, Endpoint: provider.Endpoint(), RedirectURL: e.webRedirect,
		Scopes: []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess}}
	verifier, state, nonce := oauth2.GenerateVerifier(), "state-"+oauth2.GenerateVerifier()[:10], "nonce-"+oauth2.GenerateVerifier()[:10]
	authURL := conf.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	c := e.browser()
	u, status, page := e.get(c, authURL)
	if u.Path != "/signin" || status != http.StatusOK {
		t.Fatalf("the authorization request led to %s (%d)", u, status)
	}
	u, _, _ = e.signInPage(c, page, alicePW)
	if u.Host != strings.TrimPrefix(e.rp.URL, "http://") || u.Path != "/signin-oidc" || u.Query().Get("state") != state {
		t.Fatalf("after sign-in the browser is at %s, want the redirect URI with state %q", u, state)
	}
	tok, err := conf.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&gooidc.Config{ClientID: webApp}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var cl struct {
		Name     string   `json:"name"`
		Username string   `json:"preferred_username"`
		Email    string   `json:"email"`
		AuthTime int64    `json:"auth_time"`
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		SID      string   `json:"sid"`
		AtHash   string   `json:"at_hash"`
	}
	if err := idt.Claims(&cl); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != aliceID || idt.Nonce != nonce || cl.Name != "Alice Smith" || cl.Username != aliceUPN || cl.Email != aliceMail ||
		cl.AuthTime == 0 || !slices.Equal(cl.AMR, []string{"pwd"}) || cl.ACR != signin.ACRPassword || len(cl.SID) != 64 {
		t.Fatalf("ID token claims: sub %s nonce %s %+v", idt.Subject, idt.Nonce, cl)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	if h := headerOf(t, raw); h["kid"] == "" || h["alg"] != "ES256" {
		t.Fatalf("ID token header %v", h)
	}
	at := claims(t, tok.AccessToken)
	if at["sub"] != aliceID || at["client_id"] != webApp || at["iss"] != e.issuer || !strings.Contains(at["scope"].(string), "profile") {
		t.Fatalf("access token claims %v", at)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Subject != aliceID || ui.Email != aliceMail {
		t.Fatalf("userinfo %+v", ui)
	}
	// A refresh rotates the refresh token and keeps the sign-in's claims.
	old := tok.RefreshToken
	tok.Expiry = time.Now().Add(-time.Minute)
	tok2, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == old || tok2.AccessToken == tok.AccessToken {
		t.Fatal("the refresh did not rotate the tokens")
	}
	idt2, err := provider.Verifier(&gooidc.Config{ClientID: webApp}).Verify(ctx, tok2.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	var cl2 struct {
		ACR      string `json:"acr"`
		SID      string `json:"sid"`
		AuthTime int64  `json:"auth_time"`
	}
	_ = idt2.Claims(&cl2)
	if idt2.Subject != aliceID || cl2.AuthTime != cl.AuthTime || cl2.ACR != cl.ACR || cl2.SID != cl.SID {
		t.Fatalf("refreshed ID token: sub %s %+v", idt2.Subject, cl2)
	}
}

func headerOf(t testing.TB, jwt string) map[string]string {
	t.Helper()
	b, err := base64Decode(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	_ = json.Unmarshal(b, &h)
	return h
}
