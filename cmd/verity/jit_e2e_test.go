package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestJITWithTheCLI closes the port of an application published through
// `verity up`'s proxy with `verity jit put` (Defender's policy JSON): a
// client is then refused before sign-in. `verity jit request` opens it to
// the caller's own address — the browser signs in and reaches the
// application — and `verity jit revoke` closes it again.
func TestJITWithTheCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	upstream := helloUpstream(t)
	n := start(t, baseEnv(), "up", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "verity-data"))
	m := bannerProxy.FindStringSubmatch(n.stdout.String())
	if m == nil {
		t.Fatalf("no proxy line in the banner:\n%s", n.stdout)
	}
	tok := n.login(n.user, n.password)
	appURL, tr := publishHello(t, n, tok, m[1], upstream.URL)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(appURL, "https://"))
	status, body := n.do(tok, "GET", "/api/v1/applications", "")
	var apps struct {
		Value []struct{ AppID, DisplayName string }
	}
	if err := json.Unmarshal(body, &apps); status != http.StatusOK || err != nil {
		t.Fatalf("applications: %d %s", status, body)
	}
	resource := ""
	for _, a := range apps.Value {
		if a.DisplayName == "Hello" {
			resource = "/apps/" + a.AppID
		}
	}
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, fmt.Appendf(nil, `{"kind": "Basic", "properties": {"virtualMachines": [{"id": %q, "ports": [
		{"number": %s, "protocol": "*", "allowedSourceAddressPrefix": "127.0.0.0/8", "maxRequestAccessDuration": "PT1H"}]}]}}`, resource, port), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := baseEnv("VERITY_SERVER="+n.url, "VERITY_CA_FILE="+n.caFile, "VERITY_TOKEN="+tok)
	if out, stderr, err := run(t, cli, "", "jit", "put", "hello", "--file", policy); err != nil || !strings.Contains(out, "policy hello: 1 resources protected") {
		t.Fatalf("jit put: %v\n%s%s", err, out, stderr)
	}
	api := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, appURL+"/docs/a", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get(); status != http.StatusForbidden || !strings.Contains(body, "900420") {
		t.Fatalf("closed: %d %s", status, body)
	}
	if out, stderr, err := run(t, cli, "", "jit", "policies"); err != nil || !strings.Contains(out, resource) || !strings.Contains(out, "127.0.0.0/8") {
		t.Fatalf("jit policies: %v\n%s%s", err, out, stderr)
	}

	out, stderr, err := run(t, cli, "", "jit", "request", "--policy", "hello", "--resource", resource, "--port", port, "--duration", "30m",
		"--justification", "reading the docs")
	if err != nil || !strings.Contains(out, "from 127.0.0.1: Initiated") {
		t.Fatalf("jit request: %v\n%s%s", err, out, stderr)
	}
	id := regexp.MustCompile(`request (\S+) by`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no request id in %q", out)
	}
	if status, body := get(); status != http.StatusUnauthorized || !strings.Contains(body, "SignInRequired") {
		t.Fatalf("open to 127.0.0.1: on to sign-in: %d %s", status, body)
	}
	if out, _, err := run(t, cli, "", "jit", "requests", "--open"); err != nil || !strings.Contains(out, id[1]) {
		t.Fatalf("jit requests --open: %v\n%s", err, out)
	}
	if out, stderr, err := run(t, cli, "", "jit", "revoke", id[1]); err != nil || !strings.Contains(out, "Revoked (UserRequested)") {
		t.Fatalf("jit revoke: %v\n%s%s", err, out, stderr)
	}
	if status, body := get(); status != http.StatusForbidden || !strings.Contains(body, "900420") {
		t.Fatalf("revoked: %d %s", status, body)
	}
	if _, stderr, err := run(t, cli, "", "jit", "put", "hello", "--file", filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(stderr, "missing.json") {
		t.Fatalf("a missing file: %v %s", err, stderr)
	}
}
