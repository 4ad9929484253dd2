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

// decideBearer decides a request that carries a Verity access token
// instead of a session: a user's (conditional access as a mobile or
// desktop client, on the methods of the sign-in behind the token) or an
// application's own (conditional access for workload identities). A
// challenge is a 401 that asks for a new token (RFC 9470), never a
// redirect.
func (p *Proxy) decideBearer(w http.ResponseWriter, r *http.Request, snap *decision.Snapshot, route *directory.AppRoute, path, token string, start time.Time) {
	ctx := r.Context()
	now := p.opts.Now()
	if p.tokens == nil {
		p.bearerRefusal(w, r, "invalid_token", "This application does not accept access tokens here.", "")
		return
	}
	tok, h, err := p.tokens.get(ctx, token)
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
	if ok, wait := p.perUser.allow(tok.Subject); !ok {
		p.tooMany(w, r, wait, "for your account")
		return
	}
	ip := remoteAddr(r)
	sess := &signin.Session{ID: "t." + hex.EncodeToString(h[:16]), UserID: tok.Subject, Methods: tok.Methods, AuthTime: tok.AuthTime, MFATime: tok.MFATime}
	var req decision.Request
	if tok.App {
		req = decision.Request{Access: access.Request{Identity: access.IdentityServicePrincipal, ServicePrincipalID: tok.Subject,
			Applications: []string{route.AppID}, IP: ip, Now: now}, Scope: "/apps/" + route.AppID, DataAction: true}
		req.Action = routeAction(snap, route, r.Method, path)
	} else {
		if u, ok := snap.Directory().User(tok.Subject); ok {
			sess.UPN = u.UserPrincipalName
		}
		req = p.decisionRequest(snap, route, sess, ip, r.UserAgent(), r.Method, path, now)
		req.Access.ClientApp = access.ClientAppMobileAndDesktop
	}
	d := decisionPool.Get()
	defer decisionPool.Put(d)
	err = snap.Decide(&req, d)
	ev := decisionEvent{RouteID: route.ID, AppID: route.AppID, UserID: tok.Subject, SessionID: sess.ID, Credential: "bearer", Method: r.Method,
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
	ev.Outcome = verdict.String()
	ev.Policies = appliedPolicies(&d.Access)
	if ev.Code == 0 {
		ev.Code, ev.Reason = reasonOf(verdict, d, snap, tok.Subject)
	}
	ev.LatencyMicros = p.opts.Now().Sub(start).Microseconds()
	p.metrics.decisions.WithLabelValues(ev.Outcome).Inc()
	p.metrics.decisionSeconds.Observe(float64(ev.LatencyMicros) / 1e6)
	if !p.audit(ctx, &ev) {
		p.refuse(w, r, http.StatusServiceUnavailable, "AuditUnavailable", "Access cannot be recorded right now. Try again in a moment.", ev.CorrelationID)
		return
	}
	switch verdict {
	case decision.Allow:
		assertion, err := p.assertion(ctx, snap, route, sess)
		if err != nil {
			p.log.ErrorContext(ctx, "proxy: sign assertion", "route", route.ID, "err", err)
			p.refuse(w, r, http.StatusServiceUnavailable, "Unavailable", "Access cannot be granted right now. Try again in a moment.", ev.CorrelationID)
			return
		}
		p.metrics.requests.WithLabelValues("allowed").Inc()
		p.forward(w, r, route, path, &identity{sess: sess, snap: snap.Directory()}, assertion)
	case decision.Challenge:
		p.metrics.requests.WithLabelValues("challenged").Inc()
		p.bearerRefusal(w, r, "insufficient_user_authentication", "Conditional access requires a stronger or more recent sign-in: get a new token.", ev.CorrelationID)
	default:
		p.metrics.requests.WithLabelValues("denied").Inc()
		p.refuse(w, r, http.StatusForbidden, itoa(ev.Code), userMessage(ev.Code), ev.CorrelationID)
	}
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
