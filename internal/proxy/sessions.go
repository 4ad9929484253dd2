package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/verityhq/verity/internal/signin"
)

// sessionFreshness is how long a session read from the store serves
// requests before it is read again: the bound on how late a revocation
// made on another node bites here.
const sessionFreshness = 500 * time.Millisecond

// sessionCache keeps sessions read from the store for sessionFreshness.
// Entries for absent sessions are kept too, so a revoked session's
// requests do not each reach the store.
type sessionCache struct {
	src sessionSource
	now func() time.Time

	mu      sync.Mutex
	entries map[string]sessionEntry
	swept   time.Time
}

type sessionSource interface {
	SessionByID(ctx context.Context, id string) (*signin.Session, error)
}

type sessionEntry struct {
	sess *signin.Session // nil: no live session
	read time.Time
}

func newSessionCache(src sessionSource, now func() time.Time) *sessionCache {
	return &sessionCache{src: src, now: now, entries: map[string]sessionEntry{}}
}

// get returns the live session id names (nil when there is none), at most
// sessionFreshness old. The session returned is shared: callers read it.
func (c *sessionCache) get(ctx context.Context, id string) (*signin.Session, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && now.Sub(e.read) < sessionFreshness {
		if e.sess != nil && !e.sess.Live(now) {
			return nil, nil
		}
		return e.sess, nil
	}
	sess, err := c.src.SessionByID(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.entries[id] = sessionEntry{sess: sess, read: now}
	if now.Sub(c.swept) > time.Minute {
		c.sweep(now)
	}
	c.mu.Unlock()
	return sess, nil
}

// forget drops id, so that the next request reads the store.
func (c *sessionCache) forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// sweep drops stale entries; c.mu is held.
func (c *sessionCache) sweep(now time.Time) {
	for id, e := range c.entries {
		if now.Sub(e.read) >= sessionFreshness {
			delete(c.entries, id)
		}
	}
	c.swept = now
}

// touchEvery matches sign-in's: LastSeen is written at most once a minute.
const touchEvery = time.Minute

// touch records use of a cached session: a copy is written (the cached
// one is shared) and replaces it in the cache.
func (p *Proxy) touch(ctx context.Context, sess *signin.Session) {
	if p.opts.Now().Sub(sess.LastSeen) < touchEvery {
		return
	}
	cp := *sess
	if err := p.opts.Sessions.Touch(ctx, &cp); err != nil {
		p.log.WarnContext(ctx, "proxy: record session use", "session", sess.ID, "err", err)
		return
	}
	p.sessions.mu.Lock()
	if e, ok := p.sessions.entries[sess.ID]; ok && e.sess == sess {
		p.sessions.entries[sess.ID] = sessionEntry{sess: &cp, read: e.read}
	}
	p.sessions.mu.Unlock()
}
