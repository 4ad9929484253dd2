package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// conn says where the node and its proxy are.
type conn struct {
	apiURL    string // https://127.0.0.1:PORT, Verity's sign-in pages and API
	caFile    string // the node's local CA
	route     string // the route's external URL, https://bench.localhost:PORT/
	proxyAddr string // where the proxy listens, 127.0.0.1:PORT
	plain     bool   // the proxy serves plain HTTP (proxy.tls.disable)
}

func (c *conn) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.apiURL, "api", "", "Verity's base URL (https://127.0.0.1:PORT)")
	fs.StringVar(&c.caFile, "ca", "", "the node's CA certificate (DATA/tls/ca.pem)")
	fs.StringVar(&c.route, "route", "", "the bench route's external URL (https://bench.localhost:PORT/)")
	fs.StringVar(&c.proxyAddr, "proxy-addr", "", "the proxy's listen address (127.0.0.1:PORT)")
	fs.BoolVar(&c.plain, "plain", false, "the proxy serves plain HTTP (proxy.tls.disable)")
}

func (c *conn) tlsConfig() (*tls.Config, error) {
	pool, err := caPool(c.caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

func (c *conn) admin() (*api, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	return &api{base: c.apiURL, client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: tc}}}, nil
}

// routeHost is the route's host:port as browsers name it.
func (c *conn) routeHost() string {
	u, _ := url.Parse(c.route)
	return u.Host
}

// transport reaches the route's host at the proxy's address, in plain
// HTTP when the proxy serves it (the URLs, and so the cookies, stay
// https, as behind a TLS-terminating load balancer).
func (c *conn) transport() (http.RoundTripper, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	host := c.routeHost()
	tr := &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 16,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == host {
				addr = c.proxyAddr
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	if !c.plain {
		return tr, nil
	}
	return plainFor{host: host, next: tr}, nil
}

// plainFor sends requests for host over plain HTTP.
type plainFor struct {
	host string
	next http.RoundTripper
}

func (p plainFor) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == p.host && r.URL.Scheme == "https" {
		r = r.Clone(r.Context())
		r.URL.Scheme = "http"
	}
	return p.next.RoundTrip(r)
}

// browser is a client with a cookie jar of its own: one browser, one
// sign-in session.
func (c *conn) browser() (*http.Client, error) {
	tr, err := c.transport()
	if err != nil {
		return nil, err
	}
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: tr, Jar: jar, Timeout: 60 * time.Second}, nil
}

// waitRoute waits until the proxy serves the route (an API client without
// a session gets 401 SignInRequired).
func (c *conn) waitRoute(ctx context.Context) error {
	tr, err := c.transport()
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.route, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized && strings.Contains(string(b), "SignInRequired") {
				return nil
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, truncate(b, 200))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the route is not served: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	csrfField   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	returnField = regexp.MustCompile(`name="return_to" value="([^"]*)"`)
	appField    = regexp.MustCompile(`name="app" value="([^"]*)"`)
)

