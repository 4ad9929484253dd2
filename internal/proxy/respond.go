package proxy

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/signin"
)

// wantsJSON reports whether the client asked for JSON rather than a page:
// API clients and scripts get problems, browsers get pages and redirects.
func wantsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return (strings.Contains(a, "application/json") || strings.Contains(a, "+json")) && !strings.Contains(a, "text/html")
}

// problem is a JSON refusal; it never carries policy internals.
type problem struct {
	Status        int    `json:"status"`
	Code          string `json:"code"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId,omitempty"`
	SignInURL     string `json:"signInUrl,omitempty"`
}

// refuse answers a request the proxy will not forward.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, status int, code, message, correlation string) {
	writeProblem(w, r, status, code, message, correlation)
}

var refusalPage = template.Must(template.New("refusal").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title></head>
<body><main><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .CorrelationID}}<p><small>Correlation ID: <code>{{.CorrelationID}}</code> · Code: <code>{{.Code}}</code></small></p>{{end}}
</main></body></html>`))

func writeProblem(w http.ResponseWriter, r *http.Request, status int, code, message, correlation string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if correlation != "" {
		h.Set("X-Verity-Correlation-Id", correlation)
	}
	if wantsJSON(r) {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(problem{Status: status, Code: code, Message: message, CorrelationID: correlation})
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	title := "You cannot access this page"
	if status >= 500 {
		title = "This application is not available"
	}
	_ = refusalPage.Execute(w, struct{ Title, Message, CorrelationID, Code string }{title, message, correlation, code})
}

// challenge sends the browser to sign-in for the route, to come back to
// the URL it asked for. A client that wants JSON gets 401 with the URL.
func (p *Proxy) challenge(w http.ResponseWriter, r *http.Request, route *directory.AppRoute, correlation string) {
	state := newCorrelationID()
	signIn := *p.signIn
	signIn.Path = signin.ProxyPath
	signIn.RawQuery = url.Values{"route": {route.ID}, "state": {state}}.Encode()
	if wantsJSON(r) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(problem{Status: http.StatusUnauthorized, Code: "SignInRequired",
			Message: "Sign in, or step up, at signInUrl, then retry.", CorrelationID: correlation, SignInURL: originOf(route) + r.URL.RequestURI()})
		return
	}
	back := originOf(route) + r.URL.RequestURI()
	v, err := p.seal(sealState, route.Host(), pendingSignIn{State: state, ReturnTo: back, ExpiresAt: p.opts.Now().Add(stateLifetime)})
	if err != nil {
		p.refuse(w, r, http.StatusServiceUnavailable, "Unavailable", "Sign-in is not available right now.", correlation)
		return
	}
	setCookie(w, stateCookie, v, int(stateLifetime/time.Second))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, signIn.String(), http.StatusFound)
}

func originOf(route *directory.AppRoute) string {
	u, _ := url.Parse(route.From)
	return u.Scheme + "://" + u.Host
}

// serveOwn serves the proxy's paths on a route host.
func (p *Proxy) serveOwn(w http.ResponseWriter, r *http.Request, host, path string) {
	switch path {
	case callbackPath:
		p.callback(w, r, host)
	case jwksPath:
		b, err := p.opts.Keys.JWKSJSON(r.Context())
		if err != nil {
			p.refuse(w, r, http.StatusServiceUnavailable, "Unavailable", "The keys are not available right now.", "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(b)
	case signOutPath:
		// Forget this host's cookie; signing out of Verity itself (every
		// application) is sign-in's page.
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			p.refuse(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "Sign out with POST.", "")
			return
		}
		setCookie(w, sessionCookie, "", -1)
		signOut := *p.signIn
		signOut.Path = "/signin/session"
		http.Redirect(w, r, signOut.String(), http.StatusSeeOther)
	default:
		p.refuse(w, r, http.StatusNotFound, "NotFound", "There is nothing here.", "")
	}
}

// callback redeems sign-in's handoff code for this host's cookie and sends
// the browser back where it was going.
func (p *Proxy) callback(w http.ResponseWriter, r *http.Request, host string) {
	q := r.URL.Query()
	var pending pendingSignIn
	c, err := r.Cookie(stateCookie)
	if err != nil || !p.unseal(sealState, host, c.Value, &pending) || q.Get("state") == "" ||
		q.Get("state") != pending.State || !p.opts.Now().Before(pending.ExpiresAt) {
		p.refuse(w, r, http.StatusBadRequest, "InvalidState", "This sign-in did not start here, or took too long. Open the application again.", "")
		return
	}
	back, err := url.Parse(pending.ReturnTo)
	if err != nil {
		p.refuse(w, r, http.StatusBadRequest, "InvalidState", "This sign-in did not start here. Open the application again.", "")
		return
	}
	route, ok := p.opts.Live.Current().Directory().RouteFor(host, back.Path)
	if !ok || strings.ToLower(back.Host) != originHost(route) {
		p.refuse(w, r, http.StatusNotFound, "NoRoute", "No application is published at this path.", "")
		return
	}
	sid, err := p.opts.Sessions.RedeemHandoff(r.Context(), q.Get("code"), route.ID)
	if errors.Is(err, signin.ErrHandoff) {
		p.refuse(w, r, http.StatusBadRequest, "InvalidCode", "This sign-in link was used already or has expired. Open the application again.", "")
		return
	}
	if err != nil {
		p.log.ErrorContext(r.Context(), "proxy: redeem sign-in handoff", "route", route.ID, "err", err)
		p.refuse(w, r, http.StatusServiceUnavailable, "Unavailable", "Sign-in is not available right now.", "")
		return
	}
	v, err := p.seal(sealSession, route.Host(), sessionRef{SessionID: sid, IssuedAt: p.opts.Now(), Revision: p.opts.Live.Current().Revision()})
	if err != nil {
		p.refuse(w, r, http.StatusServiceUnavailable, "Unavailable", "Sign-in is not available right now.", "")
		return
	}
	p.sessions.forget(sid)
	setCookie(w, sessionCookie, v, 0)
	setCookie(w, stateCookie, "", -1)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

func originHost(route *directory.AppRoute) string {
	u, _ := url.Parse(route.From)
	return u.Host
}
