package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/signin"
)

// Passive health: an upstream whose connection fails is left out for a
// back-off that doubles, up to maxBackoff, while it keeps failing.
const (
	minBackoff = 5 * time.Second
	maxBackoff = 60 * time.Second
)

// upstreams holds the transports to upstreams — one per response header
// timeout, each with an idle pool sized for a busy proxy (Go's default of
// two idle connections per host would redial under load) — and each
// route's pool: its upstreams parsed once, their health and the
// round-robin position.
type upstreams struct {
	mu         sync.Mutex
	transports map[time.Duration]*http.Transport
	// h1 carries the requests h1Eligible admits to plain-HTTP upstreams.
	h1 *h1Pool
	// tls is the base TLS configuration towards upstreams (Options.UpstreamTLS).
	tls     *tls.Config
	pools   sync.Map // route id -> *routePool
	proxy   *httputil.ReverseProxy
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
	// checks is the health watcher and its probers (health.go).
	checks sync.WaitGroup
}

func newUpstreams(m *Metrics, log *slog.Logger, now func() time.Time) *upstreams {
	u := &upstreams{transports: map[time.Duration]*http.Transport{}, metrics: m, log: log, now: now,
		h1: newH1Pool(newDialer(nil).dial)}
	u.proxy = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    u,
		BufferPool:   bufferPool{},
		ErrorHandler: upstreamError,
	}
	m.upstreams = u
	return u
}

// routePool is one route's upstreams.
type routePool struct {
	next atomic.Uint64
	mu   sync.Mutex // rebuilding set
	set  atomic.Pointer[upstreamSet]
}

// upstreamSet is a route's upstreams as its to lists them (an upstream
// listed twice takes twice the share, with one health).
type upstreamSet struct {
	to   []string
	ups  []*upstream
	uniq []*upstream
}

// upstream is one upstream of a route and its health. Requests read it
// without locking; mu orders the transitions.
type upstream struct {
	raw string // as the route lists it: its name in logs and metrics
	url *url.URL

	// downUntil (unix ns) ends the back-off after a connection failure;
	// 0 when the last attempt reached it.
	downUntil atomic.Int64
	// failedAt (unix ns) is its last failure, a connection's or a
	// probe's: with every upstream down, the least recent is tried.
	failedAt atomic.Int64
	// checkDown: the route's health check has taken it out.
	checkDown atomic.Bool

	mu            sync.Mutex
	backoff       time.Duration
	passes, fails int // probes in a row
}

// up reports whether the upstream takes requests at now (unix ns).
func (up *upstream) up(now int64) bool {
	if up.checkDown.Load() {
		return false
	}
	d := up.downUntil.Load()
	return d == 0 || now >= d
}

// pool returns the route's pool.
func (u *upstreams) pool(routeID string) *routePool {
	if v, ok := u.pools.Load(routeID); ok {
		return v.(*routePool)
	}
	v, _ := u.pools.LoadOrStore(routeID, new(routePool))
	return v.(*routePool)
}

// setFor returns the pool's upstreams for to, built again when the route's
// upstreams have changed; an upstream still listed keeps its health.
func (u *upstreams) setFor(routeID string, p *routePool, to []string) *upstreamSet {
	if s := p.set.Load(); s != nil && slices.Equal(s.to, to) {
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.set.Load()
	if old != nil && slices.Equal(old.to, to) {
		return old
	}
	kept := map[string]*upstream{}
	if old != nil {
		for _, up := range old.uniq {
			kept[up.raw] = up
		}
	}
	s := &upstreamSet{to: to}
	seen := map[string]*upstream{}
	for _, raw := range to {
		up := seen[raw]
		if up == nil {
			if up = kept[raw]; up == nil {
				parsed, err := url.Parse(raw)
				if err != nil {
					continue // validated when stored; never expected
				}
				up = &upstream{raw: raw, url: parsed}
			}
			delete(kept, raw)
			seen[raw] = up
			s.uniq = append(s.uniq, up)
		}
		s.ups = append(s.ups, up)
	}
	for raw := range kept {
		u.metrics.upstreamFailures.DeletePartialMatch(prometheus.Labels{"route": routeID, "upstream": raw})
	}
	p.set.Store(s)
	return s
}

// pick chooses the next of the set's upstreams that take requests, round
// robin, leaving out not. When none does, it is the one that failed least
// recently: a request is never refused without trying. nil when the set
// holds no upstream but not.
func (s *upstreamSet) pick(n uint64, now int64, not *upstream) *upstream {
	healthy := 0
	for _, up := range s.ups {
		if up != not && up.up(now) {
			healthy++
		}
	}
	if healthy > 0 {
		k := int(n % uint64(healthy))
		for _, up := range s.ups {
			if up != not && up.up(now) {
				if k == 0 {
					return up
				}
				k--
			}
		}
	}
	var best *upstream
	for _, up := range s.ups {
		if up != not && (best == nil || up.failedAt.Load() < best.failedAt.Load()) {
			best = up
		}
	}
	return best
}

// failed records a connection failure (why: connect, tls, reset): the
// upstream is left out for its back-off, doubled when a trial after the
// last one fails again. Failures of requests sent before it went down
// change nothing.
func (u *upstreams) failed(routeID string, up *upstream, why string, err error) {
	u.metrics.upstreamFailures.WithLabelValues(routeID, up.raw, why).Inc()
	now := u.now()
	up.failedAt.Store(now.UnixNano())
	up.mu.Lock()
	until := up.downUntil.Load()
	if until != 0 && now.UnixNano() < until {
		up.mu.Unlock()
		return
	}
	first := until == 0
	if first {
		up.backoff = minBackoff
	} else {
		up.backoff = min(2*up.backoff, maxBackoff)
	}
	backoff := up.backoff
	up.downUntil.Store(now.Add(backoff).UnixNano())
	up.mu.Unlock()
	if first {
		u.log.Warn("proxy: upstream down", "route", routeID, "upstream", up.raw, "why", why, "err", err, "retryAfter", backoff.String())
	} else {
		u.log.Debug("proxy: upstream still down", "route", routeID, "upstream", up.raw, "why", why, "err", err, "retryAfter", backoff.String())
	}
}

// reached records that a request got a response from the upstream: a
// back-off ends.
func (u *upstreams) reached(routeID string, up *upstream) {
	if up.downUntil.Load() == 0 {
		return
	}
	up.mu.Lock()
	was := up.downUntil.Swap(0)
	up.backoff = 0
	up.mu.Unlock()
	if was != 0 {
		u.log.Info("proxy: upstream back", "route", routeID, "upstream", up.raw, "by", "request")
	}
}

// collect reports each upstream's health at Collect time.
func (u *upstreams) collect(ch chan<- prometheus.Metric, desc *prometheus.Desc) {
	now := u.now().UnixNano()
	u.pools.Range(func(k, v any) bool {
		s := v.(*routePool).set.Load()
		if s == nil {
			return true
		}
		for _, up := range s.uniq {
			healthy := 0.0
			if up.up(now) {
				healthy = 1
			}
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, healthy, k.(string), up.raw)
		}
		return true
	})
}

