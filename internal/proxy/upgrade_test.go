package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/signin"
)

// TestUpgradeIsProxied: a connection upgrade (WebSocket's handshake) of
// a signed-in session reaches the upstream after its decision and then
// carries bytes both ways — until the session is revoked: then it is
// closed within a second.
func TestUpgradeIsProxied(t *testing.T) {
	t.Parallel()
	echo := echoUpstream(t)
	e := newEnv(t, func(r *directory.AppRoute) { r.To = []string{echo.URL} })
	c := e.browser()
	// Sign in (the upstream answers the page load with 400: not an upgrade).
	if resp, body := e.signIn(c, e.base+"/payroll/"); resp.Request.URL.String() != e.base+"/payroll/" {
		t.Fatalf("sign-in ended at %s: %d %s", resp.Request.URL, resp.StatusCode, body)
	}
	conn, br := e.upgrade(c)
	host := strings.TrimPrefix(e.base, "https://")
	if n, err := signin.RevokeSessions(context.Background(), e.st, aliceID); err != nil || n == 0 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	revoked := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("the connection of a revoked session carried data")
	} else if took := time.Since(revoked); took > time.Second {
		t.Fatalf("the connection of a revoked session was closed after %v (%v)", took, err)
	}
	closed := false
	for _, ev := range e.decisions(3) {
		if ev["code"] == float64(900410) {
			closed = true
		}
	}
	if !closed {
		t.Error("closing the connection is not in the audit log")
	}

	// Without a session the upgrade gets no further than a challenge.
	anon, err := tls.Dial("tcp", e.proxy.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: appHost}) //nolint:gosec // the test server's own certificate
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	io.WriteString(anon, "GET /payroll/socket HTTP/1.1\r\nHost: "+host+"\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(anon), nil); err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("an upgrade without a session: %v %v", resp, err)
	}
}

// echoUpstream answers an upgrade (Upgrade: echo) that carries an
// assertion, then echoes every line back.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" || r.Header.Get("X-Verity-Assertion") == "" {
			http.Error(w, "not an upgrade with an assertion", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rw.Flush()
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			rw.WriteString("echo " + line)
			rw.Flush()
		}
	}))
	t.Cleanup(echo.Close)
	return echo
}

// upgrade opens an upgraded connection to /payroll/socket with the
// browser c's cookies and checks it carries bytes both ways.
func (e *env) upgrade(c *http.Client) (net.Conn, *bufio.Reader) {
	t := e.t
	t.Helper()
	u, _ := url.Parse(e.base + "/payroll/")
	var cookies []string
	for _, ck := range c.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	conn, err := tls.Dial("tcp", e.proxy.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: appHost}) //nolint:gosec // the test server's own certificate
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	host := strings.TrimPrefix(e.base, "https://")
	io.WriteString(conn, "GET /payroll/socket HTTP/1.1\r\nHost: "+host+"\r\nConnection: Upgrade\r\nUpgrade: echo\r\nCookie: "+strings.Join(cookies, "; ")+"\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade: %d %s", resp.StatusCode, b)
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		io.WriteString(conn, msg)
		line, err := br.ReadString('\n')
		if err != nil || line != "echo "+msg {
			t.Fatalf("through the upgraded connection: %q %v", line, err)
		}
	}
	return conn, br
}
