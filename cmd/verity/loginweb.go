package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/bootstrap"
)

// loginWeb signs the CLI in through the browser: OAuth 2.0 for native
// apps (RFC 8252) against the server's OpenID Connect provider — a
// loopback redirect on a port the system picks, PKCE S256, state — so
// that every step the sign-in pages can take (a second factor, a passkey,
// a federated identity provider, a password change) is available to the
// command line, and conditional access applies to it as to any sign-in.
func loginWeb(cmd *cobra.Command, c *client, creds credentials, timeout time.Duration) (credentials, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return creds, fmt.Errorf("listen for the sign-in's redirect: %w", err)
	}
	defer ln.Close()
	redirect := fmt.Sprintf("http://%s/callback", ln.Addr())
	verifier, state := randomToken(), randomToken()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {bootstrap.CLIAppID}, "response_type": {"code"}, "scope": {"openid profile"},
		"redirect_uri": {redirect}, "state": {state}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	authURL := c.base + "/oauth2/authorize?" + q.Encode()
	fmt.Fprintf(cmd.OutOrStdout(), "Open this address in a browser to sign in:\n\n  %s\n\n", authURL)

	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		qs := r.URL.Query()
		var res result
		switch {
		case subtle.ConstantTimeCompare([]byte(qs.Get("state")), []byte(state)) != 1:
			res.err = errors.New("the sign-in answered with another state: start again")
		case qs.Get("error") != "":
			res.err = fmt.Errorf("sign-in refused: %s %s", qs.Get("error"), qs.Get("error_description"))
		case qs.Get("code") == "":
			res.err = errors.New("the sign-in answered without a code")
		default:
			res.code = qs.Get("code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		msg := "You are signed in to the Verity command line. You can close this window."
		if res.err != nil {
			msg = "Sign-in failed: " + res.err.Error()
		}
		fmt.Fprintf(w, "<!doctype html><html lang=en><title>Verity</title><p>%s</p></html>", html.EscapeString(msg))
		select {
		case done <- res:
		default:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		return creds, errors.New("no sign-in within the time allowed: start again")
	}
	if res.err != nil {
		return creds, res.err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {res.code}, "redirect_uri": {redirect},
		"client_id": {bootstrap.CLIAppID}, "code_verifier": {verifier}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return creds, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return creds, fmt.Errorf("redeem the sign-in's code: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return creds, fmt.Errorf("redeem the sign-in's code: %d %s %s", resp.StatusCode, tok.Error, tok.Description)
	}
	creds.Token = tok.AccessToken
	creds.ExpiresAt = time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Format(time.RFC3339)
	return creds, nil
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