// send sends the request on the h1 pool when it is eligible, else with
// the transport of the route's timeout.
func (u *upstreams) send(r *http.Request, timeout time.Duration) (*http.Response, error) {
	if h1Eligible(r) {
		return u.h1.roundTrip(r, timeout)
	}
	return u.transport(timeout).RoundTrip(r)
}

// RoundTrip sends the request with the transport of its route's timeout.
// A connection failure leaves the upstream out for a while; an idempotent
// request without a body is then sent once more, to another upstream.
func (u *upstreams) RoundTrip(r *http.Request) (*http.Response, error) {
	t, _ := r.Context().Value(targetKey{}).(*target)
	if t == nil {
		return u.transport(30 * time.Second).RoundTrip(r)
	}
	timeout := t.route.Timeout()
	resp, err := u.send(r, timeout)
	if err == nil {
		u.reached(t.route.ID, t.upstream)
		return resp, nil
	}
	if t.body.failed.Load() {
		return nil, err // the client's body, not the upstream, failed
	}
	why := connectionFailure(r.Context(), err)
	if why == "" {
		return nil, err
	}
	u.failed(t.route.ID, t.upstream, why, err)
	if !replayable(r) {
		return nil, err
	}
	next := t.set.pick(t.pool.next.Add(1), u.now().UnixNano(), t.upstream)
	if next == nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	pointAt(r.URL, next, t.rest)
	t.upstream = next
	resp, err = u.send(r, timeout)
	if err == nil {
		u.reached(t.route.ID, next)
		return resp, nil
	}
	if why := connectionFailure(r.Context(), err); why != "" {
		u.failed(t.route.ID, next, why, err)
	}
	return nil, err
}

// replayable: a request that may go to another upstream after its
// connection failed — idempotent, without a body, its client still there.
func replayable(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions) &&
		(r.Body == nil || r.Body == http.NoBody) && r.Context().Err() == nil
}

// connectionFailure says how a request failed to reach its upstream:
// connect (dial), tls (the handshake), reset (the connection was reset or
// closed before a response); "" for anything else (a timeout waiting for
// the response, the client going away), which says nothing of the
// upstream's health.
func connectionFailure(ctx context.Context, err error) string {
	var ce *connectError
	switch {
	case ctx.Err() != nil:
		return ""
	case errors.As(err, &ce):
		return ce.kind
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	}
	return ""
}

// connectError is a failure to open a connection to an upstream.
type connectError struct {
	kind string // connect or tls
	err  error
}

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// dialer opens connections to upstreams; its errors are connectErrors.
// dialer opens connections to upstreams; tls is the base configuration
// of TLS upstreams (roots to trust, the proxy's client certificate for
// mTLS), nil for the system's roots and no client certificate.
type dialer struct {
	net.Dialer
	tls *tls.Config
}

func newDialer(base *tls.Config) *dialer {
	return &dialer{Dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}, tls: base}
}

func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &connectError{kind: "connect", err: err}
	}
	return c, nil
}

