package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/store"
)

// Session is a signed-in browser. The cookie holds a random secret; the
// store holds this record under the secret's SHA-256.
type Session struct {
	ID        string `json:"-"` // the record id: a digest, safe to log
	UserID    string `json:"userId"`
	UPN       string `json:"userPrincipalName"`
	AppID     string `json:"appId,omitempty"` // the application the sign-in was for
	CreatedAt time.Time
	// AuthTime is when the user last proved the first factor, MFATime a
	// second one (zero: never in this session).
	AuthTime time.Time `json:"authTime"`
	MFATime  time.Time `json:"mfaTime,omitzero"`
	// Methods are the authentication methods used (access.AuthMethod bits).
	Methods   access.AuthMethod `json:"methods"`
	IP        string            `json:"ip"`
	UserAgent string            `json:"userAgent,omitempty"`
	LastSeen  time.Time         `json:"lastSeen"`
	// IdleTimeout ends the session after that long without use; ExpiresAt
	// ends it regardless.
	IdleTimeout time.Duration `json:"idleTimeout"`
	ExpiresAt   time.Time     `json:"expiresAt"`
	// SignInFrequency is the conditional access sign-in frequency that
	// applied at sign-in (0: the default); EveryTime asks for a fresh
	// sign-in whenever a policy evaluates again.
	SignInFrequency time.Duration `json:"signInFrequency,omitempty"`
	EveryTime       bool          `json:"everyTime,omitempty"`

	version int64
}

// AMR lists the session's methods as RFC 8176 authentication method
// references, for the amr claim.
func (s *Session) AMR() []string {
	var out []string
	if s.Methods&access.MethodPassword != 0 {
		out = append(out, "pwd")
	}
	if s.Methods&(access.MethodSoftwareOath|access.MethodHardwareOath) != 0 {
		out = append(out, "otp")
	}
	if s.Methods&access.MethodFIDO2 != 0 {
		out = append(out, "hwk", "user")
	}
	if s.Methods&(access.MethodFederatedSingleFactor|access.MethodFederatedMultiFactor) != 0 {
		out = append(out, "fed") // as Entra writes a federated sign-in
	}
	if Strength(s.Methods) >= StrengthMultifactor {
		out = append(out, "mfa")
	}
	return out
}

// MethodsFromAMR reads authentication method references back into
// methods, for a credential that kept only its amr (an API token): the
// least each value can mean — "otp" a software code, "fed" a federated
// single factor, raised to a federated second factor by "mfa".
func MethodsFromAMR(amr []string) access.AuthMethod {
	var m access.AuthMethod
	for _, v := range amr {
		switch v {
		case "pwd":
			m |= access.MethodPassword
		case "otp":
			m |= access.MethodSoftwareOath
		case "hwk":
			m |= access.MethodFIDO2
		case "fed":
			m |= access.MethodFederatedSingleFactor
		}
	}
	if m&access.MethodFederatedSingleFactor != 0 && slices.Contains(amr, "mfa") && Strength(m) < StrengthMultifactor {
		m = m&^access.MethodFederatedSingleFactor | access.MethodFederatedMultiFactor
	}
	return m
}

// ACR is the session's authentication strength as an acr value.
func (s *Session) ACR() string { return Strength(s.Methods).ACR() }

// StrengthLevel orders authentication strengths.
type StrengthLevel uint8

// Strengths, weakest first.
const (
	StrengthNone StrengthLevel = iota
	StrengthPassword
	StrengthMultifactor
	StrengthPhishingResistant
)

// The acr values Verity issues and accepts in acr_values.
const (
	ACRPassword          = "urn:verity:acr:pwd"
	ACRMultifactor       = "urn:verity:acr:mfa"
	ACRPhishingResistant = "urn:verity:acr:phr"
)

// ACR returns the acr value of the level.
func (l StrengthLevel) ACR() string {
	switch l {
	case StrengthPassword:
		return ACRPassword
	case StrengthMultifactor:
		return ACRMultifactor
	case StrengthPhishingResistant:
		return ACRPhishingResistant
	}
	return ""
}

// String names the level as the sign-in pages and logs do.
func (l StrengthLevel) String() string {
	return [...]string{"none", "password", "multifactor", "phishingResistant"}[l]
}

