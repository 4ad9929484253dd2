package proxy_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/proxy"
)

// publicRoute makes the whole route public: these tests are about what
// reaches the proxy's handler, not about sessions.
func publicRoute(r *directory.AppRoute) { r.PublicPaths = []string{"/payroll/public/"} }

func TestRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	e := newNode(t, nodeOptions{tune: func(o *proxy.Options) { o.PerIP = proxy.RateLimit{PerSecond: 0.5, Burst: 3} }}, publicRoute)
	c := e.browser()
	for i := range 3 {
		if resp, _ := e.get(c, e.base+"/payroll/public/x"); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, resp.StatusCode)
		}
	}
	resp, body := e.get(c, e.base+"/payroll/public/x", "Accept", "application/json")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "TooManyRequests") {
		t.Fatalf("past the burst: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n := e.seenCount(); n != 3 {
		t.Errorf("the upstream saw %d requests, want 3", n)
	}
}

func TestRateLimitPerIdentity(t *testing.T) {
	t.Parallel()
	e := newNode(t, nodeOptions{tune: func(o *proxy.Options) { o.PerIdentity = proxy.RateLimit{PerSecond: 0.5, Burst: 2} }}, nil)
	c := e.browser()
	// Signing in is one decision of alice's (the page after the handoff).
	if resp, _ := e.signIn(c, e.base+"/payroll/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	if resp, _ := e.get(noRedirects(c), e.base+"/payroll/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("second request: %d", resp.StatusCode)
	}
	resp, body := e.get(noRedirects(c), e.base+"/payroll/", "Accept", "application/json")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "for your account") {
		t.Fatalf("past alice's burst: %d %s", resp.StatusCode, body)
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	e := newNode(t, nodeOptions{tune: func(o *proxy.Options) { o.MaxBodyBytes = 1024 }}, publicRoute)
	c := e.browser()
	post := func(body io.Reader) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.base+"/payroll/public/upload", body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(strings.NewReader(strings.Repeat("a", 1000))); code != http.StatusOK {
		t.Fatalf("a body within the bound: %d", code)
	}
	if code := post(strings.NewReader(strings.Repeat("a", 2000))); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a declared body past the bound: %d", code)
	}
	// Without a length (chunked), the bound bites while the body streams.
	if code := post(io.MultiReader(strings.NewReader(strings.Repeat("a", 2000)))); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a chunked body past the bound: %d", code)
	}
}

// serve runs the proxy's own HTTP server (as the node does) with o on a
// TLS listener and returns its address.
func (e *env) serve(o proxy.ServerOptions) string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	srv := e.px.Server(o)
	srv.TLSConfig = e.proxy.TLS.Clone()
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	e.t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func dialTLS(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: appHost}) //nolint:gosec // the test server's own certificate
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestSlowClientsAndLargeHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, publicRoute)
	addr := e.serve(proxy.ServerOptions{ReadHeaderTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4096})
	host := strings.TrimPrefix(e.base, "https://")

	// A client that never finishes its headers is cut off.
	slow := dialTLS(t, addr)
	io.WriteString(slow, "GET /payroll/public/x HTTP/1.1\r\nHost: "+host+"\r\nX-Slow: ")
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err := io.ReadAll(slow)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a client that stalled mid-headers was kept for %v", time.Since(start))
	}

	// Headers past the bound get 431.
	big := dialTLS(t, addr)
	io.WriteString(big, "GET /payroll/public/x HTTP/1.1\r\nHost: "+host+"\r\nX-Big: "+strings.Repeat("a", 8192)+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(big), nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("headers past the bound: %v %v", resp, err)
	}
	if e.seenCount() != 0 {
		t.Fatal("the upstream saw a refused request")
	}
}

// TestRequestSmuggling: the proxy parses each request strictly (Go's
// server) and sends the upstream a request of its own framing, so the
// upstream cannot be desynchronised. Ambiguous framing is refused;
// Transfer-Encoding with Content-Length is read by the Transfer-Encoding
// (RFC 9112 §6.3), and what follows the chunked body is a request the
// proxy parses and decides on like any other. The upstream sees exactly
// the requests the client got a 200 for.
func TestRequestSmuggling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, publicRoute)
	addr := e.serve(proxy.ServerOptions{})
	host := strings.TrimPrefix(e.base, "https://")
	hidden := "GET /payroll/public/hidden HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	served := 0
	want := map[string][]int{
		"CL.TE": {200, 200}, "TE.CL": {200, 200}, "two lengths": {400}, "two hosts": {400}, "space in name": {400},
		"bare LF in TE": {400}, "obfuscated TE": {501}, "TE list": {501}, "absolute form": {421},
	}
	for name, raw := range map[string]string{
		"CL.TE": "POST /payroll/public/x HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden,
		"TE.CL": "POST /payroll/public/x HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\nContent-Length: " +
			strconv.Itoa(len("0\r\n\r\n"+hidden)) + "\r\n\r\n0\r\n\r\n" + hidden,
		"two lengths":   "POST /payroll/public/x HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd" + hidden,
		"obfuscated TE": "POST /payroll/public/x HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + hidden,
		"TE list":       "POST /payroll/public/x HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + hidden,
		"two hosts":     "GET /payroll/public/x HTTP/1.1\r\nHost: " + host + "\r\nHost: other.example.com\r\n\r\n",
		"space in name": "GET /payroll/public/x HTTP/1.1\r\nHost: " + host + "\r\nContent-Length : 5\r\n\r\nabcde",
		"bare LF in TE": "POST /payroll/public/x HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding:\nchunked\r\n\r\n0\r\n\r\n" + hidden,
		"absolute form": "GET https://other.example.com/payroll/public/x HTTP/1.1\r\nHost: " + host + "\r\n\r\n",
	} {
		conn := dialTLS(t, addr)
		// Long enough for the answers; a connection kept alive after the
		// last one ends with this deadline.
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		io.WriteString(conn, raw)
		br := bufio.NewReader(conn)
		var codes []int
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
			if resp.Close {
				break
			}
		}
		if w := want[name]; len(codes) != len(w) || (len(codes) > 0 && codes[0] != w[0]) {
			t.Errorf("%s: answers %v, want %v", name, codes, w)
		}
		for _, c := range codes {
			if c == http.StatusOK {
				served++
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) != served {
		t.Errorf("the upstream saw %d requests; the clients were served %d", len(e.seen), served)
	}
	for _, r := range e.seen {
		if !strings.HasPrefix(r.URL.Path, "/internal/public/") {
			t.Errorf("the upstream saw %s %s", r.Method, r.URL.Path)
		}
	}
}
