package access

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func lintPolicy(t *testing.T, js string) *Policy {
	t.Helper()
	p, _, err := ParsePolicy([]byte(js))
	if err != nil {
		t.Fatalf("parse %s: %v", js, err)
	}
	return p
}

func rules(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+":"+f.Policy)
	}
	slices.Sort(out)
	return out
}

func TestLint(t *testing.T) {
	t.Parallel()
	const (
		breakGlass = `"excludeUsers": ["4b3f1a2c-0000-4000-8000-00000000b001"]`
		allApps    = `"applications": {"includeApplications": ["All"]}`
	)
	mfaAdmins := `{"displayName": "MFA admins", "state": "enabled", "conditions": {"users": {"includeRoles": ["62e90394-69f5-4237-9190-012177145e10"]}, ` + allApps + `, "clientAppTypes": ["all"]}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`
	blockLegacy := `{"displayName": "Block legacy", "state": "enabled", "conditions": {"users": {"includeUsers": ["All"], ` + breakGlass + `}, ` + allApps + `, "clientAppTypes": ["exchangeActiveSync", "other"]}, "grantControls": {"operator": "OR", "builtInControls": ["block"]}}`
	tests := []struct {
		name     string
		policies []string
		want     []string
	}{
		{"a good baseline has no findings", []string{mfaAdmins, blockLegacy}, nil},
		{"nothing at all", nil, []string{"adminsWithoutMFA:", "legacyAuthNotBlocked:"}},
		{"all users without exclusions", []string{mfaAdmins, blockLegacy,
			`{"displayName": "MFA everyone", "state": "enabled", "conditions": {"users": {"includeUsers": ["All"]}, ` + allApps + `, "clientAppTypes": ["all"]}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`},
			[]string{"breakGlassNotExcluded:MFA everyone"}},
		{"report-only MFA for admins does not count", []string{strings.Replace(mfaAdmins, `"enabled"`, `"enabledForReportingButNotEnforced"`, 1), blockLegacy},
			[]string{"adminsWithoutMFA:"}},
		{"MFA or compliant device is not MFA", []string{strings.Replace(mfaAdmins, `["mfa"]`, `["mfa", "compliantDevice"]`, 1), blockLegacy},
			[]string{"adminsWithoutMFA:"}},
		{"excludes every group it includes", []string{mfaAdmins, blockLegacy,
			`{"displayName": "Empty", "state": "disabled", "conditions": {"users": {"includeGroups": ["4b3f1a2c-0000-4000-8000-00000000a001"], "excludeGroups": ["4b3f1a2c-0000-4000-8000-00000000a001"]}, ` + allApps + `}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`},
			[]string{"neverApplies:Empty"}},
		{"no application", []string{mfaAdmins, blockLegacy,
			`{"displayName": "No app", "state": "enabled", "conditions": {"users": {"includeRoles": ["62e90394-69f5-4237-9190-012177145e10"]}, "applications": {"includeApplications": ["None"]}}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`},
			[]string{"neverApplies:No app"}},
		{"shadowed by an identical block", []string{mfaAdmins, blockLegacy,
			`{"displayName": "Legacy needs MFA", "state": "enabled", "conditions": {"users": {"includeUsers": ["All"], ` + breakGlass + `}, ` + allApps + `, "clientAppTypes": ["exchangeActiveSync", "other"]}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`},
			[]string{"shadowed:Legacy needs MFA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ps []*Policy
			for _, js := range tt.policies {
				ps = append(ps, lintPolicy(t, js))
			}
			got := rules(Lint(ps))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("findings %v; want %v", got, tt.want)
			}
		})
	}
}

// TestLintBaseline runs the lint over a real, careful baseline: it covers
// admins with MFA and blocks legacy authentication, so those gaps must not
// be reported.
func TestLintBaseline(t *testing.T) {
	t.Parallel()
	dir := "testdata/conditional-access/j0eyv-ConditionalAccessBaseline/policies"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ps []*Policy
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := ParsePolicy(b)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		ps = append(ps, p)
	}
	got := rules(Lint(ps))
	// CA104 is enabled but targets no application ("None"), so it never
	// applies; that is the one finding.
	want := []string{"neverApplies:CA104-Admins-IdentityProtection-AllApps-AnyPlatform-ContinuousAccessEvaluation"}
	if !slices.Equal(got, want) {
		t.Fatalf("findings on the baseline %v; want %v", got, want)
	}
}

func TestStaticDirectoryFromGraphUsers(t *testing.T) {
	t.Parallel()
	const (
		user   = "15dc174b-f34c-4588-ac45-61d6e05dce93"
		group  = "6b1f3c2e-8d4a-4f6b-9c1e-2a7d5e8f0a11"
		parent = "7c2f4d3e-9e5b-4a7c-8d2f-3b8e6f9a1b22"
		ga     = "62e90394-69f5-4237-9190-012177145e10"
	)
	d, err := ParseStaticDirectory([]byte(`{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(memberOf())", "value": [
	  {"id": "` + user + `", "userPrincipalName": "alice@contoso.com", "userType": "Guest", "displayName": "Alice",
	   "transitiveMemberOf": [
	     {"@odata.type": "#microsoft.graph.group", "id": "` + group + `", "displayName": "Engineers"},
	     {"@odata.type": "#microsoft.graph.group", "id": "` + parent + `", "displayName": "Staff"},
	     {"@odata.type": "#microsoft.graph.directoryRole", "id": "0b9e2a4c-0000-4000-8000-000000000000", "roleTemplateId": "` + ga + `"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.TransitiveMemberOf(user); !slices.Equal(got, []string{group, parent}) {
		t.Fatalf("groups %v", got)
	}
	if got := d.DirectoryRoles(user); !slices.Equal(got, []string{ga}) {
		t.Fatalf("roles %v", got)
	}
	if !d.IsGuest(user) {
		t.Fatal("guest lost")
	}
	if _, err := ParseStaticDirectory([]byte(`{"value": [{"id": "not-a-guid"}]}`)); err == nil {
		t.Fatal("accepted a bad id")
	}
}