// Strength is the strength of a set of methods used together.
func Strength(m access.AuthMethod) StrengthLevel {
	switch {
	case m&(access.MethodFIDO2|access.MethodWindowsHelloForBusiness|access.MethodX509CertificateMultiFactor) != 0:
		return StrengthPhishingResistant
	case m&(access.MethodPassword|access.MethodFederatedSingleFactor) != 0 && m&(access.MethodSoftwareOath|access.MethodHardwareOath) != 0:
		return StrengthMultifactor
	case m&access.MethodFederatedMultiFactor != 0: // the identity provider's MFA, trusted by its mfaClaim rule
		return StrengthMultifactor
	case m != 0:
		return StrengthPassword
	}
	return StrengthNone
}

// newSecret returns a random cookie secret and the record id it maps to.
func newSecret() (secret, id string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the platform RNG never fails on supported systems
	}
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	return secret, digest(secret)
}

// digest is the record id of a cookie secret.
func digest(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// validSecret reports whether s has the shape newSecret gives, so that
// hostile cookies are refused before they reach the store.
func validSecret(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// createSession stores s and returns the cookie secret.
func createSession(ctx context.Context, st store.Store, s *Session) (string, error) {
	secret, id := newSecret()
	s.ID = id
	body, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	r, err := st.CreateRecord(ctx, store.Record{Kind: kindSession, ID: id, Subject: s.UserID, Body: body, ExpiresAt: s.ExpiresAt})
	if err != nil {
		return "", err
	}
	s.version = r.Version
	return secret, nil
}

// errNoSession means the cookie names no live session.
var errNoSession = errors.New("no session")

// lookupSession returns the live session of a cookie secret: errNoSession
// when there is none, it expired, or it sat idle too long.
func lookupSession(ctx context.Context, st store.Store, secret string, now time.Time) (*Session, error) {
	if !validSecret(secret) {
		return nil, errNoSession
	}
	return sessionByID(ctx, st, digest(secret), now)
}

// sessionByID returns the live session with record id id, or
// errNoSession.
func sessionByID(ctx context.Context, st store.Store, id string, now time.Time) (*Session, error) {
	r, err := st.GetRecord(ctx, kindSession, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	var s Session
	if err := json.Unmarshal(r.Body, &s); err != nil {
		return nil, fmt.Errorf("session record: %w", err)
	}
	s.ID, s.version = r.ID, r.Version
	if !s.Live(now) {
		return nil, errNoSession
	}
	return &s, nil
}

// touchEvery is how stale LastSeen may get before a request writes it:
// idle timeouts are minutes to hours, so a write per request would buy
// nothing.
const touchEvery = time.Minute

// touch records use of the session, at most once per touchEvery.
func touchSession(ctx context.Context, st store.Store, s *Session, now time.Time) error {
	if now.Sub(s.LastSeen) < touchEvery {
		return nil
	}
	s.LastSeen = now
	return saveSession(ctx, st, s)
}

func saveSession(ctx context.Context, st store.Store, s *Session) error {
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	r, err := st.UpdateRecord(ctx, store.Record{Kind: kindSession, ID: s.ID, Subject: s.UserID, Body: body, ExpiresAt: s.ExpiresAt, Version: s.version})
	if errors.Is(err, store.ErrConflict) {
		return nil // another request of the session wrote it: it is fresh enough
	}
	if err != nil {
		return err
	}
	s.version = r.Version
	return nil
}

// RevokeSessions ends every session of a user (sign out everywhere, a
// password change, an administrator's revocation) and says how many.
func RevokeSessions(ctx context.Context, st store.Store, userID string) (int, error) {
	return st.DeleteRecords(ctx, kindSession, userID)
}

// ForgetUser removes what sign-in keeps about a deleted user: its
// sessions, consents, authentication methods (passkeys, TOTP, recovery
// codes) and links to external accounts, so that none of them outlives
// the user or attaches to a user made later with the same id.
func ForgetUser(ctx context.Context, st store.Store, userID string) error {
	var errs []error
	for _, kind := range []string{kindSession, kindConsent, kindMethods, kindFederatedLink} {
		if _, err := st.DeleteRecords(ctx, kind, userID); err != nil {
			errs = append(errs, fmt.Errorf("%s records: %w", kind, err))
		}
	}
	return errors.Join(errs...)
}
