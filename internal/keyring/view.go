package keyring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/verityhq/verity/internal/store"
)

// ErrNoSigningKey means the store lists no current signing key (Maintain
// has not run against this database yet).
var ErrNoSigningKey = errors.New("keyring: no current signing key")

// refreshEvery is how old a cached view may be before the next caller
// reads the state again; other nodes' transitions show within it.
const refreshEvery = 5 * time.Second

// view is one node's cached copy of the published keys: what signing,
// the JWKS and verification read without touching the database.
type view struct {
	loadedAt time.Time
	current  *key
	byKID    map[string]*key
	jwks     jose.JSONWebKeySet // current first, then next, then retired
	jwksJSON []byte
	algs     []jose.SignatureAlgorithm // of published keys and Options.Algorithm
}

// invalidate makes the next caller reload the view, keeping its keys for
// reuse. It waits for a reload under way, which may have read the state
// from before the caller's change.
func (k *Keyring) invalidate() {
	k.reload.Lock()
	defer k.reload.Unlock()
	if v := k.view.Load(); v != nil {
		stale := *v
		stale.loadedAt = time.Time{}
		k.view.Store(&stale)
	}
}

// current returns a view no older than refreshEvery. When the state cannot
// be read, a view up to staleLimit old still serves; a reload already
// under way on another goroutine lets a fresh-enough view serve at once.
func (k *Keyring) current(ctx context.Context) (*view, error) {
	now := k.opts.Now()
	v := k.view.Load()
	if v != nil && fresh(v, now, refreshEvery) {
		return v, nil
	}
	if v != nil && fresh(v, now, staleLimit) {
		if !k.reload.TryLock() {
			return v, nil // another goroutine is reloading; this view is still good enough
		}
	} else {
		k.reload.Lock()
	}
	defer k.reload.Unlock()
	return k.load(ctx, now, refreshEvery)
}

// load reads the state into a new view unless another goroutine did while
// this one waited for the lock. The caller holds k.reload.
func (k *Keyring) load(ctx context.Context, now time.Time, maxAge time.Duration) (*view, error) {
	old := k.view.Load()
	if old != nil && fresh(old, now, maxAge) {
		return old, nil
	}
	st, _, err := k.loadState(ctx)
	if err == nil {
		var v *view
		if v, err = k.build(ctx, st, now, old); err == nil {
			k.view.Store(v)
			return v, nil
		}
	}
	if old != nil && fresh(old, now, staleLimit) {
		k.opts.Logger.Warn("keyring: refresh signing keys; serving the cached ones", "error", err)
		return old, nil
	}
	return nil, err
}

func fresh(v *view, now time.Time, maxAge time.Duration) bool {
	age := now.Sub(v.loadedAt)
	return age >= 0 && age < maxAge
}

// build loads the keys st lists, reusing those old already holds: keys
// never change, so a refresh costs one read unless a key was added.
func (k *Keyring) build(ctx context.Context, st state, now time.Time, old *view) (*view, error) {
	v := &view{loadedAt: now, byKID: make(map[string]*key, len(st.Keys))}
	order := map[status]int{statusCurrent: 0, statusNext: 1, statusRetired: 2}
	entries := slices.Clone(st.Keys)
	slices.SortStableFunc(entries, func(a, b entry) int {
		if d := order[a.Status] - order[b.Status]; d != 0 {
			return d
		}
		return b.ActivateAt.Compare(a.ActivateAt) // newest first
	})
	v.algs = []jose.SignatureAlgorithm{k.opts.Algorithm}
	for _, e := range entries {
		var kk *key
		if old != nil {
			kk = old.byKID[e.KID]
		}
		if kk == nil {
			r, err := k.st.GetRecord(ctx, kindSigningKey, e.KID)
			if errors.Is(err, store.ErrNotFound) && e.Status == statusRetired {
				continue // deleted since the state was read: it is gone from the JWKS anyway
			}
			if err != nil {
				return nil, fmt.Errorf("keyring: read signing key %s: %w", e.KID, err)
			}
			if kk, err = k.loadKey(e.KID, r.Body); err != nil {
				return nil, err
			}
		}
		v.byKID[kk.kid] = kk
		v.jwks.Keys = append(v.jwks.Keys, kk.public)
		if !slices.Contains(v.algs, kk.alg) {
			v.algs = append(v.algs, kk.alg)
		}
		if e.Status == statusCurrent {
			v.current = kk
		}
	}
	if v.jwks.Keys == nil {
		v.jwks.Keys = []jose.JSONWebKey{}
	}
	var err error
	if v.jwksJSON, err = json.Marshal(v.jwks); err != nil {
		return nil, fmt.Errorf("keyring: encode JWKS: %w", err)
	}
	return v, nil
}

// Signer returns the signer of the current key. Callers sign each token
// with a freshly returned Signer rather than keeping one, so that
// rotations take effect.
func (k *Keyring) Signer(ctx context.Context) (*Signer, error) {
	v, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	if v.current == nil {
		return nil, ErrNoSigningKey
	}
	return v.current.signer, nil
}

// JWKS returns the published public keys: current first, then the next
// key, then retired keys still within RetainAfter. The set is shared;
// callers must not modify it.
func (k *Keyring) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	v, err := k.current(ctx)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return v.jwks, nil
}

// JWKSJSON returns JWKS encoded as a JSON document, ready to serve. The
// bytes are shared; callers must not modify them.
func (k *Keyring) JWKSJSON(ctx context.Context) ([]byte, error) {
	v, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	return v.jwksJSON, nil
}
