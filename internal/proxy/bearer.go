package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/signin"
)

// BearerToken is what a verified Verity access token says (see
// oidc.Provider.InspectAccessToken).
type BearerToken struct {
	// Subject is a user's object id, or a service principal's when App.
	Subject string
	App     bool
	// Audience are the applications the token was issued for: a route
	// takes only tokens for its own application.
	Audience          []string
	Methods           access.AuthMethod
	AuthTime, MFATime time.Time
	Expiry            time.Time
}

// maxTokenCache bounds the verified-token cache; past it the cache starts
// over.
const maxTokenCache = 100_000

// tokenCache keeps verification results by the token's SHA-256 for
// sessionFreshness and never past the token's expiry: the signature is
// checked once, revocation and a disabled subject are seen within the
// freshness, as for sessions. Failures are kept too, so a bad token
// repeated costs one check per interval.
type tokenCache struct {
	verify func(ctx context.Context, token string) (BearerToken, error)
	now    func() time.Time

	mu      sync.Mutex
	entries map[[32]byte]tokenEntry
}

type tokenEntry struct {
	tok  BearerToken
	err  error
	read time.Time
}

func (c *tokenCache) get(ctx context.Context, token string) (BearerToken, [32]byte, error) {
	h := sha256.Sum256([]byte(token))
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[h]
	c.mu.Unlock()
	if ok && now.Sub(e.read) < sessionFreshness && (e.err != nil || now.Before(e.tok.Expiry)) {
		return e.tok, h, e.err
	}
	tok, err := c.verify(ctx, token)
	if err == nil && !now.Before(tok.Expiry) {
		err = errExpired
	}
	c.mu.Lock()
	if len(c.entries) >= maxTokenCache {
		c.entries = map[[32]byte]tokenEntry{}
	}
	c.entries[h] = tokenEntry{tok: tok, err: err, read: now}
	c.mu.Unlock()
	return tok, h, err
}

type tokenError string

func (e tokenError) Error() string { return string(e) }

const errExpired = tokenError("the access token has expired")

