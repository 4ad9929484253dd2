package proxy_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
)

// TestUpgradeIsProxied: a connection upgrade (WebSocket's handshake) of
// a signed-in session reaches the upstream after its decision and then
// carries bytes both ways.
func TestUpgradeIsProxied(t *testing.T) {
	t.Parallel()
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
		line, _ := rw.ReadString('\n')
		rw.WriteString("echo " + line)
		rw.Flush()
	}))
	defer echo.Close()
	e := newEnv(t, func(r *directory.AppRoute) { r.To = []string{echo.URL} })
	c := e.browser()
	// Sign in (the upstream answers the page load with 400: not an upgrade).
	if resp, body := e.signIn(c, e.base+"/payroll/"); resp.Request.URL.String() != e.base+"/payroll/" {
		t.Fatalf("sign-in ended at %s: %d %s", resp.Request.URL, resp.StatusCode, body)
	}
	u, _ := url.Parse(e.base + "/payroll/")
	var cookies []string
	for _, ck := range c.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	conn, err := tls.Dial("tcp", e.proxy.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: appHost}) //nolint:gosec // the test server's own certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
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
	io.WriteString(conn, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo ping\n" {
		t.Fatalf("through the upgraded connection: %q %v", line, err)
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
