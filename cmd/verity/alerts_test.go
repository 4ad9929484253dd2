package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLivePasswordSpray: a bounded password spray against `verity up`'s
// own sign-in (five accounts, one address, wrong passwords) is raised as
// an alert within seconds, listed by `verity alerts list`, and closed with
// `verity alerts close`.
func TestLivePasswordSpray(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := baseEnv("VERITY_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials.json"))
	n := start(t, env, "up", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "verity-data"))
	if _, stderr, err := run(t, env, n.password+"\n", "login", "--server", n.url, "--ca", n.caFile, "--user", n.user, "--password-stdin"); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	for i := range 5 {
		status, body := n.do("", "POST", "/api/v1/login", fmt.Sprintf(`{"userPrincipalName": "victim%d@contoso.com", "password": "Winter2026!"}`, i))
		if status != http.StatusUnauthorized {
			t.Fatalf("spray attempt %d: %d %s", i, status, body)
		}
	}
	var out string
	for deadline := time.Now().Add(15 * time.Second); ; {
		var err error
		out, _, err = run(t, env, "", "alerts", "list", "--status", "new")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "passwordSpray") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no spray alert:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	id := strings.Fields(lines[len(lines)-1])[0]
	if out, stderr, err := run(t, env, "", "alerts", "close", id, "--comment", "test spray"); err != nil || !strings.Contains(out, "is closed") {
		t.Fatalf("close: %v\n%s%s", err, out, stderr)
	}
}
