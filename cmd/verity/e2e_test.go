package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/verityhq/verity/internal/localca"
	"github.com/verityhq/verity/internal/store/storetest"
)

// TestUpFirstLook follows the README: verity up, sign in with the printed
// one-time password through the CLI, apply the example tenant, export it,
// stop with SIGTERM, and start again without a new credential.
func TestUpFirstLook(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "verity-data")
	creds := filepath.Join(t.TempDir(), "credentials.json")
	env := baseEnv("VERITY_CREDENTIALS_FILE=" + creds)
	n := start(t, env, "up", "--addr", "127.0.0.1:0", "--data", data)
	if !strings.HasPrefix(n.url, "https://127.0.0.1:") || n.caFile != filepath.Join(data, "tls", "ca.pem") {
		t.Fatalf("banner url %q ca %q", n.url, n.caFile)
	}
	if n.user != "admin@verity.local" || len(n.password) < 20 {
		t.Fatalf("bootstrap credential %q / %d chars", n.user, len(n.password))
	}
	if strings.Contains(n.stderr.String(), n.password) {
		t.Fatal("the bootstrap password reached the log")
	}

	_, stderr, err := run(t, env, n.password+"\n", "login", "--server", n.url, "--ca", n.caFile, "--user", n.user, "--password-stdin")
	if err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	if fi, err := os.Stat(creds); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}
	_, _, err = run(t, env, "wrong password\n", "login", "--server", n.url, "--ca", n.caFile, "--user", n.user, "--password-stdin")
	if err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	testApplyExamples(t, env, n)

	// The browser sign-in works on the same listener, and lands in the
	// sign-in log.
	if path, body := n.browserSignIn(n.user, n.password); path != "/signin/session" || !strings.Contains(body, "Signed in as <strong>"+n.user) {
		t.Fatalf("browser sign-in ended at %s:\n%s", path, body)
	}
	tok := n.login(n.user, n.password)
	if status, body := n.do(tok, "GET", "/api/v1/auditLogs/signIns?status=success", ""); status != http.StatusOK || !strings.Contains(string(body), `"userPrincipalName":"admin@verity.local"`) {
		t.Fatalf("sign-in log: %d %s", status, body)
	}
	// The OpenID Connect provider answers at the node's URL.
	if status, body := n.do("", "GET", "/.well-known/openid-configuration", ""); status != http.StatusOK || !strings.Contains(string(body), `"issuer":"`+n.url+`"`) {
		t.Fatalf("discovery: %d %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(data, "master.key")); err != nil {
		t.Fatalf("no master key file in the data directory: %v", err)
	}

	if err := n.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, n.stderr)
	}
	if !strings.Contains(n.stderr.String(), "verity stopped") {
		t.Fatalf("no clean shutdown in the log:\n%s", n.stderr)
	}
	again := start(t, env, "up", "--addr", "127.0.0.1:0", "--data", data)
	if again.password != "" {
		t.Fatal("a second start printed a new bootstrap password")
	}
	again.login("admin@verity.local", n.password)
}

