package proxy

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/verityhq/verity/internal/directory"
)

// The proxy's cookies are host-only (__Host-), Secure, HttpOnly and
// SameSite=Lax, and their values are sealed with the master key
// (AES-256-GCM, bound to their purpose and the route's host): a browser
// can neither read nor forge them, and a cookie of one host is worthless
// on another.
const (
	sessionCookie = "__Host-verity-proxy"
	stateCookie   = "__Host-verity-proxy-state"

	sealSession = "proxy-session"
	sealState   = "proxy-state"

	// stateLifetime bounds a sign-in round trip.
	stateLifetime = 15 * time.Minute
	maxCookie     = 4096
)

// sessionRef is the proxy cookie's content: which sign-in session, and
// when sign-in handed it to this host (the time and the snapshot).
type sessionRef struct {
	SessionID string    `json:"s"`
	IssuedAt  time.Time `json:"t"`
	// Revision is the snapshot's when sign-in handed the session over.
	Revision int64 `json:"r"`
}

// pendingSignIn is the state cookie's content: the state sent to
// sign-in and the URL to return to.
type pendingSignIn struct {
	State     string    `json:"s"`
	ReturnTo  string    `json:"r"`
	ExpiresAt time.Time `json:"e"`
}

func (p *Proxy) seal(purpose, host string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sealed, err := p.opts.Keys.Seal(purpose, host, b)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

func (p *Proxy) unseal(purpose, host, value string, v any) bool {
	if value == "" || len(value) > maxCookie {
		return false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return false
	}
	b, err := p.opts.Keys.Open(purpose, host, sealed)
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

// readCookie returns the session reference of the request's cookie for
// the route's host.
func (p *Proxy) readCookie(r *http.Request, route *directory.AppRoute) (sessionRef, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return sessionRef{}, false
	}
	key := cookieKey{host: route.Host(), value: c.Value}
	if ref, ok := p.cookies.get(key); ok {
		return ref, true
	}
	var ref sessionRef
	if !p.unseal(sealSession, key.host, key.value, &ref) || ref.SessionID == "" {
		return sessionRef{}, false
	}
	p.cookies.put(key, ref)
	return ref, true
}

// maxCookieCache bounds the opened-cookie cache; past it the cache starts
// over.
const maxCookieCache = 100_000

// cookieCache remembers what the session cookies a browser keeps sending
// say, so that a request does not open (AES-GCM) and decode the same
// cookie again. What a cookie says never changes — the session it names
// is read and decided on for every request all the same — and only
// cookies that opened are kept: nobody can fill the cache but with
// cookies the proxy issued.
type cookieCache struct {
	mu      sync.Mutex
	entries map[cookieKey]sessionRef
}

type cookieKey struct{ host, value string }

func (c *cookieCache) get(k cookieKey) (sessionRef, bool) {
	c.mu.Lock()
	ref, ok := c.entries[k]
	c.mu.Unlock()
	return ref, ok
}

func (c *cookieCache) put(k cookieKey, ref sessionRef) {
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= maxCookieCache {
		c.entries = map[cookieKey]sessionRef{}
	}
	// The value is a slice of the request's Cookie header: a copy keeps
	// the rest of the header from being held.
	c.entries[cookieKey{host: k.host, value: strings.Clone(k.value)}] = ref
	c.mu.Unlock()
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}
