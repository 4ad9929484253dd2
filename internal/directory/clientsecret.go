package directory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// KindClientSecret is the store record kind of applications' client
// secrets: Subject is the application's appId, ID the secret's keyId, the
// body a clientSecretRecord (a hash, never the secret). Records never reach
// a snapshot, the change log or an export.
const KindClientSecret = "clientSecret"

// Client secret lifetimes and limits, as Entra sets them.
const (
	// DefaultClientSecretLifetime is how long a secret lasts when the
	// request names no endDateTime.
	DefaultClientSecretLifetime = 180 * 24 * time.Hour
	// MaxClientSecretYears bounds a secret's endDateTime: at most this many
	// years after it is added.
	MaxClientSecretYears = 2
	// MaxClientSecrets is how many live secrets one application may hold;
	// verification compares a presented secret with each of them.
	MaxClientSecrets = 16
)

const (
	// clientSecretMarker follows the three-character hint in every secret
	// Verity issues, so that secret scanners can recognise one:
	// [A-Za-z0-9_-]{3}~vcs~[A-Za-z0-9_-]{43}.
	clientSecretMarker = "~vcs~"
	// maxPresentedSecret bounds what VerifyClientSecret hashes; issued
	// secrets have 51 characters.
	maxPresentedSecret = 256
)

var (
	// ErrInvalidClientSecret means a presented client secret does not
	// match a live secret of the application: wrong, removed, expired, not
	// yet valid, issued to an earlier registration with the same appId, or
	// the application does not exist.
	ErrInvalidClientSecret = errors.New("invalid client secret")
	// ErrTooManyClientSecrets means the application already holds
	// MaxClientSecrets live secrets.
	ErrTooManyClientSecrets = errors.New("too many client secrets")
)

// PasswordCredentialRequest is what the caller of addPassword may choose of
// a new client secret: Graph's passwordCredential without the properties
// the server sets (keyId, hint, secretText).
type PasswordCredentialRequest struct {
	DisplayName   string     `json:"displayName,omitempty"`
	StartDateTime *time.Time `json:"startDateTime,omitempty"` // default now
	EndDateTime   *time.Time `json:"endDateTime,omitempty"`   // default DefaultClientSecretLifetime from now (or the start, if later)
}

