package keyring

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/verityhq/verity/internal/store/storetest"
)

func benchKeyring(b *testing.B, alg jose.SignatureAlgorithm) *Keyring {
	b.Helper()
	return openKeyring(b, storetest.OpenSQLite(b), newMasterKey32(b), Options{Algorithm: alg})
}

var benchPlaintext = make([]byte, 1024)

func BenchmarkSeal(b *testing.B) {
	k := benchKeyring(b, ES256)
	b.SetBytes(int64(len(benchPlaintext)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Seal("totp secret", "0b6f0c52-9a3e-4c7e-8d7e-2f3c1b2a4d5e", benchPlaintext); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := benchKeyring(b, ES256)
	const id = "0b6f0c52-9a3e-4c7e-8d7e-2f3c1b2a4d5e"
	sealed, err := k.Seal("totp secret", id, benchPlaintext)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchPlaintext)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open("totp secret", id, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// benchClaims is the size of a typical ID token's claims.
var benchClaims = []byte(`{"iss":"https://verity.example.com","sub":"0b6f0c52-9a3e-4c7e-8d7e-2f3c1b2a4d5e",` +
	`"aud":"6d1f8a40-2c4b-4e8e-9b0a-7c5d3e2f1a0b","exp":1772359200,"iat":1772355600,"auth_time":1772355590,` +
	`"nonce":"n-0S6_WzA2Mj","email":"alice@example.com","name":"Alice Example","amr":["pwd","otp"]}`)

func benchSign(b *testing.B, alg jose.SignatureAlgorithm) {
	k := benchKeyring(b, alg)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := k.Signer(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Sign("JWT", benchClaims); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignES256(b *testing.B) { benchSign(b, ES256) }
func BenchmarkSignEdDSA(b *testing.B) { benchSign(b, EdDSA) }

func BenchmarkVerifyES256(b *testing.B) {
	k := benchKeyring(b, ES256)
	ctx := context.Background()
	tok, _ := mustSign(b, k, string(benchClaims))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJWKS reads the cached key set, as the JWKS endpoint does.
func BenchmarkJWKS(b *testing.B) {
	k := benchKeyring(b, ES256)
	ctx := context.Background()
	if _, err := k.Rotate(ctx); err != nil { // two keys published
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if doc, err := k.JWKSJSON(ctx); err != nil || len(doc) == 0 {
			b.Fatal(err)
		}
	}
}