// bearerToken returns the request's bearer token, "" when it has none.
func bearerToken(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// caller is who a request without a session proves to be: by a bearer
// token or a client certificate.
type caller struct {
	// Subject is a user's object id, or a service principal's when App.
	Subject string
	App     bool
	// AppID is the calling application's appId (App only).
	AppID             string
	Methods           access.AuthMethod
	AuthTime, MFATime time.Time
	// Credential names the kind ("bearer", "certificate"); ID names the
	// credential itself, safely (a token's hash, a key credential's id).
	Credential, ID string
}

// decideBearer decides a request that carries a Verity access token
// instead of a session.
func (p *Proxy) decideBearer(w http.ResponseWriter, r *http.Request, snap *decision.Snapshot, route *directory.AppRoute, path, token string, start time.Time) {
	if p.tokens == nil {
		p.bearerRefusal(w, r, "invalid_token", "This application does not accept access tokens here.", "")
		return
	}
	tok, h, err := p.tokens.get(r.Context(), token)
	if err != nil {
		p.metrics.requests.WithLabelValues("bad_token").Inc()
		p.bearerRefusal(w, r, "invalid_token", "The access token is not valid: "+tokenReason(err), "")
		return
	}
	if !slices.Contains(tok.Audience, route.AppID) {
		p.metrics.requests.WithLabelValues("bad_token").Inc()
		p.bearerRefusal(w, r, "invalid_token", "The access token was issued for another application.", "")
		return
	}
	c := caller{Subject: tok.Subject, App: tok.App, Methods: tok.Methods, AuthTime: tok.AuthTime, MFATime: tok.MFATime,
		Credential: "bearer", ID: "t." + hex.EncodeToString(h[:16])}
	if tok.App {
		c.AppID = route.AppID // an application's own token is for itself
	}
	p.decideCaller(w, r, snap, route, path, c, start)
}

// decideCaller decides a request of a token's or a certificate's caller:
// a user as a mobile or desktop client, on the methods of the sign-in
// behind the token; an application as a workload identity. An application
// calling another application's route needs the route's data action
// (Verity.Apps/apps/access/action when no rule names one): conditional
// access alone never lets one application into another. A challenge is a
// 401 that asks for a new token (RFC 9470), never a redirect.
func (p *Proxy) decideCaller(w http.ResponseWriter, r *http.Request, snap *decision.Snapshot, route *directory.AppRoute, path string, c caller, start time.Time) {
	ctx := r.Context()
	now := p.opts.Now()
	if ok, wait := p.perUser.allow(c.Subject); !ok {
		p.tooMany(w, r, wait, "for your account")
		return
	}
	ip := remoteAddr(r)
	sess := &signin.Session{ID: c.ID, UserID: c.Subject, Methods: c.Methods, AuthTime: c.AuthTime, MFATime: c.MFATime}
	var req decision.Request
	if c.App {
		req = decision.Request{Access: access.Request{Identity: access.IdentityServicePrincipal, ServicePrincipalID: c.Subject,
			Applications: []string{route.AppID}, IP: ip, Now: now}, Scope: "/apps/" + route.AppID, DataAction: true}
		req.Action = routeAction(snap, route, r.Method, path)
		if req.Action == "" && c.AppID != route.AppID {
			req.Action = directory.DefaultRouteDataAction
		}
	} else {
		if u, ok := snap.Directory().User(c.Subject); ok {
			sess.UPN = u.UserPrincipalName
		}
		req = p.decisionRequest(snap, route, sess, ip, r.UserAgent(), r.Method, path, now)
		req.Access.ClientApp = access.ClientAppMobileAndDesktop
	}
	d := decisionPool.Get()
	defer decisionPool.Put(d)
	err := snap.Decide(&req, d)
	ev := decisionEvent{RouteID: route.ID, AppID: route.AppID, UserID: c.Subject, SessionID: c.ID, Credential: c.Credential, Method: r.Method,
		Host: route.Host(), Path: path, Action: req.Action, IP: ip.String(), CorrelationID: newCorrelationID()}
	verdict := d.Verdict
	if err != nil {
		p.log.ErrorContext(ctx, "proxy: decision engine", "route", route.ID, "err", err)
		verdict = decision.Deny
		ev.Code, ev.Reason = codeUnavailable, "The decision engine is unavailable."
	}
	if verdict == decision.Allow && d.Access.Session.SignInFrequency.Reauthenticate {
		verdict = decision.Challenge
	}
	if verdict == decision.Challenge && c.Credential != "bearer" {
		// A certificate cannot step up.
		verdict = decision.Deny
		ev.Code, ev.Reason = codeCannotStepUp, "Conditional access asks for a step a client certificate cannot give."
	}
	if !p.record(w, r, &ev, verdict, d, snap, start) {
		return
	}
	switch verdict {
	case decision.Allow:
		p.allow(w, r, snap, route, path, sess, ev.CorrelationID)
	case decision.Challenge:
		p.metrics.requests.WithLabelValues("challenged").Inc()
		p.bearerRefusal(w, r, "insufficient_user_authentication", "Conditional access requires a stronger or more recent sign-in: get a new token.", ev.CorrelationID)
	default:
		p.deny(w, r, &ev)
	}
}

// certificateCaller is the application a request's TLS client certificate
// names through its key credentials (matched exactly, valid now), as its
// service principal; false when there is no such certificate.
func certificateCaller(r *http.Request, dir *directory.Snapshot, now time.Time) (caller, bool) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return caller{}, false
	}
	leaf := r.TLS.PeerCertificates[0]
	app, cred, ok := dir.ApplicationByCertificate(leaf.Raw)
	if !ok || !cred.ValidAt(now) || now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return caller{}, false
	}
	sp, ok := dir.ServicePrincipalByAppID(app.AppID)
	if !ok {
		return caller{}, false
	}
	return caller{Subject: sp.ID, App: true, AppID: app.AppID, Credential: "certificate", ID: "c." + cred.KeyID}, true
}

// bearerRefusal answers 401 with the RFC 6750 / RFC 9470 challenge.
func (p *Proxy) bearerRefusal(w http.ResponseWriter, r *http.Request, code, message, correlation string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="`+code+`", error_description="`+strings.ReplaceAll(message, `"`, "'")+`"`)
	r.Header.Set("Accept", "application/json")
	writeProblem(w, r, http.StatusUnauthorized, code, message, correlation)
}

// tokenReason is a refusal's reason safe to show: whether the token
// expired, else that it does not verify (not which check failed).
func tokenReason(err error) string {
	if err == errExpired || strings.Contains(err.Error(), "expired") {
		return "it has expired."
	}
	return "it does not verify, or it was revoked."
}
