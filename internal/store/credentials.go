package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A token's ExpiresAt of zero means it never expires (stored as NULL).

func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return toMicros(t)
}

// CreateToken stores t; ErrConflict when its hash exists. Expired tokens
// of every principal are deleted on the way.
func (s *sqlStore) CreateToken(ctx context.Context, t Token) error {
	if len(t.Hash) == 0 || t.PrincipalID == "" {
		return errors.New("store: create token: hash and principal id are required")
	}
	now := time.Now()
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	w := s.eng.writes()
	if _, err := w.exec(ctx, `DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= ?`, toMicros(now)); err != nil {
		return s.wrap(ctx, err, "create token for %s: delete expired tokens", t.PrincipalID)
	}
	n, err := w.exec(ctx, `INSERT INTO api_tokens (hash, principal_id, created_at, expires_at, description, amr)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		t.Hash, t.PrincipalID, toMicros(t.CreatedAt), nullMicros(t.ExpiresAt), t.Description, strings.Join(t.AMR, " "))
	if err != nil {
		return s.wrap(ctx, err, "create token for %s", t.PrincipalID)
	}
	if n == 0 {
		return fmt.Errorf("store: create token for %s: hash exists: %w", t.PrincipalID, ErrConflict)
	}
	return nil
}

// GetToken returns the token with this hash; ErrNotFound when absent or
// expired. An expired token is deleted.
func (s *sqlStore) GetToken(ctx context.Context, hash []byte) (Token, error) {
	var t Token
	var created int64
	var expires *int64
	var amr string
	err := s.eng.reads().queryRow(ctx, `SELECT hash, principal_id, created_at, expires_at, description, amr FROM api_tokens WHERE hash = ?`, hash).
		Scan(&t.Hash, &t.PrincipalID, &created, &expires, &t.Description, &amr)
	if err != nil {
		// The hash is a secret's digest, but still never goes in a message.
		return Token{}, s.wrap(ctx, err, "get token")
	}
	t.CreatedAt, t.AMR = fromMicros(created), strings.Fields(amr)
	if expires != nil {
		t.ExpiresAt = fromMicros(*expires)
		if now := time.Now(); !t.ExpiresAt.After(now) {
			if _, err := s.eng.writes().exec(ctx, `DELETE FROM api_tokens WHERE hash = ? AND expires_at <= ?`, hash, toMicros(now)); err != nil {
				s.log.WarnContext(ctx, "store: delete expired token", "principal", t.PrincipalID, "err", err)
			}
			return Token{}, fmt.Errorf("store: get token: expired: %w", ErrNotFound)
		}
	}
	return t, nil
}

// DeleteToken removes the token with this hash; ErrNotFound when absent.
func (s *sqlStore) DeleteToken(ctx context.Context, hash []byte) error {
	n, err := s.eng.writes().exec(ctx, `DELETE FROM api_tokens WHERE hash = ?`, hash)
	if err != nil {
		return s.wrap(ctx, err, "delete token")
	}
	if n == 0 {
		return fmt.Errorf("store: delete token: %w", ErrNotFound)
	}
	return nil
}

// DeletePrincipalTokens removes every token of a principal, if any.
func (s *sqlStore) DeletePrincipalTokens(ctx context.Context, principalID string) error {
	if _, err := s.eng.writes().exec(ctx, `DELETE FROM api_tokens WHERE principal_id = ?`, principalID); err != nil {
		return s.wrap(ctx, err, "delete tokens of %s", principalID)
	}
	return nil
}

// SetCredential inserts or replaces the credential (PrincipalID, Type).
func (s *sqlStore) SetCredential(ctx context.Context, c Credential) error {
	if c.PrincipalID == "" || c.Type == "" {
		return errors.New("store: set credential: principal id and type are required")
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = time.Now()
	}
	_, err := s.eng.writes().exec(ctx, `INSERT INTO credentials (principal_id, type, hash, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (principal_id, type) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at`,
		c.PrincipalID, c.Type, c.Hash, toMicros(c.UpdatedAt))
	if err != nil {
		return s.wrap(ctx, err, "set %s credential of %s", c.Type, c.PrincipalID)
	}
	return nil
}

// GetCredential returns a principal's credential of a type.
func (s *sqlStore) GetCredential(ctx context.Context, principalID, typ string) (Credential, error) {
	c := Credential{PrincipalID: principalID, Type: typ}
	var updated int64
	err := s.eng.reads().queryRow(ctx, `SELECT hash, updated_at FROM credentials WHERE principal_id = ? AND type = ?`, principalID, typ).
		Scan(&c.Hash, &updated)
	if err != nil {
		return Credential{}, s.wrap(ctx, err, "get %s credential of %s", typ, principalID)
	}
	c.UpdatedAt = fromMicros(updated)
	return c, nil
}

// DeleteCredentials removes every credential of a principal, if any.
func (s *sqlStore) DeleteCredentials(ctx context.Context, principalID string) error {
	if _, err := s.eng.writes().exec(ctx, `DELETE FROM credentials WHERE principal_id = ?`, principalID); err != nil {
		return s.wrap(ctx, err, "delete credentials of %s", principalID)
	}
	return nil
}