// dialTLS opens a TLS connection, offering HTTP/2, verified against the
// configured roots (the system's by default) for the upstream's host name,
// with the proxy's client certificate when one is configured.
func (d *dialer) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if d.tls != nil {
		cfg = d.tls.Clone()
	}
	cfg.ServerName, cfg.NextProtos = host, []string{"h2", "http/1.1"}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		return nil, &connectError{kind: "tls", err: err}
	}
	return tc, nil
}

func (u *upstreams) transport(timeout time.Duration) *http.Transport {
	u.mu.Lock()
	defer u.mu.Unlock()
	if t, ok := u.transports[timeout]; ok {
		return t
	}
	d := newDialer(u.tls)
	t := &http.Transport{
		Proxy:                 nil, // upstreams are reached directly
		DialContext:           d.dial,
		DialTLSContext:        d.dialTLS,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	u.transports[timeout] = t
	return t
}

// close waits for the health checks to end (the proxy's context is
// cancelled first) and releases idle connections.
func (u *upstreams) close() {
	u.checks.Wait()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, t := range u.transports {
		t.CloseIdleConnections()
	}
	u.h1.close()
}

// target is what rewrite and RoundTrip need to know about one request.
type target struct {
	route     *directory.AppRoute
	pool      *routePool
	set       *upstreamSet
	upstream  *upstream
	path      string // the normalised request path
	rest      string // the path after the route's prefix
	who       *identity
	assertion string
	body      clientBody
}

// clientBody is a request body on its way upstream: a failure to read it
// (too large, the client gone) is the client's, never the upstream's —
// also when the request's context does not say so.
type clientBody struct {
	io.ReadCloser
	failed atomic.Bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

type targetKey struct{}

// identity is the signed-in user, for the plain identity headers.
type identity struct {
	sess *signin.Session
	snap interface {
		TransitiveMemberOf(string) []string
	}
}

// forward sends the request upstream; who is nil for public requests.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, route *directory.AppRoute, path string, who *identity, assertion string) {
	pl := p.upstreams.pool(route.ID)
	set := p.upstreams.setFor(route.ID, pl, route.To)
	up := set.pick(pl.next.Add(1), p.opts.Now().UnixNano(), nil)
	if up == nil {
		p.refuse(w, r, http.StatusBadGateway, "BadUpstream", "The application's address is not valid.", "")
		return
	}
	t := &target{route: route, pool: pl, set: set, upstream: up, path: path, who: who, assertion: assertion}
	start := p.opts.Now()
	p.upstreams.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, t)))
	p.metrics.upstreamSeconds.Observe(p.opts.Now().Sub(start).Seconds())
}

// rewrite builds the upstream request: the route's prefix is replaced by
// the upstream's path (as an external URL maps to an internal one), the
// client's identity headers and the proxy's cookies are removed, the
// assertion and forwarding headers are set.
func rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(targetKey{}).(*target)
	out := pr.Out
	t.rest = strings.TrimPrefix(t.path, t.route.Prefix())
	if t.path+"/" == t.route.Prefix() {
		t.rest = ""
	}
	pointAt(out.URL, t.upstream, t.rest)
	if out.Body != nil && out.Body != http.NoBody {
		t.body.ReadCloser = out.Body
		out.Body = &t.body
	}
	if t.route.PreserveHost {
		out.Host = pr.In.Host
	} else {
		out.Host = ""
	}
	for name := range out.Header {
		if strings.HasPrefix(name, identityHeaderPrefix) {
			delete(out.Header, name)
		}
	}
	dropOwnCookies(out)
	pr.SetXForwarded()
	if t.who == nil {
		return
	}
	out.Header.Set(AssertionHeader, t.assertion)
	if t.route.PassIdentityHeaders {
		out.Header.Set("X-Verity-User-Id", t.who.sess.UserID)
		out.Header.Set("X-Verity-User", t.who.sess.UPN)
		if g := t.who.snap.TransitiveMemberOf(t.who.sess.UserID); len(g) <= maxAssertionGroups {
			out.Header.Set("X-Verity-Groups", strings.Join(g, ","))
		}
	}
}

// pointAt sets u to the upstream's URL for rest, the request's path after
// the route's prefix.
func pointAt(u *url.URL, up *upstream, rest string) {
	u.Scheme, u.Host = up.url.Scheme, up.url.Host
	u.Path, u.RawPath = strings.TrimSuffix(up.url.Path, "/")+"/"+rest, ""
}

// dropOwnCookies removes the proxy's cookies from the upstream request.
func dropOwnCookies(r *http.Request) {
	cookies := r.Cookies()
	if len(cookies) == 0 {
		return
	}
	r.Header.Del("Cookie")
	for _, c := range cookies {
		if c.Name != sessionCookie && c.Name != stateCookie {
			r.AddCookie(c)
		}
	}
}

func upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		status = http.StatusGatewayTimeout
	}
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "TooLarge", "The request body is too large.", "")
		return
	}
	writeProblem(w, r, status, "UpstreamUnavailable", "The application did not answer.", "")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// bufferPool lends the copy buffers of proxied bodies.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
