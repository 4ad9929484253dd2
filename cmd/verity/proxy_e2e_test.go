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
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s assertion=%t", r.URL.Path, r.Header.Get("X-Verity-Assertion") != "")
	}))
	defer upstream.Close()
	n := start(t, baseEnv(), "up", "--addr", "127.0.0.1:0", "--data", filepath.Join(t.TempDir(), "verity-data"))
	m := bannerProxy.FindStringSubmatch(n.stdout.String())
	if m == nil {
		t.Fatalf("no proxy line in the banner:\n%s", n.stdout)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(m[1], "https://"))
	appURL := "https://hello.localhost:" + port

	tok := n.login(n.user, n.password)
	status, body := n.do(tok, "POST", "/api/v1/applications", `{"displayName": "Hello"}`)
	if status != http.StatusCreated {
		t.Fatalf("create application: %d %s", status, body)
	}
	var app struct {
		AppID string `json:"appId"`
	}
	_ = json.Unmarshal(body, &app)
	status, body = n.do(tok, "POST", "/api/v1/appRoutes", fmt.Sprintf(`{"displayName": "Hello", "appId": %q, "from": %q, "to": [%q]}`,
		app.AppID, appURL+"/", upstream.URL))
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
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second}

	// The route reaches the node's snapshot within moments.
	var resp *http.Response
	var page []byte
	for deadline := time.Now().Add(5 * time.Second); ; {
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
	resp, err := browser.Get(appURL + "/docs/a?x=1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf, ret, appID := csrfField.FindSubmatch(page), returnField.FindSubmatch(page), appField.FindSubmatch(page)
	if !strings.HasPrefix(resp.Request.URL.String(), n.url+"/signin") || csrf == nil || ret == nil || appID == nil {
		t.Fatalf("the browser was not sent to sign in: %s\n%s", resp.Request.URL, page)
	}
	ret[1] = []byte(strings.ReplaceAll(string(ret[1]), "&amp;", "&"))
	resp, err = browser.PostForm(n.url+"/signin", url.Values{"csrf": {string(csrf[1])}, "username": {n.user}, "password": {n.password},
		"return_to": {string(ret[1])}, "app": {string(appID[1])}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(page) != "hello /docs/a assertion=true" || resp.Request.URL.String() != appURL+"/docs/a?x=1" {
		t.Fatalf("after sign-in: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	// The decision is in the node's metrics.
	if status, body := n.do("", "GET", "/metrics", ""); status != http.StatusOK || !strings.Contains(string(body), `verity_proxy_decisions_total{outcome="allow"} 1`) {
		t.Fatalf("metrics: %d\n%s", status, body)
	}
}
