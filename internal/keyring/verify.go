package keyring

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ErrInvalidToken is wrapped by every refusal of Verify.
var ErrInvalidToken = errors.New("invalid token")

const (
	// maxTokenBytes bounds what Verify parses.
	maxTokenBytes = 64 << 10
	// unknownKIDRefresh is how soon after a load an unknown kid makes
	// Verify read the state again (a key another node has just made); at
	// most one read per this interval whatever tokens arrive.
	unknownKIDRefresh = time.Second
)

// Verify checks a compact JWS signed by one of the published keys and
// returns its payload and protected header. It accepts only the configured
// algorithm and those of published keys, only a kid that is published,
// and only the algorithm of that key. It does not look inside the
// payload: expiry, issuer and audience are the caller's to check.
func (k *Keyring) Verify(ctx context.Context, token string) ([]byte, jose.Header, error) {
	if len(token) > maxTokenBytes {
		return nil, jose.Header{}, fmt.Errorf("keyring: %w: longer than %d bytes", ErrInvalidToken, maxTokenBytes)
	}
	v, err := k.current(ctx)
	if err != nil {
		return nil, jose.Header{}, err
	}
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		return nil, jose.Header{}, fmt.Errorf("keyring: %w: %w", ErrInvalidToken, err)
	}
	h := jws.Signatures[0].Protected
	if h.KeyID == "" {
		return nil, jose.Header{}, fmt.Errorf("keyring: %w: no kid in the protected header", ErrInvalidToken)
	}
	kk := v.byKID[h.KeyID]
	if kk == nil && !fresh(v, k.opts.Now(), unknownKIDRefresh) {
		if v, err = k.reloadNow(ctx); err != nil {
			return nil, jose.Header{}, err
		}
		kk = v.byKID[h.KeyID]
	}
	if kk == nil {
		return nil, jose.Header{}, fmt.Errorf("keyring: %w: kid is not a published key", ErrInvalidToken)
	}
	if h.Algorithm != string(kk.alg) {
		return nil, jose.Header{}, fmt.Errorf("keyring: %w: alg %q is not the key's %s", ErrInvalidToken, h.Algorithm, kk.alg)
	}
	// go-jose has parsed and checked the header; the signature is checked
	// here over the signing input exactly as received (RFC 7515 §5.2),
	// which spares re-encoding the header (an eighth of the time left
	// beside the signature itself).
	if _, crit := h.ExtraHeaders["crit"]; crit {
		return nil, jose.Header{}, fmt.Errorf("keyring: %w: unsupported crit header", ErrInvalidToken)
	}
	if err := verifySignature(kk, token[:strings.LastIndexByte(token, '.')], jws.Signatures[0].Signature); err != nil {
		return nil, jose.Header{}, fmt.Errorf("keyring: %w: %w", ErrInvalidToken, err)
	}
	return jws.UnsafePayloadWithoutVerification(), h, nil
}

// verifySignature checks a JWS signature of signingInput with kk's public
// key: ES256 is r‖s over SHA-256 (RFC 7518 §3.4), EdDSA is Ed25519 over
// the input itself (RFC 8037 §3.1).
func verifySignature(kk *key, signingInput string, sig []byte) error {
	switch pub := kk.public.Key.(type) {
	case *ecdsa.PublicKey:
		if kk.alg != ES256 || len(sig) != 64 {
			return errors.New("not an ES256 signature")
		}
		digest := sha256.Sum256([]byte(signingInput))
		if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return errors.New("signature does not verify")
		}
	case ed25519.PublicKey:
		if kk.alg != EdDSA || !ed25519.Verify(pub, []byte(signingInput), sig) {
			return errors.New("signature does not verify")
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// reloadNow reads the state again unless a view younger than
// unknownKIDRefresh appeared meanwhile.
func (k *Keyring) reloadNow(ctx context.Context) (*view, error) {
	k.reload.Lock()
	defer k.reload.Unlock()
	return k.load(ctx, k.opts.Now(), unknownKIDRefresh)
}