// formSignIn completes Verity's sign-in page that resp shows, as a
// person would: user name and password in one form. It returns the page
// the browser ends on.
func formSignIn(ctx context.Context, client *http.Client, resp *http.Response, page []byte, apiURL, user, password string) (*http.Response, []byte, error) {
	csrf, ret := csrfField.FindSubmatch(page), returnField.FindSubmatch(page)
	if !strings.HasPrefix(resp.Request.URL.Path, "/signin") || csrf == nil || ret == nil {
		return nil, nil, fmt.Errorf("not at the sign-in page: %d %s\n%s", resp.StatusCode, resp.Request.URL, truncate(page, 400))
	}
	form := url.Values{"csrf": {string(csrf[1])}, "username": {user}, "password": {password}, "return_to": {html.UnescapeString(string(ret[1]))}}
	if app := appField.FindSubmatch(page); app != nil {
		form.Set("app", html.UnescapeString(string(app[1])))
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", userAgent)
	out, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(out.Body)
	out.Body.Close()
	return out, b, err
}

// userAgent is a desktop browser's: every configuration gets the same.
const userAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

func get(ctx context.Context, client *http.Client, u string) (*http.Response, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b, err
}

// signIn opens the route in a new browser, signs in through the form and
// returns the proxy's session cookie as a Cookie header value.
func (c *conn) signIn(ctx context.Context, user, password string) (string, error) {
	client, err := c.browser()
	if err != nil {
		return "", err
	}
	resp, page, err := get(ctx, client, c.route)
	if err != nil {
		return "", err
	}
	resp, page, err = formSignIn(ctx, client, resp, page, c.apiURL, user, password)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || string(page) != "ok" {
		return "", fmt.Errorf("after sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, truncate(page, 400))
	}
	u, _ := url.Parse(c.route)
	for _, ck := range client.Jar.Cookies(u) {
		if ck.Name == "__Host-verity-proxy" {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", errors.New("no proxy cookie after sign-in")
}

// runSessions creates n sign-in sessions of the bench user, each through
// the browser flow in a browser of its own (the proxy redirects to
// sign-in, the form, the hand-over back to the proxy), and writes their
// proxy cookies to a file, one a line.
func runSessions(args []string) error {
	fs := flag.NewFlagSet("sessions", flag.ExitOnError)
	var c conn
	c.flags(fs)
	n := fs.Int("n", 1000, "sessions to create")
	conc := fs.Int("c", 4, "sign-ins in flight")
	user := fs.String("user", benchUser, "user")
	password := fs.String("password", "", "password")
	out := fs.String("out", "", "file for the cookies")
	_ = fs.Parse(args)
	ctx := context.Background()
	cookies := make([]string, *n)
	var next, done atomic.Int64
	errs := make(chan error, *conc)
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				ck, err := c.signIn(ctx, *user, *password)
				if err != nil {
					errs <- fmt.Errorf("sign-in %d: %w", i, err)
					next.Store(int64(*n))
					return
				}
				cookies[i] = ck
				if d := done.Add(1); d%1000 == 0 {
					fmt.Fprintf(os.Stderr, "  %d sessions, %.1f sign-ins/s\n", d, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(os.Stderr, "%d sessions in %.1fs (%.1f sign-ins/s, %d in flight)\n", *n, took.Seconds(), float64(*n)/took.Seconds(), *conc)
	return os.WriteFile(*out, []byte(strings.Join(cookies, "\n")+"\n"), 0o600)
}

// runHit sends one GET through the proxy per cookie (or -repeat per
// cookie), over a fixed set of keep-alive connections, and fails unless
// every answer is the upstream's 200.
func runHit(args []string) error {
	fs := flag.NewFlagSet("hit", flag.ExitOnError)
	file := fs.String("cookies", "", "file of Cookie header values, one a line")
	target := fs.String("url", "", "URL to request (the proxy's address)")
	host := fs.String("host", "", "Host header (the route's host)")
	conc := fs.Int("c", 8, "connections")
	first := fs.Int("first", 0, "use only the first N cookies (0: all)")
	repeat := fs.Int("repeat", 1, "requests per cookie")
	_ = fs.Parse(args)
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	var cookies []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			cookies = append(cookies, line)
		}
	}
	f.Close()
	if *first > 0 && *first < len(cookies) {
		cookies = cookies[:*first]
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}}
	jobs := make(chan string)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ck := range jobs {
				req, _ := http.NewRequest(http.MethodGet, *target, nil)
				req.Host = *host
				req.Header.Set("Cookie", ck)
				req.Header.Set("User-Agent", userAgent)
				resp, err := client.Do(req)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || string(b) != "ok" {
						err = fmt.Errorf("%d %s", resp.StatusCode, truncate(b, 200))
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	total := 0
	for range *repeat {
		for _, ck := range cookies {
			jobs <- ck
			total++
		}
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	fmt.Fprintf(os.Stderr, "hit: %d requests for %d sessions in %.1fs (%.0f/s), %d failed\n", total, len(cookies), took.Seconds(), float64(total)/took.Seconds(), failed.Load())
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d requests failed, first: %v", n, firstErr.Load())
	}
	return nil
}

// runO2PSignIn signs the bench user in to oauth2-proxy — oauth2-proxy
// sends the browser to Verity's OpenID Connect provider, Verity's sign-in
// form, the code back to oauth2-proxy — and prints oauth2-proxy's session
// cookie as a Cookie header value.
func runO2PSignIn(args []string) error {
	fs := flag.NewFlagSet("o2p-signin", flag.ExitOnError)
	var c conn
	c.flags(fs)
	o2p := fs.String("url", "", "oauth2-proxy's URL (http://127.0.0.1:PORT/)")
	user := fs.String("user", benchUser, "user")
	password := fs.String("password", "", "password")
	_ = fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := c.browser()
	if err != nil {
		return err
	}
	resp, page, err := get(ctx, client, *o2p)
	if err != nil {
		return err
	}
	resp, page, err = formSignIn(ctx, client, resp, page, c.apiURL, *user, *password)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(page) != "ok" {
		return fmt.Errorf("after sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, truncate(page, 400))
	}
	u, _ := url.Parse(*o2p)
	var parts []string
	for _, ck := range client.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "_oauth2_proxy") && !strings.HasSuffix(ck.Name, "_csrf") {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	if len(parts) == 0 {
		return errors.New("no oauth2-proxy session cookie after sign-in")
	}
	fmt.Println(strings.Join(parts, "; "))
	return nil
}
