package proxy

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/signin"
)

// The identity assertion is a JWT the keyring signs (ES256 or EdDSA, the
// keys of the OIDC provider, published at /.verity/jwks.json on every
// route host too): iss is the sign-in URL, aud the route's external URL,
// sub the user's object id. It lives assertionLifetime and is reused for
// one session and route until assertionReuse before it expires, or until
// the directory changes (its claims might have): a signature costs tens of
// microseconds, the decision itself is made for every request.
const (
	assertionLifetime = 5 * time.Minute
	assertionReuse    = time.Minute
	// maxAssertionGroups bounds the groups claim, as Entra bounds its
	// groups in a JWT (200); beyond it the claim is left out.
	maxAssertionGroups = 200
)

type assertionClaims struct {
	Issuer    string   `json:"iss"`
	Audience  string   `json:"aud"`
	Subject   string   `json:"sub"`
	UPN       string   `json:"upn,omitempty"`
	Email     string   `json:"email,omitempty"`
	Name      string   `json:"name,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	AuthTime  int64    `json:"auth_time"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expiry    int64    `json:"exp"`
	AppID     string   `json:"appid"`
}

type assertionKey struct {
	session, route string
	revision       int64
	methods        uint64
}

type assertionEntry struct {
	token   string
	expires time.Time
}

type assertionCache struct {
	mu      sync.Mutex
	entries map[assertionKey]assertionEntry
	swept   time.Time
}

func newAssertionCache() *assertionCache {
	return &assertionCache{entries: map[assertionKey]assertionEntry{}}
}

// assertion returns the signed assertion for sess on route.
func (p *Proxy) assertion(ctx context.Context, snap *decision.Snapshot, route *directory.AppRoute, sess *signin.Session) (string, error) {
	now := p.opts.Now()
	k := assertionKey{session: sess.ID, route: route.ID, revision: snap.Revision(), methods: uint64(sess.Methods)}
	c := p.asserts
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if ok && now.Before(e.expires.Add(-assertionReuse)) {
		return e.token, nil
	}
	dir := snap.Directory()
	claims := assertionClaims{Issuer: p.signIn.String(), Audience: route.From, Subject: sess.UserID, UPN: sess.UPN,
		AMR: sess.AMR(), ACR: sess.ACR(), AuthTime: sess.AuthTime.Unix(), IssuedAt: now.Unix(), NotBefore: now.Add(-30 * time.Second).Unix(),
		Expiry: now.Add(assertionLifetime).Unix(), AppID: route.AppID}
	if u, ok := dir.User(sess.UserID); ok {
		claims.Name, claims.Email = u.DisplayName, u.Mail
	}
	if groups := dir.TransitiveMemberOf(sess.UserID); len(groups) <= maxAssertionGroups {
		claims.Groups = groups
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signer, err := p.opts.Keys.Signer(ctx)
	if err != nil {
		return "", err
	}
	token, err := signer.Sign("JWT", payload)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if now.Sub(c.swept) > time.Minute {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		c.swept = now
	}
	c.entries[k] = assertionEntry{token: token, expires: now.Add(assertionLifetime)}
	c.mu.Unlock()
	return token, nil
}
