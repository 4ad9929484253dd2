package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	bannerProxy = regexp.MustCompile(`Proxy:\s+(\S+)`)
	returnField = regexp.MustCompile(`name="return_to" value="([^"]*)"`)
	appField    = regexp.MustCompile(`name="app" value="([^"]*)"`)
)

// TestUpProxy publishes a web application through the proxy of
// `verity up` and opens it as a browser would: sent to sign in, back at
// the application with a signed identity assertion; an API client without
// a session gets 401.
func TestUpProxy(t *testing.T) {
	t.Parallel()
	upstream := helloUpstream(t)
	n := start(t, baseEnv(), "up", "--addr", "127.0.0.1:0", "--data", filepath.Join(t.TempDir(), "verity-data"))
	m := bannerProxy.FindStringSubmatch(n.stdout.String())
	if m == nil {
		t.Fatalf("no proxy line in the banner:\n%s", n.stdout)
	}
	publishAndOpen(t, n, n.login(n.user, n.password), m[1], upstream.URL)
	// The decision is in the node's metrics.
	if status, body := n.do("", "GET", "/metrics", ""); status != http.StatusOK || !strings.Contains(string(body), `verity_proxy_decisions_total{outcome="allow"} 1`) {
		t.Fatalf("metrics: %d\n%s", status, body)
	}
}

// TestProxyNode runs `verity proxy` beside `verity up` on the same
// database and master key: the proxy-only node sends the browser to the
// other node to sign in, takes the session it hands back and decides; on
// its http.addr it serves only /healthz, /readyz and /metrics; it creates
// no administrator. Without proxy.signInURL it refuses to start.
func TestProxyNode(t *testing.T) {
	t.Parallel()
	upstream := helloUpstream(t)
	data := filepath.Join(t.TempDir(), "verity-data")
	n := start(t, baseEnv("VERITY_PROXY_ADDR="), "up", "--addr", "127.0.0.1:0", "--data", data)

	_, stderr, err := run(t, baseEnv("VERITY_DATA_DIR="+data, "VERITY_HTTP_ADDR=127.0.0.1:0", "VERITY_HTTP_TLS_DISABLE=true"), "", "proxy")
	if err == nil || !strings.Contains(stderr, "proxy.signInURL") {
		t.Fatalf("verity proxy without proxy.signInURL: %v\n%s", err, stderr)
	}

	px := start(t, baseEnv("VERITY_DATA_DIR="+data, "VERITY_HTTP_ADDR=127.0.0.1:0", "VERITY_HTTP_TLS_DISABLE=true",
		"VERITY_PROXY_SIGN_IN_URL="+n.url, "VERITY_PROXY_TLS_CERT_FILE="+filepath.Join(data, "tls", "server.pem"),
		"VERITY_PROXY_TLS_KEY_FILE="+filepath.Join(data, "tls", "server-key.pem")), "proxy")
	out := px.stdout.String()
	m := bannerProxy.FindStringSubmatch(out)
	ops := bannerOps.FindStringSubmatch(out)
	if m == nil || ops == nil || strings.Contains(out, "password:") {
		t.Fatalf("proxy banner:\n%s", out)
	}
	publishAndOpen(t, n, n.login(n.user, n.password), m[1], upstream.URL)

	get := func(path string) (int, string) {
		resp, err := http.Get(ops[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("/metrics"); status != http.StatusOK || !strings.Contains(body, `verity_proxy_decisions_total{outcome="allow"} 1`) {
		t.Fatalf("proxy node metrics: %d\n%s", status, body)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/api/v1/status": 404, "/signin": 404, "/oauth2/authorize": 404} {
		if status, body := get(path); status != want {
			t.Errorf("proxy node %s: %d, want %d\n%s", path, status, want, body)
		}
	}
	// The node that serves the API made no decision.
	if _, body := n.do("", "GET", "/metrics", ""); strings.Contains(string(body), `verity_proxy_decisions_total{outcome="allow"}`) {
		t.Fatal("the decision was counted on the node without the proxy")
	}
}

var bannerOps = regexp.MustCompile(`Operations:\s+(\S+)/healthz`)

func helloUpstream(t *testing.T) *httptest.Server {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s assertion=%t", r.URL.Path, r.Header.Get("X-Verity-Assertion") != "")
	}))
	t.Cleanup(upstream.Close)
	return upstream
}

// publishAndOpen publishes upstream at hello.localhost on the proxy at
// proxyURL through n's API, then opens it as a browser would: an API
// client without a session gets 401, a browser is sent to sign in at n and
// comes back to the page it asked for, with an assertion.
func publishAndOpen(t *testing.T, n *node, tok, proxyURL, upstream string) {
	t.Helper()
	appURL, tr := publishHello(t, n, tok, proxyURL, upstream)
	jar, _ := cookiejar.New(nil)
	openAs(t, n, &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second}, appURL, n.user, n.password)
}

// publishHello publishes upstream at hello.localhost on the proxy at
// proxyURL and waits until the proxy serves the route (an API client
// without a session gets 401). It returns the application's URL and a
// transport that reaches hello.localhost.
func publishHello(t *testing.T, n *node, tok, proxyURL, upstream string) (string, *http.Transport) {
	t.Helper()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(proxyURL, "https://"))
	appURL := "https://hello.localhost:" + port
	status, body := n.do(tok, "POST", "/api/v1/applications", `{"displayName": "Hello"}`)
	if status != http.StatusCreated {
		t.Fatalf("create application: %d %s", status, body)
	}
	var app struct {
		AppID string `json:"appId"`
	}
	_ = json.Unmarshal(body, &app)
	status, body = n.do(tok, "POST", "/api/v1/appRoutes", fmt.Sprintf(`{"displayName": "Hello", "appId": %q, "from": %q, "to": [%q]}`,
		app.AppID, appURL+"/", upstream))
	if status != http.StatusCreated {
		t.Fatalf("create route: %d %s", status, body)
	}

	tr := n.client.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h, p, _ := net.SplitHostPort(addr); h == "hello.localhost" {
			addr = net.JoinHostPort("127.0.0.1", p)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}

	// The route reaches the proxy's snapshot within moments.
	for deadline := time.Now().Add(10 * time.Second); ; {
		req, _ := http.NewRequest(http.MethodGet, appURL+"/docs/a", nil)
		req.Header.Set("Accept", "application/json")
		r, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode == http.StatusUnauthorized && strings.Contains(string(b), "SignInRequired") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an API client without a session: %d %s", r.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return appURL, tr
}

// openAs opens appURL/docs/a?x=1 in browser: sent to sign in at n as
// user, and back at the page.
func openAs(t *testing.T, n *node, browser *http.Client, appURL, user, password string) {
	t.Helper()
	resp, err := browser.Get(appURL + "/docs/a?x=1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf, ret, appID := csrfField.FindSubmatch(page), returnField.FindSubmatch(page), appField.FindSubmatch(page)
	if !strings.HasPrefix(resp.Request.URL.String(), n.url+"/signin") || csrf == nil || ret == nil || appID == nil {
		t.Fatalf("the browser was not sent to sign in: %s\n%s", resp.Request.URL, page)
	}
	ret[1] = []byte(strings.ReplaceAll(string(ret[1]), "&amp;", "&"))
	resp, err = browser.PostForm(n.url+"/signin", url.Values{"csrf": {string(csrf[1])}, "username": {user}, "password": {password},
		"return_to": {string(ret[1])}, "app": {string(appID[1])}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(page) != "hello /docs/a assertion=true" || resp.Request.URL.String() != appURL+"/docs/a?x=1" {
		t.Fatalf("after sign-in: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
}
