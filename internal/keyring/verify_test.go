package keyring

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/verityhq/verity/internal/store/storetest"
)

// forge signs payload with key under alg, putting kid in the header.
func forge(t *testing.T, alg jose.SignatureAlgorithm, key any, kid, payload string) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	k := openKeyring(t, st, newMasterKey32(t), Options{})
	const payload = `{"sub":"alice","admin":false}`
	good, kid := mustSign(t, k, payload)
	parts := strings.Split(good, ".")

	set, err := k.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub := set.Keys[0].Key.(*ecdsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pubJWK, _ := json.Marshal(set.Keys[0])
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edAttacker, _ := ed25519.GenerateKey(rand.Reader)

	tests := []struct {
		name  string
		token string
	}{
		{"alg none", b64(`{"alg":"none","kid":"`+kid+`"}`) + "." + b64(payload) + "."},
		{"alg none, no signature part", b64(`{"alg":"none","kid":"`+kid+`"}`) + "." + b64(payload)},
		{"HS256 keyed with the public key PEM", forge(t, jose.HS256, pubPEM, kid, payload)},
		{"HS256 keyed with the public JWK", forge(t, jose.HS256, pubJWK, kid, payload)},
		{"unknown kid", forge(t, jose.ES256, attacker, "not-a-published-kid", payload)},
		{"attacker's key under our kid", forge(t, jose.ES256, attacker, kid, payload)},
		{"EdDSA under our kid", forge(t, jose.EdDSA, edAttacker, kid, payload)},
		{"no kid", forge(t, jose.ES256, attacker, "", payload)},
		{"tampered payload", parts[0] + "." + b64(`{"sub":"alice","admin":true}`) + "." + parts[2]},
		{"tampered signature", parts[0] + "." + parts[1] + "." + b64("x") + parts[2][2:]},
		{"signature from another token", parts[0] + "." + parts[1] + "." + strings.Split(mustSignStr(t, k, "{}"), ".")[2]},
		{"header alg changed", b64(`{"alg":"ES384","kid":"`+kid+`"}`) + "." + parts[1] + "." + parts[2]},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`},
		{"too long", parts[0] + "." + strings.Repeat("A", maxTokenBytes) + "." + parts[2]},
		{"empty", ""},
		{"garbage", "a.b.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, _, err := k.Verify(ctx, tt.token)
			if err == nil || p != nil {
				t.Fatalf("accepted: %q", p)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
		})
	}

	// A header parameter the verifier must understand (RFC 7515 §4.1.11)
	// is refused even under a good signature.
	signer, err := k.Signer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: ES256, Key: &jose.JSONWebKey{Key: signer.OpaqueSigner(), KeyID: kid}},
		(&jose.SignerOptions{}).WithHeader("crit", []string{"exp"}).WithHeader("exp", 1))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := js.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	critical, _ := jws.CompactSerialize()
	if p, _, err := k.Verify(ctx, critical); !errors.Is(err, ErrInvalidToken) || p != nil {
		t.Fatalf("a crit header was accepted: %q %v", p, err)
	}

	p, h, err := k.Verify(ctx, good)
	if err != nil || string(p) != payload || h.KeyID != kid || h.Algorithm != string(ES256) {
		t.Fatalf("a good token: %q %+v %v", p, h, err)
	}
	if typ := h.ExtraHeaders[jose.HeaderType]; typ != "JWT" {
		t.Fatalf("typ %v", typ)
	}
}

func mustSignStr(t *testing.T, k *Keyring, payload string) string {
	tok, _ := mustSign(t, k, payload)
	return tok
}

// TestVerifyAnotherNodesNewKey checks that a token signed with a key this
// node has not loaded yet (made by Rotate on another node a moment ago)
// verifies after one read, not after the cache expires.
func TestVerifyAnotherNodesNewKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := storetest.SQLitePath(t)
	clk := newClock()
	master := newMasterKey32(t)
	a := openKeyring(t, storetest.OpenDSN(t, dsn), master, Options{Now: clk.Now})
	b := openKeyring(t, storetest.OpenDSN(t, dsn), master, Options{Now: clk.Now})
	mustSign(t, b, "{}") // b caches the first key
	if _, err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	tok, _ := mustSign(t, a, "{}")
	if _, _, err := b.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("b verified a kid it has not loaded within the same instant: %v", err)
	}
	clk.Advance(unknownKIDRefresh)
	if _, _, err := b.Verify(ctx, tok); err != nil {
		t.Fatalf("b does not reload for an unknown kid: %v", err)
	}
}

func TestVerifyEdDSA(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := openKeyring(t, storetest.OpenSQLite(t), newMasterKey32(t), Options{Algorithm: EdDSA})
	tok, kid := mustSign(t, k, `{"a":1}`)
	if p, h, err := k.Verify(ctx, tok); err != nil || string(p) != `{"a":1}` || h.Algorithm != "EdDSA" || h.KeyID != kid {
		t.Fatalf("%q %+v %v", p, h, err)
	}
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, _, err := k.Verify(ctx, forge(t, jose.ES256, attacker, kid, "{}")); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("ES256 token under an EdDSA kid: %v", err)
	}
}
