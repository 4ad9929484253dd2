package oidc

import (
	"crypto/sha256"
	"sync"
	"time"
)

// secretCacheTTL is how long a node trusts what it read about a client's
// secrets: a removed or expired secret stops working on every node within
// it, and a busy client costs one secret lookup per node per TTL instead
// of one per token.
const secretCacheTTL = time.Second

// maxCachedSecrets bounds the cache; when full it starts over.
const maxCachedSecrets = 10_000

// secretCache remembers successful client secret checks (by the SHA-256
// of the client id and secret: the secret itself is never kept) and which
// applications hold secrets. Failures are never cached.
type secretCache struct {
	mu         sync.Mutex
	verified   map[[32]byte]time.Time
	hasSecrets map[string]cachedBool
}

type cachedBool struct {
	v  bool
	at time.Time
}

func secretKey(appID, secret string) [32]byte {
	h := sha256.New()
	h.Write([]byte(appID))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *secretCache) verifiedRecently(appID, secret string, now time.Time) bool {
	k := secretKey(appID, secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.verified[k]
	return ok && now.Sub(at) < secretCacheTTL && !now.Before(at)
}

func (c *secretCache) rememberVerified(appID, secret string, now time.Time) {
	k := secretKey(appID, secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verified == nil || len(c.verified) >= maxCachedSecrets {
		c.verified = map[[32]byte]time.Time{}
	}
	c.verified[k] = now
}

func (c *secretCache) holdsSecrets(appID string, now time.Time) (v, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.hasSecrets[appID]
	if !found || now.Sub(e.at) >= secretCacheTTL || now.Before(e.at) {
		return false, false
	}
	return e.v, true
}

func (c *secretCache) rememberHolds(appID string, v bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hasSecrets == nil || len(c.hasSecrets) >= maxCachedSecrets {
		c.hasSecrets = map[string]cachedBool{}
	}
	c.hasSecrets[appID] = cachedBool{v, now}
}
