package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/signin"
)

// upstreams holds the transports to upstreams — one per response header
// timeout, each with an idle pool sized for a busy proxy (Go's default of
// two idle connections per host would redial under load) — and the
// round-robin position of each route.
type upstreams struct {
	mu         sync.Mutex
	transports map[time.Duration]*http.Transport
	next       sync.Map // route id -> *atomic.Uint64
	proxy      *httputil.ReverseProxy
}

func newUpstreams() *upstreams {
	u := &upstreams{transports: map[time.Duration]*http.Transport{}}
	u.proxy = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    u,
		BufferPool:   bufferPool{},
		ErrorHandler: upstreamError,
	}
	return u
}

// RoundTrip sends the request with the transport of its route's timeout.
func (u *upstreams) RoundTrip(r *http.Request) (*http.Response, error) {
	t, _ := r.Context().Value(targetKey{}).(*target)
	timeout := 30 * time.Second
	if t != nil {
		timeout = t.route.Timeout()
	}
	return u.transport(timeout).RoundTrip(r)
}

func (u *upstreams) transport(timeout time.Duration) *http.Transport {
	u.mu.Lock()
	defer u.mu.Unlock()
	if t, ok := u.transports[timeout]; ok {
		return t
	}
	t := &http.Transport{
		Proxy:                 nil, // upstreams are reached directly
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	u.transports[timeout] = t
	return t
}

func (u *upstreams) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, t := range u.transports {
		t.CloseIdleConnections()
	}
}

// pick chooses the route's next upstream, round robin.
func (u *upstreams) pick(route *directory.AppRoute) (*url.URL, error) {
	v, _ := u.next.LoadOrStore(route.ID, new(atomic.Uint64))
	n := v.(*atomic.Uint64).Add(1)
	raw := route.To[int(n%uint64(len(route.To)))]
	return url.Parse(raw)
}

// target is what rewrite needs to know about one request.
type target struct {
	route     *directory.AppRoute
	upstream  *url.URL
	path      string // the normalised request path
	who       *identity
	assertion string
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
	up, err := p.upstreams.pick(route)
	if err != nil {
		p.refuse(w, r, http.StatusBadGateway, "BadUpstream", "The application's address is not valid.", "")
		return
	}
	t := &target{route: route, upstream: up, path: path, who: who, assertion: assertion}
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
	rest := strings.TrimPrefix(t.path, t.route.Prefix())
	if t.path+"/" == t.route.Prefix() {
		rest = ""
	}
	base := strings.TrimSuffix(t.upstream.Path, "/")
	out.URL.Scheme, out.URL.Host = t.upstream.Scheme, t.upstream.Host
	out.URL.Path, out.URL.RawPath = base+"/"+rest, ""
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