// TestTwoNodesOnePostgres is the cluster acceptance test: a change made
// through one node is in the other node's snapshot within a second.
func TestTwoNodesOnePostgres(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	a := start(t, serverEnv(t, dsn), "server")
	b := start(t, serverEnv(t, dsn), "server")
	if a.password == "" || b.password != "" {
		t.Fatalf("bootstrap must happen exactly once: a=%t b=%t", a.password != "", b.password != "")
	}
	tokA := a.login(a.user, a.password)
	tokB := b.login(a.user, a.password) // tokens are shared through the database
	for i := range 5 {
		status, body := a.do(tokA, "POST", "/api/v1/groups", fmt.Sprintf(`{"displayName":"group %d"}`, i))
		if status != http.StatusCreated {
			t.Fatalf("create on a: %d %s", status, body)
		}
		var g struct{ ID string }
		_ = json.Unmarshal(body, &g)
		written := time.Now()
		deadline := written.Add(time.Second)
		for {
			if status, _ := b.do(tokB, "GET", "/api/v1/groups/"+g.ID+"/transitiveMembers", ""); status == http.StatusOK && b.revision() >= a.revision() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("change %d not in node b's snapshot after 1s (a at %d, b at %d)", i, a.revision(), b.revision())
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("change %d visible on node b after %v", i, time.Since(written).Round(time.Millisecond))
	}
}

// TestKilledDuringWrites: SIGKILL while clients write; after a restart
// every acknowledged write is there, on both engines.
func TestKilledDuringWrites(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dsn := filepath.Join(t.TempDir(), "verity.db")
			if engine == "postgres" {
				dsn = storetest.PostgresDSN(t)
			}
			env := serverEnv(t, dsn)
			n := start(t, env, "server")
			tok := n.login(n.user, n.password)
			var (
				mu    sync.Mutex
				acked []string
				stop  atomic.Bool
				wg    sync.WaitGroup
			)
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; !stop.Load(); i++ {
						upn := fmt.Sprintf("w%d-%d@contoso.com", w, i)
						status, _ := n.do(tok, "POST", "/api/v1/users", fmt.Sprintf(`{"userPrincipalName":%q,"displayName":"x"}`, upn))
						if status == http.StatusCreated {
							mu.Lock()
							acked = append(acked, upn)
							mu.Unlock()
						}
					}
				}()
			}
			// Kill mid-stream: after at least a second and 30 acknowledged writes.
			time.Sleep(time.Second)
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				mu.Lock()
				enough := len(acked) >= 30
				mu.Unlock()
				if enough {
					break
				}
			}
			_ = n.cmd.Process.Signal(syscall.SIGKILL)
			stop.Store(true)
			wg.Wait()
			<-n.done
			if len(acked) < 30 {
				t.Fatalf("only %d writes acknowledged before the kill", len(acked))
			}
			again := start(t, env, "server")
			tok = again.login(n.user, n.password)
			for _, upn := range acked {
				if status, body := again.do(tok, "GET", "/api/v1/users/"+upn, ""); status != http.StatusOK {
					t.Fatalf("acknowledged user %s lost after SIGKILL: %d %s", upn, status, body)
				}
			}
			t.Logf("%s: %d acknowledged writes all present after SIGKILL", engine, len(acked))
		})
	}
}

func TestPostgresUnreachableAtStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	env := serverEnv(t, "postgres://verity:hunter2-secret@"+addr+"/verity?sslmode=disable")
	env = append(env, "VERITY_STORE_CONNECT_TIMEOUT=1s")
	started := time.Now()
	_, stderr, err := run(t, env, "", "server")
	if err == nil {
		t.Fatal("server started without its database")
	}
	if !strings.Contains(stderr, "unavailable") || !strings.Contains(stderr, addr) {
		t.Fatalf("unclear error:\n%s", stderr)
	}
	if strings.Contains(stderr, "hunter2-secret") {
		t.Fatal("the DSN password reached the output")
	}
	t.Logf("gave up after %v: %s", time.Since(started).Round(time.Millisecond), lastLine(stderr))
}