// window checks the request against now and returns the secret's
// validity. Errors name the request's property.
func (r *PasswordCredentialRequest) window(now time.Time) (start, end time.Time, err error) {
	if err := checkText("displayName", r.DisplayName, maxDisplayName); err != nil {
		return start, end, err
	}
	// Microseconds: what the store keeps of a record's expiry.
	now = now.UTC().Truncate(time.Microsecond)
	start = now
	if r.StartDateTime != nil {
		start = r.StartDateTime.UTC().Truncate(time.Microsecond)
	}
	end = later(start, now).Add(DefaultClientSecretLifetime)
	if r.EndDateTime != nil {
		end = r.EndDateTime.UTC().Truncate(time.Microsecond)
	}
	limit := now.AddDate(MaxClientSecretYears, 0, 0)
	switch {
	case !end.After(now):
		return start, end, strictjson.Errorf("endDateTime", "must be in the future, not %s", end.Format(time.RFC3339))
	case !end.After(start):
		return start, end, strictjson.Errorf("endDateTime", "must be after startDateTime (%s)", start.Format(time.RFC3339))
	case end.After(limit):
		return start, end, strictjson.Errorf("endDateTime", "must be at most %d years from now (%s), not %s", MaxClientSecretYears, limit.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return start, end, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// clientSecretRecord is the body of a KindClientSecret record.
type clientSecretRecord struct {
	// ApplicationID and ApplicationCreated bind the secret to the
	// registration it was issued to, so that a registration deleted and
	// made again with the same appId (or even the same id, from an
	// export) does not inherit its secrets.
	ApplicationID      string     `json:"applicationId"`
	ApplicationCreated *time.Time `json:"applicationCreatedDateTime,omitempty"`
	Hash               []byte     `json:"hash"` // SHA-256 of the secret
	DisplayName        string     `json:"displayName,omitempty"`
	Hint               string     `json:"hint"`
	StartDateTime      time.Time  `json:"startDateTime"`
	EndDateTime        time.Time  `json:"endDateTime"`
}

// issuedTo reports whether the secret belongs to this registration of its
// appId.
func (b *clientSecretRecord) issuedTo(app *Application) bool {
	if b.ApplicationID != app.ID || (b.ApplicationCreated == nil) != (app.CreatedDateTime == nil) {
		return false
	}
	return b.ApplicationCreated == nil || b.ApplicationCreated.Equal(*app.CreatedDateTime)
}

func (b *clientSecretRecord) credential(keyID string) PasswordCredential {
	return PasswordCredential{KeyID: keyID, DisplayName: b.DisplayName, Hint: b.Hint, StartDateTime: b.StartDateTime, EndDateTime: b.EndDateTime}
}

// newClientSecret returns a new secret and its hint: three random
// characters (the hint, which readers of the application see), the marker,
// and 256 random bits in base64url, so the part no reader sees still holds
// 256 bits. Every character is unreserved in URLs and survives form
// encoding, as client_secret_basic needs.
func newClientSecret() (secret, hint string) {
	var b [3 + 32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	hint = base64.RawURLEncoding.EncodeToString(b[:3])[:3]
	return hint + clientSecretMarker + base64.RawURLEncoding.EncodeToString(b[3:]), hint
}

// AddClientSecret issues a client secret for app (as stored: its id and
// createdDateTime bind the secret) and returns its metadata and the secret
// text, which exists nowhere else: the store keeps its SHA-256. Errors in
// the request are *strictjson.FieldError naming its property; a full
// application is ErrTooManyClientSecrets.
func AddClientSecret(ctx context.Context, st store.Store, app *Application, req PasswordCredentialRequest) (PasswordCredential, string, error) {
	start, end, err := req.window(time.Now())
	if err != nil {
		return PasswordCredential{}, "", err
	}
	live, err := ClientSecrets(ctx, st, app)
	if err != nil {
		return PasswordCredential{}, "", err
	}
	if len(live) >= MaxClientSecrets {
		return PasswordCredential{}, "", fmt.Errorf("add client secret: the application holds %d, the most allowed; remove one first: %w", len(live), ErrTooManyClientSecrets)
	}
	secret, hint := newClientSecret()
	sum := sha256.Sum256([]byte(secret))
	rec := clientSecretRecord{ApplicationID: app.ID, ApplicationCreated: app.CreatedDateTime, Hash: sum[:],
		DisplayName: req.DisplayName, Hint: hint, StartDateTime: start, EndDateTime: end}
	body, err := json.Marshal(rec)
	if err != nil {
		return PasswordCredential{}, "", fmt.Errorf("add client secret: %w", err)
	}
	keyID := NewID()
	if _, err := st.CreateRecord(ctx, store.Record{Kind: KindClientSecret, ID: keyID, Subject: app.AppID, Body: body, ExpiresAt: end}); err != nil {
		return PasswordCredential{}, "", fmt.Errorf("add client secret: %w", err)
	}
	return rec.credential(keyID), secret, nil
}

// ClientSecrets returns the metadata of app's live client secrets, oldest
// first: what Graph shows as the application's passwordCredentials. An
// expired secret is gone.
func ClientSecrets(ctx context.Context, st store.Store, app *Application) ([]PasswordCredential, error) {
	recs, err := st.ListRecords(ctx, KindClientSecret, app.AppID, 0)
	if err != nil {
		return nil, fmt.Errorf("list client secrets: %w", err)
	}
	var out []PasswordCredential
	for _, r := range recs {
		var b clientSecretRecord
		if err := json.Unmarshal(r.Body, &b); err != nil {
			return nil, fmt.Errorf("list client secrets: decode %s: %w", r.ID, err)
		}
		if b.issuedTo(app) {
			out = append(out, b.credential(r.ID))
		}
	}
	return out, nil
}

// RemoveClientSecret deletes app's client secret keyID; store.ErrNotFound
// when app has no live secret with that key id.
func RemoveClientSecret(ctx context.Context, st store.Store, app *Application, keyID string) error {
	keyID = lowerGUID(keyID)
	rec, err := st.GetRecord(ctx, KindClientSecret, keyID)
	if err != nil {
		return fmt.Errorf("remove client secret %s: %w", keyID, err)
	}
	var b clientSecretRecord
	if err := json.Unmarshal(rec.Body, &b); err != nil {
		return fmt.Errorf("remove client secret %s: decode: %w", keyID, err)
	}
	if rec.Subject != app.AppID || !b.issuedTo(app) {
		return fmt.Errorf("remove client secret %s: not a secret of application %s: %w", keyID, app.AppID, store.ErrNotFound)
	}
	if err := st.DeleteRecord(ctx, KindClientSecret, keyID); err != nil {
		return fmt.Errorf("remove client secret %s: %w", keyID, err)
	}
	return nil
}

// DeleteClientSecrets removes every client secret record of appID (when
// its application is deleted) and says how many there were.
func DeleteClientSecrets(ctx context.Context, st store.Store, appID string) (int, error) {
	n, err := st.DeleteRecords(ctx, KindClientSecret, lowerGUID(appID))
	if err != nil {
		return 0, fmt.Errorf("delete client secrets: %w", err)
	}
	return n, nil
}

// VerifyClientSecret checks a client secret presented for the application
// appID (its client id): nil when it matches a live secret issued to the
// application as it exists now, an error wrapping ErrInvalidClientSecret
// when not, any other error when the store failed. The time it takes does
// not depend on the secret: every secret of the application is compared,
// in constant time, whatever matched before.
func VerifyClientSecret(ctx context.Context, st store.Store, appID, secret string) error {
	if secret == "" || len(secret) > maxPresentedSecret {
		return fmt.Errorf("verify client secret: %w", ErrInvalidClientSecret)
	}
	digest := sha256.Sum256([]byte(secret))
	obj, err := st.GetByKey(ctx, KindApplication, lowerGUID(appID))
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("verify client secret: no application with this appId: %w", ErrInvalidClientSecret)
	}
	if err != nil {
		return fmt.Errorf("verify client secret: %w", err)
	}
	app, err := Applications.FromObject(obj)
	if err != nil {
		return fmt.Errorf("verify client secret: %w", err)
	}
	recs, err := st.ListRecords(ctx, KindClientSecret, app.AppID, 0)
	if err != nil {
		return fmt.Errorf("verify client secret: %w", err)
	}
	now := time.Now()
	match := 0
	for _, r := range recs {
		var b clientSecretRecord
		if json.Unmarshal(r.Body, &b) != nil {
			continue
		}
		eq := subtle.ConstantTimeCompare(digest[:], b.Hash)
		if b.issuedTo(app) && !now.Before(b.StartDateTime) && now.Before(b.EndDateTime) {
			match |= eq
		}
	}
	if match != 1 {
		return fmt.Errorf("verify client secret: the secret matches no live secret of the application: %w", ErrInvalidClientSecret)
	}
	return nil
}
