package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// Sealer encrypts secrets at rest, binding each to a purpose and an id so
// that a sealed value cannot be moved to another user or use.
// *keyring.Keyring implements it.
type Sealer interface {
	Seal(purpose, id string, plaintext []byte) ([]byte, error)
	Open(purpose, id string, sealed []byte) ([]byte, error)
}

// Record kinds of this package.
const (
	kindMethods = "authMethods"
	kindFlow    = "signinFlow"
	kindSession = "session"
)

// sealPurposeTOTP is the Sealer purpose of TOTP secrets.
const sealPurposeTOTP = "totp"

// Methods is what a user has registered beyond the password, and the
// password's own state: one record per user, updated by compare-and-swap
// so that two nodes cannot both accept one TOTP step or recovery code.
type Methods struct {
	TOTP *TOTPMethod `json:"totp,omitempty"`
	// RecoveryCodes are the hashes of the unused recovery codes.
	RecoveryCodes []string `json:"recoveryCodes,omitempty"`
	// Passkeys are the user's WebAuthn credentials.
	Passkeys []Passkey `json:"passkeys,omitempty"`
	// MustChangePassword is set by an administrator's reset: the next
	// sign-in must change the password before it completes.
	MustChangePassword bool      `json:"mustChangePassword,omitempty"`
	PasswordChangedAt  time.Time `json:"passwordChangedAt,omitzero"`

	version int64
}

// TOTPMethod is an enrolled authenticator app.
type TOTPMethod struct {
	Secret     []byte    `json:"secret"` // sealed
	LastStep   int64     `json:"lastStep"`
	EnrolledAt time.Time `json:"enrolledAt"`
}

// loadMethods reads a user's methods; a user without a record has none.
func loadMethods(ctx context.Context, st store.Store, userID string) (*Methods, error) {
	r, err := st.GetRecord(ctx, kindMethods, userID)
	if errors.Is(err, store.ErrNotFound) {
		return &Methods{}, nil
	}
	if err != nil {
		return nil, err
	}
	var m Methods
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return nil, fmt.Errorf("authentication methods of %s: %w", userID, err)
	}
	m.version = r.Version
	return &m, nil
}

// saveMethods writes m if nobody else wrote since it was read:
// store.ErrConflict otherwise, and the caller starts over.
func saveMethods(ctx context.Context, st store.Store, userID string, m *Methods) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	r := store.Record{Kind: kindMethods, ID: userID, Subject: userID, Body: body, Version: m.version}
	if m.version == 0 {
		r, err = st.CreateRecord(ctx, r)
	} else {
		r, err = st.UpdateRecord(ctx, r)
	}
	if err != nil {
		return err
	}
	m.version = r.Version
	return nil
}

// updateMethods applies fn to the user's current methods and saves them,
// retrying when another write came in between. fn may be called more than
// once and must not have effects beyond m.
func updateMethods(ctx context.Context, st store.Store, userID string, fn func(m *Methods) error) (*Methods, error) {
	for range 5 {
		m, err := loadMethods(ctx, st, userID)
		if err != nil {
			return nil, err
		}
		if err := fn(m); err != nil {
			return nil, err
		}
		switch err := saveMethods(ctx, st, userID, m); {
		case err == nil:
			return m, nil
		case !errors.Is(err, store.ErrConflict):
			return nil, err
		}
	}
	return nil, fmt.Errorf("authentication methods of %s: too many concurrent changes", userID)
}

// MustChangePassword reports whether the user's next sign-in must change
// the password.
func MustChangePassword(ctx context.Context, st store.Store, userID string) (bool, error) {
	m, err := loadMethods(ctx, st, userID)
	if err != nil {
		return false, err
	}
	return m.MustChangePassword, nil
}

// SetMustChangePassword marks (or clears) that the user's next sign-in
// must change the password, as an administrator's reset does.
func SetMustChangePassword(ctx context.Context, st store.Store, userID string, must bool) error {
	_, err := updateMethods(ctx, st, userID, func(m *Methods) error {
		m.MustChangePassword = must
		return nil
	})
	return err
}

// ResetMethods removes a user's second factors (an administrator's reset
// of a lost authenticator); the user enrolls again at the next sign-in
// that needs one.
func ResetMethods(ctx context.Context, st store.Store, userID string) error {
	_, err := updateMethods(ctx, st, userID, func(m *Methods) error {
		m.TOTP, m.RecoveryCodes, m.Passkeys = nil, nil, nil
		return nil
	})
	return err
}
