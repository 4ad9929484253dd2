package proxy_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
)

// TestStreamingAndHTTP2: a signed-in browser on HTTP/2 gets a response
// the upstream streams (server-sent events) as it is written, not when it
// ends, and a request body streams to the upstream.
func TestStreamingAndHTTP2(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	stream := func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: first\n\n")
			http.NewResponseController(w).Flush()
			select { // the second event only once the client has the first
			case <-release:
			case <-time.After(10 * time.Second):
			}
			io.WriteString(w, "data: second\n\n")
		case "/upload":
			n, _ := io.Copy(io.Discard, r.Body)
			io.WriteString(w, "got "+strconv.FormatInt(n, 10))
		}
	}
	up := newBackendFunc(t, stream)
	e := newNode(t, nodeOptions{http2: true}, func(r *directory.AppRoute) { r.To = []string{up} })
	c := e.browser()
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	if resp, body := e.signIn(c, e.base+"/payroll/upload"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "got ") {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}

	resp, err := c.Get(e.base + "/payroll/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %v", resp.Proto, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || first != "data: first\n" {
		t.Fatalf("the first event before the stream ends: %q %v", first, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: second") {
		t.Fatalf("the rest of the stream: %q", rest)
	}

	// A large body streams upstream (within the default bound).
	body := strings.NewReader(strings.Repeat("x", 5<<20))
	resp, err = c.Post(e.base+"/payroll/upload", "application/octet-stream", body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "got 5242880" || resp.ProtoMajor != 2 {
		t.Fatalf("upload: %d %s %q", resp.StatusCode, resp.Proto, b)
	}
}

// newBackendFunc starts a plain upstream serving h and returns its URL.
func newBackendFunc(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
