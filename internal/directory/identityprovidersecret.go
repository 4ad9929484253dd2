package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// KindIdentityProviderSecret is the store record kind of identity
// providers' client secrets: ID and Subject are the provider's id, the
// body an idpSecretRecord holding the secret sealed. Records never reach a
// snapshot, the change log or an export.
const KindIdentityProviderSecret = "identityProviderSecret"

// ClientSecretPlaceholder is what a read shows for a client secret that is
// set, as Graph does; sent back in an update, it leaves the secret as it
// is.
const ClientSecretPlaceholder = "****"

// maxIdentityProviderSecret bounds a client secret.
const maxIdentityProviderSecret = 1024

// sealPurposeIdentityProviderSecret binds a sealed secret to its use.
const sealPurposeIdentityProviderSecret = "identityProviderClientSecret"

// Sealer encrypts secrets at rest, binding each to a purpose and an id so
// that a sealed value cannot be moved to another object or use.
// *keyring.Keyring implements it.
type Sealer interface {
	Seal(purpose, id string, plaintext []byte) ([]byte, error)
	Open(purpose, id string, sealed []byte) ([]byte, error)
}

// ErrNoClientSecret means the identity provider, as it exists now, has no
// client secret.
var ErrNoClientSecret = errors.New("the identity provider has no client secret")

// idpSecretRecord is the body of a KindIdentityProviderSecret record.
type idpSecretRecord struct {
	// IdentityProviderCreated binds the secret to the registration it was
	// set for, so that a provider deleted and made again with the same id
	// (from an export) does not inherit it.
	IdentityProviderCreated *time.Time `json:"identityProviderCreatedDateTime,omitempty"`
	Sealed                  []byte     `json:"sealed"`
	UpdatedDateTime         time.Time  `json:"updatedDateTime"`
}

func (b *idpSecretRecord) boundTo(p *IdentityProvider) bool {
	if (b.IdentityProviderCreated == nil) != (p.CreatedDateTime == nil) {
		return false
	}
	return b.IdentityProviderCreated == nil || b.IdentityProviderCreated.Equal(*p.CreatedDateTime)
}

// CheckClientSecret checks a client secret given for an identity provider:
// 1 to 1024 characters of valid UTF-8 without control characters, and not
// the placeholder reads show.
func CheckClientSecret(path, secret string) error {
	switch {
	case secret == "":
		return strictjson.Errorf(path, "must not be empty; null removes the secret")
	case secret == ClientSecretPlaceholder:
		return strictjson.Errorf(path, "is the placeholder reads show, not a secret")
	case len(secret) > maxIdentityProviderSecret:
		return strictjson.Errorf(path, "must be at most %d bytes", maxIdentityProviderSecret)
	case !utf8.ValidString(secret):
		return strictjson.Errorf(path, "must be valid UTF-8")
	}
	for _, r := range secret {
		if r < 0x20 || r == 0x7f {
			return strictjson.Errorf(path, "must not contain control characters")
		}
	}
	return nil
}

// SetIdentityProviderSecret seals secret with sealer and stores it as the
// client secret of p (as stored: its id and createdDateTime bind it),
// replacing any earlier one.
func SetIdentityProviderSecret(ctx context.Context, st store.Store, sealer Sealer, p *IdentityProvider, secret string) error {
	if err := CheckClientSecret("clientSecret", secret); err != nil {
		return err
	}
	if sealer == nil {
		return errors.New("set client secret: no keyring to seal it with")
	}
	sealed, err := sealer.Seal(sealPurposeIdentityProviderSecret, p.ID, []byte(secret))
	if err != nil {
		return fmt.Errorf("set client secret of identity provider %s: %w", p.ID, err)
	}
	body, err := json.Marshal(idpSecretRecord{IdentityProviderCreated: p.CreatedDateTime, Sealed: sealed, UpdatedDateTime: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("set client secret of identity provider %s: %w", p.ID, err)
	}
	if _, err := st.PutRecord(ctx, store.Record{Kind: KindIdentityProviderSecret, ID: p.ID, Subject: p.ID, Body: body}); err != nil {
		return fmt.Errorf("set client secret of identity provider %s: %w", p.ID, err)
	}
	return nil
}

// IdentityProviderSecret returns the client secret of p, opened with
// sealer: ErrNoClientSecret when it has none (or only one set for an
// earlier registration with its id).
func IdentityProviderSecret(ctx context.Context, st store.Store, sealer Sealer, p *IdentityProvider) (string, error) {
	b, err := loadIDPSecret(ctx, st, p)
	if err != nil {
		return "", err
	}
	if sealer == nil {
		return "", errors.New("client secret: no keyring to open it with")
	}
	plain, err := sealer.Open(sealPurposeIdentityProviderSecret, p.ID, b.Sealed)
	if err != nil {
		return "", fmt.Errorf("client secret of identity provider %s: %w", p.ID, err)
	}
	return string(plain), nil
}

// HasIdentityProviderSecret reports whether p has a client secret.
func HasIdentityProviderSecret(ctx context.Context, st store.Store, p *IdentityProvider) (bool, error) {
	_, err := loadIDPSecret(ctx, st, p)
	if errors.Is(err, ErrNoClientSecret) {
		return false, nil
	}
	return err == nil, err
}

func loadIDPSecret(ctx context.Context, st store.Store, p *IdentityProvider) (*idpSecretRecord, error) {
	r, err := st.GetRecord(ctx, KindIdentityProviderSecret, p.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoClientSecret
	}
	if err != nil {
		return nil, fmt.Errorf("client secret of identity provider %s: %w", p.ID, err)
	}
	var b idpSecretRecord
	if err := json.Unmarshal(r.Body, &b); err != nil {
		return nil, fmt.Errorf("client secret of identity provider %s: decode: %w", p.ID, err)
	}
	if !b.boundTo(p) {
		return nil, ErrNoClientSecret
	}
	return &b, nil
}

// RemoveIdentityProviderSecret deletes the client secret record of the
// identity provider id; nil when there is none.
func RemoveIdentityProviderSecret(ctx context.Context, st store.Store, id string) error {
	err := st.DeleteRecord(ctx, KindIdentityProviderSecret, lowerGUID(id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("remove client secret of identity provider %s: %w", id, err)
	}
	return nil
}
