package keyring

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/verityhq/verity/internal/store/storetest"
)

// TestOpaqueSigner signs through go-jose with the opaque signer and checks
// that Verify (and so every relying party reading the JWKS) accepts the
// result, for both algorithms; a request for another algorithm fails.
func TestOpaqueSigner(t *testing.T) {
	t.Parallel()
	for _, alg := range []jose.SignatureAlgorithm{ES256, EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			k := openKeyring(t, storetest.OpenSQLite(t), newMasterKey32(t), Options{Algorithm: alg})
			s, err := k.Signer(ctx)
			if err != nil {
				t.Fatal(err)
			}
			op := s.OpaqueSigner()
			if pub := op.Public(); pub.KeyID != s.KeyID() || !pub.IsPublic() || pub.Algorithm != string(alg) {
				t.Fatalf("public key %+v", pub)
			}
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: &jose.JSONWebKey{Key: op, KeyID: s.KeyID()}},
				(&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				t.Fatal(err)
			}
			jws, err := js.Sign([]byte(`{"sub":"alice"}`))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jws.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			payload, h, err := k.Verify(ctx, tok)
			if err != nil || string(payload) != `{"sub":"alice"}` || h.KeyID != s.KeyID() {
				t.Fatalf("Verify = %q, %+v, %v", payload, h, err)
			}
			other := jose.EdDSA
			if alg == EdDSA {
				other = jose.ES256
			}
			if _, err := op.SignPayload([]byte("x"), other); err == nil {
				t.Fatalf("a %s key signed with %s", alg, other)
			}
		})
	}
}
