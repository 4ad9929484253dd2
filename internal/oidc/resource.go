package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/verityhq/verity/internal/access"
)

// VerifyAccessToken is how a resource inside Verity (the admin API)
// accepts an access token this provider issued: a signature by a
// published key, this issuer, not expired, issued to clientID (its
// audience), its grant not revoked and its subject still able to sign in.
// It returns the subject (a user or service principal object id) and the
// methods of the user's sign-in behind the token (none for an
// application's own token).
func (p *Provider) VerifyAccessToken(ctx context.Context, token, clientID string) (string, access.AuthMethod, error) {
	info, err := p.InspectAccessToken(ctx, token)
	if err != nil {
		return "", 0, err
	}
	if clientID != "" && !slices.Contains(info.Audience, clientID) {
		return "", 0, errors.New("access token: issued to another client")
	}
	if info.App {
		return info.Subject, 0, nil
	}
	return info.Subject, info.Methods, nil
}

// AccessTokenInfo is what a verified access token says, for a resource
// that decides on it (the identity-aware proxy).
type AccessTokenInfo struct {
	// Subject is a user's object id, or a service principal's for an
	// application's own token (App).
	Subject string
	App     bool
	// Audience are the applications (appIds) the token was issued for.
	Audience []string
	// Methods, AuthTime and MFATime are the user's sign-in behind the
	// token (zero for an application's token).
	Methods           access.AuthMethod
	AuthTime, MFATime time.Time
	Expiry            time.Time
}

// InspectAccessToken verifies an access token this provider issued as
// VerifyAccessToken does, whatever its audience, and says what it carries.
func (p *Provider) InspectAccessToken(ctx context.Context, token string) (AccessTokenInfo, error) {
	payload, _, err := p.opts.Keyring.Verify(ctx, token)
	if err != nil {
		return AccessTokenInfo{}, fmt.Errorf("access token: %w", err)
	}
	var c struct {
		Issuer   string   `json:"iss"`
		Subject  string   `json:"sub"`
		Audience audience `json:"aud"`
		Expiry   int64    `json:"exp"`
		NotBe    int64    `json:"nbf"`
		ID       string   `json:"jti"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return AccessTokenInfo{}, errors.New("access token: not a JWT claims set")
	}
	now := time.Now().Unix()
	switch {
	case c.Issuer != p.opts.Issuer:
		return AccessTokenInfo{}, errors.New("access token: issued by another issuer")
	case c.Expiry == 0 || now >= c.Expiry:
		return AccessTokenInfo{}, errors.New("access token: expired")
	case c.NotBe != 0 && now < c.NotBe:
		return AccessTokenInfo{}, errors.New("access token: not valid yet")
	case c.Subject == "":
		return AccessTokenInfo{}, errors.New("access token: no subject")
	}
	g, err := p.accessTokenLive(ctx, c.ID, c.Subject)
	if err != nil {
		return AccessTokenInfo{}, fmt.Errorf("access token: %w", err)
	}
	info := AccessTokenInfo{Subject: c.Subject, App: g == nil, Audience: c.Audience, Expiry: time.Unix(c.Expiry, 0)}
	if g != nil {
		info.Methods, info.AuthTime, info.MFATime = g.Methods, g.AuthTime, g.MFATime
	}
	return info, nil
}

// audience is the aud claim: one string or a list.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}
