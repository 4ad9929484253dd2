package keyring

import (
	"context"
	"errors"
	"fmt"
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
	payload, err := jws.Verify(kk.public.Key)
	if err != nil {
		return nil, jose.Header{}, fmt.Errorf("keyring: %w: %w", ErrInvalidToken, err)
	}
	return payload, h, nil
}

// reloadNow reads the state again unless a view younger than
// unknownKIDRefresh appeared meanwhile.
func (k *Keyring) reloadNow(ctx context.Context) (*view, error) {
	k.reload.Lock()
	defer k.reload.Unlock()
	return k.load(ctx, k.opts.Now(), unknownKIDRefresh)
}
