package signin

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/netip"

	"github.com/verityhq/verity/internal/access"
)

// Cookies. The __Host- prefix makes the browser insist on Secure, Path=/
// and no Domain, so no other host or path can set or read them.
const (
	sessionCookie = "__Host-verity-session"
	flowCookie    = "__Host-verity-signin"
	csrfCookie    = "__Host-verity-csrf"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static/passkey.js
var passkeyScript []byte

func servePasskeyScript(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(passkeyScript)
}

var templates = template.Must(template.New("").Funcs(template.FuncMap{}).ParseFS(templateFiles, "templates/*.html"))

// The data of each page; the type picks the template.
type (
	signInPage struct {
		CSRF, ReturnTo, AppID, Username, Error string
		Passkeys                               bool   // passkey sign-in is available
		PasskeyQuery                           string // return_to and app for the passkey calls
		RPID                                   string // the passkeys' domain

		// Providers are the external identity providers to sign in with.
		Providers []providerButton
		// Fresh asks providers to sign the user in again (prompt=login).
		Fresh bool
	}
	mfaPage struct {
		CSRF     string
		Recovery bool
		Error    string
		Passkey  bool // the user has a passkey to use here
		TOTP     bool // the user has an authenticator app
		RPID     string
	}
	enrollPage struct {
		CSRF, Secret, URL, Account, Issuer, Error string
		QR                                        template.URL
	}
	recoveryPage struct {
		CSRF  string
		Codes []string
	}
	passwordPage struct {
		CSRF      string
		Forced    bool // in a sign-in: the current password was just proved
		MinLength int
		Error     string
		Done      bool
	}
	sessionPage struct {
		CSRF, UPN, Strength, SignedIn, Expires string
		Methods                                []string
		Passkeys                               int  // registered passkeys
		CanAddPasskey                          bool // passkeys are on here
		Registered                             bool // a passkey was just added
		RPID                                   string
	}
	consentPage struct {
		CSRF, App, AppID, UPN, Scopes, ReturnTo string
		Items                                   []string
	}
	errorPage struct {
		Title, Message, Correlation, Retry string
		Code                               int
	}
)

func templateFor(data any) (string, string) {
	switch data := data.(type) {
	case signInPage:
		return "signin.html", "Sign in"
	case mfaPage:
		return "mfa.html", "Verify your identity"
	case enrollPage:
		return "enroll.html", "Set up an authenticator app"
	case recoveryPage:
		return "recovery.html", "Save your recovery codes"
	case passwordPage:
		return "password.html", "Change your password"
	case sessionPage:
		return "session.html", "You are signed in"
	case consentPage:
		return "consent.html", "Let this application know who you are?"
	case errorPage:
		return "error.html", data.Title
	}
	panic("signin: no template for page")
}

// page renders a page with the headers every sign-in page carries.
func (s *Service) page(w http.ResponseWriter, r *http.Request, status int, data any) {
	name, title := templateFor(data)
	var body bytes.Buffer
	if err := templates.ExecuteTemplate(&body, name, map[string]any{"Title": title, "Page": data}); err != nil {
		s.log.ErrorContext(r.Context(), "sign-in: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// Only our own passkey script; images only from data: URLs (the QR
	// code); fetches only to this origin; no framing. No form-action:
	// browsers apply it to every redirect that follows a form's POST, and
	// a finished sign-in redirects to the application's own origin (an
	// OIDC client's redirect URI, a proxied host's callback). The forms
	// are the templates' own and post to fixed paths on this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}

func (s *Service) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (s *Service) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// csrfCookie returns the token of the double-submit cookie that guards
// the forms shown before there is an attempt (sign-in, sign-out), setting
// a new one when the browser has none.
func (s *Service) csrfCookie(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && validSecret(c.Value) {
		return c.Value
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return v
}

// csrfCookieMatches reports whether the form's token is the cookie's.
func (s *Service) csrfCookieMatches(r *http.Request, token string) bool {
	c, err := r.Cookie(csrfCookie)
	return err == nil && validSecret(c.Value) && constantEqual(c.Value, token)
}

// requestID is the request's id, as the server's middleware set it.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 {
		return id
	}
	return ""
}

func parseAddr(s string) (netip.Addr, error) { return netip.ParseAddr(s) }

func mustAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

// controlNames lists controls by their Graph names.
func controlNames(c access.Control) string { return c.String() }
