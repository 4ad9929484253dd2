package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store/storetest"
)

// The end-to-end tests run the real binary, built once per test run.
var verityBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "verity-bin-")
	if err != nil {
		panic(err)
	}
	verityBin = filepath.Join(dir, "verity")
	out, err := exec.Command("go", "build", "-o", verityBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build verity: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	storetest.Main(m)
}

// node is one running verity process.
type node struct {
	t        *testing.T
	cmd      *exec.Cmd
	url      string
	caFile   string
	user     string
	password string // only on the first start of a database
	stdout   *lockedBuffer
	stderr   *lockedBuffer
	done     chan struct{}
	exitErr  error
	client   *http.Client
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	bannerURL  = regexp.MustCompile(`Admin API:\s+(\S+)/api/v1/`)
	bannerCA   = regexp.MustCompile(`CA to trust:\s+(\S+)`)
	bannerUser = regexp.MustCompile(`user:\s+(\S+)`)
	bannerPass = regexp.MustCompile(`password:\s+(\S+)`)
)

// baseEnv is the environment of every process the tests start: the test
// process's own, minus VERITY_ configuration that could leak in.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VERITY_") && !strings.HasPrefix(kv, "VERITY_TEST_POSTGRES=") {
			continue
		}
		env = append(env, kv)
	}
	// Tests run nodes side by side: the proxy listens on a free port.
	env = append(env, "VERITY_PROXY_ADDR=127.0.0.1:0")
	return append(env, extra...)
}

// start runs verity with args and env and waits for its start banner.
func start(t *testing.T, env []string, args ...string) *node {
	t.Helper()
	n := &node{t: t, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(verityBin, args...)
	n.cmd.Env = env
	pr, pw := io.Pipe()
	n.cmd.Stdout = io.MultiWriter(n.stdout, pw)
	n.cmd.Stderr = n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		n.exitErr = n.cmd.Wait()
		pw.Close()
		close(n.done)
	}()
	t.Cleanup(func() {
		select {
		case <-n.done:
		default:
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			t.Logf("verity stdout:\n%s\nverity stderr:\n%s", n.stdout, n.stderr)
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		closed := false
		for sc.Scan() {
			line := sc.Text()
			if m := bannerURL.FindStringSubmatch(line); m != nil {
				n.url = m[1]
			}
			if m := bannerCA.FindStringSubmatch(line); m != nil {
				n.caFile = m[1]
			}
			if m := bannerUser.FindStringSubmatch(line); m != nil {
				n.user = m[1]
			}
			if m := bannerPass.FindStringSubmatch(line); m != nil {
				n.password = m[1]
			}
			if (strings.Contains(line, "Sign in:") || strings.Contains(line, "Operations:")) && !closed {
				close(ready)
				closed = true
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-ready:
	case <-n.done:
		t.Fatalf("verity exited before it was ready: %v\nstderr:\n%s", n.exitErr, n.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("verity did not start in 60s\nstderr:\n%s", n.stderr)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if n.caFile != "" {
		pem, err := os.ReadFile(n.caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tlsConf.RootCAs = pool
	}
	n.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	return n
}

// run runs a verity command to completion and returns its output.
func run(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(verityBin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		<-ctx.Done()
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	}()
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// stop sends sig and waits for the process to exit.
func (n *node) stop(sig syscall.Signal) error {
	n.t.Helper()
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.done:
		return n.exitErr
	case <-time.After(60 * time.Second):
		n.t.Fatal("verity did not exit within 60s")
		return nil
	}
}

// login signs in over HTTP and returns a token.
func (n *node) login(user, password string) string {
	n.t.Helper()
	var resp struct {
		AccessToken string `json:"access_token"`
	}
	status, body := n.do("", "POST", "/api/v1/login", fmt.Sprintf(`{"userPrincipalName":%q,"password":%q}`, user, password))
	if status != http.StatusOK {
		n.t.Fatalf("login: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		n.t.Fatal(err)
	}
	return resp.AccessToken
}

// do sends a request; a transport error is reported as status 0.
func (n *node) do(token, method, path, body string) (int, []byte) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// revision reads the snapshot revision a node serves from (no auth).
func (n *node) revision() int64 {
	status, body := n.do("", "GET", "/readyz", "")
	if status != http.StatusOK {
		return -1
	}
	var r struct{ Revision int64 }
	_ = json.Unmarshal(body, &r)
	return r.Revision
}

// serverEnv is the environment of a `verity server` on dsn with plain HTTP
// on a free port.
func serverEnv(t *testing.T, dsn string) []string {
	return baseEnv("VERITY_STORE_DSN="+dsn, "VERITY_HTTP_ADDR=127.0.0.1:0", "VERITY_HTTP_TLS_DISABLE=true",
		"VERITY_DATA_DIR="+t.TempDir(), "VERITY_STORE_POLL_INTERVAL=200ms", "VERITY_STORE_CONNECT_TIMEOUT=3s",
		"VERITY_HTTP_SHUTDOWN_TIMEOUT=10s", "VERITY_SECRETS_MASTER_KEY_FILE="+sharedKeyFile(t, dsn))
}

// sharedKeyFile is the master key file of the nodes of one database, as
// an operator copies it to each: the first node to start creates it.
func sharedKeyFile(t *testing.T, dsn string) string {
	sum := sha256.Sum256([]byte(dsn))
	dir := filepath.Join(os.TempDir(), "verity-test-keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, hex.EncodeToString(sum[:8])+".key")
	t.Cleanup(func() { os.Remove(path) })
	return path
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
