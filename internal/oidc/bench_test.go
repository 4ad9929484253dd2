package oidc_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
)

// BenchmarkTokenEndpointCode measures the token endpoint redeeming a code
// of the confidential client (secret, PKCE, offline_access): code
// redemption by compare-and-swap, the grant and refresh token records, an
// ES256 ID token and access token. The codes are made beforehand, through
// the real authorize and sign-in endpoints with one session, so password
// hashing and the browser flow are outside the timing. Run with -cpu 1
// for the figure on one core.
func BenchmarkTokenEndpointCode(b *testing.B) {
	e := newEnv(b)
	c := e.browser()
	a := e.web()
	a.scope = "openid profile offline_access"
	if u, _, _ := e.authorize(c, a); u.Query().Get("code") == "" {
		b.Fatalf("sign-in: %s", u)
	}
	codes := make([]string, b.N)
	verifiers := make([]string, b.N)
	for i := range codes {
		a := e.web()
		a.scope = "openid profile offline_access"
		u, _, _ := e.get(c, a.url(e.issuer))
		if codes[i] = u.Query().Get("code"); codes[i] == "" {
			b.Fatalf("authorization %d: %s", i, u)
		}
		verifiers[i] = a.verifier
	}
	h := e.p.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range codes {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {codes[i]}, "redirect_uri": {e.webRedirect}, "code_verifier": {verifiers[i]}}
		req := httptest.NewRequest(http.MethodPost, e.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(webApp, e.secret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("token %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tokens/s")
}

// BenchmarkIDTokenVerify compares a relying party's full check of a Verity
// ID token (go-oidc's verifier: parse, ES256 signature, iss, aud, exp)
// and the keyring's own Verify with the bare ES256 signature check under
// it. The three run in turn in every iteration, so that a shared machine's
// changing load falls on all three alike; each is timed apart and the
// overheads over the bare check are reported as percentages.
func BenchmarkIDTokenVerify(b *testing.B) {
	e := newEnv(b)
	a := e.web()
	code, _ := e.code(a)
	tok := e.exchange(a, code).IDToken
	ctx := context.Background()
	set, err := e.kr.JWKS(ctx)
	if err != nil {
		b.Fatal(err)
	}
	pub := set.Keys[0].Key.(*ecdsa.PublicKey)
	rp := gooidc.NewVerifier(e.issuer, &gooidc.StaticKeySet{PublicKeys: []crypto.PublicKey{pub}}, &gooidc.Config{ClientID: webApp, SupportedSigningAlgs: []string{gooidc.ES256}})
	dot := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil || len(sig) != 64 {
		b.Fatal("not an ES256 signature")
	}
	checks := []struct {
		name string
		run  func() error
	}{
		{"bare", func() error {
			digest := sha256.Sum256([]byte(tok[:dot]))
			if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
				return errors.New("signature does not verify")
			}
			return nil
		}},
		{"keyring", func() error { _, _, err := e.kr.Verify(ctx, tok); return err }},
		{"go-oidc", func() error { _, err := rp.Verify(ctx, tok); return err }},
	}
	spent := make([]time.Duration, len(checks))
	for b.Loop() {
		for i, c := range checks {
			t0 := time.Now()
			if err := c.run(); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			spent[i] += time.Since(t0)
		}
	}
	for i, c := range checks {
		b.ReportMetric(float64(spent[i].Microseconds())/float64(b.N), c.name+"-µs/op")
		if i > 0 {
			b.ReportMetric(100*(float64(spent[i])/float64(spent[0])-1), c.name+"-overhead-%")
		}
	}
}

// BenchmarkTokenEndpointClientCredentials measures the token endpoint
// issuing an access token to a confidential client with its secret
// (client credentials): the secret check against its records, conditional
// access for the workload, an ES256 access token. Nothing is written per
// token. Run with -cpu 1 for the figure on one core.
func BenchmarkTokenEndpointClientCredentials(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{keyring.ES256, keyring.EdDSA} {
		b.Run(string(alg), func(b *testing.B) { benchClientCredentials(b, alg) })
	}
}

func benchClientCredentials(b *testing.B, alg jose.SignatureAlgorithm) {
	e := newEnvKeys(b, keyring.Options{Algorithm: alg})
	h := e.p.Handler()
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	ctx := context.Background()
	// A bare ES256 signature, timed between tokens, is the yardstick: the
	// machine's load changes from run to run, the ratio much less.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("yardstick"))
	var tokens, signing time.Duration
	signatures := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// http.NewRequest, not httptest's, which parses a whole request
		// text with a fresh 4 KiB reader (a server pools its readers).
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.issuer+"/oauth2/token", strings.NewReader(form))
		req.RemoteAddr = "192.0.2.1:1234"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(webApp, e.secret)
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, req)
		tokens += time.Since(t0)
		if rec.Code != http.StatusOK {
			b.Fatalf("token %d: %d %s", i, rec.Code, rec.Body)
		}
		if i%8 == 0 {
			t0 = time.Now()
			if _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); err != nil {
				b.Fatal(err)
			}
			signing += time.Since(t0)
			signatures++
		}
	}
	perToken := tokens.Seconds() / float64(b.N)
	perSignature := signing.Seconds() / float64(signatures)
	b.ReportMetric(1/perToken, "tokens/s")
	b.ReportMetric(perToken/perSignature, "signatures/token")
}

// TestRemovedSecretStopsWithinASecond: a node trusts a verified client
// secret for at most a second, so removing it stops its use everywhere
// within that time.
func TestRemovedSecretStopsWithinASecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	grant := func() int {
		req := httptest.NewRequest(http.MethodPost, e.issuer+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(webApp, e.secret)
		rec := httptest.NewRecorder()
		e.p.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	if code := grant(); code != http.StatusOK {
		t.Fatalf("client credentials: %d", code)
	}
	n, err := directory.DeleteClientSecrets(context.Background(), e.st, webApp)
	if err != nil || n == 0 {
		t.Fatalf("delete secrets: %d %v", n, err)
	}
	time.Sleep(1100 * time.Millisecond)
	if code := grant(); code == http.StatusOK {
		t.Fatal("a removed client secret still works after a second")
	}
}

// TestTokenRedemptionsAreSignIns: a client credentials grant is a service
// principal sign-in in the sign-in log, a wrong secret a failed one.
func TestTokenRedemptionsAreSignIns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	grant := func(secret string) int {
		req := httptest.NewRequest(http.MethodPost, e.issuer+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(webApp, secret)
		rec := httptest.NewRecorder()
		e.p.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	if grant(e.secret) != http.StatusOK || grant("not the secret") == http.StatusOK {
		t.Fatal("client credentials")
	}
	var got []signin.Event
	for range 100 { // successes are queued for the next group commit
		evs, err := e.st.ListAudit(context.Background(), store.AuditQuery{Action: signin.AuditAction, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, a := range evs {
			var ev signin.Event
			if json.Unmarshal(a.Details, &ev) == nil && slices.Contains(ev.SignInEventTypes, "servicePrincipal") {
				got = append(got, ev)
			}
		}
		if len(got) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 2 {
		t.Fatalf("%d service principal sign-ins logged, want 2", len(got))
	}
	codes := []int{got[0].Status.ErrorCode, got[1].Status.ErrorCode}
	if !slices.Contains(codes, 0) || !slices.Contains(codes, 7000215) {
		t.Fatalf("codes %v", codes)
	}
	for _, ev := range got {
		if ev.AppID != webApp || ev.ServicePrincipalID == "" {
			t.Fatalf("event %+v", ev)
		}
	}
}