func TestPostgresLostMidRun(t *testing.T) {
	t.Parallel()
	cluster := storetest.StartCluster(t)
	n := start(t, serverEnv(t, cluster.DSN(t)), "server")
	tok := n.login(n.user, n.password)
	create := func(i int) (int, []byte) {
		return n.do(tok, "POST", "/api/v1/users", fmt.Sprintf(`{"userPrincipalName":"lost%d@contoso.com","displayName":"x"}`, i))
	}
	if status, body := create(0); status != http.StatusCreated {
		t.Fatalf("%d %s", status, body)
	}
	cluster.Stop(t)
	status, body := create(1)
	if status != http.StatusServiceUnavailable && status != http.StatusUnauthorized {
		t.Fatalf("write with the database down: %d %s", status, body)
	}
	if status == http.StatusServiceUnavailable && !strings.Contains(string(body), "StoreUnavailable") {
		t.Fatalf("503 without StoreUnavailable: %s", body)
	}
	if status, _ := n.do("", "GET", "/readyz", ""); status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the database down: %d", status)
	}
	if status, _ := n.do("", "GET", "/healthz", ""); status != http.StatusOK {
		t.Fatalf("healthz with the database down: %d (the process must stay up)", status)
	}
	cluster.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body = create(2)
		if status == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not recover after the database came back: %d %s", status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	select {
	case <-n.done:
		t.Fatalf("verity exited: %v", n.exitErr)
	default:
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dsn := filepath.Join(t.TempDir(), "verity.db")
			if engine == "postgres" {
				dsn = storetest.PostgresDSN(t)
			}
			env := serverEnv(t, dsn)
			n := start(t, env, "server")
			if err := n.stop(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			const q = `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_from_the_future.sql', 0)`
			if engine == "postgres" {
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				_, err = conn.Exec(ctx, q)
				conn.Close(ctx)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				db, err := sql.Open("sqlite", dsn)
				if err != nil {
					t.Fatal(err)
				}
				_, err = db.Exec(q)
				db.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			_, stderr, err := run(t, env, "", "server")
			if err == nil || !strings.Contains(stderr, "database schema version 9999 is newer than this binary supports") {
				t.Fatalf("err %v, stderr:\n%s", err, stderr)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "http:\n  addr: 127.0.0.1:0\n  tls:\n    disable: true\nstore:\n  dsn: "+filepath.Join(dir, "v.db")+"\n")
	if _, stderr, err := run(t, baseEnv(), "", "config", "validate", good); err != nil || !strings.Contains(stderr, "valid") {
		t.Fatalf("valid config rejected: %v %s", err, stderr)
	}
	for _, tt := range []struct{ name, body, env, want string }{
		{"unknown key", "store:\n  dns: x\n", "", "store.dns: unknown field"},
		{"corrupt", "\x00\x01 not yaml: [", "", "config"},
		{"bad value", "log:\n  format: xml\n", "", `log.format: must be json or text, not "xml"`},
		{"unknown env", "", "VERITY_STORE_DNS=x", "VERITY_STORE_DNS names no configuration field"},
		{"detector setting", "detect:\n  detectors:\n    passwordSpray: {acounts: 10}\n", "", "detect.detectors.passwordSpray.acounts: unknown setting"},
		{"detector CIDR", "detect:\n  detectors:\n    impossibleTravel: {exemptCIDRs: [10.0.0.0/33]}\n", "", "detect.detectors.impossibleTravel.exemptCIDRs"},
		{"unknown detector", "detect:\n  disabled: [tarot]\n", "", `detect.disabled[0]: no such detector "tarot"`},
		{"playbook action", "detect:\n  playbooks:\n    - {name: p, actions: [reboot]}\n", "", `detect.playbooks[0].actions: "reboot" is not an action`},
		{"trusted proxy", "http:\n  trustedProxies: [lb.internal]\n", "", "http.trustedProxies[0]: must be an address or a CIDR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv()
			if tt.env != "" {
				env = append(env, tt.env)
			}
			p := write(strings.ReplaceAll(tt.name, " ", "-")+".yaml", tt.body)
			_, stderr, err := run(t, env, "", "config", "validate", p)
			if err == nil || !strings.Contains(stderr, tt.want) {
				t.Fatalf("validate: err %v stderr %q; want %q", err, stderr, tt.want)
			}
			_, stderr, err = run(t, env, "", "server", "--config", p)
			if err == nil || !strings.Contains(stderr, tt.want) {
				t.Fatalf("server: err %v stderr %q; want %q", err, stderr, tt.want)
			}
		})
	}
	// Production mode refuses to serve without TLS unless told so.
	_, stderr, err := run(t, baseEnv("VERITY_DATA_DIR="+dir, "VERITY_HTTP_ADDR=127.0.0.1:0"), "", "server")
	if err == nil || !strings.Contains(stderr, "http.tls") {
		t.Fatalf("server without TLS: %v %s", err, stderr)
	}
}

