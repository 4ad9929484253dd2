package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/jit"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
)

// Sessions is what the proxy needs of sign-in (signin.Service).
type Sessions interface {
	RedeemHandoff(ctx context.Context, code, routeID string) (string, error)
	SessionByID(ctx context.Context, id string) (*signin.Session, error)
	Touch(ctx context.Context, sess *signin.Session) error
	AccessRequest(sess *signin.Session, appID string, ip netip.Addr, userAgent string, now time.Time) access.Request
}

// Options configure a Proxy.
type Options struct {
	Store    store.Store
	Live     *decision.Live
	Sessions Sessions
	// Keys seal the proxy's cookies and sign identity assertions.
	Keys *keyring.Keyring
	// SignInURL is the public base URL of Verity's sign-in pages
	// (https://verity.example.com), where challenges send browsers; it is
	// also the assertions' issuer.
	SignInURL string
	// Bearer verifies Verity access tokens (the OIDC provider's
	// InspectAccessToken); nil refuses requests that carry one.
	Bearer func(ctx context.Context, token string) (BearerToken, error)
	// UpstreamTLS is the base TLS configuration towards https upstreams:
	// the roots to trust (RootCAs; the system's when nil) and the proxy's
	// client certificate (Certificates) for upstreams that require mTLS.
	// nil: the system's roots, no client certificate.
	UpstreamTLS *tls.Config
	// MaxBodyBytes bounds a request body (413 past it); 0 means
	// DefaultMaxBodyBytes, a negative value no bound.
	MaxBodyBytes int64
	// PerIP and PerIdentity rate-limit requests by client address and by
	// signed-in user or application (429 with Retry-After past them); zero
	// PerSecond turns one off.
	PerIP, PerIdentity RateLimit
	// AuditFailOpen serves requests whose decision the audit log cannot
	// take (its backlog is full) instead of refusing them with 503.
	AuditFailOpen bool
	Logger        *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Proxy is an http.Handler serving every app route.
type Proxy struct {
	opts      Options
	log       *slog.Logger
	sessions  *sessionCache
	cookies   cookieCache
	upstreams *upstreams
	asserts   *assertionCache
	metrics   *Metrics
	signIn    *url.URL
	upgrades  *upgradeSet
	tokens    *tokenCache
	perIP     *keyedLimiter
	perUser   *keyedLimiter
	stop      context.CancelFunc
	// auditDropped counts decisions served although the audit log could
	// not take them (AuditFailOpen).
	auditDropped atomic.Int64
}

// New returns a Proxy.
func New(opts Options) (*Proxy, error) {
	if opts.Store == nil || opts.Live == nil || opts.Sessions == nil || opts.Keys == nil {
		return nil, errors.New("proxy: Store, Live, Sessions and Keys are required")
	}
	u, err := url.Parse(opts.SignInURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("proxy: SignInURL %q must be the base URL of the sign-in pages, such as https://verity.example.com", opts.SignInURL)
	}
	u.Path = ""
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Proxy{opts: opts, log: opts.Logger, signIn: u, metrics: newMetrics()}
	p.sessions = newSessionCache(opts.Sessions, opts.Now)
	p.upstreams = newUpstreams(p.metrics, p.log, opts.Now)
	p.upstreams.tls = opts.UpstreamTLS
	p.asserts = newAssertionCache()
	p.upgrades = newUpgradeSet()
	p.perIP, p.perUser = newKeyedLimiter(opts.PerIP, opts.Now), newKeyedLimiter(opts.PerIdentity, opts.Now)
	if p.opts.MaxBodyBytes == 0 {
		p.opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Bearer != nil {
		p.tokens = &tokenCache{verify: opts.Bearer, now: opts.Now, entries: map[[32]byte]tokenEntry{}}
	}
	wctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	go p.watchUpgrades(wctx)
	p.startHealthChecks(wctx)
	return p, nil
}

// Metrics returns the proxy's Prometheus collectors.
func (p *Proxy) Metrics() *Metrics { return p.metrics }

// Close stops watching open upgraded connections and checking upstreams'
// health, and releases idle upstream connections.
func (p *Proxy) Close() {
	p.stop()
	p.upstreams.close()
}

// The proxy's own paths on every route host.
const (
	callbackPath = signin.ProxyCallbackPath
	jwksPath     = "/.verity/jwks.json"
	signOutPath  = "/.verity/sign_out"
	ownPrefix    = "/.verity/"
)

// DefaultMaxBodyBytes bounds request bodies unless configured.
const DefaultMaxBodyBytes = 64 << 20

// AssertionHeader carries the signed identity assertion to upstreams.
const AssertionHeader = "X-Verity-Assertion"

// identityHeaderPrefix: every request header with it is the proxy's to
// set, so a client's is dropped.
const identityHeaderPrefix = "X-Verity-"

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.opts.Now()
	snap := p.opts.Live.Current()
	dir := snap.Directory()
	host, ok := requestHost(r)
	if !ok || !dir.HasRouteHost(host) {
		p.metrics.requests.WithLabelValues("unknown_host").Inc()
		p.refuse(w, r, http.StatusMisdirectedRequest, "UnknownHost", "No application is published at this address.", "")
		return
	}
	if ok, wait := p.perIP.allow(remoteAddr(r).String()); !ok {
		p.tooMany(w, r, wait, "from your address")
		return
	}
	if max := p.opts.MaxBodyBytes; max > 0 {
		if r.ContentLength > max {
			p.metrics.requests.WithLabelValues("too_large").Inc()
			p.refuse(w, r, http.StatusRequestEntityTooLarge, "TooLarge", "The request body is too large.", "")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
	}
	path, why := normalPath(r)
	if why != "" {
		p.metrics.requests.WithLabelValues("bad_path").Inc()
		p.refuse(w, r, http.StatusBadRequest, "InvalidPath", why, "")
		return
	}
	if strings.HasPrefix(path, ownPrefix) {
		p.serveOwn(w, r, host, path)
		return
	}
	route, ok := dir.RouteFor(host, path)
	if !ok {
		p.metrics.requests.WithLabelValues("no_route").Inc()
		p.refuse(w, r, http.StatusNotFound, "NoRoute", "No application is published at this path.", "")
		return
	}
	if !p.networkOpen(w, r, snap, route, path, start) {
		return
	}
	if route.IsPublic(path) || (route.AllowPreflight && isPreflight(r)) {
		p.metrics.requests.WithLabelValues("public").Inc()
		p.forward(w, r, route, path, nil, "")
		return
	}
	p.decide(w, r, snap, route, path, start)
}

// networkOpen applies just-in-time network access before anything else
// that reaches an application — public paths included, as a closed port
// admits nothing (the proxy's own /.verity/ endpoints, which reach no
// upstream, are served before it): a port a policy guards takes requests
// only from the sources an open request names, until its end. A refusal
// is audited and answered here. now is the request's arrival.
func (p *Proxy) networkOpen(w http.ResponseWriter, r *http.Request, snap *decision.Snapshot, route *directory.AppRoute, path string, now time.Time) bool {
	ip := remoteAddr(r)
	res := snap.NetworkAccess().App(route.AppID, route.Port(), ip, now)
	if res.Open {
		return true
	}
	ev := decisionEvent{CorrelationID: newCorrelationID(), RouteID: route.ID, AppID: route.AppID, Method: r.Method, Host: route.Host(), Path: path,
		IP: ip.String(), Outcome: decision.Deny.String(), Code: codeNetworkClosed, Reason: networkReason(res, route.Port()), Policies: []appliedPolicy{}}
	p.metrics.requests.WithLabelValues("network_closed").Inc()
	if !p.audit(r.Context(), &ev) {
		p.refuse(w, r, http.StatusServiceUnavailable, "AuditUnavailable", "Access cannot be recorded right now. Try again in a moment.", ev.CorrelationID)
		return false
	}
	p.refuse(w, r, http.StatusForbidden, itoa(codeNetworkClosed), userMessage(codeNetworkClosed), ev.CorrelationID)
	return false
}

// networkReason says why a port is closed, for the audit record.
func networkReason(res jit.Result, port int) string {
	if res.Err != nil {
		return "Just-in-time network access policies cannot be read; guarded ports are closed: " + res.Err.Error()
	}
	return "Port " + itoa(port) + " is closed by just-in-time network access policy " + res.Policy + " and no open request names this address."
}

// decide answers one request that needs a decision.
func (p *Proxy) decide(w http.ResponseWriter, r *http.Request, snap *decision.Snapshot, route *directory.AppRoute, path string, start time.Time) {
	if token := bearerToken(r); token != "" {
		p.decideBearer(w, r, snap, route, path, token, start)
		return
	}
	if c, ok := certificateCaller(r, snap.Directory(), p.opts.Now()); ok {
		p.decideCaller(w, r, snap, route, path, c, start)
		return
	}
	ctx := r.Context()
	now := p.opts.Now()
	c, ok := p.readCookie(r, route)
	if !ok {
		p.metrics.requests.WithLabelValues("sign_in").Inc()
		p.challenge(w, r, route, "")
		return
	}
	sess, err := p.sessions.get(ctx, c.SessionID)
	if err != nil {
		p.log.ErrorContext(ctx, "proxy: read session", "route", route.ID, "err", err)
		p.refuse(w, r, http.StatusServiceUnavailable, "Unavailable", "Access cannot be checked right now. Try again in a moment.", "")
		return
	}
	if sess == nil {
		// Revoked, expired or signed out: sign in again.
		p.metrics.requests.WithLabelValues("sign_in").Inc()
		p.challenge(w, r, route, "")
		return
	}
	if ok, wait := p.perUser.allow(sess.UserID); !ok {
		p.tooMany(w, r, wait, "for your account")
		return
	}
	ip := remoteAddr(r)
	req := p.decisionRequest(snap, route, sess, ip, r.UserAgent(), r.Method, path, now)
	d := decisionPool.Get()
	defer decisionPool.Put(d)
	err = snap.Decide(&req, d)
	ev := decisionEvent{RouteID: route.ID, AppID: route.AppID, UserID: sess.UserID, SessionID: sess.ID, Method: r.Method, Host: route.Host(),
		Path: path, Action: req.Action, IP: ip.String(), CorrelationID: newCorrelationID()}
	verdict := d.Verdict
	if err != nil {
		p.log.ErrorContext(ctx, "proxy: decision engine", "route", route.ID, "err", err)
		verdict = decision.Deny
		ev.Code, ev.Reason = codeUnavailable, "The decision engine is unavailable."
	}
	// A sign-in frequency that has run out is a challenge whatever else.
	if verdict == decision.Allow && d.Access.Session.SignInFrequency.Reauthenticate {
		verdict = decision.Challenge
	}
	if verdict == decision.Challenge && now.Sub(c.IssuedAt) < loopGuard && c.Revision == snap.Revision() {
		// Sign-in has just vouched for this session, nothing has changed
		// since, and the decision still wants more: a step sign-in cannot
		// give here. Sending the browser round again would loop.
		verdict = decision.Deny
		ev.Code, ev.Reason = codeCannotStepUp, "Sign-in has just vouched for the session and the decision still asks for a step it cannot give."
	}
	if !p.record(w, r, &ev, verdict, d, snap, start) {
		return
	}
	switch verdict {
	case decision.Allow:
		p.touch(ctx, sess)
		if isUpgrade(r) {
			// An upgraded connection outlives this decision: it is decided
			// again while it is open, and closed when it is no longer allowed.
			uctx, cancel := context.WithCancel(ctx)
			defer cancel()
			u := &openUpgrade{cancel: cancel, routeID: route.ID, sessionID: sess.ID, ip: ip, userAgent: r.UserAgent(), method: r.Method, path: path,
				userID: sess.UserID, appID: route.AppID, host: route.Host()}
			p.upgrades.add(u)
			defer p.upgrades.remove(u)
			r = r.WithContext(uctx)
		}
		p.allow(w, r, snap, route, path, sess, ev.CorrelationID)
	case decision.Challenge:
		p.metrics.requests.WithLabelValues("challenged").Inc()
		p.challenge(w, r, route, ev.CorrelationID)
	default:
		p.deny(w, r, &ev)
	}
}

// record completes a decision's audit event — outcome, the policies that
// applied, the reason, the latency — counts it and queues it; false when
// the request was refused because the audit log cannot take it.
func (p *Proxy) record(w http.ResponseWriter, r *http.Request, ev *decisionEvent, verdict decision.Verdict, d *decision.Decision, snap *decision.Snapshot, start time.Time) bool {
	ev.Outcome = verdict.String()
	ev.Policies = appliedPolicies(&d.Access)
	if ev.Code == 0 {
		ev.Code, ev.Reason = reasonOf(verdict, d, snap, ev.UserID)
	}
	ev.LatencyMicros = p.opts.Now().Sub(start).Microseconds()
	p.metrics.decisions.WithLabelValues(ev.Outcome).Inc()
	p.metrics.decisionSeconds.Observe(float64(ev.LatencyMicros) / 1e6)
	if !p.audit(r.Context(), ev) {
		p.refuse(w, r, http.StatusServiceUnavailable, "AuditUnavailable", "Access cannot be recorded right now. Try again in a moment.", ev.CorrelationID)
		return false
	}
	return true
}

// allow forwards an allowed request with the caller's assertion.
func (p *Proxy) allow(w http.ResponseWriter, r *http.Request, snap *decision.Snapshot, route *directory.AppRoute, path string, sess *signin.Session, correlation string) {
	assertion, err := p.assertion(r.Context(), snap, route, sess)
	if err != nil {
		p.log.ErrorContext(r.Context(), "proxy: sign assertion", "route", route.ID, "err", err)
		p.refuse(w, r, http.StatusServiceUnavailable, "Unavailable", "Access cannot be granted right now. Try again in a moment.", correlation)
		return
	}
	p.metrics.requests.WithLabelValues("allowed").Inc()
	p.forward(w, r, route, path, &identity{sess: sess, snap: snap.Directory()}, assertion)
}

// deny answers a denied request: its reason code, never the policy.
func (p *Proxy) deny(w http.ResponseWriter, r *http.Request, ev *decisionEvent) {
	p.metrics.requests.WithLabelValues("denied").Inc()
	p.refuse(w, r, http.StatusForbidden, itoa(ev.Code), userMessage(ev.Code), ev.CorrelationID)
}

// decisionRequest is the decision request of a session's request: the
// signals sign-in uses, and the data action the route asks for the method
// and path.
func (p *Proxy) decisionRequest(snap *decision.Snapshot, route *directory.AppRoute, sess *signin.Session, ip netip.Addr, userAgent, method, path string, now time.Time) decision.Request {
	return decision.Request{Access: p.opts.Sessions.AccessRequest(sess, route.AppID, ip, userAgent, now), Scope: "/apps/" + route.AppID, DataAction: true,
		Action: routeAction(snap, route, method, path)}
}

// routeAction is the data action a request needs: its rule's, else
// Verity.Apps/apps/access/action when the application requires
// assignment, else none (conditional access alone decides).
func routeAction(snap *decision.Snapshot, route *directory.AppRoute, method, path string) string {
	if rule := route.Rule(method, caseFold(path)); rule != nil {
		return rule.DataAction
	}
	if sp, ok := snap.Directory().ServicePrincipalByAppID(route.AppID); ok && sp.AppRoleAssignmentRequired {
		return directory.DefaultRouteDataAction
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// loopGuard: a challenge this soon after sign-in handed the session over,
// with the same snapshot, would send the browser round in circles.
const loopGuard = 10 * time.Second

var decisionPool = newPool(func() *decision.Decision { return new(decision.Decision) })

// requestHost is the request's Host, lower case, without the default
// port; false when it is not a plain host name or address.
func requestHost(r *http.Request) (string, bool) {
	h := strings.ToLower(r.Host)
	if h == "" || len(h) > 255 || strings.ContainsAny(h, "/\\@ \t") {
		return "", false
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		if (port == "443" && r.TLS != nil) || (port == "80" && r.TLS == nil) {
			h = host
		}
	}
	return h, true
}

// remoteAddr is the client's address: the connection's peer.
func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

func newCorrelationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// caseFold lower-cases path for rule matching: a rule guards a path
// whatever its case, since many upstreams (IIS, macOS) ignore case.
func caseFold(path string) string { return strings.ToLower(path) }
