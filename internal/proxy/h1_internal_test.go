package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawUpstream accepts connections on 127.0.0.1 and hands each to serve;
// accepted counts them.
type rawUpstream struct {
	ln       net.Listener
	accepted atomic.Int64
}

func newRawUpstream(t *testing.T, serve func(c net.Conn)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.accepted.Add(1)
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return u
}

func (u *rawUpstream) url() string { return "http://" + u.ln.Addr().String() + "/" }

// answerRequests reads requests from c and answers each with response,
// until the connection ends or limit requests (0: no limit) are answered.
func answerRequests(c net.Conn, response string, limit int) {
	br := bufio.NewReader(c)
	for n := 0; limit == 0 || n < limit; n++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if _, err := io.WriteString(c, response); err != nil {
			return
		}
	}
}

func newTestH1Pool(t *testing.T) *h1Pool {
	p := newH1Pool(newDialer(nil).dial)
	t.Cleanup(p.close)
	return p
}

// get sends a GET through the pool and reads the whole body.
func get(t *testing.T, p *h1Pool, ctx context.Context, url, method string) (*http.Response, string, error) {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !h1Eligible(r) {
		t.Fatalf("%s %s is not eligible", method, url)
	}
	resp, err := p.roundTrip(r, 2*time.Second)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), err
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

// TestH1Reuse: sequential requests whose bodies are read to the end share
// one connection; HEAD and chunked responses too.
func TestH1Reuse(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, "hello "+r.Method)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p := newTestH1Pool(t)
	for i := range 30 {
		method, path := http.MethodGet, "/"
		switch i % 3 {
		case 1:
			method = http.MethodHead
		case 2:
			path = "/chunked"
		}
		resp, body, err := get(t, p, context.Background(), srv.URL+path, method)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		want := "hello " + method
		if method == http.MethodHead {
			want = ""
		}
		if resp.StatusCode != http.StatusOK || body != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("30 requests opened %d connections, want 1", n)
	}
}

// TestH1StaleConnection: an upstream that closes a kept-alive connection
// after each answer (as one whose idle timeout is short does) costs
// nothing but a new connection: every request is answered.
func TestH1StaleConnection(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, func(c net.Conn) { answerRequests(c, okResponse, 1) })
	p := newTestH1Pool(t)
	for i := range 5 {
		if i > 0 {
			time.Sleep(20 * time.Millisecond) // the upstream closes meanwhile
		}
		resp, body, err := get(t, p, context.Background(), up.url(), http.MethodGet)
		if err != nil || resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("request %d: %v %v %q", i, err, resp, body)
		}
	}
	if n := up.accepted.Load(); n != 5 {
		t.Fatalf("5 requests, %d connections; want 5", n)
	}
}

