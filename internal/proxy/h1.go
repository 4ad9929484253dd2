package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"
)

// h1Pool sends the common request — GET, HEAD or OPTIONS without a body,
// not an upgrade — to a plain-HTTP upstream on a kept-alive connection,
// writing the request and reading the response in the caller's goroutine.
// net/http's Transport gives every connection a reader and a writer
// goroutine and hands each request between them: on a busy proxy those
// hand-offs cost about a fifth of its processor time. The wire format is
// net/http's own (Request.Write, ReadResponse); only the pool is here.
// Everything else — bodies, upgrades, TLS and HTTP/2 upstreams — goes
// through the Transport.
type h1Pool struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	idle   map[string][]*h1Conn // by host:port, most recently used last
	closed bool
}

// Bounds of the idle pool, as the Transport's are set (upstream.go).
const (
	h1MaxIdlePerHost = 512
	h1IdleTimeout    = 90 * time.Second
	h1Max1xx         = 5 // informational responses before the final one
)

type h1Conn struct {
	net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	host    string
	idledAt time.Time
}

func newH1Pool(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *h1Pool {
	return &h1Pool{dial: dial, idle: map[string][]*h1Conn{}}
}

// h1Eligible reports whether the request takes the pool's path: it can be
// sent again on a fresh connection when a kept-alive one turns out to have
// been closed by the upstream, as the Transport does for such requests.
func h1Eligible(r *http.Request) bool {
	return r.URL.Scheme == "http" && (r.Body == nil || r.Body == http.NoBody) &&
		(r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions) &&
		r.Header.Get("Upgrade") == ""
}

// get returns an idle connection to host (reused) or a new one.
func (p *h1Pool) get(ctx context.Context, host string) (c *h1Conn, reused bool, err error) {
	now := time.Now()
	p.mu.Lock()
	for l := p.idle[host]; len(l) > 0; l = p.idle[host] {
		c = l[len(l)-1]
		l[len(l)-1] = nil
		p.idle[host] = l[:len(l)-1]
		if now.Sub(c.idledAt) < h1IdleTimeout {
			p.mu.Unlock()
			return c, true, nil
		}
		_ = c.Close()
	}
	p.mu.Unlock()
	nc, err := p.dial(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	return &h1Conn{Conn: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10), host: host}, false, nil
}

// put returns a connection whose response has been read to its end;
// connections idle for longer than h1IdleTimeout are closed on the way.
func (p *h1Pool) put(c *h1Conn) {
	now := time.Now()
	c.idledAt = now
	p.mu.Lock()
	l := p.idle[c.host]
	expired := 0
	for expired < len(l) && now.Sub(l[expired].idledAt) >= h1IdleTimeout {
		_ = l[expired].Close()
		expired++
	}
	if expired > 0 {
		l = append(l[:0], l[expired:]...)
	}
	if p.closed || len(l) >= h1MaxIdlePerHost {
		p.idle[c.host] = l
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	p.idle[c.host] = append(l, c)
	p.mu.Unlock()
}

// close closes the idle connections; connections in use close when their
// responses end.
func (p *h1Pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for host, l := range p.idle {
		for _, c := range l {
			_ = c.Close()
		}
		delete(p.idle, host)
	}
}

// past is a deadline that has passed: it interrupts a connection's
// pending reads and writes.
var past = time.Unix(1, 0)

// roundTrip sends r (h1Eligible) and reads the response head; the body is
// read by the caller, and the connection goes back to the pool when it has
// been read to its end. A kept-alive connection the upstream has closed
// meanwhile is dropped and the request sent on the next, as the Transport
// does; headerTimeout bounds the wait for the response head.
func (p *h1Pool) roundTrip(r *http.Request, headerTimeout time.Duration) (*http.Response, error) {
	ctx := r.Context()
	for {
		c, reused, err := p.get(ctx, r.URL.Host)
		if err != nil {
			return nil, err
		}
		// A client that goes away interrupts the exchange.
		stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(past) })
		resp, err := c.exchange(r, headerTimeout)
		if err == nil {
			resp.Body = h1Body(resp, p, c, stop)
			return resp, nil
		}
		stop()
		_ = c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("proxy: upstream request: %w", ctx.Err())
		}
		var stale *staleConnError
		if reused && errors.As(err, &stale) {
			continue
		}
		if errors.As(err, &stale) {
			return nil, stale.err
		}
		return nil, err
	}
}

// staleConnError: the connection failed before the first byte of a
// response, so the request may go again on another.
type staleConnError struct{ err error }

func (e *staleConnError) Error() string { return e.err.Error() }
func (e *staleConnError) Unwrap() error { return e.err }

// exchange writes the request and reads the final response head,
// reporting informational responses to the request's client trace (the
// reverse proxy passes 103 Early Hints on that way).
func (c *h1Conn) exchange(r *http.Request, headerTimeout time.Duration) (*http.Response, error) {
	if headerTimeout > 0 {
		_ = c.SetDeadline(time.Now().Add(headerTimeout))
	}
	if err := r.Write(c.bw); err != nil {
		return nil, &staleConnError{err}
	}
	if err := c.bw.Flush(); err != nil {
		return nil, &staleConnError{err}
	}
	if _, err := c.br.Peek(1); err != nil {
		if isTimeout(err) {
			return nil, err
		}
		return nil, &staleConnError{err}
	}
	trace := httptrace.ContextClientTrace(r.Context())
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(c.br, r)
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code >= 200 || code == http.StatusSwitchingProtocols {
			if code == http.StatusSwitchingProtocols {
				return nil, errors.New("proxy: upstream switched protocols without being asked to")
			}
			if headerTimeout > 0 {
				_ = c.SetDeadline(time.Time{})
				if r.Context().Err() != nil {
					// The client left between the head and clearing its
					// deadline: interrupt the body as the context would.
					_ = c.SetDeadline(past)
				}
			}
			return resp, nil
		}
		if n == h1Max1xx {
			return nil, errors.New("proxy: upstream sent too many informational responses")
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// h1Body wraps a response body so that the connection goes back to the
// pool once the body has been read to its end, and is closed when it is
// closed before (the client went away) or fails.
func h1Body(resp *http.Response, p *h1Pool, c *h1Conn, stop func() bool) io.ReadCloser {
	b := &h1ResponseBody{ReadCloser: resp.Body, pool: p, conn: c, stop: stop, keep: !resp.Close}
	if resp.Body == http.NoBody {
		b.finish(true)
		return http.NoBody
	}
	return b
}

type h1ResponseBody struct {
	io.ReadCloser
	pool *h1Pool
	conn *h1Conn
	stop func() bool
	keep bool // the response allows the connection to be reused
	done atomic.Bool
}

func (b *h1ResponseBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
	}
	return n, err
}

func (b *h1ResponseBody) Close() error {
	b.finish(false)
	return nil
}

// finish releases the connection once: back to the pool when the body
// was read to its end, the response allows it and the client did not go
// away meanwhile; closed otherwise.
func (b *h1ResponseBody) finish(complete bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	if b.stop() && complete && b.keep {
		b.pool.put(b.conn)
		return
	}
	_ = b.conn.Close()
}