// TestGracefulShutdown: a request in flight when SIGTERM arrives still
// completes; new connections are refused afterwards.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	env := serverEnv(t, filepath.Join(t.TempDir(), "verity.db"))
	n := start(t, env, "server")
	tok := n.login(n.user, n.password)
	host := strings.TrimPrefix(n.url, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"userPrincipalName":"inflight@contoso.com","displayName":"In flight"}`
	half := len(body) / 2
	fmt.Fprintf(conn, "POST /api/v1/users HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", host, tok, len(body), body[:half])
	time.Sleep(200 * time.Millisecond)
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	if _, err := fmt.Fprint(conn, body[half:]); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v", err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight request: %d", resp.StatusCode)
	}
	<-n.done
	if n.exitErr != nil {
		t.Fatalf("exit: %v", n.exitErr)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestServerWithCertificateFiles runs production mode with TLS from PEM
// files and checks a client that trusts only their CA.
func TestServerWithCertificateFiles(t *testing.T) {
	t.Parallel()
	files, err := localca.Ensure(filepath.Join(t.TempDir(), "tls"), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	env := baseEnv("VERITY_STORE_DSN="+filepath.Join(t.TempDir(), "v.db"), "VERITY_HTTP_ADDR=127.0.0.1:0",
		"VERITY_DATA_DIR="+t.TempDir(), "VERITY_HTTP_TLS_CERT_FILE="+files.ServerCert, "VERITY_HTTP_TLS_KEY_FILE="+files.ServerKey)
	n := start(t, env, "server")
	if !strings.HasPrefix(n.url, "https://") {
		t.Fatalf("url %q", n.url)
	}
	n.caFile = files.CACert
	pem, _ := os.ReadFile(files.CACert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	n.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	if status, body := n.do("", "GET", "/healthz", ""); status != http.StatusOK {
		t.Fatalf("healthz over TLS: %d %s", status, body)
	}
	n.login(n.user, n.password)
	// A client that does not trust the CA is refused by its own TLS check.
	if _, err := http.Get(n.url + "/healthz"); err == nil {
		t.Fatal("an untrusted client connected")
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// browserSignIn signs in through the sign-in pages as a browser does
// (cookies, the form's CSRF token) and returns the final page's path and
// body.
func (n *node) browserSignIn(user, password string) (string, string) {
	n.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: n.client.Transport, Jar: jar, Timeout: 20 * time.Second}
	resp, err := c.Get(n.url + "/signin?return_to=/signin/session")
	if err != nil {
		n.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(page)
	if m == nil {
		n.t.Fatalf("no sign-in form at /signin:\n%s", page)
	}
	resp, err = c.PostForm(n.url+"/signin", url.Values{"csrf": {string(m[1])}, "username": {user}, "password": {password}, "return_to": {"/signin/session"}})
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.Request.URL.Path, string(body)
}

// TestLoginWeb signs the command line in through the browser pages (RFC
// 8252: loopback redirect, PKCE) and uses the access token on the API.
func TestLoginWeb(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "verity-data")
	creds := filepath.Join(t.TempDir(), "credentials.json")
	env := baseEnv("VERITY_CREDENTIALS_FILE=" + creds)
	n := start(t, env, "up", "--addr", "127.0.0.1:0", "--data", data)

	cmd := exec.Command(verityBin, "login", "--web", "--server", n.url, "--ca", n.caFile, "--web-timeout", "60s")
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	sc := bufio.NewScanner(out)
	authURL := ""
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "https://") {
			authURL = line
			break
		}
	}
	if authURL == "" {
		t.Fatalf("no address printed; stderr: %s", stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()

	// The browser: the authorization request lands on the sign-in page;
	// signing in redirects through the provider to the CLI's loopback.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: n.client.Transport, Jar: jar, Timeout: 30 * time.Second}
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(page)
	if m == nil || resp.Request.URL.Path != "/signin" {
		t.Fatalf("the authorization request reached %s:\n%s", resp.Request.URL, page)
	}
	returnTo := regexp.MustCompile(`name="return_to" value="([^"]+)"`).FindSubmatch(page)
	app := regexp.MustCompile(`name="app" value="([^"]*)"`).FindSubmatch(page)
	resp, err = browser.PostForm(n.url+"/signin", url.Values{"csrf": {string(m[1])}, "username": {n.user}, "password": {n.password},
		"return_to": {html.UnescapeString(string(returnTo[1]))}, "app": {string(app[1])}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Host == strings.TrimPrefix(n.url, "https://") || !strings.Contains(string(body), "signed in to the Verity command line") {
		t.Fatalf("the sign-in ended at %s: %s", resp.Request.URL, body)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("verity login --web: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "as "+n.user) {
		t.Fatalf("login output: %s", stderr.String())
	}
	// The saved token works for the API.
	stdout, errOut, err := run(t, env, "", "export")
	if err != nil || !strings.Contains(stdout, "applications:") {
		t.Fatalf("export with the browser token: %v\n%s\n%s", err, stdout, errOut)
	}
	// Neither the password, the code nor the token reached the node's log.
	saved, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Token string }
	if err := json.Unmarshal(saved, &c); err != nil || c.Token == "" {
		t.Fatalf("credentials file: %s", saved)
	}
	code := ""
	if u, err := url.Parse(resp.Request.URL.String()); err == nil {
		code = u.Query().Get("code")
	}
	logs := n.stderr.String()
	for _, secret := range []string{n.password, c.Token, code} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Fatalf("a secret (%.4s…) is in the node's log", secret)
		}
	}
}