// TestH1NotReused: a connection is not reused after a response that says
// Connection: close, nor after a body closed before its end.
func TestH1NotReused(t *testing.T) {
	t.Parallel()
	closing := newRawUpstream(t, func(c net.Conn) {
		answerRequests(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 0)
	})
	p := newTestH1Pool(t)
	for range 3 {
		if _, _, err := get(t, p, context.Background(), closing.url(), http.MethodGet); err != nil {
			t.Fatal(err)
		}
	}
	if n := closing.accepted.Load(); n != 3 {
		t.Fatalf("Connection: close: %d connections for 3 requests, want 3", n)
	}

	long := newRawUpstream(t, func(c net.Conn) {
		answerRequests(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 100000), 0)
	})
	for range 3 {
		r, _ := http.NewRequest(http.MethodGet, long.url(), nil)
		resp, err := p.roundTrip(r, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resp.Body.Read(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // the client went away mid-body
	}
	if n := long.accepted.Load(); n != 3 {
		t.Fatalf("bodies closed early: %d connections for 3 requests, want 3", n)
	}
}

// TestH1Timeouts: an upstream that never answers is given up after the
// header timeout, with a timeout error (504); a client that goes away
// ends the wait at once, with its context's error.
func TestH1Timeouts(t *testing.T) {
	t.Parallel()
	silent := newRawUpstream(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	p := newTestH1Pool(t)
	r, _ := http.NewRequest(http.MethodGet, silent.url(), nil)
	start := time.Now()
	_, err := p.roundTrip(r, 200*time.Millisecond)
	if !isTimeout(err) {
		t.Fatalf("silent upstream: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("header timeout of 200ms took %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	r, _ = http.NewRequestWithContext(ctx, http.MethodGet, silent.url(), nil)
	_, err = p.roundTrip(r, time.Minute)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("client gone: %v, want context.Canceled", err)
	}
}

// TestH1Informational: 103 Early Hints reach the client trace (the
// reverse proxy forwards them); more than a few informational responses,
// or a 101 nobody asked for, are errors.
func TestH1Informational(t *testing.T) {
	t.Parallel()
	hints := newRawUpstream(t, func(c net.Conn) {
		answerRequests(c, "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n"+okResponse, 0)
	})
	p := newTestH1Pool(t)
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, http.StatusText(code)+" "+h.Get("Link"))
		return nil
	}}
	resp, body, err := get(t, p, httptrace.WithClientTrace(context.Background(), trace), hints.url(), http.MethodGet)
	if err != nil || resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("%v %v %q", err, resp, body)
	}
	if len(got) != 1 || got[0] != "Early Hints </app.css>; rel=preload" {
		t.Fatalf("informational responses seen: %q", got)
	}

	endless := newRawUpstream(t, func(c net.Conn) {
		answerRequests(c, strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 10)+okResponse, 0)
	})
	if _, _, err := get(t, p, context.Background(), endless.url(), http.MethodGet); err == nil || !strings.Contains(err.Error(), "informational") {
		t.Fatalf("ten informational responses: %v", err)
	}
	switching := newRawUpstream(t, func(c net.Conn) {
		answerRequests(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 0)
	})
	if _, _, err := get(t, p, context.Background(), switching.url(), http.MethodGet); err == nil || !strings.Contains(err.Error(), "switched protocols") {
		t.Fatalf("unsolicited 101: %v", err)
	}
}

// TestH1Eligible: only requests that can be sent again take the pool.
func TestH1Eligible(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		method, url string
		body        io.Reader
		upgrade     string
		want        bool
	}{
		{http.MethodGet, "http://a/", nil, "", true},
		{http.MethodHead, "http://a/", nil, "", true},
		{http.MethodOptions, "http://a/", nil, "", true},
		{http.MethodGet, "https://a/", nil, "", false},
		{http.MethodPost, "http://a/", nil, "", false},
		{http.MethodDelete, "http://a/", nil, "", false},
		{http.MethodGet, "http://a/", strings.NewReader("x"), "", false},
		{http.MethodGet, "http://a/", nil, "websocket", false},
	} {
		r, _ := http.NewRequest(c.method, c.url, c.body)
		if c.upgrade != "" {
			r.Header.Set("Upgrade", c.upgrade)
		}
		if got := h1Eligible(r); got != c.want {
			t.Errorf("%s %s body=%v upgrade=%q: eligible %v, want %v", c.method, c.url, c.body != nil, c.upgrade, got, c.want)
		}
	}
}

// TestH1IdleBound: connections idle for longer than the idle timeout are
// closed, not reused.
func TestH1IdleBound(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t, func(c net.Conn) { answerRequests(c, okResponse, 0) })
	p := newTestH1Pool(t)
	if _, _, err := get(t, p, context.Background(), up.url(), http.MethodGet); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(up.url(), "http://"), "/")
	p.mu.Lock()
	if len(p.idle[host]) != 1 {
		p.mu.Unlock()
		t.Fatalf("%d idle connections, want 1", len(p.idle[host]))
	}
	p.idle[host][0].idledAt = time.Now().Add(-h1IdleTimeout)
	p.mu.Unlock()
	if _, _, err := get(t, p, context.Background(), up.url(), http.MethodGet); err != nil {
		t.Fatal(err)
	}
	if n := up.accepted.Load(); n != 2 {
		t.Fatalf("an expired idle connection was reused: %d connections, want 2", n)
	}
}
