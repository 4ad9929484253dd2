package keyring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/verityhq/verity/internal/store"
)

// Signature algorithms a Keyring signs with.
const (
	// ES256 is ECDSA on P-256 with SHA-256, the default: every OIDC relying
	// party supports it.
	ES256 = jose.ES256
	// EdDSA is Ed25519, smaller and faster, for relying parties that
	// accept it.
	EdDSA = jose.EdDSA
)

// Lifecycle defaults.
const (
	DefaultRotateEvery  = 30 * 24 * time.Hour
	DefaultPublishAhead = 24 * time.Hour
	DefaultRetainAfter  = 24 * time.Hour
)

// Record kinds and ids the keyring owns.
const (
	kindKeyring    = "keyring"    // small records of the keyring itself
	idSigningState = "signing"    // kindKeyring: the signing key lifecycle
	idMasterCheck  = "masterKey"  // kindKeyring: proves which master key seals this database
	kindSigningKey = "signingKey" // one per signing key, id = kid
	subjectKeyring = "keyring"    // Subject of every record above, to list them together

	purposeSigningKey  = "signing key"
	purposeMasterCheck = "master key check"
)

// Options tunes a Keyring. The zero value is ES256 with the default
// lifecycle and the wall clock.
type Options struct {
	// Algorithm signs new keys: ES256 (default) or EdDSA. Changing it
	// publishes a key of the new algorithm at the next Maintain and signs
	// with it PublishAhead later; keys of the old one stay published until
	// retired and deleted.
	Algorithm jose.SignatureAlgorithm
	// RotateEvery is how long a key signs before the next one takes over.
	// Default 30 days.
	RotateEvery time.Duration
	// PublishAhead is how long a key is in the JWKS before it signs, so
	// that relying parties have fetched it by then. Default 24h; less than
	// RotateEvery.
	PublishAhead time.Duration
	// RetainAfter is how long a key stays published after it stopped
	// signing: at least the lifetime of the longest-lived token it signs.
	// Default 24h.
	RetainAfter time.Duration
	// OldMasterKeys open data sealed under earlier master keys but never
	// seal. Keep one until Rewrap has moved everything off it.
	OldMasterKeys [][]byte
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives maintenance failures and transitions; default none.
	Logger *slog.Logger
}

func (o *Options) fill() error {
	if o.Algorithm == "" {
		o.Algorithm = ES256
	}
	if o.Algorithm != ES256 && o.Algorithm != EdDSA {
		return fmt.Errorf("keyring: algorithm must be %s or %s, not %q", ES256, EdDSA, o.Algorithm)
	}
	if o.RotateEvery == 0 {
		o.RotateEvery = DefaultRotateEvery
	}
	if o.PublishAhead == 0 {
		o.PublishAhead = DefaultPublishAhead
	}
	if o.RetainAfter == 0 {
		o.RetainAfter = DefaultRetainAfter
	}
	if o.RotateEvery < 0 || o.PublishAhead < 0 || o.RetainAfter < 0 {
		return errors.New("keyring: rotateEvery, publishAhead and retainAfter must not be negative")
	}
	if o.PublishAhead >= o.RotateEvery {
		return fmt.Errorf("keyring: publishAhead (%s) must be less than rotateEvery (%s)", o.PublishAhead, o.RotateEvery)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Keyring seals secrets under the master key and keeps the token-signing
// keys of every node sharing one store. It is safe for concurrent use.
type Keyring struct {
	st   store.Store
	seal *sealer
	opts Options

	view     atomic.Pointer[view]
	reload   sync.Mutex // one reload of view at a time
	maintain sync.Mutex // one Maintain or Rotate at a time on this node

	// orphanAge is how old an unreferenced signing key record must be
	// before Maintain deletes it: long enough that it cannot be a key
	// another node has just made and is about to list.
	orphanAge time.Duration
}

// Open returns the keyring of st. It checks that masterKey (or one of
// opts.OldMasterKeys) is the key this database's secrets are sealed under,
// recording it when the database has none yet, and makes sure a signing
// key is current. Every node sharing st must use the same master key.
func Open(ctx context.Context, st store.Store, masterKey []byte, opts Options) (*Keyring, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	s, err := newSealer(masterKey, opts.OldMasterKeys)
	if err != nil {
		return nil, err
	}
	opts.OldMasterKeys = nil // the sealer holds its own copies
	k := &Keyring{st: st, seal: s, opts: opts, orphanAge: time.Hour}
	if err := k.checkMasterKey(ctx); err != nil {
		return nil, err
	}
	if err := k.Maintain(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// MasterKeyID is the hex id of the master key that seals, as it appears in
// envelopes and errors.
func (k *Keyring) MasterKeyID() string { return k.seal.current.ID() }

// Seal encrypts plaintext for purpose and id ("totp secret", user id) under
// the current master key. Only Open with the same purpose and id opens it.
func (k *Keyring) Seal(purpose, id string, plaintext []byte) ([]byte, error) {
	return k.seal.seal(purpose, id, plaintext)
}

// Open decrypts what Seal sealed for purpose and id, under the current or
// an old master key. Errors wrap ErrMalformed, ErrUnknownVersion,
// ErrWrongKey or ErrTampered.
func (k *Keyring) Open(purpose, id string, sealed []byte) ([]byte, error) {
	return k.seal.open(purpose, id, sealed)
}

// NeedsRewrap reports whether sealed is under an old master key or an old
// envelope format, so that its owner should Rewrap and store it again. It
// reads only the envelope header and proves nothing about the contents.
func (k *Keyring) NeedsRewrap(sealed []byte) bool { return k.seal.needsRewrap(sealed) }

// Rewrap opens sealed and seals the plaintext again under the current
// master key and envelope format.
func (k *Keyring) Rewrap(purpose, id string, sealed []byte) ([]byte, error) {
	return k.seal.rewrap(purpose, id, sealed)
}

// checkMasterKey refuses a master key that does not open the database's
// check record, so that a node with the wrong key file fails at start
// instead of sealing secrets no other node can open.
func (k *Keyring) checkMasterKey(ctx context.Context) error {
	for range 3 {
		r, err := k.st.GetRecord(ctx, kindKeyring, idMasterCheck)
		if errors.Is(err, store.ErrNotFound) {
			body, err := k.seal.seal(purposeMasterCheck, idMasterCheck, []byte(idMasterCheck))
			if err != nil {
				return err
			}
			_, err = k.st.CreateRecord(ctx, store.Record{Kind: kindKeyring, ID: idMasterCheck, Subject: subjectKeyring, Body: body})
			if errors.Is(err, store.ErrConflict) {
				continue // another node recorded its key first: check against it
			}
			if err != nil {
				return fmt.Errorf("keyring: record master key: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("keyring: read master key check: %w", err)
		}
		if _, err := k.seal.open(purposeMasterCheck, idMasterCheck, r.Body); err != nil {
			if errors.Is(err, ErrWrongKey) {
				return fmt.Errorf("keyring: this database's secrets are sealed under another master key than this node's (%s): "+
					"every node sharing a database must use the same master key file: %w", k.MasterKeyID(), err)
			}
			return fmt.Errorf("keyring: master key check: %w", err)
		}
		if k.seal.needsRewrap(r.Body) {
			if r.Body, err = k.seal.rewrap(purposeMasterCheck, idMasterCheck, r.Body); err != nil {
				return err
			}
			if _, err := k.st.UpdateRecord(ctx, r); err != nil && !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("keyring: rewrap master key check: %w", err)
			}
		}
		return nil
	}
	return errors.New("keyring: master key check kept changing under concurrent writes")
}
