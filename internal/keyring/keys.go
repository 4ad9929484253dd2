package keyring

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// keyBody is the stored form of a signing key. Only the sealed private key
// is trusted: the algorithm and public key are derived from it on load, so
// someone who can write to the database but lacks the master key cannot
// slip a verification key of theirs into the JWKS.
type keyBody struct {
	Alg        jose.SignatureAlgorithm `json:"alg"`        // informational
	PrivateKey []byte                  `json:"privateKey"` // PKCS #8, sealed for purposeSigningKey and the kid
}

// key is one loaded signing key.
type key struct {
	kid    string
	alg    jose.SignatureAlgorithm
	public jose.JSONWebKey // public half only, with kid, alg and use
	signer *Signer
}

// generateKey makes a new key of alg and its stored body.
func (k *Keyring) generateKey(alg jose.SignatureAlgorithm) (*key, []byte, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("keyring: cannot generate a %q key", alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: generate %s key: %w", alg, err)
	}
	kid, err := keyID(priv.Public())
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: encode %s key: %w", alg, err)
	}
	defer clear(der)
	sealed, err := k.seal.seal(purposeSigningKey, kid, der)
	if err != nil {
		return nil, nil, err
	}
	body, err := json.Marshal(keyBody{Alg: alg, PrivateKey: sealed})
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: encode key record: %w", err)
	}
	kk, err := newKey(kid, priv)
	return kk, body, err
}

// loadKey opens a stored key body and checks that it is the key kid names.
func (k *Keyring) loadKey(kid string, body []byte) (*key, error) {
	var b keyBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("keyring: signing key %s: decode record: %w", kid, err)
	}
	der, err := k.seal.open(purposeSigningKey, kid, b.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("keyring: signing key %s: %w", kid, err)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keyring: signing key %s: parse private key: %w", kid, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keyring: signing key %s: unsupported key type %T", kid, parsed)
	}
	if got, err := keyID(priv.Public()); err != nil {
		return nil, err
	} else if got != kid {
		return nil, fmt.Errorf("keyring: signing key %s: key material does not match its id", kid)
	}
	return newKey(kid, priv)
}

func newKey(kid string, priv crypto.Signer) (*key, error) {
	var alg jose.SignatureAlgorithm
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("keyring: signing key %s: ECDSA curve %s is not P-256", kid, p.Curve.Params().Name)
		}
		alg = ES256
	case ed25519.PrivateKey:
		alg = EdDSA
	default:
		return nil, fmt.Errorf("keyring: signing key %s: unsupported key type %T", kid, priv)
	}
	s, err := newSigner(kid, alg, priv)
	if err != nil {
		return nil, err
	}
	return &key{
		kid:    kid,
		alg:    alg,
		public: jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"},
		signer: s,
	}, nil
}

// keyID is the RFC 7638 thumbprint (SHA-256, base64url) of a public key:
// stable, unique per key, and checkable from the key alone.
func keyID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keyring: key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// Signer signs tokens with one key. It is what Keyring.Signer returns: the
// key that is current when asked. Safe for concurrent use.
type Signer struct {
	kid   string
	alg   jose.SignatureAlgorithm
	priv  crypto.Signer
	plain jose.Signer
	typed sync.Map // typ -> jose.Signer
}

func newSigner(kid string, alg jose.SignatureAlgorithm, priv crypto.Signer) (*Signer, error) {
	s := &Signer{kid: kid, alg: alg, priv: priv}
	var err error
	if s.plain, err = s.joseSigner(""); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Signer) joseSigner(typ string) (jose.Signer, error) {
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: jose.JSONWebKey{Key: s.priv, KeyID: s.kid}}, opts)
	if err != nil {
		return nil, fmt.Errorf("keyring: %s signer: %w", s.alg, err)
	}
	return js, nil
}

// KeyID is the key's "kid", as published in the JWKS.
func (s *Signer) KeyID() string { return s.kid }

// Algorithm is the key's JWS "alg".
func (s *Signer) Algorithm() jose.SignatureAlgorithm { return s.alg }

// Sign returns payload as a compact JWS whose protected header holds alg,
// kid and, when typ is not empty, typ ("JWT", "at+jwt").
func (s *Signer) Sign(typ string, payload []byte) (string, error) {
	js := s.plain
	if typ != "" {
		if v, ok := s.typed.Load(typ); ok {
			js = v.(jose.Signer)
		} else {
			var err error
			if js, err = s.joseSigner(typ); err != nil {
				return "", err
			}
			s.typed.Store(typ, js)
		}
	}
	jws, err := js.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keyring: sign with %s: %w", s.kid, err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("keyring: sign with %s: %w", s.kid, err)
	}
	return out, nil
}
