package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
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

// TestRiskClosesTheLoop: a brute force on alice's password that ends in a
// successful sign-in is detected, raises her user risk to high, and the
// next decision about her — a conditional access policy blocks high user
// risk — refuses her, within seconds; an administrator is not affected.
func TestRiskClosesTheLoop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Lockout after 50 failures, so that the guessed password gets in.
	env := baseEnv("VERITY_CREDENTIALS_FILE="+filepath.Join(dir, "credentials.json"), "VERITY_AUTH_MAX_FAILED_LOGINS=50")
	n := start(t, env, "up", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "verity-data"))
	tok := n.login(n.user, n.password)
	status, body := n.do(tok, "POST", "/api/v1/users", `{"userPrincipalName": "alice@contoso.com", "displayName": "Alice", "accountEnabled": true}`)
	if status != http.StatusCreated {
		t.Fatalf("create alice: %d %s", status, body)
	}
	var alice struct{ ID string }
	_ = json.Unmarshal(body, &alice)
	if status, body := n.do(tok, "POST", "/api/v1/users/alice@contoso.com/password", `{"password": "correct horse battery staple 7"}`); status != http.StatusNoContent {
		t.Fatalf("set password: %d %s", status, body)
	}
	status, body = n.do(tok, "POST", "/api/v1/identity/conditionalAccess/policies", `{"displayName": "Block risky users", "state": "enabled",
		"conditions": {"users": {"includeUsers": ["`+alice.ID+`"]}, "applications": {"includeApplications": ["All"]},
		"clientAppTypes": ["all"], "userRiskLevels": ["high"]}, "grantControls": {"operator": "OR", "builtInControls": ["block"]}}`)
	if status != http.StatusCreated {
		t.Fatalf("policy: %d %s", status, body)
	}
	login := func(password string) (int, string) {
		status, body := n.do("", "POST", "/api/v1/login", fmt.Sprintf(`{"userPrincipalName": "alice@contoso.com", "password": %q}`, password))
		return status, string(body)
	}
	if status, body := login("correct horse battery staple 7"); status != http.StatusOK {
		t.Fatalf("alice before the attack: %d %s", status, body)
	}
	for i := range 10 {
		if status, _ := login(fmt.Sprintf("guess number %d", i)); status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, status)
		}
	}
	if status, body := login("correct horse battery staple 7"); status != http.StatusOK {
		t.Fatalf("the guessed password: %d %s", status, body)
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		status, body := login("correct horse battery staple 7")
		if status == http.StatusForbidden && strings.Contains(body, "ConditionalAccessBlocked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice still signs in after the brute force: %d %s", status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _, err := run(t, append(env, "VERITY_SERVER="+n.url, "VERITY_CA_FILE="+n.caFile, "VERITY_TOKEN="+tok), "", "alerts", "list", "--detector", "bruteForce")
	if err != nil || !strings.Contains(out, "alice@contoso.com") {
		t.Fatalf("alerts: %v\n%s", err, out)
	}
	n.login(n.user, n.password) // the administrator still signs in

	// An administrator who knows better dismisses the risk: alice signs in.
	cli := append(env, "VERITY_SERVER="+n.url, "VERITY_CA_FILE="+n.caFile, "VERITY_TOKEN="+tok)
	if out, _, err := run(t, cli, "", "risk", "list"); err != nil || !strings.Contains(out, "alice@contoso.com") || !strings.Contains(out, "high") {
		t.Fatalf("risk list: %v\n%s", err, out)
	}
	if out, stderr, err := run(t, cli, "", "risk", "dismiss", "alice@contoso.com"); err != nil {
		t.Fatalf("risk dismiss: %v\n%s%s", err, out, stderr)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		status, body := login("correct horse battery staple 7")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice is still refused after her risk was dismissed: %d %s", status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAlertsReplay runs `verity alerts replay` over the public labelled
// exports: the Training Lab's disabled-account address and its five
// credential additions, the Golden SAML consent, first credential and mail
// read — and with the detect section of a configuration, a detector
// disabled and a threshold raised.
func TestAlertsReplay(t *testing.T) {
	t.Parallel()
	logs := filepath.Join("..", "..", "internal", "detect", "testdata", "logs")
	files := []string{"alerts", "replay", "--json",
		filepath.Join(logs, "sentinel-training-lab", "sign-in_adelete.csv"), filepath.Join(logs, "sentinel-training-lab", "disable_accounts.csv"),
		filepath.Join(logs, "sentinel-training-lab", "AuditLogs_Hunting.csv"),
		filepath.Join(logs, "otrf-goldensaml", "AADAuditEvents.json"), filepath.Join(logs, "otrf-goldensaml", "OfficeActivityEvents.json")}
	count := func(out string) map[string]int {
		got := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var a struct{ Detector string }
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			got[a.Detector]++
		}
		return got
	}
	out, stderr, err := run(t, baseEnv(), "", files...)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr)
	}
	if got := count(out); fmt.Sprint(got) != "map[consentGrant:1 credentialAdded:6 disabledAccountIP:1 mailAccessAfterConsent:1]" {
		t.Fatalf("alerts %v\n%s", got, stderr)
	}
	cfg := filepath.Join(t.TempDir(), "verity.yaml")
	if err := os.WriteFile(cfg, []byte("detect:\n  disabled: [mailAccessAfterConsent]\n  detectors:\n    disabledAccountIP: {ratio: 2}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = run(t, baseEnv(), "", append(files, "--config", cfg)...)
	if err != nil {
		t.Fatalf("replay with a configuration: %v\n%s", err, stderr)
	}
	if got := count(out); fmt.Sprint(got) != "map[consentGrant:1 credentialAdded:6]" {
		t.Fatalf("alerts with a configuration %v", got)
	}
	if _, stderr, err := run(t, baseEnv(), "", "alerts", "replay", cfg); err == nil || !strings.Contains(stderr, cfg+": sign-in CSV line 2: no time") {
		t.Fatalf("a file that is no log: %v %s", err, stderr)
	}
	empty := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := run(t, baseEnv(), "", "alerts", "replay", empty); err == nil || !strings.Contains(stderr, "no sign-in or audit record") {
		t.Fatalf("an empty file: %v %s", err, stderr)
	}
}
