package keyring

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// OpaqueSigner returns the key as a go-jose OpaqueSigner, for libraries
// that build their own JWS (the OpenID Connect provider): they sign with
// the key without ever holding the private key. It signs only with the
// key's own algorithm.
func (s *Signer) OpaqueSigner() jose.OpaqueSigner { return opaqueSigner{s} }

type opaqueSigner struct{ s *Signer }

var _ jose.OpaqueSigner = opaqueSigner{}

// Public returns the public half with kid, alg and use, as in the JWKS.
func (o opaqueSigner) Public() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: o.s.priv.Public(), KeyID: o.s.kid, Algorithm: string(o.s.alg), Use: "sig"}
}

// Algs lists the one algorithm the key signs with.
func (o opaqueSigner) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{o.s.alg} }

// SignPayload signs the JWS signing input and returns the signature in
// JWS form: R || S, 32 bytes each, for ES256 (RFC 7518 3.4); the Ed25519
// signature for EdDSA.
func (o opaqueSigner) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != o.s.alg {
		return nil, fmt.Errorf("keyring: key %s signs with %s, not %s", o.s.kid, o.s.alg, alg)
	}
	switch alg {
	case ES256:
		priv, ok := o.s.priv.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("keyring: key %s is not an ECDSA key", o.s.kid)
		}
		digest := sha256.Sum256(payload)
		r, sig, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			return nil, fmt.Errorf("keyring: sign with %s: %w", o.s.kid, err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		sig.FillBytes(out[32:])
		return out, nil
	case EdDSA:
		sig, err := o.s.priv.Sign(rand.Reader, payload, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("keyring: sign with %s: %w", o.s.kid, err)
		}
		return sig, nil
	}
	return nil, fmt.Errorf("keyring: cannot sign with %s", alg)
}
