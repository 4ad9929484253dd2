package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// VerifyAccessToken is how a resource inside Verity (the admin API)
// accepts an access token this provider issued: a signature by a
// published key, this issuer, not expired, issued to clientID (its
// audience), its grant not revoked and its subject still able to sign in.
// It returns the subject (a user or service principal object id).
func (p *Provider) VerifyAccessToken(ctx context.Context, token, clientID string) (string, error) {
	payload, _, err := p.opts.Keyring.Verify(ctx, token)
	if err != nil {
		return "", fmt.Errorf("access token: %w", err)
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
		return "", errors.New("access token: not a JWT claims set")
	}
	now := time.Now().Unix()
	switch {
	case c.Issuer != p.opts.Issuer:
		return "", errors.New("access token: issued by another issuer")
	case c.Expiry == 0 || now >= c.Expiry:
		return "", errors.New("access token: expired")
	case c.NotBe != 0 && now < c.NotBe:
		return "", errors.New("access token: not valid yet")
	case clientID != "" && !slices.Contains(c.Audience, clientID):
		return "", errors.New("access token: issued to another client")
	case c.Subject == "":
		return "", errors.New("access token: no subject")
	}
	if _, err := p.accessTokenLive(ctx, c.ID, c.Subject); err != nil {
		return "", fmt.Errorf("access token: %w", err)
	}
	return c.Subject, nil
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
