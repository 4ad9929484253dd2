package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/store"
)

// Record kinds the provider owns. Ids of records that a secret names
// (codes, refresh tokens) are the secret's SHA-256, so that the database
// never holds a usable secret.
const (
	// kindAuthRequest is an authorization request between /authorize and
	// the code: id = the request id, subject = the client id.
	kindAuthRequest = "oidcAuthRequest"
	// kindCode is an authorization code: id = SHA-256 of the code,
	// subject = the grant id.
	kindCode = "oidcCode"
	// kindGrant is what one authorization granted (the refresh token
	// family): id = the grant id (the auth request id), subject = the
	// user id. Its tokens are valid only while it exists.
	kindGrant = "oidcGrant"
	// kindRefreshToken is one refresh token of a grant: id = SHA-256 of
	// the token, subject = the grant id.
	kindRefreshToken = "oidcRefreshToken"
	// kindRevokedAccessToken lists a revoked access token until it
	// expires: id = its jti, subject = the grant id (or client id).
	kindRevokedAccessToken = "oidcRevokedAccessToken"
)

// authRequest is the stored form of an authorization request and, once
// the user signed in, of who signed in and how. It implements
// op.AuthRequest.
type authRequest struct {
	ID                  string    `json:"-"`
	ClientID            string    `json:"clientId"`
	RedirectURI         string    `json:"redirectUri"`
	Scopes              []string  `json:"scopes"`
	State               string    `json:"state,omitempty"`
	Nonce               string    `json:"nonce,omitempty"`
	ResponseType        string    `json:"responseType"`
	ResponseMode        string    `json:"responseMode,omitempty"`
	CodeChallenge       string    `json:"codeChallenge,omitempty"`
	CodeChallengeMethod string    `json:"codeChallengeMethod,omitempty"`
	Prompt              []string  `json:"prompt,omitempty"`
	MaxAge              *uint     `json:"maxAge,omitempty"` // seconds; 0 after prompt=login
	LoginHint           string    `json:"loginHint,omitempty"`
	HintSubject         string    `json:"hintSubject,omitempty"` // sub of a valid id_token_hint
	ACRValues           []string  `json:"acrValues,omitempty"`
	Public              bool      `json:"public"` // a public client's flow: PKCE, no secret
	Created             time.Time `json:"created"`

	// Set when the user has signed in.
	SignedIn bool              `json:"signedIn,omitempty"`
	UserID   string            `json:"userId,omitempty"`
	AuthTime time.Time         `json:"authTime,omitzero"`
	MFATime  time.Time         `json:"mfaTime,omitzero"`
	Methods  access.AuthMethod `json:"methods,omitempty"`
	AMR      []string          `json:"amr,omitempty"`
	ACR      string            `json:"acr,omitempty"`
	SID      string            `json:"sid,omitempty"`

	version int64
	codeID  string // the code's digest, once redeemed
}

// codeRecord is the body of a kindCode record: the signed-in request it
// redeems, until it is redeemed once.
type codeRecord struct {
	Request   authRequest `json:"request"`
	RequestID string      `json:"requestId"`
	ExpiresAt time.Time   `json:"expiresAt"`
	Redeemed  bool        `json:"redeemed,omitempty"`
	// Replayed says the code was presented after it was redeemed: a
	// redemption still under way revokes what it issued.
	Replayed bool `json:"replayed,omitempty"`
}

// grant is what one authorization granted: the refresh token family and
// the access tokens issued from it.
type grant struct {
	ID        string            `json:"-"`
	ClientID  string            `json:"clientId"`
	UserID    string            `json:"userId"`
	Scopes    []string          `json:"scopes"`
	Public    bool              `json:"public"`
	AuthTime  time.Time         `json:"authTime"`
	MFATime   time.Time         `json:"mfaTime,omitzero"`
	Methods   access.AuthMethod `json:"methods"`
	AMR       []string          `json:"amr,omitempty"`
	ACR       string            `json:"acr,omitempty"`
	SID       string            `json:"sid,omitempty"`
	Created   time.Time         `json:"created"`
	ExpiresAt time.Time         `json:"expiresAt"` // the refresh tokens' absolute cap
}

// Refresh token states. A used token stays recorded until its grant ends,
// so that presenting it again is recognised as reuse.
const (
	refreshActive = "active"
	refreshUsed   = "used"
)

// refreshRecord is the body of a kindRefreshToken record.
type refreshRecord struct {
	GrantID   string    `json:"grantId"`
	ClientID  string    `json:"clientId"`
	Public    bool      `json:"public"`
	State     string    `json:"state"`
	IssuedAt  time.Time `json:"issuedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	UsedAt    time.Time `json:"usedAt,omitzero"`
}

// Refresh tokens and codes are refreshPrefix or codePrefix and 43
// base64url characters (256 random bits): recognisable to secret scanners
// and to revocation, which must tell them from access tokens.
const (
	refreshPrefix = "vrt_"
	codePrefix    = "vac_"
	secretChars   = 43
)

// newSecret returns prefix and 256 random bits in base64url.
func newSecret(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// validSecret reports whether s has the shape newSecret(prefix) gives, so
// that hostile input is refused before it reaches the store.
func validSecret(s, prefix string) bool {
	if len(s) != len(prefix)+secretChars || s[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// digest is the record id of a secret.
func digest(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// newID returns a random 128-bit identifier in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func decode[T any](r store.Record) (*T, error) {
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return nil, fmt.Errorf("decode %s record: %w", r.Kind, err)
	}
	return &v, nil
}

func loadAuthRequest(ctx context.Context, st store.Store, id string) (*authRequest, error) {
	r, err := st.GetRecord(ctx, kindAuthRequest, id)
	if err != nil {
		return nil, err
	}
	ar, err := decode[authRequest](r)
	if err != nil {
		return nil, err
	}
	ar.ID, ar.version = r.ID, r.Version
	return ar, nil
}

func loadGrant(ctx context.Context, st store.Store, id string) (*grant, error) {
	r, err := st.GetRecord(ctx, kindGrant, id)
	if err != nil {
		return nil, err
	}
	g, err := decode[grant](r)
	if err != nil {
		return nil, err
	}
	g.ID = r.ID
	return g, nil
}

// revokeGrant ends a grant: the grant record, and with it every access
// token issued from it (they are checked against it), and its refresh
// tokens.
func revokeGrant(ctx context.Context, st store.Store, id string) error {
	if err := st.DeleteRecord(ctx, kindGrant, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("revoke grant: %w", err)
	}
	if _, err := st.DeleteRecords(ctx, kindRefreshToken, id); err != nil {
		return fmt.Errorf("revoke grant: refresh tokens: %w", err)
	}
	return nil
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("oidc: encode record: %v", err)) // plain structs always encode
	}
	return b
}

// RevokeUserGrants ends every grant of a user — its refresh tokens and the
// access tokens issued from it — and says how many there were (sign out
// everywhere, an automated response to an attack).
func RevokeUserGrants(ctx context.Context, st store.Store, userID string) (int, error) {
	recs, err := st.ListRecords(ctx, kindGrant, userID, 0)
	if err != nil {
		return 0, fmt.Errorf("revoke grants: %w", err)
	}
	for _, r := range recs {
		if err := revokeGrant(ctx, st, r.ID); err != nil {
			return 0, err
		}
	}
	return len(recs), nil
}
