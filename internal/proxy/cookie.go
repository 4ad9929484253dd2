package proxy

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
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
	var ref sessionRef
	c, err := r.Cookie(sessionCookie)
	if err != nil || !p.unseal(sealSession, route.Host(), c.Value, &ref) || ref.SessionID == "" {
		return sessionRef{}, false
	}
	return ref, true
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}
