package main

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

const accessData = "../../internal/access/testdata/conditional-access/"

// TestAccessEvaluateOnRealPolicies runs the offline What If the way a CI
// job would: the j0eyv baseline (Entra beta exports) and its named
// locations, a directory file and Graph's documented evaluate request.
func TestAccessEvaluateOnRealPolicies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	request := func(country string) string {
		return write("request-"+country+".json", `{
		  "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "15dc174b-f34c-4588-ac45-61d6e05dce93"},
		  "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["00000003-0000-0ff1-ce00-000000000000"]},
		  "signInConditions": {"devicePlatform": "windows", "clientAppType": "browser", "country": "`+country+`", "ipAddress": "40.77.182.32"},
		  "satisfiedControls": ["mfa"]
		}`)
	}
	directory := write("directory.json", `{"users": [{"id": "15dc174b-f34c-4588-ac45-61d6e05dce93", "userType": "Member"}], "groups": []}`)
	args := func(req string) []string {
		return []string{"access", "evaluate",
			"--policies", accessData + "j0eyv-ConditionalAccessBaseline/policies",
			"--named-locations", accessData + "j0eyv-ConditionalAccessBaseline/named-locations",
			"--directory", directory, "--request", req}
	}
	outcome := func(stdout string) (string, map[string]bool) {
		var out struct {
			Value []struct {
				DisplayName   string `json:"displayName"`
				PolicyApplies bool   `json:"policyApplies"`
			} `json:"value"`
			Result struct{ Outcome string } `json:"result"`
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("stdout is not the evaluate response: %v\n%s", err, stdout)
		}
		applies := map[string]bool{}
		for _, v := range out.Value {
			applies[v.DisplayName] = v.PolicyApplies
		}
		return out.Result.Outcome, applies
	}

	// From the US: outside the baseline's allowed countries (BE, LU, NL), so blocked.
	stdout, stderr, err := run(t, baseEnv(), "", args(request("US"))...)
	if err != nil {
		t.Fatalf("evaluate: %v\n%s", err, stderr)
	}
	got, applies := outcome(stdout)
	if got != "block" || !applies["CA001-Global-AttackSurfaceReduction-AnyApp-AnyPlatform-BLOCK-CountryWhitelist"] {
		t.Fatalf("from the US: outcome %q, applying %v", got, applies)
	}
	if !strings.Contains(stderr, "note: ") || !strings.Contains(stderr, "unsupported") {
		t.Errorf("no notes on unsupported properties:\n%s", stderr)
	}
	// From the Netherlands the country block does not apply.
	stdout, _, err = run(t, baseEnv(), "", args(request("NL"))...)
	if err != nil {
		t.Fatal(err)
	}
	if _, applies = outcome(stdout); applies["CA001-Global-AttackSurfaceReduction-AnyApp-AnyPlatform-BLOCK-CountryWhitelist"] {
		t.Fatal("the country block applies from an allowed country")
	}

	// Bad input: exit status 2 and the JSON path on stderr.
	bad := write("bad.json", `{"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "15dc174b-f34c-4588-ac45-61d6e05dce93"},
	  "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["00000003-0000-0ff1-ce00-000000000000"]},
	  "signInConditions": {"clientAppType": "carrierPigeon"}}`)
	_, stderr, err = run(t, baseEnv(), "", args(bad)...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr, "signInConditions.clientAppType") {
		t.Fatalf("bad request: %v\n%s", err, stderr)
	}
	_, stderr, err = run(t, baseEnv(), "", "access", "evaluate", "--policies", write("notjson.json", "{oops"), "--request", bad)
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr, "notjson.json") {
		t.Fatalf("bad policy file: %v\n%s", err, stderr)
	}
}

func TestAccessLint(t *testing.T) {
	t.Parallel()
	stdout, _, err := run(t, baseEnv(), "", "access", "lint", "--format", "json", accessData+"j0eyv-ConditionalAccessBaseline/policies")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("lint of the baseline: %v", err)
	}
	var findings []struct{ Rule, Policy string }
	if err := json.Unmarshal([]byte(stdout), &findings); err != nil || len(findings) != 1 || findings[0].Rule != "neverApplies" {
		t.Fatalf("findings %s (%v)", stdout, err)
	}
	// A lone "MFA for everyone" leaves the usual gaps open.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mfa.json"), []byte(`{"displayName": "MFA for everyone", "state": "enabled",
	  "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
	  "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _, err = run(t, baseEnv(), "", "access", "lint", dir)
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stdout, "[legacyAuthNotBlocked]") || !strings.Contains(stdout, "[breakGlassNotExcluded]") {
		t.Fatalf("lint: %v\n%s", err, stdout)
	}
	if _, _, err = run(t, baseEnv(), "", "access", "lint", filepath.Join(dir, "missing")); !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("lint of a missing path: %v", err)
	}
}

// TestAccessEvaluateCountryFromMMDB: with --mmdb and no country in the
// request, the country of ipAddress decides the baseline's country block.
func TestAccessEvaluateCountryFromMMDB(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24, IPVersion: 6})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, cc := range map[string]string{"40.77.182.0/24": "US", "145.100.0.0/16": "NL"} {
		_, network, _ := net.ParseCIDR(cidr)
		if err := tree.Insert(network, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}); err != nil {
			t.Fatal(err)
		}
	}
	mmdb := filepath.Join(dir, "country.mmdb")
	f, err := os.Create(mmdb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tt := range []struct {
		ip      string
		blocked bool
	}{{"40.77.182.32", true}, {"145.100.7.1", false}} {
		req := filepath.Join(dir, tt.ip+".json")
		if err := os.WriteFile(req, []byte(`{
		  "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "15dc174b-f34c-4588-ac45-61d6e05dce93"},
		  "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["00000003-0000-0ff1-ce00-000000000000"]},
		  "signInConditions": {"devicePlatform": "windows", "clientAppType": "browser", "ipAddress": "`+tt.ip+`"}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := run(t, baseEnv(), "", "access", "evaluate",
			"--policies", accessData+"j0eyv-ConditionalAccessBaseline/policies/CA001-Global-AttackSurfaceReduction-AnyApp-AnyPlatform-BLOCK-CountryWhitelist.json",
			"--named-locations", accessData+"j0eyv-ConditionalAccessBaseline/named-locations", "--mmdb", mmdb, "--request", req)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.ip, err, stderr)
		}
		if blocked := strings.Contains(stdout, `"outcome": "block"`); blocked != tt.blocked {
			t.Fatalf("%s: blocked %v, want %v\n%s", tt.ip, blocked, tt.blocked, stdout)
		}
	}
}
