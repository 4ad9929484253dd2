package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testApplyExamples runs the tour's policy-as-code steps through the CLI
// against n: dry run, apply, idempotent re-apply, a failing apply that
// writes nothing, and export.
func testApplyExamples(t *testing.T, env []string, n *node) {
	t.Helper()
	const examples = "../../examples/tenant"
	out, stderr, err := run(t, env, "", "apply", "-f", examples, "--dry-run")
	if err != nil || !strings.Contains(out, "+ create user alice@contoso.com") || !strings.Contains(out, "Plan: ") {
		t.Fatalf("dry run: %v\n%s%s", err, out, stderr)
	}
	tok := n.login(n.user, n.password)
	if status, body := n.do(tok, "GET", "/api/v1/users/alice@contoso.com", ""); status != http.StatusNotFound {
		t.Fatalf("dry run wrote: %d %s", status, body)
	}
	if out, stderr, err = run(t, env, "", "apply", "-f", examples); err != nil {
		t.Fatalf("apply: %v\n%s%s", err, out, stderr)
	}
	if out, _, err = run(t, env, "", "apply", "-f", examples); err != nil || !strings.Contains(out, "No changes.") {
		t.Fatalf("second apply: %v\n%s", err, out)
	}
	// Bob is in SRE, inside Platform Engineers, inside All Engineering.
	status, body := n.do(tok, "GET", "/api/v1/users/bob@contoso.com/transitiveMemberOf", "")
	var groups struct {
		Value []struct{ DisplayName string }
	}
	_ = json.Unmarshal(body, &groups)
	var names []string
	for _, g := range groups.Value {
		names = append(names, g.DisplayName)
	}
	if status != http.StatusOK || !slices.Contains(names, "All Engineering") || !slices.Contains(names, "SRE") {
		t.Fatalf("bob transitiveMemberOf: %d %v", status, names)
	}

	// The example policies are live: What If for alice (Global
	// Administrator, in All Engineering) from outside the trusted network.
	_, body = n.do(tok, "GET", "/api/v1/users/alice@contoso.com", "")
	var alice struct{ ID string }
	_ = json.Unmarshal(body, &alice)
	status, body = n.do(tok, "POST", "/api/v1/identity/conditionalAccess/evaluate", `{
	  "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "`+alice.ID+`"},
	  "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["00000003-0000-0000-c000-000000000000"]},
	  "signInConditions": {"clientAppType": "browser", "devicePlatform": "macOS", "ipAddress": "192.0.2.10", "country": "US"}}`)
	var whatIf struct {
		Value []struct {
			DisplayName   string `json:"displayName"`
			PolicyApplies bool   `json:"policyApplies"`
		} `json:"value"`
		Result struct {
			Outcome       string   `json:"outcome"`
			UnmetControls []string `json:"unmetControls"`
		} `json:"result"`
	}
	_ = json.Unmarshal(body, &whatIf)
	applying := map[string]bool{}
	for _, v := range whatIf.Value {
		applying[v.DisplayName] = v.PolicyApplies
	}
	if status != http.StatusOK || whatIf.Result.Outcome == "block" || !slices.Equal(whatIf.Result.UnmetControls, []string{"mfa"}) ||
		!applying["CA001 Require MFA for administrators"] || !applying["CA003 Engineers need MFA away from trusted networks"] || applying["CA002 Block legacy authentication"] {
		t.Fatalf("What If for alice: %d %s", status, body)
	}

	// Replay a stricter candidate over the sign-ins recorded so far (the
	// administrator's): MFA for everyone on the admin API.
	candidate := filepath.Join(t.TempDir(), "candidate.json")
	if err := os.WriteFile(candidate, []byte(`[{"displayName": "MFA for the admin API", "state": "enabled",
	  "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["1b4f2c6a-9d3e-4a7b-8c5f-0e2d6a9b3c71"]}, "clientAppTypes": ["all"]},
	  "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = run(t, env, "", "access", "replay", "--policies", candidate, "--since", "1d")
	if err != nil || !strings.Contains(out, "would change outcome") || !strings.Contains(out, "admin@verity.local") {
		t.Fatalf("replay: %v\n%s%s", err, out, stderr)
	}

	// A manifest with one bad reference in its last file writes nothing.
	bad := t.TempDir()
	copyDir(t, examples, bad)
	extra := "users:\n  - userPrincipalName: zed@contoso.com\n    displayName: Zed\ngroups:\n  - displayName: Broken\n    members:\n      users: [nobody@contoso.com]\n"
	if err := os.WriteFile(filepath.Join(bad, "zz-broken.yaml"), []byte(extra), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = run(t, env, "", "apply", "-f", bad)
	if err == nil || !strings.Contains(stderr, "zz-broken.yaml: groups[0].members.users[0]") || !strings.Contains(stderr, "nobody@contoso.com") {
		t.Fatalf("broken apply: %v\n%s", err, stderr)
	}
	if status, _ := n.do(tok, "GET", "/api/v1/users/zed@contoso.com", ""); status != http.StatusNotFound {
		t.Fatal("a failed apply wrote part of the manifest")
	}

	exported := filepath.Join(t.TempDir(), "tenant.yaml")
	if _, stderr, err = run(t, env, "", "export", "-o", exported); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	if out, _, err = run(t, env, "", "apply", "-f", exported, "--dry-run"); err != nil || !strings.Contains(out, "No changes.") {
		t.Fatalf("applying the export: %v\n%s", err, out)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
